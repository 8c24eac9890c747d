"""compat.html: self-contained (loads nothing), escaped, and complete for every cell."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import urllib.parse
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from _report_samples import SAMPLES

from compat_matrix.reports import render_html, write_reports
from compat_matrix.reports._verdicts import (
    clean_text,
    kind_of,
)
from compat_matrix.reports.baseline import (
    CulpritFinding,
    LockChange,
    diff_results,
    render_changes_markdown,
)
from compat_matrix.reports.html import _escape, _href
from compat_matrix.results import (
    CellResult,
    ExpectationOutcome,
    ProbeResult,
    PythonInfo,
    write_cell_result,
)

SCRIPT = "<script>alert('pwned')</script>"


class Page(HTMLParser):
    """Collects what a browser would act on: tags, attributes, text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("style", "script") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.styles.append(data)
        elif self._in == "script":
            self.scripts.append(data)
        else:
            self.text.append(data)

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def tags_with_id(self) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.tags if attrs.get("id")]


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
    (script,) = page.named("script")
    assert not script  # inline, no src
    assert not page.named("link")
    assert not page.named("img")
    css = "".join(page.styles)
    assert "url(" not in css
    assert "@import" not in css
    (csp,) = [a for a in page.named("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in (csp.get("content") or "")
    # Only the page's own script may run: the policy names its hash, nothing else.
    body = "".join(page.scripts).encode("utf-8")
    allowed = "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
    assert (csp.get("content") or "").endswith(f"script-src {allowed}")


def test_everything_from_results_is_escaped() -> None:
    html = render_html(SCRIPT, RESULTS)
    assert SCRIPT not in html
    assert html.count("<script") == 1  # the page's own
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
    assert [d["id"] for d in details] == ["cell-py3.12-torch2.4.1", "cell-py3.13-torch2.4.1"]
    rows = [r for r in page.named("li") if r.get("id")]  # passing cells: one line each
    assert [r["id"] for r in rows] == ["cell-py3.12-torch2.5.0"]
    links = {a["href"] for a in page.named("a")}
    assert {f"#{d['id']}" for d in [*details, *rows]} <= links  # every square links its cell
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
    # One filter per kind on the page (RESULTS has no plain pass), each a real checkbox a
    # keyboard reaches (not `hidden`, not display:none), its label showing the focus.
    assert boxes == {"hide-fail", "hide-gpu-unverified", "hide-expected"} == labels
    for box in page.named("input"):
        if box.get("type") == "checkbox":
            assert "hidden" not in box and box.get("tabindex") is None
    css = "".join(page.styles)
    assert "#hide-fail:checked ~ main .cells .k-fail" in css
    assert '#hide-fail:focus-visible ~ nav label[for="hide-fail"]' in css
    assert ".toggle { position: absolute; opacity: 0;" in css  # out of sight, not out of reach


def test_search_box_is_added_by_the_script_and_the_page_reads_without_it() -> None:
    page = Page(render_html("ml", RESULTS))
    (search,) = [a for a in page.named("input") if a.get("type") == "search"]
    assert "hidden" in search  # inert without JavaScript, so not shown
    script = "".join(page.scripts)
    assert 'getElementById("search")' in script and "box.hidden = false" in script
    assert "el.open = true" in script  # a followed link opens the cell's details


def test_odd_cell_ids_still_make_unique_anchors() -> None:
    results = [cell('a "b" <c>', "fail", {"x": "1"}), cell('a "b" <c>', "pass", {"x": "2"})]
    page = Page(render_html("x", results))
    anchors = [d["id"] or "" for d in [*page.named("details"), *page.named("li")] if d.get("id")]
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
    assert html.count("<details") == 1_112  # the failing cells; passing ones are rows
    assert html.count('<li class="k-pass" id="cell-') == 8_888
    assert html.count('<td class="k-') == 10_000  # 2,500 rows x 4 python columns
    assert len(html.encode("utf-8")) < 5_000_000  # (bench/bench_html.py times it in Chromium)


def test_long_messages_are_cut_on_the_page() -> None:
    results = [cell("c", "error", {"x": "1"}, message="z" * 1_000_000)]
    html = render_html("x", results)
    assert len(html) < 100_000
    assert "truncated, see compat.json" in html


def test_no_cells() -> None:
    assert "No cells." in render_html("empty", [])


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_every_cell_is_on_the_page_as_text_whatever_it_holds(sample: str) -> None:
    """Hostile ids, axes and messages: each cell has one anchor its grid square links to,
    and what the reader sees is the cleaned text, never markup."""
    results = SAMPLES[sample]
    html = render_html("ml <stack>", results)
    page = Page(html)
    ids = [a["id"] for a in page.tags_with_id()]
    cells = [i for i in ids if i and i.startswith("cell-")]
    assert len(cells) == len(set(cells)) == len(results)
    hrefs = {a["href"] for a in page.named("a") if (a.get("href") or "").startswith("#")}
    assert {f"#{c}" for c in cells} <= hrefs
    text = " ".join(" ".join(page.text).split())
    for result in results:
        if kind_of(result) not in ("pass", "gpu-unverified") and result.message.strip():
            shown = " ".join(clean_text(result.message).split())[:200]
            assert shown in text
    assert "<script>alert" not in html


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_page_can_be_written_whatever_the_cells_hold(sample: str) -> None:
    page = render_html("ml \x1b[31m\ud800", SAMPLES[sample])
    page.encode("utf-8")  # no lone surrogate from an axis value, id or message survives
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", page)


def test_cells_link_their_log_and_lock_where_the_report_has_them(tmp_path: Path) -> None:
    results = [
        cell("py3.12-a1", "fail", {"python": "3.12", "a": "1"}, lock="locks/py3.12-a1.txt"),
        cell("py3.12-a2", "pass", {"python": "3.12", "a": "2"}, lock="locks/py3.12-a2.txt"),
        cell("py3.12-a3", "pass", {"python": "3.12", "a": "3"}),
    ]
    (tmp_path / "logs").mkdir()
    for cell_id in ("py3.12-a1", "py3.12-a2"):
        (tmp_path / "logs" / f"{cell_id}.log").write_text("log\n")
    paths = write_reports(tmp_path, "links", results)
    page = Page(paths.html.read_text(encoding="utf-8"))
    hrefs = [a["href"] for a in page.named("a") if not (a.get("href") or "#").startswith("#")]
    assert hrefs == [
        "logs/py3.12-a1.log",
        "locks/py3.12-a1.txt",
        "logs/py3.12-a2.log",
        "locks/py3.12-a2.txt",
    ]
    for href in hrefs:
        assert (tmp_path / href).parent.name in ("logs", "locks")


def test_the_baseline_diff_opens_the_page_and_links_the_cells() -> None:
    before = [cell("py3.12-a1", "pass", {"python": "3.12", "a": "1"})]
    now = [
        cell("py3.12-a1", "fail", {"python": "3.12", "a": "1"}, message="broke"),
        cell("py3.12-a2", "pass", {"python": "3.12", "a": "2"}),
    ]
    diff = diff_results(before, now, "last night")
    html = render_html("x", now, diff=diff)
    page = Page(html)
    text = " ".join(" ".join(page.text).split())
    assert "Changes since baseline (last night)" in text
    assert "1 regression · 1 newly broken" in text
    assert "</code>: pass → fail <strong>regression</strong> — broke</li>" in html
    assert html.index("Changes since baseline") < html.index('<table class="grid">')
    assert '<a href="#cell-py3.12-a1">py3.12-a1</a>' in html
    assert "Changes since baseline" not in render_html("x", now)


def test_a_regression_shows_its_culprit_as_compat_md_does() -> None:
    """The culprit search's answer (found for real in test_culprit.py) under its regression."""
    before = [cell("py3.12-a1", "pass", {"python": "3.12", "a": "1"})]
    now = [cell("py3.12-a1", "fail", {"python": "3.12", "a": "1"}, message="broke")]
    numpy = LockChange("numpy", "2.3.0", "2.4.0", "2025-12-01")
    found = CulpritFinding("py3.12-a1", changed=(numpy,), culprits=(numpy,))
    diff = replace(
        diff_results(before, now, "last night"),
        culprits={"py3.12-a1": found},
        culprit_note="1 regressed cells searched in 12 s of 1800 s",
    )
    html = render_html("x", now, diff=diff)
    sentence = "broke because numpy 2.3.0 → 2.4.0 (released 2025-12-01)"
    assert sentence in render_changes_markdown(diff)
    assert f'— broke<br><span class="culprit">🔎 {sentence}</span></li>' in html
    assert "<p>Culprit search: 1 regressed cells searched in 12 s of 1800 s</p>" in html
    lost = replace(found, culprits=(), tried=("reverted numpy 2.4.0 → 2.3.0: fail",))
    html = render_html("x", now, diff=replace(diff, culprits={"py3.12-a1": lost}))
    assert "🔎 culprit not found: reverting the changed packages did not restore the cell" in html
    assert "(tried: reverted numpy 2.4.0 → 2.3.0: fail)" in html


def test_report_with_a_matrix_takes_its_name_and_locates_cells(tmp_path: Path) -> None:
    """`compat-matrix report DIR --matrix M`: shards carry no compat.json, the page is titled
    by the matrix's `name:` (not "compat-matrix: compat-matrix"), junit.xml names the file."""
    matrix = tmp_path / "compat.yml"
    matrix.write_text('name: scientific-python\nmatrix:\n  python: ["3.12"]\n  six: ["1.17.0"]\n')
    shard = tmp_path / "shard"
    write_cell_result(shard, cell("py3.12-six1.17.0", "fail", {"python": "3.12", "six": "1.17.0"}))
    out = tmp_path / "out"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compat_matrix",
            "report",
            str(shard),
            "--matrix",
            "compat.yml",
            "-o",
            str(out),
        ],
        check=False,
        timeout=120,
        capture_output=True,
        cwd=tmp_path,
    )
    html = (out / "compat.html").read_text(encoding="utf-8")
    assert "<title>compat-matrix: scientific-python</title>" in html
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert 'file="compat.yml"' in junit
    assert "cell py3.12-six1.17.0: compat.yml:4" in junit


def test_a_plain_link_is_what_quoting_and_escaping_make_of_it() -> None:
    """Paths of letters, digits and `/._-+~` skip quoting: it would leave them as they are."""
    for path in ("locks/py3.12-numpy2.0.2+cpu~1.txt", "logs/a_b-c.log", "", "a b", "x&y<'\"", "ü"):
        assert _href(path) == _escape(urllib.parse.quote(clean_text(path), safe="/._-+")), path
