"""junit.xml: the verdicts in the format CI test reporters read, valid against junit-10.xsd.

Written as text, escaped and indented exactly as `xml.etree` would write it, rather than with
junitparser (its writer puts `skipped` on `<testsuites>` and writes times like `1e-05`, both
invalid under junit-10.xsd) or an ElementTree (building and serialising 10,000 suites as a
tree took most of the time `compat-matrix report` has). Consumers
(EnricoMi/publish-unit-test-result-action, mikepenz/action-junit-report, dorny/test-reporter,
test-summary/action) read what this writes: one flat `<testsuite>` per cell whose id is the
suite name and every testcase's classname, so reporters that identify a test by
(classname, name) never merge two cells.

How each consumer finds a location (read in their sources): a suite's `file` attribute names the
matrix file (mikepenz then looks for "FILE:LINE" after a space in the failure text; without
`file` it would take the last dotted part of the classname, "3" of "pandas2.0.3"); dorny resolves
only Java-style "at pkg.Class.method(File:LINE)" lines against tracked files whose folders match
the package; EnricoMi and test-summary show classname and name. So every failure's text ends
with both lines, pointing at the line of the matrix that made the cell. Findings of one kind in
one distribution are one testcase naming the files (35 broken `.so` files of one package are one
failure, not 35 annotations), and the text never repeats the `message` attribute, which every
consumer already shows.

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
import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from compat_matrix.matrix.lines import MatrixLines
from compat_matrix.matrix.model import Cell
from compat_matrix.reports._verdicts import clean_text, distribution_of, finding_groups, one_line
from compat_matrix.results import CellResult, ProbeResult

__all__ = ["JUnitSource", "format_time", "render_junit"]

#: Long enough for any traceback a reader wants; EnricoMi cuts annotations at 64000 bytes.
_TEXT_LIMIT = 60_000
_MESSAGE_LIMIT = 1_000


#: Files named in one grouped testcase's text before "… and N more".
_GROUP_LISTED = 50


@dataclass(frozen=True)
class JUnitSource:
    """The matrix file as consumers should name it (relative to the repository root, `/`
    separated) and the line of the axis value or include entry that made each cell."""

    path: str
    lines: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def for_matrix(cls, path: Path, cells: Sequence[Cell]) -> JUnitSource:
        """The source of `cells` in the matrix file at `path`, named relative to the working
        directory (the repository root in CI) when it lies inside it."""
        lines = MatrixLines.read(path)
        relative = os.path.relpath(path.resolve())
        name = path.resolve().as_posix() if relative.startswith("..") else Path(relative).as_posix()
        return cls(name, {cell.id: lines.line(cell.axes) for cell in cells})

    def location(self, cell_id: str) -> str:
        """Lines ending a failure's text that mikepenz and dorny turn into `path:line`."""
        line = self.lines.get(cell_id, 1)
        text = f"cell {cell_id}: {self.path}:{line}"
        package, base = _java_parts(self.path)
        if package:
            text += f"\n    at {package}.Cell.{cell_id}({base}:{line})"
        return text


@lru_cache(maxsize=16)
def _java_parts(path: str) -> tuple[str, str]:
    """dorny reads "at <package>.<Class>.<method>(<file>:<line>)", the package being the
    folders: the package ("" where the folders cannot be one) and the file name of `path`."""
    folder, base = posixpath.split(path)
    package = folder.replace("/", ".")
    if package and all(part[:1].islower() for part in package.split(".")):
        return package, base
    return "", base


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


@lru_cache(maxsize=4096)
def _case_start(name: str) -> str:
    """A `<testcase>` up to its classname's value; cached, as the names of a probe's
    testcases repeat from cell to cell."""
    return f'    <testcase name="{_attr(one_line(name, _MESSAGE_LIMIT))}" classname="'


def render_junit(
    name: str, results: Sequence[CellResult], source: JUnitSource | None = None
) -> str:
    """One `<testsuite>` per cell in job order, inside a junit-10-clean `<testsuites>`.

    With `source`, each suite names the matrix file and each failure ends with the line that
    made its cell, so annotations land on the matrix file.
    """
    suites: list[str] = []
    tests = failures = errors = 0
    total_time = 0.0
    for result in results:
        text, counts, seconds = _suite(result, source)
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


