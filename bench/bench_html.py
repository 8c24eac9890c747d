"""Benchmark compat.html at 10,000 cells: its size, the time to write it, and the time headless
Chromium takes to load, lay out and paint it, against a one-cell page in the same run.

Usage: ``python bench/bench_html.py [--cells N] [--runs N] [--out DIR] [--chromium PATH]``

The cells are varied like a real large matrix (seeded): 4 Pythons x N/4 versions, most passing
with twenty resolved distributions each, some GPU-unverified, about one in eight failing with an
import failure and a grouped ABI finding, some errors and unsupported combinations. Chromium
runs with ``--headless --no-sandbox --disable-gpu --disable-background-networking`` and takes a
screenshot (the page is laid out and painted); the best of ``--runs`` is reported, minus the
same for a one-cell page (Chromium's own start-up). Exits 1 when the page is 5 MB or more, or
when it renders in 3 s or more; 2 when Chromium is not installed (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compat_matrix.reports import render_html
from compat_matrix.results import CellResult, ProbeResult, PythonInfo

MAX_BYTES = 5_000_000
MAX_SECONDS = 3.0
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--window-size=1400,1000",
]


def cells(count: int, seed: int = 11) -> list[CellResult]:
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    deps = [f"dep{i}" for i in range(18)]
    out = []
    for i in range(count):
        python = f"3.{10 + i % 4}"
        version = f"1.{i // 4}.0"
        axes = {"python": python, "pkg": version}
        resolved = {"pkg": version, "numpy": "2.2.6", **{d: f"{rng.randint(1, 9)}.0" for d in deps}}
        roll = rng.random()
        info = PythonInfo(f"{python}.4", "cpython", f"cp3{10 + i % 4}")
        durations = {"build": rng.uniform(2, 30), "probes": rng.uniform(0.5, 4)}
        passing = [
            ProbeResult("import", "pkg", "pass", duration_s=0.4),
            ProbeResult("abi", "pkg", "pass"),
        ]
        if roll < 0.12:
            message = (
                f"ImportError: pkg/_core.so: undefined symbol: _ZN3pkg{i}Eventv\n"
                + "  at load\n" * 5
            )
            probes = [
                ProbeResult(
                    "import", "pkg", "fail", "undefined-symbol", message, "pin pkg<1.0", 0.3
                ),
                *(
                    ProbeResult(
                        "abi",
                        f"pkg/_libs/m{j}.so",
                        "fail",
                        "abi-numpy",
                        f"pkg/_libs/m{j}.so was built against NumPy 1.x; NumPy 2.2.6 is installed",
                        "pin numpy<2",
                        0.01,
                        {"owner": f"pkg {version}"},
                    )
                    for j in range(6)
                ),
            ]
            result = CellResult(
                f"py{python}-pkg{version}",
                axes,
                "fail",
                "undefined-symbol",
                message,
                "pin pkg<1.0",
                info,
                resolved,
                probes,
                durations,
                lock=f"locks/py{python}-pkg{version}.txt",
            )
        elif roll < 0.15:
            result = CellResult(
                f"py{python}-pkg{version}",
                axes,
                "error",
                "network",
                "could not reach the package index: timed out after 60 s",
                "",
                None,
                {},
                [],
                durations,
            )
        elif roll < 0.20:
            result = CellResult(
                f"py{python}-pkg{version}",
                axes,
                "unsupported",
                "no-distribution",
                f"no wheel of pkg {version} for cp3{10 + i % 4}",
                "use pkg 1.2.0 or later",
            )
        else:
            result = CellResult(
                f"py{python}-pkg{version}",
                axes,
                "pass",
                None,
                "",
                "",
                info,
                resolved,
                passing,
                durations,
                gpu_unverified=roll > 0.9,
                lock=f"locks/py{python}-pkg{version}.txt",
            )
        out.append(result)
    return out


def chromium_seconds(chromium: str, page: Path, shot: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [chromium, *FLAGS, f"--screenshot={shot}", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
    )
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-html-"))
    out.mkdir(parents=True, exist_ok=True)
    results = cells(args.cells)
    start = time.perf_counter()
    html = render_html("bench: 10,000 cells", results)
    written = time.perf_counter() - start
    page = out / "compat.html"
    page.write_text(html, encoding="utf-8")
    one = out / "one.html"
    one.write_text(render_html("bench: one cell", results[:1]), encoding="utf-8")
    size = len(html.encode("utf-8"))
    print(f"cells: {len(results)}  details: {html.count('<details')}  page: {size / 1e6:.2f} MB")
    print(f"render_html: {written:.2f} s")
    ok = size < MAX_BYTES
    if not args.chromium:
        print("chromium not found: apt-get install chromium (or pass --chromium)")
        return 2
    base = min(chromium_seconds(args.chromium, one, out / "one.png") for _ in range(args.runs))
    full = min(chromium_seconds(args.chromium, page, out / "compat.png") for _ in range(args.runs))
    print(f"chromium, one-cell page: {base:.2f} s (start-up)  10,000-cell page: {full:.2f} s")
    print(
        f"render time (page minus start-up): {full - base:.2f} s  screenshot: {out / 'compat.png'}"
    )
    ok = ok and full - base < MAX_SECONDS
    print("OK" if ok else f"FAIL: limits are {MAX_BYTES / 1e6:.0f} MB and {MAX_SECONDS:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
