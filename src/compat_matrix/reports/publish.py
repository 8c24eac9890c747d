"""Merge cell results into the report files, safely while other cells are still writing.

`publish_run` is the one publish path of a run, whichever front door started it: under an
exclusive lock it reads the cell files, stands in a `missing` result for each selected cell that
wrote none (when the run is over), compares with a baseline if asked, and rewrites every report
file. While a run is going on it publishes what has finished, so the report on disk is complete
for those cells even if the run is killed before its last step.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compat_matrix.reports import JUnitSource, ReportPaths, write_reports
from compat_matrix.reports.baseline import (
    BaselineDiff,
    diff_results,
    load_baseline,
    render_changes_markdown,
)
from compat_matrix.reports.baseline import render_diff_json as _render_diff_json
from compat_matrix.results import CellResult, load_cell_results, write_atomic

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from compat_matrix.matrix.model import Cell

__all__ = ["Published", "collect", "publish", "publish_run", "report_lock"]


@contextmanager
def report_lock(report_dir: Path) -> Iterator[None]:
    report_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(report_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _previous_order(directory: Path) -> list[str]:
    try:
        document = json.loads((directory / "compat.json").read_text(encoding="utf-8"))
        return [str(cell["id"]) for cell in document.get("cells", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def collect(directories: Sequence[Path], order: Sequence[str] | None = None) -> list[CellResult]:
    """Cell results from `directories` (a later directory wins for the same id).

    Ordered by `order` when given (job order; ids not in it are dropped), else by the order of
    each directory's previous compat.json, then by id.
    """
    by_id: dict[str, CellResult] = {}
    ranked: dict[str, int] = {}
    for directory in directories:
        for cell_id in _previous_order(directory):
            ranked.setdefault(cell_id, len(ranked))
        for result in load_cell_results(directory):
            by_id[result.id] = result
    if order is not None:
        return [by_id[i] for i in order if i in by_id]
    return sorted(by_id.values(), key=lambda r: (ranked.get(r.id, len(ranked)), r.id))


def publish(
    report_dir: Path, name: str, order: Sequence[str] | None = None
) -> tuple[ReportPaths, list[CellResult]]:
    """Re-read every cell result in `report_dir` and rewrite the merged report files."""
    with report_lock(report_dir):
        results = collect([report_dir], order)
        return write_reports(report_dir, name, results), results


@dataclass(frozen=True)
class Published:
    """What a publish wrote: the files, the results in job order, and what was missing."""

    paths: ReportPaths
    results: list[CellResult]
    #: Ids of selected cells with no result of their own (stood in for, when `missing` was given).
    missing: list[str]
    diff: BaselineDiff | None = None


def publish_run(
    report_dir: Path,
    name: str,
    cells: Sequence[Cell],
    *,
    missing: Callable[[Cell], CellResult] | None = None,
    baseline: Path | None = None,
    matrix_path: Path | None = None,
) -> Published:
    """Rewrite the report of `cells` (the run's selection, in job order) from their cell files.

    `missing` makes the result of a cell that wrote none (the run is over: a cell without a
    file ended abnormally); without it such cells are left out (other cells are still running).
    `baseline`, an earlier compat.json (or a folder holding one), adds the changes since it to
    compat.md and writes diff.json. `matrix_path` makes junit.xml name the matrix file and the
    line of each cell (where consumers put annotations).
    """
    with report_lock(report_dir):
        found = {r.id: r for r in collect([report_dir], [cell.id for cell in cells])}
        absent = [cell for cell in cells if cell.id not in found]
        results = []
        for cell in cells:
            if cell.id in found:
                results.append(found[cell.id])
            elif missing is not None:
                results.append(missing(cell))
        diff = None
        if baseline is not None:
            baseline_name, before = load_baseline(baseline)
            diff = diff_results(before, results, baseline_name)
        preamble = render_changes_markdown(diff) if diff is not None else ""
        source = JUnitSource.for_matrix(matrix_path, cells) if matrix_path is not None else None
        paths = write_reports(
            report_dir, name, results, preamble=preamble, source=source, diff=diff
        )
        if diff is not None:
            write_atomic(report_dir / "diff.json", _render_diff_json(diff))
    return Published(paths, results, [cell.id for cell in absent], diff)