def _suite(
    result: CellResult, source: JUnitSource | None = None
) -> tuple[str, tuple[int, int, int], float]:
    """The cell's `<testsuite>`, indented as `ElementTree.indent` would, with its counts
    (tests, failures, errors) and seconds.

    Written as text rather than built as an ElementTree and serialised: at 10,000 cells the
    tree took most of the time `compat-matrix report` has for the whole merge.
    """
    cell_id = _attr(one_line(result.id, _MESSAGE_LIMIT))
    passed = _passed_cases(result)
    if passed is not None:
        return _passed_suite(result, source, cell_id, passed)
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
    seconds = _suite_seconds(result, (case.time for case in cases))
    location = _cdata(clean_text(source.location(result.id))) if source else ""
    out = [_suite_head(result, source, cell_id, (len(cases), failures, errors, skipped), seconds)]
    for case in cases:
        start = f'{_case_start(case.name)}{cell_id}" time="{format_time(case.time)}"'
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
        body = _cdata(outcome.text)
        if location and outcome.element in ("failure", "error"):
            body = f"{body}\n\n{location}" if body else location
        if body:
            element += f">{body}</{outcome.element}>"
        else:
            element += " />"
        out.append(f"{start}>\n      {element}\n    </testcase>\n")
    out.append("  </testsuite>\n")
    return "".join(out), (len(cases), failures, errors), seconds


def _suite_seconds(result: CellResult, cases: Iterable[float]) -> float:
    """A suite's time: the cell's stage durations, else the sum of its testcases' times (each
    counted where finite and positive)."""
    seconds = sum(v for v in result.durations.values() if math.isfinite(v) and v > 0)
    if seconds <= 0:
        seconds = sum(t for t in cases if math.isfinite(t) and t > 0)
    return seconds


def _suite_head(
    result: CellResult,
    source: JUnitSource | None,
    cell_id: str,
    counts: tuple[int, int, int, int],
    seconds: float,
) -> str:
    """The `<testsuite>` start tag (counts: tests, failures, errors, skipped) and properties:
    axes, resolved versions, then the verdict's."""
    tests, failures, errors, skipped = counts
    file = f' file="{_attr(one_line(source.path, _MESSAGE_LIMIT))}"' if source else ""
    out = [
        f'  <testsuite name="{cell_id}" tests="{tests}" failures="{failures}"'
        f' errors="{errors}" skipped="{skipped}" time="{format_time(seconds)}"{file}>\n'
        "    <properties>\n"
    ]
    out += [_property(f"axis.{key}", value) for key, value in result.axes.items()]
    out.append(_resolved_lines(tuple(result.resolved.items())))
    out.append(_property_lines(tuple(_verdict_properties(result))))
    out.append("    </properties>\n")
    return "".join(out)


# A cell's axes are its own, but most cells share their resolved versions (a lock per
# combination of the versions that vary) and their verdict's properties: cached as blocks.
@lru_cache(maxsize=1024)
def _resolved_lines(pairs: tuple[tuple[str, str], ...]) -> str:
    return _property_lines(tuple((f"resolved.{dist}", version) for dist, version in pairs))


@lru_cache(maxsize=1024)
def _property_lines(pairs: tuple[tuple[str, str], ...]) -> str:
    return "".join([_property(name, value) for name, value in pairs])


def _passed_cases(result: CellResult) -> list[tuple[str, str]] | None:
    """For a passing cell whose every probe passed (most cells), the text of each probe's
    testcase before and after its classname (the cell id), as `_suite` writes them from
    `_cases`; None for any other cell. Cached per probe: these repeat from cell to cell."""
    if result.status != "pass" or not result.probes:
        return None
    expectation = result.expectation
    if expectation is not None and not expectation.met:
        return None
    parts = []
    for probe in result.probes:
        if probe.status != "pass":
            return None
        seconds = probe.duration_s
        if seconds > 0 and math.isfinite(seconds):  # not -0.0 and 0.0, equal keys
            parts.append(_passed_case(probe.probe, probe.target, seconds))
        else:
            parts.append(_passed_case_text(probe.probe, probe.target, seconds))
    return parts


@lru_cache(maxsize=4096)
def _passed_case(probe: str, target: str, seconds: float) -> tuple[str, str]:
    return _passed_case_text(probe, target, seconds)


def _passed_case_text(probe: str, target: str, seconds: float) -> tuple[str, str]:
    """A passed probe's testcase (`_probe_case`) around its classname."""
    name = f"{probe} {target}".strip() or "probe"
    return _case_start(name), f'" time="{format_time(seconds)}" />\n'


def _passed_suite(
    result: CellResult,
    source: JUnitSource | None,
    cell_id: str,
    cases: list[tuple[str, str]],
) -> tuple[str, tuple[int, int, int], float]:
    """`_suite` of a cell of `_passed_cases`: no failure, so no location either."""
    seconds = _suite_seconds(result, (p.duration_s for p in result.probes))
    head = _suite_head(result, source, cell_id, (len(cases), 0, 0, 0), seconds)
    body = "".join([f"{start}{cell_id}{end}" for start, end in cases])
    return f"{head}{body}  </testsuite>\n", (len(cases), 0, 0), seconds


