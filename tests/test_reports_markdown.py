"""compat.md: the grid a person reads first, and its 1 MiB step-summary budget."""

from __future__ import annotations

import re
from typing import Any

from compat_matrix.reports import render_markdown
from compat_matrix.reports.markdown import inline_markdown
from compat_matrix.results import CellResult, ExpectationOutcome, ProbeResult

MIB = 1024 * 1024


FIELDS = set(CellResult.__dataclass_fields__) - {"python"}  # `python=` means the axis here


def cell(status: str, **axes_and_fields: Any) -> CellResult:
    fields = {k: v for k, v in axes_and_fields.items() if k in FIELDS}
    axes = {k: str(v) for k, v in axes_and_fields.items() if k not in fields}
    cell_id = "-".join(f"{'py' if k == 'python' else k}{v}" for k, v in axes.items())
    return CellResult(id=cell_id, axes=axes, status=status, **fields)


def table_rows(text: str) -> list[list[str]]:
    """The first Markdown table's rows, split into cells."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif rows:
            break
    return rows


SMALL = [
    cell("pass", python="3.11", numpy="1.26.4"),
    cell(
        "fail",
        python="3.11",
        numpy="2.2.6",
        category="abi-numpy",
        message="A module compiled using NumPy 1.x cannot be run in NumPy 2.2.6",
        hint="Pin numpy<2 or upgrade pandas",
        probes=[ProbeResult("import", "pandas", "fail", "abi-numpy", "numpy.dtype size changed")],
    ),
    cell("pass", python="3.12", numpy="1.26.4", gpu_unverified=True),
    # python 3.12 x numpy 2.2.6 excluded
    cell(
        "unsupported",
        python="3.13",
        numpy="1.26.4",
        category="no-distribution",
        message="no cp313 wheel for numpy 1.26.4",
        expectation=ExpectationOutcome("unsupported", met=True, reason="numpy 1.26 predates 3.13"),
    ),
    cell("pass", python="3.13", numpy="2.2.6", expectation=ExpectationOutcome("fail", met=False)),
]


def test_grid_has_python_rows_other_axes_as_columns_and_excluded_dash() -> None:
    rows = table_rows(render_markdown("scientific", SMALL))
    assert rows[0] == ["python", "numpy 1.26.4", "numpy 2.2.6"]
    assert [row[0] for row in rows[2:]] == ["3.11", "3.12", "3.13"]
    assert rows[2] == ["3.11", "✅ pass", "❌ fail [^1]"]
    assert rows[3] == ["3.12", "🟡 GPU unverified", "—"]  # GPU unverified is not a plain pass
    assert rows[4][1] == "🔹 expected unsupported [^2]"  # an xfail, marked apart from a failure
    assert rows[4][2] == "❗ **pass (expected fail)** [^3]"  # unmet expectation highlighted


def test_footnotes_give_id_category_message_hint_and_probe() -> None:
    text = render_markdown("scientific", SMALL)
    notes = text.split("### Notes", 1)[1]
    first = notes.split("[^2]: ")[0]
    assert "`py3.11-numpy2.2.6`" in first
    assert "`abi-numpy`" in first
    assert "cannot be run in NumPy 2.2.6" in first
    assert "Pin numpy&lt;2 or upgrade pandas" in first
    assert "`import pandas` fail" in first
    assert "numpy 1.26 predates 3.13" in notes
    assert "[^3]: " in notes


def test_title_counts_and_legend() -> None:
    text = render_markdown("scientific", SMALL)
    assert text.startswith("## compat-matrix: scientific\n")
    assert "**5 cells**: ✅ 1 pass · 🟡 1 GPU unverified · ❌ 1 fail" in text
    legend = text.split("| python", 1)[0].split("<sub>", 1)[1]
    for symbol in ("✅", "❌", "🟡", "🔹", "❗", "—"):
        assert symbol in legend, symbol  # every mark on the page is in the legend
    for symbol in ("⛔", "⚠️", "⏭️", "💥", "🔸"):
        assert symbol not in legend, symbol  # and only those
    # An expected failure and a GPU-unverified pass: different marks, different words.
    assert "🔹 expected: a non-pass result the matrix expects" in legend
    assert "🟡 GPU unverified: passed, but GPU checks could not run" in legend
    assert "numbered marks link to the notes" in legend


def test_footnotes_are_github_footnotes_with_indented_details() -> None:
    text = render_markdown("scientific", SMALL)
    refs = set(re.findall(r"\[\^(\d+)\](?!:)", text))
    definitions = re.findall(r"^\[\^(\d+)\]: ", text, re.M)
    assert refs == set(definitions) == {"1", "2", "3"}
    note = text.split("[^1]: ", 1)[1].split("[^2]: ", 1)[0]
    assert "\n    - `import pandas` fail" in note  # indented: part of footnote 1


def test_an_all_pass_page_has_a_one_item_legend_and_no_notes() -> None:
    text = render_markdown("ok", [cell("pass", python="3.12", numpy="2.2.6")])
    assert "<sub>✅ pass: installed and every probe passed</sub>" in text
    assert "[^" not in text


def test_identical_causes_share_one_footnote() -> None:
    same = {"category": "no-distribution", "message": "no wheel", "hint": ""}
    results = [cell("unsupported", python=v, numpy="1.0", **same) for v in ("3.12", "3.13")]
    text = render_markdown("x", results)
    assert [row[1] for row in table_rows(text)[2:]] == ["⛔ unsupported [^1]"] * 2
    assert "`py3.12-numpy1.0`, `py3.13-numpy1.0`" in text
    assert "[^2]" not in text


def test_wide_grid_swaps_rows_and_columns() -> None:
    results = [cell("pass", python=p, torch=f"2.{t}") for p in ("3.11", "3.12") for t in range(20)]
    rows = table_rows(render_markdown("x", results))
    assert rows[0] == ["torch", "python 3.11", "python 3.12"]
    assert len(rows) == 2 + 20


def test_without_python_axis_first_axis_makes_rows() -> None:
    results = [cell("pass", numpy=n, pandas=p) for n in ("1", "2") for p in ("a", "b")]
    assert table_rows(render_markdown("x", results))[0] == ["numpy", "pandas a", "pandas b"]


def test_mostly_empty_grid_falls_back_to_a_list() -> None:
    pairs = [("3.9", "2.0"), ("3.10", "2.1"), ("3.11", "2.2"), ("3.12", "2.3")]
    results = [cell("pass", python=p, torch=t) for p, t in pairs]  # include-only diagonal
    assert table_rows(render_markdown("x", results))[0] == ["cell", "result"]


def test_too_wide_both_ways_or_duplicates_fall_back_to_a_list() -> None:
    wide = [cell("pass", python=f"3.{p}", torch=f"2.{t}") for p in range(13) for t in range(13)]
    assert table_rows(render_markdown("x", wide))[0] == ["cell", "result"]
    twins = [cell("pass", python="3.12"), cell("fail", python="3.12")]
    rows = table_rows(render_markdown("x", twins))
    assert rows[0] == ["cell", "result"]
    assert rows[3] == ["`py3.12`", "❌ fail [^1]"]


def test_hostile_text_cannot_break_the_table_or_inject_html() -> None:
    hostile = "a | b\n<script>alert(1)</script> \x1b[31m**bold** [link](x) `tick`\x00"
    results = [cell("fail", python="3.12", numpy="1", message=hostile, hint=hostile)]
    text = render_markdown(hostile, results)
    assert "<script>" not in text
    assert "\x1b" not in text
    assert "\x00" not in text
    assert "a \\| b &lt;script&gt;" in text
    assert "\\*\\*bold\\*\\* \\[link\\](x) \\`tick\\`" in text
    assert all(len(row) == 2 for row in table_rows(text))


def test_long_messages_are_trimmed() -> None:
    results = [cell("error", python="3.12", message="x" * 100_000, category="network")]
    text = render_markdown("x", results)
    assert len(text) < 5_000
    assert "x…" in text


def synthetic(count: int, fail_every: int = 7) -> list[CellResult]:
    results = []
    for i in range(count):
        status = "fail" if i % fail_every == 0 else ("unsupported" if i % 11 == 0 else "pass")
        results.append(
            CellResult(
                id=f"py3.{i % 5 + 9}-pkg{i}",
                axes={"python": f"3.{i % 5 + 9}", "pkg": f"{i}.0.0", "extra": f"v{i % 3}"},
                status=status,  # type: ignore[arg-type]
                category=None if status == "pass" else "import-error",
                message="" if status == "pass" else f"cell {i}: " + "m" * 400,
                hint="do something" if status == "fail" else "",
            )
        )
    return results


def test_ten_thousand_cells_stay_under_one_mib_with_failures_first() -> None:
    results = synthetic(10_000)
    text = render_markdown("huge", results)
    size = len(text.encode("utf-8"))
    assert size < MIB
    assert size > 500_000  # the budget is used, not thrown away
    assert "**10000 cells**" in text
    assert re.search(r"… \d+ more notes, see compat\.json", text)
    notes = text.split("### Notes", 1)[1]
    assert "❌ **fail**" in notes
    # A less urgent note is kept only once every failure's note is.
    failures = sum(1 for result in results if result.status == "fail")
    assert "⛔ **unsupported**" in notes  # the budget reaches them in this data set
    assert notes.count("❌ **fail**") == failures


def test_summary_lists_cells_that_need_attention_when_the_grid_is_too_big() -> None:
    results = synthetic(10_000)
    for i, result in enumerate(results):  # one axis with 10,000 long values: no grid fits
        result.axes = {"package-with-a-long-name": f"{i}.0.0+local.{'z' * 120}"}
        result.id = f"pkg{i}-{'z' * 120}"
    results[-1].status = "error"
    results[-1].category = "network"
    text = render_markdown("huge", results)
    assert len(text.encode("utf-8")) < MIB
    rows = table_rows(text)
    assert rows[0] == ["cell", "result"]
    statuses = [row[1].split()[1] for row in rows[2:]]
    assert statuses[0] == "fail"
    assert "pass" not in statuses  # passing cells are counted, not listed
    assert statuses.index("error") < statuses.index("unsupported")
    passing = sum(1 for r in results if r.status == "pass")
    assert f"{passing} passing cells are only counted" in text


def test_tiny_budget_is_still_respected() -> None:
    for budget in (200, 2_000, 20_000):
        text = render_markdown("x", synthetic(500), max_bytes=budget)
        assert len(text.encode("utf-8")) <= budget


def test_no_cells() -> None:
    text = render_markdown("empty", [])
    assert "**0 cells**" in text
    assert "No cells." in text


def test_one_distributions_findings_of_one_kind_are_one_line_of_the_note() -> None:
    findings = [
        ProbeResult(
            "abi",
            f"pandas/_libs/m{i}.so",
            "fail",
            "abi-numpy",
            f"pandas/_libs/m{i}.so was built against NumPy 1.x",
            details={"owner": "pandas 2.0.3"},
        )
        for i in range(35)
    ]
    result = cell("fail", python="3.11", numpy="2.2.6", category="abi-numpy", probes=findings)
    note = render_markdown("x", [result]).split("[^1]: ", 1)[1]
    assert (
        "    - `abi pandas (35 files)` fail · `abi-numpy`: pandas/\\_libs/m0.so was built" in note
    )
    assert "more probes" not in note


def test_inline_markdown_escapes_as_one_simultaneous_mapping() -> None:
    """The chain of replacements escapes each special character once, as a single mapping
    of every character would (a backslash or `&` written by an escape is not escaped again)."""
    table = str.maketrans(
        {c: "\\" + c for c in "\\`*_[]|~#"} | {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
    )
    specials = "\\`*_[]|~#&<>"
    texts = [specials, specials[::-1], "a\\&b<c>&amp;\\\\`x`", "numpy<2 & pandas>=2.2.2 [_x_]"]
    texts += [a + b + "t" + c for a in specials for b in specials for c in specials]
    for text in texts:
        assert inline_markdown(text, 1000) == text.translate(table), text
