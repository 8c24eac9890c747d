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
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compat_matrix import children
from compat_matrix.resources import probes_dir
from compat_matrix.results import ProbeResult, PythonInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["PROBE_SCRIPTS", "ProbeRun", "probes_dir", "run_probe", "run_probe_set"]

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

#: Runs a cell's probes in one interpreter (probes/probe_set.py); see run_probe_set.
PROBE_SET_SCRIPT = "probe_set.py"


@dataclass
class ProbeRun:
    """One probe script's output: its results plus whatever else its JSON document carries."""

    name: str
    results: list[ProbeResult]
    python: PythonInfo | None = None
    document: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    stderr: str = ""
    #: The probe set answered with what it kept from an earlier run on the same files.
    reused: bool = False


#: Never passed to a probe: they would change what the environment imports.
_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")


#: OpenBLAS's idle workers spin for ~2^28 cycles (0.1 s) after they start, before they sleep: on
#: every `import numpy` (and scipy, with its own copy), one core per worker, taken from the cells
#: running beside it. The shortest timeout OpenBLAS accepts (4: 2^4 cycles, its floor) makes
#: them sleep at once; the same threads still start with the same buffers, so nothing an import
#: can fail on changes. A value the user set, under either name, is kept.
_OPENBLAS_TIMEOUTS = ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")


def _probe_env(extra: dict[str, str] | None) -> dict[str, str]:
    """The probes' environment. PYTHONDONTWRITEBYTECODE is dropped: an environment that
    compat-matrix built gets bytecode as a user's does, so a warm run does not compile pandas
    again on every probe; `audit` (someone else's environment) sets it back through `extra`."""
    env = {
        k: v for k, v in os.environ.items() if k not in _DROPPED and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    if not any(name in env for name in _OPENBLAS_TIMEOUTS):
        env[_OPENBLAS_TIMEOUTS[0]] = "4"
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


class _CannotStart(Exception):
    """The interpreter could not be started (only that: a full temporary disk still raises)."""


def _run_script(
    python: Path, argv: list[str], timeout: float, env: dict[str, str] | None
) -> tuple[bytes, bytes, int, bool]:
    """`python ARGV` from an empty temporary folder (its own temporary folders go inside it, so
    they go with it): stdout, stderr, exit status, and whether it was killed at `timeout`."""
    with children.temporary_folder("compat-probe-") as cwd, ExitStack() as stack:
        try:
            proc = stack.enter_context(
                children.spawn(
                    [str(python), *argv],
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env={**_probe_env(env), "TMPDIR": str(cwd)},
                )
            )
        except OSError as exc:
            raise _CannotStart(f"cannot start {python}: {exc}") from exc
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            children.kill_group(proc.pid)
            out, err = proc.communicate()
            return out, err, proc.returncode, True
        return out, err, proc.returncode, False


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
    try:
        out, err, returncode, timed_out = _run_script(python, [str(script), *args], timeout, env)
    except _CannotStart as exc:
        return _error(name, str(exc), started)
    stderr = err.decode("utf-8", "replace")
    if timed_out:
        return _error(name, f"probe did not finish within {timeout:.0f} s", started, stderr)
    try:
        document = json.loads(out.decode("utf-8", "replace"))
        return _probe_run(name, document, time.monotonic() - started, stderr)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        status = (
            f"exit status {returncode}"
            if returncode >= 0
            else (f"signal {signal.Signals(-returncode).name}")
        )
        return _error(name, f"probe printed no valid JSON ({status}): {exc}", started, stderr)


def _probe_run(name: str, document: dict[str, Any], duration_s: float, stderr: str) -> ProbeRun:
    results = [ProbeResult.from_dict(item) for item in document.get("results", [])]
    python_info = document.get("python")
    return ProbeRun(
        name=name,
        results=results,
        python=PythonInfo.from_dict(python_info) if isinstance(python_info, dict) else None,
        document=document,
        duration_s=duration_s,
        stderr=stderr,
    )


def run_probe_set(
    python: Path,
    spec: dict[str, Any],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
) -> tuple[dict[str, ProbeRun], str]:
    """Run the probes of `spec` in one interpreter (probes/probe_set.py, which documents
    `spec`): the runs it reported, by name, and its stderr.

    Never raises for anything the probes do: a probe missing from the answer (the process
    crashed, hung or printed garbage) is the caller's to run on its own.
    """
    python = python.absolute()
    script = probes_dir() / PROBE_SET_SCRIPT
    if timeout <= 0:
        return {}, ""
    try:
        out, err, _, _ = _run_script(python, [str(script), json.dumps(spec)], timeout, env)
    except _CannotStart as exc:
        return {}, str(exc)
    runs: dict[str, ProbeRun] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            item = json.loads(line)
            name = str(item["probe"])
            run = _probe_run(name, item["document"], float(item["duration_s"]), "")
            if item.get("reused") is True:  # read nothing this run: it took no time
                run.results = [replace(r, duration_s=run.duration_s) for r in run.results]
                run.reused = True
            runs[name] = run
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a torn last line: that probe is run again on its own
    return runs, err.decode("utf-8", "replace")