def _verdict_properties(result: CellResult) -> list[tuple[str, str]]:
    props: list[tuple[str, str]] = [("status", result.status)]
    if result.category:
        props.append(("category", result.category))
    if result.python is not None:
        props += [
            ("python.version", result.python.version),
            ("python.implementation", result.python.implementation),
            ("python.abi", result.python.abi),
        ]
    for item in result.selection:  # resolution, as-of, prerelease where not the default
        key, _, value = item.partition(": ")
        props.append((key, value))
    if result.gpu_unverified:
        props.append(("gpu_unverified", "true"))
    if result.latent:
        props.append(("latent", "true"))
    if result.static_only:
        props.append(("static_only", "true"))
    if result.expectation is not None:
        props += [
            ("expectation.status", result.expectation.status),
            ("expectation.met", "true" if result.expectation.met else "false"),
        ]
        if result.expectation.reason:
            props.append(("expectation.reason", result.expectation.reason))
    return props


def _cases(result: CellResult) -> list[_Case]:
    groups, notes = _fold_summaries(finding_groups(result.probes))
    cases = [_group_case(group, notes.get(_kind(group[0]), "")) for group in groups]
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


def _kind(probe: ProbeResult) -> tuple[str, str, str]:
    return (probe.probe, probe.status, probe.category or "")


def _fold_summaries(
    groups: list[list[ProbeResult]],
) -> tuple[list[list[ProbeResult]], dict[tuple[str, str, str], str]]:
    """A probe's own summary ("abi environment: 65 shared objects checked; 33 findings") is
    left out where the same probe reported findings of that kind on files: its words go into
    their testcase's text, so a broken cell is one failure per kind, not one more."""
    found = {_kind(g[0]) for g in groups if g[0].status != "pass" and g[0].target != "environment"}
    kept, notes = [], {}
    for group in groups:
        probe = group[0]
        if len(group) == 1 and probe.target == "environment" and _kind(probe) in found:
            notes[_kind(probe)] = one_line(probe.message, 500)
            continue
        kept.append(group)
    return kept, notes


def _group_case(group: list[ProbeResult], note: str = "") -> _Case:
    first = group[0]
    if len(group) == 1 and not note:
        return _probe_case(first)
    if len(group) == 1:
        case = _probe_case(first)
        if case.outcome is not None:
            case.outcome.text = f"{case.outcome.text}\n\n{note}".strip()
        return case
    name = f"{first.probe} {distribution_of(first)}: {first.category or first.status}"
    # The files, one a line: the message attribute already says what is wrong with them
    # (each file's own message is in compat.json).
    listed = [p.target for p in group[:_GROUP_LISTED]]
    if note:
        listed.append(f"({note})")
    if len(group) > _GROUP_LISTED:
        listed.append(f"… and {len(group) - _GROUP_LISTED} more (see compat.json)")
    hints = list(dict.fromkeys(p.hint for p in group if p.hint))
    summary = f"{len(group)} files: {one_line(first.message, 400)}"
    seconds = sum(p.duration_s for p in group if math.isfinite(p.duration_s) and p.duration_s > 0)
    return _Case(
        name,
        seconds,
        _outcome(first.status, first.category, summary, "\n".join(hints), "\n".join(listed)),
    )


def _probe_case(probe: ProbeResult) -> _Case:
    name = f"{probe.probe} {probe.target}".strip() or "probe"
    return _Case(
        name, probe.duration_s, _outcome(probe.status, probe.category, probe.message, probe.hint)
    )


def _cell_case(result: CellResult, name: str, seconds: float) -> _Case:
    return _Case(
        name, seconds, _outcome(result.status, result.category, result.message, result.hint)
    )


def _outcome(
    status: str, category: str | None, message: str, hint: str, details: str = ""
) -> _Outcome | None:
    """The element for a non-pass status. The `message` attribute is the message's first line;
    the text holds the rest of it, then `details`, then the hint. Consumers show attribute and
    text together, so the text never repeats the attribute (unless the attribute had to cut a
    very long first line: then the text has the whole message)."""
    if status == "pass":
        return None
    element = {"fail": "failure", "error": "error", "latent": "system-out"}.get(status)
    if element is None:
        element = "skipped" if status in ("unsupported", "conflict", "skip") else "error"
    full = clean_text(message).strip()
    first, _, rest = full.partition("\n")
    summary = one_line(first, _MESSAGE_LIMIT) or clean_text(category or status)
    if element != "system-out" and summary == one_line(first, len(first) + 1):
        full = rest.strip()
    if len(full) > _TEXT_LIMIT:
        full = full[:_TEXT_LIMIT] + "\n… (truncated, see compat.json)"
    parts = [full, clean_text(details).strip()]
    if hint:
        parts.append(f"hint: {clean_text(hint).strip()}")
    text = "\n\n".join(part for part in parts if part)
    return _Outcome(element, category or status, summary, text)
