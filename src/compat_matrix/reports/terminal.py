"""The verdict list printed when `nox -s probe` ends: one line per cell, then the counts.

Messages come from arbitrary programs, so their escape sequences are stripped before printing:
colour comes only from this module, and only when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from compat_matrix.reports._verdicts import (
    KINDS,
    SUMMARY_ORDER,
    count_kinds,
    kind_of,
    label,
    one_line,
    short_reason,
)
from compat_matrix.results import CellResult

__all__ = ["render_terminal"]

_ID_WIDTH = 48
_REASON_LIMIT = 120


def _paint(text: str, sgr: str, color: bool) -> str:
    return f"\x1b[{sgr}m{text}\x1b[0m" if color and sgr else text


#: Above this many cells the terminal lists only the cells that need attention.
_MAX_LINES = 200


def render_terminal(results: Sequence[CellResult], *, color: bool) -> str:
    """`results` as aligned lines (status word, cell id, short reason) and a summary line."""
    if not results:
        return "compat-matrix: no cells\n"
    shown = list(results)
    if len(shown) > _MAX_LINES:
        # A huge matrix: the cells that need attention, then the count of the rest.
        shown = [r for r in results if kind_of(r) != "pass"][:_MAX_LINES]
    words = [one_line(label(result), 60) for result in shown]
    ids = [one_line(result.id, 200) for result in shown]
    word_width = max((len(word) for word in words), default=0)
    id_width = min(max((len(cell_id) for cell_id in ids), default=0), _ID_WIDTH)
    lines = []
    for result, word, cell_id in zip(shown, words, ids):
        kind = KINDS[kind_of(result)]
        reason = short_reason(result, _REASON_LIMIT)
        line = f"  {_paint(word.ljust(word_width), kind.sgr, color)}  "
        line += f"{cell_id.ljust(id_width)}  {reason}" if reason else cell_id
        lines.append(line.rstrip())
    if len(shown) < len(results):
        lines.append(f"  … {len(results) - len(shown)} more cells not listed (see compat.md)")
    lines.append(_summary(results, color))
    return "\n".join(lines) + "\n"


def _summary(results: Sequence[CellResult], color: bool) -> str:
    counts = count_kinds(results)
    parts = [
        _paint(f"{counts[kind]} {KINDS[kind].word}", KINDS[kind].sgr, color)
        for kind in SUMMARY_ORDER
        if counts[kind]
    ]
    total = f"{len(results)} cell" + ("" if len(results) == 1 else "s")
    return f"compat-matrix: {total}: " + ", ".join(parts)
