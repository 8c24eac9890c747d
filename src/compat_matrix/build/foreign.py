"""Answer what can be answered here for a cell whose `os` is another platform: static only.

A Linux x86-64 runner cannot import a macOS arm64 wheel, but it can ask uv what that platform
would install (`uv pip compile --python-platform aarch64-apple-darwin`): no wheel for the
combination is `unsupported`, requirements that exclude each other are `conflict`, exactly as
on the platform itself. It can then download those wheels (`pip download --platform`) and read
them with the wheel probe (ELF, Mach-O, PE: machine, minimum OS version against the tag,
libraries that resolve to nothing). Every such verdict is marked static only; the cell's
imports and loads run when `plan --github` sends it to its own runner.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compat_matrix.build.install_errors import classify_uv
from compat_matrix.build.platforms import Platform, runner_platform
from compat_matrix.matrix.model import Status

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ForeignTarget",
    "StaticAnswer",
    "foreign_target",
    "resolve_and_download",
    "wheel_probe_args",
]

#: glibc of GitHub's Ubuntu images (the manylinux tag a wheel needs at most).
_UBUNTU_GLIBC = {"20.04": "2.31", "22.04": "2.35", "24.04": "2.39"}
_DEFAULT_GLIBC = "2.35"
#: macOS of GitHub's macOS images; `-latest` and unknown numbers: the oldest still offered.
_DEFAULT_MACOS = "14.0"


@dataclass(frozen=True)
class ForeignTarget:
    """A runner label as the resolver and the wheel reader need it."""

    label: str
    platform: Platform
    #: `uv pip compile --python-platform` value.
    uv_platform: str
    #: `pip download --platform` values (pip does not widen manylinux_2_X tags itself).
    pip_platforms: tuple[str, ...]
    glibc: str | None = None
    macos: str | None = None


def foreign_target(label: str) -> ForeignTarget | None:
    """The resolver's view of runner `label`; None for a label this table does not know."""
    platform = runner_platform(label)
    if platform is None:
        return None
    arch = "aarch64" if platform.machine == "arm64" else "x86_64"
    if platform.system == "linux":
        version = label.lower().removeprefix("ubuntu-").removesuffix("-arm")
        glibc = _UBUNTU_GLIBC.get(version, _DEFAULT_GLIBC)
        minor = int(glibc.split(".")[1])
        tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, 16, -1)]
        return ForeignTarget(
            label,
            platform,
            f"{arch}-manylinux_2_{minor}",
            (*tags, f"manylinux2014_{arch}"),
            glibc=glibc,
        )
    if platform.system == "macos":
        number = label.lower().removeprefix("macos-").split("-")[0]
        macos = f"{number}.0" if number.isdigit() else _DEFAULT_MACOS
        mac_arch = "arm64" if platform.machine == "arm64" else "x86_64"
        return ForeignTarget(
            label,
            platform,
            f"{arch}-apple-darwin",
            (f"macosx_{macos.replace('.', '_')}_{mac_arch}",),
            macos=macos,
        )
    win = "win_arm64" if platform.machine == "arm64" else "win_amd64"
    return ForeignTarget(label, platform, f"{arch}-pc-windows-msvc", (win,))


@dataclass(frozen=True)
class StaticAnswer:
    """What a foreign-platform resolve and read found: a status, or findings to judge."""

    #: `unsupported` / `conflict` / `error` from the resolve; None when it resolved.
    status: Status | None
    category: str | None
    message: str
    hint: str
    #: Distribution -> version the platform would install.
    resolved: dict[str, str]
    #: The downloaded wheels, for the wheel probe to read.
    wheels: tuple[str, ...] = ()
    duration_s: float = 0.0


def _pins(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, sep, version = line.partition("==")
        if sep and name and not line.startswith("-"):
            pins[name.strip().split("[")[0]] = version.split(";")[0].strip()
    return pins


def resolve_and_download(
    target: ForeignTarget,
    requirements: Sequence[str],
    python: str,
    *,
    uv: str,
    only_binary: bool,
    timeout: float,
    work: Path,
    compile_options: Sequence[str] = (),
    download_options: Sequence[str] = (),
) -> StaticAnswer:
    """Resolve `requirements` for `target` and Python `python` (X.Y) and download the wheels
    the resolution names (for the wheel probe to read). `compile_options`: the cell's indexes
    and version selection for uv; `download_options`: its indexes for pip."""
    started = time.monotonic()
    argv = [
        uv,
        "pip",
        "compile",
        "-",
        "--python-platform",
        target.uv_platform,
        "--python-version",
        python,
        "--no-header",
        "--no-annotate",
        "--quiet",
    ]
    if only_binary:
        argv += ["--only-binary", ":all:"]
    argv += compile_options
    env = None
    if target.macos:  # uv reads the minimum macOS it resolves for from the environment
        env = dict(os.environ, MACOSX_DEPLOYMENT_TARGET=target.macos)
    try:
        done = subprocess.run(
            argv,
            input="\n".join(requirements) + "\n",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return StaticAnswer("error", "timeout", "the resolve did not finish", "", {})
    if done.returncode != 0:
        failure = classify_uv(done.stderr + done.stdout, only_binary=only_binary)
        return StaticAnswer(
            failure.status,
            failure.category,
            f"resolved for {target.label} ({target.platform}): {failure.message}",
            failure.hint,
            {},
            duration_s=time.monotonic() - started,
        )
    pins = _pins(done.stdout)
    if not pins:
        return StaticAnswer(None, None, "", "", pins, duration_s=time.monotonic() - started)
    dest = Path(tempfile.mkdtemp(prefix="wheels-", dir=work))
    download = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--dest",
        str(dest),
    ]
    for platform in target.pip_platforms:
        download += ["--platform", platform]
    download += download_options
    download += [f"{name}=={version}" for name, version in pins.items()]
    remaining = max(timeout - (time.monotonic() - started), 1.0)
    try:
        fetched = subprocess.run(
            download, capture_output=True, text=True, timeout=remaining, check=False
        )
    except subprocess.TimeoutExpired:
        return StaticAnswer("error", "timeout", "downloading the wheels did not finish", "", pins)
    if fetched.returncode != 0:
        message = fetched.stderr.strip().splitlines()[-1:] or ["pip download failed"]
        return StaticAnswer(
            "error", "network", f"cannot download {target.label}'s wheels: {message[0]}", "", pins
        )
    wheels = tuple(sorted(str(p) for p in dest.glob("*.whl")))
    return StaticAnswer(
        None, None, "", "", pins, wheels=wheels, duration_s=time.monotonic() - started
    )


def wheel_probe_args(
    target: ForeignTarget, wheels: Sequence[str], gpu_args: Sequence[str] = ()
) -> list[str]:
    """The wheel probe's command line for `target`'s wheels (`gpu_args`: `--gpu NAME=sm_XY`)."""
    args = ["--system", target.platform.system, "--machine", target.platform.machine, *gpu_args]
    if target.glibc:
        args += ["--glibc", target.glibc]
    if target.macos:
        args += ["--macos", target.macos]
    return [*args, *wheels]
