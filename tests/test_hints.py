"""Hints that name the fix, checked before they are printed: real PyPI, real resolves.

The resolver runs for real (`uv pip compile` for the cell's Python); the index is PyPI's
simple API. A hint the resolver refuses must never be printed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compat_matrix.build.backends import EnvRequest, package_index
from compat_matrix.build.install_errors import InstallFailure
from compat_matrix.matrix.model import Cell, Matrix
from compat_matrix.results import CellResult, ProbeResult
from compat_matrix.run.cell import RunSettings, run_cell
from compat_matrix.run.hints import HintContext, checked_failure, checked_hint, first_release_with

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def _failed(hint: str, *, details: dict[str, object] | None = None) -> CellResult:
    finding = ProbeResult(
        probe="import",
        target="h5py",
        status="fail",
        category="abi-numpy",
        message="h5py/_npystrings.so was compiled with NumPy 2 headers; numpy 1.26.4 installed",
        hint=hint,
        details=details or {},
    )
    return CellResult(
        id="c",
        axes={},
        status="fail",
        category="abi-numpy",
        message=finding.message,
        hint=hint,
        resolved={"tensorflow-cpu": "2.17.1", "numpy": "1.26.4", "h5py": "3.12.1"},
        probes=[finding],
    )


def test_a_pin_the_resolver_refuses_is_never_suggested(python_for) -> None:
    """tensorflow-cpu 2.17.1 declares numpy<2.0.0: "install numpy>=2.0" must not appear."""
    request = EnvRequest(python_for("3.11"), ("tensorflow-cpu==2.17.1", "numpy==1.26.4"))
    hint = (
        "h5py was built against NumPy 2.x but numpy 1.26.4 is installed: upgrade numpy>=2.0, "
        "or install h5py and numpy versions built for the same NumPy"
    )
    checked = checked_hint(_failed(hint), HintContext(request))
    assert "numpy>=2.0" not in checked
    assert "h5py was built against NumPy 2.x" in checked  # the explanation stays
    assert "install h5py and numpy versions built for the same NumPy" in checked

    structured = _failed(
        "pin numpy>=2.0", details={"fix": {"requirements": ["numpy>=2.0"], "summary": "x"}}
    )
    refused = checked_hint(structured, HintContext(request))
    assert "numpy>=2.0" not in refused
    assert "declared requirements" in refused


def test_a_pin_that_resolves_says_so(python_for) -> None:
    request = EnvRequest(python_for("3.11"), ("pandas==2.0.3", "numpy==2.0.2"))
    hint = "pandas was built against NumPy 1.x: pin numpy<2 (e.g. numpy==1.26.4) or upgrade pandas"
    checked = checked_hint(_failed(hint), HintContext(request))
    assert "pin numpy<2 (e.g. numpy==1.26.4) (verified: resolves)" in checked
    assert checked.endswith("or upgrade pandas (unverified)")

    fix = {"requirements": ["numpy<2"], "summary": "pin numpy<2"}
    failed = _failed("anything", details={"fix": fix})
    failed.resolved = {"pandas": "2.0.3", "numpy": "2.0.2"}
    structured = checked_hint(failed, HintContext(request))
    # The range is verified, and the release inside it nearest the installed one is named.
    assert structured == "pin numpy<2 — smallest change: numpy 1.26.4 (verified: resolves)"


def test_build_from_source_only_when_an_sdist_exists(python_for) -> None:
    """jaxlib publishes no source distribution; numpy does."""
    request = EnvRequest(python_for("3.11"), ("jaxlib==0.4.30", "numpy==1.26.4"))
    result = _failed("jaxlib broke: reinstall jaxlib, or build jaxlib from source")
    result.resolved = {"jaxlib": "0.4.30", "numpy": "1.26.4"}
    assert "from source" not in checked_hint(result, HintContext(request))
    result.hint = result.probes[0].hint = "numpy broke: build numpy from source"
    result.resolved = {"numpy": "1.26.4"}
    assert "build numpy from source" in checked_hint(result, HintContext(request))


def test_the_first_release_with_a_module_is_found_from_wheel_file_lists() -> None:
    index = package_index()
    project = index.project("numpy")
    assert project is not None
    from packaging.version import Version

    first = first_release_with(index, project, "numpy.exceptions", Version("1.24.4"))
    assert first == Version("1.25.0")


@pytest.mark.parametrize("variable", ["UV_INDEX_URL", "PIP_INDEX_URL"])
def test_offline_hints_say_unverified_and_never_crash(
    variable: str, python_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The installers' index setting is the one used; unreachable, nothing is verified."""
    monkeypatch.delenv("UV_INDEX_URL", raising=False)
    monkeypatch.setenv(variable, "http://127.0.0.1:9/simple/")
    request = EnvRequest(python_for("3.11"), ("numpy==1.26.4",))
    context = HintContext(request)
    result = _failed("h5py broke: upgrade numpy>=2.0")
    assert checked_hint(result, context) == "h5py broke: upgrade numpy>=2.0 (unverified)"
    result = _failed("reinstall h5py (it is broken)")
    assert checked_hint(result, context) == "reinstall h5py (it is broken) (unverified)"
    failure = InstallFailure("unsupported", "no-distribution", "no usable wheels", "not offered")
    assert checked_failure(failure, context) == failure


MYPKG = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "mypkg"
        version = "0.1"
        dependencies = ["numpy"]
    """,
    "mypkg/__init__.py": """
        from numpy.exceptions import AxisError

        __all__ = ["AxisError"]
    """,
}


def test_an_import_of_a_module_added_later_names_the_lower_bound(
    tmp_path: Path, interpreters, python_for
) -> None:
    """numpy.exceptions arrived in numpy 1.25: not "an undeclared dependency"."""
    python_for("3.11")
    for rel, text in MYPKG.items():
        path = tmp_path / "mypkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    matrix = Matrix(
        path=tmp_path / "compat.yml", name="t", packages=("./mypkg",), imports=("mypkg",)
    )
    cell = Cell("py3.11-numpy1.24.4", {"python": "3.11", "numpy": "1.24.4"})
    settings = RunSettings(report_dir=tmp_path / "report", env_root=tmp_path / "envs")
    result = run_cell(matrix, cell, settings, interpreters)
    assert (result.status, result.category) == ("fail", "import-error"), result.message
    assert "mypkg imports numpy.exceptions, added in numpy 1.25" in result.hint
    assert "numpy 1.24.4 is installed" in result.hint
    assert "numpy>=1.25" in result.hint
    assert result.hint.endswith("(verified: resolves)")
    assert "undeclared" not in result.hint
    # The finding the hint came from says the same: no report shows the unchecked hint.
    [finding] = [p for p in result.probes if p.status == "fail"]
    assert finding.hint == result.hint
    assert all("does not declare" not in p.hint for p in result.probes)
