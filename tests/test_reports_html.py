"""compat.html: self-contained (loads nothing), escaped, and complete for every cell."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from compat_matrix.reports import render_html
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
