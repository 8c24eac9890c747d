"""Benchmark the static ELF/ABI pass against pyelftools, readelf and auditwheel on one environment.

Usage: ``python bench/bench_elf.py [SITE_PACKAGES] [--runs N] [--cold] [--workdir DIR]``

Without SITE_PACKAGES it measures a torch CPU environment (torch 2.13.0+cpu and numpy on Python
3.11: 35 ELF files, 489 MiB), built once under ``--workdir`` (default
``$XDG_CACHE_HOME/compat-matrix/bench-elf``) with the wheel from ``pip download`` (pip's own
configuration knows where the CPU build lives) and its dependencies from the index through uv.

Every contender reads the same files in the same run and the best of N runs is reported, with
the ratio to ``_elf``.  Contenders that are not installed (pyelftools, auditwheel) or not on PATH
(readelf) are skipped.  The parity section checks that DT_NEEDED lists (in order) and
version-need sets agree with readelf for every file.

- ``fastelf_deps``: ``_elf`` reading DT_NEEDED + ``.gnu.version_r`` (what the other tools read);
- ``full_static_pass``: the whole ``abi_probe`` pass (resolution in glibc order, verdef, PyInit,
  undefined symbols, NumPy fingerprint), environment scan included, every run from a cold
  symbol-hash memo (as in a fresh probe process);
- ``full_pass_subprocess``: the same as a user runs it: ``python abi_probe.py`` in a new process,
  interpreter start-up included;
- ``static_pass_no_undef``: the same without the undefined-symbol check (no other tool does it);
- ``pyelftools_deps``: pyelftools reading DT_NEEDED + version needs;
- ``readelf_per_file`` / ``readelf_batched``: ``readelf -d -V -W`` once per file / once for all;
- ``auditwheel_lddtree``: auditwheel's vendored lddtree ``ldd()`` on every file;
- ``auditwheel_analysis``: lddtree + versioned symbols + ``elf_is_python_extension``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROBES = Path(__file__).resolve().parent.parent / "probes"
sys.path.insert(0, str(PROBES))
sys.path.insert(0, str(PROBES.parent / "src"))

import _elf  # noqa: E402
import abi_probe  # noqa: E402

from compat_matrix.build.backends import find_uv  # noqa: E402

Deps = dict[str, tuple[list[str], set[tuple[str, str]]]]


def elf_files(site: str) -> list[str]:
    env = _elf.Environment(str(Path(site).parent), [site], sys.executable)
    out = []
    for f in env.scan():
        with open(f.path, "rb") as fh:  # noqa: PTH123 - the raw fd matters here
            if fh.read(4) == b"\x7fELF":
                out.append(f.path)
    return out


def fastelf_deps(files: list[str]) -> Deps:
    out: Deps = {}
    for p in files:
        with _elf.ElfFile(p) as elf:
            out[p] = (list(elf.needed), {(f, v) for f, v, _w, _i in elf.version_needs()})
    return out


TORCH_CPU = "torch==2.13.0+cpu"  # PyPI has no +cpu file: no silent multi-GB CUDA download


def full_static_pass(site: str) -> Callable[[], Any]:
    def run() -> Any:
        _elf._hash_cache.clear()  # a probe process starts with no memoised symbol hashes
        return abi_probe.run(None, [site])

    return run


def full_pass_subprocess(python: str, site: str) -> Callable[[], Any]:
    """The probe as the harness runs it: a new interpreter process per environment."""
    argv = [python, "-I", str(PROBES / "abi_probe.py"), "--site", site]

    def run() -> Any:
        return subprocess.run(argv, capture_output=True, timeout=300, check=False).returncode

    return run


def python_startup(python: str) -> Callable[[], Any]:
    """What ``full_pass_subprocess`` pays before the probe's first line runs."""
    return lambda: subprocess.run([python, "-I", "-c", "0"], timeout=60, check=False).returncode


