"""probes/cuda_probe.py: the driver, the CUDA libraries in an environment, and frameworks.

The CUDA libraries are real: nvidia-cuda-runtime-cu12/-cu11 and nvidia-nvtx-cu12 wheels from
PyPI, installed with uv, loaded by the probe with ctypes (cudaRuntimeGetVersion is NVIDIA's own
code answering). This machine has no GPU, so the *driver* is a fixture where a test needs one:
a gcc-built libcuda.so.1 exporting cuDriverGetVersion/cuInit, put first on LD_LIBRARY_PATH.
Libraries that must misbehave (crash on load, a stray copy with another version) are gcc-built
too. The framework child is exercised with a real jax/jaxlib (CPU build) from PyPI.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from _elf_fixtures import CC, c_library, fake_dist, requires_cc, run_probe
from _native_fixtures import edge_interpreter, load_probe_module

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CUDA probe: Linux")

PROBES = Path(__file__).resolve().parents[1] / "probes"

FAKE_DRIVER = r"""
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int env_int(const char *name, int fallback) {
    const char *value = getenv(name);
    return value ? atoi(value) : fallback;
}
int cuDriverGetVersion(int *version) { *version = env_int("FAKE_CUDA_VERSION", 12020); return 0; }
int cuInit(unsigned int flags) {
    (void)flags;
    sleep(env_int("FAKE_CUINIT_SLEEP", 0));
    return env_int("FAKE_CUINIT", 100);  /* CUDA_ERROR_NO_DEVICE */
}
int cuGetErrorName(int code, const char **name) {
    *name = code == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN";
    return 0;
}
int cuDeviceGetCount(int *count) { *count = env_int("FAKE_DEVICES", 0); return 0; }
int cuDeviceGet(int *device, int ordinal) { *device = ordinal; return 0; }
int cuDeviceGetName(char *name, int len, int device) {
    (void)device; strncpy(name, "Fake GPU", len); return 0;
}
int cuDeviceGetAttribute(int *value, int attribute, int device) {
    (void)device; *value = attribute == 75 ? 9 : 0; return 0;
}
"""
STRAY_CUDART = "int cudaRuntimeGetVersion(int *v) { *v = 11080; return 0; }\n"
CRASHING = "__attribute__((constructor)) static void boom(void) { *(volatile int *)0 = 1; }\n"
CUFFT = (
    "int cufftGetProperty(int kind, int *value) {\n"
    "    static const int parts[] = {11, 2, 1};\n"
    "    *value = parts[kind];\n"
    "    return 0;\n"
    "}\n"
)


def _host_has_driver() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


HOST_HAS_DRIVER = _host_has_driver()


def cuda(
    python: str | Path,
    cwd: Path,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run the probe; the document (run_probe checks the exit status matches the results)."""
    full = {"LD_LIBRARY_PATH": ""}
    full.update(env or {})
    document, _ = run_probe(str(python), "cuda_probe", list(args), cwd, env=full, extra_flags=flags)
    assert document["probe"] == "cuda"
    return document


def results(document: dict[str, Any], target: str) -> list[dict[str, Any]]:
    return [r for r in document["results"] if r["target"] == target]


def one(document: dict[str, Any], target: str, category: str | None = None) -> dict[str, Any]:
    found = [r for r in results(document, target) if category is None or r["category"] == category]
    assert len(found) == 1, (target, category, document["results"])
    return found[0]


# -- pure functions ------------------------------------------------------------------------------


