"""Environment backends behind one small interface: build a clean env for a cell, or reuse it.

Each backend turns (interpreter, requirements) into a ready environment plus a lock text, and
classifies its own failures. An environment is reused when its fingerprint (backend,
interpreter, resolved lock) is unchanged, so a warm run costs one resolve per cell.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from .install_errors import InstallFailure, classify_pip, classify_uv
from .pythons import Interpreter

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "BACKEND_CLASSES",
    "EnvBackend",
    "EnvRequest",
    "PreparedEnv",
    "UvBackend",
    "VenvBackend",
    "find_uv",
    "get_backend",
]

_MARKER = ".compat-env.json"
_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")
_NETWORK_RETRY_DELAY_S = 2.0


@dataclass(frozen=True)
class EnvRequest:
    """What a cell needs installed."""

    interpreter: Interpreter
    requirements: tuple[str, ...]
    only_binary: bool = True
    #: Direct references (local projects, URLs): built from source even when only_binary.
    build_from_source: tuple[str, ...] = ()

    def binary_args(self) -> list[str]:
        """`--only-binary :all:` plus a `--no-binary` exemption per direct reference (uv, pip)."""
        if not self.only_binary:
            return []
        args = ["--only-binary", ":all:"]
        for name in self.build_from_source:
            args += ["--no-binary", name]
        return args


@dataclass
class PreparedEnv:
    """The outcome of preparing an environment: ready (failure is None) or classified."""

    envdir: Path
    python: Path
    lock_text: str = ""
    log: str = ""
    reused: bool = False
    failure: InstallFailure | None = None
    fingerprint: str = ""
    timings: dict[str, float] = field(default_factory=dict)


class _Timeout(Exception):
    def __init__(self, argv: list[str], seconds: float) -> None:
        super().__init__(
            f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} "
            f"did not finish within {seconds:.0f} s"
        )


def _run(argv: list[str], *, timeout: float, stdin: str | None = None) -> tuple[int, str]:
    """Run argv, returning (exit status, combined output). Raises _Timeout."""
    if timeout <= 0:
        raise _Timeout(argv, 0)
    try:
        proc = subprocess.run(
            argv,
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            env=_installer_env(),
        )
    except subprocess.TimeoutExpired as exc:
        raise _Timeout(argv, timeout) from exc
    return proc.returncode, proc.stdout


def _installer_env() -> dict[str, str]:
    env = dict(os.environ)
    # A user's activated venv or PYTHONPATH must not leak into the cell's environment.
    for key in (
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "PYTHONHOME",
        "CONDA_PREFIX",
        "PIP_REQUIRE_VIRTUALENV",
    ):
        env.pop(key, None)
    env.setdefault("UV_NO_PROGRESS", "1")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _env_python(envdir: Path) -> Path:
    return envdir / "bin" / "python"


def parse_lock(lock_text: str) -> dict[str, str]:
    """`name==version` pins of a lock/freeze text (direct references are skipped)."""
    pins: dict[str, str] = {}
    for line in lock_text.splitlines():
        match = _LOCK_LINE.match(line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def _fingerprint(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _reusable(envdir: Path, fingerprint: str) -> bool:
    try:
        marker = json.loads((envdir / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker.get("fingerprint") == fingerprint and _env_python(envdir).exists()


def _mark_ready(envdir: Path, fingerprint: str, lock_text: str) -> None:
    (envdir / _MARKER).write_text(
        json.dumps({"fingerprint": fingerprint, "lock": lock_text}), encoding="utf-8"
    )


def _lock_body(lock_text: str) -> str:
    """The lock without comments, so a regenerated header does not defeat reuse."""
    return "\n".join(
        line.split("#", 1)[0].rstrip()
        for line in lock_text.splitlines()
        if line.split("#", 1)[0].strip()
    )


def _has_local_requirement(requirements: tuple[str, ...]) -> bool:
    return any("file://" in req or req.startswith("/") for req in requirements)


class EnvBackend(ABC):
    """Build or reuse the environment of one cell."""

    name: ClassVar[str]

    @abstractmethod
    def prepare(self, envdir: Path, request: EnvRequest, *, timeout: float) -> PreparedEnv:
        """Create (or reuse) `envdir` with `request` installed; never raises for install errors."""

    def _with_retry(self, attempt: Callable[[], PreparedEnv]) -> PreparedEnv:
        """Run `attempt`, once more after a pause when the index was unreachable."""
        result = attempt()
        if result.failure is not None and result.failure.retryable:
            time.sleep(_NETWORK_RETRY_DELAY_S)
            result = attempt()
        return result


def find_uv() -> str | None:
    """uv from the harness's own environment first (the pinned dependency), then PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return str(beside)
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


