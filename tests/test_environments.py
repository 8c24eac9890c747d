"""The uv and venv backends, building real environments from PyPI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from compat_matrix.build.backends import EnvRequest, UvBackend, VenvBackend, parse_lock


def _import_version(python: Path, module: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"import {module}; print({module}.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip()


def test_parse_lock_reads_pins_and_skips_comments_and_direct_references() -> None:
    text = "# header\nnumpy==2.2.6\n    # via pandas\nPython_Dateutil==2.9.0.post0 ; python_version >= '3'\nx @ file:///p\n"
    assert parse_lock(text) == {"numpy": "2.2.6", "python-dateutil": "2.9.0.post0"}


@pytest.mark.slow
def test_uv_builds_the_locked_environment_then_reuses_it(tmp_path, python_for) -> None:
    request = EnvRequest(python_for("3.11"), ("numpy==2.2.6",))
    backend = UvBackend()
    first = backend.prepare(tmp_path / "env", request, timeout=300)
    assert first.failure is None, first.log
    assert not first.reused
    assert parse_lock(first.lock_text) == {"numpy": "2.2.6"}
    assert _import_version(first.python, "numpy") == "2.2.6"

    second = backend.prepare(tmp_path / "env", request, timeout=300)
    assert second.reused
    assert second.fingerprint == first.fingerprint

    changed = backend.prepare(
        tmp_path / "env", EnvRequest(request.interpreter, ("numpy==2.2.5",)), timeout=300
    )
    assert not changed.reused
    assert _import_version(changed.python, "numpy") == "2.2.5"


@pytest.mark.slow
def test_uv_never_compiles_an_sdist_when_wheels_only(tmp_path, python_for) -> None:
    # numpy 1.26.4 exists only as an sdist for 3.13: wheels-only makes that a verdict.
    env = UvBackend().prepare(
        tmp_path / "env", EnvRequest(python_for("3.13"), ("numpy==1.26.4",)), timeout=120
    )
    assert env.failure is not None
    assert (env.failure.status, env.failure.category) == ("unsupported", "no-distribution")


@pytest.mark.slow
def test_uv_builds_a_local_project_even_when_wheels_only(tmp_path, python_for) -> None:
    project = tmp_path / "localpkg"
    (project / "localpkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core>=3.9"]\nbuild-backend = "flit_core.buildapi"\n'
        '[project]\nname = "localpkg"\nversion = "0.3"\ndescription = "d"\n'
    )
    (project / "localpkg" / "__init__.py").write_text('__version__ = "0.3"\n')
    request = EnvRequest(
        python_for("3.11"), (f"localpkg @ {project.as_uri()}",), build_from_source=("localpkg",)
    )
    env = UvBackend().prepare(tmp_path / "env", request, timeout=300)
    assert env.failure is None, env.log
    assert _import_version(env.python, "localpkg") == "0.3"


@pytest.mark.slow
def test_uv_times_out_as_an_error_not_a_verdict(tmp_path, python_for) -> None:
    env = UvBackend().prepare(
        tmp_path / "env", EnvRequest(python_for("3.11"), ("numpy==2.2.6",)), timeout=0.001
    )
    assert env.failure is not None
    assert (env.failure.status, env.failure.category) == ("error", "timeout")


@pytest.mark.slow
def test_venv_backend_installs_with_pip_and_freezes_a_lock(tmp_path, python_for) -> None:
    request = EnvRequest(python_for("3.12"), ("six==1.16.0",))
    env = VenvBackend().prepare(tmp_path / "env", request, timeout=300)
    assert env.failure is None, env.log
    assert parse_lock(env.lock_text)["six"] == "1.16.0"
    assert (env.python.parent / "pip").exists()
    again = VenvBackend().prepare(tmp_path / "env", request, timeout=300)
    assert again.reused
    assert parse_lock(again.lock_text)["six"] == "1.16.0"


@pytest.mark.slow
def test_venv_backend_classifies_a_conflict_from_pip(tmp_path, python_for) -> None:
    request = EnvRequest(python_for("3.10"), ("numpy==1.21.6", "pandas==2.2.3"))
    env = VenvBackend().prepare(tmp_path / "env", request, timeout=300)
    assert env.failure is not None
    assert (env.failure.status, env.failure.category) == ("conflict", "resolution-conflict")
