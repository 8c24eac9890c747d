"""What changed since a baseline report: newly broken, fixed, unsupported, new and removed cells.

A nightly run compares itself with the last good night's compat.json. A *regression* is a cell
that worked in the baseline (or had no distribution) and is now broken, or that passed and now
has no distribution, unless the matrix's `expect:` entry says this is the new normal. Cells
without a verdict on either side (`skip`, `error`) are listed as other changes, never as
regressions: nobody knows whether they worked.

A regression can carry its culprit (`CulpritFinding`, found by run/culprit.py when asked): the
packages whose move between the two locks broke it, with their release dates, shown in the
"changes since baseline" section and in diff.json.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from compat_matrix.errors import UsageError
from compat_matrix.matrix.model import STATUSES, Status
from compat_matrix.reports._parallel import Forked, can_fork
from compat_matrix.reports._verdicts import one_line
from compat_matrix.reports.markdown import inline_markdown
from compat_matrix.results import CELL_KEYS, SCHEMA, CellResult, ExpectationOutcome

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "Baseline",
    "BaselineDiff",
    "CellChange",
    "CulpritFinding",
    "LockChange",
    "baseline_file",
    "diff_results",
    "load_baseline",
    "render_changes_markdown",
    "render_diff_json",
]

#: A verdict saying the combination does not work.
_BROKEN = frozenset({"fail", "conflict"})
#: Statuses that are no verdict at all.
_NO_VERDICT = frozenset({"skip", "error"})
#: Entries listed per section of the Markdown; diff.json has them all.
_SECTION_LIMIT = 50
_MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class CellChange:
    """One cell whose status differs from the baseline (or that is new, or gone)."""

    id: str
    axes: dict[str, str]
    #: Status in the baseline; None for a new cell.
    before: str | None
    #: Status now; None for a removed cell.
    after: str | None
    category: str | None = None
    message: str = ""
    regression: bool = False
    #: The matrix's `expect:` entry now says this status is expected.
    expected: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "axes": self.axes,
            "before": self.before,
            "after": self.after,
            "category": self.category,
            "message": self.message,
            "regression": self.regression,
            "expected": self.expected,
        }


@dataclass(frozen=True)
class LockChange:
    """One package whose version differs between the baseline's lock and tonight's."""

    name: str
    before: str
    after: str
    #: `YYYY-MM-DD` the `after` release was uploaded ("" when the index did not say).
    released: str = ""

    def text(self) -> str:
        """`numpy 2.3.0 → 2.4.0 (released 2025-12-01)`."""
        when = f" (released {self.released})" if self.released else ""
        return f"{self.name} {self.before} → {self.after}{when}"


@dataclass(frozen=True)
class CulpritFinding:
    """Which of a regressed cell's changed packages broke it, found by re-running the cell
    with changed packages reverted to their baseline versions."""

    cell: str
    #: Every package whose version moved between the two locks.
    changed: tuple[LockChange, ...] = ()
    #: Reverting any one of these alone restores the baseline verdict (or, with `together`,
    #: reverting them all at once does).
    culprits: tuple[LockChange, ...] = ()
    together: bool = False
    #: Each re-run: "reverted numpy 2.4.0 → 2.3.0: pass".
    tried: tuple[str, ...] = ()
    #: Why the search ended without an answer, or early ("" when it finished).
    stopped: str = ""

    def sentence(self) -> str:
        """ "broke because numpy 2.3.0 → 2.4.0 (released 2025-12-01)", or why it is not known."""
        if self.culprits:
            joined = (" and " if self.together else " or ").join(c.text() for c in self.culprits)
            return f"broke because {joined}" + (" together" if self.together else "")
        if self.stopped:
            return f"culprit not found: {self.stopped}"
        return "culprit not found: reverting the changed packages did not restore the cell"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell,
            "summary": self.sentence(),
            "culprits": [asdict(c) for c in self.culprits],
            "together": self.together,
            "changed": [asdict(c) for c in self.changed],
            "tried": list(self.tried),
            "stopped": self.stopped,
        }


@dataclass(frozen=True)
class BaselineDiff:
    baseline_name: str
    baseline_cells: int
    current_cells: int
    broken: list[CellChange] = field(default_factory=list)
    fixed: list[CellChange] = field(default_factory=list)
    unsupported: list[CellChange] = field(default_factory=list)
    other: list[CellChange] = field(default_factory=list)
    added: list[CellChange] = field(default_factory=list)
    removed: list[CellChange] = field(default_factory=list)
    #: The culprit of each regressed cell that was searched for, by cell id.
    culprits: dict[str, CulpritFinding] = field(default_factory=dict)
    #: How the culprit search went overall ("" when none was asked for).
    culprit_note: str = ""

    @property
    def regressions(self) -> list[CellChange]:
        return [c for c in (*self.broken, *self.unsupported) if c.regression]

    @property
    def changed(self) -> bool:
        return any(
            (self.broken, self.fixed, self.unsupported, self.other, self.added, self.removed)
        )

    def _with_culprit(self, change: CellChange) -> dict[str, Any]:
        entry = change.to_dict()
        if change.id in self.culprits:
            entry["culprit"] = self.culprits[change.id].to_dict()
        return entry

    def to_dict(self) -> dict[str, Any]:
        document = {
            "schema": SCHEMA,
            "baseline": {"name": self.baseline_name, "cells": self.baseline_cells},
            "current": {"cells": self.current_cells},
            "regressions": [c.id for c in self.regressions],
            "newly_broken": [self._with_culprit(c) for c in self.broken],
            "newly_fixed": [c.to_dict() for c in self.fixed],
            "newly_unsupported": [self._with_culprit(c) for c in self.unsupported],
            "other_changes": [c.to_dict() for c in self.other],
            "new_cells": [c.to_dict() for c in self.added],
            "removed_cells": [c.to_dict() for c in self.removed],
        }
        if self.culprits or self.culprit_note:
            document["culprit_search"] = self.culprit_note
        return document


def baseline_file(path: Path) -> Path:
    """The compat.json a `--baseline` names: `path`, or the compat.json inside folder `path`."""
    return path / "compat.json" if path.is_dir() else path


def load_baseline(path: Path) -> tuple[str, list[CellResult]]:
    """The name and cells of a compat.json (or of the compat.json inside directory `path`).

    Cells carry what a comparison reads (id, axes, status, category, message, expectation,
    and the lock, `resolved`, which the culprit search diffs).
    """
    name, summaries = _load_summaries(path)
    return name, [_summary_result(summary) for summary in summaries]


#: What a comparison reads of a baseline's cell: id, axes, status, category, message, the
#: expectation's status, met and reason (or None), resolved.
_Summary = tuple[str, dict[str, str], str, Any, str, Any, dict[str, str]]


def _load_summaries(path: Path) -> tuple[str, list[_Summary]]:
    """`load_baseline`, its cells as `_Summary` values (a forked helper sends them)."""
    path = baseline_file(path)
    shared: dict[str, str] = {}  # one copy of each axis, version, status... of 10,000 cells
    try:
        streamed = _stream_summaries(path, shared)
        if streamed is not None:
            return streamed
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read baseline {path}: {exc.strerror or exc}"
        raise UsageError(msg) from None
    except ValueError as exc:
        msg = f"baseline {path} is not JSON: {exc}"
        raise UsageError(msg) from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        msg = f"baseline {path} is not a compat.json (schema {SCHEMA})"
        raise UsageError(msg)
    try:
        cells = [_summary(cell, shared) for cell in document.get("cells") or []]
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"baseline {path} has a malformed cell: {exc}"
        raise UsageError(msg) from None
    return str(document.get("name") or path.parent.name), cells


class Baseline:
    """The baseline a report compares with: `load` gives its name and cells.

    `meanwhile` starts loading a big one in a forked helper at once: reading a 170 MB
    compat.json takes a quarter of a second of one CPU, which the report's own start (the
    matrix, the listing of cell files) leaves idle; only its summaries' fields come back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._helper: Forked | None = None
        self._sent: Any = None

    @classmethod
    def meanwhile(cls, path: Path) -> Baseline:
        """`Baseline(path)`, loading in a forked helper where that pays (see the class)."""
        baseline = cls(path)
        try:
            size = baseline_file(path).stat().st_size
        except OSError:  # `load` says what is wrong
            return baseline
        if size < _FORK_MIN_BYTES or not can_fork():
            return baseline
        try:
            sent = tempfile.TemporaryFile()  # noqa: SIM115 - closed by `load` or `close`
        except OSError:
            return baseline
        try:
            baseline._helper = Forked(lambda: _send_baseline(path, sent))
        except OSError:
            sent.close()
            return baseline
        baseline._sent = sent
        return baseline

    def load(self) -> tuple[str, list[CellResult]]:
        """The baseline's name and cells (`load_baseline`); UsageError where it is not one."""
        helper, sent = self._helper, self._sent
        self._helper = self._sent = None
        if helper is None or sent is None:
            return load_baseline(self.path)
        with sent:
            try:
                done = helper.finished()
                helper.release()
            finally:
                helper.stop()
            if not done:  # it failed: here, for the same cells or the same error
                return load_baseline(self.path)
            sent.seek(0)
            # Written by the helper, a fork of this process, into a file only the two can reach.
            failed, name, cells = marshal.loads(sent.read())  # noqa: S302
        if failed:
            raise UsageError(name)
        return name, [_summary_result(summary) for summary in cells]

    def close(self) -> None:
        """Stop a helper that still loads (the report ended before it compared)."""
        if self._helper is not None:
            self._helper.stop()
            self._helper = None
        if self._sent is not None:
            self._sent.close()
            self._sent = None


