"""The verdict list printed at the end of `nox -s probe`."""

from __future__ import annotations

import re
import sys
from typing import Any

from compat_matrix.reports import _verdicts, render_terminal
from compat_matrix.reports._verdicts import one_line
from compat_matrix.results import CellResult, ExpectationOutcome, ProbeResult

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cell(cell_id: str, status: str, **fields: Any) -> CellResult:
    return CellResult(id=cell_id, axes={"python": "3.12", "pkg": cell_id}, status=status, **fields)


RESULTS = [
    cell("py3.12-numpy2.2.6", "pass"),
    cell(
        "py3.12-numpy1.26.4",
        "fail",
        category="abi-numpy",
        message="numpy.core.multiarray failed to import\nTraceback (most recent call last): ...",
    ),
    cell("py3.13-numpy1.26.4", "unsupported", category="no-distribution", message="no wheel"),
    cell(
        "py3.12-torch2.4",
        "pass",
        gpu_unverified=True,
        probes=[ProbeResult("cuda", "driver", "skip", "no-gpu", "no NVIDIA driver found")],
    ),
    cell(
        "py3.11-jax0.4",
        "conflict",
        category="resolution-conflict",
        message="jax needs numpy>=2",
        expectation=ExpectationOutcome("conflict", met=True),
    ),
    cell("py3.10-numpy1.26.4", "pass", expectation=ExpectationOutcome("fail", met=False)),
]


def test_one_line_per_cell_in_order_then_summary() -> None:
    lines = render_terminal(RESULTS, color=False).splitlines()
    assert len(lines) == len(RESULTS) + 1
    assert lines[0].split() == ["pass", "py3.12-numpy2.2.6"]  # a plain pass has no reason
    for line, result in zip(lines, RESULTS):
        assert result.id in line
    assert lines[1].split()[:2] == ["fail", "py3.12-numpy1.26.4"]
    assert lines[1].endswith("abi-numpy: numpy.core.multiarray failed to import")
    assert "GPU unverified" in lines[3]
    assert "no NVIDIA driver found" in lines[3]
    assert lines[4].lstrip().startswith("expected conflict")
    assert "expected fail, got pass" in lines[5]
    assert lines[-1] == (
        "compat-matrix: 6 cells: 1 pass, 1 GPU unverified, 1 fail, 1 unsupported, 1 expected,"
        " 1 unmet"
    )


def test_columns_are_aligned() -> None:
    lines = render_terminal(RESULTS, color=False).splitlines()[:-1]
    starts = {line.index(result.id) for line, result in zip(lines, RESULTS)}
    assert len(starts) == 1


def test_colour_only_when_asked() -> None:
    plain = render_terminal(RESULTS, color=False)
    coloured = render_terminal(RESULTS, color=True)
    assert "\x1b" not in plain
    assert "\x1b[1;31mfail" in coloured
    assert ANSI.sub("", coloured) == plain


def test_escape_sequences_in_messages_never_reach_the_terminal() -> None:
    evil = cell(
        "x", "error", category="crash", message="\x1b]0;owned\x07\x1b[2J\x1b[31mboom\x00\r\x08"
    )
    for color in (False, True):
        out = render_terminal([evil], color=color)
        assert "owned" not in out
        assert "[2J" not in out
        assert "\x00" not in out
        assert "\x08" not in out
        assert "crash: boom" in ANSI.sub("", out)


def test_long_messages_are_cut() -> None:
    out = render_terminal([cell("x", "error", message="y" * 10_000)], color=False)
    assert len(out.splitlines()[0]) < 250


def test_no_cells() -> None:
    assert render_terminal([], color=True) == "compat-matrix: no cells\n"


def test_every_line_fits_the_terminal_width_without_wrapping() -> None:
    long = cell(
        "py3.12-scikit-learn1.5.2-pandas2.2.3-numpy2.2.6-torch2.6.0",
        "fail",
        category="import-error",
        message="sklearn: " + "a long message from the import " * 10,
    )
    for width in (80, 60, 120):
        text = render_terminal([*RESULTS, long], color=False, width=width)
        assert all(len(line) <= width for line in text.splitlines()), text
        assert "import-error" in text  # the reason is cut, never dropped
    # without a width (a log file) nothing is cut to a terminal
    assert "a long message from the import a long" in render_terminal([long], color=False)


def test_printable_text_is_clean_already() -> None:
    """clean_text and one_line return printable text as it is (no regex pass): no printable
    character is an escape, a control character, a surrogate, a non-character or whitespace
    other than the space, in this interpreter's Unicode."""
    printable = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isprintable())
    assert _verdicts._CONTROL.search(printable) is None
    assert _verdicts._ANSI.search(printable) is None
    assert set(_verdicts._SPACES.findall(printable)) == {" "}
    assert "\r" not in printable
    for text in ("a  b", " a", "a ", "a\tb", "\x1b[31ma\x1b[0m", "a\u00a0b", "x" * 300):
        slow = _verdicts._SPACES.sub(" ", _verdicts._ANSI.sub("", text)).strip()
        assert one_line(text, 1000) == slow[:1000], text
