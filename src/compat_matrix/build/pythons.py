"""Find the Python interpreters on this machine, by absolute path, never through a shim.

A pyenv shim resolves only the *active* versions and fails with exit 127 for the others, and one
broken shim can abort a whole discovery (astral-sh/uv#21047, wntrblm/nox#919). So shim
directories and shim scripts are skipped; PATH, every pyenv version (active or not), uv-managed
installs and `COMPAT_PYTHONS` are searched directly, each candidate resolved to its real path and
asked what it is by a tiny script. Discovery runs at the start of every cell, so candidates are
queried in parallel and the answers cached, keyed by the executable's real path, mtime and size.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compat_matrix.resources import probes_dir
from compat_matrix.results import write_atomic

__all__ = [
    "MIN_PROBE_VERSION",
    "Interpreter",
    "PythonRequest",
    "describe_missing",
    "discover",
    "format_table",
    "parse_request",
    "select",
]

#: Probes are written for CPython 3.8 and newer; older interpreters are listed, never selected.
MIN_PROBE_VERSION = (3, 8)

#: Seconds one candidate may take to answer; a slower one is skipped, never fatal.
QUERY_TIMEOUT_S = 10.0
#: Seconds a failed query stays cached, so a hanging candidate costs one timeout, not one a cell.
FAILED_QUERY_TTL_S = 600.0
#: Bump when the query script or the cached fields change.
CACHE_SCHEMA = 1

_SOURCES = ("env", "PATH", "pyenv", "uv")
_EXECUTABLE_NAME = re.compile(r"python(?:[23](?:\.\d+)?t?)?")
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:(a|b|rc)(\d+))?")
_REQUEST = re.compile(r"(\d+)\.(\d+)(?:\.(\d+)((?:a|b|rc)\d+)?)?(t)?")
_PRE_RANK = {"a": 0, "b": 1, "rc": 2, "": 3}

#: Identifies an interpreter; a file in probes/ since it runs under any CPython 2.7+ and PyPy.
_QUERY_SCRIPT = "_interpreter_query.py"


@dataclass(frozen=True)
class Interpreter:
    """One interpreter, identified by the real path of its executable."""

    path: Path
    version: str
    version_info: tuple[int, int, int]
    implementation: str
    free_threaded: bool
    abi: str
    source: str

    @property
    def tag(self) -> str:
        """The version as a matrix writes it: `3.13.0t` for a free-threaded build."""
        return self.version + ("t" if self.free_threaded else "")

    @property
    def supported(self) -> bool:
        """Whether probes can run under it (CPython 3.8 or newer)."""
        return self.implementation == "cpython" and self.version_info[:2] >= MIN_PROBE_VERSION

    @property
    def sort_key(self) -> tuple[int, ...]:
        """Release order: 3.11.2 < 3.11.10 and 3.14.0rc1 < 3.14.0."""
        return _version_key(self.version)


@dataclass(frozen=True)
class PythonRequest:
    """A matrix `python` value: `3.11` (newest 3.11.x), `3.11.7` (exactly), `3.13t`."""

    major: int
    minor: int
    version: str | None  # the exact version asked for, or None for "newest X.Y"
    free_threaded: bool

    def __str__(self) -> str:
        base = self.version or f"{self.major}.{self.minor}"
        return base + ("t" if self.free_threaded else "")

    def matches(self, interpreter: Interpreter) -> bool:
        """Whether `interpreter` is a CPython of the requested version and build."""
        if interpreter.implementation != "cpython":
            return False
        if interpreter.free_threaded != self.free_threaded:
            return False
        if self.version is not None:
            return interpreter.version == self.version
        return interpreter.version_info[:2] == (self.major, self.minor)


def parse_request(request: str) -> PythonRequest:
    """Parse a matrix `python` value; raises ValueError for anything else."""
    match = _REQUEST.fullmatch(request.strip())
    if match is None:
        msg = f"invalid Python version {request!r}: expected X.Y, X.Y.Z or X.Yt (free-threaded)"
        raise ValueError(msg)
    major, minor, micro, pre, t = match.groups()
    exact = f"{int(major)}.{int(minor)}.{int(micro)}{pre or ''}" if micro is not None else None
    return PythonRequest(int(major), int(minor), exact, free_threaded=t is not None)


def select(interpreters: Sequence[Interpreter], request: str) -> Interpreter | None:
    """The interpreter a cell asking for `request` runs with, or None.

    `X.Y` picks the newest X.Y.Z found (pre-releases rank below the final), `X.Y.Z` exactly that
    version, a `t` suffix a free-threaded build and no suffix a GIL build. Only CPython that
    probes support is picked; ties go to COMPAT_PYTHONS, then PATH, pyenv, uv, then the path.
    """
    wanted = parse_request(request)
    found = [i for i in interpreters if i.supported and wanted.matches(i)]
    if not found:
        return None
    newest = max(i.sort_key for i in found)
    return min(
        (i for i in found if i.sort_key == newest),
        key=lambda i: (_source_rank(i.source), str(i.path)),
    )


def describe_missing(interpreters: Sequence[Interpreter], request: str) -> str:
    """Why `select` found nothing: the message of a `no-interpreter` verdict."""
    try:
        wanted = parse_request(request)
    except ValueError as exc:
        return str(exc)
    too_old = [i for i in interpreters if wanted.matches(i) and not i.supported]
    if too_old:
        best = max(too_old, key=lambda i: i.sort_key)
        return (
            f"CPython {best.tag} found ({best.path}) but probes need CPython "
            f"{MIN_PROBE_VERSION[0]}.{MIN_PROBE_VERSION[1]} or newer"
        )
    kind = "free-threaded CPython" if wanted.free_threaded else "CPython"
    # Only interpreters that could run a cell: a 2.7 or 3.6 found on PATH is no alternative.
    usable = sorted((i for i in interpreters if i.supported), key=lambda i: i.sort_key)
    tags = list(dict.fromkeys(i.tag for i in usable)) or ["none"]
    version = wanted.version or f"{wanted.major}.{wanted.minor}"
    return f"no {kind} {version} found; found: {', '.join(tags)}"


def format_table(interpreters: Sequence[Interpreter]) -> str:
    """The discovery table of `compat-matrix pythons`: one row per interpreter."""
    if not interpreters:
        return "no Python interpreters found\n"
    rows = [("version", "free-threaded", "source", "path", "note")]
    for interp in interpreters:
        if interp.implementation != "cpython":
            note = f"skipped: {interp.implementation}, not CPython"
        elif not interp.supported:
            note = f"not probed: older than {MIN_PROBE_VERSION[0]}.{MIN_PROBE_VERSION[1]}"
        else:
            note = ""
        ft = "yes" if interp.free_threaded else "no"
        rows.append((interp.version, ft, interp.source, str(interp.path), note))
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def discover(
    env: Mapping[str, str] | None = None, *, cache_path: Path | None = None
) -> list[Interpreter]:
    """Every interpreter found through `env` (default: os.environ), sorted by version then path.

    Non-CPython interpreters are included (the table says they are skipped); `select` ignores
    them. A candidate that cannot be run or answers nonsense is left out, never an error.
    """
    env = os.environ if env is None else env
    if cache_path is None:
        cache_path = _default_cache_path(env)

    # Real path -> (source, stat key); the first source to find an executable names it.
    found: dict[str, tuple[str, tuple[int, int]]] = {}
    for source, candidate in _candidates(env):
        try:
            real = os.path.realpath(candidate)
            st = Path(real).stat()
        except OSError:
            continue
        if real in found or not _is_runnable(real, st) or _is_shim_script(real):
            continue
        found[real] = (source, (st.st_mtime_ns, st.st_size))

    cache = _read_cache(cache_path)
    now = time.time()
    answers: dict[str, dict[str, Any] | None] = {}
    stale: list[str] = []
    for real, (_, key) in found.items():
        entry = cache.get(real)
        if entry is not None and _entry_valid(entry, key, now):
            answers[real] = entry["info"]
        else:
            stale.append(real)

    if stale:
        query_env = dict(env)
        with ThreadPoolExecutor(max_workers=min(16, len(stale))) as pool:
            queried = list(pool.map(lambda path: _query(path, query_env), stale))
        updates: dict[str, dict[str, Any]] = {}
        for real, info in zip(stale, queried):
            answers[real] = info
            mtime_ns, size = found[real][1]
            updates[real] = {"mtime_ns": mtime_ns, "size": size, "checked": now, "info": info}
        _write_cache(cache_path, updates)

    interpreters = [
        interp
        for real, (source, _) in found.items()
        if (interp := _interpreter(real, source, answers.get(real))) is not None
    ]
    return sorted(interpreters, key=lambda i: (i.sort_key, str(i.path)))


# --- candidates ---------------------------------------------------------------------------------


def _candidates(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(source, path) pairs in priority order; paths may be links, duplicates or missing."""
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    pyenv_root = Path(env.get("PYENV_ROOT") or home / ".pyenv")
    out: list[tuple[str, str]] = []

    for entry in env.get("COMPAT_PYTHONS", "").split(os.pathsep):
        if entry.strip():
            out.append(("env", str(Path(entry.strip()).expanduser())))

    for directory in env.get("PATH", "").split(os.pathsep):
        # An empty entry means the current directory: never search it implicitly.
        if directory and not _is_shims_dir(Path(directory), pyenv_root):
            out.extend(("PATH", p) for p in _executables_in(Path(directory)))

    for bin_dir in _version_bin_dirs(pyenv_root / "versions"):
        out.extend(("pyenv", p) for p in _executables_in(bin_dir))

    for bin_dir in _version_bin_dirs(_uv_python_dir(env, home)):
        out.extend(("uv", p) for p in _executables_in(bin_dir))
    return out


