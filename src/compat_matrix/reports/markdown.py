"""compat.md: the table a person reads first, sized for a GitHub step summary.

A grid (python down the side, the other axes across) with one mark per cell and a footnote for
every cell that is not a plain pass: GitHub's `[^n]` footnotes, so each mark links to its note
and the note links back. The legend lists only the kinds the page shows. GitHub refuses a step
summary over 1 MiB, so the page is built against a byte budget: a grid that does not fit
becomes a list of the cells that need attention (most urgent first, passing cells only
counted), and footnotes that do not fit are dropped least urgent first and counted
("… N more, see compat.json").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from compat_matrix.reports._pivot import Pivot, choose_pivot
from compat_matrix.reports._verdicts import (
    KIND_ORDER,
    KINDS,
    SUMMARY_ORDER,
    clean_text,
    count_kinds,
    distribution_of,
    failing_probes,
    finding_groups,
    first_line,
    kind_of,
    label,
    latent_probes,
    one_line,
)
from compat_matrix.reports.gpu_coverage import coverage_markdown
from compat_matrix.reports.metadata_truth import MetadataFinding, metadata_markdown
from compat_matrix.results import CellResult

__all__ = ["DEFAULT_MAX_BYTES", "inline_markdown", "render_markdown"]

#: GitHub's step-summary limit is 1 MiB; stay clear of it.
DEFAULT_MAX_BYTES = 1_000_000
#: The index lines: at most this many sets, each naming at most this many cells.
_INDEX_GROUPS = 20
_INDEX_CELLS = 20
#: Share of the budget the table may take; the rest is for footnotes.
_TABLE_SHARE = 0.6
#: Bytes kept free for the closing lines ("… N more notes").
_RESERVE = 512
_MESSAGE_LIMIT = 300
_PROBE_MESSAGE_LIMIT = 200
_PROBES_PER_NOTE = 5
_IDS_PER_NOTE = 10

#: What inline Markdown escapes, each character at most once. The backslash goes first and `&`
#: before `<` and `>`: no later replacement then touches what an earlier one wrote, so the
#: chain of `str.replace` gives what one simultaneous mapping would (`str.translate` with a
#: table of multi-character replacements did the same, a character at a time through a dict:
#: a tenth of the time of compat.md).
_MD_ESCAPES: tuple[tuple[str, str], ...] = (
    ("\\", "\\\\"),
    ("`", "\\`"),
    ("*", "\\*"),
    ("_", "\\_"),
    ("[", "\\["),
    ("]", "\\]"),
    ("|", "\\|"),
    ("~", "\\~"),
    ("#", "\\#"),
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
)


@lru_cache(maxsize=4096)
def inline_markdown(text: str, limit: int) -> str:
    """Inline Markdown for any text: one line, no markup, no raw HTML, safe inside a table."""
    flat = one_line(text, limit)
    for special, escaped in _MD_ESCAPES:
        if special in flat:
            flat = flat.replace(special, escaped)
    return flat


def _md(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    return inline_markdown(text, limit)


def _code(text: str) -> str:
    """A code span for identifiers (cell ids, categories); safe inside a table row."""
    flat = one_line(text, 200).replace("`", "'").replace("|", "\\|")
    return f"`{flat}`" if flat else ""


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


@dataclass
class _Note:
    number: int
    rank: int
    body: str
    cells: list[str] = field(default_factory=list)

    def render(self) -> str:
        ids = ", ".join(_code(cell) for cell in self.cells[:_IDS_PER_NOTE])
        if len(self.cells) > _IDS_PER_NOTE:
            ids += f" and {len(self.cells) - _IDS_PER_NOTE} more"
        first, _, rest = self.body.partition("\n")
        text = f"[^{self.number}]: {ids}: {first}\n"
        # A footnote's further lines belong to it when indented by four spaces.
        return text + "".join(f"    {line.strip()}\n" for line in rest.splitlines() if line)


class _Notes:
    """Footnotes, numbered in order of first reference; identical notes are shared."""

    def __init__(self, results: Sequence[CellResult]) -> None:
        self._results = results
        self._by_body: dict[str, _Note] = {}

    def ref(self, index: int, *, commit: bool = True) -> str:
        """The cell's footnote reference, `" [^n]"` ("" for a pass); `commit=False` only peeks."""
        result = self._results[index]
        kind = kind_of(result)
        if kind in ("pass", "gpu-unverified"):
            return ""
        body = _note_body(result)
        note = self._by_body.get(body)
        if note is None:
            note = _Note(len(self._by_body) + 1, KIND_ORDER.index(kind), body)
            if not commit:
                return f" [^{note.number}]"
            self._by_body[body] = note
        if commit:
            note.cells.append(result.id)
        return f" [^{note.number}]"

    @property
    def notes(self) -> list[_Note]:
        return list(self._by_body.values())


