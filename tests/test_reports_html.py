"""compat.html: self-contained (loads nothing), escaped, and complete for every cell."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import jinja2
import pytest
from _report_samples import SAMPLES

from compat_matrix.reports import render_html
from compat_matrix.reports._pivot import choose_pivot
from compat_matrix.reports._verdicts import (
    KINDS,
    clean_text,
    kind_of,
    label,
    one_line,
    short_reason,
)
from compat_matrix.reports.junit import format_time
from compat_matrix.results import CellResult, ExpectationOutcome, ProbeResult, PythonInfo

SCRIPT = "<script>alert('pwned')</script>"


class Page(HTMLParser):
    """Collects what a browser would act on: tags, attributes, text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def cell(cell_id: str, status: str, axes: dict[str, str], **fields: Any) -> CellResult:
    return CellResult(id=cell_id, axes=axes, status=status, **fields)


RESULTS = [
    cell(
        "py3.12-torch2.4.1",
        "fail",
        {"python": "3.12", "torch": "2.4.1"},
        category="undefined-symbol",
        message=f"see https://pytorch.org/get-started {SCRIPT} \x1b[31mred\x1b[0m",
        hint="use torch 2.5",
        python=PythonInfo("3.12.1", "cpython", "cp312"),
        resolved={"torch": "2.4.1", "nvidia-cuda-runtime-cu12": "12.4.127"},
        probes=[
            ProbeResult(
                "import",
                "torch",
                "fail",
                "undefined-symbol",
                f"libtorch_cuda.so: undefined symbol: {SCRIPT}",
                "rebuild the extension",
                1.25,
            )
        ],
    ),
    cell("py3.12-torch2.5.0", "pass", {"python": "3.12", "torch": "2.5.0"}, gpu_unverified=True),
    cell(
        "py3.13-torch2.4.1",
        "unsupported",
        {"python": "3.13", "torch": "2.4.1"},
        category="no-distribution",
        expectation=ExpectationOutcome("unsupported", met=True),
    ),
]