class UvBackend(EnvBackend):
    """`uv pip compile` (the lock) then `uv venv` + `uv pip sync`: one resolve, hardlinked files."""

    name = "uv"

    def __init__(self, uv: str | None = None) -> None:
        self.uv = uv or find_uv() or "uv"

    def prepare(self, envdir: Path, request: EnvRequest, *, timeout: float) -> PreparedEnv:
        deadline = time.monotonic() + timeout
        return self._with_retry(lambda: self._prepare(envdir, request, deadline))

    def _prepare(self, envdir: Path, request: EnvRequest, deadline: float) -> PreparedEnv:
        python = _env_python(envdir)
        result = PreparedEnv(envdir=envdir, python=python)
        interpreter = str(request.interpreter.path)
        try:
            lock_text = ""
            if request.requirements:
                started = time.monotonic()
                status, output = _run(
                    [
                        self.uv,
                        "pip",
                        "compile",
                        "-",
                        "--quiet",
                        "--no-header",
                        "--python",
                        interpreter,
                        *request.binary_args(),
                    ],
                    stdin="\n".join(request.requirements) + "\n",
                    timeout=deadline - time.monotonic(),
                )
                result.timings["resolve"] = time.monotonic() - started
                result.log += output
                if status != 0:
                    result.failure = classify_uv(output, only_binary=request.only_binary)
                    return result
                lock_text = output
            result.lock_text = lock_text
            result.fingerprint = _fingerprint(
                self.name,
                interpreter,
                request.interpreter.version,
                _lock_body(lock_text),
                str(request.only_binary),
            )
            local = _has_local_requirement(request.requirements)
            if _reusable(envdir, result.fingerprint) and not local:
                result.reused = True
                return result
            started = time.monotonic()
            status, output = _run(
                [
                    self.uv,
                    "venv",
                    "--quiet",
                    "--clear",
                    "--no-python-downloads",
                    "--python",
                    interpreter,
                    str(envdir),
                ],
                timeout=deadline - time.monotonic(),
            )
            result.log += output
            if status != 0:
                result.failure = classify_uv(output, only_binary=request.only_binary)
                return result
            if lock_text:
                lock_file = envdir / "compat-lock.txt"
                lock_file.write_text(lock_text, encoding="utf-8")
                status, output = _run(
                    [
                        self.uv,
                        "pip",
                        "sync",
                        "--quiet",
                        "--python",
                        str(python),
                        *request.binary_args(),
                        str(lock_file),
                    ],
                    timeout=deadline - time.monotonic(),
                )
                result.log += output
                if status != 0:
                    result.failure = classify_uv(output, only_binary=request.only_binary)
                    return result
            result.timings["install"] = time.monotonic() - started
            _mark_ready(envdir, result.fingerprint, lock_text)
        except _Timeout as exc:
            result.failure = InstallFailure(
                "error", "timeout", str(exc), "raise the matrix `timeout:` or check the index"
            )
        return result


class VenvBackend(EnvBackend):
    """`python -m venv` + `pip install`: the stdlib way, for projects that must match it."""

    name = "venv"

    def prepare(self, envdir: Path, request: EnvRequest, *, timeout: float) -> PreparedEnv:
        deadline = time.monotonic() + timeout
        return self._with_retry(lambda: self._prepare(envdir, request, deadline))

    def _prepare(self, envdir: Path, request: EnvRequest, deadline: float) -> PreparedEnv:
        python = _env_python(envdir)
        result = PreparedEnv(envdir=envdir, python=python)
        interpreter = str(request.interpreter.path)
        # pip has no separate resolve step: the fingerprint covers the requested specifiers.
        result.fingerprint = _fingerprint(
            self.name,
            interpreter,
            request.interpreter.version,
            "\n".join(request.requirements),
            str(request.only_binary),
        )
        try:
            if _reusable(envdir, result.fingerprint) and not _has_local_requirement(
                request.requirements
            ):
                result.reused = True
                result.lock_text = json.loads((envdir / _MARKER).read_text("utf-8"))["lock"]
                return result
            started = time.monotonic()
            status, output = _run(
                [interpreter, "-m", "venv", "--clear", str(envdir)],
                timeout=deadline - time.monotonic(),
            )
            result.log += output
            if status != 0:
                result.failure = InstallFailure(
                    "error", "install", output.strip()[-800:], "python -m venv failed"
                )
                return result
            if request.requirements:
                status, output = _run(
                    [
                        str(python),
                        "-m",
                        "pip",
                        "install",
                        "--no-input",
                        *request.binary_args(),
                        *request.requirements,
                    ],
                    timeout=deadline - time.monotonic(),
                )
                result.log += output
                if status != 0:
                    result.failure = classify_pip(output, only_binary=request.only_binary)
                    return result
            status, output = _run(
                [str(python), "-m", "pip", "freeze", "--all"], timeout=deadline - time.monotonic()
            )
            result.lock_text = output if status == 0 else ""
            result.timings["install"] = time.monotonic() - started
            _mark_ready(envdir, result.fingerprint, result.lock_text)
        except _Timeout as exc:
            result.failure = InstallFailure(
                "error", "timeout", str(exc), "raise the matrix `timeout:` or check the index"
            )
        return result


BACKEND_CLASSES: dict[str, type[EnvBackend]] = {"uv": UvBackend, "venv": VenvBackend}


def get_backend(name: str) -> EnvBackend | None:
    """The backend called `name`, or None when it is not available on this machine."""
    cls = BACKEND_CLASSES.get(name)
    return cls() if cls is not None else None
