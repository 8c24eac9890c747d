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


#: The narrowest reason column worth keeping on the cell's line.
_MIN_REASON = 24


def render_terminal(results: Sequence[CellResult], *, color: bool, width: int | None = None) -> str:
    """`results` as aligned lines (status word, cell id, short reason) and a summary line.

    With `width` (the terminal's columns) every line fits it: the reason is cut to the room
    left, and where too little is left it goes on its own indented line instead of wrapping.
    """
    if not results:
        return "compat-matrix: no cells\n"
    shown = list(results)
    if len(shown) > _MAX_LINES:
        # A huge matrix: the cells that need attention, then the count of the rest.
        shown = [r for r in results if kind_of(r) != "pass"][:_MAX_LINES]
    words = [one_line(label(result), 60) for result in shown]
    word_width = max((len(word) for word in words), default=0)
    id_limit = 200 if width is None else max(width - word_width - 4, 8)
    ids = [one_line(result.id, id_limit) for result in shown]
    id_width = min(max((len(cell_id) for cell_id in ids), default=0), _ID_WIDTH)
    lines = []
    for result, word, cell_id in zip(shown, words, ids):
        kind = KINDS[kind_of(result)]
        line = f"  {_paint(word.ljust(word_width), kind.sgr, color)}  "
        used = 2 + word_width + 2 + max(len(cell_id), id_width) + 2
        room = _REASON_LIMIT if width is None else min(_REASON_LIMIT, width - used)
        if room >= _MIN_REASON:
            reason = short_reason(result, room)
            line += f"{cell_id.ljust(id_width)}  {reason}" if reason else cell_id
            lines.append(line.rstrip())
            continue
        lines.append((line + cell_id).rstrip())
        reason = short_reason(result, max((width or _REASON_LIMIT) - 6, _MIN_REASON))
        if reason:
            lines.append(f"      {reason}")
    if len(shown) < len(results):
        lines.append(f"  … {len(results) - len(shown)} more cells not listed (see compat.md)")
    lines.append(_summary(results, color, width))
    return "\n".join(lines) + "\n"


def _summary(results: Sequence[CellResult], color: bool, width: int | None = None) -> str:
    counts = count_kinds(results)
    kinds = [kind for kind in SUMMARY_ORDER if counts[kind]]
    words = [f"{counts[kind]} {KINDS[kind].word}" for kind in kinds]
    parts = [_paint(word, KINDS[kind].sgr, color) for word, kind in zip(words, kinds)]
    total = f"{len(results)} cell" + ("" if len(results) == 1 else "s")
    head = f"compat-matrix: {total}: "
    if width is None or len(head) + len(", ".join(words)) <= width:
        return head + ", ".join(parts)
    # too wide for the terminal: break between counts, never inside one
    lines, line, used = [], head.rstrip(), len(head.rstrip())
    for index, (word, part) in enumerate(zip(words, parts)):
        comma = "," if index < len(words) - 1 else ""
        if used + 1 + len(word) + len(comma) > width and used > 2:
            lines.append(line)
            line, used = " ", 1
        line += f" {part}{comma}"
        used += 1 + len(word) + len(comma)
    lines.append(line)
    return "\n".join(lines)
