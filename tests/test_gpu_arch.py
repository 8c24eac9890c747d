"""The gpu-arch probe: which GPUs each distribution's CUDA kernels run on, read without a GPU.

Fixtures are nvcc-built libraries whose SASS/PTX contents are known by construction (one SASS
architecture, PTX only, several, every entry compressed, a Python extension with a kernel),
checked against NVIDIA's cuobjdump and against a real CUDA wheel (nvidia-nvjpeg-cu12).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from _gpu_fixtures import (
    CUOBJDUMP_WHEEL,
    LIBRARIES,
    NVJPEG_PTX,
    NVJPEG_SASS,
    NVJPEG_WHEEL,
    build_extension,
    build_libraries,
    build_split_layouts,
    cuobjdump_lists,
    download_wheel,
    extract,
    require_nvcc,
)
from _native_fixtures import (
    by_target,
    edge_interpreter,
    load_probe_module,
    make_dist,
    probe_process,
)

from compat_matrix.errors import MatrixError
from compat_matrix.matrix.gpus import gpu_argument
from compat_matrix.matrix.load import parse_matrix
from compat_matrix.matrix.model import Cell
from compat_matrix.probe import runner
from compat_matrix.probe.gpu_device import device_agreement
from compat_matrix.probe.gpu_device import runs_on as harness_runs_on
from compat_matrix.probe.verdicts import cell_verdict
from compat_matrix.reports.html import render_html
from compat_matrix.reports.markdown import render_markdown
from compat_matrix.results import ProbeResult
from compat_matrix.run.cell import cell_result, gpu_arch_args

pytestmark = pytest.mark.slow

probe = load_probe_module("gpu_arch_probe")
elf = load_probe_module("_elf")


@pytest.fixture(scope="session")
def cuda_libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_libraries(tmp_path_factory.mktemp("cuda-libs"))


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cuda-wheels")


@pytest.fixture(scope="session")
def cuobjdump(wheels: Path) -> Path:
    if sys.platform != "linux" or sysconfig.get_platform() != "linux-x86_64":
        pytest.skip("NVIDIA's cuobjdump wheel used here is Linux x86-64 only")
    return extract(download_wheel(CUOBJDUMP_WHEEL, wheels), "bin/cuobjdump", wheels / "x")


def _architectures(path: Path) -> tuple[list[str], list[str], bool]:
    handle = elf.ElfFile(str(path))
    try:
        found = probe.file_architectures(handle)
    finally:
        handle.release()
    assert found is not None, f"{path.name} has no .nv_fatbin"
    return found


@pytest.mark.parametrize("name", sorted(LIBRARIES))
def test_reads_the_architectures_nvcc_built(cuda_libs: dict[str, Path], name: str) -> None:
    _options, sass, ptx = LIBRARIES[name]
    found_sass, found_ptx, compressed = _architectures(cuda_libs[name])
    assert (found_sass, found_ptx) == (sass, ptx)
    if name == "libcompressed.so":
        assert compressed  # read from the entry headers, never decompressed


def test_agrees_with_cuobjdump(cuda_libs: dict[str, Path], cuobjdump: Path) -> None:
    for name, path in cuda_libs.items():
        sass, ptx, _ = _architectures(path)
        assert (sorted(sass), sorted(ptx)) == cuobjdump_lists(cuobjdump, path), name


def test_real_cuda_wheel(wheels: Path, cuobjdump: Path) -> None:
    library = extract(download_wheel(NVJPEG_WHEEL, wheels), "libnvjpeg.so.12", wheels / "x")
    sass, ptx, _ = _architectures(library)
    assert (sass, ptx) == (NVJPEG_SASS, NVJPEG_PTX)
    assert (sorted(sass), sorted(ptx)) == cuobjdump_lists(cuobjdump, library)


def test_a_file_without_device_code_has_none(cuda_libs: dict[str, Path]) -> None:
    handle = elf.ElfFile(sys.executable if Path(sys.executable).exists() else "/bin/sh")
    try:
        assert probe.file_architectures(handle) is None
    finally:
        handle.release()


@pytest.mark.parametrize(
    ("arch", "cc", "runs"),
    [
        ("sm_80", (8, 0), True),
        ("sm_80", (8, 6), True),  # same major, older minor: binary compatible
        ("sm_86", (8, 0), False),
        ("sm_80", (9, 0), False),  # SASS never crosses a major
        ("sm_90a", (9, 0), True),
        ("sm_90a", (10, 0), False),
        ("sm_100f", (10, 3), True),
        ("compute_80", (12, 0), True),  # PTX is JIT-compiled for any later GPU
        ("compute_120", (9, 0), False),
        ("compute_90a", (10, 0), False),
        ("compute_120f", (12, 1), True),
        ("compute_120f", (13, 0), False),
    ],
)
def test_which_code_runs_on_which_gpu(arch: str, cc: tuple[int, int], runs: bool) -> None:
    assert probe.runs_on(arch, cc) is runs


def _site(root: Path, dists: dict[str, dict[str, Path]]) -> Path:
    """A site-packages dir with one installed distribution per entry (dist-info + RECORD)."""
    site = root / "site-packages"
    for dist, files in dists.items():
        make_dist(site, dist, "1.0", dict.fromkeys(files, ""))
        for rel, source in files.items():
            shutil.copyfile(source, site / rel)
    return site


def _probe(python: str, site: Path, gpus: list[str], cwd: Path) -> tuple[dict[str, Any], int]:
    args = ["--prefix", str(cwd), "--site", str(site)]
    for gpu in gpus:
        args += ["--gpu", gpu]
    done = probe_process(python, "gpu_arch_probe", args, cwd)
    document = json.loads(done.stdout)  # one JSON document, whatever the exit status
    assert document["probe"] == "gpu-arch", done.stderr
    return document, done.returncode


def test_cell_fails_when_a_distribution_has_no_kernel_for_a_listed_gpu(
    cuda_libs: dict[str, Path], tmp_path: Path, interpreters: list[Any]
) -> None:
    site = _site(
        tmp_path,
        {
            "torch-like": {"torch_like/lib/libtorch_cuda.so": cuda_libs["libmulti.so"]},
            "flash-like": {"flash_like/flash_kernels.so": cuda_libs["libsm80.so"]},
            "jit-like": {"jit_like/libjit.so": cuda_libs["libptx90.so"]},
        },
    )
    oldest = edge_interpreter(interpreters, "oldest").path  # the probe runs on CPython 3.8 too
    document, status = _probe(str(oldest), site, ["H100=sm_90", "RTX 5090=sm_120"], tmp_path)
    assert status == 1
    results = by_target(document)
    flash = results["flash-like"]
    assert (flash["status"], flash["category"]) == ("fail", "cuda-arch")
    # Names the distribution, what it carries, the GPUs that miss, and who does cover them.
    assert "flash-like 1.0 has no kernel for H100 (sm_90), RTX 5090 (sm_120)" in flash["message"]
    assert "SASS sm_80" in flash["message"]
    assert "flash_like/flash_kernels.so" in flash["message"]
    assert "jit-like, torch-like run on RTX 5090 (sm_120)" in flash["message"]
    assert flash["details"]["coverage"] == {"H100": "none", "RTX 5090": "none"}
    torch = results["torch-like"]
    assert torch["status"] == "pass"
    assert torch["details"]["coverage"] == {"H100": "sass", "RTX 5090": "sass"}
    jit = results["jit-like"]  # PTX only: runs, after a JIT compile at first use (a warning)
    assert jit["status"] == "pass"
    assert jit["details"]["ptx_only"] == ["H100 (sm_90)", "RTX 5090 (sm_120)"]
    assert "PTX only (JIT-compiled at first use)" in jit["message"]
    summary = results["environment"]
    assert summary["status"] == "fail"
    assert summary["details"]["table"]["flash-like"] == {"H100": "none", "RTX 5090": "none"}
    assert summary["details"]["gpus"] == {"H100": "sm_90", "RTX 5090": "sm_120"}


def test_every_gpu_covered_passes(cuda_libs: dict[str, Path], tmp_path: Path) -> None:
    site = _site(
        tmp_path, {"torch-like": {"torch_like/libtorch_cuda.so": cuda_libs["libmulti.so"]}}
    )
    document, status = _probe(sys.executable, site, ["A100=sm_80", "sm_120"], tmp_path)
    assert status == 0
    assert by_target(document)["torch-like"]["details"]["coverage"] == {
        "A100": "sass",
        "sm_120": "sass",
    }


def test_python_extension_with_a_kernel(tmp_path: Path) -> None:
    include = sysconfig.get_paths()["include"]
    if not Path(include, "Python.h").exists():
        pytest.skip(f"no Python.h for {sys.executable}")
    ext = build_extension(tmp_path, include, sysconfig.get_config_var("EXT_SUFFIX"))
    rel = "kern_ext/" + ext.name
    site = _site(tmp_path, {"kern-ext": {rel: ext}})
    gpus = ["RTX 3090=sm_86", "L4=sm_89", "H100=sm_90"]
    document, status = _probe(sys.executable, site, gpus, tmp_path)
    assert status == 1
    result = by_target(document)["kern-ext"]
    assert result["details"]["coverage"] == {"RTX 3090": "sass", "L4": "sass", "H100": "none"}
    assert result["details"]["files"][rel]["sass"] == ["sm_86"]


def test_through_the_harness_runner_to_a_cell_verdict(
    cuda_libs: dict[str, Path], tmp_path: Path
) -> None:
    site = _site(tmp_path, {"flash-like": {"flash_like/k.so": cuda_libs["libsm80.so"]}})
    args = ["--prefix", str(tmp_path), "--site", str(site), "--gpu", "RTX 5090=sm_120"]
    run = runner.run_probe(Path(sys.executable), "gpu-arch", args, timeout=120)
    verdict = cell_verdict(run.results)
    assert (verdict.status, verdict.category) == ("fail", "cuda-arch")
    assert "RTX 5090 (sm_120)" in verdict.message or any(
        "RTX 5090 (sm_120)" in r.message for r in verdict.probes
    )


# -- the matrix: `gpus:` and the `gpu` axis -----------------------------------------------------

_MATRIX = """\
name: gpu
gpus: [A100, sm_90, "12.0", rtx 5090]
matrix:
  python: ["3.12"]
  torch: ["2.6.0"]
  gpu: [H100, sm_120a]
