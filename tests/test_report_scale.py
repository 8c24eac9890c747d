"""Reports at scale: each cell file read once, copied into compat.json, the same bytes as
rendering the results; intermediate publishes spaced so a run's cost per cell does not grow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from _report_samples import varied_results

from compat_matrix.reports import write_reports
from compat_matrix.reports.baseline import load_baseline
from compat_matrix.reports.publish import _valid_fields, collect
from compat_matrix.results import (
    CELL_KEYS,
    SUMMARY_SUFFIX,
    CellResult,
    ProbeResult,
    cell_fields,
    write_cell_result,
)
from compat_matrix.run.pipeline import load_selection, parse_run_options, publish_due, run_pipeline

FILES = ("compat.json", "junit.xml", "compat.md", "compat.html")
#: Scripts the tests run in a child interpreter.
DATA = Path(__file__).parent / "data"


def _results() -> list[CellResult]:
    """Hostile samples with file-safe ids, and the details a real run writes (loaded files, an
    owner, a traceback) on their probes."""
    results = []
    for index, result in enumerate(varied_results(5, 80) + varied_results(6, 30, grid=False)):
        probes = [
            replace(
                probe,
                details={
                    "loaded": [f"/env/lib/python3.12/site-packages/m{n}.so" for n in range(20)],
                    "owner": "pkg 1.0" if n % 2 else "",
                    "traceback_tail": 'File "x.py", line 1\nImportError: nope',
                    "import_s": 0.25,
                },
            )
            for n, probe in enumerate(result.probes)
        ]
        results.append(replace(result, id=f"c{index:03d}", probes=probes))
    return results


def _report(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


def test_a_report_from_cell_files_is_byte_identical_to_rendering_their_results(
    tmp_path: Path,
) -> None:
    results = _results()
    for result in results:
        write_cell_result(tmp_path / "run", result)
    # A cell file another tool wrote (indented, a field missing) is read and re-encoded.
    odd = results[3].to_dict()
    del odd["indexes"]
    (tmp_path / "run" / "cells" / f"{odd['id']}.json").write_text(json.dumps(odd, indent=2))
    order = [result.id for result in results]

    collected = collect([tmp_path / "run"], order, lines=True, slim=True)
    assert collected.lines is not None
    write_reports(tmp_path / "merged", "scale", collected.results, lines=collected.lines)
    collected.lines.close()
    write_reports(tmp_path / "reference", "scale", results)

    assert _report(tmp_path / "merged") == _report(tmp_path / "reference")
    # The harness's cell file is compat.json's line for the cell, byte for byte.
    lines = (tmp_path / "merged" / "compat.json").read_bytes().split(b"\n")
    first = (tmp_path / "run" / "cells" / "c000.json").read_bytes().rstrip(b"\n")
    assert lines[1] == first + b","
    # `slim` kept what reporters read and dropped the rest (compat.json still has it all).
    kept = {key for r in collected.results for p in r.probes for key in p.details}
    assert kept == {"owner"}
    merged = json.loads((tmp_path / "merged" / "compat.json").read_text())
    assert [CellResult.from_dict(cell) for cell in merged["cells"]][:3] == results[:3]


def _merged(folder: Path, out: Path, order: list[str]) -> dict[str, bytes]:
    collected = collect([folder], order, lines=True, slim=True)
    assert collected.lines is not None
    write_reports(out, "scale", collected.results, lines=collected.lines)
    collected.lines.close()
    return _report(out)


def test_a_report_reads_summaries_and_cell_files_alike_and_passes_a_stale_summary_by(
    tmp_path: Path,
) -> None:
    """`report` reads each cell's summary instead of parsing its cell file: the same bytes as
    from the cell files alone (as an earlier version wrote them), and a summary that is not of
    its cell file (edited after, the same size; unreadable) gives way to the file."""
    results = _results()
    run = tmp_path / "run"
    for result in results:
        write_cell_result(run, result)
    summaries = sorted((run / "cells").glob(f"*{SUMMARY_SUFFIX}"))
    assert len(summaries) == len(results)
    order = [result.id for result in results]
    reference = tmp_path / "reference"
    write_reports(reference, "scale", results)
    assert _merged(run, tmp_path / "merged", order) == _report(reference)

    old = tmp_path / "old"
    shutil.copytree(run, old)
    for summary in (old / "cells").glob(f"*{SUMMARY_SUFFIX}"):
        summary.unlink()
    assert _merged(old, tmp_path / "old-merged", order) == _report(reference)

    # The cell file changed after its summary was written: same size, another status.
    index = next(n for n, result in enumerate(results) if result.status == "pass")
    cell_file = run / "cells" / f"{results[index].id}.json"
    cell_file.write_text(cell_file.read_text().replace('"status": "pass"', '"status": "fail"', 1))
    results[index] = replace(results[index], status="fail")
    (run / "cells" / f"{results[-1].id}{SUMMARY_SUFFIX}").write_text("{")
    write_reports(reference, "scale", results)
    assert _merged(run, tmp_path / "edited", order) == _report(reference)

    # Summaries of the right file that this version does not take: one of another version
    # (the same head), one whose fields do not have their types (a status that is a number,
    # a probe cut short). Each gives way to its cell file: the same report.
    other = [r.id for r in results[1:4]]
    for cell_id, change in zip(other, ("version", "status", "probe")):
        path = run / "cells" / f"{cell_id}{SUMMARY_SUFFIX}"
        summary = json.loads(path.read_text())
        if change == "version":
            summary[0] = 1
        elif change == "status":
            summary[3 + CELL_KEYS.index("status")] = 1
        else:
            summary[3 + CELL_KEYS.index("probes")].append(["import", "x"])
        path.write_text(json.dumps(summary))
    assert _merged(run, tmp_path / "passed-by", order) == _report(reference)


def test_a_result_whose_file_reads_back_otherwise_gets_no_summary(tmp_path: Path) -> None:
    """A cell file whose result encodes to other bytes (an integer duration reads back as a
    float) is parsed by `report`, which writes the result's line into compat.json."""
    result = replace(_results()[0], durations={"build": 1, "probes": 0.5})
    write_cell_result(tmp_path, result)
    write_cell_result(tmp_path, replace(result, id="c999", durations={"build": 1.0}))
    assert not (tmp_path / "cells" / f"{result.id}{SUMMARY_SUFFIX}").exists()
    assert (tmp_path / "cells" / f"c999{SUMMARY_SUFFIX}").exists()
    merged = _merged(tmp_path, tmp_path / "merged", [result.id])
    write_reports(
        tmp_path / "reference", "scale", [replace(result, durations={"build": 1.0, "probes": 0.5})]
    )
    assert merged == _report(tmp_path / "reference")


