"""compat.html: one self-contained page with the grid in colour and every cell's details.

The page loads nothing (no CSS, script, font or image from anywhere), so it opens from an
artifact download or a file share offline. Its Content-Security-Policy forbids remote loads and
every script but the page's own (allowed by its hash), and text from probes, which can be
anything, is escaped on top of that. Everything reads without JavaScript: the status filters
are plain CSS (`:checked` checkboxes, reachable by keyboard), a grid cell links to its details;
the script only adds what needs it: opening the linked cell's details and the search box.

Sized for 10,000 cells: a cell that needs attention gets full details (messages, probes, links
to its log and lock); a passing cell one table row (its versions and links), as its probes all
passed; compat.json keeps everything.

The page shell (styles, summary, filters) is `templates/compat.html`, a `string.Template` with
the few `$fields` filled here, already escaped; the grid and the cells' details, some fifty
fields a cell, are written here as plain strings, every field escaped as markupsafe escapes.
No template engine: importing and compiling jinja2 cost 0.1-0.2 s of every `run`, most of
what publishing a small run's four reports took.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import string
import urllib.parse
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import lru_cache
from importlib import resources

from compat_matrix.reports._pivot import Pivot, choose_pivot
from compat_matrix.reports._verdicts import (
    KINDS,
    SUMMARY_ORDER,
    clean_text,
    count_kinds,
    distribution_of,
    finding_groups,
    kind_of,
    label,
    one_line,
    short_reason,
)
from compat_matrix.reports.baseline import BaselineDiff, CellChange, CulpritFinding
from compat_matrix.reports.gpu_coverage import coverage_html
from compat_matrix.reports.junit import format_time
from compat_matrix.reports.metadata_truth import MetadataFinding, metadata_html
from compat_matrix.results import CellResult, ProbeResult

__all__ = ["render_html"]

#: Longer messages are cut on the page (compat.json keeps them whole).
_TEXT_LIMIT = 20_000
_UNSAFE_ANCHOR = re.compile(r"[^A-Za-z0-9._-]")
#: Kinds shown as one row of the passing-cells table rather than as full details.
_COMPACT = frozenset({"pass", "gpu-unverified"})
#: Resolved versions a cell's details list in full; beyond, only the axis packages'.
_RESOLVED_SHOWN = 8
#: Files named in one grouped finding's row.
_FILES_SHOWN = 20
#: Changes since the baseline listed per section (diff.json has them all).
_CHANGES_SHOWN = 200


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
def _version(dist: str, version: str) -> str:
    return f"{_line(dist, 200)}=={_line(version, 500)}"


@lru_cache(maxsize=4096)
def _resolved(dist: str, version: str) -> str:
    return f"<code>{_version(dist, version)}</code>"


_PROBES_HEAD = (
    '<div class="scroll">\n<table class="probes">\n<thead><tr><th>probe</th><th>status</th>'
    "<th>category</th><th>message</th><th>hint</th><th>seconds</th></tr></thead>\n<tbody>\n"
)


def _probe_row(group: Sequence[ProbeResult], cell_message: str, cell_hint: str) -> str:
    """One row for a probe's findings of one kind in one distribution (the files listed), the
    message and hint left out where they only repeat the cell's own."""
    probe = group[0]
    category = _line(probe.category or "", 200)
    name = f"{probe.probe} {probe.target}"
    if len(group) > 1:
        name = f"{probe.probe} {distribution_of(probe)} ({len(group)} files)"
    message = "" if probe.message.strip() == cell_message.strip() else _text(probe.message)
    if len(group) > 1:
        files = _text("\n".join(p.target for p in group[:_FILES_SHOWN]))
        more = f"\n… {len(group) - _FILES_SHOWN} more" if len(group) > _FILES_SHOWN else ""
        message = f"{message}\n{files}{more}" if message else f"{files}{more}"
    hint = "" if probe.hint.strip() == cell_hint.strip() else _text(probe.hint)
    seconds = sum(p.duration_s for p in group if math.isfinite(p.duration_s) and p.duration_s > 0)
    # format_time writes digits and a dot: nothing to escape.
    return (
        f"<tr><td><code>{_line(name, 300)}</code></td>"
        f"<td>{_line(probe.status, 50)}</td>"
        f"<td>{f'<code>{category}</code>' if category else ''}</td>"
        f'<td class="message">{f"<pre>{message}</pre>" if message else ""}</td>'
        f"<td>{hint}</td><td>{format_time(seconds)}</td></tr>\n"
    )


