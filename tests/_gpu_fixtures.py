"""CUDA device-code fixtures: nvcc-built libraries with known SASS/PTX contents, real CUDA wheels.

nvcc compiles for any architecture without a GPU, so every fixture's contents are known by
construction; cuobjdump (from NVIDIA's own `nvidia-cuda-cuobjdump` wheel) is the independent
reader they are checked against.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

_KERNEL = """
extern "C" __global__ void add_one(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += 1.0f;
}
extern "C" int launch(float *x, int n) { add_one<<<(n + 255) / 256, 256>>>(x, n); return 0; }
"""

_EXTENSION = """
#include <Python.h>
__global__ void twice(float *x) { x[threadIdx.x] *= 2.0f; }
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_kern", NULL, -1, NULL};
extern "C" PyMODINIT_FUNC PyInit__kern(void) { return PyModule_Create(&def); }
"""

#: Fixture library -> (nvcc -gencode/-X options, the SASS and PTX it must carry).
LIBRARIES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "libsm80.so": (["-gencode", "arch=compute_80,code=sm_80"], ["sm_80"], []),
    "libptx90.so": (["-gencode", "arch=compute_90,code=compute_90"], [], ["compute_90"]),
    "libmulti.so": (
        [
            "-gencode",
            "arch=compute_80,code=sm_80",
            "-gencode",
            "arch=compute_90,code=[sm_90,compute_90]",
            "-gencode",
            "arch=compute_120,code=sm_120",
        ],
        ["sm_80", "sm_90", "sm_120"],
        ["compute_90"],
    ),
    # Every entry compressed; an arch-specific SASS and a PTX-only newer architecture.
    "libcompressed.so": (
        [
            "-Xfatbin",
            "-compress-all",
            "-gencode",
            "arch=compute_80,code=sm_80",
            "-gencode",
            "arch=compute_90a,code=sm_90a",
            "-gencode",
            "arch=compute_100,code=compute_100",
        ],
        ["sm_80", "sm_90a"],
        ["compute_100"],
    ),
}

#: A small real CUDA wheel with a .nv_fatbin (6 MB of it), and what cuobjdump lists in it.
NVJPEG_WHEEL = "nvidia-nvjpeg-cu12==12.4.0.76"
NVJPEG_SASS = [
    "sm_50",
    "sm_52",
    "sm_60",
    "sm_61",
    "sm_70",
    "sm_75",
    "sm_80",
    "sm_86",
    "sm_89",
    "sm_90",
    "sm_100",
    "sm_101",
    "sm_103",
    "sm_120",
    "sm_121",
]
NVJPEG_PTX = ["compute_121"]
CUOBJDUMP_WHEEL = "nvidia-cuda-cuobjdump==13.5.37"


def require_nvcc() -> str:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc (the CUDA toolkit) is not installed: the device-code fixtures need it")
    return nvcc


def nvcc(args: list[str], cwd: Path) -> None:
    done = subprocess.run(
        [require_nvcc(), *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"nvcc {' '.join(args)} failed:\n{done.stderr}"


def build_libraries(out: Path) -> dict[str, Path]:
    """Every library of LIBRARIES under `out` (cudart linked statically: no runtime needed)."""
    source = out / "kernel.cu"
    source.write_text(_KERNEL)
    built = {}
    for name, (options, _sass, _ptx) in LIBRARIES.items():
        nvcc(["-shared", "-Xcompiler", "-fPIC", *options, "-o", name, str(source)], out)
        built[name] = out / name
    return built


def build_extension(out: Path, include: str, ext_suffix: str) -> Path:
    """`_kern<ext_suffix>`: a Python extension module with one sm_86 kernel."""
    source = out / "kern.cu"
    source.write_text(_EXTENSION)
    name = "_kern" + ext_suffix
    nvcc(
        [
            "-shared",
            "-Xcompiler",
            "-fPIC",
            f"-I{include}",
            "-gencode",
            "arch=compute_86,code=sm_86",
            "-o",
            name,
            str(source),
        ],
        out,
    )
    return out / name


def download_wheel(requirement: str, out: Path, platform: str = "manylinux2014_x86_64") -> Path:
    """`pip download` one wheel for `platform` (no dependencies) into `out`."""
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
            "--platform",
            platform,
            "--python-version",
            "3.12",
            "--dest",
            str(out),
            requirement,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"pip download {requirement} failed:\n{done.stderr}"
    stem = requirement.split("==", maxsplit=1)[0].replace("-", "_")
    tag = "win_amd64" if platform.startswith("win") else "manylinux"
    return next(w for w in out.glob(stem + "-*.whl") if tag in w.name)


def extract(wheel: Path, member_suffix: str, out: Path) -> Path:
    """The one member of `wheel` whose name ends with `member_suffix`, extracted under `out`."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(member_suffix))
        path = Path(archive.extract(name, out))
    path.chmod(0o755)
    return path


