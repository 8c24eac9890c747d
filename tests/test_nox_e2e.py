"""End to end, as a user runs it: `nox -s probe` on real matrices, real environments from PyPI.

Crashing, hanging and uninstallable cells are real local packages; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import xmlschema

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schemas" / "junit-10.xsd"

pytestmark = pytest.mark.slow


def _project(root: Path, name: str, init: str) -> None:
    (root / name / name).mkdir(parents=True)
    (root / name / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["flit_core>=3.9"]
        build-backend = "flit_core.buildapi"
        [project]
        name = "{name}"
        version = "0.1"
        description = "fixture"
        """)
    )
    (root / name / name / "__init__.py").write_text(init)


def _nox(
    tmp: Path, matrix: Path, *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        COMPAT_MATRIX=str(matrix),
        COMPAT_REPORT_DIR=str(tmp / "report"),
        COMPAT_ENV_DIR=str(tmp / "envs"),
        NO_COLOR="1",
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "nox",
            "-f",
            str(REPO / "noxfile.py"),
            "--envdir",
            str(tmp / ".nox"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        cwd=tmp,
    )


def _cells(report: Path) -> dict[str, dict]:
    document = json.loads((report / "compat.json").read_text())
    assert document["schema"] == 1
    return {cell["id"]: cell for cell in document["cells"]}


@pytest.fixture(scope="module")
def broken_matrix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("broken")
    _project(root, "crashpkg", "import ctypes\nctypes.string_at(0)\n")
    _project(root, "hangpkg", "import time\ntime.sleep(3600)\n")
    matrix = root / "matrix.yml"
    matrix.write_text(
        textwrap.dedent("""\
        name: broken-things
        timeout: 25
        matrix:
          include:
            - {python: "3.11", six: "1.16.0"}
            - {python: "3.11", crashpkg: "./crashpkg"}
            - {python: "3.11", hangpkg: "./hangpkg"}
            - {python: "3.13", numpy: "1.26.4"}
            - {python: "3.10", numpy: "1.21.6", pandas: "2.2.3"}
            - {python: "3.99", six: "1.16.0"}
        """)
    )
    return matrix


@pytest.fixture(scope="module")
def broken_run(broken_matrix: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp = broken_matrix.parent
    return _nox(tmp, broken_matrix, "-s", "probe"), tmp / "report"


def test_every_cell_is_recorded_with_its_category_while_the_others_complete(broken_run) -> None:
    proc, report = broken_run
    cells = _cells(report)
    verdicts = {cell_id: (c["status"], c["category"]) for cell_id, c in cells.items()}
    assert verdicts == {
        "py3.11-six1.16.0": ("pass", None),
        "py3.11-crashpkg_local": ("fail", "crash"),
        "py3.11-hangpkg_local": ("fail", "timeout"),
        "py3.13-numpy1.26.4": ("unsupported", "no-distribution"),
        "py3.10-numpy1.21.6-pandas2.2.3": ("conflict", "resolution-conflict"),
        "py3.99-six1.16.0": ("skip", "no-interpreter"),
    }, proc.stdout[-3000:]
    assert "SIGSEGV" in cells["py3.11-crashpkg_local"]["message"]
    # A failing cell fails the run (no expect: entry says otherwise).
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr


def test_the_report_files_are_all_written_and_the_table_printed(broken_run) -> None:
    proc, report = broken_run
    for name in ("compat.json", "compat.md", "compat.html", "junit.xml"):
        assert (report / name).stat().st_size > 0
    assert len(list((report / "cells").glob("*.json"))) == 6
    assert (report / "locks" / "py3.11-six1.16.0.txt").read_text().startswith("six==1.16.0")
    assert "crash" in (report / "compat.md").read_text()
    # the compact verdict table, printed once every cell is done
    assert "py3.11-hangpkg_local" in proc.stdout
    assert "6 cells" in proc.stdout
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(report / "junit.xml"))


def test_cell_results_carry_the_contract_fields(broken_run) -> None:
    _, report = broken_run
    cell = _cells(report)["py3.11-six1.16.0"]
    assert cell["axes"] == {"python": "3.11", "six": "1.16.0"}
    assert cell["python"]["version"].startswith("3.11.")
    assert cell["python"]["implementation"] == "cpython"
    assert cell["resolved"] == {"six": "1.16.0"}
    assert [(p["probe"], p["target"], p["status"]) for p in cell["probes"]] == [
        ("abi", "environment", "pass"),
        ("gpu-arch", "environment", "pass"),
        ("native", "environment", "pass"),
        ("import", "six", "pass"),
        ("cuda", "cuda", "pass"),
        ("consistency", "environment", "pass"),
    ]
    assert set(cell["durations"]) == {"build", "probes"}


def test_one_cell_runs_alone_by_its_session_name(broken_matrix: Path, tmp_path: Path) -> None:
    proc = _nox(tmp_path, broken_matrix, "-s", "cell(py3.11-six1.16.0)")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert [p.name for p in (tmp_path / "report" / "cells").glob("*.json")] == [
        "py3.11-six1.16.0.json"
    ]
    assert _cells(tmp_path / "report")["py3.11-six1.16.0"]["status"] == "pass"


def test_nox_lists_the_cells(broken_matrix: Path, tmp_path: Path) -> None:
    proc = _nox(tmp_path, broken_matrix, "-l")
    assert proc.returncode == 0
    assert "cell(py3.11-crashpkg_local)" in proc.stdout
    assert "probe" in proc.stdout


def test_a_bad_matrix_file_is_a_located_error_with_exit_status_2(tmp_path: Path) -> None:
    matrix = tmp_path / "bad.yml"
    matrix.write_text("name: x\nmatrix:\n  python: [3.10]\n")
    proc = _nox(tmp_path, matrix, "-s", "probe")
    assert proc.returncode == 2
    assert f"{matrix}:3:12:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_killing_the_run_keeps_finished_cells_and_resume_runs_only_the_rest(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yml"
    matrix.write_text(
        textwrap.dedent("""\
        name: resumable
        matrix:
          python: ["3.11"]
          six: ["1.15.0", "1.16.0", "1.17.0"]
        """)
    )
    env = dict(
        os.environ,
        COMPAT_MATRIX=str(matrix),
        COMPAT_REPORT_DIR=str(tmp_path / "report"),
        COMPAT_ENV_DIR=str(tmp_path / "envs"),
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nox",
            "-f",
            str(REPO / "noxfile.py"),
            "--envdir",
            str(tmp_path / ".nox"),
            "-s",
            "probe",
            "-j",
            "1",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    cells = tmp_path / "report" / "cells"
    deadline = time.monotonic() + 300
    while not list(cells.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in cells.glob("*.json")}
    assert 1 <= len(finished) < 3
    for path in cells.glob("*.json"):
        json.loads(path.read_text())  # whole, never half-written

    resumed = _nox(tmp_path, matrix, "-s", "probe", "--", "--resume")
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    after = {p.name: p.stat().st_mtime_ns for p in cells.glob("*.json")}
    assert len(after) == 3
    assert all(after[name] == mtime for name, mtime in finished.items())
    assert {c["status"] for c in _cells(tmp_path / "report").values()} == {"pass"}


def test_the_default_matrix_shows_every_verdict_kind_and_meets_its_expectations(
    tmp_path: Path, interpreters
) -> None:
    proc = _nox(tmp_path, REPO / "matrix" / "default.yml", "-s", "probe")
    cells = _cells(tmp_path / "report")
    assert len(cells) == 22
    statuses = {c["status"] for c in cells.values()}
    known = {i.version.rsplit(".", 1)[0] for i in interpreters if i.supported}
    if {"3.10", "3.11"} <= known:
        # the known-broken cell: installs fine, fails to import, explained and expected
        broken = cells["py3.11-numpy2.2.6-pandas2.0.3"]
        assert (broken["status"], broken["category"]) == ("fail", "abi-numpy")
        assert "numpy<2" in broken["hint"]
        assert broken["expectation"] == {
            "status": "fail",
            "met": True,
            "reason": "pandas 2.0.3 wheels are built against NumPy 1.x",
        }
        assert {"pass", "fail", "unsupported", "conflict"} <= statuses
    if "3.14" not in known:
        assert cells["py3.14-numpy2.3.5-pandas2.3.3"]["category"] == "no-interpreter"
    assert proc.returncode == 0, proc.stdout[-3000:]