def test_library_names_and_versions() -> None:
    probe = load_probe_module("cuda_probe")
    assert probe.classify_library("libcudart.so.12") == ("cudart", "cudart", True, (12,))
    # auditwheel renames bundled copies (torch/lib, *.libs): the hash is not part of the name
    assert probe.classify_library("libcudart-9335f6a2.so.11.0")[1:] == ("cudart", True, (11, 0))
    assert probe.classify_library("libcudart.so.12.4.127")[3] == (12, 4, 127)
    assert probe.classify_library("libnvrtc-builtins.so.12.4")[1] == "nvrtc"
    assert probe.classify_library("libcudnn_ops_infer.so.8")[1:3] == ("cudnn", True)
    assert probe.classify_library("libcublasLt.so.12")[1] == "cublas"
    # libnvToolsExt.so.1 keeps its soname across CUDA releases: "1" is no version
    assert probe.classify_library("libnvToolsExt.so.1")[1:3] == ("nvtx", False)
    for other in ("libOpenCL.so.1", "libcuda.so.1", "libtorch_cuda.so", "libcudart.a"):
        assert probe.classify_library(other) is None
    assert probe.version_tuple("12.4.127+cu12") == (12, 4, 127)
    assert probe.cuda_text(12040) == "12.4"
    assert probe.cuda_text(11080) == "11.8"
    assert not probe.versions_conflict((12,), (12, 4, 127))
    assert probe.versions_conflict((11, 8), (12, 4))
    assert probe.versions_conflict((12, 1), (12, 4, 127))


# -- gcc-built fixtures, no network --------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a gcc-built libcuda.so.1 (behaviour set by FAKE_* variables)."""
    if CC is None:
        pytest.skip("needs a C compiler (gcc)")
    folder = tmp_path_factory.mktemp("driver")
    c_library(folder / "libcuda.so.1", FAKE_DRIVER)
    return folder


@requires_cc
def test_environment_without_cuda_is_one_pass(tmp_path: Path) -> None:
    """No CUDA library and no framework: one pass, and no no-gpu skip to mark the cell."""
    document = cuda(sys.executable, tmp_path, flags=("-S",))
    [result] = document["results"]
    assert (result["target"], result["status"]) == ("cuda", "pass")
    assert result["message"] == "no CUDA components in this environment"
    assert document["libraries"] == []


@requires_cc
def test_hung_cuinit_is_cut_at_the_init_timeout(tmp_path: Path, fake_driver: Path) -> None:
    start = time.monotonic()
    document = cuda(
        sys.executable,
        tmp_path,
        ["--init-timeout", "1", "--cuda", "12.4"],
        env={"LD_LIBRARY_PATH": str(fake_driver), "FAKE_CUINIT_SLEEP": "60"},
        flags=("-S",),
    )
    assert time.monotonic() - start < 30
    driver = one(document, "driver")
    assert (driver["status"], driver["category"]) == ("fail", "timeout")
    assert "cuInit did not return within 1 s" in driver["message"]
    assert document["driver"]["cuda"] == "12.2"  # read before cuInit, so not lost


@requires_cc
def test_driver_with_a_device_passes(tmp_path: Path, fake_driver: Path) -> None:
    document = cuda(
        sys.executable,
        tmp_path,
        ["--cuda", "12.4"],
        env={
            "LD_LIBRARY_PATH": str(fake_driver),
            "FAKE_CUINIT": "0",
            "FAKE_DEVICES": "1",
            "FAKE_CUDA_VERSION": "12080",
        },
        flags=("-S",),
    )
    driver = one(document, "driver")
    assert driver["status"] == "pass"
    assert driver["message"] == "driver (CUDA 12.8), 1 device(s): Fake GPU (sm_90)"
    assert document["driver"]["path"] == str(fake_driver / "libcuda.so.1")


@requires_cc
def test_crashing_library_does_not_hide_the_others(tmp_path: Path) -> None:
    """A library whose constructor segfaults is blamed; the next one is still asked."""
    site = tmp_path / "site"
    lib = site / "fakefw" / "lib"
    made = [
        c_library(lib / "libcublas.so.12", CRASHING),
        c_library(lib / "libcufft.so.11", CUFFT),
    ]
    fake_dist(site, "fakefw", "1.0", made)
    document = cuda(sys.executable, tmp_path, ["--path", str(site)], flags=("-S",))
    by_family = {copy["family"]: copy for copy in document["libraries"]}
    assert "crashed" in by_family["cublas"]["version_error"]
    assert by_family["cublas"]["version"] == "12"  # from its soname
    assert by_family["cufft"]["reported"] == "11.2.1"  # cufftGetProperty answered
    assert by_family["cufft"]["owner"] == "fakefw 1.0"
    assert one(document, "cufft")["status"] == "pass"