def _probes(result: CellResult) -> str:
    """The probes that did not pass, grouped; the passing ones counted."""
    groups = [g for g in finding_groups(result.probes) if g[0].status != "pass"]
    passed = len(result.probes) - sum(len(g) for g in groups)
    out = []
    if groups:
        out.append(_PROBES_HEAD)
        out += [_probe_row(group, result.message, result.hint) for group in groups]
        out.append("</tbody>\n</table>\n</div>\n")
    if passed:
        out.append(f"<p>{passed} probe{'' if passed == 1 else 's'} passed.</p>\n")
    return "".join(out)


def _resolved_list(result: CellResult) -> str:
    """Every resolved version, or beyond `_RESOLVED_SHOWN` only the axis packages' and a count
    (the lock file and compat.json have them all)."""
    pairs = list(result.resolved.items())
    if len(pairs) > _RESOLVED_SHOWN:
        shown = [(d, v) for d, v in pairs if d in result.axes]
        text = " ".join([_resolved(d, v) for d, v in shown])
        return f"{text} +{len(pairs) - len(shown)} more (lock file, compat.json)".strip()
    return " ".join([_resolved(d, v) for d, v in pairs]) or "—"


#: A path that quoting and escaping leave as it is (letters, digits and `/._-+~`).
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._+~-]*")


def _href(path: str) -> str:
    """A relative link to a file in the report folder, quoted and escaped."""
    if _PLAIN_PATH.fullmatch(path):  # nearly every lock and log path: nothing to do
        return path
    return _escape(urllib.parse.quote(clean_text(path), safe="/._-+"))


def _links(result: CellResult, logs: Collection[str]) -> str:
    links = []
    if result.id in logs:
        links.append(f'<a href="{_href(f"logs/{result.id}.log")}">log</a>')
    if result.lock:
        links.append(f'<a href="{_href(result.lock)}">lock</a>')
    return " · ".join(links)