"""


def test_gpus_key_and_gpu_axis(tmp_path: Path) -> None:
    matrix = parse_matrix(_MATRIX, tmp_path / "compat.yml")
    assert matrix.gpus == ("A100", "sm_90", "12.0", "rtx 5090")
    cell = Cell("c", {"python": "3.12", "torch": "2.6.0", "gpu": "H100"})
    assert cell.packages == {"torch": "2.6.0"}  # gpu installs nothing
    assert gpu_arch_args(matrix, cell) == ["--gpu", "H100=sm_90"]  # the axis value wins
    everywhere = Cell("d", {"python": "3.12", "torch": "2.6.0"})
    assert gpu_arch_args(matrix, everywhere) == [
        "--gpu",
        "A100=sm_80",
        "--gpu",
        "sm_90",
        "--gpu",
        "12.0=sm_120",
        "--gpu",
        "RTX 5090=sm_120",
    ]
    assert probe.parse_gpu("12.0=sm_120") == ("12.0", (12, 0))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('gpus: ["Z9"]\nmatrix: {python: ["3.12"]}\n', "1:8"),
        ('matrix:\n  python: ["3.12"]\n  gpu: [H100, "sm 90"]\n', "3:15"),
    ],
)
def test_unknown_gpu_is_a_located_error(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(MatrixError) as caught:
        parse_matrix(text, tmp_path / "compat.yml")
    assert f":{where}:" in str(caught.value)
    assert "GPU name" in str(caught.value)


def test_gpu_names_table() -> None:
    assert gpu_argument("H100") == "H100=sm_90"
    assert gpu_argument("rtx 4090") == "RTX 4090=sm_89"
    assert gpu_argument("sm_100a") == "sm_100a"
    assert gpu_argument("Z9") is None


# -- reports: the coverage table in compat.html, a footnote in compat.md ------------------------


def test_coverage_table_in_the_reports(cuda_libs: dict[str, Path], tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        {
            "torch-like": {"torch_like/libtorch_cuda.so": cuda_libs["libmulti.so"]},
            "flash-like": {"flash_like/k.so": cuda_libs["libsm80.so"]},
            "jit-like": {"jit_like/libjit.so": cuda_libs["libptx90.so"]},
        },
    )
    args = ["--prefix", str(tmp_path), "--site", str(site)]
    args += ["--gpu", "H100=sm_90", "--gpu", "RTX 5090=sm_120"]
    run = runner.run_probe(Path(sys.executable), "gpu-arch", args, timeout=120)
    result = cell_result("py3.12-torch2.6.0", {"python": "3.12"}, cell_verdict(run.results))
    assert (result.status, result.category) == ("fail", "cuda-arch")

    markdown = render_markdown("gpu", [result])
    section = markdown.split("### GPU coverage", 1)[1]
    assert "| distribution | H100 (sm_90) | RTX 5090 (sm_120) |" in section
    assert "| flash-like | none ❌ | none ❌ |" in section
    assert "| jit-like | PTX only (JIT) | PTX only (JIT) |" in section
    assert "| torch-like | SASS | SASS |" in section
    assert "`py3.12-torch2.6.0`" in section

    page = render_html("gpu", [result])
    assert '<table class="gpu-coverage">' in page
    assert '<tr><th>flash-like</th><td class="cov-none">none ❌</td>' in page
    assert '<td class="cov-sass">SASS</td>' in page


def test_no_gpus_listed_means_no_coverage_table(cuda_libs: dict[str, Path], tmp_path: Path) -> None:
    site = _site(tmp_path, {"flash-like": {"flash_like/k.so": cuda_libs["libsm80.so"]}})
    args = ["--prefix", str(tmp_path), "--site", str(site)]
    run = runner.run_probe(Path(sys.executable), "gpu-arch", args, timeout=120)
    result = cell_result("c", {"python": "3.12"}, cell_verdict(run.results))
    assert result.status == "pass"  # without `gpus:` the architectures are reported, not judged
    assert "SASS sm_80" in json.dumps([p.message for p in result.probes])
    assert "GPU coverage" not in render_markdown("gpu", [result])


# -- on a GPU runner: the static reading against the device -------------------------------------
# No GPU is lent to this test suite's machine: the cuda probe's side is its result shape on a
# GPU runner (driver devices with their compute capability, torch's architecture flags), as
# tests/test_cuda_probe.py records it; the gpu-arch side is a real probe run.


def _driver(name: str, capability: str) -> ProbeResult:
    return ProbeResult(
        "cuda",
        "driver",
        "pass",
        details={"devices": [{"name": name, "capability": capability}], "count": 1},
    )


def _cuda_document(arch_list: str) -> dict[str, Any]:
    return {"frameworks": {"torch": {"imported": {"version": "2.6.0", "arch_list": arch_list}}}}


@pytest.fixture
def static_reading(cuda_libs: dict[str, Path], tmp_path: Path) -> list[ProbeResult]:
    site = _site(
        tmp_path,
        {
            "torch": {"torch/lib/libtorch_cuda.so": cuda_libs["libmulti.so"]},
            "flash-like": {"flash_like/k.so": cuda_libs["libsm80.so"]},
        },
    )
    args = ["--prefix", str(tmp_path), "--site", str(site)]
    return runner.run_probe(Path(sys.executable), "gpu-arch", args, timeout=120).results


def test_device_present_agrees(static_reading: list[ProbeResult]) -> None:
    found = device_agreement(
        static_reading,
        [_driver("NVIDIA A100-SXM4-80GB", "8.0")],
        _cuda_document("sm_80 sm_90 sm_120 compute_90"),
    )
    assert [(r.target, r.status) for r in found] == [("device", "pass")]
    assert "torch's architecture list" in found[0].message


def test_device_without_kernels_fails_even_when_torch_runs(
    static_reading: list[ProbeResult],
) -> None:
    found = device_agreement(
        static_reading,
        [_driver("NVIDIA H100 80GB HBM3", "9.0")],
        _cuda_document("sm_80 sm_90 sm_120 compute_90"),
    )
    assert [(r.target, r.status, r.category) for r in found] == [
        ("device:flash-like", "fail", "cuda-arch")
    ]
    assert "NVIDIA H100 80GB HBM3 (sm_90)" in found[0].message
    assert (cell_verdict(found).status, cell_verdict(found).category) == ("fail", "cuda-arch")


def test_torch_arch_list_contradicting_its_files_is_an_error(
    static_reading: list[ProbeResult],
) -> None:
    found = device_agreement(
        static_reading, [_driver("A100", "8.0")], _cuda_document("sm_80 sm_86 sm_90")
    )
    assert [(r.status, r.category) for r in found] == [("error", "probe-disagreement")]
    assert "carry no sm_86" in found[0].message


def test_no_device_no_comparison(static_reading: list[ProbeResult]) -> None:
    no_gpu = ProbeResult("cuda", "driver", "skip", "no-gpu", details={})
    assert device_agreement(static_reading, [no_gpu], _cuda_document("sm_80")) == []


@pytest.mark.parametrize(
    "arch", ["sm_80", "sm_86", "sm_90a", "sm_100f", "compute_80", "compute_90a", "compute_120f"]
)
@pytest.mark.parametrize("cc", [(8, 0), (8, 6), (9, 0), (10, 0), (10, 3), (12, 0), (12, 1)])
def test_harness_and_probe_share_the_rule(arch: str, cc: tuple[int, int]) -> None:
    assert harness_runs_on(arch, cc) is probe.runs_on(arch, cc)


def test_a_cuda_wheel_without_kernels_for_a_listed_gpu_end_to_end(tmp_path: Path) -> None:
    """`compat-matrix run` on a CPU runner: a real CUDA wheel (nvjpeg, built for sm_50 and
    newer) against a Kepler K80 (sm_37) and an RTX 5090 (sm_120)."""
    (tmp_path / "compat.yml").write_text(
        "gpus: [K80, RTX 5090]\n"
        "probes: [abi, gpu-arch]\n"
        "matrix:\n"
        '  python: ["3.12"]\n'
        f'  nvidia-nvjpeg-cu12: ["{NVJPEG_WHEEL.split("==")[1]}"]\n',
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "run", "compat.yml", "-o", "out"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (cell,) = json.loads((tmp_path / "out" / "compat.json").read_text(encoding="utf-8"))["cells"]
    assert (cell["status"], cell["category"]) == ("fail", "cuda-arch")
    assert "nvidia-nvjpeg-cu12 12.4.0.76 has no kernel for K80 (sm_37)" in json.dumps(cell)
    markdown = (tmp_path / "out" / "compat.md").read_text(encoding="utf-8")
    assert "| nvidia-nvjpeg-cu12 | none ❌ | SASS |" in markdown
    assert '<table class="gpu-coverage">' in (tmp_path / "out" / "compat.html").read_text(
        encoding="utf-8"
    )


def test_windows_cuda_dll_read_from_its_pe_section(wheels: Path) -> None:
    """Windows keeps device code in a PE section (`.nv_fatb`, names are 8 bytes there): the same
    wheel's DLL carries what its Linux library does."""
    wheel = download_wheel(NVJPEG_WHEEL, wheels, "win_amd64")
    dll = extract(wheel, "nvjpeg64_12.dll", wheels / "win")
    sass, ptx, _ = probe._pe_architectures_at(str(dll))
    assert (sass, ptx) == (NVJPEG_SASS, NVJPEG_PTX)
    assert probe._windows_binaries([str(wheels / "win")]) == [
        (str(dll), str(Path("nvidia", "nvjpeg", "bin", "nvjpeg64_12.dll")))
    ]


