"""junit.xml: the verdicts in the format CI test reporters read, valid against junit-10.xsd.

Written as text, escaped and indented exactly as `xml.etree` would write it, rather than with
junitparser (its writer puts `skipped` on `<testsuites>` and writes times like `1e-05`, both
invalid under junit-10.xsd) or an ElementTree (building and serialising 10,000 suites as a
tree took most of the time `compat-matrix report` has). Consumers
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
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from compat_matrix.reports._verdicts import clean_text, one_line
from compat_matrix.results import CellResult, ProbeResult

__all__ = ["format_time", "render_junit"]

#: Long enough for any traceback a reader wants; EnricoMi cuts annotations at 64000 bytes.
_TEXT_LIMIT = 60_000
_MESSAGE_LIMIT = 1_000


@dataclass
class _Outcome:
    element: str  # failure | error | skipped | system-out (a latent finding: not a failure)
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
    suites: list[str] = []
    tests = failures = errors = 0
    total_time = 0.0
    for result in results:
        text, counts, seconds = _suite(result)
        suites.append(text)
        tests += counts[0]
        failures += counts[1]
        errors += counts[2]
        total_time += seconds
    head = (
        f'<testsuites name="{_attr(one_line(name, _MESSAGE_LIMIT))}" tests="{tests}"'
        f' failures="{failures}" errors="{errors}" time="{format_time(total_time)}"'
    )
    if not suites:
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{head} />\n'
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{head}>\n{"".join(suites)}</testsuites>\n'


def _attr(text: str) -> str:
    """`text` escaped for a double-quoted attribute, as ElementTree writes it."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    if "\n" in text:
        text = text.replace("\n", "&#10;")
    if "\t" in text:
        text = text.replace("\t", "&#09;")
    return text


def _cdata(text: str) -> str:
    """`text` escaped for element content, as ElementTree writes it."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


@lru_cache(maxsize=4096)
def _property(name: str, value: str) -> str:
    """One `<property>` line; cached, as most (axis, version, status) pairs repeat."""
    return (
        f'      <property name="{_attr(one_line(name, _MESSAGE_LIMIT))}"'
        f' value="{_attr(clean_text(value))}" />\n'
    )


def _suite(result: CellResult) -> tuple[str, tuple[int, int, int], float]:
    """The cell's `<testsuite>`, indented as `ElementTree.indent` would, with its counts
    (tests, failures, errors) and seconds.

    Written as text rather than built as an ElementTree and serialised: at 10,000 cells the
    tree took most of the time `compat-matrix report` has for the whole merge.
    """
    cell_id = _attr(one_line(result.id, _MESSAGE_LIMIT))
    cases = _cases(result)
    failures = errors = skipped = 0
    for case in cases:
        if case.outcome is not None:
            element = case.outcome.element
            if element == "failure":
                failures += 1
            elif element == "error":
                errors += 1
            elif element == "skipped":
                skipped += 1
    seconds = sum(v for v in result.durations.values() if math.isfinite(v) and v > 0)
    if seconds <= 0:
        seconds = sum(case.time for case in cases if math.isfinite(case.time) and case.time > 0)
    out = [
        f'  <testsuite name="{cell_id}" tests="{len(cases)}" failures="{failures}"'
        f' errors="{errors}" skipped="{skipped}" time="{format_time(seconds)}">\n'
        "    <properties>\n"
    ]
    out += [_property(prop_name, prop_value) for prop_name, prop_value in _properties(result)]
    out.append("    </properties>\n")
    for case in cases:
        start = (
            f'    <testcase name="{_attr(one_line(case.name, _MESSAGE_LIMIT))}"'
            f' classname="{cell_id}" time="{format_time(case.time)}"'
        )
        outcome = case.outcome
        if outcome is None:
            out.append(f"{start} />\n")
            continue
        if outcome.element == "system-out":
            text = _cdata(f"{outcome.type}: {outcome.text}")
            out.append(f"{start}>\n      <system-out>{text}</system-out>\n    </testcase>\n")
            continue
        element = (
            f'<{outcome.element} type="{_attr(one_line(outcome.type, 200))}"'
            f' message="{_attr(outcome.message)}"'
        )
        if outcome.text:
            element += f">{_cdata(outcome.text)}</{outcome.element}>"
        else:
            element += " />"
        out.append(f"{start}>\n      {element}\n    </testcase>\n")
    out.append("  </testsuite>\n")
    return "".join(out), (len(cases), failures, errors), seconds


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
    if result.latent:
        props.append(("latent", "true"))
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
            if case.outcome is not None and case.outcome.element != "system-out":
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
                    "failure",
                    "unmet-expectation",
                    one_line(message, _MESSAGE_LIMIT),
                    clean_text(message),
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
    element = {"fail": "failure", "error": "error", "latent": "system-out"}.get(status)
    if element is None:
        element = "skipped" if status in ("unsupported", "conflict", "skip") else "error"
    text = clean_text(message).strip()
    if len(text) > _TEXT_LIMIT:
        text = text[:_TEXT_LIMIT] + "\n… (truncated, see compat.json)"
    if hint:
        text = f"{text}\n\nhint: {clean_text(hint).strip()}".strip()
    summary = one_line(message, _MESSAGE_LIMIT) or clean_text(category or status)
    return _Outcome(element, category or status, summary, text)
