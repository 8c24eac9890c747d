"""Merge cell results into the report files, safely while other cells are still writing.

Every cell re-publishes the merged report when it ends (under an exclusive lock, reading the
cell files inside the lock), so the report on disk is always complete for the cells that have
finished, even if the run is killed before its last step.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from compat_matrix.reports import ReportPaths, write_reports
from compat_matrix.results import CellResult, load_cell_results

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["collect", "publish", "report_lock"]


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
