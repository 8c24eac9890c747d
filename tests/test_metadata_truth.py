"""Metadata truth: the project's Requires-Python and classifiers against its own verdicts.

A real local package, built and probed on real CPythons: it claims `Requires-Python >=3.8` and
a 3.13 classifier, but imports `pipes`, which Python 3.13 removed (a real incompatibility),
and it lists no 3.12 classifier although 3.12 passes. The interpreter-mismatch finding is
checked on a real cell result whose `python` axis was edited afterwards: a stand-in, because a
job that silently runs another Python cannot be forced here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compat_matrix.matrix.load import load_matrix
from compat_matrix.results import read_cell_result
from compat_matrix.run.metadata import check_metadata


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compat_matrix", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, python_for) -> Path:  # type: ignore[no-untyped-def]
    python_for("3.12")
    python_for("3.13")
    root = tmp_path_factory.mktemp("metadata") / "pipeskit"
    (root / "pipeskit").mkdir(parents=True)
    (root / "pipeskit" / "__init__.py").write_text("import pipes\n\nquote = pipes.quote\n")
    (root / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = ["flit_core>=3.9"]
        build-backend = "flit_core.buildapi"
        [project]
        name = "pipeskit"
        version = "0.1"
        description = "quotes shell words with pipes"
        requires-python = ">=3.8"
        dependencies = []
        classifiers = [
            "Programming Language :: Python :: 3",
            "Programming Language :: Python :: 3.13",
        ]
        """)
    )
    (root / "compat.yml").write_text(
        textwrap.dedent("""\
        name: pipeskit
        packages: ["."]
        matrix:
          python: ["3.12", "3.13"]
        expect:
          - {match: {python: "3.13"}, status: fail, reason: pipes was removed in 3.13}
        """)
    )
    run = _cli("run", "-o", "report", "-j", "2", cwd=root)
    assert run.returncode == 0, run.stdout + run.stderr  # every cell met its expectation
    return root


@pytest.mark.slow
def test_false_claims_and_a_missing_classifier_are_reported_in_every_report(project: Path) -> None:
    document = json.loads((project / "report" / "compat.json").read_text())
    kinds = {(f["kind"], f["python"]) for f in document["metadata"]}
    assert kinds == {
        ("requires-python-broken", "3.13"),
        ("classifier-broken", "3.13"),
        ("classifier-missing", "3.12"),
    }
    broken = next(f for f in document["metadata"] if f["kind"] == "classifier-broken")
    assert broken["cells"] == ["py3.13"]
    markdown = (project / "report" / "compat.md").read_text()
    assert "## Metadata" in markdown
    assert "**requires-python-broken**" in markdown
    page = (project / "report" / "compat.html").read_text()
    assert '<section class="metadata">' in page
    assert "classifier-missing" in page


@pytest.mark.slow
def test_fail_on_metadata_decides_the_exit_status(project: Path) -> None:
    default = _cli("report", "report", "--matrix", "compat.yml", cwd=project)
    assert default.returncode == 0, default.stdout + default.stderr
    assert "metadata: classifier-broken:" in default.stdout
    strict = _cli(
        "report", "report", "--matrix", "compat.yml", "--fail-on", "metadata", cwd=project
    )
    assert strict.returncode == 1, strict.stdout + strict.stderr
    rerun = _cli("run", "-o", "report", "--resume", "--fail-on", "metadata", cwd=project)
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert "metadata: requires-python-broken:" in rerun.stdout


@pytest.mark.slow
def test_a_cell_that_ran_another_python_is_a_finding(project: Path, tmp_path: Path) -> None:
    real = read_cell_result(project / "report" / "cells" / "py3.12.json")
    assert real.python is not None
    assert real.python.version.startswith("3.12.")
    # Stand-in: the axis says 3.11, the interpreter that really ran reported 3.12.x.
    real.axes["python"] = "3.11"
    findings = check_metadata(None, [real])
    assert findings is not None
    assert [f.kind for f in findings] == ["interpreter-mismatch"]
    assert real.python.version in findings[0].message

    edited = tmp_path / "report" / "cells"
    edited.mkdir(parents=True)
    (edited / "py3.12.json").write_text(json.dumps(real.to_dict()))
    strict = _cli("report", str(tmp_path / "report"), "--fail-on", "metadata", cwd=tmp_path)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "interpreter-mismatch" in strict.stdout
    default = _cli("report", str(tmp_path / "report"), cwd=tmp_path)
    assert default.returncode == 0, default.stdout + default.stderr


def test_agreeing_metadata_has_no_finding_and_dynamic_metadata_is_skipped(tmp_path: Path) -> None:
    """Cheap: the check on a hand-made matrix and results (no environment needed)."""
    from compat_matrix.results import CellResult, PythonInfo

    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "dyn"\nversion = "1"\ndynamic = ["classifiers"]\n'
        'requires-python = ">=3.12"\n'
    )
    (tmp_path / "compat.yml").write_text(
        'name: dyn\npackages: ["."]\nmatrix:\n  python: ["3.12"]\n'
    )
    matrix = load_matrix(tmp_path / "compat.yml")
    cell = CellResult(
        id="py3.12", axes={"python": "3.12"}, status="pass", python=PythonInfo("3.12.7")
    )
    findings = check_metadata(matrix, [cell])
    assert findings is not None
    assert [f.kind for f in findings] == ["skipped"]
    assert "classifiers is dynamic" in findings[0].message


@pytest.mark.slow
def test_dynamic_classifiers_are_read_from_the_built_metadata(tmp_path: Path, python_for) -> None:
    """setuptools computes the classifiers from a file: the check reads what the build wrote."""
    python_for("3.12")
    root = tmp_path / "dynkit"
    (root / "dynkit").mkdir(parents=True)
    (root / "dynkit" / "__init__.py").write_text("")
    (root / "classifiers.txt").write_text("Programming Language :: Python :: 3.11\n")
    (root / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "dynkit"
        version = "0.1"
        dynamic = ["classifiers"]
        [tool.setuptools]
        packages = ["dynkit"]
        [tool.setuptools.dynamic]
        classifiers = {file = ["classifiers.txt"]}
        """)
    )
    (root / "compat.yml").write_text('name: dynkit\npackages: ["."]\nmatrix:\n  python: ["3.12"]\n')
    run = _cli("run", "-o", "report", cwd=root)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads((root / "report" / "compat.json").read_text())
    assert [(f["kind"], f["python"]) for f in document["metadata"]] == [
        ("classifier-missing", "3.12")
    ]
