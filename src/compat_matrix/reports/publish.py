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
import marshal
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Union

from compat_matrix.reports import JUnitSource, ReportPaths, report_paths, write_reports
from compat_matrix.reports._gc import paused_gc
from compat_matrix.reports._parallel import Forked, fork_pays
from compat_matrix.reports._verdicts import one_line
from compat_matrix.reports.baseline import (
    Baseline,
    BaselineDiff,
    diff_results,
    render_changes_markdown,
)
from compat_matrix.reports.baseline import render_diff_json as _render_diff_json
from compat_matrix.reports.json_report import CellLines, identity
from compat_matrix.reports.metadata_truth import MetadataFinding
from compat_matrix.results import (
    CELL_KEYS,
    SUMMARY_SUFFIX,
    CellResult,
    cell_json,
    from_cell_fields,
    read_summary,
    reported_details,
    write_atomic,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from compat_matrix.matrix.model import Cell

__all__ = [
    "CellLines",
    "Collected",
    "Published",
    "collect",
    "publish",
    "publish_run",
    "report_lock",
]


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
    """The cell ids of `directory`'s compat.json, in its order."""
    try:
        raw = (directory / "compat.json").read_bytes()
        fast = _ids_of_lines(raw)
        if fast is not None:
            return fast
        document = json.loads(raw.decode("utf-8"))
        return [str(cell["id"]) for cell in document.get("cells", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def _ids_of_lines(raw: bytes) -> list[str] | None:
    """The ids of a compat.json laid out as `render_json` writes it (a line per cell, each
    starting with its id), without parsing every cell; None for any other layout."""
    lines = raw.split(b"\n")
    if len(lines) < 4 or not lines[0].startswith(b'{"schema": ') or lines[-2:] != [b"]}", b""]:
        return None
    if not lines[0].endswith(b', "cells": ['):
        return None
    ids = []
    for line in lines[1:-2]:
        if not line.startswith(b'{"id": "'):
            return None
        text = line.decode("utf-8")
        ids.append(json.decoder.scanstring(text, 8)[0])  # type: ignore[attr-defined]
    return ids


#: The keys of a probe's JSON, in the order `CellResult.to_dict` writes them.
_PROBE_KEYS = ("probe", "target", "status", "category", "message", "hint", "duration_s", "details")
_PYTHON_KEYS = ("version", "implementation", "abi")
_EXPECTATION_KEYS = ("status", "met", "reason")


_NEWLINE = ord("\n")


def _strings(mapping: object) -> bool:
    return type(mapping) is dict and all(type(v) is str for v in mapping.values())


def _canonical_fields(data: Any) -> list[Any] | None:
    """The fields of a parsed cell file (as `cell_fields` gives them) where the harness wrote
    it (`cell_json`): every key where `to_dict` puts it, and every value of its type
    (`_valid_fields`), so that `from_cell_fields` makes the result `CellResult.from_dict`
    would, and `cell_json` of it is exactly the file. None for any other."""
    if type(data) is not dict or tuple(data) != CELL_KEYS:
        return None
    python, expectation, probes = data["python"], data["expectation"], data["probes"]
    if not (
        (python is None or (type(python) is dict and tuple(python) == _PYTHON_KEYS))
        and (
            expectation is None
            or (type(expectation) is dict and tuple(expectation) == _EXPECTATION_KEYS)
        )
        and type(probes) is list
        and all(type(p) is dict and tuple(p) == _PROBE_KEYS for p in probes)
    ):
        return None
    # Its keys are in `to_dict`'s order: each dict's values are taken in one go, not looked
    # up one by one.
    fields = list(data.values())
    fields[6] = None if python is None else list(python.values())
    fields[8] = [list(p.values()) for p in probes]
    fields[10] = None if expectation is None else list(expectation.values())
    return fields if _valid_fields(fields) else None


def _slim_fields(fields: list[Any], shared: dict[Any, Any]) -> list[Any]:
    """`fields` with only the probe details a reporter reads, and one copy of each probe's
    texts in `shared`: they repeat from cell to cell ("pass", "environment", one hint for
    every cell of a version), so 10,000 cells fit in far less memory."""
    one = shared.setdefault
    fields[8] = [
        (
            one(probe, probe),
            one(target, target),
            one(status, status),
            one(category, category) if type(category) is str else category,
            one(message, message),
            one(hint, hint),
            seconds,
            reported_details(details) if details else details,
        )
        for probe, target, status, category, message, hint, seconds, details in fields[8]
    ]
    return fields


def _valid_fields(fields: Any) -> bool:
    """Whether `fields` (a summary's, or a cell file's values) are the values of a result,
    each of the type `cell_fields` gives it (read back from JSON: lists for its tuples), so
    that `from_cell_fields` makes the result `CellResult.from_dict` would of its cell file.
    Checked by position: a summary has no keys."""
    if type(fields) is not list or len(fields) != len(CELL_KEYS):
        return False
    (
        cell_id,
        axes,
        status,
        category,
        message,
        hint,
        python,
        resolved,
        probes,
        durations,
        expectation,
        fingerprint,
        lock,
        gpu_unverified,
        latent,
        static_only,
        indexes,
        resolution,
        as_of,
        prerelease,
    ) = fields
    if not (
        type(cell_id) is str
        and type(status) is str
        and (category is None or type(category) is str)
        and type(message) is str
        and type(hint) is str
        and type(fingerprint) is str
        and (lock is None or type(lock) is str)
        and _strings(axes)
        and _strings(resolved)
        and type(durations) is dict
        and all(type(v) is float for v in durations.values())
        and (python is None or (type(python) is list and len(python) == 3))
        and (expectation is None or (type(expectation) is list and len(expectation) == 3))
        and type(gpu_unverified) is bool
        and type(latent) is bool
        and type(static_only) is bool
        and type(indexes) is list
        and all(type(v) is str for v in indexes)
        and type(resolution) is str
        and resolution != ""
        and (as_of is None or type(as_of) is str)
        and (prerelease is None or type(prerelease) is str)
        and type(probes) is list
    ):
        return False
    if python is not None and not all(type(v) is str for v in python):
        return False
    for probe in probes:
        if type(probe) is not list or len(probe) != len(_PROBE_KEYS):
            return False
        name, target, probe_status, probe_category, probe_message, probe_hint, seconds, details = (
            probe
        )
        if not (
            type(name) is str
            and type(target) is str
            and type(probe_status) is str
            and (probe_category is None or type(probe_category) is str)
            and type(probe_message) is str
            and type(probe_hint) is str
            and type(seconds) is float
            and type(details) is dict
        ):
            return False
    return True


def _slim(result: CellResult) -> CellResult:
    """`result` without the probe details no reporter reads (loaded files, tracebacks...)."""
    for probe in result.probes:
        if probe.details:
            probe.details = reported_details(probe.details)
    return result


@dataclass(frozen=True)
class Collected:
    """The cell results of some report folders, and the cell files that could not be read."""

    results: list[CellResult]
    #: Cell files that are not a readable CellResult (truncated, not JSON, not ours), by path.
    unreadable: list[Path]
    #: compat.json's line of each result read (None unless `collect(lines=True)`).
    lines: CellLines | None = None


#: A cell file to read: its folder, its name, and its summary's path ("": none, or not wanted).
_File = tuple[str, str, str]


def _listing(directory: Path, *, summaries: bool) -> list[_File]:
    """The cell files under `directory/cells` (or `directory`), by name, with the path of each
    one's summary where `summaries` are wanted and it has one."""
    cells_dir = directory / "cells" if (directory / "cells").is_dir() else directory
    try:
        with os.scandir(cells_dir) as entries:
            names = {entry.name for entry in entries}
    except OSError:
        return []
    folder = str(cells_dir)
    files = []
    for name in sorted(name for name in names if name.endswith(".json")):
        summary = name[: -len(".json")] + SUMMARY_SUFFIX
        has = summaries and summary in names
        files.append((folder, name, os.path.join(folder, summary) if has else ""))  # noqa: PTH118
    return files


def _parse(folder: str, name: str, summary: str) -> tuple[int, Any, bool, tuple[int, ...]]:
    """A cell file's line length (its bytes without the newlines that end them: never
    copied), what it holds, whether the harness wrote it (then what it holds is the cell's
    `cell_fields`, else the parsed JSON), and its `identity`.

    Where `summary` is the file's own (`read_summary`), its fields, with only the probe
    details reporters read, stand for the file: the file itself is not parsed."""
    raw, seen = _read(f"{folder}{os.sep}{name}")
    end = len(raw)
    while end and raw[end - 1] == _NEWLINE:
        end -= 1
    copyable = raw.isascii() and raw.find(b"\n", 0, end) < 0
    if summary and copyable:
        fields = read_summary(summary, raw)
        if _valid_fields(fields):
            return end, fields, True, seen
    data = json.loads(raw.decode("utf-8"))
    fields = _canonical_fields(data) if copyable else None
    if fields is not None:
        return end, fields, True, seen
    return end, data, False, seen


def _read(path: str) -> tuple[bytes, tuple[int, ...]]:
    """A file's bytes, read to its end, and its `identity` (taken after reading).

    Bytes, decoded later in one go (a TextIOWrapper per file costs as much as parsing it),
    through the descriptor alone: a file object per file cost a third more than the
    reading itself at 10,000 files. One read takes a file whose size is known, and shows
    where it ends (it did not grow meanwhile)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        raw = os.read(fd, size + 1)
        if len(raw) > size:  # it grew: the rest, to the end, as `read()` reads it
            chunks = [raw]
            while chunk := os.read(fd, _CHUNK):
                chunks.append(chunk)
            raw = b"".join(chunks)
        return raw, identity(os.fstat(fd))
    finally:
        os.close(fd)


_CHUNK = 1 << 16


def _why(exc: Exception) -> str:
    """What `collect` says of a cell file it cannot read."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if isinstance(exc, KeyError):
        reason = f"no {exc} field"
    return f"{type(exc).__name__}: {one_line(reason, 200)}"


#: What reading a cell file can raise for a file that is not a readable cell result.
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, AttributeError)

#: A cell file's outcome: its result, or the path and why it cannot be read.
_Outcome = Union[CellResult, tuple[Path, str]]


def _read_files(
    files: Sequence[_File],
    lines: CellLines | None,
    *,
    slim: bool,
    shared: dict[Any, Any],
) -> list[_Outcome]:
    """Each of `files` parsed once, in order; its compat.json line goes to `lines` (the file
    itself when the harness wrote it), and with `slim` only the details a reporter reads are
    kept."""
    outcomes: list[_Outcome] = []
    for folder, name, summary in files:
        try:
            end, data, fast, seen = _parse(folder, name, summary)
            if fast:
                result = from_cell_fields(_slim_fields(data, shared) if slim else data)
            else:
                result = CellResult.from_dict(data)
        except _UNREADABLE as exc:
            outcomes.append((Path(folder, name), _why(exc)))
            continue
        if lines is not None:
            if fast:
                lines.add_file(result.id, f"{folder}{os.sep}{name}", end, seen)
            else:
                lines.add(result.id, cell_json(result).encode("ascii"))
        outcomes.append(_slim(result) if slim and not fast else result)
    return outcomes


#: The share of the cell files a helper reads: it parses them and sends their results, and
#: this process reads the rest meanwhile, then takes the helper's (`from_cell_fields`: a fifth
#: of what reading one costs). Half had both end soonest: the helper pays for the pages it
#: writes (each is copied), this process for making its results again.
_HELPER_SHARE = 0.5


def _read_files_in_two(
    files: Sequence[_File],
    lines: CellLines | None,
    *,
    slim: bool,
    shared: dict[Any, Any],
) -> list[_Outcome]:
    """`_read_files`, the last files read by a forked helper meanwhile (`fork_pays`).

    The helper parses its files and sends, marshalled, the fields of each (`cell_fields`) and its
    file's `identity` (or the result `from_dict` made and its line, or why it cannot be read);
    this process makes their results again from that. When the helper fails, its files are
    read here.
    """
    split = len(files) - int(len(files) * _HELPER_SHARE)
    mine, theirs = files[:split], files[split:]
    try:
        sent = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    except OSError:
        return _read_files(files, lines, slim=slim, shared=shared)
    with sent:
        helper = Forked(lambda: _send_outcomes(theirs, sent, lines=lines is not None, slim=slim))
        try:
            outcomes = _read_files(mine, lines, slim=slim, shared=shared)
            done = helper.finished()
            helper.release()  # what it sent is in `sent` already
        finally:
            helper.stop()
        if not done:
            return outcomes + _read_files(theirs, lines, slim=slim, shared=shared)
        sent.seek(0)
        # Written by the helper, a fork of this process, into a file only the two can reach.
        received = marshal.loads(sent.read())  # noqa: S302
    for (folder, name, _), (kind, payload, line, size) in zip(theirs, received):
        result: _Outcome
        if kind == _SENT_CANONICAL:
            result = from_cell_fields(payload)
            if lines is not None:
                lines.add_file(result.id, f"{folder}{os.sep}{name}", size, line)
        elif kind == _SENT_RESULT:
            result = CellResult.from_dict(payload)
            if lines is not None:
                lines.add(result.id, line)
        else:
            outcomes.append((Path(folder, name), payload))
            continue
        outcomes.append(result)
    return outcomes


_SENT_CANONICAL, _SENT_RESULT, _SENT_UNREADABLE = 0, 1, 2


def _send_outcomes(files: Sequence[_File], sent: BinaryIO, *, lines: bool, slim: bool) -> None:
    """The helper's part of `_read_files_in_two`: each file's outcome to `sent`, with what
    makes its compat.json line when `lines` (the file's `identity` and the length of its
    line, or the line of a result encoded again)."""
    outcomes: list[tuple[int, Any, Any, int]] = []
    shared: dict[Any, Any] = {}
    for folder, name, summary in files:
        try:
            end, data, fast, seen = _parse(folder, name, summary)
            if fast:
                fields = _slim_fields(data, shared) if slim else data
                outcomes.append((_SENT_CANONICAL, fields, seen, end))
            else:
                result = CellResult.from_dict(data)
                line = cell_json(result).encode("ascii") if lines else b""
                payload = (_slim(result) if slim else result).to_dict()
                outcomes.append((_SENT_RESULT, payload, line, 0))
        except _UNREADABLE as exc:
            outcomes.append((_SENT_UNREADABLE, _why(exc), None, 0))
    sent.write(marshal.dumps(outcomes))
    sent.flush()


def collect(
    directories: Sequence[Path],
    order: Sequence[str] | None = None,
    *,
    stand_in: Callable[[str, Path, str], CellResult] | None = None,
    lines: bool = False,
    slim: bool = False,
) -> Collected:
    """Cell results from `directories` (a later directory wins for the same id).

    Ordered by `order` when given (job order; ids not in it are dropped), else by the order of
    each directory's previous compat.json, then by id. A cell file that cannot be read is
    named in `unreadable`, and, when `stand_in` is given and no readable file has its id, it
    counts as the cell that `stand_in` makes of it (an `error`): nothing is lost silently.
    `lines` keeps each result's compat.json line (for `write_reports`); `slim` keeps only the
    probe details a reporter reads (a 10,000-cell report in a few hundred MB), and takes them
    from each cell file's summary where it has one (the file itself is then only copied).
    """
    by_id: dict[str, CellResult] = {}
    ranked: dict[str, int] = {}
    failed: dict[Path, str] = {}
    spool = CellLines(encodable=not slim) if lines else None
    shared: dict[Any, Any] = {}
    files: list[_File] = []
    for directory in directories:
        if order is None:  # only then does the previous order count
            for cell_id in _previous_order(directory):
                ranked.setdefault(cell_id, len(ranked))
        files += _listing(directory, summaries=slim)
    with paused_gc():
        # Only `slim`: the helper then sends little (18 MB for 10,000 cells, not every
        # detail of every probe).
        if slim and fork_pays(len(files)):
            outcomes = _read_files_in_two(files, spool, slim=slim, shared=shared)
        else:
            outcomes = _read_files(files, spool, slim=slim, shared=shared)
    for outcome in outcomes:  # in the order read: a later directory wins for the same id
        if isinstance(outcome, CellResult):
            by_id[outcome.id] = outcome
        else:
            failed[outcome[0]] = outcome[1]
    wanted = set(order) if order is not None else None
    if stand_in is not None:
        for path, reason in failed.items():
            if path.stem not in by_id and (wanted is None or path.stem in wanted):
                by_id[path.stem] = stand_in(path.stem, path, reason)
    if order is not None:
        named = [path for path in failed if wanted is None or path.stem in wanted]
        return Collected([by_id[i] for i in order if i in by_id], named, spool)
    ordered = sorted(by_id.values(), key=lambda r: (ranked.get(r.id, len(ranked)), r.id))
    return Collected(ordered, list(failed), spool)


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
    baseline: Path | Baseline | None = None,
    source: JUnitSource | None = None,
    lines: CellLines | None = None,
    metadata: Sequence[MetadataFinding] | None = None,
    annotate: Callable[[BaselineDiff, list[CellResult]], BaselineDiff] | None = None,
) -> tuple[ReportPaths, BaselineDiff | None, str]:
    """Write the four reports of `results` (and diff.json against `baseline`) into `report_dir`.

    The one place reports are written, for a run (`publish_run`) and for `compat-matrix report`.
    Returns the paths, the diff, and why the files could not be written ("" when they were):
    a full or read-only disk must still let the run end with its table. `metadata`, the
    metadata check's findings (None: not checked), goes into compat.json, compat.md and
    compat.html. `annotate` completes the diff before it is written, given the baseline's
    cells (the culprit search). `baseline` is a compat.json (or a folder holding one), or a
    `Baseline` loading meanwhile.
    """
    found: list[BaselineDiff] = []
    before_loaded = Baseline(baseline) if isinstance(baseline, Path) else baseline

    def changes() -> tuple[str, BaselineDiff | None]:
        """compat.md's preamble and the diff: the changes since `baseline`."""
        if before_loaded is None:
            return "", None
        baseline_name, before = before_loaded.load()
        diff = diff_results(before, list(results), baseline_name)
        if annotate is not None and diff.regressions:
            diff = annotate(diff, before)
        found.append(diff)
        return render_changes_markdown(diff), diff

    # The baseline is read while a helper writes the reports that do not show it; but the
    # culprit search (it runs cells, and can fail as a write does) before anything is written.
    later = baseline is not None and annotate is None
    preamble, diff = ("", None) if later else changes()
    try:
        paths = write_reports(
            report_dir,
            name,
            list(results),
            preamble=preamble,
            source=source,
            diff=diff,
            lines=lines,
            metadata=metadata,
            changes=changes if later else None,
        )
        diff = found[0] if found else None
        if diff is not None:
            write_atomic(report_dir / "diff.json", _render_diff_json(diff))
    except OSError as exc:
        return report_paths(report_dir), found[0] if found else None, exc.strerror or str(exc)
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
            lines=True,
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
        try:
            paths, diff, write_error = publish_results(
                report_dir,
                name,
                results,
                baseline=baseline,
                source=source,
                lines=collected.lines,
                metadata=findings,
            )
        finally:
            if collected.lines is not None:
                collected.lines.close()
    return Published(
        paths,
        results,
        [cell.id for cell in absent],
        diff,
        collected.unreadable,
        write_error,
        findings,
    )