#: A smaller baseline is loaded where it is compared: a helper would not pay.
_FORK_MIN_BYTES = 4_000_000


def _send_baseline(path: Path, sent: Any) -> None:
    """The helper's part of `Baseline.meanwhile`: the loaded cells' fields, or the error."""
    try:
        name, cells = _load_summaries(path)
        payload = (False, name, cells)
    except UsageError as exc:
        payload = (True, str(exc), [])
    sent.write(marshal.dumps(payload))
    sent.flush()


_CELLS_OPEN = b', "cells": [\n'
#: Lines of 17 KB read through the default 8 KB buffer took a third of the load: each is
#: pieced together from several reads.
_READ_BUFFER = 1 << 18


def _stream_summaries(path: Path, shared: dict[str, str]) -> tuple[str, list[_Summary]] | None:
    """`load_baseline` of a compat.json laid out as `render_json` writes it (a line per cell),
    a line at a time: a 10,000-cell baseline is never one parsed document in memory, and only
    the fields around each cell's probes are parsed (`_cell_fields`). None for any other
    layout or any doubt (the whole-document parse then says what is wrong)."""
    with path.open("rb", buffering=_READ_BUFFER) as handle:
        head = handle.readline()
        if not head.startswith(b'{"schema": ') or not head.endswith(_CELLS_OPEN):
            return None
        try:
            header = json.loads(head[: -len(_CELLS_OPEN)] + b"}")
        except ValueError:
            return None
        if not isinstance(header, dict) or header.get("schema") != SCHEMA:
            return None
        cells: list[_Summary] = []
        for line in handle:
            if line in (b"]}\n", b"]}"):  # the closing line
                if handle.read(1):  # and lines after it
                    return None
                return str(header.get("name") or path.parent.name), cells
            try:
                cells.append(_summary(_cell_fields(line), shared))
            except (KeyError, TypeError, ValueError, AttributeError):
                return None
    return None


