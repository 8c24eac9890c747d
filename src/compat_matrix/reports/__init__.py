"""Reporters: the same verdicts as JSON, JUnit XML, Markdown, HTML and terminal text.

Every reporter takes the cell results in job order and keeps that order. `write_reports` renders
all four files before writing any, and writes each atomically, so a report directory never
holds a half-written or mismatched set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from compat_matrix.reports.baseline import BaselineDiff
from compat_matrix.reports.html import render_html
from compat_matrix.reports.json_report import render_json
from compat_matrix.reports.junit import JUnitSource, render_junit
from compat_matrix.reports.markdown import render_markdown
from compat_matrix.reports.metadata_truth import MetadataFinding
from compat_matrix.reports.terminal import render_terminal
from compat_matrix.results import CellResult, write_atomic

__all__ = [
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
    metadata: Sequence[MetadataFinding] | None = None,
) -> ReportPaths:
    """Write compat.json, junit.xml, compat.md and compat.html into `report_dir`.

    `preamble` is Markdown put at the top of compat.md (the changes since a baseline);
    `source` names the matrix file and each cell's line in junit.xml (for annotations);
    `diff`, the changes since a baseline, opens compat.html. The page links each cell's log
    where `logs/<id>.log` exists in `report_dir`. `metadata`: the metadata check's findings
    (None: not checked), in every report but junit.xml.
    """
    logs = {path.name[: -len(".log")] for path in (report_dir / "logs").glob("*.log")}
    paths = report_paths(report_dir)
    rendered = [
        (paths.json, render_json(name, results, metadata=metadata)),
        (paths.junit, render_junit(name, results, source)),
        (paths.markdown, render_markdown(name, results, preamble=preamble, metadata=metadata)),
        (paths.html, render_html(name, results, logs=logs, diff=diff, metadata=metadata)),
    ]
    for path, text in rendered:
        write_atomic(path, text)
    return paths
