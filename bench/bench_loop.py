"""Benchmark: compat-matrix against the loop it replaces, warm and cold, with every probe on.

The loop a user would otherwise write is a noxfile with one session per cell,
`session.install(*requirements)` and `python -c "import numpy, pandas"`. Measured side by side
in one process, on the same cells (Python 3.10-3.13 x numpy x pandas, 5 cells), same machine:

* warm: `compat-matrix run` with its environments from a previous run (the file-reading probes'
  answers reused while no file changed, as by default; `--reprobe`, reading every file again,
  is printed beside it), against `nox -r` and
  `nox -r -j auto` reusing theirs; target: >= 3x faster than both, and within 1.5x of the floor
  = the sum over cells and import targets of a bare `python -c "import TARGET"` (each target
  alone, as the import probe imports it) / cores + harness start-up (`compat-matrix --version`).
* cold: `compat-matrix run` with an empty environment folder (download cache warm), against
  `uv venv` + `uv pip install` of the very locks compat-matrix wrote + the imports, run one cell
  after another as a user runs them by hand; target: within 1.3x.

Bytecode writing is on for every side (PYTHONDONTWRITEBYTECODE removed), as on a user's machine
or a GitHub runner; `--no-bytecode` sets it for every side instead. Each figure is the best of
`--repeat` rounds (5), and the sides compared are measured by turns, once each a round (the
warm sides and the floor, then the cold ones): this machine's speed drifts by a third from one
minute to the next, and sides measured minutes apart compared the drift. Beside each ratio of
the bests, the median of the rounds' own ratios (each round's sides seconds apart) shows how
much of it the drift decides. Exit status 1 when a target is missed.

Usage: python bench/bench_loop.py [--repeat N] [--keep DIR] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from compat_matrix.build import pythons  # noqa: E402
from compat_matrix.build.backends import find_uv  # noqa: E402

MATRIX = """\
name: loop-bench
backend: uv
matrix:
  python: ["3.10", "3.11", "3.12", "3.13"]
  numpy: ["2.2.6"]
  pandas: ["2.2.3"]
  include:
    - {python: "3.12", numpy: "1.26.4", pandas: "2.2.3"}
"""

BASELINE_NOXFILE = """\
import nox

CELLS = {cells!r}


@nox.session(venv_backend="venv", reuse_venv=True)
@nox.parametrize("python,requirements", [c[1:] for c in CELLS], ids=[c[0] for c in CELLS])
def cell(session, requirements):
    session.install(*requirements)
    session.run("python", "-c", "import numpy, pandas")
"""

#: The cells' import targets: the import probe imports each in its own process.
TARGETS = ("numpy", "pandas")
WARM_TARGET = 3.0
FLOOR_TARGET = 1.5
COLD_TARGET = 1.3


def _timed(argv: list[str], env: dict[str, str], cwd: Path, *, check: bool = False) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=3600
    )
    elapsed = time.perf_counter() - started
    if check and done.returncode not in (0, 1):
        sys.exit(f"bench: {argv[:3]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def _by_turns(sides: dict[str, Callable[[], float]], repeat: int) -> dict[str, list[float]]:
    """`repeat` rounds of each side's time, the sides measured one after another in each
    round (not each side's runs in a row)."""
    seen: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeat):
        for name, measure in sides.items():
            seen[name].append(measure())
    return seen


def _best(seen: dict[str, list[float]]) -> dict[str, float]:
    return {name: min(times) for name, times in seen.items()}


