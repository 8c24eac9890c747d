"""Environment backends behind one small interface: build a clean env for a cell, or reuse it.

Each backend turns (interpreter, requirements) into a ready environment plus a lock text, and
classifies its own failures. An environment is reused when its fingerprint (backend,
interpreter, resolved lock) is unchanged, so a warm run costs one resolve per cell.

conda cells (`conda`, built in on the rattler engine, see build/conda.py; `micromamba`, the
binary) bring their own Python: every conda spec goes into one solve (conda-forge with strict
channel priority unless the request names other channels), then pip installs what conda cannot,
never conda again. The lock is `@EXPLICIT` (URL and hash per package); with pip packages their
pins follow as `# pip: name==version` comment lines, so the file still replays with
`micromamba create -f`. Both conda backends share the specs (`conda_specs`), the pip step
(`conda_pip_command`), the lock (`explicit_lock`, `with_pip_pins`) and reuse rule.

A local project (the package under test, or a path on an axis) counts by the content of its
sources (`source_digest`): the environment is reused while no file changed, and rebuilt, with
the installer's build cache for that project refreshed, as soon as one did. uv alone would keep
serving the wheel it built first until `pyproject.toml` is touched.
"""

from __future__ import annotations

import datetime
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

from compat_matrix import children
from compat_matrix.build.install_errors import (
    InstallFailure,
    Resolution,
    classify_micromamba,
    classify_pip,
    classify_uv,
)
from compat_matrix.build.package_index import PackageIndex, index_urls_from_env
from compat_matrix.build.pythons import Interpreter

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "BACKEND_CLASSES",
    "DEFAULT_CHANNELS",
    "DEFAULT_LOCK_MAX_AGE",
    "MICROMAMBA_MISSING",
    "CondaSolution",
    "EnvBackend",
    "EnvRequest",
    "MicromambaBackend",
    "PreparedEnv",
    "UvBackend",
    "VenvBackend",
    "cache_dir",
    "conda_lock_records",
    "conda_meta_records",
    "conda_pip_command",
    "conda_specs",
    "explicit_lock",
    "find_micromamba",
    "find_uv",
    "get_backend",
    "package_index",
    "parse_lock",
    "pip_log",
    "resolve",
    "source_digest",
    "used_indexes",
    "with_pip_pins",
]

_MARKER = ".compat-env.json"
_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")
#: A line of an `@EXPLICIT` conda lock: `<channel URL>/<subdir>/<name>-<version>-<build>.conda`.
_EXPLICIT_LINE = re.compile(
    r"^[a-z][a-z0-9+.-]*://\S*/(?P<name>[^/\s]+)-(?P<version>[^-/\s]+)-(?P<build>[^-/\s]+?)"
    r"\.(?:conda|tar\.bz2)(?:#\S*)?$",
    re.IGNORECASE,
)
_PIP_LOCK_PREFIX = "# pip: "
#: pip's `--log` file in the environment: its debug lines alone name an unreachable index
#: when the user turned retries off.
_PIP_LOG = "compat-pip.log"
_NETWORK_RETRY_DELAY_S = 2.0

#: Channels of a conda or micromamba cell when the matrix names none.
DEFAULT_CHANNELS: tuple[str, ...] = ("conda-forge",)

MICROMAMBA_MISSING = (
    "micromamba was not found on PATH or at $MAMBA_EXE, so this conda cell could not be built"
)
_MICROMAMBA_INSTALL_HINT = (
    'install micromamba (`"${SHELL}" <(curl -L micro.mamba.pm/install.sh)`, see '
    "https://mamba.readthedocs.io/en/latest/installation/micromamba-installation.html; in "
    "GitHub Actions mamba-org/setup-micromamba) and put it on PATH or set MAMBA_EXE"
)


