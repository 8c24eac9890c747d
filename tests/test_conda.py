"""`backend: conda` for real: rattler solves and installs from a local conda channel.

The channel (tests/_conda_channel.py) is built once from this machine's CPython 3.11 and 3.12
and PyPI wheels and cached between runs, so these tests build real conda environments with
real `conda-meta` records, without conda-forge. Where a micromamba binary is on PATH (GitHub's
CI job installs one), the cell tests run through it too, from the same channel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _conda_channel import ChannelInfo, write_package

from compat_matrix.build.backends import (
    EnvBackend,
    EnvRequest,
    MicromambaBackend,
    conda_lock_records,
    find_micromamba,
    get_backend,
    parse_lock,
)
from compat_matrix.build.conda import CondaBackend
from compat_matrix.build.cuda import plan_cell
from compat_matrix.build.install_errors import classify_rattler, rattler_reason
from compat_matrix.matrix.cuda_table import builtin_table
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.results import CellResult
from compat_matrix.run.cell import RunSettings, run_cell

REPO = Path(__file__).resolve().parents[1]


pytest.importorskip("rattler", reason="py-rattler, the conda engine, needs Python 3.10+")


@pytest.fixture(autouse=True)
def _shared_cache(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if "channel" in request.fixturenames:
        cache = request.getfixturevalue("conda_cache")
        monkeypatch.setenv("COMPAT_CACHE_DIR", str(cache))
        # micromamba keeps its packages beside ours, so its second run is warm too
        monkeypatch.setenv("MAMBA_ROOT_PREFIX", str(cache / "micromamba"))
        monkeypatch.setenv("CONDA_PKGS_DIRS", str(cache / "micromamba" / "pkgs"))
        monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)


@pytest.fixture(params=["conda", "micromamba"])
def backend_name(request: pytest.FixtureRequest) -> str:
    if request.param == "micromamba" and find_micromamba() is None:
        pytest.skip("no micromamba binary on PATH or at $MAMBA_EXE: the conda backend covers it")
    return str(request.param)


def _matrix_file(
    tmp_path: Path, channel: ChannelInfo, backend: str, axes: str, extra: str = ""
) -> Path:
    path = tmp_path / "compat.yml"
    path.write_text(
        f"name: conda-test\nbackend: {backend}\ntimeout: 600\n"
        f"channels: [{channel.url}]\n{extra}matrix:\n{axes}",
        encoding="utf-8",
    )
    return path


def _run(
    tmp_path: Path, channel: ChannelInfo, backend: str, axes: str, extra: str = ""
) -> list[CellResult]:
    matrix = load_matrix(_matrix_file(tmp_path, channel, backend, axes, extra))
    settings = RunSettings(report_dir=tmp_path / "report", env_root=tmp_path / "envs")
    return [run_cell(matrix, cell, settings, []) for cell in expand(matrix)]


def _request(channel: ChannelInfo, *specs: str, pip: tuple[str, ...] = ()) -> EnvRequest:
    return EnvRequest(None, pip, conda_specs=specs, channels=(channel.url,))


# -- cells -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_conda_cell_passes_with_an_explicit_lock_from_conda_meta(
    tmp_path: Path, channel: ChannelInfo, backend_name: str
) -> None:
    (cell,) = _run(
        tmp_path,
        channel,
        backend_name,
        '  python: ["3.11"]\n  numpy: ["1.24.4"]\n  pandas: ["2.2.3"]\n',
    )
    assert cell.status == "pass", (cell.category, cell.message)
    assert cell.resolved["numpy"] == "1.24.4"
    assert cell.resolved["pandas"] == "2.2.3"
    assert cell.resolved["python"] == channel.pythons["3.11"]
    assert cell.python is not None
    assert cell.python.version == channel.pythons["3.11"]
    lock = (tmp_path / "report" / cell.lock).read_text()
    assert "# platform: linux-64\n@EXPLICIT\n" in lock
    records = conda_lock_records(lock)
    assert records["numpy"] == ("1.24.4", "py311h_cm_0")
    assert records["tzdata"][0] == "2024.2"  # pandas' dependency, solved by conda
    line = next(x for x in lock.splitlines() if "/numpy-1.24.4-" in x)
    assert line.startswith(channel.url + "/linux-64/")
    assert len(line.split("#", 1)[1]) == 32  # the md5 conda recorded
    env = tmp_path / "envs" / cell.id
    names = {json.loads(p.read_text())["name"] for p in (env / "conda-meta").glob("*.json")}
    assert {"python", "numpy", "pandas", "python-dateutil", "six", "pytz", "tzdata"} <= names
    consistency = next(p for p in cell.probes if p.probe == "consistency")
    assert consistency.status == "pass"
    assert "conda record" in consistency.message


@pytest.mark.slow
def test_a_solved_lock_that_did_not_change_reuses_the_environment(
    tmp_path: Path, channel: ChannelInfo, conda_cache: Path
) -> None:
    backend = CondaBackend(cache=conda_cache)
    request = _request(channel, "python=3.11", "six=1.16.0")
    first = backend.prepare(tmp_path / "env", request, timeout=300)
    assert first.failure is None, first.failure
    assert not first.reused
    started = time.monotonic()
    second = backend.prepare(tmp_path / "env", request, timeout=300)
    assert second.reused
    assert second.lock_text == first.lock_text
    assert time.monotonic() - started < 15  # one solve, nothing linked
    changed = backend.prepare(
        tmp_path / "env", _request(channel, "python=3.11", "six=1.17.0"), timeout=300
    )
    assert not changed.reused
    assert parse_lock(changed.lock_text)["six"] == "1.17.0"


def test_builds_only_for_the_older_python_are_unsupported(
    tmp_path: Path, channel: ChannelInfo, backend_name: str
) -> None:
    (cell,) = _run(tmp_path, channel, backend_name, '  python: ["3.12"]\n  numpy: ["1.24.4"]\n')
    assert (cell.status, cell.category) == ("unsupported", "no-distribution")
    assert "numpy 1.24.4" in cell.message
    assert "python >=3.11,<3.12" in cell.message
    assert not (tmp_path / "envs" / cell.id / "conda-meta").exists()


def test_requirements_that_exclude_each_other_are_a_conflict(
    tmp_path: Path, channel: ChannelInfo, backend_name: str
) -> None:
    (cell,) = _run(
        tmp_path,
        channel,
        backend_name,
        '  python: ["3.11"]\n  pandas: ["2.2.3"]\n  tzdata: ["2022.1"]\n',
    )
    assert (cell.status, cell.category) == ("conflict", "resolution-conflict"), cell.message
    assert "tzdata >=2022.7" in cell.message
    assert cell.hint


@pytest.mark.slow
def test_a_package_that_needs_a_driver_solves_only_with_the_cuda_override(
    tmp_path: Path, channel: ChannelInfo, backend_name: str
) -> None:
    gpu, cpu = _run(
        tmp_path,
        channel,
        backend_name,
        '  python: ["3.11"]\n  cuda: ["12.4", "none"]\n  cuda-cudart: ["12.4.127"]\n',
        extra="import: [sys]\n",
    )
    # CONDA_OVERRIDE_CUDA=12.4 stands in for a driver on this GPU-less machine
    assert gpu.status == "pass", (gpu.category, gpu.message)
    assert gpu.resolved["cuda-cudart"] == "12.4.127"
    assert gpu.resolved.get("cuda.version") == "12.4"
    assert (cpu.status, cpu.category) == ("unsupported", "no-distribution")
    assert "__cuda >=12" in cpu.message


def test_the_cuda_override_is_what_makes_the_solve_succeed(
    tmp_path: Path, channel: ChannelInfo, conda_cache: Path
) -> None:
    backend = CondaBackend(cache=conda_cache)
    specs = ("python=3.11", "cuda-version=12.4", "cuda-cudart")
    bare = backend.solve(tmp_path / "x", _request(channel, *specs), timeout=120)
    assert bare.failure is not None
    assert bare.failure.status == "unsupported"
    with_override = EnvRequest(
        None, (), conda_specs=specs, channels=(channel.url,), env={"CONDA_OVERRIDE_CUDA": "12.4"}
    )
    solved = backend.solve(tmp_path / "x", with_override, timeout=120)
    assert solved.failure is None
    assert solved.records["cuda-cudart"] == ("12.4.127", "h_cm_0")


@pytest.mark.slow
def test_pip_packages_install_after_the_solve_and_are_pinned_in_the_lock(
    tmp_path: Path, channel: ChannelInfo, backend_name: str
) -> None:
    (cell,) = _run(
        tmp_path,
        channel,
        backend_name,
        '  python: ["3.11"]\n  six: ["1.16.0"]\n',
        extra="pip: [six]\n",
    )
    assert cell.status == "pass", (cell.category, cell.message)
    lock = (tmp_path / "report" / cell.lock).read_text()
    assert "# pip: six==1.16.0" in lock
    assert "six" not in conda_lock_records(lock)  # pip's, not conda's
    assert "pip" in conda_lock_records(lock)


@pytest.mark.slow
def test_pip_over_a_conda_package_fails_the_cell_and_names_both(
    tmp_path: Path, channel: ChannelInfo, backend_name: str
) -> None:
    # python-dateutil comes from conda and brings conda's six 1.17.0; `pip: [six]` then puts
    # PyPI's six 1.16.0 over it (pip uninstalls conda's files; conda still records them)
    (cell,) = _run(
        tmp_path,
        channel,
        backend_name,
        '  python: ["3.11"]\n  python-dateutil: ["2.9.0.post0"]\n  six: ["1.16.0"]\n',
        extra="pip: [six]\n",
    )
    assert (cell.status, cell.category) == ("fail", "inconsistent-env"), cell.message
    failing = [p for p in cell.probes if p.probe == "consistency" and p.status == "fail"]
    assert any(
        "six 1.16.0 was installed by pip over conda's six 1.17.0" in p.message for p in failing
    )


def test_an_unreachable_channel_is_a_network_error(tmp_path: Path, conda_cache: Path) -> None:
    backend = CondaBackend(cache=conda_cache)
    request = EnvRequest(
        None, (), conda_specs=("python=3.11",), channels=("https://127.0.0.1:9/conda-forge",)
    )
    result = backend.prepare(tmp_path / "env", request, timeout=120)
    assert result.failure is not None
    assert (result.failure.status, result.failure.category) == ("error", "network")
    assert result.failure.retryable


def test_a_missing_file_channel_is_a_channel_error(tmp_path: Path, conda_cache: Path) -> None:
    backend = CondaBackend(cache=conda_cache)
    request = EnvRequest(
        None, (), conda_specs=("python=3.11",), channels=((tmp_path / "nowhere").as_uri(),)
    )
    result = backend.prepare(tmp_path / "env", request, timeout=120)
    assert result.failure is not None
    assert result.failure.status == "error"
    assert result.failure.category in ("channel", "network")


def test_the_conda_backend_is_built_in() -> None:
    backend = get_backend("conda")
    assert isinstance(backend, CondaBackend)
    assert isinstance(backend, EnvBackend)
    assert isinstance(get_backend("micromamba"), MicromambaBackend)


# -- classification of rattler's own explanations ----------------------------------------------

PYTHON_ONLY = """Cannot solve the request because of: numpy 1.24.4.* cannot be installed because \
there are no viable options:
└─ numpy 1.24.4 would require
   └─ python >=3.11,<3.12.0a0, for which no candidates were found.