def test_every_field_a_cell_file_holds_is_read_without_encoding_it_again() -> None:
    """A field added to CellResult must be added to the fast path too (else every cell file
    is encoded again and a 10,000-cell report takes twice as long)."""
    assert tuple(CellResult("c", {}, "pass").to_dict()) == CELL_KEYS


def test_every_result_s_summary_has_the_types_report_takes() -> None:
    """A field added to CellResult (or a type it may take) must be taken from summaries too,
    else every cell file is parsed again."""
    for result in [*_results(), CellResult("c", {}, "pass")]:
        assert _valid_fields(json.loads(json.dumps(cell_fields(result))))


def test_report_keeps_the_previous_order_of_a_folder_without_a_matrix(tmp_path: Path) -> None:
    results = _results()[:12]
    for result in results:
        write_cell_result(tmp_path, result)
    shuffled = results[::-1]
    write_reports(tmp_path, "scale", shuffled)
    collected = collect([tmp_path])
    assert [r.id for r in collected.results] == [r.id for r in shuffled]


def test_cell_sessions_publish_at_most_every_few_seconds_and_the_final_publish_has_all(
    tmp_path: Path,
) -> None:
    """A nox `cell(<id>)` session publishes unless another did a moment ago: at 300 cells a
    publish per cell would cost more than the cells. The final publish never skips."""
    matrix = tmp_path / "compat.yml"
    matrix.write_text('name: spaced\nmatrix:\n  python: ["3.99"]\n  six: ["1.0", "1.1", "1.2"]\n')
    options = parse_run_options([], {}, tmp_path, prog="test", matrix=matrix)
    loaded, cells = load_selection(options)
    report = options.report_dir

    def published() -> list[str]:
        document = json.loads((report / "compat.json").read_text())
        return [cell["id"] for cell in document["cells"]]

    def finish(index: int) -> None:
        cell = cells[index]
        probe = ProbeResult("import", "six", "pass")
        write_cell_result(report, CellResult(cell.id, cell.axes, "pass", probes=[probe]))

    assert publish_due(report)  # never published
    finish(0)
    run_pipeline(loaded, [], options, report_cells=cells, final=False)
    assert published() == [cells[0].id]
    finish(1)
    outcome = run_pipeline(loaded, [], options, report_cells=cells, final=False)
    assert published() == [cells[0].id]  # published a moment ago: this one waits
    assert outcome.exit_status == 0
    assert not publish_due(report)
    assert publish_due(report, now=time.time() + 60)
    finish(2)
    final = run_pipeline(loaded, [], options, report_cells=cells, final=True)
    assert published() == [cell.id for cell in cells]
    assert [r.status for r in final.results] == ["pass"] * 3


