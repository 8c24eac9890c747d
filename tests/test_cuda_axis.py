"""The CUDA axis: the table, the plan it gives each cell, GPU/CPU runner selection, and real cells.

The PyPI side is real: a `cuda: "12.4"` cell installs NVIDIA's real runtime wheel from PyPI
(about 1 MB; nothing as large as cuDNN or cuBLAS), the cuda probe loads it, and on a machine
without an NVIDIA driver the cell is `pass` and "GPU unverified", never `fail`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compat_matrix.build.cuda import (
    builtin_table,
    cuda_resolved,
    load_cuda_table,
    needs_gpu,
    plan_cell,
    table_for,
)
from compat_matrix.build.requirements import Variant
from compat_matrix.errors import MatrixError
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.matrix.model import PROBES, Cell, Matrix
from compat_matrix.probe import runner as probing
from compat_matrix.run.cell import RunSettings, run_cell

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = ("pytorch", "tensorflow", "jax", "miniconda-audit")


# -- the table ---------------------------------------------------------------------------------


def test_the_builtin_table_maps_every_cuda_major_to_conda_and_pypi_runtimes() -> None:
    table = builtin_table()
    for value, wheel in (
        ("11.8", "nvidia-cuda-runtime-cu11==11.8.*"),
        ("12.4", "nvidia-cuda-runtime-cu12==12.4.*"),
        ("13.0", "nvidia-cuda-runtime==13.0.*"),
    ):
        plan = plan_cell(table, {"cuda": value}, conda=False)
        assert plan.pip_requirements == (wheel,)
        conda = plan_cell(table, {"cuda": value}, conda=True)
        assert conda.conda_specs == (f"cuda-version={value}",)
        assert conda.env == {"CONDA_OVERRIDE_CUDA": value}
        assert not conda.pip_requirements


def test_cuda_none_means_cpu_builds_and_an_empty_cuda_override() -> None:
    table = builtin_table()
    pypi = plan_cell(table, {"python": "3.12", "cuda": "none", "torch": "2.5.1"}, conda=False)
    assert pypi.pip_requirements == ()
    assert pypi.index_urls == ("https://download.pytorch.org/whl/cpu",)
    assert not pypi.needs_gpu
    conda = plan_cell(table, {"cuda": "none", "torch": "2.5.1", "jax": "0.4.35"}, conda=True)
    assert conda.env == {"CONDA_OVERRIDE_CUDA": ""}
    assert conda.variants["torch"] == Variant(name="pytorch", build="cpu*")
    assert conda.conda_specs == ("jaxlib * cpu*",)


def test_frameworks_take_the_build_for_the_cells_cuda() -> None:
    table = builtin_table()
    axes = {"cuda": "12.4", "torch": "2.5.1", "jax": "0.4.35", "tensorflow": "2.18.0"}
    pypi = plan_cell(table, {**axes, "cupy": "13.3.0"}, conda=False)
    assert pypi.needs_gpu
    assert pypi.index_urls == ("https://download.pytorch.org/whl/cu124",)
    assert pypi.variants["jax"].extras == ("cuda12",)
    assert pypi.variants["tensorflow"].extras == ("and-cuda",)
    assert pypi.variants["cupy"].name == "cupy-cuda12x"
    conda = plan_cell(table, axes, conda=True)
    assert conda.variants["torch"] == Variant(name="pytorch", build="cuda*")
    assert conda.variants["tensorflow"].build == "cuda*"
    assert conda.conda_specs == ("cuda-version=12.4", "jaxlib * cuda*")


def test_a_pip_installed_framework_in_a_conda_cell_takes_its_pypi_build() -> None:
    plan = plan_cell(
        builtin_table(), {"cuda": "12.4", "jax": "0.4.35", "numpy": "2"}, conda=True, pip=["JAX"]
    )
    assert plan.variants == {"jax": Variant(extras=("cuda12",))}
    assert plan.conda_specs == ("cuda-version=12.4",)
    assert plan.env == {"CONDA_OVERRIDE_CUDA": "12.4"}


def test_a_combination_with_no_build_is_unsupported_and_an_unknown_cuda_a_problem() -> None:
    table = builtin_table()
    cupy = plan_cell(table, {"cuda": "none", "cupy": "13.3.0"}, conda=False)
    assert "CuPy publishes no CPU build" in cupy.unsupported
    jax = plan_cell(table, {"cuda": "11.8", "jax": "0.4.35"}, conda=False)
    assert "no CUDA 11 wheels" in jax.unsupported
    unknown = plan_cell(table, {"cuda": "9.2", "six": "1.16.0"}, conda=False)
    assert "no entry for cuda '9.2'" in unknown.problem
    assert plan_cell(table, {"python": "3.12", "torch": "2.5.1"}, conda=False).cuda is None


def test_needs_gpu_is_the_cuda_axis_set_and_not_none() -> None:
    assert needs_gpu({"cuda": "12.4"})
    assert not needs_gpu({"cuda": "none"})
    assert not needs_gpu({"python": "3.12"})


def test_a_user_table_extends_and_overrides_the_builtin_one(tmp_path: Path) -> None:
    path = tmp_path / "cuda.yml"
    path.write_text(
        textwrap.dedent("""\
        cuda:
          "12.4":
            pypi: ["nvidia-cuda-runtime-cu12==12.4.127", "nvidia-cuda-nvrtc-cu12=={version}.*"]
          "10":
            conda: ["cudatoolkit={version}"]
        frameworks:
          mxnet:
            pypi:
              none: {}
              cuda: {name: "mxnet-cu{major}{minor}"}
          jax:
            pypi:
              "11": {extras: [cuda11_pip]}
        """)
    )
    table = table_for(path)
    assert table.sources == ("cuda_table.yml", str(path))
    assert table.digest != builtin_table().digest
    plan = plan_cell(table, {"cuda": "12.4", "mxnet": "1.9.1"}, conda=False)
    assert plan.pip_requirements == (
        "nvidia-cuda-runtime-cu12==12.4.127",
        "nvidia-cuda-nvrtc-cu12==12.4.*",
    )
    assert plan.variants["mxnet"].name == "mxnet-cu124"
    assert plan_cell(table, {"cuda": "10.2"}, conda=True).conda_specs == ("cudatoolkit=10.2",)
    # the user's jax entry replaced only the "11" key; "12" still comes from the built-in table
    assert plan_cell(table, {"cuda": "11.8", "jax": "0.4"}, conda=False).variants["jax"].extras == (
        "cuda11_pip",
    )
    assert plan_cell(table, {"cuda": "12.6", "jax": "0.4"}, conda=False).variants["jax"].extras == (
        "cuda12",
    )
    # other CUDA 12 versions keep the built-in runtime pin
    assert plan_cell(table, {"cuda": "12.6"}, conda=False).pip_requirements == (
        "nvidia-cuda-runtime-cu12==12.6.*",
    )


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        (
            'cuda:\n  "12.4":\n    pip: []\n',
            (3, 5),
            "unknown key 'pip'; expected one of: conda, pypi",
        ),
        ("cuda:\n  twelve: {}\n", (2, 3), 'expected "none", "cuda", a CUDA major'),
        (
            'frameworks:\n  torch:\n    pypi:\n      cuda: {index: "https://x/{cuda}"}\n',
            (4, 21),
            "unknown placeholder {cuda}",
        ),
        (
            "frameworks:\n  torch:\n    pypi:\n      cuda: {extras: cuda12}\n",
            (4, 22),
            "expected a list",
        ),
        ("cuda: [1]\n", (1, 7), "expected a mapping"),
        ("cuda:\n  none: {}\n  none: {}\n", (3, 3), "duplicate key 'none'"),
    ],
)
def test_a_bad_table_is_an_error_located_in_its_file(
    tmp_path: Path, text: str, where: tuple[int, int], problem: str
) -> None:
    path = tmp_path / "cuda.yml"
    path.write_text(text)
    with pytest.raises(MatrixError) as caught:
        load_cuda_table(path)
    assert (caught.value.path, caught.value.line, caught.value.column) == (str(path), *where)
    assert problem in caught.value.problem


def test_resolved_cuda_versions_come_from_the_probe_then_the_packages() -> None:
    document = {
        "driver": {"found": True, "cuda": "12.4"},
        "libraries": [
            {"family": "cudart", "version": "12.4.127"},
            {"family": "cudnn", "version": "9.1.0"},
        ],
    }
    assert cuda_resolved({}, cuda_document=document) == {
        "cuda.driver": "12.4",
        "cuda.runtime": "12.4.127",
        "cuda.cudnn": "9.1.0",
    }
    wheels = {"nvidia-cuda-runtime-cu12": "12.6.77", "nvidia_cudnn_cu12": "9.5.1.17"}
    assert cuda_resolved(wheels) == {"cuda.runtime": "12.6.77", "cuda.cudnn": "9.5.1.17"}
    records = {
        "cuda-version": ("12.6", "h7480c83_3"),
        "cuda-cudart": ("12.6.77", "h5888daf_0"),
        "pytorch": ("2.5.1", "cuda126_mkl_py312_h1234567_310"),
    }
    assert cuda_resolved({}, conda_records=records, builds=["pytorch"]) == {
        "cuda.version": "12.6",
        "cuda.runtime": "12.6.77",
        "cuda.build.pytorch": "cuda126_mkl_py312_h1234567_310",
    }


# -- example matrices --------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_matrix_loads_expands_and_is_covered_by_the_cuda_table(name: str) -> None:
    path = REPO / "matrix" / f"{name}.yml"
    assert path.read_text().startswith("# "), "each example says what it answers"
    matrix = load_matrix(path)
    cells = expand(matrix)
    assert cells
    assert all("cuda" in cell.axes for cell in cells)
    for cell in cells:
        plan = plan_cell(builtin_table(), cell.axes, conda=matrix.backend == "micromamba")
        assert not plan.problem, (cell.id, plan.problem)


def test_the_cli_expands_an_example_matrix() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "expand", str(REPO / "matrix" / "pytorch.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    ids = proc.stdout.split()
    assert len(ids) == 48
    assert "py3.12-torch2.5.1-cu12.4" in ids
    assert "py3.10-torch2.4.1-cpu" in ids


# -- real cells --------------------------------------------------------------------------------


@pytest.fixture
def cuda_probe(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """The cuda probe in a cell's probes, whether or not matrix.PROBES lists it yet."""
    if not (probing.probes_dir() / "cuda_probe.py").exists():
        pytest.skip("probes/cuda_probe.py is not there yet")
    monkeypatch.setitem(probing.PROBE_SCRIPTS, "cuda", "cuda_probe.py")
    return (*(p for p in PROBES if p != "cuda"), "cuda")


