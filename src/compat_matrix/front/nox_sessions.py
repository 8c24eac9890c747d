"""compat-matrix in your own noxfile: two lines, then `nox -s probe`.

```python
import compat_matrix.nox

compat_matrix.nox.register("compat.yml")  # relative to the noxfile
```

registers one session per cell, `cell(<cell-id>)` (`nox -l` lists them, `nox -s "cell(<id>)"`
runs one), and `probe`, which `requires=` every selected cell, so nox schedules the cells (in
parallel on every core unless the noxfile or `-j` says otherwise) and runs `probe` last: it
publishes the merged report, prints the verdict table and fails when the run's exit status is
not 0 (its message names the status).

Each cell session runs its cell through the one pipeline (pipeline.py). Its nox line shows the
verdict: `success` only for a `pass`; any other verdict ends the session as `skipped` with the
verdict as the reason (`fail (import-error) ...`), never `success`. Not `failed`: nox would then
abort `probe`, and the merged report and the run's own exit status (expectations included)
would be lost; `probe` is the one place that judges the run.

Options after `--` are the run options of `compat-matrix run` (`--resume`, `--gpu-only`,
`--cpu-only`, `--cells`, `-o`). nox gives those words to every session it runs, and the
noxfile may have sessions of its own (`nox -s tests -- -x`): they are checked at load only when
nox's own words name `probe` or a `cell(...)` session (an unknown one is then exit status 2,
before anything runs); otherwise a word that is not a run option fails `probe` and the cells
when they run, and leaves the noxfile's other sessions alone. `$COMPAT_*` variables work as for
`compat-matrix run` (pipeline.py has the precedence).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import nox

from compat_matrix.cpus import usable_cpus
from compat_matrix.errors import CompatError
from compat_matrix.run.pipeline import (
    RunOptions,
    load_selection,
    parse_run_options,
    render_outcome,
    run_pipeline,
    runner_selects,
    terminal_width,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from compat_matrix.matrix.model import Cell, Matrix
    from compat_matrix.results import CellResult

__all__ = ["NoxMatrix", "load_for_nox", "register"]

_PROG = "nox ... --"


class _Session(Protocol):
    @property
    def posargs(self) -> list[str]: ...

    def log(self, *args: object, **kwargs: object) -> None: ...
    def error(self, *args: object) -> None: ...
    def skip(self, *args: object) -> None: ...


@dataclass(frozen=True)
class NoxMatrix:
    """The matrix a noxfile registered: its cells, where they run and report."""

    matrix: Matrix
    cells: list[Cell]
    #: The noxfile's folder: relative paths and the defaults are taken from here.
    root: Path
    #: The matrix file `register` was given (absolute); `$COMPAT_MATRIX` and `--` still win.
    default: Path
    options: RunOptions
    #: Why the words after `--` are not run options, when nox's words did not name our
    #: sessions (they may be another session's): our sessions fail with it when they run.
    posargs_error: str | None = None

    @property
    def ids(self) -> list[str]:
        return [cell.id for cell in self.cells]

    @property
    def report_dir(self) -> Path:
        return self.options.report_dir

    def cell(self, cell_id: str) -> Cell:
        return next(cell for cell in self.cells if cell.id == cell_id)

    def options_for(self, posargs: Sequence[str]) -> RunOptions:
        return parse_run_options(posargs, os.environ, self.root, prog=_PROG, matrix=self.default)


def _posargs(argv: Sequence[str]) -> list[str]:
    """The words after nox's `--` (the session's posargs), read while the noxfile loads."""
    return list(argv[argv.index("--") + 1 :]) if "--" in argv else []


_SELECTING = ("-s", "-e", "-k", "-t", "--session", "--sessions", "--keywords", "--tags")


def nox_selection(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The words nox selects sessions by (`-s`/`-e`/`--session(s)`, `-k`, `-t`, before `--`;
    else `$NOXSESSION`), joined by spaces; None when nox runs its default sessions."""
    words = argv[1 : argv.index("--")] if "--" in argv else argv[1:]
    picked: list[str] = []
    flagged = selecting = False
    for word in words:
        if word.startswith("-"):
            flag, _, value = word.partition("=")
            if flag in _SELECTING or (not word.startswith("--") and word[:2] in _SELECTING):
                value = value if flag in _SELECTING else word[2:]
                flagged = selecting = True
                picked += [value] if value else []
            else:
                selecting = False
        elif selecting:
            picked.append(word)
    return " ".join(picked) if flagged else environ.get("NOXSESSION")


def names_matrix_sessions(selection: str) -> bool:
    """Whether a selection names `probe` or a `cell(...)` session (as `-s probe`, `-k probe`,
    or the `--sessions cell(x)` that nox's parallel runner gives each child)."""
    names = selection.replace(",", " ").split()
    return any(name == "probe" or name.startswith("cell(") for name in names)


