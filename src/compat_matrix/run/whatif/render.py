"""The what-if as people read it: the compat.md table and the terminal summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compat_matrix.results import CellResult
from compat_matrix.run.whatif.answer import _PROBLEMS, PackageChange, WhatIfResult

if TYPE_CHECKING:
    pass


#: Rows of the compat.md table; the rest are counted (whatif.json has every row).
_MARKDOWN_ROWS = 200
_MD_ESCAPES = str.maketrans(
    {c: f"\\{c}" for c in "\\`*_[]|#~"} | {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
)


def _describe(row: PackageChange, limit: int = 300) -> str:
    """`BREAKS [fail/abi-numpy]: <why>`: a row's outcome in one line."""
    what = row.status.upper() if row.status in _PROBLEMS else row.status
    if row.requested:
        what += " (requested)"
    if row.category:
        what += f" [{row.verdict}/{row.category}]" if row.verdict else f" [{row.category}]"
    if row.reason:
        what += ": " + " ".join(row.reason.split())
    return what if len(what) <= limit else what[: limit - 1] + "…"


def _shown(result: WhatIfResult) -> list[PackageChange]:
    """The rows worth a line: all but unchanged (or not compared) packages nobody asked about."""
    rows = [p for p in result.packages if p.status not in ("unchanged", "unknown") or p.requested]
    return sorted(rows, key=_row_order)


def _markdown(result: WhatIfResult) -> str:
    """The per-package table put at the top of compat.md."""

    def cell(text: str | None, limit: int = 400) -> str:
        flat = " ".join((text or "").split())
        flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
        return flat.translate(_MD_ESCAPES) or "—"

    upgraded = result.upgraded
    lines = [
        f"## What if: {cell(' '.join(u.text for u in result.upgrades))}",
        "",
        f"Now: **{result.current.status}** · after the upgrade: **{upgraded.status}**"
        + (f" ({cell(upgraded.category)})" if upgraded.category else ""),
        "",
        "| package | now | after | what happens |",
        "| --- | --- | --- | --- |",
    ]
    shown = _shown(result)
    for row in shown[:_MARKDOWN_ROWS]:
        what = _describe(row) + (f" — hint: {row.hint}" if row.hint else "")
        lines.append(
            f"| {cell(row.name)} | {cell(row.current)} | {cell(row.upgraded)} | {cell(what)} |"
        )
    if len(shown) > _MARKDOWN_ROWS:
        lines += ["", f"… {len(shown) - _MARKDOWN_ROWS} more changed packages in whatif.json."]
    same = len(result.packages) - len(shown)
    if same:
        state = "unchanged" if upgraded.python is not None else "not compared"
        lines += ["", f"{same} other package{'s' if same != 1 else ''} {state}."]
    lines += ["", f"**Verdict**: {cell(result.verdict, 1000)}"]
    if result.how:
        lines += ["", f"**How chosen**: {cell(result.how, 1000)}"]
    for name, note in sorted(result.notes.items()):
        lines += ["", f"{cell(name)}: {cell(note)}"]
    return "\n".join(lines) + "\n"


def _row_order(row: PackageChange) -> tuple[int, int, str]:
    urgent = _PROBLEMS.index(row.status) if row.status in _PROBLEMS else len(_PROBLEMS)
    return (urgent, 0 if row.requested else 1, row.name)


def format_summary(result: WhatIfResult) -> str:
    """What `audit --upgrade` prints: both verdicts, then every package that is not unchanged."""
    upgrades = " ".join(u.text for u in result.upgrades)
    now, after = result.current, result.upgraded

    def verdict(cell: CellResult) -> str:
        text = cell.status + (f" ({cell.category})" if cell.category else "")
        return f"{text}: {cell.message}" if cell.status != "pass" and cell.message else text

    lines = [
        f"what-if {upgrades} for {result.python}",
        f"  now:   {verdict(now)}  [{now.id}]",
        f"  after: {verdict(after)}  [{after.id}]",
    ]
    shown = _shown(result)
    if shown:
        width = max(len(p.name) for p in shown)
        vwidth = max(len(p.current or "-") for p in shown)
        for row in shown:
            lines.append(
                f"  {row.name.ljust(width)}  {(row.current or '-').ljust(vwidth)} -> "
                f"{row.upgraded or '?'}  {_describe(row, 240)}"
            )
            if row.hint:
                lines.append(f"  {''.ljust(width)}  hint: {' '.join(row.hint.split())[:240]}")
    hidden = len(result.packages) - len(shown)
    if hidden:
        plural = "s" if hidden != 1 else ""
        state = "unchanged" if after.python is not None else "not compared: nothing was built"
        lines.append(f"  ({hidden} other package{plural} {state})")
    lines.append(f"verdict: {result.verdict}")
    if result.how:
        lines.append(f"how chosen: {result.how}")
    if result.reports is not None:
        lines.append(f"report: {result.reports.markdown}")
    return "\n".join(lines) + "\n"