def _run(tmp_path: Path, interpreters, axes: dict[str, str], probes: tuple[str, ...]):
    matrix = Matrix(path=tmp_path / "m.yml", name="cuda", probes=probes, imports=("six",))
    settings = RunSettings(report_dir=tmp_path / "report", env_root=tmp_path / "envs")
    return run_cell(matrix, Cell(f"c-{axes['cuda']}", axes), settings, interpreters)


@pytest.mark.slow
def test_a_cuda_cell_installs_the_real_runtime_wheel_and_is_gpu_unverified_here(
    tmp_path: Path, interpreters, python_for, cuda_probe
) -> None:
    python_for("3.11")
    if os.path.exists("/proc/driver/nvidia/version"):
        pytest.skip("this machine has an NVIDIA driver: the cell would be verified for real")
    result = _run(
        tmp_path, interpreters, {"python": "3.11", "six": "1.16.0", "cuda": "12.4"}, cuda_probe
    )
    assert (result.status, result.gpu_unverified) == ("pass", True), result.message
    assert result.resolved["nvidia-cuda-runtime-cu12"].startswith("12.4.")
    assert result.resolved["cuda.runtime"].startswith("12.4.")
    driver = next(p for p in result.probes if (p.probe, p.target) == ("cuda", "driver"))
    assert (driver.status, driver.category) == ("skip", "no-gpu")
    cudart = next(p for p in result.probes if (p.probe, p.target) == ("cuda", "cudart"))
    assert cudart.status == "pass"
    log = (tmp_path / "report" / "logs" / "c-12.4.log").read_text()
    assert "nvidia-cuda-runtime-cu12==12.4.*" in log.splitlines()[0]


