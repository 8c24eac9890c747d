"""Benchmark: the framework accuracy suite (tests/accuracy/) against pip's ground truth.

Three timings in one run, on the same machine state: the suite cold (a fresh environment folder:
every cell built, the wheels from uv's cache), the suite warm (the same folder again: unchanged
cells reuse their environments and only probe), and the ground truth (``ground_truth.py``: a
fresh pip venv and one real operation per cell, the wheels from pip's cache), printed with the
ratios. Run it once beforehand to fill both download caches: a first download is network time,
not compat-matrix's or pip's.

Bytecode: ``PYTHONDONTWRITEBYTECODE`` is passed through unchanged to both (the report prints it);
pip byte-compiles what it installs whatever its value, uv does not (its default).

The whole suite takes long on a small machine (every framework cell built twice over, an hour on
2 cores), so by default it times the pandas and scikit-learn matrices; ``--only all`` (or, under
``nox -s bench``, ``BENCH_ACCURACY_ONLY=all``) times every matrix, ``--only jax,torch`` some.

Usage: python bench/bench_accuracy.py [--only jax,torch] [--jobs 2] [--keep DIR]
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
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from test_accuracy import MATRICES, run_matrix  # noqa: E402


def _suite(matrices: list[Path], work: Path, label: str, jobs: int) -> tuple[float, int]:
    started = time.perf_counter()
    cells = 0
    for path in matrices:
        cells += len(run_matrix(path, work / f"report-{label}" / path.stem, jobs=jobs))
    return time.perf_counter() - started, cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        default=os.environ.get("BENCH_ACCURACY_ONLY", "pandas,scikit-learn"),
        help="matrix names, comma-separated, or all (default: pandas,scikit-learn)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="cells in parallel, for both")
    parser.add_argument("--keep", type=Path, help="keep environments and reports here")
    args, _ = parser.parse_known_args(argv)
    names = [n for n in args.only.split(",") if n and n != "all"]
    matrices = [p for p in MATRICES if not names or p.stem in names]
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-accuracy-"))
    os.environ["COMPAT_ACCURACY_ENV_DIR"] = str(work / "envs")
    try:
        cold, cells = _suite(matrices, work, "cold", args.jobs)
        warm, _ = _suite(matrices, work, "warm", args.jobs)
        started = time.perf_counter()
        for path in matrices:
            subprocess.run(
                [
                    sys.executable,
                    str(REPO / "tests" / "accuracy" / "ground_truth.py"),
                    "--only",
                    path.stem,
                    "--jobs",
                    str(args.jobs),
                    "--output",
                    str(work / f"truth-{path.stem}.json"),
                    "--scratch",
                    str(work),
                ],
                check=True,
                timeout=7200,
            )
        truth = time.perf_counter() - started
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    bytecode = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
    print(f"accuracy suite: {cells} cells of {', '.join(p.stem for p in matrices)}, -j {args.jobs}")
    print(f"  compat-matrix cold (fresh envs, warm caches) {cold:8.1f} s")
    print(f"  compat-matrix warm (envs reused)             {warm:8.1f} s")
    print(f"  pip ground truth (fresh venvs, warm cache)   {truth:8.1f} s")
    print(f"  cold / ground truth {cold / truth:.2f}x, warm / ground truth {warm / truth:.2f}x")
    print(
        f"  PYTHONDONTWRITEBYTECODE={bytecode or '(unset)'} for both runs: runtime bytecode "
        + ("writing off" if bytecode else "writing on")
        + "; pip byte-compiles at install, uv does not"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