def _uv_python_dir(env: Mapping[str, str], home: Path) -> Path:
    if env.get("UV_PYTHON_INSTALL_DIR"):
        return Path(env["UV_PYTHON_INSTALL_DIR"])
    data_home = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return data_home / "uv" / "python"


def _version_bin_dirs(root: Path) -> list[Path]:
    """`root/*/bin`, sorted, skipping hidden entries (uv keeps .lock, .cache, .temp there)."""
    try:
        names = sorted(e.name for e in os.scandir(root) if not e.name.startswith("."))
    except OSError:
        return []
    return [root / name / "bin" for name in names]


def _executables_in(directory: Path) -> list[str]:
    """Paths of `python`, `python3`, `python3.X`, `python3.Xt` (and python2*) in `directory`."""
    try:
        names = sorted(e.name for e in os.scandir(directory) if _EXECUTABLE_NAME.fullmatch(e.name))
    except OSError:
        return []
    return [str(directory / name) for name in names]


def _is_shims_dir(directory: Path, pyenv_root: Path) -> bool:
    """pyenv's shims (and pyenv-virtualenv's): they resolve only active versions."""
    if directory.name != "shims":
        return False
    try:
        if directory.resolve().is_relative_to(pyenv_root.resolve()):
            return True
    except OSError:
        pass
    # Not ours but still pyenv's: ~/.pyenv/shims, .../plugins/pyenv-virtualenv/shims, pyenv-win.
    return any(part.lower().lstrip(".").startswith("pyenv") for part in directory.parts)