def torch_cpu_site(workdir: Path) -> tuple[str, str]:
    """(python, site-packages) of the torch CPU benchmark environment, built on first use."""
    env = workdir / "torch-cpu-py311"
    py = env / "bin" / "python"
    stamp = env / "bench-complete"
    if not stamp.exists():
        uv = find_uv()
        if uv is None:
            raise SystemExit("uv is needed to build the torch CPU environment (pip install uv)")
        wheels = workdir / "wheels"
        print(f"building the benchmark environment in {env} ...", flush=True)
        # pip, not uv: pip's configuration (index, find-links) is where the CPU wheel is found.
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"),
                *("--python-version", "3.11", "-q", "-d", str(wheels), TORCH_CPU),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        found = sorted(wheels.glob("torch-*+cpu-*.whl"))
        if proc.returncode != 0 or not found:
            raise SystemExit(
                f"pip download {TORCH_CPU} failed; pass a site-packages directory instead\n"
                + proc.stderr[-2000:]
            )
        python = sys.executable if sys.version_info[:2] == (3, 11) else "3.11"
        subprocess.run(
            [uv, "venv", "-q", "--clear", "-p", python, str(env)], check=True, timeout=300
        )
        subprocess.run(
            [uv, "pip", "install", "-q", "-p", str(py), str(found[0]), "numpy"],
            check=True,
            timeout=900,
        )
        stamp.write_text(found[0].name + "\n")
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    return str(py), site


def _default_workdir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "compat-matrix" / "bench-elf"


def pyelftools_deps(files: list[str]) -> Deps:
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    out: Deps = {}
    for p in files:
        with open(p, "rb") as fh:  # noqa: PTH123
            elf = ELFFile(fh)
            needed: list[str] = []
            needs: set[tuple[str, str]] = set()
            for sec in elf.iter_sections():
                if isinstance(sec, DynamicSection):
                    needed = [t.needed for t in sec.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
                elif isinstance(sec, GNUVerNeedSection):
                    for verneed, auxes in sec.iter_versions():
                        needs.update((verneed.name, a.name) for a in auxes)
            out[p] = (needed, needs)
    return out


def _parse_readelf(text: str) -> Deps:
    out: Deps = {}
    current: str | None = None
    section = ""
    vfile = ""
    for line in text.splitlines():
        m = re.match(r"^File: (.+)$", line)
        if m:
            current = m.group(1)
            out[current] = ([], set())
            continue
        if current is None:
            continue
        m = re.search(r"\(NEEDED\)\s+Shared library: \[(.*)\]", line)
        if m:
            out[current][0].append(m.group(1))
            continue
        if line.startswith("Version needs section"):
            section = "r"
        elif line.startswith(("Version definition section", "Version symbols section")):
            section = ""
        elif section == "r":
            m = re.search(r"File: (\S+)", line)
            if m:
                vfile = m.group(1)
            m = re.search(r"Name: (\S+)\s+Flags", line)
            if m:
                out[current][1].add((vfile, m.group(1)))
    return out


def readelf_per_file(readelf: str, files: list[str]) -> Deps:
    out: Deps = {}
    for p in files:
        text = subprocess.run(
            [readelf, "-d", "-V", "-W", p], capture_output=True, text=True, timeout=300, check=False
        ).stdout
        out.update(_parse_readelf(f"File: {p}\n{text}"))
    return out


def readelf_batched(readelf: str, files: list[str]) -> Deps:
    text = subprocess.run(
        [readelf, "-d", "-V", "-W", *files],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    ).stdout
    if len(files) == 1:
        text = f"File: {files[0]}\n{text}"
    return _parse_readelf(text)


def auditwheel_lddtree(files: list[str]) -> None:
    from auditwheel.lddtree import ldd

    for p in files:
        ldd(Path(p))


def auditwheel_analysis(files: list[str]) -> None:
    from auditwheel.elfutils import elf_find_versioned_symbols, elf_is_python_extension
    from auditwheel.lddtree import ldd
    from elftools.elf.elffile import ELFFile

    for p in files:
        ldd(Path(p))
        with open(p, "rb") as fh:  # noqa: PTH123
            elf = ELFFile(fh)
            list(elf_find_versioned_symbols(elf))
            elf_is_python_extension(Path(p), elf)


def calibrate() -> float:
    """Seconds for a fixed pure-Python loop: compare machines (and loaded ones) by it."""
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        s = 0
        for i in range(1_000_000):
            s += i
        best = min(best, time.perf_counter() - t)
    return best


def static_pass_without_symbols(site: str) -> Callable[[], Any]:
    """The abi_probe pass minus the undefined-symbol check (what the other tools cover)."""

    def run() -> Any:
        saved = abi_probe.Checker.check_symbols
        abi_probe.Checker.check_symbols = lambda *_a: None  # type: ignore[method-assign,assignment]
        _elf._hash_cache.clear()
        try:
            return abi_probe.run(None, [site])
        finally:
            abi_probe.Checker.check_symbols = saved  # type: ignore[method-assign]

    return run


def _python_of(site: str) -> str | None:
    """The interpreter of the environment owning ``site`` (``<prefix>/bin/python``), if any."""
    for parent in Path(site).parents:
        cand = parent / "bin" / "python"
        if cand.exists():
            return str(cand)
    return None


def best_of(
    fn: Callable[[], Any], runs: int, cold: list[str] | None = None
) -> tuple[float, list[float], Any]:
    times = []
    result = None
    for _ in range(runs):
        if cold:
            evict(cold)
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), times, result


