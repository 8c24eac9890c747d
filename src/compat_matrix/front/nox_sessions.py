"""The glue between noxfile.py and the harness: cells as nox sessions, one report at the end.

`nox -s probe` selects the `probe` session, which `requires=` every `cell(<id>)` session, so nox
schedules the cells (in parallel with `-j`) and runs `probe` last to publish and judge.

`nox -s probe -- --gpu-only` runs only the cells that need a GPU (their `cuda` axis is set and
not `none`), `-- --cpu-only` only the others: the rest are skipped sessions and absent from that
run's report, so a GPU runner's and a CPU runner's reports merge with `compat-matrix report`.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from compat_matrix.build import pythons
from compat_matrix.build.cuda import needs_gpu
from compat_matrix.errors import CompatError
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.matrix.select import select_cells
from compat_matrix.probe.verdicts import exit_status
from compat_matrix.reports import render_terminal
from compat_matrix.reports.publish import publish
from compat_matrix.run.cell import RunSettings, run_cell

if TYPE_CHECKING:
    from collections.abc import Sequence

    from compat_matrix.matrix.model import Cell, Matrix

__all__ = [
    "NoxMatrix",
    "load_for_nox",
    "run_cell_session",
    "run_probe_session",
    "runner_selects",
]

DEFAULT_MATRIX = "matrix/default.yml"
DEFAULT_REPORT_DIR = "compat-report"


class _Session(Protocol):
    posargs: list[str]

    def log(self, *args: object, **kwargs: object) -> None: ...
    def error(self, *args: object) -> None: ...
    def skip(self, *args: object) -> None: ...


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
    parser.add_argument("--gpu-only", action="store_true", help="only the cells that need a GPU")
    parser.add_argument("--cpu-only", action="store_true", help="only the cells that need none")
    known, _ = parser.parse_known_args(list(posargs))
    return known


_BOTH_RUNNERS = "--gpu-only and --cpu-only exclude each other: give one (or neither for all cells)"


def runner_selects(cell: Cell, posargs: Sequence[str]) -> bool:
    """Whether this run (`--gpu-only`, `--cpu-only` or neither) runs `cell`."""
    options = _options(posargs)
    if options.gpu_only:
        return needs_gpu(cell.axes)
    if options.cpu_only:
        return not needs_gpu(cell.axes)
    return True


def _selected_ids(nm: NoxMatrix, posargs: Sequence[str]) -> list[str]:
    return [cell.id for cell in nm.cells if runner_selects(cell, posargs)]


def run_cell_session(session: _Session, nm: NoxMatrix, cell_id: str) -> None:
    """Body of `cell(<id>)`: run the cell, then republish the merged report."""
    options = _options(session.posargs)
    if options.gpu_only and options.cpu_only:
        session.error(_BOTH_RUNNERS)
    cell = nm.cell(cell_id)
    if not runner_selects(cell, session.posargs):
        wants, run = ("a GPU", "--cpu-only") if needs_gpu(cell.axes) else ("no GPU", "--gpu-only")
        session.skip(f"{cell_id} needs {wants}; this run is {run}")
        return
    settings = RunSettings(report_dir=nm.report_dir, env_root=nm.env_root, resume=options.resume)
    result = run_cell(nm.matrix, cell, settings, pythons.discover())
    publish(nm.report_dir, nm.matrix.name, _selected_ids(nm, session.posargs))
    line = f"{result.id}: {result.status}"
    if result.category:
        line += f" ({result.category})"
    if result.message:
        line += f" {result.message.splitlines()[0][:200]}"
    session.log(line)


def run_probe_session(session: _Session, nm: NoxMatrix) -> None:
    """Body of `probe`: publish every cell's result, print the table, set the exit status."""
    options = _options(session.posargs)
    if options.gpu_only and options.cpu_only:
        session.error(_BOTH_RUNNERS)
    selected = _selected_ids(nm, session.posargs)
    paths, results = publish(nm.report_dir, nm.matrix.name, selected)
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(render_terminal(results, color=color))
    missing = len(selected) - len(results)
    session.log(
        f"report: {paths.markdown.parent} ({len(results)} cells"
        + (f", {missing} missing" if missing else "")
        + ")"
    )
    status = exit_status(results)
    if status != 0:
        session.error(f"compat-matrix exit status {status}: see {paths.markdown}")