@dataclass(frozen=True)
class EnvRequest:
    """What a cell needs installed.

    uv/venv cells: `requirements` on `interpreter`. conda and micromamba cells: `conda_specs`
    (Python included; `interpreter` is None) solved from `channels`, then `requirements` with pip.
    """

    interpreter: Interpreter | None
    requirements: tuple[str, ...]
    only_binary: bool = True
    #: Direct references (local projects, URLs): built from source even when only_binary.
    build_from_source: tuple[str, ...] = ()
    #: Extra package indexes (a framework's CUDA builds, from the CUDA table).
    index_urls: tuple[str, ...] = ()
    #: conda/micromamba: every conda spec of the cell, `python=X.Y` included.
    conda_specs: tuple[str, ...] = ()
    #: conda/micromamba: channels, highest priority first (strict priority).
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    #: Environment variables for the installer (CONDA_OVERRIDE_CUDA).
    env: Mapping[str, str] = field(default_factory=dict)
    #: Local projects (by name): rebuilt from their sources, never from a build cache.
    local_projects: tuple[str, ...] = ()
    #: `source_digest` of those projects: part of the fingerprint, so an edit rebuilds.
    sources: str = ""
    #: Seconds a lock resolved from these very inputs is reused without resolving again
    #: (0: always resolve). See `DEFAULT_LOCK_MAX_AGE`.
    lock_max_age: float = 0.0
    #: The matrix's `index-url:` (replaces PyPI); "" leaves the installer's default.
    index_url: str = ""
    #: `resolution`: uv's `--resolution` (conda: rattler's strategy).
    resolution: str = "highest"
    #: `as-of` day (YYYY-MM-DD): files uploaded after that day (UTC) are ignored.
    as_of: str = ""
    #: `prerelease`: uv's `--prerelease` (pip: `allow` alone, as `--pre`); "" is the default.
    prerelease: str = ""

    def refresh_args(self) -> list[str]:
        """`--refresh-package NAME` per local project, so uv rebuilds it from its sources."""
        args: list[str] = []
        for name in self.local_projects:
            args += ["--refresh-package", name]
        return args

    def reusable_with_locals(self) -> bool:
        """Whether an environment holding local projects may be reused: only with their digest."""
        return bool(self.sources) or not _has_local_requirement(self.requirements)

    def binary_args(self) -> list[str]:
        """`--only-binary :all:` plus a `--no-binary` exemption per direct reference (uv, pip)."""
        if not self.only_binary:
            return []
        args = ["--only-binary", ":all:"]
        for name in self.build_from_source:
            args += ["--no-binary", name]
        return args

    def exclude_newer(self) -> str:
        """`as_of` as the instant it ends (UTC): what an install during that day could see."""
        if not self.as_of:
            return ""
        day = datetime.date.fromisoformat(self.as_of) + datetime.timedelta(days=1)
        return f"{day.isoformat()}T00:00:00Z"

    def selection_args(self, installer: str) -> list[str]:
        """How the resolver picks versions (uv: `--resolution`, `--exclude-newer`,
        `--prerelease`; pip: `--pre`). Values are the loader's fixed words and dates."""
        if installer != "uv":
            return ["--pre"] if self.prerelease == "allow" else []
        args: list[str] = []
        if self.resolution != "highest":
            args += [f"--resolution={self.resolution}"]
        if self.as_of:
            args += [f"--exclude-newer={self.exclude_newer()}"]
        if self.prerelease:
            args += [f"--prerelease={self.prerelease}"]
        return args

    def index_args(self, installer: str) -> list[str]:
        """The matrix's `--index-url` (uv: `--default-index`, which uv ranks over its
        `--index-url`), then `--extra-index-url` per extra index; uv then takes the best
        version across indexes.

        uv's default (`first-index`) would take numpy from PyTorch's index too, and only
        the versions that index mirrors; pip always compares every index, so uv is made to.
        """
        args: list[str] = []
        if self.index_url:
            args += ["--default-index" if installer == "uv" else "--index-url", self.index_url]
        extra = len(args)
        for url in self.index_urls:
            args += ["--extra-index-url", url]
        if len(args) > extra and installer == "uv":
            args += ["--index-strategy", "unsafe-best-match"]
        return args


#: Environment variables that point an installer at other indexes, by backend, as options.
_INDEX_VARIABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "uv": (
        ("UV_DEFAULT_INDEX", "--default-index"),
        ("UV_INDEX_URL", "--index-url"),
        ("UV_INDEX", "--index"),
        ("UV_EXTRA_INDEX_URL", "--extra-index-url"),
        ("UV_FIND_LINKS", "--find-links"),
        ("UV_INDEX_STRATEGY", "--index-strategy"),
    ),
    "pip": (
        ("PIP_INDEX_URL", "--index-url"),
        ("PIP_EXTRA_INDEX_URL", "--extra-index-url"),
        ("PIP_FIND_LINKS", "--find-links"),
    ),
}
#: Environment variables that change how the installer picks versions (the matrix's
#: `resolution`, `as-of`, `prerelease`): listed with the indexes, so none acts unseen.
_SELECTION_VARIABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "uv": (
        ("UV_RESOLUTION", "--resolution"),
        ("UV_EXCLUDE_NEWER", "--exclude-newer"),
        ("UV_PRERELEASE", "--prerelease"),
    ),
    "pip": (("PIP_PRE", "--pre"),),
}


