"""`compat-matrix audit --python PATH`: probe an existing environment without building anything.

This is how a platform team checks a base image (a venv, a conda env, a Docker image's
interpreter): the same probes as a matrix cell, over everything installed there, and the same
report files.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from compat_matrix.errors import UsageError
from compat_matrix.matrix.model import PROBES
from compat_matrix.probe.verdicts import cell_verdict
from compat_matrix.reports import ReportPaths, write_reports
from compat_matrix.results import write_atomic, write_cell_result
from compat_matrix.run.cell import cell_result, probe_environment

if TYPE_CHECKING:
    from collections.abc import Sequence

    from compat_matrix.results import CellResult

__all__ = ["audit_environment", "environment_name", "probe_into_result"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def environment_name(python: Path) -> str:
    """`myenv` for myenv/bin/python, the interpreter's own name for a system Python."""
    parent = python.parent
    prefix = parent.parent if parent.name in ("bin", "Scripts") else parent
    return _UNSAFE.sub("_", prefix.name or "root").strip("_") or "env"


def probe_into_result(
    python: Path,
    report_dir: Path,
    *,
    probes: Sequence[str],
    imports: Sequence[str] | None,
    deadline: float,
    cell_id: str | None = None,
    axes: dict[str, str] | None = None,
    build_s: float = 0.0,
    lock: str | None = None,
    read_only: bool = True,
) -> tuple[CellResult, dict[str, list[str]]]:
    """Probe the environment of `python` into one CellResult (its log written beside it).

    Also returns {distribution: top-level modules}. Without `cell_id`/`axes` the cell is named
    and described as an audit of that environment. `read_only` keeps the probes from writing
    bytecode into an environment that is not ours.
    """
    started = time.monotonic()
    runs = probe_environment(
        python,
        probes,
        dists=None,
        imports=imports,
        deadline=deadline,
        env={"PYTHONDONTWRITEBYTECODE": "1"} if read_only else None,
    )
    probes_s = time.monotonic() - started
    environment = runs[0]
    info = environment.python
    version = info.version if info else "unknown"
    if cell_id is None:
        cell_id = f"audit-py{'.'.join(version.split('.')[:2])}-{environment_name(python)}"
    findings = [result for run in runs for result in run.results]
    distributions = environment.document.get("distributions") or {}
    result = cell_result(
        cell_id,
        axes if axes is not None else {"python": version, "environment": str(python)},
        cell_verdict(findings),
        python=info,
        resolved={str(k): str(v) for k, v in sorted(dict(distributions).items())},
        durations={"build": round(build_s, 3), "probes": round(probes_s, 3)},
        lock=lock,
    )
    stderr = "\n".join(f"--- {run.name} ---\n{run.stderr}" for run in runs if run.stderr)
    write_atomic(report_dir / "logs" / f"{cell_id}.log", stderr)
    top_level = {
        str(k): [str(m) for m in v]
        for k, v in dict(environment.document.get("top_level") or {}).items()
    }
    return result, top_level


def audit_environment(
    python: Path,
    report_dir: Path,
    *,
    imports: Sequence[str] | None = None,
    probes: Sequence[str] = PROBES,
    timeout: float = 900.0,
) -> tuple[CellResult, ReportPaths]:
    """Probe the environment of `python` and write its report into `report_dir`."""
    python = python.absolute()  # probes run from a temporary directory
    if not python.exists():
        msg = f"no interpreter at {python}"
        raise UsageError(msg)
    result, _ = probe_into_result(
        python,
        report_dir,
        probes=probes,
        imports=imports,
        deadline=time.monotonic() + timeout,
    )
    write_cell_result(report_dir, result)
    paths = write_reports(report_dir, f"audit of {python}", [result])
    return result, paths
