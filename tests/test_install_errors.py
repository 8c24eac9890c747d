"""Install classification, from the real output of uv and pip (PyPI is reachable here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from compat_matrix.build.backends import EnvRequest, package_index, resolve
from compat_matrix.build.install_errors import (
    InstallFailure,
    classify_pip,
    classify_uv,
    refine_install_failure,
    shorten,
)
from compat_matrix.build.package_index import PackageIndex
from compat_matrix.matrix.model import Cell, Matrix
from compat_matrix.results import CellResult
from compat_matrix.run.cell import RunSettings, run_cell

UNREACHABLE = "http://127.0.0.1:9/simple"


def _uv_compile(uv: str, python: str, *requirements: str, index: str | None = None) -> str:
    argv = [uv, "pip", "compile", "-", "--python", python, "--only-binary", ":all:"]
    if index:
        argv += ["--index-url", index]
    proc = subprocess.run(
        argv,
        input="\n".join(requirements),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0, proc.stdout
    return proc.stdout + proc.stderr


def _pip_dry_run(python: str, *requirements: str, index: str | None = None) -> str:
    argv = [
        python,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--no-input",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        *requirements,
    ]
    if index:
        argv += ["--index-url", index, "--retries", "0", "--timeout", "2"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_uv_no_wheel_for_this_python_is_unsupported(uv_bin, python_for) -> None:
    output = _uv_compile(uv_bin, str(python_for("3.13").path), "numpy==1.26.4")
    failure = classify_uv(output, only_binary=True)
    assert (failure.status, failure.category) == ("unsupported", "no-distribution")
    assert "numpy==1.26.4" in failure.message
    # Building from source is offered only once the index shows numpy 1.26.4 has an sdist.
    assert "only-binary" not in failure.hint
    refined = refine_install_failure(
        failure, ["numpy==1.26.4"], "3.13.0", only_binary=True, index=package_index()
    )
    assert (refined.status, refined.category) == ("unsupported", "no-distribution")
    assert "numpy 1.26.4 has no wheel for Python 3.13" in refined.hint
    assert "only-binary: false" in refined.hint


@pytest.mark.slow
def test_uv_text_alone_cannot_tell_a_missing_version_from_a_missing_wheel(
    uv_bin, python_for
) -> None:
    output = _uv_compile(uv_bin, str(python_for("3.11").path), "numpy==9.9.9")
    assert classify_uv(output, only_binary=True).category == "no-distribution"


@pytest.mark.slow
def test_uv_declared_requirements_that_exclude_each_other_are_a_conflict(
    uv_bin, python_for
) -> None:
    output = _uv_compile(uv_bin, str(python_for("3.10").path), "numpy==1.21.6", "pandas==2.2.3")
    failure = classify_uv(output, only_binary=True)
    assert (failure.status, failure.category) == ("conflict", "resolution-conflict")
    assert "pandas==2.2.3 depends on numpy" in failure.message


@pytest.mark.slow
def test_uv_unreachable_index_is_a_retryable_network_error(uv_bin, python_for) -> None:
    output = _uv_compile(uv_bin, str(python_for("3.11").path), "numpy", index=UNREACHABLE)
    failure = classify_uv(output, only_binary=True)
    assert (failure.status, failure.category) == ("error", "network")
    assert failure.retryable


@pytest.mark.slow
def test_pip_no_wheel_for_this_python_is_unsupported(python_for) -> None:
    output = _pip_dry_run(str(python_for("3.13").path), "numpy==1.26.4")
    failure = classify_pip(output, only_binary=True)
    assert (failure.status, failure.category) == ("unsupported", "no-distribution")
    assert "numpy==1.26.4" in failure.message


@pytest.mark.slow
def test_pip_resolution_impossible_is_a_conflict(python_for) -> None:
    output = _pip_dry_run(str(python_for("3.10").path), "numpy==1.21.6", "pandas==2.2.3")
    failure = classify_pip(output, only_binary=True)
    assert (failure.status, failure.category) == ("conflict", "resolution-conflict")
    assert "pandas 2.2.3 depends on numpy" in failure.message
    request = EnvRequest(python_for("3.10"), ("numpy==1.21.6", "pandas==2.2.3"))
    refined = refine_install_failure(
        failure,
        request.requirements,
        "3.10.13",
        only_binary=True,
        index=package_index(),
        resolve=lambda reqs: resolve(reqs, request, timeout=120),
    )
    assert refined.hint == (
        "pandas 2.2.3 requires numpy>=1.22.4, which excludes numpy==1.21.6; "
        "the smallest change is numpy 1.22.4, which satisfies it (verified: resolves)"
    )


def test_shorten_keeps_errors_and_causes_and_drops_ansi_and_noise() -> None:
    output = "\x1b[1mResolved 3 packages\x1b[0m\nerror: \x1b[31mNo solution\x1b[0m\n  cause: x\n"
    assert shorten(output) == "error: No solution\ncause: x"


def test_shorten_caps_length() -> None:
    assert len(shorten("error: " + "x" * 5000, limit=100)) == 100


def test_unknown_failure_is_an_install_error_not_a_verdict() -> None:
    failure = classify_uv("error: disk quota exceeded", only_binary=True)
    assert (failure.status, failure.category) == ("error", "install")


# -- the index decides: a typo is not a verdict ----------------------------------------------

BACKENDS = ["uv", "venv"]


def _cell(backend: str, tmp_path: Path, interpreters, python: str, **axes: str) -> CellResult:
    """Run one matrix cell through the cell pipeline, as `compat-matrix run` does."""
    matrix = Matrix(path=tmp_path / "compat.yml", name="t", backend=backend)
    cell = Cell("c", {"python": python, **axes})
    settings = RunSettings(report_dir=tmp_path / "report", env_root=tmp_path / "envs")
    return run_cell(matrix, cell, settings, interpreters)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("typo", "meant"), [("numpyy", "numpy"), ("pandsa", "pandas")])
def test_a_package_that_does_not_exist_is_an_error_naming_the_close_ones(
    backend, typo: str, meant: str, tmp_path: Path, interpreters, python_for
) -> None:
    python_for("3.11")
    failure = _cell(backend, tmp_path, interpreters, "3.11", **{typo: "2.0.3", "six": "1.16.0"})
    assert (failure.status, failure.category) == ("error", "no-such-package")
    assert f"{typo} does not exist on the package index (https://pypi.org/simple/)" in (
        failure.message
    )
    assert f"did you mean {meant}" in failure.hint


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_version_never_released_is_an_error_naming_the_near_ones(
    backend, tmp_path: Path, interpreters, python_for
) -> None:
    python_for("3.11")
    failure = _cell(backend, tmp_path, interpreters, "3.11", numpy="1.99.0")
    assert (failure.status, failure.category) == ("error", "no-such-version")
    assert failure.message == "numpy 1.99.0 was never released"
    assert "the nearest releases are 1.26.3, 1.26.4, 2.0.0, 2.0.1" in failure.hint


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_requires_python_names_what_the_release_needs_and_the_newest_for_this_python(
    backend, tmp_path: Path, interpreters, python_for
) -> None:
    """numpy 2.2.6 exists but needs Python >=3.10: still `unsupported`, not a typo."""
    python_for("3.9")
    failure = _cell(backend, tmp_path, interpreters, "3.9", numpy="2.2.6")
    assert (failure.status, failure.category) == ("unsupported", "no-distribution")
    assert failure.hint == (
        "numpy 2.2.6 needs Python >=3.10; "
        "the smallest change for 3.9 is numpy 2.0.2 (verified: resolves)"
    )


@pytest.mark.slow
def test_a_conflict_names_the_clashing_requirement_and_a_version_that_meets_it(
    tmp_path: Path, interpreters, python_for
) -> None:
    """tensorflow-cpu 2.17.1 declares numpy<2.0.0 (resolution only: nothing is installed)."""
    python_for("3.11")
    failure = _cell(
        "uv", tmp_path, interpreters, "3.11", **{"tensorflow-cpu": "2.17.1", "numpy": "2.2.6"}
    )
    assert (failure.status, failure.category) == ("conflict", "resolution-conflict")
    assert failure.hint.startswith("tensorflow-cpu 2.17.1 requires numpy<2.0.0,>=1.23.5")
    assert (
        "excludes numpy==2.2.6; the smallest change is numpy 1.26.4, which satisfies it "
        "(verified: resolves)"
    ) in failure.hint


@pytest.mark.slow
def test_a_suggested_pin_the_resolver_refuses_is_not_offered(python_for) -> None:
    """pip on 3.9 says only "no numpy 2.2.6"; numpy 2.0.x would clash with tensorflow-cpu.

    The newest numpy for 3.9 (2.0.2) is refused by tensorflow-cpu's numpy<2.0.0, so the
    resolver's own choice within the other pins is named instead.
    """
    requirements = ("tensorflow-cpu==2.17.1", "numpy==2.2.6")
    request = EnvRequest(python_for("3.9"), requirements)
    failure = InstallFailure("unsupported", "no-distribution", "No matching distribution")
    refined = refine_install_failure(
        failure,
        requirements,
        "3.9.18",
        only_binary=True,
        index=package_index(),
        resolve=lambda reqs: resolve(reqs, request, timeout=120),
    )
    assert refined.hint == (
        "numpy 2.2.6 needs Python >=3.10; "
        "numpy 1.26.4 resolves for 3.9 with the other pins (verified: resolves)"
    )
    assert "2.0.2" not in refined.hint


def test_an_unreachable_index_keeps_the_installers_classification(tmp_path: Path) -> None:
    failure = InstallFailure("unsupported", "no-distribution", "no usable wheels", "not offered")
    offline = PackageIndex(["http://127.0.0.1:9/simple/"], cache=tmp_path, timeout=2)
    assert (
        refine_install_failure(failure, ["numpyy==1"], "3.11.7", only_binary=True, index=offline)
        == failure
    )
