"""Run one cell end to end: interpreter -> environment -> probes -> verdict -> cells/<id>.json.

Whatever happens inside (a crashing probe, a hanging import, a harness bug) the cell ends with a
result on disk, written atomically, so one cell can never cost the others theirs.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import pythons
from .environments import EnvRequest, get_backend, parse_lock
from .probing import run_probe
from .requirements import NOT_PACKAGES, requirements_for, source_built, value_kind
from .results import CellResult, ProbeResult, read_cell_result, write_atomic, write_cell_result
from .verdicts import cell_verdict, expectation_outcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .matrix import Cell, Matrix
    from .probing import ProbeRun

__all__ = ["RunSettings", "cell_fingerprint", "default_imports", "run_cell"]

#: Installer tooling that is part of every venv, not of the cell's answer.
_TOOLING = frozenset({"pip", "setuptools", "wheel"})
#: Per-import cap, so one hanging import cannot eat the whole cell budget.
_IMPORT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class RunSettings:
    report_dir: Path
    env_root: Path
    resume: bool = False


def _axis_distributions(cell: Cell) -> list[str]:
    return [
        name
        for name, value in cell.axes.items()
        if name not in NOT_PACKAGES and value_kind(value) != "none"
    ]


def cell_fingerprint(matrix: Matrix, cell: Cell, interpreter: pythons.Interpreter | None) -> str:
    """Hash of everything that decides a cell's answer; `--resume` keeps results that match it."""
    payload = {
        "axes": cell.axes,
        "packages": list(matrix.packages),
        "backend": matrix.backend,
        "only_binary": matrix.only_binary,
        "imports": list(matrix.imports) if matrix.imports is not None else None,
        "probes": list(matrix.probes),
        "python": [str(interpreter.path), interpreter.version] if interpreter else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def default_imports(cell: Cell, top_level: dict[str, list[str]]) -> list[str]:
    """Top-level modules of each axis distribution (scikit-learn -> sklearn)."""
    return _top_level_targets(_axis_distributions(cell), top_level)


def _top_level_targets(dists: Sequence[str], top_level: dict[str, list[str]]) -> list[str]:
    targets: list[str] = []
    for dist in dists:
        modules = top_level.get(dist) or [dist.replace("-", "_").replace(".", "_").lower()]
        targets.extend(m for m in modules if m not in targets)
    return targets


def _resumable(path: Path, fingerprint: str) -> CellResult | None:
    try:
        existing = read_cell_result(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if existing.fingerprint == fingerprint and existing.status != "error":
        return existing
    return None


def run_cell(
    matrix: Matrix,
    cell: Cell,
    settings: RunSettings,
    interpreters: Sequence[pythons.Interpreter],
) -> CellResult:
    """Run `cell` and write its result; returns the result (possibly resumed from disk)."""
    requested = cell.python or "3"
    interpreter = (
        pythons.select(interpreters, requested)
        if cell.python
        else (interpreters[-1] if interpreters else None)
    )
    fingerprint = cell_fingerprint(matrix, cell, interpreter)
    cell_file = settings.report_dir / "cells" / f"{cell.id}.json"
    if settings.resume and (existing := _resumable(cell_file, fingerprint)) is not None:
        return existing
    try:
        result = _run(matrix, cell, settings, interpreter, interpreters)
    except Exception as exc:  # noqa: BLE001 - nothing is lost: a harness bug is an `error` verdict
        result = CellResult(
            id=cell.id,
            axes=dict(cell.axes),
            status="error",
            category="harness",
            message=f"{type(exc).__name__}: {exc}",
            hint="compat-matrix itself failed on this cell: rerun, and report it if it persists",
        )
    result.fingerprint = fingerprint
    result.expectation = expectation_outcome(matrix.expect, cell.axes, result.status)
    write_cell_result(settings.report_dir, result)
    return result


def _run(
    matrix: Matrix,
    cell: Cell,
    settings: RunSettings,
    interpreter: pythons.Interpreter | None,
    interpreters: Sequence[pythons.Interpreter],
) -> CellResult:
    if interpreter is None:
        return CellResult(
            id=cell.id,
            axes=dict(cell.axes),
            status="skip",
            category="no-interpreter",
            message=pythons.describe_missing(interpreters, cell.python or "3"),
            hint=(
                "install that Python (pyenv install, uv python install) or drop it from the matrix"
            ),
        )
    backend = get_backend(matrix.backend)
    if backend is None:
        return CellResult(
            id=cell.id,
            axes=dict(cell.axes),
            status="error",
            category="backend",
            message=f"the {matrix.backend} backend is not available in this version",
            hint="use backend: uv or backend: venv",
        )
    deadline = time.monotonic() + matrix.timeout
    requirements = requirements_for(cell.packages, matrix.packages, matrix.base_dir)
    started = time.monotonic()
    env = backend.prepare(
        settings.env_root / cell.id,
        EnvRequest(
            interpreter,
            tuple(requirements),
            matrix.only_binary,
            tuple(source_built(cell.packages, matrix.packages, matrix.base_dir)),
        ),
        timeout=matrix.timeout,
    )
    build_s = time.monotonic() - started
    lock_rel = f"locks/{cell.id}.txt"
    write_atomic(settings.report_dir / lock_rel, env.lock_text or "")
    log = [f"$ {backend.name} install {' '.join(requirements)}", env.log]
    if env.failure is not None:
        write_atomic(settings.report_dir / "logs" / f"{cell.id}.log", "\n".join(log))
        return CellResult(
            id=cell.id,
            axes=dict(cell.axes),
            status=env.failure.status,
            category=env.failure.category,
            message=env.failure.message,
            hint=env.failure.hint,
            resolved=parse_lock(env.lock_text),
            durations={"build": round(build_s, 3), "probes": 0.0},
            lock=lock_rel,
        )

    started = time.monotonic()
    runs = _run_probes(matrix, cell, env.python, deadline)
    probes_s = time.monotonic() - started
    log.extend(f"--- {run.name} probe stderr ---\n{run.stderr}" for run in runs if run.stderr)
    write_atomic(settings.report_dir / "logs" / f"{cell.id}.log", "\n".join(log))

    environment = runs[0]
    distributions = environment.document.get("distributions") or parse_lock(env.lock_text)
    wanted = {name.lower() for name in cell.packages}
    resolved = {
        str(k): str(v)
        for k, v in sorted(dict(distributions).items())
        if k not in _TOOLING or k in wanted
    }
    findings: list[ProbeResult] = [r for run in runs for r in run.results]
    verdict = cell_verdict(findings)
    return CellResult(
        id=cell.id,
        axes=dict(cell.axes),
        status=verdict.status,
        category=verdict.category,
        message=verdict.message,
        hint=verdict.hint,
        python=environment.python,
        resolved=resolved,
        probes=findings,
        durations={"build": round(build_s, 3), "probes": round(probes_s, 3)},
        lock=lock_rel,
        gpu_unverified=verdict.gpu_unverified,
    )


def _run_probes(matrix: Matrix, cell: Cell, python: Path, deadline: float) -> list[ProbeRun]:
    return probe_environment(
        python,
        matrix.probes,
        dists=_axis_distributions(cell),
        imports=list(matrix.imports) if matrix.imports is not None else None,
        deadline=deadline,
    )


def probe_environment(
    python: Path,
    probes: Sequence[str],
    *,
    dists: Sequence[str] | None,
    imports: Sequence[str] | None,
    deadline: float,
) -> list[ProbeRun]:
    """Run the environment probe, then each of `probes`, under `python`.

    `dists` are the distributions whose top-level modules are the default import targets
    (None: every distribution installed, as `audit` does); `imports` overrides those targets.
    The environment probe comes first because it names the targets.
    """

    def environment_probe(names: Sequence[str]) -> ProbeRun:
        args = ["--dists", *names] if names else []
        return run_probe(python, "environment", args, timeout=deadline - time.monotonic())

    environment = environment_probe(dists or [])
    if dists is None:
        installed = environment.document.get("distributions") or {}
        dists = [name for name in installed if name not in _TOOLING]
        if dists:
            environment = environment_probe(dists)
    top_level = dict(environment.document.get("top_level") or {})
    runs = [environment]
    for name in probes:
        remaining = deadline - time.monotonic()
        if name == "import":
            targets = list(imports) if imports is not None else _top_level_targets(dists, top_level)
            if not targets:
                continue
            per_target = min(_IMPORT_TIMEOUT_S, max(remaining - 5.0, 1.0))
            runs.append(
                run_probe(
                    python,
                    "import",
                    ["--timeout", f"{per_target:.0f}", *targets],
                    timeout=remaining,
                )
            )
        else:
            runs.append(run_probe(python, name, [], timeout=remaining))
    return runs