def test_a_baseline_reads_the_same_line_by_line_as_reformatted(tmp_path: Path) -> None:
    """A compat.json as `report` writes it is read a line at a time (a 10,000-cell baseline is
    never one parsed document); the same document laid out otherwise reads the same."""
    results = _results()
    write_reports(tmp_path / "ours", "nightly", results)
    document = json.loads((tmp_path / "ours" / "compat.json").read_text())
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "compat.json").write_text(json.dumps(document, indent=1))
    ours = load_baseline(tmp_path / "ours")
    assert ours == load_baseline(tmp_path / "other")
    assert ours[0] == "nightly"
    assert [cell.id for cell in ours[1]] == [r.id for r in results]


def test_a_forked_helper_reads_and_renders_the_same_and_a_failed_one_is_stood_in_for(
    tmp_path: Path,
) -> None:
    """A big report reads the last cell files and renders junit.xml and compat.md in a forked
    helper (a process without threads, on Linux, with two CPUs); the files are the very bytes
    of doing it all here, also for files another tool wrote, files that cannot be read and a
    cell in two folders, and when the helper fails this process does its part itself, leaving
    no temporary file."""
    results = _results()
    runs = [tmp_path / "run", tmp_path / "again"]
    for result in results:
        write_cell_result(runs[0], result)
    for result in results[:5]:  # a later folder wins
        write_cell_result(runs[1], replace(result, status="error", message="again"))
    odd = results[-1].to_dict()
    del odd["indexes"]
    (runs[1] / "cells" / f"{odd['id']}.json").write_text(json.dumps(odd, indent=2))
    (runs[1] / "cells" / "cut.json").write_text('{"id": "cut", "axes"')
    reference = collect(runs, None, lines=True, slim=True)
    assert reference.lines is not None
    write_reports(tmp_path / "reference", "scale", reference.results, lines=reference.lines)
    reference.lines.close()
    for how in ("ok", "fail"):
        out = tmp_path / how
        proc = subprocess.run(
            [
                sys.executable,
                str(DATA / "forked_report.py"),
                ",".join(map(str, runs)),
                str(out),
                how,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if "fork_pays" in proc.stderr:
            pytest.skip("no second CPU, or not Linux: reports are made in one process")
        assert proc.returncode == 0, proc.stderr
        files, unreadable = proc.stdout.splitlines()
        assert files == str(sorted(FILES)), how  # no temporary file left
        assert unreadable == str(["cut.json"])
        assert _report(out) == _report(tmp_path / "reference"), how
