"""junit.xml: the verdicts in the format CI test reporters read, valid against junit-10.xsd.

Built with `xml.etree` rather than junitparser: junitparser's writer puts `skipped` on
`<testsuites>` and writes times like `1e-05`, both invalid under junit-10.xsd. Consumers
(EnricoMi/publish-unit-test-result-action, mikepenz/action-junit-report, dorny/test-reporter,
test-summary/action) read what this writes: one flat `<testsuite>` per cell whose id is the
suite name and every testcase's classname, so reporters that identify a test by
(classname, name) never merge two cells.

Verdict mapping:
- `fail` -> `<failure>`, `error` -> `<error>` (a harness or infrastructure problem: retry);
- `unsupported`, `skip` -> `<skipped>`: nothing was tested, nothing is broken;
- `conflict` -> `<skipped>` too: the packages' own metadata says they cannot be installed
  together, which is a fact about the combination (like `unsupported`), not a broken test
  and not a harness bug; the category and message stay in the element for the reader;
- a non-pass verdict the matrix declared in `expect:` -> `<skipped type="xfail">`, as pytest
  reports xfail; an unmet expectation adds a failing `expectation` testcase.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from compat_matrix.results import CellResult, ProbeResult

from ._verdicts import clean_text, one_line

__all__ = ["format_time", "render_junit"]

#: Long enough for any traceback a reader wants; EnricoMi cuts annotations at 64000 bytes.
_TEXT_LIMIT = 60_000
_MESSAGE_LIMIT = 1_000


@dataclass
class _Outcome:
    element: str  # failure | error | skipped
    type: str
    message: str
    text: str


@dataclass
class _Case:
    name: str
    time: float
    outcome: _Outcome | None = None


def format_time(seconds: float) -> str:
    """Seconds as junit-10's SUREFIRE_TIME wants them: at most 3 decimals, no exponent or sign."""
    if not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0
    return f"{seconds:.3f}"


def render_junit(name: str, results: Sequence[CellResult]) -> str:
    """One `<testsuite>` per cell in job order, inside a junit-10-clean `<testsuites>`."""
    root = ET.Element("testsuites", {"name": one_line(name, _MESSAGE_LIMIT)})
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for result in results:
        suite, counts, seconds = _suite(result)
        root.append(suite)
        for key in totals:
            totals[key] += counts[key]
        total_time += seconds
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", format_time(total_time))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _suite(result: CellResult) -> tuple[ET.Element, dict[str, int], float]:
    cell_id = one_line(result.id, _MESSAGE_LIMIT)
    cases = _cases(result)
    counts = {
        "tests": len(cases),
        "failures": sum(1 for case in cases if _element(case) == "failure"),
        "errors": sum(1 for case in cases if _element(case) == "error"),
        "skipped": sum(1 for case in cases if _element(case) == "skipped"),
    }
    seconds = sum(v for v in result.durations.values() if math.isfinite(v) and v > 0)
    if seconds <= 0:
        seconds = sum(case.time for case in cases if math.isfinite(case.time) and case.time > 0)
    suite = ET.Element("testsuite", {"name": cell_id})
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", format_time(seconds))
    properties = ET.SubElement(suite, "properties")
    for prop_name, prop_value in _properties(result):
        ET.SubElement(
            properties,
            "property",
            {"name": one_line(prop_name, _MESSAGE_LIMIT), "value": clean_text(prop_value)},
        )
    for case in cases:
        element = ET.SubElement(
            suite,
            "testcase",
            {"name": one_line(case.name, _MESSAGE_LIMIT), "classname": cell_id},
        )
        element.set("time", format_time(case.time))
        if case.outcome is not None:
            outcome = ET.SubElement(
                element,
                case.outcome.element,
                {"type": one_line(case.outcome.type, 200), "message": case.outcome.message},
            )
            outcome.text = case.outcome.text
    return suite, counts, seconds


def _element(case: _Case) -> str | None:
    return case.outcome.element if case.outcome is not None else None


def _properties(result: CellResult) -> list[tuple[str, str]]:
    props = [(f"axis.{key}", value) for key, value in result.axes.items()]
    props += [(f"resolved.{dist}", version) for dist, version in result.resolved.items()]
    props.append(("status", result.status))
    if result.category:
        props.append(("category", result.category))
    if result.python is not None:
        props += [
            ("python.version", result.python.version),
            ("python.implementation", result.python.implementation),
            ("python.abi", result.python.abi),
        ]
    if result.gpu_unverified:
        props.append(("gpu_unverified", "true"))
    if result.expectation is not None:
        props += [
            ("expectation.status", result.expectation.status),
            ("expectation.met", "true" if result.expectation.met else "false"),
        ]
        if result.expectation.reason:
            props.append(("expectation.reason", result.expectation.reason))
    return props


def _cases(result: CellResult) -> list[_Case]:
    cases = [_probe_case(probe) for probe in result.probes]
    if not result.probes:
        # Nothing ran inside the environment: the cell's verdict is the install's (or, for a
        # skip, the environment's: no interpreter, no GPU).
        name = "environment" if result.status == "skip" else "install"
        cases.append(_cell_case(result, name, result.durations.get("build", 0.0)))
    elif result.status != "pass" and not any(p.status == result.status for p in result.probes):
        # A verdict no probe carries (a timeout, an inconsistent environment): show it anyway.
        cases.append(_cell_case(result, "verdict", 0.0))
    expectation = result.expectation
    if expectation is not None and expectation.met and result.status != "pass":
        prefix = f"expected {result.status}"
        if expectation.reason:
            prefix += f" ({expectation.reason})"
        for case in cases:
            if case.outcome is not None:
                outcome = case.outcome
                if outcome.element != "skipped":
                    outcome.type = "xfail"
                outcome.element = "skipped"
                outcome.message = one_line(f"{prefix}: {outcome.message}", _MESSAGE_LIMIT)
    if expectation is not None and not expectation.met:
        message = f"expected {expectation.status}, got {result.status}"
        if expectation.reason:
            message += f" ({expectation.reason})"
        cases.append(
            _Case(
                "expectation",
                0.0,
                _Outcome(
                    "failure", "unmet-expectation", one_line(message, _MESSAGE_LIMIT), message
                ),
            )
        )
    return cases


def _probe_case(probe: ProbeResult) -> _Case:
    name = f"{probe.probe} {probe.target}".strip() or "probe"
    return _Case(
        name, probe.duration_s, _outcome(probe.status, probe.category, probe.message, probe.hint)
    )


def _cell_case(result: CellResult, name: str, seconds: float) -> _Case:
    return _Case(
        name, seconds, _outcome(result.status, result.category, result.message, result.hint)
    )


def _outcome(status: str, category: str | None, message: str, hint: str) -> _Outcome | None:
    if status == "pass":
        return None
    element = {"fail": "failure", "error": "error"}.get(status)
    if element is None:
        element = "skipped" if status in ("unsupported", "conflict", "skip") else "error"
    text = clean_text(message).strip()
    if len(text) > _TEXT_LIMIT:
        text = text[:_TEXT_LIMIT] + "\n… (truncated, see compat.json)"
    if hint:
        text = f"{text}\n\nhint: {clean_text(hint).strip()}".strip()
    summary = one_line(message, _MESSAGE_LIMIT) or (category or status)
    return _Outcome(element, category or status, summary, text)
