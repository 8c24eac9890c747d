"""What changed since a baseline report: newly broken, fixed, unsupported, new and removed cells.

A nightly run compares itself with the last good night's compat.json. A *regression* is a cell
that worked in the baseline (or had no distribution) and is now broken, or that passed and now
has no distribution, unless the matrix's `expect:` entry says this is the new normal. Cells
without a verdict on either side (`skip`, `error`) are listed as other changes, never as
regressions: nobody knows whether they worked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compat_matrix.errors import UsageError
from compat_matrix.reports._verdicts import one_line
from compat_matrix.reports.markdown import inline_markdown
from compat_matrix.results import SCHEMA, CellResult, ExpectationOutcome

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "BaselineDiff",
    "CellChange",
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

    @property
    def regressions(self) -> list[CellChange]:
        return [c for c in (*self.broken, *self.unsupported) if c.regression]

    @property
    def changed(self) -> bool:
        return any(
            (self.broken, self.fixed, self.unsupported, self.other, self.added, self.removed)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "baseline": {"name": self.baseline_name, "cells": self.baseline_cells},
            "current": {"cells": self.current_cells},
            "regressions": [c.id for c in self.regressions],
            "newly_broken": [c.to_dict() for c in self.broken],
            "newly_fixed": [c.to_dict() for c in self.fixed],
            "newly_unsupported": [c.to_dict() for c in self.unsupported],
            "other_changes": [c.to_dict() for c in self.other],
            "new_cells": [c.to_dict() for c in self.added],
            "removed_cells": [c.to_dict() for c in self.removed],
        }


def load_baseline(path: Path) -> tuple[str, list[CellResult]]:
    """The name and cells of a compat.json (or of the compat.json inside directory `path`).

    Cells carry what a comparison reads (id, axes, status, category, message, expectation).
    """
    if path.is_dir():
        path = path / "compat.json"
    try:
        streamed = _stream_summaries(path)
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
        cells = [_summary(cell) for cell in document.get("cells") or []]
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"baseline {path} has a malformed cell: {exc}"
        raise UsageError(msg) from None
    return str(document.get("name") or path.parent.name), cells


_CELLS_OPEN = b', "cells": [\n'


def _stream_summaries(path: Path) -> tuple[str, list[CellResult]] | None:
    """`load_baseline` of a compat.json laid out as `render_json` writes it (a line per cell),
    a line at a time: a 10,000-cell baseline is never one parsed document in memory. None for
    any other layout or any doubt (the whole-document parse then says what is wrong)."""
    with path.open("rb") as handle:
        head = handle.readline()
        if not head.startswith(b'{"schema": ') or not head.endswith(_CELLS_OPEN):
            return None
        try:
            header = json.loads(head[: -len(_CELLS_OPEN)] + b"}")
        except ValueError:
            return None
        if not isinstance(header, dict) or header.get("schema") != SCHEMA:
            return None
        cells: list[CellResult] = []
        ended = False
        for line in handle:
            if ended:
                return None
            if line in (b"]}\n", b"]}"):
                ended = True
                continue
            try:
                cell = json.loads(line.rstrip(b"\n").removesuffix(b","))
                cells.append(_summary(cell))
            except (KeyError, TypeError, ValueError, AttributeError):
                return None
        if not ended:
            return None
    return str(header.get("name") or path.parent.name), cells


def _summary(cell: dict[str, Any]) -> CellResult:
    """The fields a comparison reads (a 10,000-cell baseline loads in a fraction of a second)."""
    expectation = cell.get("expectation")
    return CellResult(
        id=str(cell["id"]),
        axes={str(k): str(v) for k, v in dict(cell.get("axes") or {}).items()},
        status=cell["status"],
        category=cell.get("category"),
        message=str(cell.get("message") or ""),
        expectation=ExpectationOutcome(**expectation) if expectation else None,
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


def _entry(change: CellChange) -> str:
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
    return line + "\n"


def _section(title: str, changes: Sequence[CellChange]) -> str:
    if not changes:
        return ""
    lines = [f"\n#### {title} ({len(changes)})\n\n"]
    lines += [_entry(change) for change in changes[:_SECTION_LIMIT]]
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
    body += _section("❌ Newly broken", diff.broken)
    body += _section("✅ Newly fixed", diff.fixed)
    body += _section("⛔ Newly unsupported", diff.unsupported)
    body += _section("🔀 Other changes", diff.other)
    body += _section("🆕 New cells", diff.added)
    body += _section("🗑️ Removed cells", diff.removed)
    return body + "\n---\n\n"