def _synthetic_fatbin(*archs: int) -> bytes:
    """A fat binary with one uncompressed SASS entry per architecture, as nvcc lays it out."""
    import struct

    entries = b""
    for arch in archs:
        payload = b"\x00" * 16
        entries += struct.pack("<HHIQIIHHI", 2, 0x101, 64, len(payload), 0, 0, 0, 0, arch)
        entries += b"\x00" * (64 - struct.calcsize("<HHIQIIHHI")) + payload
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(entries)) + entries


def test_fat_binaries_outside_nv_fatbin_count_and_a_stub_file_fails_no_package(
    tmp_path: Path,
) -> None:
    """libcufft keeps its kernels in `.ldata` and a 400-byte sm_52 stub in `.nv_fatbin`, and
    libcufftw carries only the stub: read that way, cuFFT ran on no current GPU (a false fail
    seen on torch 2.9.1's CUDA wheels). The data sections are read, and a package is judged by
    what all its files carry."""
    sys.path.insert(0, str(runner.probes_dir()))
    try:
        import gpu_arch_probe as probe
    finally:
        sys.path.pop(0)
    stub = _synthetic_fatbin(52)
    blob = b"\x11" * 40 + _synthetic_fatbin(80, 90) + b"\x22" * 24 + _synthetic_fatbin(100)
    assert [e.name for e in probe.parse_fatbin(stub)] == ["sm_52"]
    found = probe._embedded_fatbins(blob, 0, len(blob))
    assert [e.name for e in found] == ["sm_80", "sm_90", "sm_100"]
    assert probe.coverage(["sm_52", "sm_80", "sm_90"], [], (8, 6)) == "sass"
    assert probe.coverage(["sm_52"], [], (8, 0)) == "none"


