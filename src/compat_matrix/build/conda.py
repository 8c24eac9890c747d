"""`backend: conda`: conda environments built in-process-tree with the rattler engine.

No binary is needed: py-rattler (the solver and installer behind pixi) is a dependency of
compat-matrix. Each cell is one solve from its `channels:` (strict priority) with the cell's
Python, conda specs and CUDA specs (CONDA_OVERRIDE_CUDA honoured for the `__cuda` virtual
package), then pip for the `pip:` list, as micromamba cells do, sharing their specs, pip step,
lock and reuse rule (environments.py). The solve answers an `@EXPLICIT` lock before anything is
installed; an environment whose lock (plus the pip step and the installer's environment) is
unchanged is reused. The final lock is written from the environment's own `conda-meta` records.

rattler runs in a child process (conda_worker.py), which leaves without interpreter teardown:
py-rattler 0.28 was seen to crash at exit after an install. Packages are fetched once into a
package cache shared by every cell, `<compat-matrix cache>/conda/pkgs`, and hard-linked.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compat_matrix.build.backends import (
    _MARKER,
    CondaSolution,
    EnvBackend,
    EnvRequest,
    PreparedEnv,
    _env_python,
    _fingerprint,
    _has_local_requirement,
    _installer_env,
    _lock_body,
    _mark_ready,
    _reusable,
    _run,
    _run_split,
    _timed_out,
    _Timeout,
    cache_dir,
    conda_meta_records,
    conda_pip_command,
    conda_specs,
    explicit_lock,
    pip_log,
    with_pip_pins,
)
from compat_matrix.build.install_errors import InstallFailure, classify_pip, classify_rattler

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["RATTLER_MISSING", "CondaBackend", "rattler_available"]

_WORKER = Path(__file__).with_name("conda_worker.py")

RATTLER_MISSING = (
    "the conda backend needs py-rattler, which is not installed for this Python "
    "(py-rattler has wheels for CPython 3.10 and newer)"
)
_RATTLER_HINT = (
    "pip install py-rattler into compat-matrix's environment (it comes with compat-matrix on "
    "Python 3.10+), or use backend: micromamba with a micromamba binary"
)


def rattler_available() -> bool:
    """Whether py-rattler can be imported by the harness's interpreter."""
    return importlib.util.find_spec("rattler") is not None


class CondaBackend(EnvBackend):
    """One rattler solve (the lock), then a rattler install and pip, or a reused environment."""

    name = "conda"

    def __init__(self, *, cache: Path | None = None, python: str | None = None) -> None:
        self.cache = cache or cache_dir()
        #: The interpreter that runs the worker: the harness's own, which has py-rattler.
        self.python = python or sys.executable

    def environment(
        self, request: EnvRequest, base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The worker's and pip's environment: CONDA_OVERRIDE_CUDA from the cell, no user site."""
        env = _installer_env() if base is None else dict(base)
        env.update(request.env)
        env["PYTHONNOUSERSITE"] = "1"
        return env

    def worker_request(self, envdir: Path, request: EnvRequest) -> dict[str, Any]:
        """The JSON the worker reads: channels, specs and where the shared caches are."""
        return {
            "channels": list(request.channels),
            "specs": conda_specs(request),
            "prefix": str(envdir),
            "pkgs_dir": str(self.cache / "conda" / "pkgs"),
            "repodata_cache": str(self.cache / "conda" / "repodata"),
            # rattler's own names for the matrix's `resolution` and `as-of`
            "strategy": request.resolution,
            "exclude_newer": request.exclude_newer(),
        }

    def _worker(
        self, mode: str, payload: dict[str, Any], env: Mapping[str, str], timeout: float
    ) -> tuple[dict[str, Any], str]:
        """Run the worker; (its answer, a log). A dead worker is an answer with `error`."""
        status, out, err = _run_split(
            [self.python, "-I", str(_WORKER), mode],
            stdin=json.dumps(payload),
            timeout=timeout,
            env=env,
        )
        log = err
        try:
            answer = json.loads(out)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            return {
                "ok": False,
                "error": "WorkerDied",
                "message": f"the rattler worker exited with status {status}: {(out + err)[-800:]}",
            }, log
        return answer, log

    def solve(self, envdir: Path, request: EnvRequest, *, timeout: float) -> CondaSolution:
        """Solve without installing: would this cell's conda part solve, and to what?"""
        if not rattler_available():
            return CondaSolution(failure=InstallFailure("error", "backend", RATTLER_MISSING))
        payload = self.worker_request(envdir, request)
        try:
            answer, log = self._worker("solve", payload, self.environment(request), timeout)
        except _Timeout as exc:
            return CondaSolution(failure=_timed_out(exc))
        if not answer.get("ok"):
            message = str(answer.get("message", ""))
            return CondaSolution(
                failure=classify_rattler(str(answer.get("error", "")), message),
                log=log + message,
            )
        records = {
            str(r["name"]): (str(r.get("version", "")), str(r.get("build", "")))
            for r in answer.get("records") or ()
        }
        return CondaSolution(records=records, log=log)

    def fingerprint(self, request: EnvRequest, lock_text: str, envdir: Path) -> str:
        """Reuse key: the solved lock, the pip step, the installer's environment variables."""
        return _fingerprint(
            self.name,
            _lock_body(lock_text),
            json.dumps(conda_pip_command(envdir, request)[3:]),
            json.dumps(sorted(request.env.items())),
        )

    def _prepare(self, envdir: Path, request: EnvRequest, deadline: float) -> PreparedEnv:
        result = PreparedEnv(envdir=envdir, python=_env_python(envdir))
        if not rattler_available():
            result.failure = InstallFailure("error", "backend", RATTLER_MISSING, _RATTLER_HINT)
            return result
        env = self.environment(request)
        payload = self.worker_request(envdir, request)
        try:
            answer, log = self._worker("solve", payload, env, deadline - time.monotonic())
            result.log += log
            if not answer.get("ok"):
                message = str(answer.get("message", ""))
                result.log += message
                result.failure = classify_rattler(str(answer.get("error", "")), message)
                return result
            solved = explicit_lock(answer.get("records") or [])
            result.fingerprint = self.fingerprint(request, solved, envdir)
            if _reusable(envdir, result.fingerprint) and not _has_local_requirement(
                request.requirements
            ):
                result.reused = True
                marker = json.loads((envdir / _MARKER).read_text("utf-8"))
                result.lock_text = str(marker["lock"])
                return result
            if envdir.exists():
                shutil.rmtree(envdir)
            payload["expect"] = [r.get("url") for r in answer.get("records") or ()]
            answer, log = self._worker("install", payload, env, deadline - time.monotonic())
            result.log += log
            if not answer.get("ok"):
                message = str(answer.get("message", ""))
                result.log += message
                result.failure = classify_rattler(str(answer.get("error", "")), message)
                return result
            if request.requirements:
                status, output = _run(
                    conda_pip_command(envdir, request),
                    timeout=deadline - time.monotonic(),
                    env=env,
                )
                result.log += output
                if status != 0:
                    result.failure = classify_pip(
                        output, only_binary=request.only_binary, log=pip_log(envdir)
                    )
                    return result
            lock = explicit_lock(conda_meta_records(envdir))
            result.lock_text = with_pip_pins(
                lock, envdir, request, env=env, deadline=deadline, result=result
            )
            _mark_ready(envdir, result.fingerprint, result.lock_text)
        except _Timeout as exc:
            result.failure = _timed_out(exc)
        return result