"""
CONFLICT = """Cannot solve the request because of: pandas * cannot be installed because there \
are no viable options:
├─ pandas 2.2.3 would require
│  └─ tzdata >=2022.7, for which no candidates were found.
└─ pandas 2.2.3 would require
   └─ python >=3.12,<3.13.0a0, for which no candidates were found.
"""


def test_rattler_explanations_are_classified_and_shortened() -> None:
    only_python = classify_rattler("SolverError", PYTHON_ONLY)
    assert (only_python.status, only_python.category) == ("unsupported", "no-distribution")
    assert only_python.message == (
        "numpy 1.24.4.* cannot be installed because there are no viable options; "
        "numpy 1.24.4 would require python >=3.11,<3.12.0a0, for which no candidates were found"
    )
    conflict = classify_rattler("SolverError", CONFLICT)
    assert (conflict.status, conflict.category) == ("conflict", "resolution-conflict")
    assert "pandas 2.2.3 would require tzdata >=2022.7" in rattler_reason(CONFLICT)
    missing = classify_rattler(
        "SolverError", "Cannot solve the request because of: No candidates were found for nosuch *."
    )
    assert missing.status == "unsupported"
    fetch = classify_rattler(
        "FetchRepoDataError", "failed to fetch repodata: error sending request"
    )
    assert (fetch.status, fetch.category) == ("error", "network")


# -- the worker ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_worker_exits_cleanly_after_every_install(
    tmp_path: Path, channel: ChannelInfo, conda_cache: Path
) -> None:
    """py-rattler 0.28 crashed at exit after 5 of 50 installs; the worker leaves with os._exit."""
    backend = CondaBackend(cache=conda_cache)
    payload = backend.worker_request(tmp_path / "env", _request(channel, "python=3.11", "six"))
    statuses = []
    for attempt in range(int(os.environ.get("COMPAT_TEST_WORKER_RUNS", "12"))):
        payload["prefix"] = str(tmp_path / f"env{attempt}")
        proc = subprocess.run(
            [
                sys.executable,
                "-I",
                str(REPO / "src/compat_matrix/build/conda_worker.py"),
                "install",
            ],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "CONDA_OVERRIDE_CUDA": ""},
        )
        answer: dict[str, Any] = json.loads(proc.stdout)
        assert answer["ok"], answer
        statuses.append(proc.returncode)
    assert statuses == [0] * len(statuses)


def test_channels_have_strict_priority(
    tmp_path: Path, channel: ChannelInfo, conda_cache: Path
) -> None:
    """A package the first channel has never comes from a later one, even in a newer version."""
    import asyncio

    from rattler.index import index_fs

    later = tmp_path / "later"
    (later / "noarch").mkdir(parents=True)
    module = tmp_path / "six.py"
    module.write_text("__version__ = '1.99.0'\n")
    write_package(
        later / "noarch",
        "six",
        "1.99.0",
        "pyh_0",
        {"site-packages/six.py": module},
        depends=("python",),
        noarch="python",
    )
    asyncio.run(index_fs(later, write_zst=False, write_shards=False))
    backend = CondaBackend(cache=conda_cache)
    both = EnvRequest(
        None, (), conda_specs=("python=3.11", "six"), channels=(channel.url, later.as_uri())
    )
    assert backend.solve(tmp_path / "x", both, timeout=120).records["six"][0] == "1.17.0"
    reverse = EnvRequest(
        None, (), conda_specs=("python=3.11", "six"), channels=(later.as_uri(), channel.url)
    )
    assert backend.solve(tmp_path / "x", reverse, timeout=120).records["six"][0] == "1.99.0"


@pytest.mark.parametrize("name", ["miniconda-audit", "conda-then-pip"])
def test_the_conda_examples_load_and_plan_their_cells(name: str) -> None:
    path = REPO / "matrix" / f"{name}.yml"
    assert path.read_text().startswith("# "), "each example says what it answers"
    matrix = load_matrix(path)
    assert matrix.backend == "conda"
    assert matrix.channels == ("conda-forge",)
    cells = expand(matrix)
    assert cells
    for cell in cells:
        plan = plan_cell(builtin_table(), cell.axes, conda=True, pip=matrix.pip)
        assert not plan.problem and not plan.unsupported, (cell.id, plan)
    if name == "miniconda-audit":
        assert [c.python for c in cells] == ["3.9", "3.10"]
        assert plan_cell(builtin_table(), cells[0].axes, conda=True).env == {
            "CONDA_OVERRIDE_CUDA": ""
        }