@pytest.mark.slow
def test_a_cpu_cell_installs_no_cuda_and_a_cuda_cell_without_the_probe_still_installs(
    tmp_path: Path, interpreters, python_for
) -> None:
    python_for("3.11")
    cpu = _run(tmp_path, interpreters, {"python": "3.11", "six": "1.16.0", "cuda": "none"}, PROBES)
    assert (cpu.status, cpu.gpu_unverified) == ("pass", False)
    assert not any(name.startswith(("nvidia", "cuda.")) for name in cpu.resolved)
    gpu = _run(tmp_path, interpreters, {"python": "3.11", "six": "1.16.0", "cuda": "11.8"}, PROBES)
    assert gpu.status == "pass", gpu.message
    assert gpu.resolved["nvidia-cuda-runtime-cu11"].startswith("11.8.")
    assert gpu.resolved["cuda.runtime"] == gpu.resolved["nvidia-cuda-runtime-cu11"]
    lock = (tmp_path / "report" / "locks" / "c-11.8.txt").read_text()
    assert "nvidia-cuda-runtime-cu11==11.8." in lock


def test_a_combination_the_table_rules_out_is_unsupported_without_installing(
    tmp_path: Path, interpreters, python_for
) -> None:
    python_for("3.11")
    result = _run(
        tmp_path, interpreters, {"python": "3.11", "cupy": "13.3.0", "cuda": "none"}, PROBES
    )
    assert (result.status, result.category) == ("unsupported", "no-distribution")
    assert "CuPy publishes no CPU build" in result.message
    assert not (tmp_path / "envs").exists()
    unknown = _run(
        tmp_path, interpreters, {"python": "3.11", "six": "1.16.0", "cuda": "9.2"}, PROBES
    )
    assert (unknown.status, unknown.category) == ("error", "cuda-table")


