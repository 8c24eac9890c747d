"""Cells for another platform answered here, static only: a resolve for that platform, and the
wheels it would install read without running them (ELF, Mach-O, PE).

Real wheels from PyPI for Linux aarch64, macOS arm64 and Windows x86-64; the broken ones are
those same wheels repackaged without the libraries they bundle (what a bad `delocate` /
`delvewheel` / `auditwheel` run ships), or renamed to a platform tag their binaries contradict.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from _gpu_fixtures import NVJPEG_WHEEL, download_wheel
from _native_fixtures import by_target, probe_process

from compat_matrix.build.foreign import foreign_target

pytestmark = pytest.mark.slow

#: Label -> (uv --python-platform, first pip --platform, runner glibc, runner macOS).
TARGETS = {
    "ubuntu-24.04-arm": ("aarch64-manylinux_2_39", "manylinux_2_39_aarch64", "2.39", None),
    "ubuntu-22.04": ("x86_64-manylinux_2_35", "manylinux_2_35_x86_64", "2.35", None),
    "macos-15": ("aarch64-apple-darwin", "macosx_15_0_arm64", None, "15.0"),
    "macos-13": ("x86_64-apple-darwin", "macosx_13_0_x86_64", None, "13.0"),
    "windows-latest": ("x86_64-pc-windows-msvc", "win_amd64", None, None),
    "windows-11-arm": ("aarch64-pc-windows-msvc", "win_arm64", None, None),
}


@pytest.mark.parametrize("label", sorted(TARGETS))
def test_runner_label_to_resolver_platform(label: str) -> None:
    target = foreign_target(label)
    assert target is not None
    uv, pip, glibc, macos = TARGETS[label]
    assert (target.uv_platform, target.pip_platforms[0], target.glibc, target.macos) == (
        uv,
        pip,
        glibc,
        macos,
    )
    if glibc:  # pip does not widen manylinux_2_X itself: every older tag is listed
        assert target.pip_platforms[-2].startswith("manylinux_2_17_")
    assert foreign_target("self-hosted-gpu") is None


def _download(dest: Path, platform: str, *requirements: str) -> list[Path]:
    done = subprocess.run(
        [
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
            "3.12",
            "--platform",
            platform,
            "--dest",
            str(dest),
            *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return sorted(dest.glob("*.whl"))


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("foreign-wheels")
    return {
        "linux-arm64": _download(root / "arm", "manylinux_2_28_aarch64", "pillow==11.0.0"),
        "macos-arm64": _download(
            root / "mac", "macosx_14_0_arm64", "pillow==11.0.0", "numpy==2.1.3"
        ),
        "windows-x86_64": _download(root / "win", "win_amd64", "numpy==2.1.3"),
    }


def _without(wheel: Path, folder: str, dest: Path, name: str | None = None) -> Path:
    """`wheel` repackaged without the members under `folder` (its bundled libraries)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / (name or wheel.name)
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(out, "w") as target:
        for member in source.namelist():
            if folder and folder in member:
                continue
            target.writestr(member, source.read(member))
    return out


def _read(system: str, machine: str, wheels: list[Path], cwd: Path, *extra: str) -> Any:
    args = ["--system", system, "--machine", machine, *extra, *map(str, wheels)]
    done = probe_process(sys.executable, "wheel_probe", args, cwd)
    document = json.loads(done.stdout)
    assert document["probe"] == "wheel", done.stderr
    return document, done.returncode


@pytest.mark.parametrize(
    ("key", "system", "machine", "extra"),
    [
        ("linux-arm64", "linux", "arm64", ["--glibc", "2.39"]),
        ("macos-arm64", "macos", "arm64", ["--macos", "15.0"]),
        ("windows-x86_64", "windows", "x86_64", []),
    ],
)
def test_good_wheels_pass(
    wheels: dict[str, list[Path]],
    tmp_path: Path,
    key: str,
    system: str,
    machine: str,
    extra: list[str],
) -> None:
    document, status = _read(system, machine, wheels[key], tmp_path, *extra)
    assert status == 0, document
    summary = by_target(document)["environment"]
    assert summary["details"]["static_only"] is True
    assert "static only" in summary["message"]


def test_linux_wheel_without_its_bundled_libraries(
    wheels: dict[str, list[Path]], tmp_path: Path
) -> None:
    broken = _without(wheels["linux-arm64"][0], "pillow.libs/", tmp_path / "w")
    document, status = _read("linux", "arm64", [broken], tmp_path, "--glibc", "2.39")
    assert status == 1
    pillow = by_target(document)["pillow"]
    assert (pillow["status"], pillow["category"]) == ("fail", "missing-library")
    assert "pillow 11.0.0 (static, linux arm64)" in pillow["message"]
    assert "which no wheel ships" in pillow["message"]


def test_linux_wheel_for_another_machine(wheels: dict[str, list[Path]], tmp_path: Path) -> None:
    document, status = _read("linux", "x86_64", wheels["linux-arm64"], tmp_path)
    assert status == 1
    pillow = by_target(document)["pillow"]
    assert pillow["category"] == "platform-tag"
    assert "built for aarch64, not x86_64" in pillow["message"]