def _note_body(result: CellResult) -> str:
    kind = KINDS[kind_of(result)]
    parts = [f"{kind.symbol} **{_md(label(result))}**"]
    if result.category:
        parts.append(_code(result.category))
    line = " · ".join(parts)
    message = result.message
    if message:
        line += f" — {_md(message)}"
    if result.hint:
        line += f" *Hint:* {_md(result.hint)}"
    expectation = result.expectation
    if expectation is not None and expectation.reason:
        line += f" *Expectation:* {_md(expectation.reason)}"
    lines = [line]
    probes = failing_probes(result) or latent_probes(result)
    if not message and not probes:
        probes = [probe for probe in result.probes if probe.status != "pass"]
    groups = finding_groups(probes)
    for group in groups[:_PROBES_PER_NOTE]:
        probe = group[0]
        name = f"{probe.probe} {probe.target}"
        if len(group) > 1:  # one distribution's findings of one kind: one line
            name = f"{probe.probe} {distribution_of(probe)} ({len(group)} files)"
        sub = f"  - {_code(name)} {_md(probe.status, 20)}"
        if probe.category:
            sub += f" · {_code(probe.category)}"
        if probe.message:
            sub += f": {_md(first_line(probe.message) or probe.message, _PROBE_MESSAGE_LIMIT)}"
        if probe.hint:
            sub += f" *Hint:* {_md(probe.hint, _PROBE_MESSAGE_LIMIT)}"
        lines.append(sub)
    if len(groups) > _PROBES_PER_NOTE:
        lines.append(f"  - … {len(groups) - _PROBES_PER_NOTE} more probes, see compat.json")
    return "\n".join(lines)


def _mark(result: CellResult, ref: str) -> str:
    kind = kind_of(result)
    words = _md(label(result), 80)
    if kind == "unmet":
        words = f"**{words}**"
    return f"{KINDS[kind].symbol} {words}{ref}"


def _head(name: str, results: Sequence[CellResult]) -> str:
    counts = count_kinds(results)
    summary = " · ".join(
        f"{KINDS[kind].symbol} {counts[kind]} {_md(KINDS[kind].word, 40)}"
        for kind in SUMMARY_ORDER
        if counts[kind]
    )
    total = f"{len(results)} cell" + ("" if len(results) == 1 else "s")
    head = f"## compat-matrix: {_md(name, 200)}\n\n**{total}**"
    return head + (f": {summary}\n" if summary else "\n")


def _legend(results: Sequence[CellResult], *, holes: bool) -> str:
    """The kinds present on the page, each with its symbol and meaning; `holes` adds the mark
    for a combination the matrix does not have."""
    counts = count_kinds(results)
    items = [
        f"{KINDS[kind].symbol} {KINDS[kind].word}: {KINDS[kind].meaning}"
        for kind in SUMMARY_ORDER
        if counts[kind]
    ]
    if holes:
        items.append("— not in the matrix")
    if any(counts[kind] for kind in counts if kind not in ("pass", "gpu-unverified")):
        items.append("numbered marks link to the notes")
    if not items:
        return ""
    return "<sub>" + " · ".join(_md(item, 200) for item in items) + "</sub>\n\n"