# -- GPU and CPU runners -----------------------------------------------------------------------


def _nox(tmp: Path, matrix: Path, report: str, *posargs: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        COMPAT_MATRIX=str(matrix),
        COMPAT_REPORT_DIR=str(tmp / report),
        COMPAT_ENV_DIR=str(tmp / "envs"),
        NO_COLOR="1",
    )
    nox = [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py")]
    return subprocess.run(
        [*nox, "--envdir", str(tmp / ".nox"), "-s", "probe", "--", *posargs],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
        cwd=tmp,
    )


@pytest.mark.slow
def test_gpu_and_cpu_runners_each_run_their_cells_and_the_reports_merge(
    tmp_path: Path, python_for
) -> None:
    python_for("3.11")
    matrix = tmp_path / "m.yml"
    matrix.write_text(
        'name: runners\nmatrix:\n  python: ["3.11"]\n  six: ["1.16.0"]\n  cuda: ["none", "12.4"]\n'
    )
    cpu = _nox(tmp_path, matrix, "cpu", "--cpu-only")
    assert cpu.returncode == 0, cpu.stdout[-2000:] + cpu.stderr[-2000:]
    gpu = _nox(tmp_path, matrix, "gpu", "--gpu-only")
    assert gpu.returncode == 0, gpu.stdout[-2000:] + gpu.stderr[-2000:]
    cells = {
        name: [c["id"] for c in json.loads((tmp_path / name / "compat.json").read_text())["cells"]]
        for name in ("cpu", "gpu")
    }
    assert cells == {"cpu": ["py3.11-six1.16.0-cpu"], "gpu": ["py3.11-six1.16.0-cu12.4"]}
    assert "needs a GPU; this run is --cpu-only" in cpu.stdout + cpu.stderr
    report = [sys.executable, "-m", "compat_matrix", "report"]
    out = ["-o", str(tmp_path / "all"), "--matrix", str(matrix)]
    merged = subprocess.run(
        [*report, str(tmp_path / "cpu"), str(tmp_path / "gpu"), *out],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    document = json.loads((tmp_path / "all" / "compat.json").read_text())
    assert [c["id"] for c in document["cells"]] == [
        "py3.11-six1.16.0-cpu",
        "py3.11-six1.16.0-cu12.4",
    ]
    both = _nox(tmp_path, matrix, "both", "--cpu-only", "--gpu-only")
    assert both.returncode != 0
    assert "exclude each other" in both.stdout + both.stderr