def _is_runnable(path: str, st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK)


def _is_shim_script(path: str) -> bool:
    """A pyenv shim outside a shims directory (copied or linked onto PATH)."""
    try:
        with open(path, "rb") as handle:  # noqa: PTH123 - one small read, on a hot path
            head = handle.read(1024)
    except OSError:
        return False  # execute-only: let the query decide
    return head.startswith(b"#!") and b"pyenv" in head and b" exec " in head


# --- querying and caching -----------------------------------------------------------------------


def _query(path: str, env: dict[str, str]) -> dict[str, Any] | None:
    """Ask the interpreter at `path` what it is; None if it fails, hangs or answers nonsense."""
    argv = [path, "-E", "-s", "-S", str(probes_dir() / _QUERY_SCRIPT)]
    try:
        # A new session lets a timeout kill the whole group: a wrapper script's child would
        # otherwise keep the pipe open and hang the read.
        with subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        ) as proc:
            try:
                stdout, _ = proc.communicate(timeout=QUERY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.communicate()
                return None
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    try:
        info = json.loads(stdout)
    except ValueError:
        return None
    return info if _info_valid(info) else None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, AttributeError):  # no process groups (Windows) or already gone
        proc.kill()


def _info_valid(info: object) -> bool:
    return (
        isinstance(info, dict)
        and isinstance(info.get("version"), str)
        and _VERSION.fullmatch(info["version"]) is not None
        and isinstance(info.get("implementation"), str)
        and isinstance(info.get("free_threaded"), bool)
        and isinstance(info.get("abi"), str)
    )


def _interpreter(path: str, source: str, info: dict[str, Any] | None) -> Interpreter | None:
    if info is None or not _info_valid(info):
        return None
    major, minor, micro = _version_key(info["version"])[:3]
    return Interpreter(
        path=Path(path),
        version=info["version"],
        version_info=(major, minor, micro),
        implementation=info["implementation"],
        free_threaded=info["free_threaded"],
        abi=info["abi"],
        source=source,
    )


def _entry_valid(entry: dict[str, Any], key: tuple[int, int], now: float) -> bool:
    if (entry.get("mtime_ns"), entry.get("size")) != key:
        return False
    if entry.get("info") is None:
        checked = entry.get("checked")
        return isinstance(checked, (int, float)) and 0 <= now - checked < FAILED_QUERY_TTL_S
    return _info_valid(entry["info"])


def _default_cache_path(env: Mapping[str, str]) -> Path:
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    cache_home = Path(env.get("XDG_CACHE_HOME") or home / ".cache")
    return cache_home / "compat-matrix" / "interpreters.json"


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """The cached entries, or none at all if the file is missing, unreadable or foreign."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("schema") != CACHE_SCHEMA:
        return {}
    entries = data.get("interpreters")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, dict)}


def _write_cache(path: Path, updates: dict[str, dict[str, Any]]) -> None:
    """Merge `updates` into the file as it is now, then replace it atomically.

    Parallel cells may write at once: each re-reads before writing and renames a complete temp
    file into place, so the file is always whole; a lost update costs one query next time.
    Entries for executables that no longer exist are dropped. Failure to write is ignored.
    """
    entries = _read_cache(path)
    entries.update(updates)
    entries = {k: v for k, v in entries.items() if Path(k).exists()}
    text = json.dumps({"schema": CACHE_SCHEMA, "interpreters": entries}, indent=1, sort_keys=True)
    with contextlib.suppress(OSError):
        write_atomic(path, text + "\n")


# --- versions -----------------------------------------------------------------------------------


def _version_key(version: str) -> tuple[int, int, int, int, int]:
    match = _VERSION.fullmatch(version)
    if match is None:
        msg = f"not a Python version: {version!r}"
        raise ValueError(msg)
    major, minor, micro, pre, serial = match.groups()
    return (int(major), int(minor), int(micro), _PRE_RANK[pre or ""], int(serial or 0))


def _source_rank(source: str) -> int:
    return _SOURCES.index(source) if source in _SOURCES else len(_SOURCES)
