"""The culprit: a nightly cell that regressed is re-run with each moved package reverted.

Two real resolutions of one matrix: the baseline night resolved as a user would have on
2022-06-01 (uv's `UV_EXCLUDE_NEWER`: packaging 21.3, iniconfig 1.1.1), tonight resolves the
newest releases. The package under test (a local project built here) imports
`packaging.version.LegacyVersion`, which packaging 22.0 removed; iniconfig moves too and is
harmless. `report --baseline --culprit` must name packaging, its two versions and the day the
new release was uploaded (read here from PyPI's JSON, independently), and leave iniconfig out.
The project's own version moves between the nights too (1.0 → 1.1, as a nightly of a changing
project does): it is the code under test, never a suspect.
"""

from __future__ import annotations

import json
import textwrap
import urllib.request
from pathlib import Path

import pytest

from compat_matrix.front.cli import main

pytestmark = pytest.mark.slow

AS_OF = "2022-06-01T00:00:00Z"


def _released(name: str, version: str) -> str:
    """The day `version`'s first file was uploaded, from the index's JSON page (PEP 700)."""
    request = urllib.request.Request(
        f"https://pypi.org/simple/{name}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - https only
        files = json.load(response)["files"]
    prefix = f"{name}-{version}"
    times = [
        f["upload-time"]
        for f in files
        if f["filename"].startswith((f"{prefix}-", f"{prefix}.tar.gz"))
    ]
    return min(times)[:10]


def _two_nights(root: Path, dependencies: list[str]) -> tuple[Path, Path, Path]:
    """(matrix, baseline report, tonight's report): two real runs of one matrix."""
    project = root / "usesold"
    (project / "usesold").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["flit_core>=3.2,<4"]
            build-backend = "flit_core.buildapi"

            [project]
            name = "usesold"
            version = "1.0"
            description = "parses versions the old way"
            dependencies = {json.dumps(dependencies)}
            """
        )
    )
    (project / "usesold" / "__init__.py").write_text(
        "from packaging.version import LegacyVersion\n\nOLD = LegacyVersion('1.0-legacy')\n"
    )
    matrix = root / "compat.yml"
    matrix.write_text(
        'name: culprit-demo\npackages: ["./usesold"]\nimport: [usesold]\n'
        'matrix:\n  python: ["3.11"]\n'
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPAT_ENV_DIR", str(root / "envs-baseline"))
        patch.setenv("UV_EXCLUDE_NEWER", AS_OF)
        assert main(["run", str(matrix), "-o", str(root / "baseline"), "-j", "1"]) == 0
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "1.0"', 'version = "1.1"'))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPAT_ENV_DIR", str(root / "envs"))
        patch.delenv("UV_EXCLUDE_NEWER", raising=False)
        assert main(["run", str(matrix), "-o", str(root / "tonight"), "-j", "1"]) == 1
    return matrix, root / "baseline", root / "tonight"


@pytest.fixture(scope="module")
def nights(tmp_path_factory, python_for) -> tuple[Path, Path, Path]:
    """Two moved packages: packaging (the culprit) and iniconfig (harmless)."""
    python_for("3.11")
    return _two_nights(tmp_path_factory.mktemp("culprit"), ["packaging", "iniconfig"])


def _cell(report: Path) -> dict:
    return json.loads((report / "compat.json").read_text())["cells"][0]


def test_the_release_that_broke_the_cell_is_named_with_its_date(
    nights, monkeypatch, tmp_path, capsys
) -> None:
    matrix, baseline, tonight = nights
    monkeypatch.setenv("COMPAT_ENV_DIR", str(tmp_path / "envs"))
    before, after = _cell(baseline)["resolved"], _cell(tonight)["resolved"]
    assert before["packaging"] == "21.3"
    assert after["packaging"] != "21.3"
    assert before["iniconfig"] != after["iniconfig"]  # an unrelated package moved too
    assert (before["usesold"], after["usesold"]) == ("1.0", "1.1")  # and the project itself

    status = main(
        [
            "report",
            str(tonight),
            "--baseline",
            str(baseline / "compat.json"),
            "--matrix",
            str(matrix),
            "--culprit",
            "--culprit-budget",
            "600",
        ]
    )
    assert status == 1  # a regression
    printed = capsys.readouterr().out

    diff = json.loads((tonight / "diff.json").read_text())
    [broken] = diff["newly_broken"]
    culprit = broken["culprit"]
    new = after["packaging"]
    released = _released("packaging", new)
    assert culprit["culprits"] == [
        {"name": "packaging", "before": "21.3", "after": new, "released": released}
    ]
    assert {c["name"] for c in culprit["changed"]} >= {"packaging", "iniconfig"}
    assert "usesold" not in {c["name"] for c in culprit["changed"]}  # the code under test
    assert "usesold 1.0 → 1.1 is the project under test: not a suspect" in diff["culprit_search"]
    assert culprit["summary"] == f"broke because packaging 21.3 → {new} (released {released})"
    assert culprit["stopped"] == ""
    tried = culprit["tried"]
    assert any(t.startswith("reverted iniconfig") and t.endswith(": fail") for t in tried)
    assert any(t.startswith("reverted packaging") and t.endswith(": pass") for t in tried)
    markdown = (tonight / "compat.md").read_text()
    assert f"broke because packaging 21.3 → {new} (released {released})" in markdown
    assert f"py3.11: broke because packaging 21.3 → {new}" in printed
    page = (tonight / "compat.html").read_text()
    assert f"🔎 broke because packaging 21.3 → {new} (released {released})" in page
    # The night's own cells are untouched: the re-runs live in a hidden folder.
    assert [p.name for p in (tonight / "cells").glob("*.json")] == [f"{broken['id']}.json"]


def test_a_spent_budget_says_it_stopped_and_what_it_tried(nights, monkeypatch, tmp_path) -> None:
    matrix, baseline, tonight = nights
    monkeypatch.setenv("COMPAT_ENV_DIR", str(tmp_path / "envs"))
    out = tmp_path / "report"
    main(
        [
            "report",
            str(tonight),
            "-o",
            str(out),
            "--baseline",
            str(baseline / "compat.json"),
            "--matrix",
            str(matrix),
            "--culprit",
            "--culprit-budget",
            "1.5",
        ]
    )
    culprit = json.loads((out / "diff.json").read_text())["newly_broken"][0]["culprit"]
    assert culprit["culprits"] == []
    assert culprit["stopped"].startswith("the culprit budget was spent after 1 re-run")
    [tried] = culprit["tried"]
    assert tried.startswith("reverted iniconfig")  # the first suspect, by name
    summary = culprit["summary"]
    assert summary.startswith("culprit not found: the culprit budget was spent")
    markdown = (out / "compat.md").read_text()
    assert "culprit not found: the culprit budget was spent" in markdown
    assert "tried: reverted iniconfig" in markdown


def test_culprit_needs_a_baseline_and_the_matrix(nights, capsys) -> None:
    matrix, _baseline, tonight = nights
    assert main(["report", str(tonight), "--culprit", "--matrix", str(matrix)]) == 2
    assert "--culprit needs --baseline" in capsys.readouterr().err
    assert main(["report", str(tonight), "--culprit", "--baseline", str(tonight)]) == 2
    assert "--culprit needs --matrix" in capsys.readouterr().err


def test_many_moved_packages_are_bisected(tmp_path_factory, python_for, monkeypatch) -> None:
    """Six packages moved since the baseline: halves are reverted, not each one."""
    python_for("3.11")
    root = tmp_path_factory.mktemp("bisect")
    dependencies = ["attrs", "idna", "iniconfig", "packaging", "six", "tomli"]
    matrix, baseline, tonight = _two_nights(root, dependencies)
    monkeypatch.setenv("COMPAT_ENV_DIR", str(root / "envs-culprit"))
    main(
        [
            "report",
            str(tonight),
            "--baseline",
            str(baseline / "compat.json"),
            "--matrix",
            str(matrix),
            "--culprit",
        ]
    )
    culprit = json.loads((tonight / "diff.json").read_text())["newly_broken"][0]["culprit"]
    assert {c["name"] for c in culprit["changed"]} >= set(dependencies)
    assert [c["name"] for c in culprit["culprits"]] == ["packaging"]
    # Fewer re-runs than packages: a half, the other half, then within it.
    assert len(culprit["tried"]) < len(culprit["changed"])
    assert culprit["tried"][-1].startswith("reverted packaging")
    assert culprit["tried"][-1].endswith(": pass")


def test_when_only_the_project_under_test_moved_it_is_named_not_searched(
    tmp_path: Path, python_for, monkeypatch
) -> None:
    """Same dependencies both nights; the project's own 1.1 broke itself: nothing to revert."""
    python_for("3.11")
    project = tmp_path / "selfbroken"
    (project / "selfbroken").mkdir(parents=True)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["flit_core>=3.2,<4"]
            build-backend = "flit_core.buildapi"

            [project]
            name = "selfbroken"
            version = "1.0"
            description = "breaks itself in 1.1"
            dependencies = ["iniconfig"]
            """
        )
    )
    module = project / "selfbroken" / "__init__.py"
    module.write_text("import iniconfig\n")
    matrix = tmp_path / "compat.yml"
    matrix.write_text(
        'name: self\npackages: ["./selfbroken"]\nimport: [selfbroken]\nmatrix:\n'
        '  python: ["3.11"]\n'
    )
    monkeypatch.setenv("COMPAT_ENV_DIR", str(tmp_path / "envs"))
    assert main(["run", str(matrix), "-o", str(tmp_path / "baseline"), "-j", "1"]) == 0
    pyproject.write_text(pyproject.read_text().replace('version = "1.0"', 'version = "1.1"'))
    module.write_text("import iniconfig\n\nraise ImportError('selfbroken 1.1 broke itself')\n")
    tonight = tmp_path / "tonight"
    assert main(["run", str(matrix), "-o", str(tonight), "-j", "1"]) == 1
    status = main(
        [
            "report",
            str(tonight),
            "--baseline",
            str(tmp_path / "baseline" / "compat.json"),
            "--matrix",
            str(matrix),
            "--culprit",
        ]
    )
    assert status == 1
    diff = json.loads((tonight / "diff.json").read_text())
    culprit = diff["newly_broken"][0]["culprit"]
    assert culprit["changed"] == culprit["culprits"] == culprit["tried"] == []
    assert culprit["stopped"] == (
        "only the project under test moved (selfbroken 1.0 → 1.1): "
        "the regression is in its own changes"
    )
    assert (
        "selfbroken 1.0 → 1.1 is the project under test: not a suspect" in (diff["culprit_search"])
    )
