"""compat.html: one self-contained page with the grid in colour and every cell's details.

The page loads nothing (no CSS, script, font or image from anywhere), so it opens from an
artifact download or a file share offline. Its Content-Security-Policy forbids scripts and
remote loads outright: the status filter is plain CSS (`:checked` checkboxes), and text from
probes, which can be anything, is escaped by jinja2's autoescape on top of that.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import jinja2

from compat_matrix.results import CellResult

from ._pivot import choose_pivot
from ._verdicts import (
    KINDS,
    SUMMARY_ORDER,
    Kind,
    clean_text,
    count_kinds,
    kind_of,
    label,
    one_line,
    short_reason,
)
from .junit import format_time

__all__ = ["render_html"]

#: Longer messages are cut on the page (compat.json keeps them whole).
_TEXT_LIMIT = 20_000
_UNSAFE_ANCHOR = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class _ProbeView:
    name: str
    status: str
    category: str
    message: str
    hint: str
    duration: str


@dataclass(frozen=True)
class _CellView:
    anchor: str
    id: str
    kind: Kind
    label: str
    reason: str
    status: str
    category: str
    message: str
    hint: str
    expectation: str
    python: str
    axes: list[tuple[str, str]]
    resolved: list[tuple[str, str]]
    durations: list[tuple[str, str]]
    probes: list[_ProbeView]


@dataclass(frozen=True)
class _GridRow:
    label: str
    cells: list[_CellView | None]


def _text(text: str) -> str:
    cleaned = clean_text(text).strip()
    if len(cleaned) > _TEXT_LIMIT:
        return cleaned[:_TEXT_LIMIT] + "\n… (truncated, see compat.json)"
    return cleaned


def _views(results: Sequence[CellResult]) -> list[_CellView]:
    anchors: set[str] = set()
    views = []
    for index, result in enumerate(results):
        anchor = "cell-" + _UNSAFE_ANCHOR.sub("_", one_line(result.id, 200))
        if anchor in anchors:
            anchor = f"{anchor}-{index}"
        anchors.add(anchor)
        expectation = ""
        if result.expectation is not None:
            outcome = "met" if result.expectation.met else "NOT met"
            expectation = f"{result.expectation.status} ({outcome})"
            if result.expectation.reason:
                expectation += f": {result.expectation.reason}"
        python = ""
        if result.python is not None:
            info = result.python
            python = " ".join(part for part in (info.implementation, info.version) if part)
            if info.abi:
                python += f" (abi {info.abi})"
        views.append(
            _CellView(
                anchor=anchor,
                id=one_line(result.id, 200),
                kind=KINDS[kind_of(result)],
                label=label(result),
                reason=short_reason(result, 200),
                status=result.status,
                category=one_line(result.category or "", 200),
                message=_text(result.message),
                hint=_text(result.hint),
                expectation=one_line(expectation, 500),
                python=one_line(python, 200),
                axes=[(one_line(k, 200), one_line(v, 500)) for k, v in result.axes.items()],
                resolved=[(one_line(k, 200), one_line(v, 500)) for k, v in result.resolved.items()],
                durations=[(one_line(k, 50), format_time(v)) for k, v in result.durations.items()],
                probes=[
                    _ProbeView(
                        name=one_line(f"{probe.probe} {probe.target}", 300),
                        status=one_line(probe.status, 50),
                        category=one_line(probe.category or "", 200),
                        message=_text(probe.message),
                        hint=_text(probe.hint),
                        duration=format_time(probe.duration_s),
                    )
                    for probe in result.probes
                ],
            )
        )
    return views


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("compat_matrix.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("compat.html.j2")


def render_html(name: str, results: Sequence[CellResult]) -> str:
    """The page for `results`, cells in job order."""
    views = _views(results)
    pivot = choose_pivot(results)
    grid_header: list[str] = []
    grid_rows: list[_GridRow] = []
    if pivot is not None:
        grid_header = [pivot.corner] + [pivot.column_label(c) for c in pivot.columns]
        for row in pivot.rows:
            cells: list[_CellView | None] = []
            for column in pivot.columns:
                index = pivot.at(row, column)
                cells.append(None if index is None else views[index])
            grid_rows.append(_GridRow(pivot.row_label(row), cells))
    counts = count_kinds(results)
    return _template().render(
        name=one_line(name, 200),
        total=len(results),
        kinds=[KINDS[kind] for kind in SUMMARY_ORDER],
        counts=counts,
        grid_header=[one_line(text, 300) for text in grid_header],
        grid_rows=grid_rows,
        cells=views,
    )