# -- real nvidia wheels --------------------------------------------------------------------------


def uv_env(uv_bin: str, python: str, root: Path, *packages: str) -> Path:
    """A uv virtual environment with ``packages`` (cached per session by path)."""
    marker = root / ".ready"
    if marker.exists():
        return root
    commands = [[uv_bin, "venv", "--quiet", "--python", python, str(root)]]
    if packages:
        python = str(root / "bin" / "python")
        commands.append([uv_bin, "pip", "install", "--quiet", "--python", python, *packages])
    for argv in commands:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{argv} failed:\n{done.stderr}"
    marker.write_text("ok\n")
    return root


CU12 = ("nvidia-cuda-runtime-cu12==12.4.127", "nvidia-nvtx-cu12==12.4.127")


@pytest.fixture(scope="module")
def cu12_env(tmp_path_factory: pytest.TempPathFactory, uv_bin: str, python_for: Any) -> Path:
    python = str(python_for("3.11").path)
    return uv_env(uv_bin, python, tmp_path_factory.getbasetemp() / "cuda-cu12", *CU12)


@pytest.fixture(params=["oldest", "newest"])
def edge_python(request: pytest.FixtureRequest, interpreters: list[Any]) -> str:
    return str(edge_interpreter(interpreters, request.param).path)


@pytest.mark.slow
@pytest.mark.skipif(HOST_HAS_DRIVER, reason="this machine has an NVIDIA driver")
def test_wheels_listed_with_versions_and_gpu_checks_skipped(
    edge_python: str, uv_bin: str, tmp_path: Path
) -> None:
    """Under the oldest and newest interpreters: libraries, versions, no-gpu skip, no fail."""
    env = uv_env(uv_bin, edge_python, tmp_path / "env", *CU12)
    document = cuda(env / "bin" / "python", tmp_path)
    assert not [r for r in document["results"] if r["status"] in ("fail", "error")]
    driver = one(document, "driver")
    assert (driver["status"], driver["category"]) == ("skip", "no-gpu")
    by_family = {copy["family"]: copy for copy in document["libraries"]}
    cudart = by_family["cudart"]
    assert cudart["owner"] == "nvidia-cuda-runtime-cu12 12.4.127"
    assert cudart["display"] == "nvidia/cuda_runtime/lib/libcudart.so.12"
    assert cudart["reported"] == "12.4"  # cudaRuntimeGetVersion of the real library
    assert cudart["version"] == "12.4.127"
    nvtx = by_family["nvtx"]
    assert nvtx["version"] == "12.4.127"  # the wheel's: libnvToolsExt.so.1's "1" is no version
    assert one(document, "cudart")["message"] == "cudart 12.4.127: 1 copy"


@pytest.mark.slow
@requires_cc
def test_runtime_newer_than_driver(cu12_env: Path, fake_driver: Path, tmp_path: Path) -> None:
    """Real cudart 12.4 (nvidia-cuda-runtime-cu12) with a 12.2 driver: a cuda-driver failure.

    Only the driver is a fixture (gcc-built libcuda.so.1 on LD_LIBRARY_PATH reporting 12020);
    the runtime is the real wheel, whose version the probe gets by calling it.
    """
    document = cuda(
        cu12_env / "bin" / "python",
        tmp_path,
        env={"LD_LIBRARY_PATH": str(fake_driver), "FAKE_CUDA_VERSION": "12020"},
    )
    driver = one(document, "driver")
    assert (driver["status"], driver["category"]) == ("skip", "no-gpu")  # no device behind it
    failure = one(document, "cudart", "cuda-driver")
    assert failure["status"] == "fail"
    assert "is CUDA 12.4, newer than the driver (CUDA 12.2)" in failure["message"]
    assert "nvidia-cuda-runtime-cu12 12.4.127" in failure["message"]
    assert "minor-version compatibility" in failure["message"]
    assert ">= 550.54.14 (CUDA 12.4)" in failure["hint"]
    assert "nvidia-cuda-runtime-cu12<12.3" in failure["hint"]
    assert failure["details"]["runtime"] == "12.4"
    assert failure["details"]["driver"] == "12.2"

    newer = cuda(
        cu12_env / "bin" / "python",
        tmp_path,
        env={"LD_LIBRARY_PATH": str(fake_driver), "FAKE_CUDA_VERSION": "12060"},
    )
    assert not [r for r in newer["results"] if r["status"] == "fail"]

    major = cuda(
        cu12_env / "bin" / "python",
        tmp_path,
        env={"LD_LIBRARY_PATH": str(fake_driver), "FAKE_CUDA_VERSION": "11080"},
    )
    failure = one(major, "cudart", "cuda-driver")
    assert "CUDA driver version is insufficient for CUDA runtime version" in failure["message"]