# -- fat binaries outside `.nv_fatbin`, in real ELF files ---------------------------------------


@pytest.fixture(scope="session")
def split_libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_nvcc()
    return build_split_layouts(tmp_path_factory.mktemp("split-libs"))


def _section_entries(path: Path, section: str) -> list[str] | None:
    handle = elf.ElfFile(str(path))
    try:
        where = handle.section_named(section)
        if where is None:
            return None
        return [e.name for e in probe.parse_fatbin(handle.mm, where[0], where[0] + where[1])]
    finally:
        handle.release()


def test_cufft_layout_is_what_the_fixture_claims(
    split_libs: dict[str, Path], cuobjdump: Path
) -> None:
    """The fixture is libcufft's layout: `.nv_fatbin` holds only the sm_75 stub (all NVIDIA's
    cuobjdump sees too), the kernels sit in a fat binary in a loaded `.ldata` section."""
    cufft = split_libs["libcufft-like.so"]
    assert set(_section_entries(cufft, ".nv_fatbin") or []) == {"sm_75"}
    assert _section_entries(cufft, ".ldata") == ["sm_80", "sm_90", "compute_90"]
    assert cuobjdump_lists(cuobjdump, cufft) == (["sm_75"], [])
    fatbin = cufft.parent / "kernels.fatbin"  # what was put in `.ldata`, read by cuobjdump
    assert cuobjdump_lists(cuobjdump, fatbin) == (["sm_80", "sm_90"], ["compute_90"])
    assert _section_entries(split_libs["libcufftw-like.so"], ".ldata") is None
    assert _section_entries(split_libs["librodata.so"], ".nv_fatbin") is None
    assert _section_entries(split_libs["librodata.so"], ".nvFatBinSegment") is None