def load_for_nox(
    root: Path,
    matrix: str | os.PathLike[str] = "compat.yml",
    env: Mapping[str, str] | None = None,
    posargs: Sequence[str] = (),
    *,
    strict: bool = True,
) -> NoxMatrix:
    """Resolve the options and the cells; a usage or matrix error ends nox with its exit status.

    `$COMPAT_CELLS` or `-- --cells` keeps only those cells (a CI shard's share); an id that
    names no cell is exit status 2, and so is an unknown word after `--`. Unless `strict`, words
    after `--` that are not run options (another session's) are kept as `posargs_error` and
    the cells are those of the matrix and `$COMPAT_CELLS` alone.
    """
    environ = os.environ if env is None else env
    default = (root / matrix).absolute()
    posargs_error = None
    try:
        try:
            options = parse_run_options(posargs, environ, root, prog=_PROG, matrix=default)
            # Every selected cell is a session; a runner's share is chosen when they run.
            loaded, cells = load_selection(replace(options, runner="all"))
        except CompatError as exc:
            if strict or not posargs:
                raise
            posargs_error = str(exc)
            options = parse_run_options((), environ, root, prog=_PROG, matrix=default)
            loaded, cells = load_selection(replace(options, runner="all"))
    except CompatError as exc:
        print(f"compat-matrix: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_status) from None
    return NoxMatrix(loaded, cells, root, default, options, posargs_error)


def register(matrix: str | os.PathLike[str] = "compat.yml") -> NoxMatrix:
    """Register `cell(<id>)` for every cell of `matrix` (relative to the calling noxfile) and
    `probe`, which requires them all. Returns what was registered."""
    caller = sys._getframe(1).f_globals.get("__file__")  # the noxfile's own path
    root = Path(caller).resolve().parent if caller else Path.cwd()
    selection = nox_selection(sys.argv, os.environ)
    if selection is None and nox.options.sessions:  # the noxfile's defaults, if set already
        selection = " ".join(nox.options.sessions)
    ours = selection is None or names_matrix_sessions(selection)
    # The words after `--` are checked at load only when nox names our sessions: otherwise
    # they may be for the noxfile's own (`nox -s tests -- -x`).
    strict = selection is not None and ours
    nm = load_for_nox(root, matrix, posargs=_posargs(sys.argv), strict=strict)
    ids = nm.ids
    if nox.options.parallel is None and ours and nm.posargs_error is None:
        # Cells in parallel on every core, as `compat-matrix run` does (`-j N` still wins).
        # Not when nox runs only the noxfile's own sessions: nox would warn that none allows it.
        nox.options.parallel = usable_cpus()

    @nox.session(name="cell", python=False, allow_parallel=True, default=False)
    @nox.parametrize("cell_id", ids, ids=ids)
    def cell(session: nox.Session, cell_id: str) -> None:
        """One matrix cell: build its environment, run the probes, write cells/<id>.json."""
        run_cell_session(session, nm, cell_id)

    # Words after `--` that are not run options: `probe` fails with the parser's message at
    # once, rather than every cell first.
    requires = [f"cell({cell_id})" for cell_id in ids] if nm.posargs_error is None else []

    @nox.session(name="probe", python=False, requires=requires)
    def probe(session: nox.Session) -> None:
        """Every cell of the matrix, then the merged report and the verdict table."""
        run_probe_session(session, nm)

    return nm


def _options(session: _Session, nm: NoxMatrix) -> RunOptions:
    if nm.posargs_error is not None:
        session.error(nm.posargs_error)
    try:
        return nm.options_for(session.posargs)
    except CompatError as exc:
        session.error(str(exc))
        raise  # pragma: no cover - session.error raises


def verdict_line(result: CellResult) -> str:
    """`fail (import-error) mypkg: ...`: a cell's verdict in one line, as nox shows it."""
    line = result.status + (f" ({result.category})" if result.category else "")
    if result.message:
        line += f" {result.message.splitlines()[0][:200]}"
    if result.expectation is not None:
        line += " [as expected]" if result.expectation.met else " [NOT as expected]"
    return line


def run_cell_session(session: _Session, nm: NoxMatrix, cell_id: str) -> None:
    """Body of `cell(<id>)`: run the cell, publish what has finished, show the verdict."""
    options = _options(session, nm)
    cell = nm.cell(cell_id)
    if not runner_selects(cell, options.runner):
        wants, run = (
            ("a GPU", "--cpu-only") if options.runner == "cpu" else ("no GPU", "--gpu-only")
        )
        session.skip(f"{cell_id} needs {wants}; this run is {run}")
        return
    selected = [c for c in nm.cells if runner_selects(c, options.runner)]
    outcome = run_pipeline(nm.matrix, [cell], options, report_cells=selected, final=False)
    result = next(r for r in outcome.results if r.id == cell_id)
    line = f"{cell_id}: {verdict_line(result)}"
    if result.status == "pass":
        session.log(line)
    else:
        session.skip(verdict_line(result))


def run_probe_session(session: _Session, nm: NoxMatrix) -> None:
    """Body of `probe`: publish every selected cell's result, print the table, judge the run."""
    options = _options(session, nm)
    selected = [c for c in nm.cells if runner_selects(c, options.runner)]
    outcome = run_pipeline(nm.matrix, [], options, report_cells=selected, final=True)
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    width = terminal_width(sys.stdout)
    print(render_outcome(outcome, color=color, width=width), end="", flush=True)
    if outcome.exit_status != 0:
        session.error(
            f"compat-matrix exit status {outcome.exit_status}: "
            f"see {outcome.published.paths.markdown}"
        )