@pytest.mark.slow
def test_two_cudart_majors_are_inconsistent(
    tmp_path_factory: pytest.TempPathFactory, uv_bin: str, python_for: Any, tmp_path: Path
) -> None:
    """Real cu11 and cu12 runtime wheels in one environment (both in nvidia/cuda_runtime/lib)."""
    env = uv_env(
        uv_bin,
        str(python_for("3.11").path),
        tmp_path_factory.getbasetemp() / "cuda-cu11-cu12",
        *CU12,
        "nvidia-cuda-runtime-cu11==11.8.89",
    )
    document = cuda(env / "bin" / "python", tmp_path)
    failure = one(document, "cudart", "inconsistent-env")
    assert failure["status"] == "fail"
    assert failure["message"].startswith("2 versions of cudart in this environment: 11.8.89 in ")
    assert (
        "nvidia/cuda_runtime/lib/libcudart.so.11.0 (nvidia-cuda-runtime-cu11 11.8.89)"
        in failure["message"]
    )
    assert (
        "12.4.127 in nvidia/cuda_runtime/lib/libcudart.so.12 (nvidia-cuda-runtime-cu12 12.4.127)"
        in failure["message"]
    )
    assert "remove nvidia-cuda-runtime-cu11 11.8.89 or nvidia-cuda-runtime-cu12" in failure["hint"]


@pytest.mark.slow
@requires_cc
def test_copy_bundled_in_another_package_is_found(cu12_env: Path, tmp_path: Path) -> None:
    """An auditwheel-renamed cudart 11.8 inside a package (as old torch wheels bundled it)."""
    site = tmp_path / "site"
    bundled = c_library(
        site / "fakefw" / "lib" / "libcudart-0a1b2c3d.so.11.0",
        STRAY_CUDART,
        soname="libcudart-0a1b2c3d.so.11.0",
    )
    fake_dist(site, "fakefw", "2.1.0", [bundled])
    document = cuda(cu12_env / "bin" / "python", tmp_path, ["--path", str(site)])
    failure = one(document, "cudart", "inconsistent-env")
    assert "11.8 in fakefw/lib/libcudart-0a1b2c3d.so.11.0 (fakefw 2.1.0)" in failure["message"]
    assert "12.4.127 in nvidia/cuda_runtime/lib/libcudart.so.12" in failure["message"]
    copies = {c["display"]: c for c in failure["details"]["copies"]}
    assert copies["fakefw/lib/libcudart-0a1b2c3d.so.11.0"]["version_source"] == "library"


# -- frameworks ----------------------------------------------------------------------------------

JAX = ("jax==0.4.30", "jaxlib==0.4.30")


@pytest.fixture(scope="module")
def jax_env(tmp_path_factory: pytest.TempPathFactory, uv_bin: str, python_for: Any) -> Path:
    python = str(python_for("3.11").path)
    return uv_env(uv_bin, python, tmp_path_factory.getbasetemp() / "cuda-jax", *JAX)


