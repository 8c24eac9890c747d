"""Benchmark: the harness's own cost per cell at 20 cells and at 300, through both front doors.

Target (issue 12): 300 cheap cells cost at most 1.1x per cell what 20 cost, so nothing the
pipeline does per cell (publishing, progress, result collection) grows with the matrix. The
cells are the cheapest a run has: interpreters this machine does not have (`skip`, no
download, no environment), so every second measured is the harness's bookkeeping, which is
what could grow with the matrix (building and probing a cell does not depend on its size).
Each size runs `--repeat` times (default once: 300 nox sessions take a minute) through `compat-matrix run -j 2` and through `nox -s probe`
(a session per cell), alternating sizes; the best time of each is divided by the cell count.
The 20-cell figure is the baseline of the same front door in the same run. Interpreter start-up
and discovery are counted once per run, as a user pays them (so they favour the bigger run;
the figure without them, from the first cell's start to the last cell's end, is printed too).

Usage: python bench/bench_cells.py [--repeat N] [--small N] [--large N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.1
NOXFILE = """\
import compat_matrix.nox

compat_matrix.nox.register("compat.yml")
"""


def _matrix(folder: Path, cells: int) -> None:
    """`cells` cells on interpreters that do not exist: 4 pythons x cells/4 versions of six."""
    versions = ", ".join(f'"1.{i}.0"' for i in range(cells // 4))
    folder.mkdir(parents=True)
    (folder / "compat.yml").write_text(
        f'name: cheap\nmatrix:\n  python: ["3.96", "3.97", "3.98", "3.99"]\n  six: [{versions}]\n'
    )
    (folder / "noxfile.py").write_text(NOXFILE)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPAT_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode written, as on a user's machine
    env["PYTHONPATH"] = str(REPO / "src")
    return env


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _run(folder: Path, door: str) -> tuple[float, float]:
    """Wall seconds of one run, and of its cells alone (first cell started to last ended)."""
    shutil.rmtree(folder / "compat-report", ignore_errors=True)
    shutil.rmtree(folder / ".nox", ignore_errors=True)
    if door == "run":
        argv = [sys.executable, "-m", "compat_matrix", "run", "-j", "2"]
    else:
        argv = [_tool("nox"), "-s", "probe"]  # nox runs a session per core
    started = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=folder, env=_env(), capture_output=True, text=True, timeout=900, check=False
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    ended = sorted(p.stat().st_mtime for p in (folder / "compat-report" / "cells").glob("*.json"))
    per = (ended[-1] - ended[0]) / max(len(ended) - 1, 1) * len(ended)
    return wall, per


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--large", type=int, default=300)
    parser.add_argument("--doors", default="run,nox", help="run, nox or both (default)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="compat-bench-cells-"))
    ok = True
    try:
        sizes = (args.small, args.large)
        for size in sizes:
            _matrix(root / str(size), size)
        print(
            f"compat-matrix per-cell cost: {args.small} vs {args.large} cheap cells (skip: no "
            f"such interpreter), -j 2, best of {args.repeat}; a shared machine is noisy"
        )
        for door in args.doors.split(","):
            best: dict[int, tuple[float, float]] = {}
            for _ in range(args.repeat):
                for size in sizes:
                    wall, cells_only = _run(root / str(size), door)
                    old = best.get(size)
                    best[size] = (
                        (min(wall, old[0]), min(cells_only, old[1]))
                        if old
                        else (
                            wall,
                            cells_only,
                        )
                    )
            small = best[args.small][0] / args.small
            large = best[args.large][0] / args.large
            ratio = large / small
            met = ratio <= TARGET_RATIO
            ok = ok and met
            name = "compat-matrix run" if door == "run" else "nox -s probe"
            inner_small = best[args.small][1] / args.small
            inner_large = best[args.large][1] / args.large
            print(
                f"  {name:<18} {args.large} cells: {large * 1000:6.1f} ms/cell  baseline "
                f"{args.small} cells: {small * 1000:6.1f} ms/cell  ratio {ratio:.2f}x "
                f"(target <= {TARGET_RATIO}x) {'ok' if met else 'MISSED'}"
            )
            print(
                f"  {'':<18} cells alone: {inner_large * 1000:6.1f} vs {inner_small * 1000:6.1f} "
                f"ms/cell, ratio {inner_large / max(inner_small, 1e-9):.2f}x"
            )
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