def _grid(pivot: Pivot, results: Sequence[CellResult], notes: _Notes) -> str:
    header = [_md(pivot.corner, 200)] + [_md(pivot.column_label(c), 200) for c in pivot.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in pivot.rows:
        cells = [_md(pivot.row_label(row), 200)]
        for column in pivot.columns:
            index = pivot.at(row, column)
            cells.append("—" if index is None else _mark(results[index], notes.ref(index)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _list_row(result: CellResult, ref: str) -> str:
    return f"| {_code(result.id)} | {_mark(result, ref)} |"


def _list(results: Sequence[CellResult], notes: _Notes) -> str:
    rows = ["| cell | result |", "| --- | --- |"]
    rows += [_list_row(result, notes.ref(i)) for i, result in enumerate(results)]
    return "\n".join(rows) + "\n"


def _summary_table(results: Sequence[CellResult], notes: _Notes, budget: int) -> str:
    """Cells that need attention, most urgent first, until `budget` bytes; passes counted."""
    kinds = [kind_of(result) for result in results]
    passing = [i for i, kind in enumerate(kinds) if kind in ("pass", "gpu-unverified")]
    urgent = sorted(
        (i for i, kind in enumerate(kinds) if kind not in ("pass", "gpu-unverified")),
        key=lambda i: KIND_ORDER.index(kinds[i]),
    )
    if not urgent:
        return f"Too many cells for a grid: all {len(passing)} passed (see compat.html).\n"
    lines = [
        f"Too many cells for a grid: the {len(urgent)} that need attention are listed, most "
        f"urgent first; {len(passing)} passing cells are only counted (see compat.html).",
        "",
        "| cell | result |",
        "| --- | --- |",
    ]
    used = sum(_size(line) + 1 for line in lines)
    shown = 0
    for index in urgent:
        row = _list_row(results[index], notes.ref(index, commit=False))
        if used + _size(row) + 1 > budget:
            break
        lines.append(_list_row(results[index], notes.ref(index)))
        used += _size(row) + 1
        shown += 1
    if shown < len(urgent):
        lines += ["", f"… {len(urgent) - shown} more cells, see compat.json"]
    return "\n".join(lines) + "\n"


def _footnotes(notes: list[_Note], budget: int) -> str:
    """The most urgent notes that fit in `budget` bytes, printed in number order.

    Strictly by urgency: once a note does not fit, no less urgent one takes its place, so a
    truncated page never shows skips while hiding failures.
    """
    if not notes:
        return ""
    title = "\n### Notes\n\n"
    used = _size(title)
    kept: list[tuple[int, str]] = []
    for note in sorted(notes, key=lambda n: (n.rank, n.number)):
        text = note.render()
        if used + _size(text) > budget:
            break
        kept.append((note.number, text))
        used += _size(text)
    kept.sort()
    body = title + "".join(text for _, text in kept)
    if len(kept) < len(notes):
        body += f"\n… {len(notes) - len(kept)} more notes, see compat.json\n"
    return body


def _indexes(results: Sequence[CellResult]) -> str:
    """One line per set of non-default package indexes, naming the cells that used it; then
    the same for how versions were picked (resolution, as-of, prerelease)."""
    return _option_groups(
        results, "Package indexes besides the default", lambda r: r.indexes
    ) + _option_groups(results, "Version selection besides the default", lambda r: r.selection)


def _option_groups(
    results: Sequence[CellResult], title: str, options_of: Callable[[CellResult], list[str]]
) -> str:
    groups: dict[tuple[str, ...], list[str]] = {}
    for result in results:
        if options_of(result):
            groups.setdefault(tuple(options_of(result)), []).append(result.id)
    if not groups:
        return ""
    lines = [f"\n**{title}**\n"]
    for indexes, cells in list(groups.items())[:_INDEX_GROUPS]:
        shown = ", ".join(_code(cell) for cell in cells[:_INDEX_CELLS])
        more = f" and {len(cells) - _INDEX_CELLS} more" if len(cells) > _INDEX_CELLS else ""
        options = " · ".join(_code(item) for item in indexes)
        lines.append(f"- {options}: {shown}{more}")
    if len(groups) > _INDEX_GROUPS:
        lines.append(f"- … {len(groups) - _INDEX_GROUPS} more sets, see compat.json")
    return "\n".join(lines) + "\n"


def render_markdown(
    name: str,
    results: Sequence[CellResult],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    preamble: str = "",
    metadata: Sequence[MetadataFinding] | None = None,
) -> str:
    """The Markdown report, never larger than `max_bytes` bytes of UTF-8.

    `metadata`: the metadata check's findings (None: not checked), a short section after the
    footnotes.

    `preamble` (Markdown, e.g. the changes since a baseline) opens the page, inside the budget.
    """
    pivot = choose_pivot(results)
    holes = pivot is not None and any(
        pivot.at(row, column) is None for row in pivot.rows for column in pivot.columns
    )
    head = preamble + _head(name, results) + "\n" + _legend(results, holes=holes)
    table_budget = int(max_bytes * _TABLE_SHARE) - _size(head)
    notes = _Notes(results)
    if not results:
        table = "No cells.\n"
    elif pivot is not None:
        table = _grid(pivot, results, notes)
    else:
        table = _list(results, notes)
    if _size(table) > table_budget:
        notes = _Notes(results)
        table = _summary_table(results, notes, table_budget)
    table += _indexes(results)
    used = _size(head) + _size(table)
    text = head + table + _footnotes(notes.notes, max_bytes - used - _RESERVE)
    text += metadata_markdown(metadata)
    text += coverage_markdown(results, max_bytes - _size(text) - _RESERVE)
    return _fit(clean_text(text), max_bytes)


def _fit(text: str, max_bytes: int) -> str:
    """Last resort for absurdly small budgets: cut at a character boundary, say so."""
    if _size(text) <= max_bytes:
        return text
    note = "\n\n… truncated, see compat.json\n"
    room = max(max_bytes - _size(note), 0)
    cut = text.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return (cut + note) if _size(cut + note) <= max_bytes else cut
