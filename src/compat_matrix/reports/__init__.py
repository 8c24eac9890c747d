"""Reporters: the same verdicts as JSON, JUnit XML, Markdown, HTML and terminal text.

Every reporter takes the cell results in job order and keeps that order. `write_reports` renders
all four files before writing any, and writes each atomically, so a report directory never
holds a half-written or mismatched set.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from compat_matrix.reports._gc import paused_gc
from compat_matrix.reports._parallel import Forked, fork_pays
from compat_matrix.reports.baseline import BaselineDiff
from compat_matrix.reports.html import html_chunks, render_html
from compat_matrix.reports.json_report import CellLines, render_json, write_json
from compat_matrix.reports.junit import JUnitSource, render_junit
from compat_matrix.reports.markdown import render_markdown
from compat_matrix.reports.metadata_truth import MetadataFinding
from compat_matrix.reports.terminal import render_terminal
from compat_matrix.results import CellResult, fill_stage, new_stage, stage_with

__all__ = [
    "CellLines",
    "JUnitSource",
    "ReportPaths",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_terminal",
    "report_paths",
    "write_reports",
]


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    junit: Path
    markdown: Path
    html: Path


def report_paths(report_dir: Path) -> ReportPaths:
    """Where `write_reports` writes the four report files in `report_dir`."""
    return ReportPaths(
        json=report_dir / "compat.json",
        junit=report_dir / "junit.xml",
        markdown=report_dir / "compat.md",
        html=report_dir / "compat.html",
    )


def write_reports(
    report_dir: Path,
    name: str,
    results: Sequence[CellResult],
    *,
    preamble: str = "",
    source: JUnitSource | None = None,
    diff: BaselineDiff | None = None,
    lines: CellLines | None = None,
    metadata: Sequence[MetadataFinding] | None = None,
    changes: Callable[[], tuple[str, BaselineDiff | None]] | None = None,
) -> ReportPaths:
    """Write compat.json, junit.xml, compat.md and compat.html into `report_dir`.

    `preamble` is Markdown put at the top of compat.md (the changes since a baseline);
    `source` names the matrix file and each cell's line in junit.xml (for annotations);
    `diff`, the changes since a baseline, opens compat.html. The page links each cell's log
    where `logs/<id>.log` exists in `report_dir`. `metadata`: the metadata check's findings
    (None: not checked), in every report but junit.xml. `lines` holds compat.json's line of
    the results read from cell files (`collect(lines=True)`): copied, not encoded again, and
    compat.json is written piece by piece (at 10,000 cells it is the biggest file by far).
    `changes`, where given, makes `preamble` and `diff` (reading a baseline takes a while): it
    is called once a helper writes compat.json and junit.xml, which show neither.
    """
    logs = {path.name[: -len(".log")] for path in (report_dir / "logs").glob("*.log")}
    paths = report_paths(report_dir)

    def junit(out: BinaryIO) -> None:
        out.write(render_junit(name, results, source).encode("utf-8"))

    def markdown(out: BinaryIO) -> None:
        text = render_markdown(name, results, preamble=preamble, metadata=metadata)
        out.write(text.encode("utf-8"))

    def html(out: BinaryIO) -> None:
        for piece in html_chunks(name, results, logs=logs, diff=diff, metadata=metadata):
            out.write(piece.encode("utf-8"))

    def json(out: BinaryIO) -> None:
        write_json(out, name, results, lines, metadata=metadata)

    order = [paths.json, paths.junit, paths.markdown, paths.html]
    writers: dict[Path, Callable[[BinaryIO], None]] = dict(
        zip(order, (json, junit, markdown, html))
    )
    # Each file is staged (written to a temporary file) as soon as it is rendered, so only one
    # rendered text is in memory at a time; none replaces its report until all are staged.
    staged: list[tuple[Path, Path]] = []
    helper: _Helper | None = None
    with paused_gc():
        try:
            # The helper first; a helper that cannot start (no room for its files, no
            # process): all here. Its share: compat.json (mostly the kernel's copying) and
            # junit.xml, which show no baseline (`changes` is made here meanwhile); here
            # compat.html and compat.md, about as long.
            if fork_pays(len(results)):
                share = [paths.json, paths.junit]
                with contextlib.suppress(OSError):
                    helper = _Helper([(path, writers[path]) for path in share], replaces=order)
                    staged += helper.staged
            if changes is not None:  # the helper, a fork of this process, has no need of them
                preamble, diff = changes()
            stages: list[tuple[int, Callable[[BinaryIO], None]]] = []
            try:
                for path in order:
                    if helper is None or path not in helper.paths:
                        fd, tmp = new_stage(path)
                        staged.append((tmp, path))
                        stages.append((fd, writers[path]))
            except BaseException:
                for fd, _ in stages:
                    os.close(fd)
                raise
            _fill_in_turn(stages)
            if helper is not None and not helper.forked.finished():
                # It failed (or was killed): render its files here, for the same files or
                # the same error as without it.
                for tmp, (path, write) in helper.files.items():
                    index = staged.index((tmp, path))
                    tmp.unlink(missing_ok=True)
                    staged[index] = (stage_with(path, write), path)
            for tmp, path in sorted(staged, key=lambda item: order.index(item[1])):
                tmp.replace(path)
            if helper is not None:
                helper.forked.release()  # it frees the files replaced, after this returns
        finally:
            if helper is not None:
                helper.forked.stop()
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
    return paths


class _Helper:
    """A forked helper (`Forked`) that renders some report files into temporary files made
    here, so this process removes them whatever becomes of the helper. The fork shares the
    results in memory: nothing is copied or sent.

    It holds open the report files that `replaces` names as they are now, so that freeing
    them when they are replaced (70 ms for a 170 MB compat.json, more while the disk still
    writes it) is the helper's, once it is let go, not this process's."""

    def __init__(
        self,
        jobs: Sequence[tuple[Path, Callable[[BinaryIO], None]]],
        *,
        replaces: Sequence[Path] = (),
    ) -> None:
        made: list[tuple[int, Path]] = []
        held: list[int] = []
        try:
            for path, _ in jobs:
                made.append(new_stage(path))
            for path in replaces:
                with contextlib.suppress(OSError):  # none yet, unreadable, a link: freed here
                    held.append(os.open(path, _HOLD))

            def work() -> None:
                _fill_in_turn([(fd, write) for (fd, _), (_, write) in zip(made, jobs)])

            self.forked = Forked(work, hold=held)
        except BaseException:
            for fd in held:
                os.close(fd)
            for fd, tmp in made:
                os.close(fd)
                tmp.unlink(missing_ok=True)
            raise
        for fd, _ in made:
            os.close(fd)
        #: Each temporary file, with the report file it becomes and the writer that fills it.
        self.files = {tmp: job for (_, tmp), job in zip(made, jobs)}

    @property
    def staged(self) -> list[tuple[Path, Path]]:
        return [(tmp, path) for tmp, (path, _) in self.files.items()]

    @property
    def paths(self) -> list[Path]:
        """The report files it renders."""
        return [path for path, _ in self.files.values()]


#: How the report files replaced are held: never following a link, never waiting (a FIFO).
_HOLD = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _fill_in_turn(stages: Sequence[tuple[int, Callable[[BinaryIO], None]]]) -> None:
    """`fill_stage` of each staged file in turn, each but the last flushed to disk by a thread
    while the next is rendered; returns once every one is on disk, else raises the first
    failure. A file not reached is closed."""
    waits: list[Callable[[], None]] = []
    try:
        for fd, write in stages[:-1]:
            waits.append(_fill_meanwhile(fd, write))
        if stages:
            fd, write = stages[-1]
            fill_stage(fd, write)
    except BaseException:
        for fd, _ in stages[len(waits) + 1 :]:
            os.close(fd)
        raise
    finally:
        for wait in waits:
            wait()


def _fill_meanwhile(fd: int, write: Callable[[BinaryIO], None]) -> Callable[[], None]:
    """`fill_stage`, its flush to disk (an fsync: 0.1 s for the 170 MB of compat.json at
    10,000 cells) left to a thread; returns what waits for that and raises what it raised."""
    handle = os.fdopen(fd, "wb")
    try:
        write(handle)
        handle.flush()
    except BaseException:
        handle.close()
        raise
    failed: list[BaseException] = []

    def sync() -> None:
        try:
            with handle:
                os.fsync(handle.fileno())
        except BaseException as exc:  # noqa: BLE001 - raised again by `wait`
            failed.append(exc)

    thread = threading.Thread(target=sync, name="compat-matrix-fsync")
    thread.start()

    def wait() -> None:
        thread.join()
        if failed:
            raise failed[0]

    return wait
