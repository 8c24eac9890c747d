"""Lay cells out as a grid: one axis down the side, the other axes' combinations across.

The os axis (the platform) makes the rows when present, else the python axis (what a reader
scans first); when that gives too many columns to read, rows and columns swap; when neither
fits, when most squares would be empty, or when two cells land on one square, reporters fall
back to a list. Rows and columns
keep the order of first appearance, so the grid reads in job order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Optional

from compat_matrix.results import CellResult

__all__ = ["MAX_COLUMNS", "MIN_FILL", "AxisValues", "Pivot", "axis_order", "choose_pivot"]

#: More columns than this do not fit a screen (or a step summary) as a table.
MAX_COLUMNS = 12

#: A grid whose squares are mostly empty (include-only matrices, one unique value per cell)
#: says less than a list of its cells.
MIN_FILL = 0.3

#: The values of some axes for one cell, None where the cell lacks the axis (include-only keys).
AxisValues = tuple[Optional[str], ...]


@dataclass(frozen=True)
class Pivot:
    row_axes: tuple[str, ...]
    column_axes: tuple[str, ...]
    rows: tuple[AxisValues, ...]
    columns: tuple[AxisValues, ...]
    #: (row, column) -> index of the cell in the results.
    grid: dict[tuple[AxisValues, AxisValues], int]

    @property
    def corner(self) -> str:
        """Header of the label column: the names of the row axes."""
        return " · ".join(self.row_axes) or "cell"

    def at(self, row: AxisValues, column: AxisValues) -> int | None:
        return self.grid.get((row, column))

    def row_label(self, row: AxisValues) -> str:
        if len(self.row_axes) == 1:
            return row[0] if row[0] is not None else "—"
        return _label(self.row_axes, row)

    def column_label(self, column: AxisValues) -> str:
        if not self.column_axes:
            return "result"
        return _label(self.column_axes, column)


def _label(axes: tuple[str, ...], values: AxisValues) -> str:
    pairs = [f"{axis} {value}" for axis, value in zip(axes, values) if value is not None]
    return " · ".join(pairs) or "—"


def axis_order(results: Sequence[CellResult]) -> tuple[str, ...]:
    """Every axis name, in order of first appearance."""
    return tuple(dict.fromkeys(chain.from_iterable(result.axes for result in results)))


def choose_pivot(results: Sequence[CellResult], max_columns: int = MAX_COLUMNS) -> Pivot | None:
    """The grid to draw for `results`, or None when only a list can show them."""
    axes = axis_order(results)
    if not axes or not results:
        return None
    # The platform (`os`) makes the rows of a cross-platform matrix: one row per runner.
    row_axis = next((a for a in ("os", "python") if a in axes), axes[0])
    rest = tuple(axis for axis in axes if axis != row_axis)
    pivot = _build(results, (row_axis,), rest)
    if pivot is None:
        return None
    if len(pivot.grid) < MIN_FILL * len(pivot.rows) * len(pivot.columns):
        return None
    if len(pivot.columns) <= max_columns:
        return pivot
    if rest and len(pivot.rows) <= max_columns:
        return _swapped(pivot)
    return None


def _build(
    results: Sequence[CellResult], row_axes: tuple[str, ...], column_axes: tuple[str, ...]
) -> Pivot | None:
    rows: dict[AxisValues, None] = {}
    columns: dict[AxisValues, None] = {}
    grid: dict[tuple[AxisValues, AxisValues], int] = {}
    for index, result in enumerate(results):
        get = result.axes.get
        row = tuple(map(get, row_axes))
        column = tuple(map(get, column_axes))
        if (row, column) in grid:
            return None  # two cells with the same axes: a grid would hide one
        grid[row, column] = index
        rows.setdefault(row, None)
        columns.setdefault(column, None)
    return Pivot(row_axes, column_axes, tuple(rows), tuple(columns), grid)


def _swapped(pivot: Pivot) -> Pivot:
    """`pivot` with rows and columns swapped: what `_build` gives with the axes swapped (the
    same cells on the same squares, rows and columns in the same order of first appearance),
    without going through the cells again."""
    grid = {(column, row): index for (row, column), index in pivot.grid.items()}
    return Pivot(pivot.column_axes, pivot.row_axes, pivot.columns, pivot.rows, grid)