def used_indexes(
    backend: str, request: EnvRequest, env: Mapping[str, str] | None = None
) -> list[str]:
    """The non-default indexes (and uv's index strategy) a cell's installs used, as options.

    The request's own (the matrix's `index-url`/`extra-index-url`, `--extra-index-url` from the
    CUDA table) and those the environment sets (`PIP_INDEX_URL`, `UV_EXTRA_INDEX_URL`, ...),
    with the variables that change how versions are picked (`UV_RESOLUTION`, ...): the report
    names every one, marking those the command line overrides, so a cell never takes packages
    from an index nobody sees. Installer config files are not read.
    """
    env = os.environ if env is None else env
    installer = "uv" if backend == "uv" else "pip"
    args = request.index_args(installer)
    used = [f"{args[i]} {args[i + 1]}" for i in range(0, len(args) - 1, 2)]
    if request.index_url:
        used[0] += " (matrix)"
    given = [*args, *(arg.split("=")[0] for arg in request.selection_args(installer))]
    variables = (*_INDEX_VARIABLES[installer], *_SELECTION_VARIABLES[installer])
    for variable, option in variables:
        for value in env.get(variable, "").split():
            line = f"{option} {value} (${variable})"
            if _overridden(installer, option, given):
                line = f"{line[:-1]}, not used: the command line's {option} wins)"
            if line not in used:
                used.append(line)
    return used


def _overridden(installer: str, option: str, args: Sequence[str]) -> bool:
    """Whether the command line replaces what the environment variable for `option` says.

    The matrix's index-url beats every default-index variable. uv reads an option's variable
    only when the command line does not give the option; pip appends the command line's
    extra indexes to its variable's.
    """
    if option in ("--default-index", "--index-url"):
        return "--default-index" in args or "--index-url" in args
    return installer == "uv" and option in args


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


class _Timeout(Exception):
    def __init__(self, argv: list[str], seconds: float) -> None:
        super().__init__(
            f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} "
            f"did not finish within {seconds:.0f} s"
        )


