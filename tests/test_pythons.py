"""Interpreter discovery: real interpreters found by discovery, fakes built as shell scripts."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest

from compat_matrix.build import pythons
from compat_matrix.build.pythons import (
    Interpreter,
    describe_missing,
    discover,
    format_table,
    parse_request,
    select,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fakes are POSIX shell scripts")

REAL_PYTHON = Path(os.path.realpath(sys.executable))
SLEEP = shutil.which("sleep")


def _script(path: Path, body: str) -> Path:
    """An executable /bin/sh script; bodies use builtins or absolute paths (PATH is fake)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def _fake_python(
    path: Path, version: str, *, free_threaded: bool = False, implementation: str = "cpython"
) -> Path:
    """A script answering the discovery query like an interpreter of `version` would."""
    info = {
        "version": version,
        "implementation": implementation,
        "free_threaded": free_threaded,
        "abi": f"fake-{version}",
    }
    return _script(path, f"printf '%s' '{json.dumps(info)}'")


def _link(path: Path, target: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment where nothing is found unless a test puts it there."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    return {
        "PATH": str(empty),
        "HOME": str(tmp_path / "home"),
        "PYENV_ROOT": str(tmp_path / "no-pyenv"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


def _interp(
    version: str, *, ft: bool = False, source: str = "pyenv", impl: str = "cpython", path: str = ""
) -> Interpreter:
    major, minor, micro = (int(n) for n in re.findall(r"\d+", version)[:3])
    return Interpreter(
        path=Path(path or f"/opt/{impl}-{version}{'t' if ft else ''}/bin/python3"),
        version=version,
        version_info=(major, minor, micro),
        implementation=impl,
        free_threaded=ft,
        abi="",
        source=source,
    )


# --- discovery of real interpreters --------------------------------------------------------------


def test_compat_pythons_reports_the_running_interpreter(
    env: dict[str, str], tmp_path: Path
) -> None:
    env["COMPAT_PYTHONS"] = os.pathsep.join([sys.executable, str(tmp_path / "missing"), ""])
    [found] = discover(env, cache_path=tmp_path / "cache.json")
    assert found.path == REAL_PYTHON
    assert found.version == platform.python_version()
    assert found.version_info == tuple(sys.version_info[:3])
    assert found.implementation == sys.implementation.name
    assert found.abi == sysconfig.get_config_var("SOABI")
    assert found.free_threaded == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert found.source == "env"


def _pyenv_versions() -> tuple[Path, list[str]]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    names = sorted(
        p.name
        for p in (root / "versions").glob("*")
        if re.fullmatch(r"\d+\.\d+\.\d+", p.name) and (p / "bin" / "python").exists()
    )
    return root, names


def test_finds_every_pyenv_version_even_when_not_active(
    env: dict[str, str], tmp_path: Path
) -> None:
    root, names = _pyenv_versions()
    if len(names) < 2:
        pytest.skip("needs at least two pyenv-installed versions")
    env["PYENV_ROOT"] = str(root)
    env["PYENV_VERSION"] = names[-1]  # one active version: shims would resolve only that one
    env["PATH"] = os.pathsep.join([str(root / "shims"), env["PATH"]])

    found = discover(env, cache_path=tmp_path / "cache.json")

    versions_dir = Path(os.path.realpath(root / "versions"))
    for name in names:
        matches = [i for i in found if i.version == name]
        assert matches, f"pyenv {name} not found in {[i.version for i in found]}"
        assert matches[0].source == "pyenv"
        assert matches[0].path.is_relative_to(versions_dir / name)
    assert all(i.source == "pyenv" for i in found), "nothing may come through the shims dir"


def test_path_search_resolves_links_and_deduplicates(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    _link(bin_dir / "python3", REAL_PYTHON)
    _link(bin_dir / "python3.99", REAL_PYTHON)
    marker = tmp_path / "config-ran"
    _script(bin_dir / "python3.99-config", f': > "{marker}"')
    _link(tmp_path / "pyenv" / "versions" / "3.99.0" / "bin" / "python3", REAL_PYTHON)
    _script(tmp_path / "cwd" / "python3", f': > "{marker}"')
    monkeypatch.chdir(tmp_path / "cwd")
    env["PATH"] = os.pathsep.join([str(bin_dir), "", env["PATH"]])  # "" is the cwd: not searched
    env["PYENV_ROOT"] = str(tmp_path / "pyenv")

    found = discover(env, cache_path=tmp_path / "cache.json")

    assert [(i.path, i.source) for i in found] == [(REAL_PYTHON, "PATH")]
    assert not marker.exists(), "neither python3.X-config nor the cwd may be run"


@pytest.mark.parametrize("variable", ["UV_PYTHON_INSTALL_DIR", "XDG_DATA_HOME"])
def test_finds_uv_managed_pythons(env: dict[str, str], tmp_path: Path, variable: str) -> None:
    install_dir = tmp_path / "uv-pythons"
    env[variable] = str(install_dir if variable == "UV_PYTHON_INSTALL_DIR" else tmp_path)
    if variable == "XDG_DATA_HOME":
        install_dir = tmp_path / "uv" / "python"
    _fake_python(install_dir / "cpython-3.12.4-linux-x86_64-gnu" / "bin" / "python3", "3.12.4")
    (install_dir / ".lock").write_text("", encoding="utf-8")

    found = discover(env, cache_path=tmp_path / "cache.json")

    assert [(i.version, i.source) for i in found] == [("3.12.4", "uv")]


# --- shims and broken candidates -----------------------------------------------------------------

_SHIM = """\
set -e
: > "{marker}"
program="${{0##*/}}"
export PYENV_ROOT="{root}"
exec "{root}/libexec/pyenv" exec "$program" "$@"
"""


def test_shims_and_broken_interpreters_are_skipped_without_error(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pythons, "QUERY_TIMEOUT_S", 1.0)
    root = tmp_path / "pyenv"
    versions = root / "versions"
    _link(versions / "3.11.99" / "bin" / "python3", REAL_PYTHON)
    _script(versions / "3.12.0" / "bin" / "python3", "exit 127")
    _script(versions / "3.12.1" / "bin" / "python3", "echo 'not json'")
    crash = _fake_python(versions / "3.12.5" / "bin" / "python3", "3.12.5")
    crash.write_text(crash.read_text(encoding="utf-8") + "exit 139\n", encoding="utf-8")
    _script(versions / "3.12.2" / "bin" / "python3", f"{SLEEP} 30")  # child holds the pipe
    (versions / "3.12.3" / "bin").mkdir(parents=True)  # half-installed: no executable
    _script(versions / "3.12.4" / "bin" / "python3", "exit 0").chmod(0o644)  # not executable
    shim_marker = tmp_path / "shim-ran"
    shim = _SHIM.format(marker=shim_marker, root=root)
    _script(root / "shims" / "python3", shim)
    _script(tmp_path / "bin" / "python3.12", shim)  # a shim copied elsewhere onto PATH
    env["PYENV_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join([str(root / "shims"), str(tmp_path / "bin")])

    start = time.monotonic()
    found = discover(env, cache_path=tmp_path / "cache.json")
    elapsed = time.monotonic() - start

    assert [(i.path, i.source) for i in found] == [(REAL_PYTHON, "pyenv")]
    assert not shim_marker.exists(), "a pyenv shim was executed"
    assert elapsed < 8, "the hanging candidate was not killed at its timeout"


@pytest.mark.parametrize(
    ("shims", "pyenv_root"),
    [
        ("pyenv/shims", "pyenv"),
        ("pyenv/plugins/pyenv-virtualenv/shims", "pyenv"),
        ("other-user/.pyenv/shims", "pyenv"),  # not our PYENV_ROOT, still pyenv's shims
        ("tools/py/shims", "tools/py"),  # our PYENV_ROOT, whatever its name
    ],
)
def test_pyenv_shims_directories_are_never_searched(
    env: dict[str, str], tmp_path: Path, shims: str, pyenv_root: str
) -> None:
    marker = tmp_path / "ran"
    real = _script(tmp_path / "elsewhere" / "python3", f': > "{marker}"\nexit 127')
    _link(tmp_path / shims / "python3", real)  # no shim-like content: the directory decides
    env["PYENV_ROOT"] = str(tmp_path / pyenv_root)
    env["PATH"] = str(tmp_path / shims)

    assert discover(env, cache_path=tmp_path / "cache.json") == []
    assert not marker.exists()


def test_non_cpython_is_listed_but_never_selected(env: dict[str, str], tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _fake_python(bin_dir / "python3", "3.10.14", implementation="pypy")
    env["PATH"] = str(bin_dir)

    found = discover(env, cache_path=tmp_path / "cache.json")

    assert [(i.version, i.implementation) for i in found] == [("3.10.14", "pypy")]
    assert select(found, "3.10") is None
    assert "skipped: pypy" in format_table(found)


# --- selection ------------------------------------------------------------------------------------


def test_selection_over_discovered_builds(env: dict[str, str], tmp_path: Path) -> None:
    versions = tmp_path / "pyenv" / "versions"
    for name, version, ft in [
        ("3.9.1", "3.9.1", False),
        ("3.10.0", "3.10.0", False),
        ("3.11.9", "3.11.9", False),
        ("3.11.10", "3.11.10", False),
        ("3.13.0", "3.13.0", False),
        ("3.13.1t", "3.13.1", True),
        ("3.14.0rc1", "3.14.0rc1", False),
    ]:
        _fake_python(versions / name / "bin" / "python3", version, free_threaded=ft)
    env["PYENV_ROOT"] = str(tmp_path / "pyenv")

    found = discover(env, cache_path=tmp_path / "cache.json")

    assert [i.tag for i in found] == [
        "3.9.1",
        "3.10.0",
        "3.11.9",
        "3.11.10",
        "3.13.0",
        "3.13.1t",
        "3.14.0rc1",
    ]
    chosen = {r: getattr(select(found, r), "tag", None) for r in ["3.11", "3.13", "3.13t", "3.14"]}
    assert chosen == {"3.11": "3.11.10", "3.13": "3.13.0", "3.13t": "3.13.1t", "3.14": "3.14.0rc1"}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ("3.11", "3.11.10"),  # newest patch, compared as numbers
        ("3.11.9", "3.11.9"),  # exact
        ("3.11.8", None),  # exact, missing
        ("3.12", "3.12.0"),  # a final beats its release candidate
        ("3.12.0rc2", "3.12.0rc2"),
        ("3.13t", "3.13.1t"),  # free-threaded only
        ("3.13", "3.13.0"),  # GIL build only, though 3.13.1t is newer
        ("3.13.1", None),
        ("3.13.1t", "3.13.1t"),
        ("3.14", None),
        ("3.7", None),  # found, but too old for the probes
        (" 3.9 ", "3.9.0"),
    ],
)
def test_select_rules(request_: str, expected: str | None) -> None:
    interpreters = [
        _interp("3.7.16"),
        _interp("3.9.0"),
        _interp("3.11.9"),
        _interp("3.11.10"),
        _interp("3.12.0rc2"),
        _interp("3.12.0"),
        _interp("3.13.0"),
        _interp("3.13.1", ft=True),
        _interp("3.14.0", impl="pypy"),
    ]
    chosen = select(interpreters, request_)
    assert (chosen.tag if chosen else None) == expected


def test_select_breaks_ties_by_source_then_path() -> None:
    uv = _interp("3.12.1", source="uv", path="/a/python3")
    pyenv = _interp("3.12.1", source="pyenv", path="/z/python3")
    user = _interp("3.12.1", source="env", path="/y/python3")
    assert select([uv, pyenv], "3.12") is pyenv
    assert select([uv, pyenv, user], "3.12.1") is user
    other = _interp("3.12.1", source="pyenv", path="/b/python3")
    assert select([pyenv, other], "3.12") is other


@pytest.mark.parametrize("bad", ["3", "3.11.x", "pypy3.10", "", "3.11t1", "latest"])
def test_invalid_requests_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid Python version"):
        parse_request(bad)
    with pytest.raises(ValueError, match="invalid Python version"):
        select([_interp("3.11.1")], bad)
    assert "invalid Python version" in describe_missing([], bad)


def test_describe_missing() -> None:
    interpreters = [
        _interp("3.13.0"),
        _interp("3.8.18"),
        _interp("3.7.16", path="/old/python3.7"),
        _interp("3.13.0", ft=True),
        _interp("3.10.14", impl="pypy"),
    ]
    # Only interpreters that could run cells (CPython 3.8+) are offered as what was found.
    assert describe_missing(interpreters, "3.14") == (
        "no CPython 3.14 found; found: 3.8.18, 3.13.0, 3.13.0t"
    )
    assert describe_missing(interpreters, "3.12t").startswith(
        "no free-threaded CPython 3.12 found; found: 3.8.18,"
    )
    assert describe_missing(interpreters, "3.13.1").startswith("no CPython 3.13.1 found")
    assert describe_missing(interpreters, "3.7") == (
        "CPython 3.7.16 found (/old/python3.7) but probes need CPython 3.8 or newer"
    )
    assert describe_missing([], "3.12") == "no CPython 3.12 found; found: none"
    assert describe_missing([_interp("2.7.18"), _interp("3.6.15")], "3.12") == (
        "no CPython 3.12 found; found: none"
    )


# --- the cache -----------------------------------------------------------------------------------


def _same_size_and_mtime(path: Path, body: str) -> None:
    """Rewrite `path` without changing what the cache keys on (its size and mtime)."""
    before = path.stat()
    text = f"#!/bin/sh\n{body}\n"
    padding = before.st_size - len(text.encode())
    assert padding > 2
    path.write_text(text + "#" * (padding - 1) + "\n", encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def test_cache_answers_until_the_executable_changes(env: dict[str, str], tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    python = _script(
        tmp_path / "bin" / "python3",
        f'echo run >> "{runs}"\nexec "{REAL_PYTHON}" "$@"\n' + "#" * 64,
    )
    env["PATH"] = str(python.parent)
    cache = tmp_path / "cache.json"

    first = discover(env, cache_path=cache)
    second = discover(env, cache_path=cache)
    assert first == second
    assert [i.path for i in second] == [python]
    assert runs.read_text(encoding="utf-8").count("run") == 1, "second discovery did not use cache"

    _same_size_and_mtime(python, "exit 1")
    assert discover(env, cache_path=cache) == first, "unchanged mtime and size: answer from cache"

    os.utime(python, ns=(time.time_ns(), time.time_ns() + 10**9))  # "upgraded": requeried
    assert discover(env, cache_path=cache) == []
    entry = json.loads(cache.read_text(encoding="utf-8"))["interpreters"][str(python)]
    assert entry["info"] is None


def test_failed_queries_are_cached_for_a_while(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs.log"
    _script(tmp_path / "bin" / "python3", f'echo run >> "{runs}"\nexit 1')
    env["PATH"] = str(tmp_path / "bin")
    cache = tmp_path / "cache.json"

    assert discover(env, cache_path=cache) == []
    assert discover(env, cache_path=cache) == []
    assert runs.read_text(encoding="utf-8").count("run") == 1

    monkeypatch.setattr(pythons, "FAILED_QUERY_TTL_S", 0.0)
    assert discover(env, cache_path=cache) == []
    assert runs.read_text(encoding="utf-8").count("run") == 2


def test_default_cache_location_and_bad_cache_files(env: dict[str, str], tmp_path: Path) -> None:
    _fake_python(tmp_path / "bin" / "python3", "3.12.4")
    env["PATH"] = str(tmp_path / "bin")
    cache = Path(env["XDG_CACHE_HOME"]) / "compat-matrix" / "interpreters.json"

    assert [i.version for i in discover(env)] == ["3.12.4"]
    assert (
        str(tmp_path / "bin" / "python3")
        in json.loads(cache.read_text(encoding="utf-8"))["interpreters"]
    )

    data = json.loads(cache.read_text(encoding="utf-8"))
    for entry in data["interpreters"].values():
        entry["info"]["version"] = "garbage"
    cache.write_text(json.dumps(data), encoding="utf-8")
    assert [i.version for i in discover(env)] == ["3.12.4"]

    cache.write_text("{not json", encoding="utf-8")
    assert [i.version for i in discover(env)] == ["3.12.4"]
    assert json.loads(cache.read_text(encoding="utf-8"))["schema"] == pythons.CACHE_SCHEMA

    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    assert [i.version for i in discover(env, cache_path=blocked / "cache.json")] == ["3.12.4"]


def test_cache_keeps_other_environments_and_drops_deleted_executables(
    env: dict[str, str], tmp_path: Path
) -> None:
    cache = tmp_path / "cache.json"
    first = _fake_python(tmp_path / "a" / "python3", "3.12.4")
    second = _fake_python(tmp_path / "b" / "python3", "3.13.1")

    assert [i.version for i in discover({**env, "PATH": str(first.parent)}, cache_path=cache)]
    assert [i.version for i in discover({**env, "PATH": str(second.parent)}, cache_path=cache)]
    entries = json.loads(cache.read_text(encoding="utf-8"))["interpreters"]
    assert set(entries) == {str(first), str(second)}

    first.unlink()
    third = _fake_python(tmp_path / "c" / "python3", "3.9.1")
    discover({**env, "PATH": str(third.parent)}, cache_path=cache)
    entries = json.loads(cache.read_text(encoding="utf-8"))["interpreters"]
    assert set(entries) == {str(second), str(third)}


def test_concurrent_discoveries_share_one_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache.json"
    envs = []
    for n in range(8):
        python = _fake_python(tmp_path / f"bin{n}" / "python3", f"3.{n}.1")
        envs.append({"PATH": str(python.parent), "HOME": str(tmp_path)})
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            results[n] = [i.version for i in discover(envs[n], cache_path=cache)]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert results == {n: [f"3.{n}.1"] for n in range(8)}
    data = json.loads(cache.read_text(encoding="utf-8"))
    assert data["schema"] == pythons.CACHE_SCHEMA
    assert data["interpreters"], "the cache file is whole and holds entries"
    assert not list(tmp_path.glob(".cache.json.*")), "no temp files left behind"


# --- the table -----------------------------------------------------------------------------------


def test_format_table_of_a_real_discovery(env: dict[str, str], tmp_path: Path) -> None:
    env["COMPAT_PYTHONS"] = sys.executable
    table = format_table(discover(env, cache_path=tmp_path / "cache.json"))
    header, row = table.splitlines()
    assert header.split() == ["version", "free-threaded", "source", "path", "note"]
    free_threaded = "yes" if sysconfig.get_config_var("Py_GIL_DISABLED") else "no"
    assert row.split() == [platform.python_version(), free_threaded, "env", str(REAL_PYTHON)]


def test_format_table_notes_and_alignment() -> None:
    table = format_table(
        [
            _interp("3.7.16", path="/p/python3.7"),
            _interp("3.13.1", ft=True, source="uv", path="/u/python3.13t"),
            _interp("3.10.14", impl="pypy", source="PATH", path="/usr/bin/pypy3"),
        ]
    )
    lines = table.splitlines()
    assert lines[1].endswith("not probed: older than 3.8")
    assert lines[1].split()[:4] == ["3.7.16", "no", "pyenv", "/p/python3.7"]
    assert lines[2].split() == ["3.13.1", "yes", "uv", "/u/python3.13t"]
    assert "skipped: pypy, not CPython" in lines[3]
    path_column = lines[0].index("path")
    assert all(line[path_column] == "/" for line in lines[1:])
    assert format_table([]) == "no Python interpreters found\n"


def test_the_query_file_identifies_every_cpython_old_ones_too() -> None:
    """probes/_interpreter_query.py runs under any CPython from 2.7 on: every candidate that
    says `Python X.Y.Z` answers the query with that version (an old one is then listed, never
    selected), instead of being dropped as broken."""
    versions: dict[str, str] = {}
    for _source, path in pythons._candidates(os.environ):
        if os.path.realpath(path) in versions or not os.access(path, os.X_OK):
            continue
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        words = (done.stdout + done.stderr).split()
        if done.returncode == 0 and len(words) == 2 and words[0] == "Python":
            versions[os.path.realpath(path)] = words[1]
    if not any(v.startswith(("2.", "3.6.", "3.7.")) for v in versions.values()):
        pytest.skip("no CPython older than 3.8 on this machine to identify")
    env = {"PATH": os.environ.get("PATH", "")}
    for path, version in sorted(versions.items()):
        info = pythons._query(path, env)
        assert info is not None, path
        assert (info["version"], info["implementation"]) == (version, "cpython"), path
