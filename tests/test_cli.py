"""The `compat-matrix` command line, run as a user runs it (a subprocess, real files)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compat_matrix.front.cli import EXIT_CLOSED_PIPE, main
from compat_matrix.results import CellResult, ExpectationOutcome, write_cell_result

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compat_matrix", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_expand_lists_cells_in_job_order() -> None:
    proc = _cli("expand", str(REPO / "matrix" / "default.yml"))
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[:3] == [
        "py3.9-numpy1.26.4-pandas2.0.3",
        "py3.9-numpy1.26.4-pandas2.2.3",
        "py3.9-numpy2.2.6-pandas2.0.3",
    ]
    assert lines[-1] == "py3.14-numpy2.3.5-pandas2.3.3"


def test_expand_json_gives_ids_and_axes() -> None:
    proc = _cli("expand", str(REPO / "matrix" / "default.yml"), "--json")
    cells = json.loads(proc.stdout)
    assert cells[0] == {
        "id": "py3.9-numpy1.26.4-pandas2.0.3",
        "axes": {"python": "3.9", "numpy": "1.26.4", "pandas": "2.0.3"},
    }


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("matrix:\n  python: [3.10]\n", ":2:12:", "quoted version"),
        ("matrix:\n  python: ['3.11']\nbackend: condaa\n", ":3:10:", "backend"),
        ("matrix:\n  numpy: []\n", ":2:10:", "empty"),
        ("matrix: [\n", ":2:1:", ""),
    ],
)
def test_a_bad_matrix_is_file_line_column_and_exit_2(tmp_path: Path, text, where, what) -> None:
    path = tmp_path / "m.yml"
    path.write_text(text)
    proc = _cli("expand", str(path))
    assert proc.returncode == 2
    assert f"{path}{where}" in proc.stderr
    assert what in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_missing_matrix_file_is_exit_2_without_traceback(tmp_path: Path) -> None:
    proc = _cli("expand", str(tmp_path / "nope.yml"))
    assert proc.returncode == 2
    assert "nope.yml" in proc.stderr
    assert "Traceback" not in proc.stderr


def _result(cell_id: str, status: str, expected: str | None = None) -> CellResult:
    return CellResult(
        id=cell_id,
        axes={"python": "3.11", "pkg": cell_id},
        status=status,  # type: ignore[arg-type]
        expectation=ExpectationOutcome(expected, expected == status) if expected else None,  # type: ignore[arg-type]
    )


def test_report_merges_shards_and_sets_the_exit_status(tmp_path: Path) -> None:
    shard_a, shard_b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    write_cell_result(shard_a, _result("c1", "pass"))
    write_cell_result(shard_b, _result("c2", "fail", expected="fail"))
    proc = _cli("report", str(shard_a), str(shard_b), "-o", str(out), "--name", "merged")
    assert proc.returncode == 0, proc.stderr
    # The program ends at once after `report` (cli.console): its output is still all there.
    assert proc.stdout.endswith(f"report: {out}\n"), proc.stdout
    document = json.loads((out / "compat.json").read_text())
    assert document["name"] == "merged"
    assert [c["id"] for c in document["cells"]] == ["c1", "c2"]
    assert {p.name for p in out.iterdir()} >= {"compat.md", "compat.html", "junit.xml"}

    write_cell_result(shard_b, _result("c3", "fail"))
    assert _cli("report", str(shard_a), str(shard_b), "-o", str(out)).returncode == 1
    write_cell_result(shard_b, _result("c3", "error"))
    assert _cli("report", str(shard_a), str(shard_b), "-o", str(out)).returncode == 3


def test_report_ends_the_program_at_once_but_main_returns(tmp_path: Path) -> None:
    """`console` ends the process after `report` without freeing what it made; `main`, which
    a program of the user's may call, returns its status and leaves its caller running."""
    write_cell_result(tmp_path / "r", _result("c1", "pass"))
    assert main(["report", str(tmp_path / "r"), "-o", str(tmp_path / "in-process")]) == 0
    assert (tmp_path / "in-process" / "compat.json").exists()
    # A reader gone before the report is printed: exit 141, no traceback (as `expand | head`).
    proc = subprocess.Popen(
        [sys.executable, "-m", "compat_matrix", "report", str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # long before the interpreter has started
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_CLOSED_PIPE, stderr
    assert b"Traceback" not in stderr


def test_report_without_results_is_a_usage_error(tmp_path: Path) -> None:
    proc = _cli("report", str(tmp_path))
    assert proc.returncode == 2
    assert "no cell results" in proc.stderr


def test_report_orders_cells_by_the_matrix_job_order(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yml"
    matrix.write_text(
        textwrap.dedent("""\
        matrix:
          python: ["3.11"]
          six: ["1.17.0", "1.15.0"]
        """)
    )
    for cell_id in ("py3.11-six1.15.0", "py3.11-six1.17.0"):
        write_cell_result(tmp_path / "r", _result(cell_id, "pass"))
    proc = _cli("report", str(tmp_path / "r"), "--matrix", str(matrix))
    assert proc.returncode == 0
    document = json.loads((tmp_path / "r" / "compat.json").read_text())
    assert [c["id"] for c in document["cells"]] == ["py3.11-six1.17.0", "py3.11-six1.15.0"]


def test_pythons_prints_the_discovery_table() -> None:
    proc = _cli("pythons")
    assert proc.returncode == 0
    assert f"{sys.version_info.major}.{sys.version_info.minor}." in proc.stdout
    listed = json.loads(_cli("pythons", "--json").stdout)
    assert all(Path(entry["path"]).is_absolute() for entry in listed)


@pytest.mark.slow
def test_audit_and_what_if_from_the_command_line(tmp_path: Path, uv_bin, python_for) -> None:
    env = tmp_path / "env"
    subprocess.run(
        [uv_bin, "venv", "-q", "--python", str(python_for("3.11").path), str(env)],
        check=True,
        timeout=120,
    )
    subprocess.run(
        [
            uv_bin,
            "pip",
            "install",
            "-q",
            "--python",
            str(env / "bin" / "python"),
            "numpy==1.26.4",
            "pandas==2.0.3",
        ],
        check=True,
        timeout=600,
    )
    audit = _cli("audit", "--python", "env/bin/python", "-o", "report", cwd=tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "pass" in audit.stdout
    assert (tmp_path / "report" / "compat.md").exists()

    upgrade = _cli(
        "audit", "--python", "env/bin/python", "-o", "whatif", "--upgrade", "numpy=2", cwd=tmp_path
    )
    assert upgrade.returncode == 1, upgrade.stdout + upgrade.stderr
    assert "BREAKS" in upgrade.stdout
    assert "abi-numpy" in upgrade.stdout
    missing = _cli("audit", "--python", "env/bin/python", "--upgrade", "python=3.99", cwd=tmp_path)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