def test_macos_dylib_that_resolves_to_nothing(
    wheels: dict[str, list[Path]], tmp_path: Path
) -> None:
    pillow = next(w for w in wheels["macos-arm64"] if w.name.startswith("pillow"))
    broken = _without(pillow, "PIL/.dylibs/", tmp_path / "w")
    document, status = _read("macos", "arm64", [broken], tmp_path, "--macos", "15.0")
    assert status == 1
    result = by_target(document)["pillow"]
    assert result["category"] == "missing-library"
    assert "@loader_path/.dylibs/" in result["message"]
    assert "resolves to no file in the wheels" in result["message"]


def test_macos_minimum_version_against_tag_and_runner(
    wheels: dict[str, list[Path]], tmp_path: Path
) -> None:
    numpy = next(w for w in wheels["macos-arm64"] if w.name.startswith("numpy"))
    # The runner is older than the binaries' LC_BUILD_VERSION minos (14.0).
    document, status = _read("macos", "arm64", [numpy], tmp_path, "--macos", "13.0")
    assert status == 1
    assert "needs macOS 14.0; the runner has macOS 13.0" in by_target(document)["numpy"]["message"]
    # A wheel whose tag promises an older macOS than its binaries need.
    lying = _without(numpy, "", tmp_path / "w", numpy.name.replace("macosx_14_0", "macosx_11_0"))
    document, status = _read("macos", "arm64", [lying], tmp_path, "--macos", "15.0")
    assert status == 1
    result = by_target(document)["numpy"]
    assert result["category"] == "platform-tag"
    assert "needs macOS 14.0 but the wheel's tag promises macOS 11.0" in result["message"]


def test_windows_dll_that_no_wheel_ships(wheels: dict[str, list[Path]], tmp_path: Path) -> None:
    broken = _without(wheels["windows-x86_64"][0], "numpy.libs/", tmp_path / "w")
    document, status = _read("windows", "x86_64", [broken], tmp_path)
    assert status == 1
    result = by_target(document)["numpy"]
    assert result["category"] == "missing-library"
    assert "imports libscipy_openblas" in json.dumps(result["details"])
    # The system set and the MSVC runtime are never reported.
    problems = [f["problem"].lower() for f in result["details"]["files"]]
    assert not any("kernel32" in p or "vcruntime140" in p for p in problems)


def test_a_local_run_answers_other_platforms_static_only(tmp_path: Path) -> None:
    """macOS: one cell has no wheel (unsupported), one resolves and reads; a local project
    cannot be resolved for another platform, so that cell stays skip/other-platform."""
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "pyproject.toml").write_text(
        '[project]\nname = "proj"\nversion = "0.1"\n', encoding="utf-8"
    )
    (tmp_path / "compat.yml").write_text(
        "matrix:\n"
        "  os: [macos-15, windows-latest]\n"
        '  python: ["3.12"]\n'
        '  numpy: ["1.21.6", "2.1.3"]\n'
        "  include:\n"
        '    - {os: ubuntu-24.04-arm, python: "3.12", proj: "./proj"}\n'
        "import: [numpy]\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "run", "compat.yml", "-o", "out", "-j", "2"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cells = json.loads((tmp_path / "out" / "compat.json").read_text(encoding="utf-8"))["cells"]
    by = {(c["axes"]["os"], c["axes"].get("numpy")): c for c in cells}
    old = by[("macos-15", "1.21.6")]
    assert (old["status"], old["category"], old["static_only"]) == (
        "unsupported",
        "no-distribution",
        True,
    )
    assert "resolved for macos-15 (macOS arm64)" in old["message"]
    new = by[("windows-latest", "2.1.3")]
    assert (new["status"], new["static_only"]) == ("pass", True)
    assert new["resolved"] == {"numpy": "2.1.3"}
    assert new["probes"][-1]["details"]["wheels"] == ["numpy-2.1.3-cp312-cp312-win_amd64.whl"]
    local = by[("ubuntu-24.04-arm", None)]
    assert (local["status"], local["category"], local["static_only"]) == (
        "skip",
        "other-platform",
        False,
    )
    markdown = (tmp_path / "out" / "compat.md").read_text(encoding="utf-8")
    assert "static only" in markdown


def test_another_platforms_cuda_wheel_against_the_listed_gpus(tmp_path: Path) -> None:
    """The wheels a platform would install are read for GPU coverage too (a GH200 user's
    aarch64 wheels, read on x86-64): here NVIDIA's nvjpeg wheel, built for sm_50 and newer."""
    wheel = download_wheel(NVJPEG_WHEEL, tmp_path)
    gpus = ["--gpu", "K80=sm_37", "--gpu", "H100=sm_90"]
    document, status = _read("linux", "x86_64", [wheel], tmp_path, "--glibc", "2.39", *gpus)
    assert status == 1
    result = by_target(document)["nvidia-nvjpeg-cu12"]
    assert result["category"] == "cuda-arch"
    assert "no kernel for K80 (sm_37)" in result["message"]
    assert "H100" not in result["message"]
