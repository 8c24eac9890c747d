"""Pick some cells of a matrix by id, the way a CI shard or a user asks for them.

A selection is a whitespace- or comma-separated list of cell ids or shell-style patterns
(`py3.11-*`). It is how `COMPAT_CELLS`, the action's `cells:` input and `plan --cells` name
cells; an id that names no cell is an error rather than a silently empty run.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from typing import TYPE_CHECKING

from compat_matrix.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from compat_matrix.matrix.model import Cell

__all__ = ["parse_selection", "select_cells"]

_SEPARATORS = re.compile(r"[\s,]+")
_PATTERN = re.compile(r"[*?\[]")


def parse_selection(text: str) -> list[str]:
    """The ids and patterns in `text`, in order, without duplicates ("" means none)."""
    seen: dict[str, None] = {}
    for token in _SEPARATORS.split(text.strip()):
        if token:
            seen.setdefault(token, None)
    return list(seen)


def select_cells(cells: Sequence[Cell], text: str) -> list[Cell]:
    """The cells named by `text`, in job order; every cell when `text` is blank.

    Raises UsageError naming every id (or pattern) that matches no cell, so a typo in a CI
    shard fails loudly instead of running nothing.
    """
    wanted = parse_selection(text)
    if not wanted:
        return list(cells)
    by_id = {cell.id: cell for cell in cells}
    chosen: set[str] = set()
    unknown: list[str] = []
    for token in wanted:
        if _PATTERN.search(token):
            matched = fnmatch.filter(by_id, token)
            if not matched:
                unknown.append(token)
            chosen.update(matched)
        elif token in by_id:
            chosen.add(token)
        else:
            unknown.append(token)
    if unknown:
        close = _close_matches(unknown[0], list(by_id))
        hint = f" (did you mean {close}?)" if close else ""
        msg = (
            f"no such cell: {', '.join(unknown)}{hint}; "
            "`compat-matrix expand MATRIX` lists the cell ids"
        )
        raise UsageError(msg)
    return [cell for cell in cells if cell.id in chosen]


def _close_matches(token: str, ids: list[str]) -> str:
    found = difflib.get_close_matches(token, ids, n=1)
    return found[0] if found else ""