@pytest.mark.parametrize(
    ("name", "sass", "ptx"),
    [
        ("libcufft-like.so", ["sm_75", "sm_80", "sm_90"], ["compute_90"]),
        ("libcufftw-like.so", ["sm_75"], []),
        ("librodata.so", ["sm_80", "sm_90"], ["compute_90"]),
    ],
)
def test_reads_fat_binaries_outside_nv_fatbin(
    split_libs: dict[str, Path], name: str, sass: list[str], ptx: list[str]
) -> None:
    assert _architectures(split_libs[name])[:2] == (sass, ptx)


def _cufft_site(split_libs: dict[str, Path], root: Path) -> Path:
    lib = "nvidia/cufft_like/lib/"
    return _site(
        root,
        {
            "nvidia-cufft-like": {
                lib + "libcufft-like.so": split_libs["libcufft-like.so"],
                lib + "libcufftw-like.so": split_libs["libcufftw-like.so"],
            }
        },
    )


def test_kernels_in_ldata_serve_the_gpus_the_stub_does_not(
    split_libs: dict[str, Path], tmp_path: Path
) -> None:
    """Read from `.nv_fatbin` alone, this distribution runs on a T4 only (its sm_75 stub) and
    fails on an A100 and an RTX 5090; its `.ldata` kernels run natively on the A100 and by JIT
    (compute_90 PTX) on the RTX 5090. libcufftw-like's stub fails no GPU for the package."""
    site = _cufft_site(split_libs, tmp_path)
    gpus = [gpu_argument(name) or name for name in ("A100", "RTX 5090")]
    args = ["--prefix", str(tmp_path), "--site", str(site)]
    for gpu in gpus:
        args += ["--gpu", gpu]
    run = runner.run_probe(Path(sys.executable), "gpu-arch", args, timeout=120)
    (found,) = [r for r in run.results if r.target == "nvidia-cufft-like"]
    assert found.status == "pass"
    assert found.details["sass"] == ["sm_75", "sm_80", "sm_90"]
    assert found.details["ptx"] == ["compute_90"]
    assert found.details["coverage"] == {"A100": "sass", "RTX 5090": "ptx"}
    assert found.details["ptx_only"] == ["RTX 5090 (sm_120)"]
    assert "PTX only (JIT-compiled at first use) for RTX 5090 (sm_120)" in found.message
    assert found.details["files"]["nvidia/cufft_like/lib/libcufftw-like.so"]["sass"] == ["sm_75"]

    verdict = cell_verdict(run.results)
    assert (verdict.status, verdict.category) != ("fail", "cuda-arch")
    markdown = render_markdown("gpu", [cell_result("c", {"python": "3.12"}, verdict)])
    assert "| nvidia-cufft-like | SASS | PTX only (JIT) |" in markdown


