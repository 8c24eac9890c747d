"""The GPU coverage table of a cell: each CUDA distribution by each listed GPU: SASS / PTX only /
none, from the gpu-arch probe's closing result.

compat.html shows it inside the cell's details; compat.md lists one table per distinct coverage
as a footnote section (cells with the same coverage share it), so a reader sees at a glance which
GPU a wheel lacks kernels for.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from compat_matrix.results import CellResult

__all__ = ["GpuCoverage", "coverage_html", "coverage_markdown", "gpu_coverage"]

#: How each coverage reads in a table.
WORDS = {"sass": "SASS", "ptx": "PTX only (JIT)", "none": "none ❌"}


@dataclass(frozen=True)
class GpuCoverage:
    """GPU label -> its architecture, and per distribution the coverage of each GPU."""

    gpus: dict[str, str]
    rows: tuple[tuple[str, dict[str, str]], ...]


def gpu_coverage(result: CellResult) -> GpuCoverage | None:
    """The cell's coverage table, or None when its gpu-arch probe listed no GPU."""
    for probe in result.probes:
        if probe.probe != "gpu-arch" or probe.target != "environment":
            continue
        gpus = probe.details.get("gpus") or {}
        table = probe.details.get("table") or {}
        if not gpus or not table:
            return None
        rows = tuple(
            (str(dist), {str(g): str(c) for g, c in dict(cover).items()})
            for dist, cover in table.items()
        )
        return GpuCoverage({str(k): str(v) for k, v in dict(gpus).items()}, rows)
    return None


def _heading(label: str, arch: str) -> str:
    return label if label == arch else f"{label} ({arch})"


def coverage_html(result: CellResult) -> str:
    """A `<table>` for the cell's details ("" when there is none)."""
    coverage = gpu_coverage(result)
    if coverage is None:
        return ""
    esc = html.escape
    head = "".join(f"<th>{esc(_heading(g, a))}</th>" for g, a in coverage.gpus.items())
    lines = [
        '<table class="gpu-coverage"><caption>GPU coverage (static: the kernels each '
        "distribution carries)</caption>",
        f"<tr><th>distribution</th>{head}</tr>",
    ]
    for dist, cover in coverage.rows:
        cells = "".join(
            f'<td class="cov-{esc(cover.get(g, "none"))}">{esc(WORDS.get(cover.get(g, ""), "—"))}'
            "</td>"
            for g in coverage.gpus
        )
        lines.append(f"<tr><th>{esc(dist)}</th>{cells}</tr>")
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def coverage_markdown(results: Sequence[CellResult], budget: int) -> str:
    """The "GPU coverage" footnote section: one table per distinct coverage, naming its cells;
    "" when no cell has one or none fits in `budget` bytes."""
    groups: dict[str, list[str]] = {}
    for result in results:
        coverage = gpu_coverage(result)
        if coverage is None:
            continue
        head = ["distribution", *(_heading(g, a) for g, a in coverage.gpus.items())]
        lines = ["| " + " | ".join(map(_md, head)) + " |", "|" + " --- |" * len(head)]
        for dist, cover in coverage.rows:
            words = [WORDS.get(cover.get(g, ""), "—") for g in coverage.gpus]
            lines.append("| " + " | ".join(map(_md, [dist, *words])) + " |")
        groups.setdefault("\n".join(lines), []).append(result.id)
    if not groups:
        return ""
    out = "\n### GPU coverage\n\n"
    for table, cells in groups.items():
        named = ", ".join(f"`{c}`" for c in cells[:5]) + (" …" if len(cells) > 5 else "")
        block = f"{named}:\n\n{table}\n\n"
        if len((out + block).encode("utf-8")) > budget:
            out += "… more in compat.html\n"
            break
        out += block
    return out