def test_page_loads_nothing_from_anywhere() -> None:
    page = Page(render_html("ml <stack>", RESULTS))
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "srcset", "data", "poster"):
            value = attrs.get(name) or ""
            assert value == "" or value.startswith("#"), (tag, name, value)
    assert not page.named("script")
    assert not page.named("link")
    assert not page.named("img")
    css = "".join(page.styles)
    assert "url(" not in css
    assert "@import" not in css
    (csp,) = [a for a in page.named("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in (csp.get("content") or "")
    assert "script-src" not in (csp.get("content") or "")  # no script may run at all


def test_everything_from_results_is_escaped() -> None:
    html = render_html(SCRIPT, RESULTS)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "\x1b" not in html
    page = Page(html)
    text = "".join(page.text)
    assert f"undefined symbol: {SCRIPT}" in text  # shown to the reader, as text
    assert "see https://pytorch.org/get-started" in text  # a URL in a message stays text


def test_grid_and_details_show_every_cell() -> None:
    page = Page(render_html("ml", RESULTS))
    text = " ".join(" ".join(page.text).split())
    assert len(page.named("th")) >= 3
    assert "python torch 2.4.1 torch 2.5.0" in text  # pivot header
    assert "🟡 GPU unverified" in text
    assert "🔹 expected unsupported" in text
    assert len([a for a in page.named("td") if a.get("class") == "missing"]) == 1  # 3.13 x 2.5.0
    details = page.named("details")
    assert [d["id"] for d in details] == [
        "cell-py3.12-torch2.4.1",
        "cell-py3.12-torch2.5.0",
        "cell-py3.13-torch2.4.1",
    ]
    links = {a["href"] for a in page.named("a")}
    assert {f"#{d['id']}" for d in details} <= links  # every grid square opens its details
    for needle in (
        "nvidia-cuda-runtime-cu12==12.4.127",
        "cpython 3.12.1 (abi cp312)",
        "import torch",
        "rebuild the extension",
        "1.250",
        "use torch 2.5",
    ):
        assert needle in text, needle


def test_filter_works_without_script() -> None:
    page = Page(render_html("ml", RESULTS))
    boxes = {a["id"] for a in page.named("input") if a.get("type") == "checkbox"}
    labels = {a["for"] for a in page.named("label")}
    assert {"hide-pass", "hide-fail", "hide-gpu-unverified"} <= boxes
    assert boxes == labels
    assert "#hide-fail:checked ~ main .cells .k-fail" in "".join(page.styles)


def test_odd_cell_ids_still_make_unique_anchors() -> None:
    results = [cell('a "b" <c>', "pass", {"x": "1"}), cell('a "b" <c>', "pass", {"x": "2"})]
    page = Page(render_html("x", results))
    anchors = [d["id"] or "" for d in page.named("details")]
    assert len(set(anchors)) == 2
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", anchor) for anchor in anchors)


def test_ten_thousand_cells_render() -> None:
    results = [
        cell(
            f"py3.{i % 4 + 10}-pkg{i // 4}",
            "fail" if i % 9 == 0 else "pass",
            {"python": f"3.{i % 4 + 10}", "pkg": str(i // 4)},
            category="import-error" if i % 9 == 0 else None,
            message="boom " * 50 if i % 9 == 0 else "",
            probes=[ProbeResult("import", "pkg", "pass", duration_s=0.5)],
        )
        for i in range(10_000)
    ]
    html = render_html("huge", results)
    assert html.count("<details") == 10_000
    assert html.count('<td class="k-') == 10_000  # 2,500 rows x 4 python columns
    assert len(html) < 40_000_000  # linear in the cells, a few KB each


def test_long_messages_are_cut_on_the_page() -> None:
    results = [cell("c", "error", {"x": "1"}, message="z" * 1_000_000)]
    html = render_html("x", results)
    assert len(html) < 100_000
    assert "truncated, see compat.json" in html


def test_no_cells() -> None:
    assert "No cells." in render_html("empty", [])


# The grid and details were rendered by jinja2 until 10,000 cells made that too slow; the page
# must stay byte-for-byte what this reference (the former template and its view) renders.
REFERENCE_TEMPLATE = """\
{% if grid_rows %}
<div class="scroll">
<table class="grid">
<thead><tr>{% for text in grid_header %}<th scope="col">{{ text }}</th>{% endfor %}</tr></thead>
<tbody>
{% for label, row in grid_rows %}
<tr><th scope="row">{{ label }}</th>{% for cell in row %}{% if cell is none %}<td class="missing">—</td>{% else %}<td class="k-{{ cell.kind.name }}" title="{{ cell.reason }}"><a href="#{{ cell.anchor }}">{{ cell.kind.symbol }} {{ cell.label }}</a></td>{% endif %}{% endfor %}</tr>
{% endfor %}
</tbody>
</table>
</div>
{% elif cells %}
<div class="scroll">
<table class="list">
<thead><tr><th scope="col">cell</th><th scope="col">result</th><th scope="col">reason</th></tr></thead>
<tbody>
{% for cell in cells %}
<tr class="k-{{ cell.kind.name }}"><td><a href="#{{ cell.anchor }}"><code>{{ cell.id }}</code></a></td><td><a href="#{{ cell.anchor }}">{{ cell.kind.symbol }} {{ cell.label }}</a></td><td>{{ cell.reason }}</td></tr>
{% endfor %}
</tbody>
</table>
</div>
{% else %}
<p>No cells.</p>
{% endif %}
<section class="cells">
<h2>Cells</h2>
{% for cell in cells %}
<details class="cell k-{{ cell.kind.name }}" id="{{ cell.anchor }}">
<summary><span class="badge k-{{ cell.kind.name }}">{{ cell.kind.symbol }} {{ cell.label }}</span> <code>{{ cell.id }}</code>{% if cell.reason %} — {{ cell.reason }}{% endif %}</summary>
<dl>
<dt>status</dt><dd>{{ cell.status }}{% if cell.category %} · <code>{{ cell.category }}</code>{% endif %}</dd>
{% if cell.expectation %}<dt>expectation</dt><dd>{{ cell.expectation }}</dd>{% endif %}
{% if cell.message %}<dt>message</dt><dd><pre>{{ cell.message }}</pre></dd>{% endif %}
{% if cell.hint %}<dt>hint</dt><dd>{{ cell.hint }}</dd>{% endif %}
{% if cell.python %}<dt>python</dt><dd>{{ cell.python }}</dd>{% endif %}
<dt>axes</dt><dd>{% for key, value in cell.axes %}<code>{{ key }}={{ value }}</code>{{ " " if not loop.last }}{% else %}—{% endfor %}</dd>
<dt>resolved</dt><dd>{% for dist, version in cell.resolved %}<code>{{ dist }}=={{ version }}</code>{{ " " if not loop.last }}{% else %}—{% endfor %}</dd>
<dt>durations</dt><dd>{% for step, seconds in cell.durations %}{{ step }} {{ seconds }} s{{ " · " if not loop.last }}{% else %}—{% endfor %}</dd>
</dl>
{% if cell.probes %}
<div class="scroll">
<table class="probes">
<thead><tr><th scope="col">probe</th><th scope="col">status</th><th scope="col">category</th><th scope="col">message</th><th scope="col">hint</th><th scope="col">seconds</th></tr></thead>
<tbody>
{% for probe in cell.probes %}
<tr><td><code>{{ probe.name }}</code></td><td>{{ probe.status }}</td><td>{% if probe.category %}<code>{{ probe.category }}</code>{% endif %}</td><td class="message">{% if probe.message %}<pre>{{ probe.message }}</pre>{% endif %}</td><td>{{ probe.hint }}</td><td>{{ probe.duration }}</td></tr>
{% endfor %}
</tbody>
</table>
</div>
{% endif %}
</details>
{% endfor %}
</section>
"""


def _reference_text(text: str) -> str:
    cleaned = clean_text(text).strip()
    if len(cleaned) > 20_000:
        return cleaned[:20_000] + "\n… (truncated, see compat.json)"
    return cleaned


def _reference_view(result: CellResult, anchor: str) -> dict[str, Any]:
    expectation = ""
    if result.expectation is not None:
        expectation = (
            f"{result.expectation.status} ({'met' if result.expectation.met else 'NOT met'})"
        )
        if result.expectation.reason:
            expectation += f": {result.expectation.reason}"
    python = ""
    if result.python is not None:
        info = result.python
        python = " ".join(part for part in (info.implementation, info.version) if part)
        if info.abi:
            python += f" (abi {info.abi})"
    return {
        "anchor": anchor,
        "id": one_line(result.id, 200),
        "kind": KINDS[kind_of(result)],
        "label": label(result),
        "reason": short_reason(result, 200),
        "status": result.status,
        "category": one_line(result.category or "", 200),
        "message": _reference_text(result.message),
        "hint": _reference_text(result.hint),
        "expectation": one_line(expectation, 500),
        "python": one_line(python, 200),
        "axes": [(one_line(k, 200), one_line(v, 500)) for k, v in result.axes.items()],
        "resolved": [(one_line(k, 200), one_line(v, 500)) for k, v in result.resolved.items()],
        "durations": [(one_line(k, 50), format_time(v)) for k, v in result.durations.items()],
        "probes": [
            {
                "name": one_line(f"{p.probe} {p.target}", 300),
                "status": one_line(p.status, 50),
                "category": one_line(p.category or "", 200),
                "message": _reference_text(p.message),
                "hint": _reference_text(p.hint),
                "duration": format_time(p.duration_s),
            }
            for p in result.probes
        ],
    }


def _reference_body(results: list[CellResult]) -> str:
    anchors: set[str] = set()
    views = []
    for index, result in enumerate(results):
        anchor = "cell-" + re.sub(r"[^A-Za-z0-9._-]", "_", one_line(result.id, 200))
        anchor = f"{anchor}-{index}" if anchor in anchors else anchor
        anchors.add(anchor)
        views.append(_reference_view(result, anchor))
    pivot = choose_pivot(results)
    header: list[str] = []
    rows: list[tuple[str, list[Any]]] = []
    if pivot is not None:
        header = [pivot.corner] + [pivot.column_label(c) for c in pivot.columns]
        for row in pivot.rows:
            squares = [pivot.at(row, column) for column in pivot.columns]
            # clean_text: the template wrote row labels unclean (a lone surrogate made the page
            # unwritable); the only change made since.
            row_label = clean_text(pivot.row_label(row))
            rows.append((row_label, [None if i is None else views[i] for i in squares]))
    environment = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.from_string(REFERENCE_TEMPLATE).render(
        grid_header=[one_line(text, 300) for text in header], grid_rows=rows, cells=views
    )


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_page_is_what_the_template_rendered(sample: str) -> None:
    results = SAMPLES[sample]
    page = render_html("ml <stack>", results)
    body = _reference_body(results)
    start = page.index('<div class="scroll">' if results else "<p>No cells.</p>")
    assert page[start : page.index("</main>")] == body
    assert page.count("<details") == len(results)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_page_can_be_written_whatever_the_cells_hold(sample: str) -> None:
    page = render_html("ml \x1b[31m\ud800", SAMPLES[sample])
    page.encode("utf-8")  # no lone surrogate from an axis value, id or message survives
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", page)
