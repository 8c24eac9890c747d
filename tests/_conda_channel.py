"""A real local conda channel, built from this machine's CPythons and PyPI wheels.

conda-forge cannot be reached from where these tests run, so the conda tests get a channel of
their own, made the way conda-build makes packages: a `python` package per interpreter found
here (its prefix copied, ELF RUNPATHs made relative with patchelf, text files that carry the
build prefix marked for replacement in `info/paths.json`), numpy and pandas from PyPI wheels
installed into a staging prefix per Python, pure wheels as `noarch: python`, and a package that
depends on the `__cuda` virtual package (as conda-forge's GPU builds do). rattler's indexer
writes each subdir's `repodata.json`.

What the channel offers, on purpose:

- python 3.11 and 3.12 (the two newest of 3.11/3.12 found here);
- numpy 1.24.4 only for Python 3.11 (PyPI has no cp312 wheel of it: a package whose builds
  exist only for the older Python), numpy 2.2.6 for both;
- pandas 2.2.3 for both, with its real requirements (numpy, python-dateutil, pytz,
  tzdata >=2022.7), and tzdata 2022.1 too, so `pandas + tzdata=2022.1` is a real conflict;
- six 1.16.0 and 1.17.0, pip, python-dateutil, pytz (noarch: python);
- cuda-version 12.4 (noarch: generic) and cuda-cudart 12.4.127 (libcudart from NVIDIA's wheel),
  which depends on `__cuda >=12`: it solves only where a driver is seen or CONDA_OVERRIDE_CUDA
  says so.

The channel is cached between runs under `$COMPAT_TEST_CHANNEL_DIR` (default
`~/.cache/compat-matrix-test-channel`), keyed on what it packages, `FORMAT` and the
interpreters it was built from, and built into a temporary folder first, so an interrupted
build is never reused.
"""

from __future__ import annotations

import asyncio
import bz2
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from compat_matrix.build import pythons
from compat_matrix.build.backends import find_uv

__all__ = ["ChannelInfo", "build_channel", "channel_pythons", "write_package"]

#: Bump when the way packages are made changes (the tables below are keyed by content).
FORMAT = 1
#: The Pythons the channel packages: the newest of each found here.
CHANNEL_MINORS = ("3.11", "3.12")
_TIMEOUT_S = 600
_BUILD = "cm_0"


@dataclass(frozen=True)
class _Pure:
    name: str
    version: str
    depends: tuple[str, ...] = ()
    #: The PyPI distribution, when it differs from the conda name.
    pypi: str = ""


@dataclass(frozen=True)
class _Binary:
    name: str
    version: str
    minors: tuple[str, ...]
    depends: tuple[str, ...] = ()
    #: Extra requirements per Python minor (pandas asks for a newer numpy on 3.12).
    per_python: dict[str, tuple[str, ...]] = field(default_factory=dict)


PURE = (
    _Pure("pip", "24.3.1"),
    _Pure("six", "1.16.0"),
    _Pure("six", "1.17.0"),
    _Pure("python-dateutil", "2.9.0.post0", ("six >=1.5",)),
    _Pure("pytz", "2024.2"),
    _Pure("tzdata", "2024.2"),
    _Pure("tzdata", "2022.1"),
)
BINARY = (
    _Binary("numpy", "1.24.4", ("3.11",)),
    _Binary("numpy", "2.2.6", ("3.11", "3.12")),
    _Binary(
        "pandas",
        "2.2.3",
        ("3.11", "3.12"),
        ("python-dateutil >=2.8.2", "pytz >=2020.1", "tzdata >=2022.7"),
        {"3.11": ("numpy >=1.23.2",), "3.12": ("numpy >=1.26.0",)},
    ),
)
CUDART = ("nvidia-cuda-runtime-cu12", "12.4.127")


@dataclass(frozen=True)
class ChannelInfo:
    """A built channel: its folder, its `file://` URL and the Python versions it packages."""

    path: Path
    url: str
    pythons: dict[str, str]  # minor -> full version


def channel_pythons() -> dict[str, pythons.Interpreter]:
    """The interpreters the channel is built from (minor -> newest of it), where they exist."""
    found: dict[str, pythons.Interpreter] = {}
    for minor in CHANNEL_MINORS:
        interpreter = pythons.select(pythons.discover(), minor)
        if interpreter is not None and not interpreter.free_threaded:
            found[minor] = interpreter
    return found


def _cache_root() -> Path:
    configured = os.environ.get("COMPAT_TEST_CHANNEL_DIR")
    return Path(configured) if configured else Path.home() / ".cache/compat-matrix-test-channel"


def _key(interpreters: dict[str, pythons.Interpreter]) -> str:
    """The channel's inputs: what it packages, how (FORMAT), and from which interpreters."""
    digest = hashlib.sha256(repr((FORMAT, PURE, BINARY, CUDART)).encode())
    for minor, interpreter in sorted(interpreters.items()):
        digest.update(f"{minor}={interpreter.path}={interpreter.version}".encode())
    return digest.hexdigest()[:16]