def _paired(baseline: list[float], ours: list[float]) -> float:
    """The median over rounds of baseline / ours, each round's two measured seconds apart:
    the ratio with the host's drift taken out, printed beside the ratio of the bests."""
    return statistics.median(b / o if o else float("inf") for b, o in zip(baseline, ours))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", help="work directory to keep (default: a temporary one)")
    parser.add_argument("--no-bytecode", action="store_true")
    args = parser.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="compat-loop-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "compat.yml").write_text(MATRIX)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if args.no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(NO_COLOR="1", COMPAT_ENV_DIR=str(work / "envs"))
    env.pop("COMPAT_MATRIX", None)
    cli = [str(Path(sys.executable).parent / "compat-matrix")]
    if not Path(cli[0]).exists():
        cli = [sys.executable, "-m", "compat_matrix"]
    ours = [*cli, "run", "-o", str(work / "report")]
    cores = os.cpu_count() or 1

    # --- priming: download cache, environments, locks; nox's environments ----------------------
    _timed(ours, env, work, check=True)
    cells = json.loads((work / "report" / "compat.json").read_text())["cells"]
    found = pythons.discover()
    baseline_cells = []
    for cell in cells:
        interpreter = pythons.select(found, cell["axes"]["python"])
        if interpreter is None:
            continue
        requirements = [f"{name}=={cell['axes'][name]}" for name in ("numpy", "pandas")]
        baseline_cells.append((cell["id"], str(interpreter.path), requirements))
    base = work / "baseline"
    base.mkdir(exist_ok=True)
    (base / "noxfile.py").write_text(BASELINE_NOXFILE.format(cells=baseline_cells))
    nox = [sys.executable, "-m", "nox", "-f", str(base / "noxfile.py")]
    _timed([*nox, "-r"], env, base)  # builds nox's environments, fills pip's cache

    # --- the floor: each import target alone, bare, in the environments compat-matrix built ----
    cpu_seen: list[float] = []

    def bare_imports() -> float:
        total = 0.0
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for cell in cells:
            python = work / "envs" / cell["id"] / "bin" / "python"
            for target in TARGETS:
                total += _timed([str(python), "-c", f"import {target}"], env, work)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_seen.append(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        )  # bare, OpenBLAS's idle workers spin ~0.1 s after numpy's import: CPU above wall time
        return total

    # --- warm, by turns: each side once a round, so that all of them meet the same minutes of a
    # shared machine (its speed drifts by a third from one minute to the next); best of rounds.
    warm_sides = {
        "warm": lambda: _timed(ours, env, work, check=True),
        "reprobe": lambda: _timed([*ours, "--reprobe"], env, work, check=True),
        "nox -r": lambda: _timed([*nox, "-r"], env, base),
        "nox -r -j auto": lambda: _timed([*nox, "-r", "-j", "auto"], env, base),
        "bare imports": bare_imports,
        "start-up": lambda: _timed([*cli, "--version"], env, work),
    }
    warm_seen = _by_turns(warm_sides, args.repeat)
    best = _best(warm_seen)
    warm, reprobe, nox_r, nox_rj = (
        best[k] for k in ("warm", "reprobe", "nox -r", "nox -r -j auto")
    )
    imports_s, startup = best["bare imports"], best["start-up"]
    imports_cpu = min(cpu_seen)
    floor = imports_s / cores + startup
    _timed(ours, env, work, check=True)  # the last warm run's report: where its time goes
    cells = json.loads((work / "report" / "compat.json").read_text())["cells"]
    stages = {key: sum(c["durations"].get(key, 0.0) for c in cells) for key in ("build", "probes")}
    per_probe: dict[str, float] = {}
    for cell in cells:
        for probe in cell["probes"]:
            name = probe["probe"]
            per_probe[name] = per_probe.get(name, 0.0) + float(probe.get("duration_s") or 0.0)

    # --- cold, by turns: compat-matrix from an empty environment folder, and the same locks
    # installed by hand with uv, then the imports ------------------------------------------------
    uv = find_uv()
    by_hand = work / "by-hand"
    locks = {cell["id"]: work / "report" / cell["lock"] for cell in cells}
    kept_locks = work / "locks-by-hand"
    shutil.rmtree(kept_locks, ignore_errors=True)
    kept_locks.mkdir()
    for cell_id, lock in locks.items():  # a cold run rewrites them: the by-hand side keeps these
        shutil.copyfile(lock, kept_locks / f"{cell_id}.txt")

    def cold_ours() -> float:
        shutil.rmtree(work / "envs", ignore_errors=True)
        return _timed(ours, env, work, check=True)  # its locks go with the folder

    def cold_by_hand() -> float:
        shutil.rmtree(by_hand, ignore_errors=True)
        by_hand.mkdir()
        started = time.perf_counter()
        for cell in cells:
            folder = by_hand / cell["id"]
            interpreter = pythons.select(found, cell["axes"]["python"])
            assert interpreter is not None
            lock = kept_locks / f"{cell['id']}.txt"
            subprocess.run(
                [uv, "venv", "-q", "--python", str(interpreter.path), str(folder)],
                env=env, check=True, capture_output=True, timeout=600,
            )  # fmt: skip
            subprocess.run(
                [uv, "pip", "install", "-q", "--python", str(folder / "bin" / "python"),
                 "-r", str(lock)],
                env=env, check=True, capture_output=True, timeout=600,
            )  # fmt: skip
            subprocess.run(
                [str(folder / "bin" / "python"), "-c", "import numpy, pandas"],
                env=env, check=True, capture_output=True, timeout=600,
            )  # fmt: skip
        return time.perf_counter() - started

    cold_seen = _by_turns({"cold": cold_ours, "uv by hand": cold_by_hand}, args.repeat)
    best = _best(cold_seen)
    cold, uv_cold = best["cold"], best["uv by hand"]
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)

    def ratio(baseline: float, value: float) -> float:
        return baseline / value if value else float("inf")

    checks = [
        ("warm vs nox -r", ratio(nox_r, warm), WARM_TARGET, ">="),
        ("warm vs nox -r -j auto", ratio(nox_rj, warm), WARM_TARGET, ">="),
        ("warm / floor", warm / floor, FLOOR_TARGET, "<="),
        ("cold / uv by hand", cold / uv_cold, COLD_TARGET, "<="),
    ]
    floors = [i / cores + s for i, s in zip(warm_seen["bare imports"], warm_seen["start-up"])]
    paired = [
        _paired(warm_seen["nox -r"], warm_seen["warm"]),
        _paired(warm_seen["nox -r -j auto"], warm_seen["warm"]),
        _paired(warm_seen["warm"], floors),
        _paired(cold_seen["cold"], cold_seen["uv by hand"]),
    ]
    bytecode = "off (PYTHONDONTWRITEBYTECODE=1)" if args.no_bytecode else "on"
    lines = [
        f"compat-matrix vs the loop it replaces: {len(cells)} cells (numpy x pandas x Python "
        f"3.10-3.13), {cores} cores, every probe on, bytecode {bytecode} for every side, best of "
        f"{args.repeat}",
        "",
        f"  compat-matrix run, warm                      {warm:8.2f} s",
        f"  compat-matrix run --reprobe, warm            {reprobe:8.2f} s   (every file read again)",
        f"  nox -r (venv + pip, reused)                  {nox_r:8.2f} s",
        f"  nox -r -j auto                               {nox_rj:8.2f} s",
        f"  floor: bare imports {imports_s:5.2f} s / {cores} cores + start-up "
        f"{startup:4.2f} s {floor:8.2f} s",
        f"  (the same imports' CPU time: {imports_cpu:5.2f} s, / {cores} cores + start-up "
        f"{imports_cpu / cores + startup:.2f} s)",
        f"  compat-matrix run, cold (no envs, no locks)  {cold:8.2f} s",
        f"  uv venv + uv pip install lock + imports      {uv_cold:8.2f} s   (one cell after another)",
        "",
        "  where a warm run's time goes (summed over cells): build (lock + sync) "
        f"{stages['build']:.2f} s, probes {stages['probes']:.2f} s: "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sorted(per_probe.items())),
        "",
    ]
    missed = 0
    for (name, value, target, sense), median in zip(checks, paired):
        ok = value >= target if sense == ">=" else value <= target
        missed += not ok
        verdict = "ok" if ok else "MISSED"
        lines.append(
            f"  {name:26s} {value:6.2f}x   (target {sense} {target}x)   {verdict:6s}   "
            f"median of the rounds' own ratios {median:.2f}x"
        )
    print("\n".join(lines))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