#: Where a cell's probes start and where they end, in a line as `cell_json` writes it.
_PROBES, _AFTER_PROBES = b', "probes": [', b', "durations": {'
_HEAD, _TAIL = CELL_KEYS[: CELL_KEYS.index("probes")], CELL_KEYS[CELL_KEYS.index("durations") :]


_NEWLINE, _COMMA = ord("\n"), ord(",")


def _cell_fields(line: bytes) -> Any:
    """A cell line of compat.json (and the `,` and newline after it), parsed; as `cell_json`
    writes it (the keys in its order),
    all but the probes, nine tenths of a 10,000-cell compat.json that a comparison does not
    read: the fields before them and those after are parsed on their own.

    No text can hold `"probes": [` or `"durations": {` (its quotes are escaped), nor can the
    values around them (strings, flat objects) where the parts parse as these keys: the first
    is where the probes start, the last where they end. Any other line is parsed whole."""
    stop = len(line)  # cut, not copied: a line is 17 KB on average
    while stop and line[stop - 1] == _NEWLINE:
        stop -= 1
    if stop and line[stop - 1] == _COMMA:
        stop -= 1
    start, end = line.find(_PROBES, 0, stop), line.rfind(_AFTER_PROBES, 0, stop)
    if 0 < start < end:
        with contextlib.suppress(ValueError):
            head = json.loads(line[:start] + b"}")
            tail = json.loads(b"{" + line[end + 2 : stop])
            if (
                type(head) is dict
                and type(tail) is dict
                and (tuple(head), tuple(tail)) == (_HEAD, _TAIL)
            ):
                head.update(tail)
                return head
    return json.loads(line[:stop])


