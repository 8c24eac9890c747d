"""Install classification, from the real output of uv and pip (PyPI is reachable here)."""

from __future__ import annotations

import subprocess

import pytest

from compat_matrix.build.install_errors import classify_pip, classify_uv, shorten

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
    assert "only-binary" in failure.hint


@pytest.mark.slow
def test_uv_version_that_does_not_exist_is_unsupported(uv_bin, python_for) -> None:
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


def test_shorten_keeps_errors_and_causes_and_drops_ansi_and_noise() -> None:
    output = "\x1b[1mResolved 3 packages\x1b[0m\nerror: \x1b[31mNo solution\x1b[0m\n  cause: x\n"
    assert shorten(output) == "error: No solution\ncause: x"


def test_shorten_caps_length() -> None:
    assert len(shorten("error: " + "x" * 5000, limit=100)) == 100


def test_unknown_failure_is_an_install_error_not_a_verdict() -> None:
    failure = classify_uv("error: disk quota exceeded", only_binary=True)
    assert (failure.status, failure.category) == ("error", "install")
