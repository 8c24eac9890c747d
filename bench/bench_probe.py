"""Benchmark: `nox -s probe` on the default matrix against the noxfile a user would otherwise write.

The baseline is one parametrized nox session per cell with the venv backend, `pip install` and
`python -c "import ..."`, run with the same parallelism (`-j auto`). Both are measured warm
(download caches filled by a priming run) in the same process, and the report says where our
time goes: interpreter discovery, environment build, probes, report.

Usage: python bench/bench_probe.py [--matrix FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from compat_matrix.build import pythons  # noqa: E402
from compat_matrix.build.requirements import requirements_for  # noqa: E402
from compat_matrix.matrix.expand import expand  # noqa: E402
from compat_matrix.matrix.load import load_matrix  # noqa: E402
from compat_matrix.reports.publish import publish  # noqa: E402

BASELINE_NOXFILE = """\
import nox

CELLS = {cells!r}


@nox.session(venv_backend="venv", allow_parallel=True)
@nox.parametrize("python,requirements,modules", [c[1:] for c in CELLS], ids=[c[0] for c in CELLS])
def cell(session, requirements, modules):
    session.install(*requirements)
    for module in modules:
        session.run("python", "-c", f"import {{module}}")
"""


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=3600,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--matrix", default=str(REPO / "matrix" / "default.yml"))
    parser.add_argument("--keep", help="work directory to keep (default: a temporary one)")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="compat-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    matrix = load_matrix(Path(args.matrix))
    cells = expand(matrix)
    started = time.perf_counter()
    found = pythons.discover()
    discovery_s = time.perf_counter() - started
    cores = os.cpu_count() or 1

    # --- ours -------------------------------------------------------------------------------
    env = dict(
        os.environ,
        COMPAT_MATRIX=args.matrix,
        COMPAT_REPORT_DIR=str(work / "report"),
        COMPAT_ENV_DIR=str(work / "envs"),
        NO_COLOR="1",
    )
    ours = [
        sys.executable,
        "-m",
        "nox",
        "-f",
        str(REPO / "noxfile.py"),
        "--envdir",
        str(work / ".nox"),
        "-s",
        "probe",
    ]
    _timed(ours, env, work)  # priming: fills uv's cache and builds the environments
    ours_reused = _timed(ours, env, work)
    shutil.rmtree(work / "envs")
    ours_fresh = _timed(ours, env, work)
    document = json.loads((work / "report" / "compat.json").read_text())
    build_s = sum(c["durations"].get("build", 0.0) for c in document["cells"])
    probes_s = sum(c["durations"].get("probes", 0.0) for c in document["cells"])
    started = time.perf_counter()
    publish(work / "report", matrix.name, [c.id for c in cells])
    report_s = time.perf_counter() - started

    # --- baseline ---------------------------------------------------------------------------
    baseline_cells = []
    for cell in cells:
        interpreter = pythons.select(found, cell.python or "3")
        if interpreter is None:
            continue
        requirements = requirements_for(cell.packages, matrix.packages, matrix.base_dir)
        modules = [m for m in cell.packages if cell.packages[m] != "none"]
        baseline_cells.append((cell.id, str(interpreter.path), requirements, modules))
    base = work / "baseline"
    base.mkdir(exist_ok=True)
    (base / "noxfile.py").write_text(BASELINE_NOXFILE.format(cells=baseline_cells))
    baseline = [sys.executable, "-m", "nox", "-f", str(base / "noxfile.py"), "-j", "auto"]
    _timed(baseline, dict(os.environ), base)  # priming: fills pip's cache
    baseline_s = _timed(baseline, dict(os.environ), base)

    ideal = probes_s / cores
    print(
        textwrap.dedent(f"""\
        compat-matrix bench: {matrix.name}, {len(cells)} cells ({len(baseline_cells)} with an
        interpreter here), {cores} cores, warm download caches

          baseline: nox + venv + pip install + python -c import (-j auto)  {baseline_s:8.2f} s
          compat-matrix nox -s probe, environments reused                  {ours_reused:8.2f} s   {baseline_s / ours_reused:6.1f}x faster
          compat-matrix nox -s probe, environments rebuilt                 {ours_fresh:8.2f} s   {baseline_s / ours_fresh:6.1f}x faster

        where compat-matrix's time goes (rebuilt run; build and probes summed over cells):
          interpreter discovery (cached)  {discovery_s * 1000:8.1f} ms
          environment build               {build_s:8.2f} s
          probes                          {probes_s:8.2f} s   (ideal wall time on {cores} cores: {ideal:.2f} s)
          report (merge + 4 files)        {report_s * 1000:8.1f} ms
          reused run vs probes/cores      {ours_reused / ideal if ideal else float("nan"):6.2f}x   (target: within 2x)
        """)
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
