"""Run the stdlib-only probe scripts with a cell's own interpreter and read their JSON.

Probes run from an empty temporary directory (so the source tree is never imported) with the
user's PYTHONPATH/PYTHONHOME removed; a probe that crashes or prints garbage becomes an
`error` result instead of taking the cell down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compat_matrix import children
from compat_matrix.resources import probes_dir
from compat_matrix.results import ProbeResult, PythonInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["PROBE_SCRIPTS", "ProbeRun", "probes_dir", "run_probe"]

#: Probe name -> script file in probes/.
PROBE_SCRIPTS: dict[str, str] = {
    "environment": "environment.py",
    "import": "import_probe.py",
    "abi": "abi_probe.py",
    "gpu-arch": "gpu_arch_probe.py",
    "native": "native_probe.py",
    "cuda": "cuda_probe.py",
    "consistency": "consistency_probe.py",
    # Not a cell probe: reads another platform's wheels for a static-only verdict.
    "wheel": "wheel_probe.py",
}


@dataclass
class ProbeRun:
    """One probe script's output: its results plus whatever else its JSON document carries."""

    name: str
    results: list[ProbeResult]
    python: PythonInfo | None = None
    document: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    stderr: str = ""


def _probe_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
    }
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


def _error(name: str, message: str, started: float, stderr: str = "") -> ProbeRun:
    return ProbeRun(
        name=name,
        results=[
            ProbeResult(
                probe=name,
                target="probe",
                status="error",
                category="probe-error",
                message=message,
                hint="the probe itself failed: rerun; if it persists, report a compat-matrix bug",
                duration_s=round(time.monotonic() - started, 3),
                details={"stderr_tail": stderr[-2000:]},
            )
        ],
        duration_s=time.monotonic() - started,
        stderr=stderr,
    )


def run_probe(
    python: Path,
    name: str,
    args: Sequence[str] = (),
    *,
    timeout: float,
    env: dict[str, str] | None = None,
) -> ProbeRun:
    """Run probe `name` under `python`; never raises for anything the probe does."""
    started = time.monotonic()
    python = python.absolute()  # the probe runs from a temporary directory
    script = probes_dir() / PROBE_SCRIPTS[name]
    if timeout <= 0:
        return _error(name, "no time left in the cell's timeout to run this probe", started)
    with children.temporary_folder("compat-probe-") as cwd:
        try:
            with children.spawn(
                [str(python), str(script), *args],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # The probe's own temporary folders go inside ours, so they go with it.
                env={**_probe_env(env), "TMPDIR": str(cwd)},
            ) as proc:
                try:
                    out, err = proc.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    children.kill_group(proc.pid)
                    out, err = proc.communicate()
                    return _error(
                        name,
                        f"probe did not finish within {timeout:.0f} s",
                        started,
                        err.decode("utf-8", "replace"),
                    )
        except OSError as exc:
            return _error(name, f"cannot start {python}: {exc}", started)
    stderr = err.decode("utf-8", "replace")
    try:
        document = json.loads(out.decode("utf-8", "replace"))
        results = [ProbeResult.from_dict(item) for item in document.get("results", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        status = (
            f"exit status {proc.returncode}"
            if proc.returncode >= 0
            else (f"signal {signal.Signals(-proc.returncode).name}")
        )
        return _error(name, f"probe printed no valid JSON ({status}): {exc}", started, stderr)
    python_info = document.get("python")
    return ProbeRun(
        name=name,
        results=results,
        python=PythonInfo.from_dict(python_info) if isinstance(python_info, dict) else None,
        document=document,
        duration_s=time.monotonic() - started,
        stderr=stderr,
    )