def build_channel() -> ChannelInfo:
    """The channel, built once per content key and reused from the cache after that."""
    interpreters = channel_pythons()
    missing = [m for m in CHANNEL_MINORS if m not in interpreters]
    if missing:
        raise RuntimeError(f"the test channel needs CPython {', '.join(missing)} on this machine")
    versions = {minor: i.version for minor, i in interpreters.items()}
    final = _cache_root() / _key(interpreters)
    final.parent.mkdir(parents=True, exist_ok=True)
    # Parallel test workers (pytest-xdist) build it once: the others wait, then reuse it.
    with FileLock(str(final) + ".lock"):
        if not (final / "noarch" / "repodata.json").exists():
            work = final.with_name(f"{final.name}.tmp{os.getpid()}")
            shutil.rmtree(work, ignore_errors=True)
            _build(work, interpreters)
            shutil.rmtree(final, ignore_errors=True)
            work.rename(final)
    return ChannelInfo(final, final.as_uri(), versions)


def _run(argv: list[str], **kwargs: object) -> None:
    subprocess.run(argv, check=True, timeout=_TIMEOUT_S, capture_output=True, **kwargs)  # type: ignore[call-overload]


def _build(channel: Path, interpreters: dict[str, pythons.Interpreter]) -> None:
    (channel / "noarch").mkdir(parents=True)
    (channel / "linux-64").mkdir()
    staging = channel.with_name(channel.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for minor, interpreter in interpreters.items():
            _python_package(channel, staging / f"python{minor}", interpreter, minor)
        newest = interpreters[CHANNEL_MINORS[-1]]
        for pure in PURE:
            stage = staging / f"{pure.name}-{pure.version}"
            _wheel_into(stage, newest, f"{pure.pypi or pure.name}=={pure.version}")
            files = _site_files(stage, "site-packages")
            write_package(
                channel / "noarch",
                pure.name,
                pure.version,
                f"pyh_{_BUILD}",
                files,
                depends=("python", *pure.depends),
                noarch="python",
            )
        for binary in BINARY:
            for minor in binary.minors:
                stage = staging / f"{binary.name}-{binary.version}-{minor}"
                _wheel_into(stage, interpreters[minor], f"{binary.name}=={binary.version}")
                tag = minor.replace(".", "")
                major, micro = minor.split(".")
                files = _site_files(stage, f"lib/python{minor}/site-packages")
                write_package(
                    channel / "linux-64",
                    binary.name,
                    binary.version,
                    f"py{tag}h_{_BUILD}",
                    files,
                    depends=(
                        f"python >={minor},<{major}.{int(micro) + 1}.0a0",
                        *binary.depends,
                        *binary.per_python.get(minor, ()),
                    ),
                )
        _cuda_packages(channel, staging, newest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    from rattler.index import index_fs

    asyncio.run(index_fs(channel, write_zst=False, write_shards=False))


def _wheel_into(stage: Path, interpreter: pythons.Interpreter, requirement: str) -> None:
    """`uv pip install --target`: the wheel's files as an installer lays them out."""
    uv = find_uv() or "uv"
    _run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--python",
            str(interpreter.path),
            "--target",
            str(stage),
            requirement,
        ]
    )
    shutil.rmtree(stage / "bin", ignore_errors=True)
    for installer in stage.glob("*.dist-info/INSTALLER"):
        installer.write_text("conda\n")  # what conda-forge's packages carry
    for record in stage.glob("*.dist-info/RECORD"):
        # The RECORD describes what the wheel installed; INSTALLER changed after it.
        record.write_text(
            "".join(
                line + "\n"
                for line in record.read_text().splitlines()
                if not line.split(",")[0].endswith("INSTALLER")
            )
        )


def _site_files(stage: Path, under: str) -> dict[str, Path]:
    return {
        f"{under}/{path.relative_to(stage).as_posix()}": path
        for path in sorted(stage.rglob("*"))
        if (path.is_file() or path.is_symlink())
        and "__pycache__" not in path.parts
        and path != stage / ".lock"  # uv's lock of the --target folder
    }


