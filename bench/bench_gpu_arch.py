"""Benchmark the static GPU-architecture pass against the static ELF pass it runs beside.

Usage: ``python bench/bench_gpu_arch.py [--venv DIR] [--runs N] [--requirement REQ ...]``

Builds (once, with uv) a CUDA environment under ``--venv`` (default: NVIDIA's curand and nvjpeg
wheels plus numpy: 128 MB of ``.nv_fatbin`` device code, thousands of fat-binary entries), then
times, as a user's cell runs them, ``python abi_probe.py`` and ``python gpu_arch_probe.py
--gpu ...`` in fresh processes (interpreter start-up included), best of N. It prints both times
and the ratio of the gpu-arch pass to the abi pass: the cost of adding GPU coverage to a cell.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from compat_matrix.build.backends import find_uv  # noqa: E402

PROBES = REPO / "probes"
DEFAULT_REQUIREMENTS = ("nvidia-curand-cu12==10.3.10.19", "nvidia-nvjpeg-cu12==12.4.0.76", "numpy")
GPUS = ("A100=sm_80", "H100=sm_90", "RTX 5090=sm_120")


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _build(venv: Path, requirements: list[str]) -> None:
    uv = find_uv()
    if uv is None:
        sys.exit("uv is needed to build the benchmark environment")
    if not _python(venv).exists():
        subprocess.run(
            [uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=300
        )
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(_python(venv)), *requirements],
        check=True,
        timeout=1800,
    )


def _best(argv: list[str], runs: int) -> tuple[float, dict]:
    best = float("inf")
    document: dict = {}
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run(argv, cwd=cwd, capture_output=True, check=False, timeout=600)
            best = min(best, time.perf_counter() - started)
            document = json.loads(done.stdout)
    return best, document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=str(Path(tempfile.gettempdir()) / "compat-bench-gpu"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requirement", action="append", help="what to install instead")
    args = parser.parse_args()
    venv = Path(args.venv)
    _build(venv, args.requirement or list(DEFAULT_REQUIREMENTS))
    python = str(_python(venv))
    abi_s, _ = _best([python, str(PROBES / "abi_probe.py")], args.runs)
    gpu_args = [arg for gpu in GPUS for arg in ("--gpu", gpu)]
    gpu_s, document = _best([python, str(PROBES / "gpu_arch_probe.py"), *gpu_args], args.runs)
    summary = document["results"][-1]
    print(f"environment: {venv} ({', '.join(args.requirement or DEFAULT_REQUIREMENTS)})")
    print(f"gpu-arch says: {summary['message']}")
    print(f"abi probe (static ELF pass):     {abi_s * 1000:8.1f} ms")
    print(f"gpu-arch probe (.nv_fatbin pass): {gpu_s * 1000:8.1f} ms")
    print(f"ratio gpu-arch / abi: {gpu_s / abi_s:.2f}; the cell's static pass grows by that")
    return 0


if __name__ == "__main__":
    sys.exit(main())
