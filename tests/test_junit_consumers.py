"""junit.xml as the JUnit consumers on GitHub read it, counted against compat.json.

junitparser runs here (EnricoMi/publish-unit-test-result-action parses with it too). The GitHub
actions themselves (EnricoMi's Python, dorny/test-reporter, mikepenz/action-junit-report and
test-summary/action in JavaScript) are not packages that run outside a workflow: they call the
GitHub API to publish. Their parsing rules, read in their sources, are encoded below, one small
function each, and every test asserts what a user sees: counts, where an annotation lands, how
many annotations one broken cell costs, and no message shown twice.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import junitparser
import pytest
import xmlschema

from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.reports import JUnitSource, write_reports
from compat_matrix.reports._verdicts import one_line
from compat_matrix.results import CellResult, ExpectationOutcome, ProbeResult, PythonInfo

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "junit-10.xsd"

MATRIX = textwrap.dedent("""\
    name: consumers
    matrix:
      python: ["3.11", "3.12"]
      numpy: ["1.26.4", "2.2.6"]
      pandas: ["2.0.3"]
      include:
        - python: "3.12"
          numpy: "2.2.6"
          pandas: "2.2.3"
    expect:
      - match: {python: "3.11", numpy: "1.26.4"}
        status: unsupported
    """)


def _abi_findings(count: int) -> list[ProbeResult]:
    """What the abi probe reports for pandas 2.0.3 under NumPy 2: one finding per `.so`."""
    return [
        ProbeResult(
            "abi",
            f"pandas/_libs/mod{i}.cpython-311-x86_64-linux-gnu.so",
            "fail",
            "abi-numpy",
            f"pandas/_libs/mod{i}.so was built against NumPy 1.x ABI; NumPy 2.2.6 is installed",
            "pin numpy<2, or upgrade pandas to 2.2.2 or later",
            0.01,
            {"owner": "pandas 2.0.3"},
        )
        for i in range(count)
    ]


def _results(cells: list[Any]) -> list[CellResult]:
    by_axes = {(c.axes["python"], c.axes["numpy"], c.axes["pandas"]): c.id for c in cells}
    py = PythonInfo("3.11.9", "cpython", "cp311")
    return [
        CellResult(
            id=by_axes[("3.11", "1.26.4", "2.0.3")],
            axes={"python": "3.11", "numpy": "1.26.4", "pandas": "2.0.3"},
            status="unsupported",
            category="no-distribution",
            message="no wheel of pandas 2.0.3 for this platform",
            expectation=ExpectationOutcome("unsupported", met=True),
        ),
        CellResult(
            id=by_axes[("3.11", "2.2.6", "2.0.3")],
            axes={"python": "3.11", "numpy": "2.2.6", "pandas": "2.0.3"},
            status="fail",
            category="abi-numpy",
            message="pandas 2.0.3 was built against NumPy 1.x",
            hint="pin numpy<2, or upgrade pandas to 2.2.2 or later",
            python=py,
            probes=[
                ProbeResult("import", "numpy", "pass", duration_s=0.2),
                ProbeResult(
                    "import",
                    "pandas",
                    "fail",
                    "abi-numpy",
                    "ImportError: numpy.core.multiarray failed to import\n"
                    "A module that was compiled using NumPy 1.x cannot be run in NumPy 2.2.6",
                    "pin numpy<2",
                    0.4,
                ),
                *_abi_findings(35),
            ],
        ),
        CellResult(
            id=by_axes[("3.12", "1.26.4", "2.0.3")],
            axes={"python": "3.12", "numpy": "1.26.4", "pandas": "2.0.3"},
            status="pass",
            python=py,
            probes=[
                ProbeResult("import", "numpy", "pass"),
                ProbeResult("import", "pandas", "pass"),
            ],
        ),
        CellResult(
            id=by_axes[("3.12", "2.2.6", "2.0.3")],
            axes={"python": "3.12", "numpy": "2.2.6", "pandas": "2.0.3"},
            status="error",
            category="network",
            message="could not reach the package index",
        ),
        CellResult(
            id=by_axes[("3.12", "2.2.6", "2.2.3")],
            axes={"python": "3.12", "numpy": "2.2.6", "pandas": "2.2.3"},
            status="pass",
            python=py,
            probes=[ProbeResult("import", "pandas", "pass")],
        ),
    ]


REAL_MATRIX = textwrap.dedent("""\
    name: pandas-numpy
    matrix:
      python: ["3.11"]
      numpy: ["1.26.4", "2.2.6"]
      pandas: ["2.0.3"]
    """)


@dataclass(frozen=True)
class Report:
    root: Path
    junit: Path
    compat: dict[str, Any]
    matrix: str
    lines: dict[str, int]


@pytest.fixture(scope="module", params=["failures", "default"])
def report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """A report with failures (the broken pandas cell), and the all-pass default shape."""
    root = tmp_path_factory.mktemp(request.param)
    (root / "ci").mkdir()
    matrix_path = root / "ci" / "compat.yml"
    matrix_path.write_text(MATRIX)
    cells = expand(load_matrix(matrix_path))
    results = _results(cells)
    if request.param == "default":
        results = [r for r in results if r.status == "pass"]
    found = JUnitSource.for_matrix(matrix_path, cells)
    assert found.path == matrix_path.resolve().as_posix()  # outside the working directory
    # As the Action names it: relative to the workspace (the repository root).
    source = JUnitSource("ci/compat.yml", found.lines)
    lines = dict(source.lines)
    paths = write_reports(root / "out", "consumers", results, source=source)
    compat = json.loads(paths.json.read_text(encoding="utf-8"))
    return Report(root, paths.junit, compat, "ci/compat.yml", lines)


def _expected_counts(compat: dict[str, Any]) -> tuple[int, int, int]:
    """(failed, errored, skipped) testcases compat.json implies: a failing cell fails once per
    probe and distribution and kind; an error errs once; an unsupported cell skips once."""
    failed = errored = skipped = 0
    for cell in compat["cells"]:
        status = cell["status"]
        expected = (cell.get("expectation") or {}).get("met")
        kinds = {
            (p["probe"], p["category"], p["target"].split("/")[0])
            for p in cell["probes"]
            if p["status"] == status
        }
        # A probe's summary of its findings is folded into them, not counted again.
        files = {(probe, category) for probe, category, where in kinds if where != "environment"}
        kinds = {k for k in kinds if k[2] != "environment" or k[:2] not in files}
        count = max(len(kinds), 1)
        if expected or status in ("unsupported", "skip", "conflict"):
            skipped += count
        elif status == "fail":
            failed += count
        elif status == "error":
            errored += count
    return failed, errored, skipped


# -- junitparser, and EnricoMi/publish-unit-test-result-action (which parses with it) ---------


def test_schema_and_junitparser_counts_match_compat_json(report: Report) -> None:
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(report.junit))
    xml = junitparser.JUnitXml.fromfile(str(report.junit))
    suites = list(xml)
    assert [s.name for s in suites] == [c["id"] for c in report.compat["cells"]]
    failed, errored, skipped = _expected_counts(report.compat)
    assert sum(s.failures for s in suites) == failed
    assert sum(s.errors for s in suites) == errored
    assert sum(s.skipped for s in suites) == skipped
    assert sum(s.tests for s in suites) == sum(len(list(s)) for s in suites)
    if report.compat["cells"][0]["status"] != "pass":
        # The broken pandas cell: the import and the 35 abi findings are two failures.
        assert (failed, errored, skipped) == (2, 1, 1)


def _enricomi_annotations(junit: Path) -> list[dict[str, Any]]:
    """EnricoMi's rules (python/publish/junit.py and __init__.py): a case's path is its `file`
    attribute, else its classname; the title is "NAME (CLASSNAME) failed|with error"; the
    details repeat the message only when the content does not contain it."""
    out = []
    for suite in junitparser.JUnitXml.fromfile(str(junit)):
        for case in suite:
            results = [
                r for r in case.result if isinstance(r, (junitparser.Failure, junitparser.Error))
            ]
            if not results:
                continue
            state = "failed" if isinstance(results[0], junitparser.Failure) else "with error"
            message, content = results[0].message or "", results[0].text or ""
            details = ([message] if message not in content else []) + [content]
            out.append(
                {
                    "path": case._elem.get("file") or case.classname or "/",
                    "title": f"{case.name} ({case.classname}) {state}",
                    "details": "\n".join(d for d in details if d),
                }
            )
    return out


def test_enricomi_names_the_cell_and_shows_each_message_once(report: Report) -> None:
    annotations = _enricomi_annotations(report.junit)
    ids = {c["id"] for c in report.compat["cells"]}
    for annotation in annotations:
        assert annotation["path"] in ids  # the cell, readable, not a guessed file
        first = annotation["details"].splitlines()[0] if annotation["details"] else ""
        assert annotation["details"].count(first) == 1
    titles = [a["title"] for a in annotations]
    assert len(titles) == len(set(titles))
    if annotations:
        assert any(t.startswith("abi pandas: abi-numpy (py3.11-") for t in titles)


# -- mikepenz/action-junit-report ---------------------------------------------------------


def _mikepenz_location(case: ET.Element, suite: ET.Element) -> tuple[str, int]:
    """mikepenz (src/testParser.ts resolveFileAndLine): file from the testcase, the failure or
    the suite; without one, the last dotted part of the classname. Without a `line` attribute,
    the last " …FILE…:N" in the failure text gives the line, else line 1."""
    issue = case.find("failure")
    if issue is None:
        issue = case.find("error")
    assert issue is not None
    file = case.get("file") or issue.get("file") or suite.get("file")
    name = file or (case.get("classname") or case.get("name", "")).split(".")[-1]
    matches = re.findall(rf" [^ ]*{re.escape(name)}.*?:\d+", issue.text or "")
    return name, int(matches[-1].split(":")[-1]) if matches else 1


def test_mikepenz_puts_each_failure_on_the_matrix_line_that_made_the_cell(
    report: Report,
) -> None:
    root = ET.parse(  # noqa: S314 - our own file
        report.junit
    ).getroot()
    located = [
        (suite.get("name"), _mikepenz_location(case, suite))
        for suite in root.iter("testsuite")
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    for cell_id, (path, line) in located:
        assert path == report.matrix  # never "3", the end of "pandas2.0.3"
        assert (report.root / path).is_file()
        assert line == report.lines[cell_id]
    if located:
        lines = MATRIX.splitlines()
        broken = next(line for cell_id, (_, line) in located if "numpy2.2.6" in cell_id)
        assert lines[broken - 1].strip().startswith("pandas:")


# -- dorny/test-reporter --------------------------------------------------------------------

_DORNY_AT = re.compile(r"^\s*at (\S+/\S*/)?(.*)\((.*):(\d+)\)$")


def _dorny_annotations(junit: Path, tracked: list[str], limit: int = 10) -> list[dict[str, Any]]:
    """dorny's java-junit rules (src/parsers/java-junit/, src/report/get-annotations.ts): one
    annotation per failed or errored testcase, the first `limit` (default 10); the path and
    line come from the first "at pkg.Class.method(File:N)" line whose File is a tracked file
    in folders spelling the package (lower-case parts before the first capitalised one)."""
    found = []
    for suite in (
        ET.parse(  # noqa: S314 - our own file
            junit
        )
        .getroot()
        .iter("testsuite")
    ):
        for case in suite.iter("testcase"):
            issue = case.find("failure")
            issue = issue if issue is not None else case.find("error")
            if issue is None:
                continue
            path, line = None, None
            for text in (issue.text or "").splitlines():
                match = _DORNY_AT.match(text)
                if not match:
                    continue
                parts = match.group(2).split(".")
                upper = next((i for i, p in enumerate(parts) if p[:1] <= "Z"), len(parts))
                package = parts[:upper]
                for candidate in tracked:
                    folders = candidate.split("/")[:-1]
                    if (
                        candidate.split("/")[-1] == match.group(3)
                        and folders[-len(package) :] == package
                    ):
                        path, line = candidate, int(match.group(4))
                        break
                if path:
                    break
            found.append({"path": path or str(junit), "line": line or 0, "test": case.get("name")})
    return found[: limit + 1]  # get-annotations.ts splices at maxCount + 1


def test_dorny_spends_one_annotation_per_broken_kind_and_finds_the_matrix(report: Report) -> None:
    annotations = _dorny_annotations(report.junit, [report.matrix, "README.md"])
    failed, errored, _ = _expected_counts(report.compat)
    assert len(annotations) == failed + errored  # 3, not 37: well under 10
    for annotation in annotations:
        assert (annotation["path"], annotation["line"]) != (str(report.junit), 0)
        assert annotation["path"] == report.matrix
        assert annotation["line"] > 1


# -- test-summary/action --------------------------------------------------------------------


def test_test_summary_shows_message_and_details_without_repeating(report: Report) -> None:
    """test-summary (src/test_parser.ts, dashboard.ts) shows a failure's `message` attribute,
    then its text: the text must not say the message again."""
    root = ET.parse(  # noqa: S314 - our own file
        report.junit
    ).getroot()
    passed = failed = skipped = 0
    for case in root.iter("testcase"):
        issue = case.find("failure")
        issue = issue if issue is not None else case.find("error")
        if case.find("skipped") is not None:
            skipped += 1
        elif issue is not None:
            failed += 1
            message, details = issue.get("message") or "", issue.text or ""
            assert message
            assert one_line(message, 10_000) not in one_line(details, 100_000), (message, details)
        else:
            passed += 1
    counted_failed, counted_errored, counted_skipped = _expected_counts(report.compat)
    assert (failed, skipped) == (counted_failed + counted_errored, counted_skipped)
    assert passed + failed + skipped == len(list(root.iter("testcase")))


def test_the_35_files_of_one_finding_are_named_in_one_failure(report: Report) -> None:
    root = ET.parse(  # noqa: S314 - our own file
        report.junit
    ).getroot()
    grouped = [c for c in root.iter("testcase") if c.get("name") == "abi pandas: abi-numpy"]
    if report.compat["cells"][0]["status"] == "pass":
        assert grouped == []
        return
    (case,) = grouped
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("35 files: pandas/_libs/mod0.so")
    text = failure.text or ""
    assert all(f"pandas/_libs/mod{i}.cpython-311-x86_64-linux-gnu.so" in text for i in range(35))
    assert text.count("hint: pin numpy<2, or upgrade pandas") == 1


@pytest.mark.slow
def test_a_real_broken_pandas_cell_is_two_failures_everywhere(
    tmp_path: Path, python_for: Any
) -> None:
    """The issue's case, for real: pandas 2.0.3 wheels under NumPy 2.2.6 on CPython 3.11
    (33 extension modules built against NumPy 1.x). Every consumer sees two failures for the
    broken cell (its abi findings, its failed import), each on the matrix line of `pandas`."""
    python_for("3.11")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "compat.yml").write_text(REAL_MATRIX)
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "run", "ci/compat.yml", "-o", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    compat = json.loads((tmp_path / "out" / "compat.json").read_text(encoding="utf-8"))
    assert [c["status"] for c in compat["cells"]] == ["pass", "fail"]
    lines = {c["id"]: 5 for c in compat["cells"]}  # the pandas axis, the last one
    report = Report(tmp_path, tmp_path / "out" / "junit.xml", compat, "ci/compat.yml", lines)
    test_schema_and_junitparser_counts_match_compat_json(report)
    assert _expected_counts(compat) == (2, 0, 0)
    test_enricomi_names_the_cell_and_shows_each_message_once(report)
    test_mikepenz_puts_each_failure_on_the_matrix_line_that_made_the_cell(report)
    test_dorny_spends_one_annotation_per_broken_kind_and_finds_the_matrix(report)
    test_test_summary_shows_message_and_details_without_repeating(report)