def _summary(cell: dict[str, Any], shared: dict[str, str]) -> _Summary:
    """The fields a comparison reads (a 10,000-cell baseline loads in a fraction of a second),
    checked as `CellResult` checks them; each text once in `shared`."""
    one = shared.setdefault
    status = cell["status"]
    if status not in STATUSES:
        msg = f"unknown cell status {status!r}"
        raise ValueError(msg)
    expectation = cell.get("expectation")
    if expectation:
        outcome = ExpectationOutcome(**expectation)
        expectation = (outcome.status, outcome.met, outcome.reason)
    return (
        str(cell["id"]),
        {one(str(k), str(k)): one(str(v), str(v)) for k, v in dict(cell.get("axes") or {}).items()},
        one(status, status),
        cell.get("category"),
        str(cell.get("message") or ""),
        expectation or None,
        {
            one(str(k), str(k)): one(str(v), str(v))
            for k, v in dict(cell.get("resolved") or {}).items()
        },
    )


def _summary_result(summary: _Summary) -> CellResult:
    cell_id, axes, status, category, message, expectation, resolved = summary
    return CellResult(
        cell_id,
        axes,
        cast("Status", status),
        category,
        message,
        resolved=resolved,
        expectation=None if expectation is None else ExpectationOutcome(*expectation),
    )


def _change(result: CellResult, before: str | None, *, regression: bool = False) -> CellChange:
    expected = result.expectation is not None and result.expectation.met
    return CellChange(
        id=result.id,
        axes=dict(result.axes),
        before=before,
        after=result.status,
        category=result.category,
        message=result.message,
        regression=regression and not expected,
        expected=expected,
    )


