"""compat.html: one self-contained page with the grid in colour and every cell's details.

The page loads nothing (no CSS, script, font or image from anywhere), so it opens from an
artifact download or a file share offline. Its Content-Security-Policy forbids scripts and
remote loads outright: the status filter is plain CSS (`:checked` checkboxes), and text from
probes, which can be anything, is escaped on top of that.

jinja2 renders the page shell (styles, summary, filters). The grid and the cells' details,
some fifty fields a cell, are written here as plain strings, every field escaped exactly as
jinja2's autoescape escapes it: through the template they took most of the time
`compat-matrix report` has for merging 10,000 cells.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import jinja2
from markupsafe import Markup

from compat_matrix.reports._pivot import Pivot, choose_pivot
from compat_matrix.reports._verdicts import (
    KINDS,
    SUMMARY_ORDER,
    clean_text,
    count_kinds,
    kind_of,
    label,
    one_line,
    short_reason,
)
from compat_matrix.reports.junit import format_time
from compat_matrix.results import CellResult, ProbeResult

__all__ = ["render_html"]

#: Longer messages are cut on the page (compat.json keeps them whole).
_TEXT_LIMIT = 20_000
_UNSAFE_ANCHOR = re.compile(r"[^A-Za-z0-9._-]")


def _escape(text: str) -> str:
    """`text` as markupsafe.escape (jinja2's autoescape) writes it, without a Markup object."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if "'" in text:
        text = text.replace("'", "&#39;")
    if '"' in text:
        text = text.replace('"', "&#34;")
    return text


def _text(text: str) -> str:
    """Multi-line text, cleaned, cut and escaped, for a `<pre>` or a table cell."""
    cleaned = clean_text(text).strip()
    if len(cleaned) > _TEXT_LIMIT:
        cleaned = cleaned[:_TEXT_LIMIT] + "\n… (truncated, see compat.json)"
    return _escape(cleaned)


def _line(text: str, limit: int) -> str:
    return _escape(one_line(text, limit))


# Axis and resolved pairs repeat from cell to cell: cache their markup.
@lru_cache(maxsize=4096)
def _axis(key: str, value: str) -> str:
    return f"<code>{_line(key, 200)}={_line(value, 500)}</code>"


@lru_cache(maxsize=4096)
def _resolved(dist: str, version: str) -> str:
    return f"<code>{_line(dist, 200)}=={_line(version, 500)}</code>"


_PROBES_HEAD = (
    '<div class="scroll">\n<table class="probes">\n<thead><tr><th scope="col">probe</th>'
    '<th scope="col">status</th><th scope="col">category</th><th scope="col">message</th>'
    '<th scope="col">hint</th><th scope="col">seconds</th></tr></thead>\n<tbody>\n'
)


def _probe_row(probe: ProbeResult) -> str:
    # format_time writes digits and a dot: nothing to escape.
    category = _line(probe.category or "", 200)
    message = _text(probe.message)
    return (
        f"<tr><td><code>{_line(f'{probe.probe} {probe.target}', 300)}</code></td>"
        f"<td>{_line(probe.status, 50)}</td>"
        f"<td>{f'<code>{category}</code>' if category else ''}</td>"
        f'<td class="message">{f"<pre>{message}</pre>" if message else ""}</td>'
        f"<td>{_text(probe.hint)}</td><td>{format_time(probe.duration_s)}</td></tr>\n"
    )


def _details(
    result: CellResult, *, kind: str, anchor: str, badge: str, cell_id: str, reason: str
) -> str:
    """The cell's `<details>`: verdict, messages, axes, resolved versions, probes.

    `badge`, `cell_id` and `reason` come escaped (the grid shows them too); `kind` and `anchor`
    need no escaping.
    """
    category = _line(result.category or "", 200)
    out = [
        f'<details class="cell k-{kind}" id="{anchor}">\n<summary>'
        f'<span class="badge k-{kind}">{badge}</span> <code>{cell_id}</code>'
        f"{f' — {reason}' if reason else ''}</summary>\n<dl>\n"
        f"<dt>status</dt><dd>{_escape(result.status)}"
        f"{f' · <code>{category}</code>' if category else ''}</dd>\n"
    ]
    expectation = result.expectation
    if expectation is not None:
        text = f"{expectation.status} ({'met' if expectation.met else 'NOT met'})"
        if expectation.reason:
            text += f": {expectation.reason}"
        text = _line(text, 500)
        if text:
            out.append(f"<dt>expectation</dt><dd>{text}</dd>")
    message = _text(result.message)
    if message:
        out.append(f"<dt>message</dt><dd><pre>{message}</pre></dd>")
    hint = _text(result.hint)
    if hint:
        out.append(f"<dt>hint</dt><dd>{hint}</dd>")
    if result.python is not None:
        info = result.python
        python = " ".join(part for part in (info.implementation, info.version) if part)
        if info.abi:
            python += f" (abi {info.abi})"
        python = _line(python, 200)
        if python:
            out.append(f"<dt>python</dt><dd>{python}</dd>")
    if result.indexes:
        listed = "<br>".join(f"<code>{_line(item, 500)}</code>" for item in result.indexes)
        out.append(f"<dt>indexes</dt><dd>{listed}</dd>")
    axes = " ".join([_axis(k, v) for k, v in result.axes.items()]) or "—"
    resolved = " ".join([_resolved(d, v) for d, v in result.resolved.items()]) or "—"
    durations = (
        " · ".join([f"{_line(k, 50)} {format_time(v)} s" for k, v in result.durations.items()])
        or "—"
    )
    out.append(
        f"<dt>axes</dt><dd>{axes}</dd>\n<dt>resolved</dt><dd>{resolved}</dd>\n"
        f"<dt>durations</dt><dd>{durations}</dd>\n</dl>\n"
    )
    if result.probes:
        out.append(_PROBES_HEAD)
        out += [_probe_row(probe) for probe in result.probes]
        out.append("</tbody>\n</table>\n</div>\n")
    out.append("</details>\n")
    return "".join(out)


def _grid(pivot: Pivot, squares: list[str]) -> str:
    header = [pivot.corner] + [pivot.column_label(c) for c in pivot.columns]
    out = ['<div class="scroll">\n<table class="grid">\n<thead><tr>']
    out += [f'<th scope="col">{_line(text, 300)}</th>' for text in header]
    out.append("</tr></thead>\n<tbody>\n")
    for row in pivot.rows:
        out.append(f'<tr><th scope="row">{_escape(clean_text(pivot.row_label(row)))}</th>')
        for column in pivot.columns:
            index = pivot.at(row, column)
            out.append('<td class="missing">—</td>' if index is None else squares[index])
        out.append("</tr>\n")
    out.append("</tbody>\n</table>\n</div>\n")
    return "".join(out)


_LIST_HEAD = (
    '<div class="scroll">\n<table class="list">\n<thead><tr><th scope="col">cell</th>'
    '<th scope="col">result</th><th scope="col">reason</th></tr></thead>\n<tbody>\n'
)


def _body(results: Sequence[CellResult]) -> tuple[str, str]:
    """The verdict table (a grid, else a list) and every cell's details, as markup."""
    pivot = choose_pivot(results)
    anchors: set[str] = set()
    squares: list[str] = []  # a grid square, or a list row, per cell
    details: list[str] = []
    for index, result in enumerate(results):
        plain_id = one_line(result.id, 200)
        # Only [A-Za-z0-9._-]: nothing to escape.
        anchor = "cell-" + _UNSAFE_ANCHOR.sub("_", plain_id)
        if anchor in anchors:
            anchor = f"{anchor}-{index}"
        anchors.add(anchor)
        kind = KINDS[kind_of(result)]
        badge = f"{_escape(kind.symbol)} {_escape(label(result))}"
        reason = _escape(short_reason(result, 200))
        cell_id = _escape(plain_id)
        if pivot is not None:
            squares.append(
                f'<td class="k-{kind.name}" title="{reason}"><a href="#{anchor}">{badge}</a></td>'
            )
        else:
            squares.append(
                f'<tr class="k-{kind.name}"><td><a href="#{anchor}"><code>{cell_id}</code></a>'
                f'</td><td><a href="#{anchor}">{badge}</a></td><td>{reason}</td></tr>\n'
            )
        details.append(
            _details(
                result, kind=kind.name, anchor=anchor, badge=badge, cell_id=cell_id, reason=reason
            )
        )
    if pivot is not None:
        table = _grid(pivot, squares)
    elif squares:
        table = _LIST_HEAD + "".join(squares) + "</tbody>\n</table>\n</div>\n"
    else:
        table = "<p>No cells.</p>\n"
    return table, "".join(details)


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
    table, details = _body(results)
    return _template().render(
        name=one_line(name, 200),
        total=len(results),
        kinds=[KINDS[kind] for kind in SUMMARY_ORDER],
        counts=count_kinds(results),
        # Markup: _body escaped every field it took from the results.
        table=Markup(table),  # noqa: S704
        details=Markup(details),  # noqa: S704
    )
