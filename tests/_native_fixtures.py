"""Helpers every probe test uses (run a probe, load one as a module, pick the oldest and newest
interpreters), and broken extension modules built with gcc for the import probe's tests.

Each builder compiles one real failure mode into a directory the import probe is pointed at
with ``--path``: the loader, not a mock, produces the error text the probe classifies.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

__all__ = [
    "FIXTURES",
    "PROBES",
    "Target",
    "build_extension",
    "build_failure_modules",
    "build_library",
    "build_numpy2_env",
    "by_target",
    "describe_python",
    "edge_interpreter",
    "load_probe_module",
    "make_dist",
    "probe_process",
    "require_gcc",
    "run_probe",
]

REPO = Path(__file__).resolve().parents[1]
PROBES = REPO / "probes"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "native"


@dataclass(frozen=True)
class Target:
    """An interpreter the fixtures are built for: where its headers are, what it loads."""

    python: str
    include: str
    ext_suffix: str
    soabi: str
    version: tuple[int, int]


def require_gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    return gcc


def describe_python(python: str) -> Target:
    code = (
        "import json, sys, sysconfig; print(json.dumps({'include': sysconfig.get_paths()"
        "['include'], 'ext': sysconfig.get_config_var('EXT_SUFFIX'), 'soabi': "
        "sysconfig.get_config_var('SOABI'), 'version': list(sys.version_info[:2])}))"
    )
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    data = json.loads(out)
    if not Path(data["include"], "Python.h").exists():
        pytest.skip(f"no Python.h for {python}")
    return Target(python, data["include"], data["ext"], data["soabi"], tuple(data["version"]))


def _gcc(args: list[str], cwd: Path) -> None:
    done = subprocess.run(
        [require_gcc(), *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"gcc {' '.join(args)} failed:\n{done.stderr}"


def build_extension(
    target: Target,
    source: str,
    module: str,
    out_dir: Path,
    *,
    filename: str | None = None,
    link: list[str] | None = None,
) -> Path:
    """Compile ``tests/fixtures/native/<source>`` as extension module ``module``."""
    out = out_dir / (filename or module + target.ext_suffix)
    _gcc(
        [
            "-shared",
            "-fPIC",
            "-O0",
            f"-DMODNAME={module}",
            f"-I{target.include}",
            f"-I{FIXTURES}",
            str(FIXTURES / source),
            "-o",
            str(out),
            *(link or []),
        ],
        out_dir,
    )
    return out


def build_library(out_dir: Path, soname: str, version_node: str | None = None) -> Path:
    """``compatfoo.c`` as a shared library with ``soname``, optionally symbol-versioned."""
    args = ["-shared", "-fPIC", str(FIXTURES / "compatfoo.c"), "-o", soname]
    args.append(f"-Wl,-soname,{soname}")
    if version_node:
        script = out_dir / f"{version_node}.map"
        script.write_text(f"{version_node} {{ global: compatfoo_value; local: *; }};\n")
        args.append(f"-Wl,--version-script={script}")
    _gcc(args, out_dir)
    return out_dir / soname


def build_failure_modules(target: Target, root: Path) -> dict[str, str]:
    """One importable directory holding a module per failure mode; returns mode -> module.

    ``root/site`` is the directory to pass with ``--path``.
    """
    site = root / "site"
    libs = root / "libs"
    versioned = root / "versioned"
    for folder in (site, libs, versioned):
        folder.mkdir(parents=True, exist_ok=True)
    build_extension(target, "good.c", "cm_good", site)
    build_extension(target, "noinit.c", "cm_noinit", site)
    build_extension(target, "undefined.c", "cm_undefined", site)
    build_extension(target, "crash.c", "cm_crash", site)

    # missing-library: link against libcompatfoo.so.1, then take the library away.
    build_library(libs, "libcompatfoo.so.1")
    build_extension(
        target, "needslib.c", "cm_needslib", site, link=[f"-L{libs}", "-l:libcompatfoo.so.1"]
    )
    (libs / "libcompatfoo.so.1").unlink()

    # symbol-version: link against a library defining VER_1, then replace it by one with VER_2.
    build_library(versioned, "libcompatver.so.1", "VER_1")
    build_extension(
        target,
        "needslib.c",
        "cm_versioned",
        site,
        link=[f"-L{versioned}", "-l:libcompatver.so.1", f"-Wl,-rpath,{versioned}"],
    )
    build_library(versioned, "libcompatver.so.1", "VER_2")

    # abi-python by file name: a good module tagged for another interpreter.
    other = "cpython-39" if target.version != (3, 9) else "cpython-310"
    platform = target.soabi.split("-", 2)[2] if target.soabi.count("-") >= 2 else "x86_64-linux-gnu"
    build_extension(
        target, "good.c", "cm_foreign", site, filename=f"cm_foreign.{other}-{platform}.so"
    )
    return {
        "good": "cm_good",
        "noinit": "cm_noinit",
        "undefined": "cm_undefined",
        "crash": "cm_crash",
        "needslib": "cm_needslib",
        "versioned": "cm_versioned",
        "foreign": "cm_foreign",
        "foreign_tag": other,
    }


def probe_process(
    python: str,
    probe: str,
    args: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    python_args: Sequence[str] = (),
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``probes/<probe>.py`` with ``python`` from ``cwd``, without the caller's PYTHONPATH."""
    full_env = dict(os.environ)
    full_env.pop("PYTHONPATH", None)
    full_env.update(env or {})
    return subprocess.run(
        [python, *python_args, str(PROBES / f"{probe}.py"), *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def run_probe(
    python: str,
    probe: str,
    args: list[str],
    cwd: Path,
    *,
    timeout: float = 300,
    python_args: tuple[str, ...] = (),
) -> tuple[dict[str, Any], int]:
    """Run ``probes/<probe>.py`` with ``python`` from ``cwd``; its one JSON document and status.

    Fails the test unless stdout is exactly one JSON document.
    """
    done = probe_process(python, probe, args, cwd, python_args=python_args, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line, got:\n{done.stdout}\nstderr:\n{done.stderr}"
    document = json.loads(lines[0])
    assert document["probe"] == {"import_probe": "import"}.get(probe, probe)
    return document, done.returncode


def load_probe_module(name: str) -> ModuleType:
    """Import ``probes/<name>.py`` as a module (for its pure functions), leaving sys.path as it was."""
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location(
            f"_compat_probe_{name}", PROBES / f"{name}.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def edge_interpreter(interpreters: Sequence[Any], which: str) -> Any:
    """The ``"oldest"`` or ``"newest"`` CPython >= 3.8 on this machine (the probes' whole range).

    Skips the test when there is none.
    """
    usable = sorted((i for i in interpreters if i.supported), key=lambda i: i.sort_key)
    if not usable:
        pytest.skip("no CPython >= 3.8 found")
    return usable[0] if which == "oldest" else usable[-1]


def by_target(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["target"]: result for result in document["results"]}


def make_dist(
    site: Path,
    name: str,
    version: str,
    files: dict[str, str],
    *,
    top_level: list[str] | None = None,
    dist_info: str | None = None,
) -> Path:
    """Write a real ``.dist-info`` (METADATA, RECORD, optional top_level.txt) plus ``files``."""
    info = site / (dist_info or f"{name.replace('-', '_')}-{version}.dist-info")
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    records = [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    if top_level is not None:
        (info / "top_level.txt").write_text("".join(n + "\n" for n in top_level))
        records.append(f"{info.name}/top_level.txt,,")
    for rel, text in files.items():
        path = site / rel
        if not rel.startswith(".."):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        records.append(f"{rel},,")
    (info / "RECORD").write_text("\n".join(records) + "\n")
    return info


def build_numpy2_env(
    tmp_path_factory: pytest.TempPathFactory, uv_bin: str, python_for: Any
) -> Path:
    """A uv venv on Python 3.11 with numpy 2.2.6 and two packages built for NumPy 1.

    pandas 2.0.3 fails Cython's dtype size check; matplotlib 3.8.0 fails NumPy's own
    ``_ARRAY_API`` check (the "compiled using NumPy 1.x" banner).

    Built once per test session (cached in the session's base temp directory), whichever
    test module asks first.
    """
    env = tmp_path_factory.getbasetemp() / "numpy2-numpy1-builds"
    marker = env / ".compat-ready"
    if marker.exists():
        return env
    python = str(python_for("3.11").path)
    for argv in (
        [uv_bin, "venv", "--quiet", "--python", python, str(env)],
        [
            uv_bin,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(env / "bin" / "python"),
            "numpy==2.2.6",
            "pandas==2.0.3",
            "pyyaml==6.0.2",
            "pillow==11.0.0",
        ],
        # matplotlib 3.8.0 declares numpy<2: forced in, as `pip install -U numpy` would leave it
        [
            uv_bin,
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--python",
            str(env / "bin" / "python"),
            "matplotlib==3.8.0",
            "packaging==24.2",
            "pyparsing==3.2.0",
            "cycler==0.12.1",
        ],
    ):
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{argv} failed:\n{done.stderr}"
    marker.write_text("ok\n")
    return env
