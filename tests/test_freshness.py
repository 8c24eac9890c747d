"""The package under test is tested, and always the current copy of its sources.

The maintainer's loop, for real: `compat.yml` beside `pyproject.toml` with `packages: ["."]`, a
cell fails on an import that needs a newer numpy, the source (not `pyproject.toml`) is fixed,
the next run passes without touching any other file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compat_matrix.build.backends import source_digest
from compat_matrix.matrix.model import Cell, Matrix
from compat_matrix.run.cell import _target_distributions
from compat_matrix.run.locks import LOCK_NAME

CELL = "py3.11-numpy1.24.4"


def test_packages_are_import_targets_like_the_axis_distributions(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "mypkg"\nversion = "1"\n')
    matrix = Matrix(
        path=tmp_path / "compat.yml",
        name="t",
        packages=(str(project), "requests>=2", "attrs @ https://example.invalid/attrs.whl"),
    )
    cell = Cell("c", {"python": "3.11", "numpy": "1.26.4", "torch": "none"})
    assert _target_distributions(matrix, cell) == ["numpy", "mypkg", "requests", "attrs"]


def test_the_source_digest_changes_with_sources_and_only_with_them(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")
    before = source_digest([tmp_path])
    for noise in (".git", "build", "dist", ".nox", ".venv", "compat-report", "__pycache__"):
        (tmp_path / noise).mkdir()
        (tmp_path / noise / "file").write_text("changes every run")
    (tmp_path / "pkg.egg-info").mkdir()
    (tmp_path / "pkg.egg-info" / "PKG-INFO").write_text("x")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert source_digest([tmp_path]) == before
    (tmp_path / "pkg" / "__init__.py").write_text("x = 2\n")
    edited = source_digest([tmp_path])
    assert edited != before
    (tmp_path / "pkg" / "new.py").write_text("")
    assert source_digest([tmp_path]) != edited


def test_the_folders_a_run_writes_are_not_sources_wherever_they_are(tmp_path: Path) -> None:
    """`-o reports` or `COMPAT_ENV_DIR=envs` inside the project: what a run writes there does
    not rebuild the package on the next run. The project's own root is never left out."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("x = 1\n")
    before = source_digest([tmp_path])
    for folder in ("reports", "envs"):
        (tmp_path / folder / "logs").mkdir(parents=True)
        (tmp_path / folder / LOCK_NAME).write_text("pid 1")
        (tmp_path / folder / "logs" / "cell.log").write_text("changes every run")
    assert source_digest([tmp_path]) == before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("a folder without the mark is sources")
    assert source_digest([tmp_path]) != before
    (tmp_path / LOCK_NAME).write_text("pid 1")  # `-o .`: the root still counts
    marked_root = source_digest([tmp_path])
    (tmp_path / "pkg" / "__init__.py").write_text("x = 2\n")
    assert source_digest([tmp_path]) != marked_root


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPAT_")}
    return subprocess.run(
        [sys.executable, "-m", "compat_matrix", "run", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=project,
        env=env,
    )


def _cell(project: Path) -> dict:
    return json.loads((project / "compat-report" / "cells" / f"{CELL}.json").read_text())


@pytest.mark.slow
def test_a_fixed_package_passes_on_the_next_run_without_touching_other_files(
    tmp_path: Path, python_for
) -> None:
    python_for("3.11")
    project = tmp_path / "mypkg"
    (project / "mypkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = ["flit_core>=3.9"]
        build-backend = "flit_core.buildapi"
        [project]
        name = "mypkg"
        version = "0.1"
        description = "a maintainer's package"
        dependencies = ["numpy"]
        """)
    )
    source = project / "mypkg" / "__init__.py"
    source.write_text("from numpy.exceptions import AxisError\n")
    (project / "compat.yml").write_text(
        textwrap.dedent("""\
        name: mypkg
        packages: ["."]
        matrix:
          python: ["3.11"]
          numpy: ["1.24.4"]
        """)
    )
    first = _run(project)
    cell = _cell(project)
    assert (cell["status"], cell["category"]) == ("fail", "import-error"), first.stderr
    assert "numpy.exceptions" in cell["message"]
    assert first.returncode == 1
    assert cell["resolved"]["numpy"] == "1.24.4"

    pyproject_mtime = (project / "pyproject.toml").stat().st_mtime_ns
    source.write_text("from numpy import AxisError\n")  # the fix, in the source only
    fixed = _run(project, "--resume")
    cell = _cell(project)
    assert cell["status"] == "pass", (cell["message"], fixed.stderr[-2000:])
    assert fixed.returncode == 0
    assert (project / "pyproject.toml").stat().st_mtime_ns == pyproject_mtime
    targets = {p["target"] for p in cell["probes"] if p["probe"] == "import"}
    assert targets == {"numpy", "mypkg"}

    # nothing changed: --resume keeps the result, and a plain rerun reuses the environment
    path = project / "compat-report" / "cells" / f"{CELL}.json"
    mtime = path.stat().st_mtime_ns
    assert _run(project, "--resume").returncode == 0
    assert path.stat().st_mtime_ns == mtime

    # and breaking it again is seen again, without --resume too
    source.write_text("from numpy.exceptions import AxisError\n")
    again = _run(project)
    assert _cell(project)["status"] == "fail", again.stderr[-2000:]
