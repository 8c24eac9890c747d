"""`audit`: probing an existing environment, built for real with uv, without touching it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compat_matrix.errors import UsageError
from compat_matrix.run.audit import audit_environment

pytestmark = pytest.mark.slow


def _env(tmp_path: Path, uv: str, python: Path, *requirements: str) -> Path:
    env = tmp_path / "base-image"
    subprocess.run([uv, "venv", "-q", "--python", str(python), str(env)], check=True, timeout=120)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(env / "bin" / "python"), *requirements],
        check=True,
        timeout=600,
    )
    return env / "bin" / "python"


def _freeze(python: Path) -> str:
    return subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print(sorted((d.name, d.version) for d in m.distributions()))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def test_audit_explains_a_broken_environment_and_leaves_it_untouched(
    tmp_path, uv_bin, python_for
) -> None:
    python = _env(tmp_path, uv_bin, python_for("3.11").path, "numpy==2.2.6", "pandas==2.0.3")
    before = _freeze(python)
    result, paths = audit_environment(python, tmp_path / "report")
    assert (result.status, result.category) == ("fail", "abi-numpy")
    assert result.id == "audit-py3.11-base-image"
    assert result.resolved["pandas"] == "2.0.3"
    assert "numpy<2" in result.hint
    imports = {p.target: p.status for p in result.probes if p.probe == "import"}
    assert imports["pandas"] == "fail"
    assert imports["numpy"] == "pass"
    assert json.loads(paths.json.read_text())["cells"][0]["id"] == result.id
    assert "abi-numpy" in paths.markdown.read_text()
    assert _freeze(python) == before


def test_audit_of_a_healthy_environment_passes(tmp_path, uv_bin, python_for) -> None:
    python = _env(tmp_path, uv_bin, python_for("3.12").path, "six==1.17.0")
    result, _ = audit_environment(python, tmp_path / "report", imports=["six", "json"])
    assert result.status == "pass", result.message
    assert [p.target for p in result.probes if p.probe == "import"] == ["six", "json"]


def test_audit_of_a_missing_interpreter_is_a_usage_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="no interpreter"):
        audit_environment(tmp_path / "nope" / "bin" / "python", tmp_path / "report")


def test_audit_runs_on_the_interpreter_running_the_tests(tmp_path) -> None:
    result, _ = audit_environment(
        Path(sys.executable), tmp_path / "r", imports=["json"], probes=("import",)
    )
    assert result.status == "pass"
