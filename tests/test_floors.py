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


_ENSURE_STR = "import iniconfig\nimport six\n\nensure_str = six.ensure_str  # six 1.12.0\n"


def _project(
    root: Path,
    dependencies: str,
    packages: str = '["."]',
    *,
    code: str = _ENSURE_STR,
    pythons: str = '["3.12"]',
    axes: str = "",
) -> Path:
    (root / "floorkit").mkdir(parents=True)
    (root / "floorkit" / "__init__.py").write_text(code)
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
        f"name: floorkit\npackages: {packages}\nmatrix:\n  python: {pythons}\n{axes}"
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


#: Only the 3.12 code path calls six.ensure_str (six 1.12.0): the floor differs per Python.
_ENSURE_STR_ON_312 = """\
import sys

import six

if sys.version_info >= (3, 12):
    ensure_str = six.ensure_str  # six 1.12.0
"""


@pytest.mark.slow
def test_floors_that_differ_across_pythons_advise_the_highest_and_say_so(
    tmp_path: Path, python_for
) -> None:
    python_for("3.11")
    python_for("3.12")
    root = _project(
        tmp_path / "floorkit",
        '["six>=1.10.0"]',
        code=_ENSURE_STR_ON_312,
        pythons='["3.11", "3.12"]',
        axes='  iniconfig: ["2.0.0"]\n',
    )
    proc = _cli("floors", "-o", "report", "--json", cwd=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    document = json.loads(proc.stdout)
    [six] = document["dependencies"]
    per_python = {r["python"]: (r["outcome"], r["suggested"], r["cell"]) for r in six["pythons"]}
    assert per_python == {
        "3.11": ("confirmed", "1.10.0", "floors-py3.11-six1.10.0"),
        "3.12": ("raise", "1.12.0", "floors-py3.12-six1.12.0"),
    }
    # One bound for all Pythons: the highest, with the per-Python floors in the note.
    assert six["suggested"] == ">=1.12.0"
    assert six["note"] == (
        "the highest over Pythons (3.11: >=1.10.0, 3.12: >=1.12.0); "
        "no environment markers suggested"
    )
    # The matrix's other axis is not used, and the output says so.
    assert any("other axes (iniconfig) are not used" in note for note in document["notes"])
    table = _cli("floors", "-o", "report", "--resume", cwd=root)
    assert table.returncode == 1, table.stdout + table.stderr
    assert "six>=1.12.0: raise (declared >=1.10.0)  [the highest over Pythons" in table.stdout
    assert "py3.11: confirmed >=1.10.0 evidence floors-py3.11-six1.10.0 (pass)" in table.stdout
    assert "note: the matrix's other axes (iniconfig) are not used" in table.stdout


#: six below 1.17 works, iniconfig below 2 works, but not both at once: a shim in the project.
_NOT_TOGETHER = """\
from importlib.metadata import version

import iniconfig
import six

if version("six").startswith("1.16.") and version("iniconfig").startswith("1."):
    raise ImportError("floorkit's six 1.16 shim needs iniconfig 2")
"""


@pytest.mark.slow
def test_floors_that_pass_alone_but_fail_together_are_a_finding(tmp_path: Path, python_for) -> None:
    python_for("3.12")
    root = _project(
        tmp_path / "floorkit",
        '["six>=1.16.0", "iniconfig>=1.1.1"]',
        code=_NOT_TOGETHER,
    )
    proc = _cli("floors", "-o", "report", "--json", cwd=root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    document = json.loads(proc.stdout)
    deps = {d["name"]: d["pythons"][0] for d in document["dependencies"]}
    # Each floor holds alone (the other dependency at its newest): no bound moves...
    assert deps["six"]["outcome"] == deps["iniconfig"]["outcome"] == "confirmed"
    assert deps["six"]["note"] == "passes alone (the other dependencies at their newest)"
    # ...but the declared floors together fail: that cell is the finding, and exit 1.
    assert document["together"] == [
        {
            "python": "3.12",
            "cell": "floors-py3.12-six1.16.0-iniconfig1.1.1",
            "verdict": "fail/import-error",
            "pass": False,
        }
    ]
    report = json.loads((root / "report" / "floors" / "compat.json").read_text())
    message = next(c for c in report["cells"] if c["id"] == document["together"][0]["cell"])
    assert "six 1.16 shim needs iniconfig 2" in message["message"]


@pytest.mark.parametrize(
    "option", [["--cells", "py3.12-*"], ["--gpu-only"], ["--fail-on", "never"]]
)
def test_run_options_floors_would_ignore_are_refused(tmp_path: Path, option: list[str]) -> None:
    root = _project(tmp_path / "floorkit", '["six>=1.10.0"]')
    proc = _cli("floors", "-o", "report", *option, cwd=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"floors does not take {option[0]}" in proc.stderr
    assert not (root / "report").exists()
