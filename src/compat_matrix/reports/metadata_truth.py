"""Metadata findings: where the project's own metadata disagrees with the verdicts.

The check itself (run/metadata.py) reads the project's `Requires-Python` and classifiers and
compares them with the cells; this module is the finding's shape and how each report shows it,
so compat.json, compat.md, compat.html and the terminal say the same thing.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from compat_matrix.reports._verdicts import one_line

__all__ = [
    "FINDING_KINDS",
    "FindingKind",
    "MetadataFinding",
    "counted",
    "metadata_html",
    "metadata_markdown",
    "metadata_terminal",
]

FindingKind = Literal[
    "requires-python-broken",
    "outside-requires-python",
    "classifier-broken",
    "classifier-missing",
    "interpreter-mismatch",
    "skipped",
]
FINDING_KINDS: tuple[FindingKind, ...] = (
    "requires-python-broken",
    "outside-requires-python",
    "classifier-broken",
    "classifier-missing",
    "interpreter-mismatch",
    "skipped",
)


@dataclass(frozen=True)
class MetadataFinding:
    """One disagreement between the metadata and the verdicts (or why a check was skipped).

    `kind` says which: `requires-python-broken` (Requires-Python admits a Python whose cells
    all fail or are unsupported), `outside-requires-python` (the matrix tests a Python that
    Requires-Python excludes), `classifier-broken` (a `Programming Language :: Python :: X.Y`
    classifier for such a Python), `classifier-missing` (a Python whose cells pass has no
    classifier), `interpreter-mismatch` (a cell's interpreter is not its `python` axis) and
    `skipped` (a check that could not be made, and why: not a finding, never fails a run).
    """

    kind: FindingKind
    #: The project the metadata belongs to ("" for an interpreter mismatch).
    project: str
    #: The Python it is about (`3.13`), as the matrix's `python` axis names it.
    python: str
    message: str
    #: The evidence: the cells the finding rests on.
    cells: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "project": self.project,
            "python": self.python,
            "message": self.message,
            "cells": list(self.cells),
        }


_AGREE = "No disagreement between the project's Requires-Python, classifiers and the verdicts."


def counted(findings: Sequence[MetadataFinding]) -> list[MetadataFinding]:
    """The findings that are findings (not a note that a check was skipped)."""
    return [finding for finding in findings if finding.kind != "skipped"]


def _evidence(finding: MetadataFinding, limit: int = 4) -> str:
    shown = list(finding.cells[:limit])
    more = len(finding.cells) - len(shown)
    return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")


def metadata_markdown(findings: Sequence[MetadataFinding] | None) -> str:
    """compat.md's short "Metadata" section ("" when nothing was checked: None)."""
    if findings is None:
        return ""
    lines = ["", "## Metadata", ""]
    if not counted(findings):
        lines.append(_AGREE)
        lines.append("")
    for finding in findings:
        text = one_line(finding.message, 400).replace("|", "\\|")
        evidence = f" (cells: {_evidence(finding)})" if finding.cells else ""
        lines.append(f"- **{finding.kind}**: {text}{evidence}")
    return "\n".join(lines) + "\n"


def metadata_html(findings: Sequence[MetadataFinding] | None) -> str:
    """compat.html's small metadata section, escaped ("" when nothing was checked: None)."""
    if findings is None:
        return ""
    agree = f"<p>{html.escape(_AGREE)}</p>" if not counted(findings) else ""
    items = "".join(
        f"<li><strong>{html.escape(f.kind)}</strong>: {html.escape(one_line(f.message, 400))}"
        + (f" <small>({html.escape(_evidence(f))})</small>" if f.cells else "")
        + "</li>"
        for f in findings
    )
    listed = f"<ul>{items}</ul>" if items else ""
    return f'<section class="metadata"><h2>Metadata</h2>{agree}{listed}</section>'


def metadata_terminal(findings: Sequence[MetadataFinding]) -> str:
    """One line per finding, for the end of a run's terminal output."""
    return "".join(
        f"metadata: {finding.kind}: {one_line(finding.message, 300)}\n" for finding in findings
    )