def diff_results(
    baseline: Sequence[CellResult], current: Sequence[CellResult], baseline_name: str = ""
) -> BaselineDiff:
    """Compare `current` with `baseline` cell by cell (by id), in `current`'s order."""
    old = {result.id: result for result in baseline}
    diff = BaselineDiff(baseline_name, len(baseline), len(current))
    seen: set[str] = set()
    for result in current:
        seen.add(result.id)
        previous = old.get(result.id)
        if previous is None:
            diff.added.append(_change(result, None))
            continue
        before, after = previous.status, result.status
        if before == after:
            continue
        if after in _BROKEN and before in ("pass", "unsupported"):
            diff.broken.append(_change(result, before, regression=True))
        elif before in _BROKEN and after == "pass":
            diff.fixed.append(_change(result, before))
        elif after == "unsupported" and before not in _NO_VERDICT:
            diff.unsupported.append(_change(result, before, regression=before == "pass"))
        else:
            diff.other.append(_change(result, before))
    for result in baseline:
        if result.id not in seen:
            diff.removed.append(
                CellChange(
                    id=result.id,
                    axes=dict(result.axes),
                    before=result.status,
                    after=None,
                    category=result.category,
                    message=result.message,
                )
            )
    return diff


def render_diff_json(diff: BaselineDiff) -> str:
    return json.dumps(diff.to_dict(), indent=2, ensure_ascii=True) + "\n"


def _md(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    return inline_markdown(text, limit)


def _code(text: str) -> str:
    flat = one_line(text, 200).replace("`", "'")
    return f"`{flat}`" if flat else ""


def _entry(change: CellChange, culprit: CulpritFinding | None = None) -> str:
    if change.before is None:
        move = f"new: {change.after}"
    elif change.after is None:
        move = f"was {change.before}"
    else:
        move = f"{change.before} → {change.after}"
    line = f"- {_code(change.id)} {_md(move, 60)}"
    if change.regression:
        line += " **regression**"
    elif change.expected:
        line += " (expected)"
    if change.after is not None and change.category:
        line += f" · {_code(change.category)}"
    if change.after is not None and change.message:
        line += f" — {_md(change.message)}"
    if culprit is not None:
        line += f"\n  - 🔎 {_md(culprit.sentence(), 400)}"
        if culprit.tried and not culprit.culprits:
            line += f" (tried: {_md('; '.join(culprit.tried), 400)})"
    return line + "\n"


def _section(
    title: str,
    changes: Sequence[CellChange],
    culprits: dict[str, CulpritFinding] | None = None,
) -> str:
    if not changes:
        return ""
    found = culprits or {}
    lines = [f"\n#### {title} ({len(changes)})\n\n"]
    lines += [_entry(change, found.get(change.id)) for change in changes[:_SECTION_LIMIT]]
    if len(changes) > _SECTION_LIMIT:
        lines.append(f"- … {len(changes) - _SECTION_LIMIT} more, see diff.json\n")
    return "".join(lines)


def render_changes_markdown(diff: BaselineDiff) -> str:
    """The "Changes since baseline" section that opens compat.md (bounded: ~100 kB at most)."""
    name = f" ({_md(diff.baseline_name, 100)})" if diff.baseline_name else ""
    head = f"### Changes since baseline{name}\n\n"
    if not diff.changed:
        return head + f"No changes: all {diff.current_cells} cells as in the baseline.\n\n---\n\n"
    regressions = len(diff.regressions)
    counts = [
        f"**{regressions} regression{'' if regressions == 1 else 's'}**",
        f"{len(diff.broken)} newly broken",
        f"{len(diff.fixed)} newly fixed",
        f"{len(diff.unsupported)} newly unsupported",
        f"{len(diff.other)} other changes",
        f"{len(diff.added)} new cells",
        f"{len(diff.removed)} removed cells",
    ]
    body = head + " · ".join(counts) + "\n"
    if diff.culprit_note:
        body += f"\nCulprit search: {_md(diff.culprit_note, 400)}\n"
    body += _section("❌ Newly broken", diff.broken, diff.culprits)
    body += _section("✅ Newly fixed", diff.fixed)
    body += _section("⛔ Newly unsupported", diff.unsupported, diff.culprits)
    body += _section("🔀 Other changes", diff.other)
    body += _section("🆕 New cells", diff.added)
    body += _section("🗑️ Removed cells", diff.removed)
    return body + "\n---\n\n"
