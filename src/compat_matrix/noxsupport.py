"""The glue between noxfile.py and the harness: cells as nox sessions, one report at the end.

`nox -s probe` selects the `probe` session, which `requires=` every `cell(<id>)` session, so nox
schedules the cells (in parallel with `-j`) and runs `probe` last to publish and judge.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from . import pythons
from .cells import RunSettings, run_cell
from .errors import CompatError
from .expansion import expand
from .matrix_file import load_matrix
from .publishing import publish
from .reports import render_terminal
from .selection import select_cells
from .verdicts import exit_status

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .matrix import Cell, Matrix

__all__ = ["NoxMatrix", "load_for_nox", "run_cell_session", "run_probe_session"]

DEFAULT_MATRIX = "matrix/default.yml"
DEFAULT_REPORT_DIR = "compat-report"


class _Session(Protocol):
    posargs: list[str]

    def log(self, *args: object, **kwargs: object) -> None: ...
    def error(self, *args: object) -> None: ...


@dataclass(frozen=True)
class NoxMatrix:
    matrix: Matrix
    cells: list[Cell]
    report_dir: Path
    env_root: Path

    @property
    def ids(self) -> list[str]:
        return [cell.id for cell in self.cells]

    def cell(self, cell_id: str) -> Cell:
        return next(cell for cell in self.cells if cell.id == cell_id)


def load_for_nox(root: Path, env: dict[str, str] | None = None) -> NoxMatrix:
    """Load `$COMPAT_MATRIX`; a bad file ends nox with exit status 2 and no traceback.

    `$COMPAT_CELLS` (ids or patterns, space- or comma-separated) keeps only those cells, so a
    CI shard runs its share of the matrix; an id that names no cell is exit status 2.
    """
    env = dict(os.environ if env is None else env)
    path = Path(env.get("COMPAT_MATRIX") or root / DEFAULT_MATRIX)
    try:
        matrix = load_matrix(path)
        cells = select_cells(expand(matrix), env.get("COMPAT_CELLS", ""))
    except CompatError as exc:
        print(f"compat-matrix: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_status) from None
    except OSError as exc:
        print(f"compat-matrix: cannot read matrix {path}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(2) from None
    report_dir = Path(env.get("COMPAT_REPORT_DIR") or root / DEFAULT_REPORT_DIR)
    env_root = Path(env.get("COMPAT_ENV_DIR") or root / ".nox" / "compat-envs")
    return NoxMatrix(matrix, cells, report_dir.absolute(), env_root.absolute())


def _options(posargs: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nox -s probe --", add_help=False)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep finished cells whose inputs are unchanged; run the rest",
    )
    known, _ = parser.parse_known_args(list(posargs))
    return known


def run_cell_session(session: _Session, nm: NoxMatrix, cell_id: str) -> None:
    """Body of `cell(<id>)`: run the cell, then republish the merged report."""
    options = _options(session.posargs)
    cell = nm.cell(cell_id)
    settings = RunSettings(report_dir=nm.report_dir, env_root=nm.env_root, resume=options.resume)
    result = run_cell(nm.matrix, cell, settings, pythons.discover())
    publish(nm.report_dir, nm.matrix.name, nm.ids)
    line = f"{result.id}: {result.status}"
    if result.category:
        line += f" ({result.category})"
    if result.message:
        line += f" {result.message.splitlines()[0][:200]}"
    session.log(line)


def run_probe_session(session: _Session, nm: NoxMatrix) -> None:
    """Body of `probe`: publish every cell's result, print the table, set the exit status."""
    paths, results = publish(nm.report_dir, nm.matrix.name, nm.ids)
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(render_terminal(results, color=color))
    missing = len(nm.cells) - len(results)
    session.log(
        f"report: {paths.markdown.parent} ({len(results)} cells"
        + (f", {missing} missing" if missing else "")
        + ")"
    )
    status = exit_status(results)
    if status != 0:
        session.error(f"compat-matrix exit status {status}: see {paths.markdown}")