def _run(
    argv: list[str],
    *,
    timeout: float,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    """Run argv, returning (exit status, combined output). Raises _Timeout."""
    status, out, _ = _run_split(argv, timeout=timeout, stdin=stdin, env=env, merge=True)
    return status, out


def _run_split(
    argv: list[str],
    *,
    timeout: float,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    merge: bool = False,
) -> tuple[int, str, str]:
    """Run argv, returning (exit status, stdout, stderr); `merge` folds stderr into stdout."""
    if timeout <= 0:
        raise _Timeout(argv, 0)
    try:
        with children.spawn(
            argv,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            text=True,
            env=dict(env) if env is not None else _installer_env(),
        ) as proc:
            try:
                out, err = proc.communicate(stdin, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                children.kill_group(proc.pid)  # the installer and whatever it started
                proc.communicate()
                raise _Timeout(argv, timeout) from exc
    except OSError as exc:
        return 127, f"cannot run {argv[0]}: {exc}", ""
    return proc.returncode, out or "", err or ""


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


def _read_log(path: Path) -> str:
    """A log file's text ("" when there is none); only the last MiB, where the failure is."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(path.stat().st_size - (1 << 20), 0))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _env_python(envdir: Path) -> Path:
    return envdir / "bin" / "python"


def parse_lock(lock_text: str) -> dict[str, str]:
    """`name==version` pins of a lock/freeze text (direct references are skipped).

    An `@EXPLICIT` conda lock gives each package's conda name and version, and its
    `# pip: name==version` lines the pip-installed ones.
    """
    pins: dict[str, str] = {}
    for line in lock_text.splitlines():
        text = line.strip()
        if text.startswith(_PIP_LOCK_PREFIX):
            text = text[len(_PIP_LOCK_PREFIX) :]
        explicit = _EXPLICIT_LINE.match(text)
        if explicit:
            pins[explicit.group("name")] = explicit.group("version")
            continue
        match = _LOCK_LINE.match(text)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def conda_lock_records(lock_text: str) -> dict[str, tuple[str, str]]:
    """{conda name: (version, build)} of an `@EXPLICIT` lock (`micromamba env export -e`)."""
    records: dict[str, tuple[str, str]] = {}
    for line in lock_text.splitlines():
        match = _EXPLICIT_LINE.match(line.strip())
        if match:
            records[match.group("name")] = (match.group("version"), match.group("build"))
    return records


#: Folders that are build output, caches or other tools' state, never a project's sources.
_NOT_SOURCES = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".nox",
        ".tox",
        ".venv",
        "venv",
        "build",
        "dist",
        "__pycache__",
        "compat-report",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "node_modules",
    }
)


#: The file a run keeps in each folder it writes (run/locks.py): its report folder and its
#: environment folder, wherever they are (`-o reports`, `COMPAT_ENV_DIR=envs` in a project).
RUN_FOLDER_MARK = ".compat-run.lock"


def source_digest(paths: Sequence[Path]) -> str:
    """Content hash of local project trees (relative paths, file bytes, executable bits).

    Build output, caches, VCS data, `*.egg-info` and the folders a run writes (they hold
    `RUN_FOLDER_MARK`) are left out, so building, testing or probing the project does not count
    as a change; editing any source file does.
    """
    digest = hashlib.sha256()
    for root in paths:
        digest.update(str(root).encode() + b"\0")
        if root.is_file():
            digest.update(root.read_bytes())
            continue
        for directory, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if d not in _NOT_SOURCES
                and not d.endswith(".egg-info")
                and not (Path(directory) / d / RUN_FOLDER_MARK).exists()
            )
            for name in sorted(filenames):
                if name == RUN_FOLDER_MARK:
                    continue  # `-o .`: the run's lock in the project's root names the run
                path = Path(directory) / name
                try:
                    data = path.read_bytes()
                    mode = path.stat().st_mode
                except OSError:
                    continue  # a dangling link or a file that vanished is not a source
                digest.update(path.relative_to(root).as_posix().encode() + b"\0")
                digest.update(b"x" if mode & 0o111 else b"-")
                digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


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


#: How long a lock stays good while its inputs are unchanged: as long as uv itself trusts
#: PyPI's index pages without asking again (their Cache-Control max-age), so reusing it
#: answers exactly what resolving again would. Nightly runs pass 0.
DEFAULT_LOCK_MAX_AGE = 600.0


def _lock_record(envdir: Path) -> Path:
    """Beside the environment, not in it: `uv venv --clear` empties the environment."""
    return envdir.parent / ".locks" / f"{envdir.name}.json"


def _installer_settings() -> list[str]:
    """uv's and pip's own variables (an index, a resolution strategy...): a lock resolved under
    other settings is not reused."""
    return sorted(
        f"{key}={value}" for key, value in os.environ.items() if key.startswith(("UV_", "PIP_"))
    )


def _fresh_lock(envdir: Path, inputs: str, max_age: float) -> str | None:
    """The lock last resolved from `inputs`, if it is younger than `max_age` seconds."""
    if max_age <= 0:
        return None
    try:
        record = json.loads(_lock_record(envdir).read_text(encoding="utf-8"))
        age = time.time() - float(record["resolved_at"])
        if record["inputs"] == inputs and 0 <= age <= max_age:
            return str(record["lock"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _keep_lock(envdir: Path, inputs: str, lock_text: str) -> None:
    path = _lock_record(envdir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(
            json.dumps({"inputs": inputs, "resolved_at": time.time(), "lock": lock_text}),
            encoding="utf-8",
        )
        temporary.replace(path)
    except OSError:
        pass  # the next run resolves again: nothing is lost


def _lock_body(lock_text: str) -> str:
    """The lock without comments, so a regenerated header does not defeat reuse."""
    return "\n".join(
        line.split("#", 1)[0].rstrip()
        for line in lock_text.splitlines()
        if line.split("#", 1)[0].strip()
    )


def _has_local_requirement(requirements: tuple[str, ...]) -> bool:
    return any("file://" in req or req.startswith("/") for req in requirements)


#: An installer that ran out of disk space or quota says so in one of these ways.
_DISK_FULL = re.compile(
    r"No space left on device|Disk quota exceeded|os error 28\b|Errno 28\b|ENOSPC"
)


def _disk_or(failure: InstallFailure, output: str) -> InstallFailure:
    """`failure`, unless the installer ran out of disk: then `error`/`disk-full`, not a verdict."""
    match = _DISK_FULL.search(output)
    if match is None:
        return failure
    line = next(
        (text.strip() for text in output.splitlines() if match.group(0) in text), match.group(0)
    )
    return InstallFailure(
        "error",
        "disk-full",
        line[-800:],
        "free space on the disk of the environment folder ($COMPAT_ENV_DIR) or the "
        "installer's cache, then rerun with --resume",
    )


def _no_interpreter(envdir: Path) -> PreparedEnv:
    return PreparedEnv(
        envdir=envdir,
        python=_env_python(envdir),
        failure=InstallFailure(
            "error",
            "harness",
            "this backend needs an interpreter, and the request named none",
            "compat-matrix itself failed on this cell: report it",
        ),
    )


def _timed_out(exc: Exception) -> InstallFailure:
    return InstallFailure(
        "error", "timeout", str(exc), "raise the matrix `timeout:` or check the index"
    )


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """compat-matrix's cache: `$COMPAT_CACHE_DIR`, else `$XDG_CACHE_HOME/compat-matrix`."""
    env = os.environ if env is None else env
    if env.get("COMPAT_CACHE_DIR"):
        return Path(env["COMPAT_CACHE_DIR"])
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "compat-matrix"


class EnvBackend(ABC):
    """Build or reuse the environment of one cell."""

    name: ClassVar[str]

    def prepare(self, envdir: Path, request: EnvRequest, *, timeout: float) -> PreparedEnv:
        """Create (or reuse) `envdir` with `request` installed; never raises for install errors.

        An unreachable index is retried once, after a pause, within the same `timeout`.
        """
        deadline = time.monotonic() + timeout
        result = self._prepare(envdir, request, deadline)
        if result.failure is not None and result.failure.retryable:
            time.sleep(_NETWORK_RETRY_DELAY_S)
            result = self._prepare(envdir, request, deadline)
        return result

    @abstractmethod
    def _prepare(self, envdir: Path, request: EnvRequest, deadline: float) -> PreparedEnv:
        """One attempt at `prepare`, finishing by `deadline` (a `time.monotonic()` value)."""


def package_index(extra_urls: Sequence[str] = (), index_url: str = "") -> PackageIndex:
    """The index the installers use (the matrix's `index_url`, else the environment's), plus
    `extra_urls`, cached in compat-matrix's cache."""
    base = [index_url] if index_url else index_urls_from_env()
    return PackageIndex([*base, *extra_urls], cache=cache_dir() / "index")


def resolve(requirements: Sequence[str], request: EnvRequest, *, timeout: float) -> Resolution:
    """Whether `requirements` resolve for the request's Python (`uv pip compile`, no install).

    Undecided (`ok` None) when there is no interpreter, the index is unreachable, or time ran
    out.
    """
    if request.interpreter is None or timeout <= 0:
        return Resolution(None)
    argv = [
        find_uv() or "uv",
        "pip",
        "compile",
        "-",
        "--quiet",
        "--no-header",
        "--python",
        str(request.interpreter.path),
        *request.binary_args(),
        *request.index_args("uv"),
        *request.selection_args("uv"),
    ]
    if not (
        request.index_url or os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL")
    ):
        # A venv cell installs with pip: resolve against pip's index, as the install did.
        pip_index = os.environ.get("PIP_INDEX_URL")
        argv += ["--index-url", pip_index] if pip_index else []
    try:
        status, output = _run(argv, stdin="\n".join(requirements) + "\n", timeout=timeout)
    except _Timeout:
        return Resolution(None)
    if status == 0:
        return Resolution(True, parse_lock(output))
    failure = classify_uv(output, only_binary=request.only_binary)
    return Resolution(False if failure.status in ("conflict", "unsupported") else None)


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

    def _step(
        self,
        args: list[str],
        result: PreparedEnv,
        request: EnvRequest,
        deadline: float,
        stdin: str | None = None,
    ) -> str | None:
        """Run `uv ARGS`, logging its output; None once a failure is recorded on `result`."""
        status, output = _run([self.uv, *args], stdin=stdin, timeout=deadline - time.monotonic())
        result.log += output
        if status != 0:
            result.failure = _disk_or(classify_uv(output, only_binary=request.only_binary), output)
            return None
        return output

    def _prepare(self, envdir: Path, request: EnvRequest, deadline: float) -> PreparedEnv:
        if request.interpreter is None:
            return _no_interpreter(envdir)
        python = _env_python(envdir)
        result = PreparedEnv(envdir=envdir, python=python)
        interpreter = str(request.interpreter.path)
        try:
            lock_text = ""
            if request.requirements:
                compile_args = [
                    "pip",
                    "compile",
                    "-",
                    "--quiet",
                    "--no-header",
                    "--python",
                    interpreter,
                    *request.binary_args(),
                    *request.index_args("uv"),
                    *request.selection_args("uv"),
                    *request.refresh_args(),
                ]
                stdin = "\n".join(request.requirements) + "\n"
                lock_inputs = _fingerprint(
                    *compile_args,
                    request.interpreter.version,
                    stdin,
                    request.sources,
                    *_installer_settings(),
                )
                reused = _fresh_lock(envdir, lock_inputs, request.lock_max_age)
                if reused is not None:
                    lock_text = reused
                    result.log += "lock reused: same inputs, resolved within --lock-max-age\n"
                else:
                    compiled = self._step(compile_args, result, request, deadline, stdin=stdin)
                    if compiled is None:
                        return result
                    lock_text = compiled
                    _keep_lock(envdir, lock_inputs, lock_text)
            result.lock_text = lock_text
            result.fingerprint = _fingerprint(
                self.name,
                interpreter,
                request.interpreter.version,
                _lock_body(lock_text),
                str(request.only_binary),
                request.sources,
                *request.index_urls,
                *([request.index_url] if request.index_url else []),
            )
            if _reusable(envdir, result.fingerprint) and request.reusable_with_locals():
                result.reused = True
                return result
            venv = ["venv", "--quiet", "--clear", "--no-python-downloads", "--python", interpreter]
            if self._step([*venv, str(envdir)], result, request, deadline) is None:
                return result
            if lock_text:
                lock_file = envdir / "compat-lock.txt"
                lock_file.write_text(lock_text, encoding="utf-8")
                sync = [
                    "pip",
                    "sync",
                    "--quiet",
                    "--python",
                    str(python),
                    *request.binary_args(),
                    *request.index_args("uv"),
                    # the same files as of that day, should a pinned version gain one later
                    *([f"--exclude-newer={request.exclude_newer()}"] if request.as_of else []),
                    *request.refresh_args(),
                    str(lock_file),
                ]
                if self._step(sync, result, request, deadline) is None:
                    return result
            _mark_ready(envdir, result.fingerprint, lock_text)
        except _Timeout as exc:
            result.failure = _timed_out(exc)
        return result


class VenvBackend(EnvBackend):
    """`python -m venv` + `pip install`: the stdlib way, for projects that must match it."""

    name = "venv"

    def _prepare(self, envdir: Path, request: EnvRequest, deadline: float) -> PreparedEnv:
        if request.interpreter is None:
            return _no_interpreter(envdir)
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
            request.sources,
            *request.index_urls,
            *([request.index_url] if request.index_url else []),
            *request.selection_args("pip"),
        )
        try:
            if _reusable(envdir, result.fingerprint) and request.reusable_with_locals():
                result.reused = True
                result.lock_text = json.loads((envdir / _MARKER).read_text("utf-8"))["lock"]
                return result
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
                pip_log = envdir / _PIP_LOG
                status, output = _run(
                    [
                        str(python),
                        "-m",
                        "pip",
                        "install",
                        "--no-input",
                        # No .pyc of every installed module (a torch cell: 6,000, 30 s of CPU); the
                        # probes' imports write those of the modules they load, as under uv.
                        "--no-compile",
                        "--log",
                        str(pip_log),
                        *request.binary_args(),
                        *request.index_args("pip"),
                        *request.selection_args("pip"),
                        *request.requirements,
                    ],
                    timeout=deadline - time.monotonic(),
                )
                result.log += output
                if status != 0:
                    result.failure = _disk_or(
                        classify_pip(
                            output, only_binary=request.only_binary, log=_read_log(pip_log)
                        ),
                        output,
                    )
                    return result
            status, output = _run(
                [str(python), "-m", "pip", "freeze", "--all"], timeout=deadline - time.monotonic()
            )
            result.lock_text = output if status == 0 else ""
            _mark_ready(envdir, result.fingerprint, result.lock_text)
        except _Timeout as exc:
            result.failure = _timed_out(exc)
        return result


def find_micromamba(env: Mapping[str, str] | None = None) -> str | None:
    """micromamba at `$MAMBA_EXE` (what setup-micromamba and `micromamba shell` set), else PATH."""
    env = os.environ if env is None else env
    exe = env.get("MAMBA_EXE")
    if exe and Path(exe).is_file() and os.access(exe, os.X_OK):
        return exe
    return shutil.which("micromamba", path=env.get("PATH"))


@dataclass
class CondaSolution:
    """A `micromamba create --dry-run --json` answer: the packages it would link, or why not."""

    records: dict[str, tuple[str, str]] = field(default_factory=dict)
    failure: InstallFailure | None = None
    log: str = ""


class MicromambaBackend(EnvBackend):
    """`micromamba create` with every conda spec (one solve), then pip for the rest.

    Downloads go to one package cache shared by every cell (`$CONDA_PKGS_DIRS`, and the root
    prefix `$MAMBA_ROOT_PREFIX`, under compat-matrix's cache unless the user set the root),
    so a package is fetched once and hard-linked into each environment.
    """

    name = "micromamba"

    def __init__(self, micromamba: str | None = None, *, cache: Path | None = None) -> None:
        self.micromamba = micromamba or find_micromamba()
        self.cache = cache or cache_dir()

    # -- command lines (pure, so they are unit-tested without micromamba) --

    def create_command(
        self, envdir: Path, request: EnvRequest, *, dry_run: bool = False
    ) -> list[str]:
        specs = conda_specs(request)
        argv = [
            self.micromamba or "micromamba",
            "create",
            "--yes",
            "--prefix",
            str(envdir),
            "--override-channels",
            "--strict-channel-priority",
        ]
        for channel in request.channels:
            argv += ["--channel", channel]
        if dry_run:
            argv += ["--dry-run", "--json"]
        return [*argv, *specs]

    def export_command(self, envdir: Path) -> list[str]:
        return [
            self.micromamba or "micromamba",
            "env",
            "export",
            "--explicit",
            "--prefix",
            str(envdir),
        ]

    def pip_command(self, envdir: Path, request: EnvRequest) -> list[str]:
        return conda_pip_command(envdir, request)

    def environment(
        self, request: EnvRequest, base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The installer environment: the shared cache, CONDA_OVERRIDE_CUDA, no user site."""
        env = _installer_env() if base is None else dict(base)
        if not env.get("MAMBA_ROOT_PREFIX"):
            root = self.cache / "micromamba"
            env["MAMBA_ROOT_PREFIX"] = str(root)
            env.setdefault("CONDA_PKGS_DIRS", str(root / "pkgs"))
        env.update(request.env)
        env["PYTHONNOUSERSITE"] = "1"
        return env

    # -- building --

    def fingerprint(self, envdir: Path, request: EnvRequest) -> str:
        return _fingerprint(
            self.name,
            self.micromamba or "",
            json.dumps(self.create_command(envdir, request)[2:]),
            json.dumps(self.pip_command(envdir, request)[3:]),
            json.dumps(sorted(request.env.items())),
            request.sources,
        )

    def _prepare(self, envdir: Path, request: EnvRequest, deadline: float) -> PreparedEnv:
        result = PreparedEnv(envdir=envdir, python=_env_python(envdir))
        if self.micromamba is None:
            result.failure = InstallFailure(
                "error", "backend", MICROMAMBA_MISSING, _MICROMAMBA_INSTALL_HINT
            )
            return result
        result.fingerprint = self.fingerprint(envdir, request)
        env = self.environment(request)
        try:
            if _reusable(envdir, result.fingerprint) and request.reusable_with_locals():
                result.reused = True
                result.lock_text = json.loads((envdir / _MARKER).read_text("utf-8"))["lock"]
                return result
            if envdir.exists():
                shutil.rmtree(envdir)
            status, output = _run(
                self.create_command(envdir, request), timeout=deadline - time.monotonic(), env=env
            )
            result.log += output
            if status != 0:
                result.failure = _disk_or(classify_micromamba(output), output)
                return result
            if request.requirements:
                status, output = _run(
                    self.pip_command(envdir, request), timeout=deadline - time.monotonic(), env=env
                )
                result.log += output
                if status != 0:
                    result.failure = _disk_or(
                        classify_pip(
                            output,
                            only_binary=request.only_binary,
                            log=_read_log(envdir / _PIP_LOG),
                        ),
                        output,
                    )
                    return result
            result.lock_text = self._lock(envdir, request, env, deadline, result)
            _mark_ready(envdir, result.fingerprint, result.lock_text)
        except _Timeout as exc:
            result.failure = _timed_out(exc)
        return result

    def _lock(
        self,
        envdir: Path,
        request: EnvRequest,
        env: Mapping[str, str],
        deadline: float,
        result: PreparedEnv,
    ) -> str:
        """`env export --explicit`, then `# pip: name==version` for what pip installed."""
        status, out, err = _run_split(
            self.export_command(envdir), timeout=deadline - time.monotonic(), env=env
        )
        if status != 0:
            result.log += f"micromamba env export failed ({status}): {err}"
            return ""
        lock = out if out.endswith("\n") else out + "\n"
        return with_pip_pins(lock, envdir, request, env=env, deadline=deadline, result=result)

    def solve(self, envdir: Path, request: EnvRequest, *, timeout: float) -> CondaSolution:
        """Solve without installing (`--dry-run --json`): would this cell's conda part solve?"""
        if self.micromamba is None:
            failure = InstallFailure(
                "error", "backend", MICROMAMBA_MISSING, _MICROMAMBA_INSTALL_HINT
            )
            return CondaSolution(failure=failure)
        try:
            status, out, err = _run_split(
                self.create_command(envdir, request, dry_run=True),
                timeout=timeout,
                env=self.environment(request),
            )
        except _Timeout as exc:
            return CondaSolution(failure=_timed_out(exc))
        log = out + err
        records = _dry_run_links(out)
        if status != 0 or records is None:
            return CondaSolution(failure=classify_micromamba(log), log=log)
        return CondaSolution(records=records, log=log)


def conda_specs(request: EnvRequest) -> list[str]:
    """The specs of a conda cell's one solve: `python` always, `pip` when pip installs after."""
    specs = list(request.conda_specs)
    if not any(_conda_name(spec) == "python" for spec in specs):
        specs.insert(0, "python")
    if request.requirements and not any(_conda_name(spec) == "pip" for spec in specs):
        specs.append("pip")
    return specs


def conda_pip_command(envdir: Path, request: EnvRequest) -> list[str]:
    """The pip step of a conda cell: the env's own pip, after the solve, never conda again."""
    return [
        str(_env_python(envdir)),
        "-m",
        "pip",
        "install",
        "--no-input",
        "--log",
        str(envdir / _PIP_LOG),
        *request.binary_args(),
        *request.index_args("pip"),
        *request.selection_args("pip"),
        *request.requirements,
    ]


def pip_log(envdir: Path) -> str:
    """The end of the pip step's `--log` file in `envdir` (what `classify_pip` reads as `log`)."""
    return _read_log(envdir / _PIP_LOG)


def explicit_lock(records: Sequence[Mapping[str, object]]) -> str:
    """An `@EXPLICIT` lock (what `conda list --explicit --md5` writes) from package records.

    `records` are repodata/conda-meta records (`url`, `md5`): the solver's answer before
    anything is installed, or an environment's `conda-meta/*.json` after. Sorted by URL, so
    the same solution always gives the same text (and the same reuse fingerprint).
    """
    lines = []
    subdirs = set()
    for record in records:
        url = str(record.get("url") or "")
        if not url:
            continue
        md5 = record.get("md5")
        lines.append(f"{url}#{md5}" if md5 else url)
        subdirs.add(str(record.get("subdir") or url.rsplit("/", 2)[-2]))
    platform = next(iter(sorted(subdirs - {"noarch"})), "noarch")
    header = f"# platform: {platform}\n@EXPLICIT\n"
    return header + "".join(f"{line}\n" for line in sorted(lines))


def conda_meta_records(envdir: Path) -> list[dict[str, object]]:
    """The `conda-meta/*.json` records of a conda environment (unreadable ones skipped)."""
    records = []
    for path in sorted((envdir / "conda-meta").glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(document, dict):
            records.append(document)
    return records


def with_pip_pins(
    lock: str,
    envdir: Path,
    request: EnvRequest,
    *,
    env: Mapping[str, str],
    deadline: float,
    result: PreparedEnv,
) -> str:
    """`lock` plus a `# pip: name==version` line for each distribution pip installed."""
    if not request.requirements:
        return lock
    status, out, err = _run_split(
        [str(_env_python(envdir)), "-m", "pip", "inspect", "--local"],
        timeout=deadline - time.monotonic(),
        env=env,
    )
    pins = _pip_installed(out) if status == 0 else []
    if status != 0:
        result.log += f"pip inspect failed ({status}): {err}"
    return lock + "".join(f"{_PIP_LOCK_PREFIX}{pin}\n" for pin in pins)


def _conda_name(spec: str) -> str:
    """The package name of a conda MatchSpec (`python=3.12`, `conda-forge::numpy >=2`)."""
    name = re.split(r"[\s=<>!~\[]", spec.rsplit("::", maxsplit=1)[-1], maxsplit=1)[0]
    return name.lower()


def _pip_installed(inspect_json: str) -> list[str]:
    """`name==version` of every distribution pip (or uv) installed, from `pip inspect`."""
    try:
        installed = json.loads(inspect_json).get("installed") or []
    except (ValueError, AttributeError):
        return []
    pins = []
    for item in installed:
        installer = str(item.get("installer") or "").strip().lower()
        metadata = item.get("metadata") or {}
        if installer in ("pip", "uv") and metadata.get("name"):
            pins.append(f"{metadata['name']}=={metadata.get('version', '')}")
    return sorted(pins, key=str.lower)


def _dry_run_links(output: str) -> dict[str, tuple[str, str]] | None:
    """{name: (version, build)} from `--dry-run --json`'s `actions.LINK`; None on failure."""
    start = output.find("{")
    if start < 0:
        return None
    try:
        document, _ = json.JSONDecoder().raw_decode(output, start)
    except ValueError:
        return None
    if not isinstance(document, dict) or not document.get("success"):
        return None
    links = (document.get("actions") or {}).get("LINK") or []
    records = {}
    for link in links:
        if isinstance(link, dict) and link.get("name"):
            build = link.get("build_string") or link.get("build") or ""
            records[str(link["name"])] = (str(link.get("version", "")), str(build))
    return records


BACKEND_CLASSES: dict[str, type[EnvBackend]] = {
    "uv": UvBackend,
    "venv": VenvBackend,
    "micromamba": MicromambaBackend,
}


def get_backend(name: str) -> EnvBackend:
    """The backend called `name` (one of the matrix's `BACKENDS`: the loader refuses others)."""
    if name == "conda":
        # conda_backend builds on this module, so it is imported when asked for.
        from compat_matrix.build.conda import CondaBackend  # noqa: PLC0415

        return CondaBackend()
    return BACKEND_CLASSES[name]()