def test_a_gpu_no_kernel_serves_still_fails_with_the_ldata_architectures(
    split_libs: dict[str, Path], tmp_path: Path
) -> None:
    site = _cufft_site(split_libs, tmp_path)
    document, status = _probe(sys.executable, site, ["V100=sm_70", "T4=sm_75"], tmp_path)
    assert status == 1
    found = by_target(document)["nvidia-cufft-like"]
    assert (found["status"], found["category"]) == ("fail", "cuda-arch")
    assert found["details"]["coverage"] == {"V100": "none", "T4": "sass"}
    assert (
        "nvidia-cufft-like 1.0 has no kernel for V100 (sm_70): "
        "it carries SASS sm_75 sm_80 sm_90, PTX compute_90 (2 files:" in found["message"]
    )


def test_a_library_without_nv_fatbin_is_read_from_rodata(
    split_libs: dict[str, Path], tmp_path: Path, interpreters: list[Any]
) -> None:
    """Kernels embedded as a byte array (bin2c output) and loaded through the CUDA runtime leave
    no `.nv_fatbin`: the fat binary in `.rodata` is still found, so a missing GPU fails."""
    site = _site(tmp_path, {"embedded": {"embedded/librodata.so": split_libs["librodata.so"]}})
    oldest = edge_interpreter(interpreters, "oldest").path  # the probe runs on CPython 3.8 too
    document, status = _probe(str(oldest), site, ["A100=sm_80", "T4=sm_75"], tmp_path)
    assert status == 1
    found = by_target(document)["embedded"]
    assert found["details"]["coverage"] == {"A100": "sass", "T4": "none"}
    assert found["category"] == "cuda-arch"
    assert "embedded/librodata.so" in found["message"]
