"""Benchmark: a 10,000-cell matrix through `plan` and `report`, as a GitHub fan-out runs them.

Targets (issue 5): `plan MATRIX --github` under 2 s; `report` merging 10,000 cell results from
the shards' folders under 5 s (plain, and with `--baseline` as the nightly runs it); compat.md
under 1 MiB. Both commands run as a user runs them (a fresh `python -m compat_matrix` process,
interpreter start included, bytecode written as on a user's machine), best of `--repeat`
runs. Exit status 1 when a target is missed.

Usage: python bench/bench_scale.py [--cells-per-axis N] [--repeat N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from compat_matrix.matrix.expand import expand  # noqa: E402
from compat_matrix.matrix.load import load_matrix  # noqa: E402

PLAN_TARGET_S = 2.0
REPORT_TARGET_S = 5.0
MIB = 1024 * 1024
SHARDS = 256
STATUSES = ["pass"] * 6 + ["fail", "unsupported", "conflict", "skip", "error"]


def _matrix(root: Path, per_axis: int) -> Path:
    """4 pythons x numpy x pandas x 2 scipy x 2 cuda: 16 * per_axis**2 cells (10,000 at 25)."""
    versions = ", ".join(f'"1.{i}"' for i in range(per_axis))
    path = root / "big.yml"
    path.write_text(
        "name: scale\n"
        "matrix:\n"
        '  python: ["3.10", "3.11", "3.12", "3.13"]\n'
        f"  numpy: [{versions}]\n"
        f"  pandas: [{versions}]\n"
        '  scipy: ["1.13.1", "~=1.14"]\n'
        '  cuda: ["none", "12.4"]\n'
        "expect:\n"
        '  - {match: {python: "3.13", cuda: "12.4"}, status: fail, reason: "no cu124 wheels"}\n'
    )
    return path


def _cell(index: int, cell_id: str, axes: dict[str, str]) -> dict[str, object]:
    status = STATUSES[index % len(STATUSES)]
    failing = status != "pass"
    return {
        "id": cell_id,
        "axes": axes,
        "status": status,
        "category": "abi-numpy" if failing else None,
        "message": f"cell {index}: A module compiled using NumPy 1.x cannot be run in NumPy 2"
        if failing
        else "",
        "hint": "pin numpy<2" if failing else "",
        "python": {"version": axes["python"] + ".4", "implementation": "cpython", "abi": "cp3"},
        "resolved": {"numpy": axes["numpy"], "pandas": axes["pandas"], "scipy": "1.14.1"},
        "probes": [
            {
                "probe": "import",
                "target": module,
                "status": "fail" if failing and module == "pandas" else "pass",
                "category": "abi-numpy" if failing and module == "pandas" else None,
                "message": "",
                "hint": "",
                "duration_s": 0.123,
            }
            for module in ("numpy", "pandas", "scipy")
        ],
        "durations": {"build": 12.5, "probes": 1.25},
    }


def _shards(root: Path, matrix: Path) -> tuple[list[Path], int]:
    """The cell files as the report job finds them: one folder per shard artifact."""
    cells = expand(load_matrix(matrix))
    dirs = [root / "shards" / f"shard-{n:03d}" / "cells" for n in range(SHARDS)]
    for directory in dirs:
        directory.mkdir(parents=True)
    for index, cell in enumerate(cells):
        document = _cell(index, cell.id, cell.axes)
        (dirs[index % SHARDS] / f"{cell.id}.json").write_text(json.dumps(document))
    return [d.parent for d in dirs], len(cells)


def _env() -> dict[str, str]:
    """The user's environment: bytecode written and reused (no PYTHONDONTWRITEBYTECODE)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO / "src")
    return env


def _best(argv: list[str], repeat: int) -> tuple[float, subprocess.CompletedProcess[str]]:
    best = float("inf")
    proc: subprocess.CompletedProcess[str] | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=600, check=False, cwd=REPO, env=_env()
        )
        best = min(best, time.perf_counter() - started)
        if proc.returncode not in (0, 1, 3):
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    assert proc is not None
    return best, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells-per-axis", type=int, default=25, help="default: 10,000 cells")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the generated files here")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="compat-bench-scale-"))
    try:
        matrix = _matrix(root, args.cells_per_axis)
        shard_dirs, count = _shards(root, matrix)
        cli = [sys.executable, "-m", "compat_matrix"]

        plan_s, plan = _best([*cli, "plan", str(matrix), "--github", "--gpu-label", "gpu"], 3)
        include = json.loads(plan.stdout)["include"]
        planned = sum(entry["count"] for entry in include)

        out = root / "report"
        merge = [*cli, "report", *map(str, shard_dirs), "-o", str(out), "--matrix", str(matrix)]
        report_s, _ = _best(merge, args.repeat)
        md_bytes = (out / "compat.md").stat().st_size
        html_bytes = (out / "compat.html").stat().st_size
        # Last night: every 7th cell had the other verdict, so tonight has changes to show.
        baseline = root / "baseline.json"
        document = json.loads((out / "compat.json").read_text())
        for cell in document["cells"][::7]:
            cell["status"] = "fail" if cell["status"] == "pass" else "pass"
        baseline.write_text(json.dumps(document))
        nightly_s, _ = _best([*merge, "--baseline", str(baseline)], args.repeat)
        nightly_md = (out / "compat.md").stat().st_size

        rows = [
            (
                "plan --github",
                f"{plan_s:.2f} s",
                f"< {PLAN_TARGET_S:.0f} s",
                plan_s < PLAN_TARGET_S,
            ),
            (
                "  jobs / cells planned",
                f"{len(include)} / {planned}",
                f"<= 256 / {count}",
                len(include) <= 256 and planned == count,
            ),
            (
                "report (256 shard folders)",
                f"{report_s:.2f} s",
                f"< {REPORT_TARGET_S:.0f} s",
                report_s < REPORT_TARGET_S,
            ),
            (
                "report --baseline",
                f"{nightly_s:.2f} s",
                f"< {REPORT_TARGET_S:.0f} s",
                nightly_s < REPORT_TARGET_S,
            ),
            ("compat.md", f"{md_bytes / 1024:.0f} KiB", "< 1024 KiB", md_bytes < MIB),
            (
                "compat.md with changes",
                f"{nightly_md / 1024:.0f} KiB",
                "< 1024 KiB",
                nightly_md < MIB,
            ),
            ("compat.html", f"{html_bytes / MIB:.1f} MiB", "(informational)", True),
        ]
        print(f"compat-matrix scale benchmark: {count} cells, best of {args.repeat}")
        for name, value, target, ok in rows:
            print(f"  {name:<28} {value:>14}  {target:<16} {'ok' if ok else 'MISSED'}")
        if args.keep:
            shutil.copytree(root, args.keep, dirs_exist_ok=True)
        return 0 if all(ok for *_, ok in rows) else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
