"""`report --baseline` and `--fail-on`: what changed since the last good night, on real reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from compat_matrix.errors import UsageError
from compat_matrix.reports import baseline as baseline_module
from compat_matrix.reports import write_reports
from compat_matrix.reports.baseline import (
    Baseline,
    diff_results,
    load_baseline,
    render_changes_markdown,
)
from compat_matrix.reports.gate import gate_exit_status, run_status
from compat_matrix.results import (
    CELL_KEYS,
    CellResult,
    ExpectationOutcome,
    ProbeResult,
    write_cell_result,
)

MIB = 1024 * 1024


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compat_matrix", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _cell(cell_id: str, status: str, expected: str | None = None, **fields: str) -> CellResult:
    return CellResult(
        id=cell_id,
        axes={"python": "3.12", "pkg": cell_id},
        status=status,  # type: ignore[arg-type]
        expectation=ExpectationOutcome(expected, expected == status) if expected else None,  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


LAST_NIGHT = [
    _cell("stays", "pass"),
    _cell("breaks", "pass"),
    _cell("gets-fixed", "fail", category="abi-numpy", message="numpy.dtype size changed"),
    _cell("loses-wheels", "pass"),
    _cell("expected-break", "pass"),
    _cell("was-skipped", "skip", category="no-interpreter"),
    _cell("goes-away", "pass"),
]
TONIGHT = [
    _cell("stays", "pass"),
    _cell("breaks", "fail", category="undefined-symbol", message="undefined symbol: PyFoo"),
    _cell("gets-fixed", "pass"),
    _cell("loses-wheels", "unsupported", category="no-distribution", message="no wheel"),
    _cell("expected-break", "fail", expected="fail"),
    _cell("was-skipped", "fail", category="crash", message="SIGSEGV"),
    _cell("is-new", "pass"),
]


@pytest.fixture
def nights(tmp_path: Path) -> tuple[Path, Path]:
    """Last night's report (a real compat.json) and tonight's cell files."""
    baseline = tmp_path / "baseline"
    write_reports(baseline, "nightly", LAST_NIGHT)
    tonight = tmp_path / "tonight"
    for result in TONIGHT:
        write_cell_result(tonight, result)
    return baseline / "compat.json", tonight


def test_changes_are_sorted_into_broken_fixed_unsupported_new_removed(nights) -> None:
    baseline, _ = nights
    name, cells = load_baseline(baseline)
    assert name == "nightly"
    diff = diff_results(cells, TONIGHT, name)
    assert [c.id for c in diff.broken] == ["breaks", "expected-break"]
    assert [c.id for c in diff.fixed] == ["gets-fixed"]
    assert [c.id for c in diff.unsupported] == ["loses-wheels"]
    assert [c.id for c in diff.other] == ["was-skipped"]
    assert [c.id for c in diff.added] == ["is-new"]
    assert [c.id for c in diff.removed] == ["goes-away"]
    # An expected failure is listed but is no regression; a cell nobody could judge last
    # night (skip) cannot regress.
    assert [c.id for c in diff.regressions] == ["breaks", "loses-wheels"]
    assert diff.broken[0].before == "pass"
    assert diff.broken[0].after == "fail"
    assert diff.broken[0].category == "undefined-symbol"


def test_report_with_baseline_writes_diff_json_opens_compat_md_and_exits_1(nights) -> None:
    baseline, tonight = nights
    proc = _cli("report", str(tonight), "--baseline", str(baseline))
    assert proc.returncode == 1, proc.stderr
    assert "2 regressions" in proc.stdout
    diff = json.loads((tonight / "diff.json").read_text())
    assert diff["regressions"] == ["breaks", "loses-wheels"]
    assert [c["id"] for c in diff["newly_fixed"]] == ["gets-fixed"]
    assert [c["id"] for c in diff["new_cells"]] == ["is-new"]
    assert [c["id"] for c in diff["removed_cells"]] == ["goes-away"]
    assert diff["baseline"] == {"name": "nightly", "cells": 7}
    markdown = (tonight / "compat.md").read_text()
    assert markdown.startswith("### Changes since baseline (nightly)")
    head, _, table = markdown.partition("## compat-matrix:")
    assert "#### ❌ Newly broken (2)" in head
    assert "`breaks` pass → fail **regression** · `undefined-symbol`" in head
    assert "`expected-break` pass → fail (expected)" in head
    assert "#### ✅ Newly fixed (1)" in head
    assert "#### ⛔ Newly unsupported (1)" in head
    assert "#### 🆕 New cells (1)" in head
    assert "#### 🗑️ Removed cells (1)" in head
    assert table  # the usual report follows


@pytest.mark.parametrize(
    ("fail_on", "expected"), [("error", 1), ("fail", 1), ("regression", 1), ("never", 0)]
)
def test_fail_on_decides_the_exit_status_with_a_regression(nights, fail_on, expected) -> None:
    baseline, tonight = nights
    proc = _cli("report", str(tonight), "--baseline", str(baseline), "--fail-on", fail_on)
    assert proc.returncode == expected, proc.stdout + proc.stderr


def test_fail_on_regression_ignores_failures_that_did_not_regress(tmp_path: Path) -> None:
    old = [_cell("a", "fail"), _cell("b", "error")]
    new = [_cell("a", "fail"), _cell("b", "error")]
    write_reports(tmp_path / "old", "n", old)
    for result in new:
        write_cell_result(tmp_path / "new", result)
    base = str(tmp_path / "old" / "compat.json")
    run = str(tmp_path / "new")
    assert _cli("report", run, "--baseline", base, "--fail-on", "regression").returncode == 0
    assert _cli("report", run, "--baseline", base, "--fail-on", "error").returncode == 1
    assert _cli("report", run, "--baseline", base).returncode == 1
    markdown = (tmp_path / "new" / "compat.md").read_text()
    assert "No changes: all 2 cells as in the baseline." in markdown


def test_fail_on_levels_for_infrastructure_errors() -> None:
    results = [_cell("a", "pass"), _cell("b", "error")]
    assert gate_exit_status(results, None, "error") == 3
    assert gate_exit_status(results, None, "fail") == 0
    assert gate_exit_status(results, None, "regression") == 0
    assert gate_exit_status(results, None, "never") == 0
    assert run_status(results) == "error"
    assert run_status([_cell("a", "pass")]) == "pass"
    failing = [_cell("a", "fail"), _cell("b", "error")]
    assert gate_exit_status(failing, None, "fail") == 1
    assert run_status(failing) == "fail"


def test_an_unmet_expectation_fails_but_is_not_a_regression() -> None:
    old = [_cell("x", "fail")]
    new = [_cell("x", "pass", expected="fail")]  # xfail-strict: it passes now
    diff = diff_results(old, new)
    assert [c.id for c in diff.fixed] == ["x"]
    assert not diff.regressions
    assert gate_exit_status(new, diff, "error") == 1
    assert gate_exit_status(new, diff, "regression") == 0


def test_a_bad_baseline_is_a_usage_error(tmp_path: Path) -> None:
    write_cell_result(tmp_path / "run", _cell("a", "pass"))
    proc = _cli("report", str(tmp_path / "run"), "--baseline", str(tmp_path / "nope.json"))
    assert proc.returncode == 2
    assert "cannot read baseline" in proc.stderr
    (tmp_path / "junk.json").write_text('{"something": "else"}')
    proc = _cli("report", str(tmp_path / "run"), "--baseline", str(tmp_path / "junk.json"))
    assert proc.returncode == 2
    assert "is not a compat.json" in proc.stderr
    with pytest.raises(UsageError, match="not JSON"):
        (tmp_path / "bad.json").write_text("{")
        load_baseline(tmp_path / "bad.json")


def test_a_baseline_folder_means_its_compat_json(tmp_path: Path) -> None:
    write_reports(tmp_path / "old", "folder", [_cell("a", "pass")])
    name, cells = load_baseline(tmp_path / "old")
    assert name == "folder"
    assert [c.id for c in cells] == ["a"]


def test_ten_thousand_changes_keep_compat_md_under_a_mib(tmp_path: Path) -> None:
    old = [_cell(f"cell-{i:05d}", "pass") for i in range(10_000)]
    new = [
        _cell(f"cell-{i:05d}", "fail", category="crash", message="x" * 500) for i in range(10_000)
    ]
    diff = diff_results(old, new, "big")
    preamble = render_changes_markdown(diff)
    assert len(preamble.encode()) < 100_000
    assert "… 9950 more, see diff.json" in preamble
    paths = write_reports(tmp_path, "big", new, preamble=preamble)
    text = paths.markdown.read_text()
    assert len(text.encode()) < MIB
    assert text.startswith("### Changes since baseline (big)")


def test_a_broken_or_unended_baseline_is_a_usage_error_wherever_it_breaks(tmp_path: Path) -> None:
    """A baseline read line by line gives the cells of parsing it whole, and the same verdict
    on a broken line early or late, on lines after the closing one, and on a file without it."""
    results = [
        _cell(f"c{n:02d}", "fail" if n % 3 else "pass", "fail" if n % 5 == 0 else None)
        for n in range(40)
    ]
    write_reports(tmp_path / "good", "night", results)
    good = tmp_path / "good" / "compat.json"
    assert _compared(load_baseline(good)[1]) == _compared(
        [CellResult.from_dict(cell) for cell in json.loads(good.read_text())["cells"]]
    )
    lines = good.read_bytes().split(b"\n")
    variants = {
        "broken-late": [*lines[:30], b"{not json", *lines[31:]],
        "broken-early": [*lines[:3], b"{not json", *lines[4:]],
        "after-end": [*lines[:-1], b'{"id": "x"}', b""],
        "no-end": lines[:-2],
    }
    for name, variant in variants.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(b"\n".join(variant))
        with pytest.raises(UsageError, match="not JSON"):
            load_baseline(path)


def _compared(cells: list[CellResult]) -> list[tuple[object, ...]]:
    return [
        (c.id, c.axes, c.status, c.category, c.message, c.expectation, c.resolved) for c in cells
    ]


def test_a_baseline_reads_the_fields_around_the_probes_as_a_whole_parse_does(
    tmp_path: Path,
) -> None:
    """A comparison reads the fields before and after a cell's probes without parsing them;
    texts and details that look like those keys, a layout of another tool, and a broken line
    read as parsing every line whole reads them (or fail as it does)."""
    looks = ', "probes": [ , "durations": {'
    hostile = [
        _cell("a", "fail", category=looks, message=f'x{looks}"', lock=looks, hint=looks),
        _cell("b", "pass", expected="fail", fingerprint=looks),
    ]
    hostile[0].probes = [
        ProbeResult(
            "import", looks, "fail", looks, looks, looks, 1.0, {"durations": {"probes": []}}
        )
    ]
    hostile[1].resolved = {"probes": "[", "durations": "{"}
    write_reports(tmp_path / "odd", "odd", hostile)
    path = tmp_path / "odd" / "compat.json"
    whole = json.loads(path.read_text())["cells"]
    assert _compared(load_baseline(path)[1]) == _compared([CellResult.from_dict(c) for c in whole])
    # A line laid out otherwise (its axes after the probes) is parsed whole.
    lines = path.read_bytes().split(b"\n")
    keys = [key for key in CELL_KEYS if key != "axes"]
    keys.insert(keys.index("probes") + 1, "axes")
    lines[2] = json.dumps({key: whole[1][key] for key in keys}).encode() + b","
    path.write_bytes(b"\n".join(lines))
    assert load_baseline(path)[1][1].axes == whole[1]["axes"]
    # A line cut inside its probes is no cell, as parsed whole.
    lines[1] = lines[1][: lines[1].index(b'"durations"') - 3] + b","
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(UsageError, match="not JSON"):
        load_baseline(path)


def test_a_baseline_loaded_meanwhile_is_the_one_loaded_here_errors_and_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`report --baseline` reads a big baseline in a forked helper while it reads its cell
    files: the same cells as reading it here, the same error for a bad one; a helper killed is
    stood in for, and one not waited for is stopped. (Forked whatever the file's size and the
    CPUs here: what is tested is what comes back.)"""
    if not sys.platform.startswith("linux"):
        pytest.skip("report helpers are forked on Linux only")
    monkeypatch.setattr(baseline_module, "can_fork", lambda: True)
    monkeypatch.setattr(baseline_module, "_FORK_MIN_BYTES", 0)
    nights = [replace(cell, resolved={"pkg": cell.id, "six": "1.17.0"}) for cell in LAST_NIGHT]
    write_reports(tmp_path / "night", "nightly", nights)
    path = tmp_path / "night" / "compat.json"
    here = load_baseline(path)
    assert _compared(here[1]) == _compared(nights)

    def meanwhile(path: Path) -> Baseline:
        loading = Baseline.meanwhile(path)
        assert loading._helper is not None
        return loading

    assert meanwhile(path).load() == here
    assert meanwhile(tmp_path / "night").load() == here
    for text in ('{"schema": 1, "cells": [{"id": "x", "status": "maybe"}]}', "{", "[]"):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(UsageError) as told_here:
            load_baseline(bad)
        with pytest.raises(UsageError) as told_by_helper:
            meanwhile(bad).load()
        assert str(told_by_helper.value) == str(told_here.value)
    killed = meanwhile(path)
    os.kill(killed._helper.pid, signal.SIGKILL)  # type: ignore[union-attr]
    assert killed.load() == here
    left = meanwhile(path)
    pid = left._helper.pid  # type: ignore[union-attr]
    left.close()
    with pytest.raises(ChildProcessError):  # stopped and reaped
        os.waitpid(pid, os.WNOHANG)
