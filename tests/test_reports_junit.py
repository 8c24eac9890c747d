"""junit.xml: valid against the vendored junit-10.xsd, and read back right by junitparser."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import junitparser
import pytest
import xmlschema
from _report_samples import SAMPLES

from compat_matrix.reports import junit, render_junit, write_reports
from compat_matrix.reports._verdicts import clean_text, one_line
from compat_matrix.reports.junit import format_time
from compat_matrix.results import CellResult, ExpectationOutcome, ProbeResult, PythonInfo

#: The copy shipped in the repository (schemas/README.md says where it comes from).
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "junit-10.xsd"

HOSTILE = (
    "\x1b[31mred\x1b[0m <script>alert('x')</script> & \"quotes\" \x00nul \x07bell \x1b]0;title\x07"
    " \ud800 lone surrogate \ufffe ünïcødé 🚀 ]]> tab\tnewline\nend"
)


def cell(cell_id: str, status: str, *probes: ProbeResult, **fields: Any) -> CellResult:
    axes = fields.pop("axes", None) or {"python": "3.12", "numpy": cell_id}
    return CellResult(id=cell_id, axes=axes, status=status, probes=list(probes), **fields)


def probe(target: str, status: str = "pass", **fields: Any) -> ProbeResult:
    return ProbeResult(probe="import", target=target, status=status, **fields)


@pytest.fixture(scope="module")
def schema() -> Any:
    return xmlschema.XMLSchema(str(SCHEMA_PATH))


def parse(tmp_path: Path, xml: str) -> Any:
    path = tmp_path / "junit.xml"
    path.write_text(xml, encoding="utf-8")
    return junitparser.JUnitXml.fromfile(str(path))


ALL_VERDICTS = [
    cell(
        "ok",
        "pass",
        probe("numpy", duration_s=0.12345),
        probe("pandas", duration_s=1e-5),
        python=PythonInfo("3.12.1", "cpython", "cp312"),
        resolved={"numpy": "2.2.6", "pandas": "2.2.3"},
        durations={"build": 3.5, "probes": 0.25},
    ),
    cell(
        "broken",
        "fail",
        probe("numpy"),
        probe("pandas", "fail", category="abi-numpy", message=HOSTILE, hint="pin numpy<2"),
        category="abi-numpy",
        message="pandas was built against numpy 1.x",
        hint="pin numpy<2",
    ),
    cell("nowheel", "unsupported", category="no-distribution", message="no cp313 wheel"),
    cell("clash", "conflict", category="resolution-conflict", message="pandas needs numpy<2"),
    cell("nopython", "skip", category="no-interpreter", message="python3.8 not found"),
    cell("offline", "error", category="network", message=HOSTILE),
    cell(
        "gpu",
        "pass",
        probe("torch"),
        ProbeResult("cuda", "runtime", "skip", category="no-gpu", message="no driver"),
        gpu_unverified=True,
    ),
]


def test_every_verdict_validates_against_junit_10(schema: Any) -> None:
    schema.validate(render_junit("stack <&>", ALL_VERDICTS))


def test_hostile_text_and_odd_times_still_validate(schema: Any, tmp_path: Path) -> None:
    weird = [
        cell(
            HOSTILE[:40],
            "fail",
            probe(HOSTILE, "fail", category=HOSTILE, message=HOSTILE * 500, hint=HOSTILE),
            probe("neg", duration_s=-3.0),
            probe("nan", duration_s=float("nan")),
            probe("inf", "error", duration_s=float("inf")),
            axes={HOSTILE: HOSTILE},
            resolved={HOSTILE: HOSTILE},
            durations={"build": 1e-7, "probes": 1e12},
        )
    ]
    xml = render_junit(HOSTILE, weird)
    schema.validate(xml)
    for bad in ("\x1b", "\x00", "\x07", "[31m", "\ud800", "\ufffe"):
        assert bad not in xml
    times = [case.time for suite in parse(tmp_path, xml) for case in suite]
    assert times == [0.0, 0.0, 0.0, 0.0]
    text = xml.split('time="')[1:]
    assert all("e" not in t.split('"')[0] and "-" not in t.split('"')[0] for t in text)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(1e-5, "0.000"), (0.12345, "0.123"), (2.0, "2.000"), (-1.0, "0.000"), (float("nan"), "0.000")],
)
def test_times_have_three_decimals_no_exponent_no_sign(seconds: float, expected: str) -> None:
    assert format_time(seconds) == expected


def test_junitparser_reads_one_flat_suite_per_cell_with_right_counts(tmp_path: Path) -> None:
    xml = parse(tmp_path, render_junit("stack", ALL_VERDICTS))
    suites = list(xml)
    assert [s.name for s in suites] == [c.id for c in ALL_VERDICTS]  # job order kept
    counts = {s.name: (s.tests, s.failures, s.errors, s.skipped) for s in suites}
    assert counts == {
        "ok": (2, 0, 0, 0),
        "broken": (2, 1, 0, 0),
        "nowheel": (1, 0, 0, 1),
        "clash": (1, 0, 0, 1),
        "nopython": (1, 0, 0, 1),
        "offline": (1, 0, 1, 0),
        "gpu": (2, 0, 0, 1),
    }
    for suite in suites:
        # EnricoMi identifies a test by (classname, name): the cell id keeps cells apart.
        assert {case.classname for case in suite} == {suite.name}
        assert not list(suite.testsuites())  # flat: dorny/test-reporter drops nested suites
    assert suites[0].time == pytest.approx(3.75)
    assert (xml.tests, xml.failures, xml.errors) == (10, 1, 1)  # root totals


def test_root_has_only_the_attributes_junit_10_allows() -> None:
    root_tag = render_junit("x", ALL_VERDICTS).split("<testsuites", 1)[1].split(">", 1)[0]
    names = [part.split("=")[0] for part in root_tag.split()]
    assert names == ["name", "tests", "failures", "errors", "time"]  # no `skipped` (junitparser)


def test_testcases_name_probe_and_target_and_carry_failure_details(tmp_path: Path) -> None:
    suite = next(s for s in parse(tmp_path, render_junit("x", ALL_VERDICTS)) if s.name == "broken")
    cases = {case.name: case for case in suite}
    assert set(cases) == {"import numpy", "import pandas"}
    (failure,) = cases["import pandas"].result
    assert isinstance(failure, junitparser.Failure)
    assert failure.type == "abi-numpy"
    assert "<script>alert('x')</script>" in failure.message  # escaped on the wire, intact here
    assert "hint: pin numpy<2" in failure.text
    assert "\x1b" not in failure.text


def test_cells_without_probes_get_one_install_or_environment_case(tmp_path: Path) -> None:
    suites = {s.name: s for s in parse(tmp_path, render_junit("x", ALL_VERDICTS))}
    assert [c.name for c in suites["nowheel"]] == ["install"]
    assert [c.name for c in suites["nopython"]] == ["environment"]
    (error,) = next(iter(suites["offline"])).result
    assert isinstance(error, junitparser.Error)
    assert error.type == "network"
    (skipped,) = next(iter(suites["clash"])).result
    assert isinstance(skipped, junitparser.Skipped)
    assert skipped.message == "pandas needs numpy<2"


def test_suite_properties_carry_axes_resolved_versions_and_verdict(tmp_path: Path) -> None:
    suite = next(iter(parse(tmp_path, render_junit("x", ALL_VERDICTS))))
    props = {p.name: p.value for p in suite.properties()}
    assert props["axis.python"] == "3.12"
    assert props["axis.numpy"] == "ok"
    assert props["resolved.pandas"] == "2.2.3"
    assert props["status"] == "pass"
    assert props["python.abi"] == "cp312"
    broken = list(parse(tmp_path, render_junit("x", ALL_VERDICTS)))[1]
    assert {p.name: p.value for p in broken.properties()}["category"] == "abi-numpy"


def test_expected_failures_are_skipped_and_unmet_expectations_fail(
    schema: Any, tmp_path: Path
) -> None:
    results = [
        cell(
            "xfail",
            "fail",
            probe("torch", "fail", category="undefined-symbol", message="undefined symbol: foo"),
            expectation=ExpectationOutcome("fail", met=True, reason="known ABI break"),
        ),
        cell("xpass", "pass", probe("torch"), expectation=ExpectationOutcome("fail", met=False)),
        cell(
            "wrong",
            "fail",
            probe("torch", "fail", category="import-error"),
            expectation=ExpectationOutcome("unsupported", met=False, reason="no wheels"),
        ),
    ]
    xml = render_junit("x", results)
    schema.validate(xml)
    suites = {s.name: s for s in parse(tmp_path, xml)}
    assert (suites["xfail"].failures, suites["xfail"].skipped) == (0, 1)
    (skipped,) = next(iter(suites["xfail"])).result
    assert skipped.type == "xfail"
    assert skipped.message.startswith("expected fail (known ABI break)")
    assert suites["xpass"].failures == 1
    unmet = {case.name: case for case in suites["wrong"]}["expectation"]
    assert unmet.result[0].message == "expected unsupported, got fail (no wheels)"
    assert suites["wrong"].failures == 2


def test_verdict_no_probe_carries_gets_its_own_case(tmp_path: Path) -> None:
    timed_out = cell(
        "slow", "error", probe("numpy"), category="timeout", message="killed after 900 s"
    )
    suite = next(iter(parse(tmp_path, render_junit("x", [timed_out]))))
    assert [c.name for c in suite] == ["import numpy", "verdict"]
    assert suite.errors == 1


def test_empty_run_is_still_a_valid_file(schema: Any) -> None:
    xml = render_junit("nothing", [])
    schema.validate(xml)
    assert 'tests="0"' in xml


def test_write_reports_file_is_valid(schema: Any, tmp_path: Path) -> None:
    paths = write_reports(tmp_path, "stack", ALL_VERDICTS)
    schema.validate(str(paths.junit))


def _reference_junit(name: str, results: list[CellResult]) -> str:
    """junit.xml as ElementTree built and wrote it before the writer became plain text."""
    root = ET.Element("testsuites", {"name": one_line(name, 1_000)})
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for result in results:
        cell_id = one_line(result.id, 1_000)
        cases = junit._cases(result)
        kinds = [case.outcome.element if case.outcome else None for case in cases]
        counts = {
            "tests": len(cases),
            "failures": kinds.count("failure"),
            "errors": kinds.count("error"),
            "skipped": kinds.count("skipped"),
        }
        seconds = sum(v for v in result.durations.values() if math.isfinite(v) and v > 0)
        if seconds <= 0:
            seconds = sum(c.time for c in cases if math.isfinite(c.time) and c.time > 0)
        suite = ET.SubElement(root, "testsuite", {"name": cell_id})
        for key, value in counts.items():
            suite.set(key, str(value))
        suite.set("time", format_time(seconds))
        properties = ET.SubElement(suite, "properties")
        props = [(f"axis.{key}", value) for key, value in result.axes.items()]
        props += [(f"resolved.{dist}", version) for dist, version in result.resolved.items()]
        for prop_name, prop_value in props + junit._verdict_properties(result):
            attrs = {"name": one_line(prop_name, 1_000), "value": clean_text(prop_value)}
            ET.SubElement(properties, "property", attrs)
        for case in cases:
            attrs = {"name": one_line(case.name, 1_000), "classname": cell_id}
            element = ET.SubElement(suite, "testcase", attrs)
            element.set("time", format_time(case.time))
            if case.outcome is not None:
                attrs = {"type": one_line(case.outcome.type, 200), "message": case.outcome.message}
                ET.SubElement(element, case.outcome.element, attrs).text = case.outcome.text
        for key in totals:
            totals[key] += counts[key]
        total_time += seconds
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", format_time(total_time))
    ET.indent(root)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{ET.tostring(root, encoding="unicode")}\n'


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_text_writer_writes_what_elementtree_wrote(sample: str) -> None:
    results = [*SAMPLES[sample], *ALL_VERDICTS] if sample != "empty" else []
    assert render_junit(HOSTILE, results) == _reference_junit(HOSTILE, results)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_hostile_cells_still_make_valid_junit(sample: str, schema: Any, tmp_path: Path) -> None:
    results = SAMPLES[sample]
    xml = render_junit(HOSTILE, results)
    path = tmp_path / "junit.xml"
    path.write_text(xml, encoding="utf-8")  # no lone surrogate survives (expectation reasons)
    schema.validate(str(path))  # no control character either (a category as the message)
    assert len(parse(tmp_path, xml)) == len(results)


def test_passing_cells_write_what_elementtree_wrote_whatever_their_times() -> None:
    """A passing cell's testcases come from cached text: -0.0, 0.0, negative, NaN and
    infinite times, repeated probes and met expectations write what the tree wrote."""
    times = [0.0, -0.0, -1.0, 1e-5, 0.25, 0.25, float("nan"), float("inf"), 12.5]
    results = [
        cell(
            f"c{index}",
            "pass",
            probe("numpy", duration_s=seconds),
            ProbeResult("abi", "environment", "pass", duration_s=-seconds),
            probe("", duration_s=seconds),
            durations={"build": 0.0} if index % 2 else {"build": seconds},
            expectation=ExpectationOutcome("pass", True) if index % 3 == 0 else None,
        )
        for index, seconds in enumerate(times + times)
    ]
    results.append(
        cell("unmet", "pass", probe("numpy"), expectation=ExpectationOutcome("fail", False))
    )
    results.append(cell("none", "pass"))
    assert render_junit(HOSTILE, results) == _reference_junit(HOSTILE, results)
