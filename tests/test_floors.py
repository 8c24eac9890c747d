"""`compat-matrix floors`: a local package's declared lower bounds, tested on real releases.

The package declares `six>=1.10.0` but calls `six.ensure_str`, which six added in 1.12.0 (a
false bound), and `iniconfig>=2.0.0`, which is true. floors must bisect six's released wheels
to exactly 1.12.0 (1.11.0 fails, 1.12.0 passes) and confirm iniconfig's floor.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compat_matrix", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
    )


def _project(root: Path, dependencies: str, packages: str = '["."]') -> Path:
    (root / "floorkit").mkdir(parents=True)
    (root / "floorkit" / "__init__.py").write_text(
        "import iniconfig\nimport six\n\nensure_str = six.ensure_str  # six 1.12.0\n"
    )
    (root / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["flit_core>=3.9"]
        build-backend = "flit_core.buildapi"
        [project]
        name = "floorkit"
        version = "0.1"
        description = "a package with one false lower bound"
        dependencies = {dependencies}
        """)
    )
    (root / "compat.yml").write_text(
        f'name: floorkit\npackages: {packages}\nmatrix:\n  python: ["3.12"]\n'
    )
    return root


@pytest.mark.slow
def test_a_false_floor_is_raised_to_the_first_passing_release_and_a_true_one_confirmed(
    tmp_path: Path, python_for
) -> None:
    python_for("3.12")
    root = _project(tmp_path / "floorkit", '["six>=1.10.0", "iniconfig>=2.0.0"]')
    proc = _cli("floors", "-o", "report", "--json", cwd=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a bound must be raised
    document = json.loads(proc.stdout)
    deps = {d["name"]: d for d in document["dependencies"]}
    assert deps["six"]["suggested"] == ">=1.12.0"
    assert not deps["six"]["confirmed"]
    six = deps["six"]["pythons"][0]
    assert (six["outcome"], six["floor"], six["cell"]) == (
        "raise",
        "1.10.0",
        "floors-py3.12-six1.12.0",
    )
    assert deps["iniconfig"]["confirmed"]
    assert deps["iniconfig"]["pythons"][0]["suggested"] == "2.0.0"
    assert document["together"] == [
        {
            "python": "3.12",
            "cell": "floors-py3.12-iniconfig2.0.0-six1.12.0",
            "verdict": "pass",
            "pass": True,
        }
    ]
    # The evidence is real cells in the floors report: 1.11.0 fails, 1.12.0 passes.
    report = json.loads((root / "report" / "floors" / "compat.json").read_text())
    status = {cell["id"]: cell["status"] for cell in report["cells"]}
    assert status["floors-py3.12-six1.10.0"] == "fail"
    assert status["floors-py3.12-six1.11.0"] == "fail"
    assert status["floors-py3.12-six1.12.0"] == "pass"
    assert json.loads((root / "report" / "floors" / "floors.json").read_text()) == document

    # A capped search says where it stopped (the cells above are reused: --resume).
    capped = _cli("floors", "-o", "report", "--resume", "--max-steps", "1", "--json", cwd=root)
    assert capped.returncode == 3, capped.stdout + capped.stderr  # not judged: not a verdict
    left = json.loads(capped.stdout)["not_reached"]
    assert len(left) == 1
    assert left[0].startswith("six on 3.12: bisect stopped after 1 steps")
    assert "between 1.11.0 and 1.14.0" in left[0]


@pytest.mark.slow
def test_true_floors_are_confirmed_by_one_cell(tmp_path: Path, python_for) -> None:
    python_for("3.12")
    root = _project(tmp_path / "floorkit", '["six>=1.12.0", "iniconfig>=2.0.0"]')
    proc = _cli("floors", "-o", "report", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "six>=1.12.0: confirmed" in proc.stdout
    assert "iniconfig>=2.0.0: confirmed" in proc.stdout
    assert "evidence floors-py3.12-six1.12.0-iniconfig2.0.0 (pass)" in proc.stdout
    assert "1 cell in" in proc.stdout  # both floors held in one cell


def test_floors_without_a_local_project_is_a_usage_error(tmp_path: Path) -> None:
    root = _project(tmp_path / "floorkit", '["six>=1.10.0"]', packages='["six"]')
    proc = _cli("floors", "-o", "report", cwd=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'packages: ["."]' in proc.stderr
