"""compat.json and write_reports: the complete, machine-readable record of a run."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from compat_matrix.reports import ReportPaths, render_json, write_reports
from compat_matrix.reports.json_report import CellLines, identity, write_json
from compat_matrix.results import (
    CellResult,
    ExpectationOutcome,
    ProbeResult,
    PythonInfo,
    cell_json,
    write_cell_result,
)

ODD = "ünï 🚀 <b> \x1b[31m \x00 \ud800"


def results() -> list[CellResult]:
    return [
        CellResult(
            id="py3.12-numpy2.2.6",
            axes={"python": "3.12", "numpy": "2.2.6"},
            status="fail",
            category="abi-numpy",
            message=ODD,
            hint="pin numpy<2",
            python=PythonInfo("3.12.1", "cpython", "cp312"),
            resolved={"numpy": "2.2.6"},
            probes=[
                ProbeResult("import", "numpy", "pass", duration_s=0.25, details={"v": "2.2.6"}),
                ProbeResult("import", "pandas", "fail", "abi-numpy", ODD, "pin numpy<2", 0.5),
            ],
            durations={"build": 3.0, "probes": 0.75},
            expectation=ExpectationOutcome("fail", met=True, reason="known"),
            fingerprint="abc123",
            lock="locks/py3.12-numpy2.2.6.txt",
        ),
        CellResult(id="py3.13-numpy1.26.4", axes={"python": "3.13"}, status="unsupported"),
        CellResult(
            id="py3.11-numpy2.2.6", axes={"python": "3.11"}, status="pass", gpu_unverified=True
        ),
    ]


def test_json_round_trips_through_cell_result() -> None:
    original = results()
    document = json.loads(render_json("stack", original))
    assert document["schema"] == 1
    assert document["name"] == "stack"
    assert [CellResult.from_dict(c) for c in document["cells"]] == original  # order kept too
    assert document["cells"][0]["message"] == ODD  # the original message, not a cleaned one


def test_json_has_the_contract_keys() -> None:
    cell = json.loads(render_json("stack", results()))["cells"][0]
    for key in (
        "id",
        "axes",
        "status",
        "category",
        "message",
        "hint",
        "python",
        "resolved",
        "probes",
        "durations",
    ):
        assert key in cell
    assert set(cell["python"]) >= {"version", "implementation", "abi"}
    assert set(cell["probes"][1]) >= {
        "probe",
        "target",
        "status",
        "category",
        "message",
        "hint",
        "duration_s",
    }


def test_write_reports_writes_all_four_files_and_no_temporaries(tmp_path: Path) -> None:
    report_dir = tmp_path / "compat-report"
    paths = write_reports(report_dir, "stack", results())
    assert paths == ReportPaths(
        json=report_dir / "compat.json",
        junit=report_dir / "junit.xml",
        markdown=report_dir / "compat.md",
        html=report_dir / "compat.html",
    )
    assert sorted(p.name for p in report_dir.iterdir()) == [
        "compat.html",
        "compat.json",
        "compat.md",
        "junit.xml",
    ]
    loaded = json.loads(paths.json.read_text(encoding="utf-8"))
    assert [c["id"] for c in loaded["cells"]] == [r.id for r in results()]
    assert paths.markdown.read_text(encoding="utf-8").startswith("## compat-matrix: stack")
    assert paths.html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert paths.junit.read_text(encoding="utf-8").startswith("<?xml")


def test_write_reports_replaces_an_earlier_report(tmp_path: Path) -> None:
    write_reports(tmp_path, "first", results())
    write_reports(tmp_path, "second", results()[:1])
    assert json.loads((tmp_path / "compat.json").read_text(encoding="utf-8"))["name"] == "second"
    assert len(list(tmp_path.iterdir())) == 4


def test_report_files_respect_the_umask(tmp_path: Path) -> None:
    # A real `compat-matrix report` under two umasks: the CI's upload step and other users
    # read these files, so a 022 umask must give 0644, not mkstemp's 0600.
    cells = tmp_path / "cells-in"
    for result in results():
        write_cell_result(cells, result)
    for umask, mode in ((0o022, 0o644), (0o077, 0o600)):
        out = tmp_path / f"out-{umask:o}"
        subprocess.run(
            [sys.executable, "-m", "compat_matrix", "report", str(cells), "-o", str(out)],
            check=False,
            timeout=120,
            umask=umask,
            capture_output=True,
        )
        written = sorted(out.rglob("*"))
        assert {p.name for p in written} >= {"compat.json", "junit.xml", "compat.md"}
        for path in written:
            if path.is_file():
                assert stat.S_IMODE(path.stat().st_mode) == mode, path.name


def test_compat_json_copies_cell_files_and_spooled_lines_as_render_json_writes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines copied from cell files and from the spool (by the kernel, through memory where it
    cannot, or held in memory when no spool file can take them) give the very bytes
    `render_json` writes; a cell file replaced since it was read is not copied."""
    cells = results()
    expected = render_json("stack", cells).encode("utf-8")
    cell_file = tmp_path / "cell.json"
    cell_file.write_bytes(cell_json(cells[1]).encode("ascii") + b"\n")
    seen = identity(cell_file.stat())
    for how in ("sendfile", "memory", "held", "pwrite"):
        if how == "pwrite":
            monkeypatch.delattr(os, "pwritev")  # a Python built without it: os.pwrite
        lines = CellLines()
        if how == "memory":
            lines._sendfile = False  # a platform without sendfile for files
        if how == "held":
            lines.close()
            lines._spool = None  # no temporary folder
        lines.add(cells[0].id, cell_json(cells[0]).encode("ascii"))
        lines.add_file(cells[1].id, str(cell_file), cell_file.stat().st_size - 1, seen)
        path = tmp_path / f"{how}.json"
        with path.open("wb") as out:  # the last cell has no line: it is encoded
            write_json(out, "stack", cells, lines)
        lines.close()
        assert path.read_bytes() == expected, how
    # The file was replaced since: whole results are encoded (as read); others cannot be.
    cell_file.unlink()
    cell_file.write_bytes(cell_json(cells[0]).encode("ascii") + b"\n")
    for encodable in (True, False):
        lines = CellLines(encodable=encodable)
        lines.add_file(cells[1].id, str(cell_file), len(cell_json(cells[1])), seen)
        with (tmp_path / f"stale-{encodable}.json").open("wb") as out:
            if encodable:
                write_json(out, "stack", cells, lines)
            else:
                with pytest.raises(OSError, match="changed"):
                    write_json(out, "stack", cells, lines)
        lines.close()
    assert (tmp_path / "stale-True.json").read_bytes() == expected
    with (tmp_path / "none.json").open("wb") as out:
        write_json(out, "stack", [], None)
    assert (tmp_path / "none.json").read_bytes() == render_json("stack", []).encode("utf-8")
