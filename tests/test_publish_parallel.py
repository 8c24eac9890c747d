"""A big report's forked helpers: what they send and what is done meanwhile gives the very
reports of doing it all in one process."""

from __future__ import annotations

import dataclasses
import json
import marshal
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from test_report_scale import DATA, FILES, _report, _results

from compat_matrix.reports import _fill_meanwhile, _parallel, write_reports
from compat_matrix.reports._pivot import _build, _swapped, choose_pivot
from compat_matrix.reports.json_report import identity
from compat_matrix.reports.publish import (
    _canonical_fields,
    _read,
    _slim,
    _slim_fields,
    collect,
    publish_results,
)
from compat_matrix.results import (
    CellResult,
    cell_fields,
    cell_json,
    from_cell_fields,
    write_cell_result,
)


def _run_forked(run: Path, out: Path, baseline: Path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, str(DATA / "forked_baseline.py"), str(run), str(out), str(baseline)],
        capture_output=True,
        text=True,
        check=False,
    )
    if "fork_pays" in proc.stderr:  # no second CPU, or not Linux: nothing forked to test
        return []
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_a_baseline_read_while_the_helper_writes_gives_the_same_reports(tmp_path: Path) -> None:
    """The baseline is compared while a forked helper writes compat.json and junit.xml: every
    file is what one process writes; a bad baseline is told, and leaves nothing behind."""
    results = _results()
    run = tmp_path / "run"
    for result in results:
        write_cell_result(run, result)
    before = tmp_path / "before"
    changed = [r if i % 3 else replace(r, status="pass") for i, r in enumerate(results)]
    write_reports(before, "before", changed[5:])
    reference = collect([run], None, lines=True, slim=True)
    _, diff, error = publish_results(
        tmp_path / "reference",
        "scale",
        reference.results,
        baseline=before / "compat.json",
        lines=reference.lines,
    )
    assert reference.lines is not None
    reference.lines.close()
    assert diff is not None and diff.changed and not error
    out = tmp_path / "forked"
    lines = _run_forked(run, out, before / "compat.json")
    if lines:
        assert lines[0] == f"{len(diff.broken)} broken"
        assert lines[1] == str(sorted([*FILES, "diff.json"]))
        assert _report(out) == _report(tmp_path / "reference")
        assert (out / "diff.json").read_bytes() == (
            tmp_path / "reference" / "diff.json"
        ).read_bytes()
    (tmp_path / "bad.json").write_text("{not json")
    bad = tmp_path / "bad-out"
    lines = _run_forked(run, bad, tmp_path / "bad.json")
    if lines:
        assert lines[0].startswith("UsageError baseline")
        assert lines[1] == "[]"  # no report, no temporary file


def test_results_sent_as_fields_are_the_results() -> None:
    """What the collect helper sends of a cell file (its fields, slimmed, marshalled) makes
    the very result this process would read of it."""
    for result in _results():
        line = cell_json(result)
        fields = _canonical_fields(json.loads(line))
        assert fields is not None
        fields = _slim_fields(fields, {})
        sent = marshal.loads(marshal.dumps(fields))  # noqa: S302 - made here
        read = _slim(CellResult.from_dict(json.loads(line)))
        # compared as text: a NaN duration is not equal to itself
        assert cell_json(from_cell_fields(sent)) == cell_json(read)
        assert from_cell_fields(cell_fields(result)) == result
        # a field added to CellResult must be sent too, not fall back to its default
        assert len(cell_fields(result)) == len(dataclasses.fields(result))


def test_a_cell_file_is_read_whole_with_its_identity(tmp_path: Path) -> None:
    for size in (0, 1, 65_535, 65_536, 300_001):
        path = tmp_path / f"{size}.json"
        path.write_bytes(os.urandom(size))
        raw, seen = _read(str(path))
        assert raw == path.read_bytes()
        assert seen == identity(path.stat())


def test_a_swapped_grid_is_the_grid_built_the_other_way() -> None:
    results = _results()[:80]
    rows, columns = ("python",), tuple(a for a in results[0].axes if a != "python")
    straight = _build(results, rows, columns)
    assert straight is not None
    assert _swapped(straight) == _build(results, columns, rows)
    pivot = choose_pivot(results, max_columns=1)
    assert pivot is None or pivot.column_axes == rows


def test_a_file_flushed_to_disk_meanwhile_is_written_and_its_failure_told(tmp_path: Path) -> None:
    """The helper's first files reach the disk in a thread while it renders the next: the
    file is whole once waited for, and a failed flush is raised by the wait, as fill_stage
    raises it."""
    fd = os.open(tmp_path / "a", os.O_WRONLY | os.O_CREAT)
    wait = _fill_meanwhile(fd, lambda out: out.write(b"whole"))
    wait()
    assert (tmp_path / "a").read_bytes() == b"whole"
    read, write = os.pipe()  # a pipe cannot be flushed to disk: fsync fails
    try:
        wait = _fill_meanwhile(write, lambda out: out.write(b"x"))
        with pytest.raises(OSError):
            wait()
    finally:
        os.close(read)


def test_a_released_helper_holds_the_replaced_file_and_none_of_the_output(
    tmp_path: Path,
) -> None:
    """A report's helper, let go, frees the report files replaced after the report ended (a
    170 MB compat.json takes 70 ms and more to free): it holds the old file, and not the
    report's output, so `compat-matrix report | tail` ends when the report does."""
    if not sys.platform.startswith("linux"):
        pytest.skip("report helpers are forked on Linux only")
    report, replacement = tmp_path / "compat.json", tmp_path / "staged"
    report.write_bytes(b"old" * 100_000)
    replacement.write_bytes(b"new")
    script = DATA / "released_helper.py"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(report), str(replacement)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=30)  # the end of the output: the helper lives on
    except subprocess.TimeoutExpired:  # the helper holds the output: end both
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, err
    pid = int(out)
    try:
        fds = Path(f"/proc/{pid}/fd")
        links = {int(fd.name): os.readlink(fd) for fd in fds.iterdir()}
        assert f"{report} (deleted)" in links.values()
        assert [links[fd] for fd in (0, 1, 2)] == [os.devnull] * 3
        assert report.read_bytes() == b"new"
    finally:
        os.kill(pid, signal.SIGKILL)


def test_a_helper_let_go_is_reaped_later_and_a_killed_one_tells_no_success() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("report helpers are forked on Linux only")
    helper = _parallel.Forked(lambda: None)
    pid = helper.pid
    assert helper.finished()
    helper.release()
    assert pid in _parallel._released
    _parallel._reap()
    assert pid not in _parallel._released
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    killed = _parallel.Forked(lambda: os.kill(os.getpid(), signal.SIGKILL))
    assert not killed.finished()
    killed.stop()
    failed = _parallel.Forked(_fails)
    assert not failed.finished()
    failed.stop()


def _fails() -> None:
    raise OSError("the helper's work fails")