@pytest.mark.slow
def test_cpu_only_jax_is_visible_and_fails_a_cuda_cell(jax_env: Path, tmp_path: Path) -> None:
    """Real jax/jaxlib CPU wheels: imported in the child, devices listed, CPU-only reported."""
    document = cuda(jax_env / "bin" / "python", tmp_path)
    result = one(document, "jax")
    assert result["status"] == "pass"
    assert (
        result["message"] == "jax 0.4.30 (jaxlib 0.4.30) is a CPU-only build: nothing CUDA to check"
    )
    assert result["details"]["cpu_only"] is True
    assert document["frameworks"]["jax"]["device"]["backend"] == "cpu"
    assert not results(document, "driver")  # a CPU cell is not "GPU unverified"

    asked = cuda(jax_env / "bin" / "python", tmp_path, ["--cuda", "12.4"])
    failure = one(asked, "jax", "cuda-runtime")
    assert failure["status"] == "fail"
    assert (
        "CPU-only build (no jax-cuda plugin installed), but the cell asks for CUDA 12.4"
        in (failure["message"])
    )
    assert "jax[cuda12]" in failure["hint"]


@pytest.mark.slow
def test_jaxlib_newer_than_jax(
    tmp_path_factory: pytest.TempPathFactory, uv_bin: str, python_for: Any, tmp_path: Path
) -> None:
    """jax 0.4.29 forced in next to jaxlib 0.4.30: jax's own import check fails, and ours."""
    env = uv_env(
        uv_bin, str(python_for("3.11").path), tmp_path_factory.getbasetemp() / "jax-skew", *JAX
    )
    subprocess.run(
        [
            uv_bin,
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--python",
            str(env / "bin" / "python"),
            "jax==0.4.29",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    document = cuda(env / "bin" / "python", tmp_path)
    skew = one(document, "jax", "inconsistent-env")
    assert skew["message"] == "jaxlib 0.4.30 is newer than and incompatible with jax 0.4.29"
    failed_import = one(document, "jax", "import-error")
    assert "is newer than and incompatible with jax version 0.4.29" in failed_import["message"]


TORCH_STUB = {
    "torch/__init__.py": "__version__ = '2.5.1+cu124'\nfrom . import version, backends, cuda, _C\n",
    "torch/version.py": "cuda = '12.4'\nhip = None\n",
    "torch/backends/__init__.py": "from . import cudnn\n",
    "torch/backends/cudnn/__init__.py": (
        "def is_available():\n    return True\n"
        "def version():\n    raise RuntimeError('cuDNN version incompatibility')\n"
    ),
    "torch/_C/__init__.py": (
        "class _cudnn:\n"
        "    getCompileVersion = staticmethod(lambda: (9, 1, 0))\n"
        "    getRuntimeVersion = staticmethod(lambda: (8, 9, 7))\n"
        "def _cuda_getArchFlags():\n    return 'sm_80 sm_90'\n"
    ),
    "torch/cuda/__init__.py": "from . import nccl\ndef is_available():\n    return False\n",
    "torch/cuda/nccl.py": "def version():\n    return (2, 21, 5)\n",
}


def torch_stub(root: Path, cudnn_runtime: tuple[int, int, int]) -> Path:
    site = root / "site"
    for rel, text in TORCH_STUB.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text.replace("(8, 9, 7)", repr(cudnn_runtime)))
    fake_dist(site, "torch", "2.5.1+cu124", [site / rel for rel in TORCH_STUB])
    return site


def test_torch_cudnn_runtime_older_than_compiled(tmp_path: Path) -> None:
    """A stub of torch's public version API (torch.version.cuda, torch._C._cudnn), because the
    real torch wheels are CUDA builds of 500 MB plus 3 GB of nvidia wheels: this checks how the
    probe reads and judges what torch reports, in the same child process flow as real torch."""
    site = torch_stub(tmp_path, (8, 9, 7))
    document = cuda(sys.executable, tmp_path, ["--path", str(site)], flags=("-S",))
    failure = one(document, "torch", "cuda-runtime")
    assert (
        failure["message"] == "torch 2.5.1+cu124 was built with cuDNN 9.1.0 but loads cuDNN 8.9.7"
    )
    assert document["frameworks"]["torch"]["imported"]["arch_list"] == "sm_80 sm_90"
    if not HOST_HAS_DRIVER:
        # a CUDA build makes it a GPU cell: without a driver it is GPU-unverified, not failed
        driver = one(document, "driver")
        assert (driver["status"], driver["category"]) == ("skip", "no-gpu")


@requires_cc
def test_torch_cuda_build_without_gpu_and_with_an_old_driver(
    tmp_path: Path, fake_driver: Path
) -> None:
    """The same stub with a matching cuDNN: skip/no-gpu with no device; a cuda-driver failure
    when the (fixture) driver is older than torch.version.cuda."""
    site = torch_stub(tmp_path, (9, 1, 0))
    document = cuda(sys.executable, tmp_path, ["--path", str(site)], flags=("-S",))
    if not HOST_HAS_DRIVER:
        result = one(document, "torch")
        assert (result["status"], result["category"]) == ("skip", "no-gpu")
        assert result["message"] == (
            "torch 2.5.1+cu124 (CUDA 12.4 build): no GPU on this machine, device checks not run"
        )
        assert result["details"]["cpu_only"] is False
    old = cuda(
        sys.executable,
        tmp_path,
        ["--path", str(site)],
        env={"LD_LIBRARY_PATH": str(fake_driver), "FAKE_CUDA_VERSION": "12020"},
        flags=("-S",),
    )
    failure = one(old, "torch", "cuda-driver")
    assert failure["message"].startswith(
        "torch 2.5.1+cu124 (torch.version.cuda) is CUDA 12.4, newer than the driver (CUDA 12.2)"
    )


@pytest.mark.slow
@requires_cc
def test_conda_cuda_packages(
    cu12_env: Path, fake_driver: Path, uv_bin: str, python_for: Any, tmp_path: Path
) -> None:
    """A conda-layout prefix: records written by this test (no conda channel is reachable here)
    for cuda-version and cuda-cudart, whose lib/libcudart.so.12.4.127 is NVIDIA's real library
    (copied from the nvidia-cuda-runtime-cu12 wheel, the same binary conda-forge ships)."""
    prefix = tmp_path / "conda"
    uv_env(uv_bin, str(python_for("3.11").path), prefix)
    [wheel_copy] = cu12_env.glob(
        "lib/python*/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12"
    )
    (prefix / "lib").mkdir(exist_ok=True)
    shutil.copy2(wheel_copy, prefix / "lib" / "libcudart.so.12.4.127")
    (prefix / "lib" / "libcudart.so.12").symlink_to("libcudart.so.12.4.127")
    meta = prefix / "conda-meta"
    meta.mkdir()
    channel = "https://conda.anaconda.org/conda-forge/linux-64"
    for name, version, build, files in (
        ("cuda-version", "12.4", "h3060b56_3", []),
        (
            "cuda-cudart",
            "12.4.127",
            "he02047a_2",
            ["lib/libcudart.so.12", "lib/libcudart.so.12.4.127"],
        ),
    ):
        record = {"name": name, "version": version, "build": build, "build_number": 2,
                  "channel": channel, "subdir": "linux-64", "files": files,
                  "depends": [], "fn": f"{name}-{version}-{build}.conda"}  # fmt: skip
        (meta / f"{name}-{version}-{build}.json").write_text(json.dumps(record))
    document = cuda(
        prefix / "bin" / "python",
        tmp_path,
        env={"LD_LIBRARY_PATH": str(fake_driver), "FAKE_CUDA_VERSION": "12020"},
    )
    assert {p["name"]: p["version"] for p in document["conda_packages"]} == {
        "cuda-version": "12.4",
        "cuda-cudart": "12.4.127",
    }
    [copy] = document["libraries"]
    assert copy["display"] == "lib/libcudart.so.12"
    assert copy["owner"] == "conda package cuda-cudart 12.4.127 (conda-forge)"
    assert (copy["version"], copy["reported"]) == ("12.4.127", "12.4")
    runtime = one(document, "cudart", "cuda-driver")
    assert (
        "lib/libcudart.so.12 (conda package cuda-cudart 12.4.127 (conda-forge))"
        in (runtime["message"])
    )
    assert "conda install 'cuda-version<=12.2'" in runtime["hint"]
    pinned = one(document, "cuda-version", "cuda-driver")
    assert pinned["message"].startswith(
        "conda package cuda-version 12.4 is CUDA 12.4, newer than the driver (CUDA 12.2)"
    )
