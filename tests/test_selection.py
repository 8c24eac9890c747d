"""Running a selection of cells: `COMPAT_CELLS` for `nox -s probe`, `cells:` for the action."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compat_matrix.errors import UsageError
from compat_matrix.front.nox_sessions import names_matrix_sessions, nox_selection
from compat_matrix.matrix.model import Cell
from compat_matrix.matrix.select import parse_selection, select_cells
from compat_matrix.nox import load_for_nox

REPO = Path(__file__).resolve().parents[1]
CELLS = [
    Cell("py3.11-six1.16.0", {"python": "3.11", "six": "1.16.0"}),
    Cell("py3.11-six1.17.0", {"python": "3.11", "six": "1.17.0"}),
    Cell("py3.12-six1.17.0", {"python": "3.12", "six": "1.17.0"}),
]


def test_ids_and_patterns_in_any_separator_keep_job_order() -> None:
    assert parse_selection(" a, b\n\tc a ") == ["a", "b", "c"]
    chosen = select_cells(CELLS, "py3.12-six1.17.0,\npy3.11-*")
    assert [c.id for c in chosen] == [c.id for c in CELLS]
    assert select_cells(CELLS, "  ") == CELLS


def test_an_unknown_id_names_itself_and_the_closest_cell() -> None:
    with pytest.raises(UsageError, match=r"no such cell: py3\.11-six1\.71\.0 \(did you mean "):
        select_cells(CELLS, "py3.11-six1.71.0")
    with pytest.raises(UsageError, match=r"no such cell: py3\.9-\*"):
        select_cells(CELLS, "py3.11-six1.16.0 py3.9-*")


def _matrix(tmp_path: Path) -> Path:
    path = tmp_path / "m.yml"
    path.write_text(
        textwrap.dedent("""\
        matrix:
          python: ["3.11", "3.12"]
          six: ["1.16.0", "1.17.0"]
        """)
    )
    return path


def test_load_for_nox_keeps_only_the_selected_cells(tmp_path: Path) -> None:
    env = {"COMPAT_MATRIX": str(_matrix(tmp_path)), "COMPAT_CELLS": "py3.12-six1.17.0 py3.11-*"}
    nm = load_for_nox(tmp_path, env=env)
    assert nm.ids == ["py3.11-six1.16.0", "py3.11-six1.17.0", "py3.12-six1.17.0"]


def test_load_for_nox_exits_2_on_an_unknown_cell(tmp_path: Path, capsys) -> None:
    env = {"COMPAT_MATRIX": str(_matrix(tmp_path)), "COMPAT_CELLS": "py3.13-six1.17.0"}
    with pytest.raises(SystemExit) as exc:
        load_for_nox(tmp_path, env=env)
    assert exc.value.code == 2
    assert "no such cell: py3.13-six1.17.0" in capsys.readouterr().err


def test_nox_lists_only_the_selected_cells(tmp_path: Path) -> None:
    env = {**os.environ, "COMPAT_MATRIX": str(_matrix(tmp_path)), "COMPAT_CELLS": "py3.12-*"}
    proc = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py"), "-l"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    listed = [line for line in proc.stdout.splitlines() if line.lstrip("*- ").startswith("cell(")]
    assert len(listed) == 2
    assert all("cell(py3.12-" in line for line in listed)
    env["COMPAT_CELLS"] = "py3.99-six1.17.0"
    proc = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(REPO / "noxfile.py"), "-l"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert "no such cell: py3.99-six1.17.0" in proc.stderr


@pytest.mark.parametrize(
    ("argv", "environ", "selection", "ours"),
    [
        (["nox", "-s", "probe", "--", "-x"], {}, "probe", True),
        (["nox", "--session=probe"], {}, "probe", True),
        (["nox", "-sprobe"], {}, "probe", True),
        (["nox", "-e", "cell(py3.11-six1.16.0)"], {}, "cell(py3.11-six1.16.0)", True),
        (["nox", "--sessions", "tests", "cell(x)", "-r"], {}, "tests cell(x)", True),
        (["nox", "-k", "probe or lint"], {}, "probe or lint", True),
        (["nox", "-f", "noxfile.py", "-t", "gpu"], {}, "gpu", False),
        (["nox", "-s", "tests", "--", "probe"], {}, "tests", False),
        (["nox", "-s", "tests", "--", "-x"], {"NOXSESSION": "probe"}, "tests", False),
        (["nox", "-r", "--", "--resume"], {"NOXSESSION": "lint,probe"}, "lint,probe", True),
        (["nox", "-f", "probe.py"], {}, None, None),
    ],
)
def test_the_sessions_nox_is_asked_for(
    argv: list[str], environ: dict[str, str], selection: str | None, ours: bool | None
) -> None:
    assert nox_selection(argv, environ) == selection
    if selection is not None:
        assert names_matrix_sessions(selection) is ours


def test_words_for_another_session_are_kept_for_ours_to_refuse(tmp_path: Path) -> None:
    env = {"COMPAT_MATRIX": str(_matrix(tmp_path)), "COMPAT_CELLS": "py3.12-*"}
    nm = load_for_nox(tmp_path, env=env, posargs=["-x"], strict=False)
    assert nm.ids == ["py3.12-six1.16.0", "py3.12-six1.17.0"]
    assert nm.posargs_error is not None
    assert "unrecognized arguments: -x" in nm.posargs_error
    # Words that are run options still select, as with `compat-matrix run`.
    nm = load_for_nox(tmp_path, env=env, posargs=["--cells", "py3.11-*"], strict=False)
    assert nm.ids == ["py3.11-six1.16.0", "py3.11-six1.17.0"]
    assert nm.posargs_error is None
    with pytest.raises(SystemExit) as exc:
        load_for_nox(tmp_path, env=env, posargs=["-x"], strict=True)
    assert exc.value.code == 2