def _details(
    result: CellResult,
    *,
    kind: str,
    anchor: str,
    badge: str,
    cell_id: str,
    reason: str,
    links: str = "",
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
    if result.selection:
        listed = "<br>".join(f"<code>{_line(item, 200)}</code>" for item in result.selection)
        out.append(f"<dt>selection</dt><dd>{listed}</dd>")
    axes = " ".join([_axis(k, v) for k, v in result.axes.items()]) or "—"
    resolved = _resolved_list(result)
    durations = (
        " · ".join([f"{_line(k, 50)} {format_time(v)} s" for k, v in result.durations.items()])
        or "—"
    )
    out.append(
        f"<dt>axes</dt><dd>{axes}</dd>\n<dt>resolved</dt><dd>{resolved}</dd>\n"
        f"<dt>durations</dt><dd>{durations}</dd>\n"
        + (f"<dt>files</dt><dd>{links}</dd>\n" if links else "")
        + "</dl>\n"
    )
    out.append(coverage_html(result))
    out.append(_probes(result))
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


def _passing_item(result: CellResult, *, kind: str, anchor: str, badge: str, links: str) -> str:
    """A passing cell in one line: its axis packages' resolved versions (the rest are in its
    lock file), its seconds and its files. A list item, not a table row: at thousands of
    cells, table layout is what a browser spends its time on."""
    parts = [f"{badge}"]
    if result.python is not None and result.python.version:
        parts.append(f"py {_line(result.python.version, 50)}")
    named = [(d, v) for d, v in result.resolved.items() if d in result.axes]
    versions = " ".join([_version(d, v) for d, v in named])
    others = len(result.resolved) - len(named)
    if others:
        versions += f" +{others}" if versions else f"{others} distributions"
    if versions:
        parts.append(versions)
    seconds = sum(v for v in result.durations.values() if math.isfinite(v) and v > 0)
    if seconds:
        parts.append(f"{format_time(seconds)} s")
    if result.indexes:  # a non-default index is never hidden, even on a passing cell
        parts.append(
            "indexes " + " ".join(f"<code>{_line(item, 500)}</code>" for item in result.indexes)
        )
    if result.selection:  # how versions were picked is never hidden either
        parts.append(" ".join(f"<code>{_line(item, 200)}</code>" for item in result.selection))
    if links:
        parts.append(links)
    return (
        f'<li class="k-{kind}" id="{anchor}">{_escape(one_line(result.id, 200))} '
        + " · ".join(parts)
        + "</li>\n"
    )


def _culprit_line(culprit: CulpritFinding | None) -> str:
    """The culprit search's answer under a regression, as compat.md words it ("" for none)."""
    if culprit is None:
        return ""
    tried = ""
    if culprit.tried and not culprit.culprits:
        tried = f" (tried: {_line('; '.join(culprit.tried), 400)})"
    return f'<br><span class="culprit">🔎 {_line(culprit.sentence(), 400)}{tried}</span>'


def _change_item(
    change: CellChange, anchors: dict[str, str], culprit: CulpritFinding | None = None
) -> str:
    before = _escape(change.before or "new")
    after = _escape(change.after or "removed")
    cell_id = _escape(one_line(change.id, 200))
    name = f'<a href="#{anchors[change.id]}">{cell_id}</a>' if change.id in anchors else cell_id
    flag = " <strong>regression</strong>" if change.regression else ""
    message = _line(change.message, 200)
    return (
        f"<li><code>{name}</code>: {before} → {after}{flag}"
        f"{f' — {message}' if message else ''}{_culprit_line(culprit)}</li>\n"
    )


def _changes(diff: BaselineDiff, anchors: dict[str, str]) -> str:
    """The changes since the baseline, each linking to its cell (bounded)."""
    name = f" ({_line(diff.baseline_name, 100)})" if diff.baseline_name else ""
    out = [f'<section class="changes">\n<h2>Changes since baseline{name}</h2>\n']
    if not diff.changed:
        out.append(f"<p>No changes: all {diff.current_cells} cells as in the baseline.</p>\n")
        return "".join(out) + "</section>\n"
    regressions = len(diff.regressions)
    out.append(
        f"<p><strong>{regressions} regression{'' if regressions == 1 else 's'}</strong>"
        f" · {len(diff.broken)} newly broken · {len(diff.fixed)} newly fixed"
        f" · {len(diff.unsupported)} newly unsupported · {len(diff.other)} other changes"
        f" · {len(diff.added)} new cells · {len(diff.removed)} removed cells</p>\n"
    )
    if diff.culprit_note:
        out.append(f"<p>Culprit search: {_line(diff.culprit_note, 400)}</p>\n")
    for title, changes in (
        ("Newly broken", diff.broken),
        ("Newly fixed", diff.fixed),
        ("Newly unsupported", diff.unsupported),
        ("Other changes", diff.other),
        ("New cells", diff.added),
        ("Removed cells", diff.removed),
    ):
        if not changes:
            continue
        out.append(f"<h3>{title} ({len(changes)})</h3>\n<ul>\n")
        out += [
            _change_item(change, anchors, diff.culprits.get(change.id))
            for change in changes[:_CHANGES_SHOWN]
        ]
        if len(changes) > _CHANGES_SHOWN:
            out.append(f"<li>… {len(changes) - _CHANGES_SHOWN} more, see diff.json</li>\n")
        out.append("</ul>\n")
    return "".join(out) + "</section>\n"


def _body(
    results: Sequence[CellResult],
    logs: Collection[str] = (),
    diff: BaselineDiff | None = None,
) -> tuple[str, str, list[str]]:
    """The changes since the baseline, the verdict table (a grid, else a list) and every
    cell's details (passing cells as rows of one table), as markup: the details in pieces,
    never joined (one string for 10,000 cells would be the page's biggest allocation)."""
    pivot = choose_pivot(results)
    anchors: dict[str, str] = {}
    used: set[str] = set()
    squares: list[str] = []  # a grid square, or a list row, per cell
    details: list[str] = []
    passing: list[str] = []
    for index, result in enumerate(results):
        plain_id = one_line(result.id, 200)
        # Only [A-Za-z0-9._-]: nothing to escape.
        anchor = "cell-" + _UNSAFE_ANCHOR.sub("_", plain_id)
        if anchor in used:
            anchor = f"{anchor}-{index}"
        used.add(anchor)
        anchors.setdefault(result.id, anchor)
        kind = KINDS[kind_of(result)]
        badge = f"{_escape(kind.symbol)} {_escape(label(result))}"
        reason = _escape(short_reason(result, 200))
        cell_id = _escape(plain_id)
        title = f' title="{reason}"' if reason else ""
        if pivot is not None:
            squares.append(f'<td class="k-{kind.name}"{title}><a href="#{anchor}">{badge}</a></td>')
        else:
            squares.append(
                f'<tr class="k-{kind.name}"><td><a href="#{anchor}"><code>{cell_id}</code></a>'
                f'</td><td><a href="#{anchor}">{badge}</a></td><td>{reason}</td></tr>\n'
            )
        links = _links(result, logs)
        if kind.name in _COMPACT:
            passing.append(
                _passing_item(result, kind=kind.name, anchor=anchor, badge=badge, links=links)
            )
            continue
        details.append(
            _details(
                result,
                kind=kind.name,
                anchor=anchor,
                badge=badge,
                cell_id=cell_id,
                reason=reason,
                links=links,
            )
        )
    if pivot is not None:
        table = _grid(pivot, squares)
    elif squares:
        table = _LIST_HEAD + "".join(squares) + "</tbody>\n</table>\n</div>\n"
    else:
        table = "<p>No cells.</p>\n"
    cells = details
    if passing:
        cells.append(f'<h3>Passing cells ({len(passing)})</h3>\n<ul class="passing">\n')
        cells += passing
        cells.append("</ul>\n")
    changes = _changes(diff, anchors) if diff is not None else ""
    return changes, table, cells


#: The page's one script: open the details a link points at; filter cells by a search.
_SCRIPT = """(function () {
  function openTarget() {
    var el = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (el && el.tagName === "DETAILS") { el.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  var box = document.getElementById("search");
  var items = null;
  box.hidden = false;
  box.addEventListener("input", function () {
    if (items === null) {
      items = [];
      document.querySelectorAll("main td[class^='k-'] a, .cells details, .cells li[id]")
        .forEach(function (el) {
          var node = el.tagName === "A" ? el.parentNode : el;
          var key = el.tagName === "A" ? el.getAttribute("href").slice(6) : el.textContent;
          items.push([node, key.toLowerCase()]);
        });
    }
    var query = box.value.trim().toLowerCase();
    items.forEach(function (item) {
      item[0].classList.toggle("nomatch", query !== "" && item[1].indexOf(query) < 0);
    });
  });
})();
"""


@lru_cache(maxsize=1)
def _script_hash() -> str:
    """The CSP source that allows `_SCRIPT` and nothing else."""
    digest = hashlib.sha256(_SCRIPT.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@lru_cache(maxsize=1)
def _template() -> string.Template:
    text = (
        resources.files("compat_matrix.reports")
        .joinpath("templates/compat.html")
        .read_text(encoding="utf-8")
    )
    return string.Template(text[:-1] if text.endswith("\n") else text)


def _kind_styles(names: Sequence[str]) -> str:
    """The per-kind CSS: colours, and each filter checkbox hiding its kind's cells."""
    lines = []
    for name in names:
        lines += [
            f".k-{name} {{ background: var(--bg-{name}); }}",
            f"details.cell.k-{name} {{ background: none; border-left-color: var(--edge-{name}); }}",
            f'#hide-{name}:checked ~ nav label[for="hide-{name}"] '
            "{ opacity: .45; text-decoration: line-through; }",
            f'#hide-{name}:focus-visible ~ nav label[for="hide-{name}"] '
            "{ outline: 2px solid #0969da; outline-offset: 1px; }",
            f"#hide-{name}:checked ~ main .cells .k-{name},",
            f"#hide-{name}:checked ~ main tr.k-{name} {{ display: none; }}",
            f"#hide-{name}:checked ~ main td.k-{name} {{ opacity: .2; }}",
        ]
    return "".join(line + "\n" for line in lines)


def _shell(
    name: str, total: int, counts: dict[str, int], *, holes: bool, changes: str, table: str
) -> Callable[[str], str]:
    """The page around the cells' details (already escaped, as `changes` and `table` are)."""
    kinds = [KINDS[kind] for kind in SUMMARY_ORDER]
    shown = [(kind, _escape(kind.name), counts[kind.name]) for kind in kinds if counts[kind.name]]
    fields = {
        "script_hash": _escape(_script_hash()),
        "name": _escape(one_line(name, 200)),
        "kind_styles": _kind_styles([_escape(kind.name) for kind in kinds]),
        "toggles": "".join(
            f'<input type="checkbox" class="toggle" id="hide-{key}" '
            f'aria-label="Hide {_escape(kind.word)} cells">\n'
            for kind, key, _ in shown
        ),
        "total": f"{total} cell{'' if total == 1 else 's'}",
        "badges": "".join(
            f'<span class="badge k-{key}">{_escape(kind.symbol)} {count} {_escape(kind.word)}'
            "</span>\n"
            for kind, key, count in shown
        ),
        "labels": "".join(
            f'<label for="hide-{key}" class="k-{key}" title="{_escape(kind.meaning)}">'
            f"{_escape(kind.symbol)} {_escape(kind.word)} ({count})</label>\n"
            for kind, key, count in shown
        ),
        "changes": changes,
        "legend": "".join(
            f"{_escape(kind.symbol)} {_escape(kind.word)}: {_escape(kind.meaning)} · "
            for kind, _, _ in shown
        )
        + ("— not in the matrix · " if holes else ""),
        "table": table,
        "script": _SCRIPT,
    }
    template = _template()
    return lambda details: template.substitute(fields, details=details)


#: Stands for the cells' details while the page shell is rendered: no escaped text can hold it.
_CELLS_MARK = "\x00compat-matrix-cells\x00"


def html_chunks(
    name: str,
    results: Sequence[CellResult],
    *,
    logs: Collection[str] = (),
    diff: BaselineDiff | None = None,
    metadata: Sequence[MetadataFinding] | None = None,
) -> Iterator[str]:
    """`render_html(...)` in pieces: the page is written as it is made, and the details of
    10,000 cells are never one string (nor the page one copy of them)."""
    changes, table, details = _body(results, logs, diff)

    page = _shell(
        name,
        len(results),
        count_kinds(results),
        holes='<td class="missing">' in table,
        changes=changes + metadata_html(metadata),
        table=table,
    )

    shell = page(_CELLS_MARK)
    if shell.count(_CELLS_MARK) != 1:  # a text held the mark after all: the page in one piece
        yield page("".join(details))
        return
    head, tail = shell.split(_CELLS_MARK)
    yield head
    yield from details
    yield tail


def render_html(
    name: str,
    results: Sequence[CellResult],
    *,
    logs: Collection[str] = (),
    diff: BaselineDiff | None = None,
    metadata: Sequence[MetadataFinding] | None = None,
) -> str:
    """The page for `results`, cells in job order.

    `metadata`: the metadata check's findings (None: not checked), a small section above the
    grid.

    `logs`: ids of the cells with a `logs/<id>.log` in the report folder (linked from their
    details); `diff`: the changes since a baseline, shown above the grid.
    """
    return "".join(html_chunks(name, results, logs=logs, diff=diff, metadata=metadata))