def cuobjdump_lists(cuobjdump: Path, library: Path) -> tuple[list[str], list[str]]:
    """(SASS, PTX) as cuobjdump lists them, in the probe's names (sm_XY, compute_XY)."""
    out = subprocess.run(
        [str(cuobjdump), "--list-elf", "--list-ptx", str(library)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    sass: set[str] = set()
    ptx: set[str] = set()
    for line in out.splitlines():
        arch = line.rsplit(".", 2)[-2] if line.count(".") >= 2 else ""
        if line.startswith("ELF file"):
            sass.add(arch)
        elif line.startswith("PTX file"):
            ptx.add(arch.replace("sm_", "compute_"))
    return sorted(sass), sorted(ptx)


#: libcufft's layout: a small stub in `.nv_fatbin`, the real kernels in a fat binary in `.ldata`.
STUB_OPTIONS = ["-gencode", "arch=compute_75,code=sm_75"]
KERNEL_OPTIONS = [
    "-gencode",
    "arch=compute_80,code=sm_80",
    "-gencode",
    "arch=compute_90,code=[sm_90,compute_90]",
]


def objcopy(args: list[str], cwd: Path) -> None:
    tool = shutil.which("objcopy")
    assert tool is not None, "objcopy (binutils) is missing: nvcc's host compiler needs it too"
    done = subprocess.run(
        [tool, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"objcopy {' '.join(args)} failed:\n{done.stderr}"


def build_split_layouts(out: Path) -> dict[str, Path]:
    """Libraries whose fat binaries sit outside `.nv_fatbin`, built the way the real ones are.

    - `libcufft-like.so`: `.nv_fatbin` holds an sm_75 stub, the kernels (SASS sm_80 and sm_90,
      PTX compute_90) are a fat binary in a `.ldata` section, as in NVIDIA's libcufft;
    - `libcufftw-like.so`: the stub alone (libcufftw beside libcufft);
    - `librodata.so`: no `.nv_fatbin` at all, the same kernels as a `const` byte array in
      `.rodata` (what `bin2c` output compiles to), loaded with `cudaLibraryLoadData`.
    The `.ldata` section is added to nvcc's object with objcopy and placed by the linker, so it
    sits in a PT_LOAD segment as in the real library.
    """
    (out / "kernel.cu").write_text(_KERNEL)
    nvcc(["-fatbin", *KERNEL_OPTIONS, "-o", "kernels.fatbin", "kernel.cu"], out)
    nvcc(["-c", "-Xcompiler", "-fPIC", *STUB_OPTIONS, "-o", "stub.o", "kernel.cu"], out)
    objcopy(
        [
            "--add-section",
            ".ldata=kernels.fatbin",
            "--set-section-flags",
            ".ldata=alloc,load,data,contents",
            "stub.o",
            "split.o",
        ],
        out,
    )
    link = ["-shared", "-Xlinker", "-znoexecstack"]
    nvcc([*link, "-o", "libcufft-like.so", "split.o"], out)
    nvcc([*link, "-o", "libcufftw-like.so", "stub.o"], out)
    data = (out / "kernels.fatbin").read_bytes()
    array = ",".join(str(byte) for byte in data)
    (out / "embedded.c").write_text(
        "#include <cuda_runtime_api.h>\n"
        f"static const unsigned char kernels_fatbin[{len(data)}] = {{{array}}};\n"
        "cudaLibrary_t load_kernels(void) {\n"
        "    cudaLibrary_t library = 0;\n"
        "    cudaLibraryLoadData(&library, kernels_fatbin, 0, 0, 0, 0, 0, 0);\n"
        "    return library;\n"
        "}\n"
    )
    # No device link (it would add a `.nv_fatbin` stub of its own), the runtime as a shared
    # library: device code only in `.rodata`, and a NEEDED entry for libcudart.
    shared_runtime = ["-cudart", "shared", "--no-device-link", "-Xcompiler", "-fPIC"]
    nvcc([*link, *shared_runtime, "-o", "librodata.so", "embedded.c"], out)
    return {name: out / name for name in ("libcufft-like.so", "libcufftw-like.so", "librodata.so")}
