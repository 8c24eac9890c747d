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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from compat_matrix.reports import JUnitSource, ReportPaths, report_paths, write_reports
from compat_matrix.reports._verdicts import one_line
from compat_matrix.reports.baseline import (
    BaselineDiff,
    diff_results,
    load_baseline,
    render_changes_markdown,
)
from compat_matrix.reports.baseline import render_diff_json as _render_diff_json
from compat_matrix.reports.metadata_truth import MetadataFinding
from compat_matrix.results import CellResult, read_cell_result, write_atomic

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from compat_matrix.matrix.model import Cell

__all__ = ["Collected", "Published", "collect", "publish", "publish_run", "report_lock"]


@contextmanager
def report_lock(report_dir: Path) -> Iterator[None]:
    """Hold the report folder while merging; a folder that cannot hold a lock file (full,
    read-only) is merged unlocked: the writes fail then anyway, and say so."""
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(report_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        try:
            fd = os.open(report_dir / ".lock", os.O_RDONLY)
        except OSError:
            fd = -1
    try:
        if fd >= 0:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd >= 0:
            os.close(fd)


def _previous_order(directory: Path) -> list[str]:
    try:
        document = json.loads((directory / "compat.json").read_text(encoding="utf-8"))
        return [str(cell["id"]) for cell in document.get("cells", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


@dataclass(frozen=True)
class Collected:
    """The cell results of some report folders, and the cell files that could not be read."""

    results: list[CellResult]
    #: Cell files that are not a readable CellResult (truncated, not JSON, not ours), by path.
    unreadable: list[Path]


def _read_cells(directory: Path) -> tuple[list[CellResult], dict[Path, str]]:
    """Every cell file under `directory/cells` (or `directory`): results, and why others failed."""
    cells_dir = directory / "cells" if (directory / "cells").is_dir() else directory
    try:
        with os.scandir(cells_dir) as entries:
            names = sorted(entry.name for entry in entries if entry.name.endswith(".json"))
    except OSError:
        return [], {}
    results: list[CellResult] = []
    failed: dict[Path, str] = {}
    for name in names:
        path = cells_dir / name
        try:
            results.append(read_cell_result(path))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if isinstance(exc, KeyError):
                reason = f"no {exc} field"
            failed[path] = f"{type(exc).__name__}: {one_line(reason, 200)}"
    return results, failed


def collect(
    directories: Sequence[Path],
    order: Sequence[str] | None = None,
    *,
    stand_in: Callable[[str, Path, str], CellResult] | None = None,
) -> Collected:
    """Cell results from `directories` (a later directory wins for the same id).

    Ordered by `order` when given (job order; ids not in it are dropped), else by the order of
    each directory's previous compat.json, then by id. A cell file that cannot be read is
    named in `unreadable`, and, when `stand_in` is given and no readable file has its id, it
    counts as the cell that `stand_in` makes of it (an `error`): nothing is lost silently.
    """
    by_id: dict[str, CellResult] = {}
    ranked: dict[str, int] = {}
    failed: dict[Path, str] = {}
    for directory in directories:
        for cell_id in _previous_order(directory):
            ranked.setdefault(cell_id, len(ranked))
        results, unreadable = _read_cells(directory)
        for result in results:
            by_id[result.id] = result
        failed.update(unreadable)
    wanted = set(order) if order is not None else None
    if stand_in is not None:
        for path, reason in failed.items():
            if path.stem not in by_id and (wanted is None or path.stem in wanted):
                by_id[path.stem] = stand_in(path.stem, path, reason)
    if order is not None:
        named = [path for path in failed if wanted is None or path.stem in wanted]
        return Collected([by_id[i] for i in order if i in by_id], named)
    ordered = sorted(by_id.values(), key=lambda r: (ranked.get(r.id, len(ranked)), r.id))
    return Collected(ordered, list(failed))


def publish(
    report_dir: Path, name: str, order: Sequence[str] | None = None
) -> tuple[ReportPaths, list[CellResult]]:
    """Re-read every cell result in `report_dir` and rewrite the merged report files."""
    with report_lock(report_dir):
        results = collect([report_dir], order).results
        return write_reports(report_dir, name, results), results


@dataclass(frozen=True)
class Published:
    """What a publish wrote: the files, the results in job order, and what was missing."""

    paths: ReportPaths
    results: list[CellResult]
    #: Ids of selected cells with no result of their own (stood in for, when `missing` was given).
    missing: list[str]
    diff: BaselineDiff | None = None
    #: Cell files that could not be read (each stands in as an `error` cell when the run is over).
    unreadable: list[Path] = field(default_factory=list)
    #: Why the report files could not be written ("" when they were): the disk is full, ...
    write_error: str = ""
    #: The metadata check's findings (None: not checked), as the reports show them.
    metadata: list[MetadataFinding] | None = None


def publish_results(
    report_dir: Path,
    name: str,
    results: Sequence[CellResult],
    *,
    baseline: Path | None = None,
    source: JUnitSource | None = None,
    metadata: Sequence[MetadataFinding] | None = None,
    annotate: Callable[[BaselineDiff, list[CellResult]], BaselineDiff] | None = None,
) -> tuple[ReportPaths, BaselineDiff | None, str]:
    """Write the four reports of `results` (and diff.json against `baseline`) into `report_dir`.

    The one place reports are written, for a run (`publish_run`) and for `compat-matrix report`.
    Returns the paths, the diff, and why the files could not be written ("" when they were):
    a full or read-only disk must still let the run end with its table. `metadata`, the
    metadata check's findings (None: not checked), goes into compat.json, compat.md and
    compat.html. `annotate` completes the diff before it is written, given the baseline's
    cells (the culprit search).
    """
    diff = None
    if baseline is not None:
        baseline_name, before = load_baseline(baseline)
        diff = diff_results(before, list(results), baseline_name)
        if annotate is not None and diff.regressions:
            diff = annotate(diff, before)
    preamble = render_changes_markdown(diff) if diff is not None else ""
    try:
        paths = write_reports(
            report_dir,
            name,
            list(results),
            preamble=preamble,
            source=source,
            diff=diff,
            metadata=metadata,
        )
        if diff is not None:
            write_atomic(report_dir / "diff.json", _render_diff_json(diff))
    except OSError as exc:
        return report_paths(report_dir), diff, exc.strerror or str(exc)
    return paths, diff, ""


def publish_run(
    report_dir: Path,
    name: str,
    cells: Sequence[Cell],
    *,
    missing: Callable[[Cell], CellResult] | None = None,
    unreadable: Callable[[Cell, Path, str], CellResult] | None = None,
    baseline: Path | None = None,
    matrix_path: Path | None = None,
    metadata_check: Callable[[Sequence[CellResult]], list[MetadataFinding] | None] | None = None,
) -> Published:
    """Rewrite the report of `cells` (the run's selection, in job order) from their cell files.

    `missing` makes the result of a cell that wrote none (the run is over: a cell without a
    file ended abnormally); without it such cells are left out (other cells are still running).
    `unreadable` makes the result of a cell whose file cannot be read (truncated, not JSON).
    `baseline`, an earlier compat.json (or a folder holding one), adds the changes since it to
    compat.md and writes diff.json. `matrix_path` makes junit.xml name the matrix file and the
    line of each cell (where consumers put annotations). `metadata_check` compares the
    project's metadata with the results (run/metadata.py); its findings go into the reports.
    """
    by_id = {cell.id: cell for cell in cells}

    def stand_in(cell_id: str, path: Path, reason: str) -> CellResult:
        assert unreadable is not None  # noqa: S101 - only passed on when given
        return unreadable(by_id[cell_id], path, reason)

    with report_lock(report_dir):
        collected = collect(
            [report_dir],
            [cell.id for cell in cells],
            stand_in=stand_in if unreadable is not None else None,
        )
        found = {r.id: r for r in collected.results}
        absent = [cell for cell in cells if cell.id not in found]
        results = []
        for cell in cells:
            if cell.id in found:
                results.append(found[cell.id])
            elif missing is not None:
                results.append(missing(cell))
        source = JUnitSource.for_matrix(matrix_path, cells) if matrix_path is not None else None
        findings = metadata_check(results) if metadata_check is not None else None
        paths, diff, write_error = publish_results(
            report_dir, name, results, baseline=baseline, source=source, metadata=findings
        )
    return Published(
        paths,
        results,
        [cell.id for cell in absent],
        diff,
        collected.unreadable,
        write_error,
        findings,
    )