def evict(files: list[str]) -> None:
    """Drop the files from the page cache (posix_fadvise DONTNEED) for a cold-read measurement."""
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "site", nargs="?", help="a site-packages directory (default: the torch CPU environment)"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="evict the files before each run")
    parser.add_argument("--workdir", type=Path, default=None, help="where the torch env is built")
    args = parser.parse_args(argv)
    if args.site is None:
        python, site = torch_cpu_site(args.workdir or _default_workdir())
    else:
        site = str(Path(args.site).resolve())
        python = _python_of(site)
    files = elf_files(site)
    total = sum(Path(p).stat().st_size for p in files)
    print(
        f"python {sys.version.split()[0]}, {len(files)} ELF files, {total} bytes "
        f"({total / 2**20:.1f} MiB), site {site}"
    )
    print(f"calibration: a 1M-iteration Python loop takes {calibrate() * 1000:.1f} ms here")
    cold = files if args.cold else None
    rows: list[tuple[str, float, list[float]]] = []
    results: dict[str, Deps] = {}

    def bench(name: str, fn: Callable[[], Any]) -> None:
        best, times, res = best_of(fn, args.runs, cold)
        rows.append((name, best, times))
        if isinstance(res, dict) and name.endswith(("_deps", "_file", "_batched")):
            results[name] = res

    bench("fastelf_deps", lambda: fastelf_deps(files))
    bench("full_static_pass", full_static_pass(site))
    bench("static_pass_no_undef", static_pass_without_symbols(site))
    if python:
        bench("full_pass_subprocess", full_pass_subprocess(python, site))
        bench("python_startup_only", python_startup(python))
    try:
        t = time.perf_counter()
        import elftools.elf.elffile  # noqa: F401

        print(f"pyelftools import: {(time.perf_counter() - t) * 1000:.1f} ms")
        bench("pyelftools_deps", lambda: pyelftools_deps(files))
    except ImportError:
        print("pyelftools not installed: skipped")
    readelf = shutil.which("readelf")
    if readelf:
        bench("readelf_per_file", lambda: readelf_per_file(readelf, files))
        bench("readelf_batched", lambda: readelf_batched(readelf, files))
    else:
        print("readelf not on PATH: skipped")
    try:
        import auditwheel.lddtree  # noqa: F401

        bench("auditwheel_lddtree", lambda: auditwheel_lddtree(files))
        bench("auditwheel_analysis", lambda: auditwheel_analysis(files))
    except ImportError:
        print("auditwheel not installed: skipped")

    base = {name: best for name, best, _t in rows}
    print(
        f"\n{'contender':<22} {'best':>10}  {'x fastelf_deps':>14} {'x full pass':>12}   runs (ms)"
    )
    for name, best, times in rows:
        runs = ", ".join(f"{t * 1000:.1f}" for t in times)
        print(
            f"{name:<22} {best * 1000:>8.2f}ms  {best / base['fastelf_deps']:>13.1f}x "
            f"{best / base['full_static_pass']:>11.2f}x   {runs}"
        )
    full = base["full_static_pass"]
    print(f"\nfull static pass: best {full * 1000:.1f} ms warm (target: under 100 ms)")
    for name, what in (
        ("pyelftools_deps", "pyelftools reading only DT_NEEDED + version needs"),
        ("readelf_per_file", "readelf -d -V -W per file"),
        ("readelf_batched", "readelf -d -V -W on all files at once"),
        ("auditwheel_analysis", "auditwheel's lddtree + versioned symbols + extension scan"),
    ):
        if name in base:
            print(f"  {base[name] / full:6.1f}x faster than {what} ({base[name] * 1000:.1f} ms)")
    reference = results.get("readelf_batched") or results.get("readelf_per_file")
    if reference:
        print()
        for name, res in results.items():
            same = sum(1 for p in files if res.get(p) == reference.get(p))
            print(f"parity {name:<18} vs readelf: {same}/{len(files)} files identical")
        needed = sum(len(v[0]) for v in reference.values())
        vers = sum(len(v[1]) for v in reference.values())
        print(f"totals: {needed} NEEDED entries, {vers} version-need entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