def _python_package(
    channel: Path, stage: Path, interpreter: pythons.Interpreter, minor: str
) -> None:
    """A `python` package from an installed CPython: its prefix without site-packages or tests."""
    source = interpreter.path.resolve().parents[1]
    stdlib = f"lib/python{minor}"
    skipped = (
        f"{stdlib}/site-packages/",
        f"{stdlib}/test/",
        f"{stdlib}/idlelib/",
        f"{stdlib}/tkinter/",
        f"{stdlib}/turtledemo/",
        f"{stdlib}/lib2to3/tests/",
    )
    files: dict[str, Path] = {}
    for path in sorted(source.joinpath(stdlib).rglob("*")):
        rel = path.relative_to(source).as_posix()
        if (
            "__pycache__" in path.parts
            or rel.startswith(skipped)
            or path.is_dir()
            or path.suffix == ".a"
        ):
            continue
        files[rel] = path
    for path in source.joinpath("lib").glob("libpython*.so*"):
        files[path.relative_to(source).as_posix()] = path
    files[f"bin/python{minor}"] = source / f"bin/python{minor}"
    copied: dict[str, Path] = {}
    for rel, path in files.items():
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            target.symlink_to(os.readlink(path))
        else:
            shutil.copy2(path, target)
            _relative_runpath(target, str(source), stage)
        copied[rel] = target
    for alias in ("python", "python3"):
        (stage / "bin" / alias).symlink_to(f"python{minor}")
        copied[f"bin/{alias}"] = stage / "bin" / alias
    readme = stage / stdlib / "site-packages" / "README.txt"
    readme.parent.mkdir(parents=True, exist_ok=True)
    readme.write_text("This directory exists so that 3rd party packages can be installed here.\n")
    copied[f"{stdlib}/site-packages/README.txt"] = readme
    write_package(
        channel / "linux-64",
        "python",
        interpreter.version,
        f"h_{_BUILD}_cpython",
        copied,
        depends=(),
        placeholder=str(source),
    )


def _relative_runpath(path: Path, prefix: str, stage: Path) -> None:
    """RUNPATH entries under the old prefix become `$ORIGIN/...` (conda-build does the same)."""
    with path.open("rb") as handle:
        if handle.read(4) != b"\x7fELF":
            return
    patchelf = shutil.which("patchelf") or str(Path(sys.executable).parent / "patchelf")
    shown = subprocess.run(
        [patchelf, "--print-rpath", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    entries = [e for e in shown.stdout.strip().split(":") if e]
    if not any(e.startswith(prefix) for e in entries):
        return
    here = path.parent.relative_to(stage)
    fixed = [
        "$ORIGIN/" + os.path.relpath(Path(e[len(prefix) :].lstrip("/")), here)
        if e.startswith(prefix)
        else e
        for e in entries
    ]
    _run([patchelf, "--set-rpath", ":".join(fixed), str(path)])


def write_package(
    subdir: Path,
    name: str,
    version: str,
    build: str,
    files: dict[str, Path],
    *,
    depends: tuple[str, ...],
    constrains: tuple[str, ...] = (),
    noarch: str = "",
    placeholder: str = "",
) -> None:
    """A `.tar.bz2` conda package: info/index.json, paths.json, files (+ link.json for noarch)."""
    index: dict[str, object] = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": list(depends),
        "constrains": list(constrains),
        "license": "see the upstream project",
        "subdir": subdir.name,
        "timestamp": 1_700_000_000_000,
    }
    if noarch:
        index["noarch"] = noarch
    else:
        index.update(platform="linux", arch="x86_64")
    needle = placeholder.encode()
    paths = []
    for rel, path in sorted(files.items()):
        entry: dict[str, object] = {"_path": rel}
        if path.is_symlink():
            entry["path_type"] = "softlink"
        else:
            data = path.read_bytes()
            entry.update(
                path_type="hardlink",
                sha256=hashlib.sha256(data).hexdigest(),
                size_in_bytes=len(data),
            )
            if needle and needle in data and b"\0" not in data:
                entry.update(prefix_placeholder=placeholder, file_mode="text")
        paths.append(entry)
    info = {
        "info/index.json": json.dumps(index, indent=2),
        "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}, indent=2),
        "info/files": "".join(f"{rel}\n" for rel in sorted(files)),
    }
    if noarch == "python":
        info["info/link.json"] = json.dumps(
            {"noarch": {"type": "python"}, "package_metadata_version": 1}
        )
    target = subdir / f"{name}-{version}-{build}.tar.bz2"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for member, text in info.items():
            data = text.encode()
            tarinfo = tarfile.TarInfo(member)
            tarinfo.size = len(data)
            tarinfo.mtime = int(time.time())
            tar.addfile(tarinfo, io.BytesIO(data))
        for rel, path in sorted(files.items()):
            tar.add(path, arcname=rel, recursive=False)
    target.write_bytes(bz2.compress(raw.getvalue(), compresslevel=1))


def _cuda_packages(channel: Path, staging: Path, interpreter: pythons.Interpreter) -> None:
    """cuda-version 12.4 and a cuda-cudart that needs a driver (`__cuda >=12`) to install."""
    write_package(
        channel / "noarch",
        "cuda-version",
        "12.4",
        "h_cm_0",
        {},
        depends=(),
        constrains=("__cuda >=12", "cudatoolkit 12.4|12.4.*"),
        noarch="generic",
    )
    stage = staging / "cudart"
    _wheel_into(stage, interpreter, f"{CUDART[0]}=={CUDART[1]}")
    files = {
        f"lib/{path.name}": path
        for path in sorted(stage.rglob("libcudart.so*"))
        if re.match(r"libcudart\.so", path.name)
    }
    write_package(
        channel / "linux-64",
        "cuda-cudart",
        CUDART[1],
        "h_cm_0",
        files,
        depends=("cuda-version >=12.4,<12.5.0a0", "__cuda >=12"),
    )
