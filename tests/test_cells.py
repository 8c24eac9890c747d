"""The cell pipeline: interpreter -> environment -> probes -> verdict -> cells/<id>.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat_matrix.matrix.model import Cell, Expectation, Matrix
from compat_matrix.results import read_cell_result
from compat_matrix.run import cell as cells_module
from compat_matrix.run.cell import RunSettings, default_imports, run_cell


def _matrix(tmp_path: Path, **kwargs) -> Matrix:
    return Matrix(path=tmp_path / "m.yml", name="t", **kwargs)


def _settings(tmp_path: Path, resume: bool = False) -> RunSettings:
    return RunSettings(report_dir=tmp_path / "report", env_root=tmp_path / "envs", resume=resume)


def test_default_imports_are_the_axis_distributions_top_level_modules() -> None:
    cell = Cell("c", {"python": "3.11", "scikit-learn": "1.5", "torch": "none", "PyYAML": "6"})
    top = {"scikit-learn": ["sklearn"], "PyYAML": ["yaml"]}
    assert default_imports(cell, top) == ["sklearn", "yaml"]
    assert default_imports(Cell("c", {"python-dateutil": "2"}), {}) == ["python_dateutil"]


def test_a_missing_interpreter_is_a_skip_naming_what_was_found(tmp_path, interpreters) -> None:
    cell = Cell("py3.99-six1", {"python": "3.99", "six": "1.16.0"})
    result = run_cell(_matrix(tmp_path), cell, _settings(tmp_path), interpreters)
    assert (result.status, result.category) == ("skip", "no-interpreter")
    assert "3.99" in result.message
    assert read_cell_result(tmp_path / "report" / "cells" / "py3.99-six1.json") == result


def test_a_harness_bug_becomes_an_error_cell_and_is_still_written(
    tmp_path, interpreters, python_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    python_for("3.11")

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cells_module, "requirements_for", explode)
    cell = Cell("py3.11-x", {"python": "3.11", "six": "1.16.0"})
    result = run_cell(_matrix(tmp_path), cell, _settings(tmp_path), interpreters)
    assert (result.status, result.category) == ("error", "harness")
    assert "RuntimeError: boom" in result.message
    assert (tmp_path / "report" / "cells" / "py3.11-x.json").exists()


@pytest.mark.slow
def test_resume_keeps_a_result_only_while_its_inputs_are_unchanged(
    tmp_path, interpreters, python_for
) -> None:
    python_for("3.11")
    cell = Cell("py3.11-six", {"python": "3.11", "six": "1.16.0"})
    matrix = _matrix(tmp_path, expect=(Expectation({"six": "1.16.0"}, "pass"),))
    first = run_cell(matrix, cell, _settings(tmp_path), interpreters)
    assert first.status == "pass"
    assert first.expectation is not None
    assert first.expectation.met
    path = tmp_path / "report" / "cells" / "py3.11-six.json"
    mtime = path.stat().st_mtime_ns

    again = run_cell(matrix, cell, _settings(tmp_path, resume=True), interpreters)
    assert again == first
    assert path.stat().st_mtime_ns == mtime

    changed = _matrix(tmp_path, imports=("six",), expect=matrix.expect)
    rerun = run_cell(changed, cell, _settings(tmp_path, resume=True), interpreters)
    assert rerun.fingerprint != first.fingerprint
    assert path.stat().st_mtime_ns != mtime
