"""A cell that passes with latent findings ("fails if loaded on its own") is a pass in every
report, with a visible mark and the evidence; never a failure, unless strict made it one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compat_matrix.probe.verdicts import EXIT_OK, exit_status
from compat_matrix.reports import (
    render_html,
    render_junit,
    render_markdown,
    render_terminal,
    write_reports,
)
from compat_matrix.reports._verdicts import kind_of, short_reason
from compat_matrix.results import CellResult, ProbeResult

SCHEMA_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "schemas" / "junit-10.xsd"

LATENT = ProbeResult(
    probe="abi",
    target="h5py/_npystrings.cpython-311-x86_64-linux-gnu.so",
    status="latent",
    category="abi-numpy",
    message="[latent: not loaded by import tensorflow] h5py/_npystrings.cpython-311-x86_64-linux-"
    "gnu.so was compiled with NumPy 2 headers targeting NumPy >= 2.0; numpy 1.26.4 is installed",
    hint="nothing to change for normal use (not loaded by import tensorflow)",
    details={"latent": "not loaded by import tensorflow"},
)


def _cells() -> list[CellResult]:
    return [
        CellResult(
            id="py3.11-tensorflow-cpu2.17.1",
            axes={"python": "3.11", "tensorflow-cpu": "2.17.1"},
            status="pass",
            probes=[ProbeResult("import", "tensorflow", "pass"), LATENT],
            latent=True,
        ),
        CellResult(
            id="py3.11-tensorflow-cpu2.18.0",
            axes={"python": "3.11", "tensorflow-cpu": "2.18.0"},
            status="pass",
            probes=[ProbeResult("import", "tensorflow", "pass")],
        ),
    ]


def test_a_latent_cell_is_its_own_kind_of_pass_with_the_evidence_as_reason() -> None:
    latent, plain = _cells()
    assert (kind_of(latent), kind_of(plain)) == ("latent", "pass")
    reason = short_reason(latent)
    assert reason.startswith("abi-numpy: [latent: not loaded by import tensorflow] h5py/")
    assert exit_status(_cells()) == EXIT_OK


def test_markdown_marks_the_cell_and_footnotes_the_latent_finding() -> None:
    text = render_markdown("tf", _cells())
    assert "🔸 pass (latent) [1]" in text
    assert "`abi h5py/_npystrings.cpython-311-x86_64-linux-gnu.so` latent · `abi-numpy`" in text
    assert "not loaded by import tensorflow" in text
    assert "🔸 pass (latent): passed; a file no import loads" in text  # the legend


def test_html_colours_the_cell_and_lists_the_latent_probe() -> None:
    page = render_html("tf", _cells())
    assert 'class="badge k-latent"' in page and "--bg-latent" in page
    assert "<td>latent</td><td><code>abi-numpy</code></td>" in page


def test_terminal_shows_the_mark_and_the_reason() -> None:
    text = render_terminal(_cells(), color=False)
    line = next(line for line in text.splitlines() if "tensorflow-cpu2.17.1" in line)
    assert "pass (latent)" in line and "h5py/_npystrings" in line


def test_junit_reports_the_latent_finding_as_a_passing_case_with_its_evidence(
    tmp_path: Path,
) -> None:
    junitparser = pytest.importorskip("junitparser")
    path = tmp_path / "junit.xml"
    path.write_text(render_junit("tf", _cells()), encoding="utf-8")
    suites = {s.name: s for s in junitparser.JUnitXml.fromfile(str(path))}
    suite = suites["py3.11-tensorflow-cpu2.17.1"]
    assert (suite.failures, suite.errors, suite.skipped) == (0, 0, 0)
    case = next(c for c in suite if c.name.startswith("abi h5py/"))
    assert case.is_passed
    assert case.system_out.startswith("abi-numpy: [latent: not loaded by import tensorflow]")
    assert {p.name: p.value for p in suite.properties()}["latent"] == "true"


def test_junit_with_a_latent_case_validates_against_junit_10() -> None:
    xmlschema = pytest.importorskip("xmlschema")
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"junit-10.xsd not found beside the checkout ({SCHEMA_PATH})")
    xmlschema.XMLSchema(str(SCHEMA_PATH)).validate(render_junit("tf", _cells()))


def test_compat_json_carries_the_latent_flag_and_status(tmp_path: Path) -> None:
    write_reports(tmp_path, "tf", _cells())
    data: dict[str, Any] = json.loads((tmp_path / "compat.json").read_text())
    cell = data["cells"][0]
    assert (cell["status"], cell["latent"]) == ("pass", True)
    assert cell["probes"][1]["status"] == "latent"
    again = CellResult.from_dict(cell)
    assert again.latent is True
