"""The one pipeline: a selection of cells, run in parallel, published, judged.

Every front door calls it: `compat-matrix run`, a noxfile's `compat_matrix.nox.register` (each
`cell(<id>)` session runs its cell through here, `probe` publishes and judges) and the GitHub
Action's `probe` and `publish` steps. So missing cells, `--resume`, expectations and the exit
status are the same whichever door a run came through.

Run options are declared once, here (`add_run_options`, `resolve_options`). Each is taken from,
first to last: the command line (or the words after `nox ... --`), then its `COMPAT_*`
environment variable, then the matrix file (which gives `timeout:` and `backend:`), then the
default:

- matrix file: `MATRIX`, `$COMPAT_MATRIX`, else `./compat.yml`, else the packaged default;
- report directory: `-o DIR`, `$COMPAT_REPORT_DIR`, else `./compat-report`;
- environments: `$COMPAT_ENV_DIR`, else `./.nox/compat-envs`;
- cells at once: `-j N`, `$COMPAT_JOBS`, else every core this process may use (and one more
  where the cells do not divide among them: `cells_at_once`);
- keep unchanged cells: `--resume`, `$COMPAT_RESUME=1`, else off;
- probe unchanged files again: `--reprobe`, `$COMPAT_REPROBE=1`, else off (the file-reading
  probes' answers are reused while no file they read has changed: probes/_answers.py);
- cells: `--cells SELECTION`, `$COMPAT_CELLS`, else every cell;
- backend: `--backend NAME`, `$COMPAT_BACKEND`, else the matrix file's `backend:`;
- GPU / CPU runner's share: `--gpu-only` / `--cpu-only`, else every cell;
- what fails the run: `--fail-on MODE[,metadata]`, `$COMPAT_FAIL_ON`, else `error` (see
  reports/gate.py); `metadata` adds the metadata check's findings (run/metadata.py).

An unknown option is a usage error (exit status 2), after `--` in nox too. Exit status: 0 when
every cell met its expectation, 1 when a cell failed or missed its expectation, 2 when the
matrix names a package or version that does not exist (a typo is not a verdict), 3 when a cell
had infrastructure trouble.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO, cast

from compat_matrix import children
from compat_matrix.build import pythons
from compat_matrix.build.backends import DEFAULT_LOCK_MAX_AGE
from compat_matrix.build.cuda import needs_gpu
from compat_matrix.cpus import usable_cpus
from compat_matrix.errors import UsageError
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.matrix.model import BACKENDS
from compat_matrix.matrix.select import select_cells
from compat_matrix.matrix.yamlfile import DEFAULT_LIMITS, Limits
from compat_matrix.probe.verdicts import EXIT_INFRA, EXIT_USAGE, expectation_outcome
from compat_matrix.reports import render_terminal, report_paths
from compat_matrix.reports._verdicts import one_line
from compat_matrix.reports.gate import DEFAULT_FAIL_ON, FAIL_ON, gate_exit_status, parse_fail_on
from compat_matrix.reports.metadata_truth import counted, metadata_terminal
from compat_matrix.reports.publish import Published, publish_run
from compat_matrix.run.cell import RunSettings, missing_result, run_cell, unreadable_result
from compat_matrix.run.locks import run_lock
from compat_matrix.run.metadata import check_metadata

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from compat_matrix.matrix.model import Backend, Cell, Matrix
    from compat_matrix.reports.baseline import BaselineDiff
    from compat_matrix.reports.gate import FailOn
    from compat_matrix.reports.metadata_truth import MetadataFinding
    from compat_matrix.results import CellResult

__all__ = [
    "NOT_A_VERDICT",
    "Progress",
    "RunOptions",
    "RunOutcome",
    "add_fail_on_option",
    "add_run_options",
    "cells_at_once",
    "default_matrix",
    "load_selection",
    "max_cells",
    "packaged_matrix",
    "parse_fail_on_words",
    "parse_run_options",
    "publish_due",
    "render_outcome",
    "resolve_options",
    "run_exit_status",
    "run_pipeline",
    "runner_selects",
    "terminal_width",
]

Runner = Literal["all", "gpu", "cpu"]

#: Error categories that mean the matrix itself is wrong (exit status 2, like a bad file).
NOT_A_VERDICT = frozenset({"no-such-package", "no-such-version"})

DEFAULT_MATRIX_NAME = "compat.yml"
DEFAULT_REPORT_DIR = "compat-report"
DEFAULT_ENV_DIR = Path(".nox") / "compat-envs"
#: At most one intermediate publish per this many seconds (the final one always happens)...
_PUBLISH_EVERY_S = 2.0
#: ... and per this many times the last publish took: a publish re-reads every cell file and
#: rewrites four reports, so its cost grows with the matrix; spacing publishes by their cost
#: keeps the share of a run they take (and so the cost per cell) independent of its size.
_PUBLISH_COST_FACTOR = 20.0
#: Where the report folder remembers its last publish (when it ended, how long it took), so
#: that nox's `cell(<id>)` sessions, one process each, space their publishes as a run does.
_PUBLISHED_STAMP = ".published"
#: How long a run's main thread waits for a cell before it looks for a Ctrl-C.
_INTERRUPT_POLL_S = 0.2
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class RunOptions:
    """Every option of a run, resolved once into plain data (see the module docstring)."""

    matrix: Path
    report_dir: Path
    env_root: Path
    jobs: int
    resume: bool = False
    cells: str = ""
    runner: Runner = "all"
    #: The backend for every cell instead of the matrix file's `backend:` (None: the file's).
    backend: Backend | None = None
    #: The most cells a matrix may expand to (`--max-cells`, `$COMPAT_MAX_CELLS`).
    max_cells: int = DEFAULT_LIMITS.max_cells
    #: `--fail-on`: which outcomes fail the run (reports/gate.py).
    fail_on: FailOn = DEFAULT_FAIL_ON
    #: `--fail-on ...,metadata`: a metadata finding (run/metadata.py) exits 1 too.
    fail_on_metadata: bool = False
    #: Seconds a cell's lock stays good while its inputs are unchanged (`--lock-max-age`).
    lock_max_age: float = DEFAULT_LOCK_MAX_AGE
    #: `--reprobe`: read every file again instead of reusing answers for unchanged files.
    reprobe: bool = False
    #: `jobs` is the default (every usable core), not `-j` or `$COMPAT_JOBS`: a run then
    #: takes one more cell at once where its cells do not divide among the cores
    #: (`cells_at_once`).
    jobs_auto: bool = False


def packaged_matrix() -> Path:
    """The default matrix shipped inside the package (`matrix/default.yml` in the sources)."""
    spec = importlib.util.find_spec("compat_matrix.matrices")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "default.yml"
        if candidate.is_file():
            return candidate
    return Path(__file__).resolve().parents[3] / "matrix" / "default.yml"  # pragma: no cover


def default_matrix(cwd: Path, env: Mapping[str, str]) -> Path:
    """`$COMPAT_MATRIX`, else `compat.yml` in `cwd`, else the packaged default matrix."""
    if env.get("COMPAT_MATRIX"):
        return Path(env["COMPAT_MATRIX"])
    local = cwd / DEFAULT_MATRIX_NAME
    return local if local.is_file() else packaged_matrix()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a whole number of cells >= 1, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_run_options(parser: argparse.ArgumentParser, *, matrix: bool = True) -> None:
    """Declare the run options on `parser` (`compat-matrix run`, and nox's `--` words)."""
    if matrix:
        parser.add_argument(
            "matrix",
            nargs="?",
            metavar="MATRIX",
            help="the matrix file (default: $COMPAT_MATRIX, ./compat.yml, the packaged default)",
        )
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="report directory (default: $COMPAT_REPORT_DIR or compat-report)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        metavar="N",
        help="cells at once (default: $COMPAT_JOBS, else every core this process may use, and "
        "one more where the cells do not divide among them)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="keep finished cells whose inputs (local sources included) are unchanged",
    )
    parser.add_argument(
        "--reprobe",
        action="store_true",
        default=None,
        help="read every file again (default: $COMPAT_REPROBE, else the answers of the probes "
        "that only read files are reused while no file they read has changed)",
    )
    parser.add_argument(
        "--cells", metavar="SELECTION", help="only these cell ids or patterns (py3.11-*)"
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="build every cell with this backend instead of the matrix file's "
        "(default: $COMPAT_BACKEND, else the file's)",
    )
    parser.add_argument(
        "--max-cells",
        type=_positive,
        metavar="N",
        help=f"refuse a matrix of more cells (default: $COMPAT_MAX_CELLS or "
        f"{DEFAULT_LIMITS.max_cells:,})",
    )
    parser.add_argument(
        "--lock-max-age",
        type=_seconds,
        metavar="SECONDS",
        help="re-resolve a cell whose inputs are unchanged only when its lock is older than this "
        f"(default: $COMPAT_LOCK_MAX_AGE or {DEFAULT_LOCK_MAX_AGE:.0f}, as long as uv trusts "
        "PyPI's index pages; 0: resolve every run, as a nightly does)",
    )
    parser.add_argument("--gpu-only", action="store_true", help="only the cells that need a GPU")
    parser.add_argument("--cpu-only", action="store_true", help="only the cells that need none")
    add_fail_on_option(parser)


def add_fail_on_option(parser: argparse.ArgumentParser) -> None:
    """`--fail-on MODE[,metadata]`: declared once, for `run`, `report` and nox's `--` words."""
    parser.add_argument(
        "--fail-on",
        metavar="MODE",
        help=f"what exits non-zero: {', '.join(FAIL_ON)} (default: $COMPAT_FAIL_ON or "
        f"{DEFAULT_FAIL_ON}), plus ',metadata' to exit 1 on a metadata finding "
        "(--fail-on metadata: the default mode and metadata)",
    )


def parse_fail_on_words(text: str) -> tuple[FailOn, bool]:
    """`error`, `fail,metadata`, `metadata` -> (the gate's mode, whether metadata fails)."""
    words = [word.strip().lower() for word in text.split(",") if word.strip()]
    metadata = "metadata" in words
    modes = [word for word in words if word != "metadata"]
    if len(modes) > 1:
        msg = f"fail-on takes one of {', '.join(FAIL_ON)} (and metadata), not {text!r}"
        raise UsageError(msg)
    return parse_fail_on(modes[0] if modes else ""), metadata


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are UsageErrors (exit status 2, no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        msg = f"expected a number of seconds >= 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = env.get(name, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    msg = f"{name} must be 1/true or 0/false, not {env[name]!r}"
    raise UsageError(msg)


def resolve_options(
    args: argparse.Namespace,
    env: Mapping[str, str],
    cwd: Path,
    *,
    matrix: Path | None = None,
) -> RunOptions:
    """Command line, then `COMPAT_*`, then defaults; relative paths are relative to `cwd`.

    `matrix` is the front door's own default (a noxfile's `register("compat.yml")`); the
    command line and `$COMPAT_MATRIX` still win over it.
    """
    if getattr(args, "matrix", None):
        path = Path(args.matrix)
    elif env.get("COMPAT_MATRIX"):
        path = Path(env["COMPAT_MATRIX"])
    elif matrix is not None:
        path = matrix
    else:
        path = default_matrix(cwd, env)
    report = args.output or env.get("COMPAT_REPORT_DIR") or DEFAULT_REPORT_DIR
    envs = env.get("COMPAT_ENV_DIR") or DEFAULT_ENV_DIR
    jobs_auto = False
    if args.jobs is not None:
        jobs = args.jobs
    elif env.get("COMPAT_JOBS"):
        try:
            jobs = _positive(env["COMPAT_JOBS"])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"COMPAT_JOBS: {exc}") from None
    else:
        jobs, jobs_auto = usable_cpus(), True
    limit = max_cells(args.max_cells, env)
    resume = args.resume if args.resume is not None else _flag(env, "COMPAT_RESUME")
    reprobe = args.reprobe if args.reprobe is not None else _flag(env, "COMPAT_REPROBE")
    cells = args.cells if args.cells is not None else env.get("COMPAT_CELLS", "")
    if args.gpu_only and args.cpu_only:
        msg = "--gpu-only and --cpu-only exclude each other: give one (or neither for all cells)"
        raise UsageError(msg)
    runner: Runner = "gpu" if args.gpu_only else "cpu" if args.cpu_only else "all"
    given = getattr(args, "fail_on", None)
    fail_on, fail_on_metadata = parse_fail_on_words(
        given if given is not None else env.get("COMPAT_FAIL_ON", "")
    )
    lock_max_age = getattr(args, "lock_max_age", None)
    if lock_max_age is None:
        try:
            lock_max_age = _seconds(env.get("COMPAT_LOCK_MAX_AGE") or str(DEFAULT_LOCK_MAX_AGE))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"COMPAT_LOCK_MAX_AGE: {exc}") from None
    backend = args.backend or env.get("COMPAT_BACKEND", "").strip() or None
    if backend is not None and backend not in BACKENDS:
        msg = f"COMPAT_BACKEND must be one of {', '.join(BACKENDS)} (or empty), not {backend!r}"
        raise UsageError(msg)
    return RunOptions(
        matrix=_absolute(cwd, path),
        report_dir=_absolute(cwd, Path(report)),
        env_root=_absolute(cwd, Path(envs)),
        jobs=jobs,
        jobs_auto=jobs_auto,
        resume=resume,
        cells=cells,
        runner=runner,
        backend=cast("Backend | None", backend),
        max_cells=limit,
        fail_on=fail_on,
        fail_on_metadata=fail_on_metadata,
        lock_max_age=lock_max_age,
        reprobe=reprobe,
    )


def max_cells(given: int | None, env: Mapping[str, str]) -> int:
    """The cell limit: `--max-cells`, else `$COMPAT_MAX_CELLS`, else the default (10,000)."""
    if given is not None:
        if given < 1:
            raise UsageError("--max-cells must be a positive whole number")
        return given
    if env.get("COMPAT_MAX_CELLS"):
        try:
            return _positive(env["COMPAT_MAX_CELLS"])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"COMPAT_MAX_CELLS: {exc}") from None
    return DEFAULT_LIMITS.max_cells


def _absolute(cwd: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (cwd / path).absolute()


def parse_run_options(
    words: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    *,
    prog: str,
    matrix: Path | None = None,
) -> RunOptions:
    """Parse run options from `words` (no MATRIX): the words after `nox ... --`.

    An unknown word is a UsageError, never ignored.
    """
    parser = _Parser(prog=prog, add_help=False)
    add_run_options(parser, matrix=False)
    return resolve_options(parser.parse_args(list(words)), env, cwd, matrix=matrix)


def runner_selects(cell: Cell, runner: Runner) -> bool:
    """Whether a `--gpu-only` / `--cpu-only` / plain run runs `cell`."""
    if runner == "gpu":
        return needs_gpu(cell.axes)
    if runner == "cpu":
        return not needs_gpu(cell.axes)
    return True


def cells_at_once(options: RunOptions, count: int) -> int:
    """How many of `count` cells run at once: `-j` (or `$COMPAT_JOBS`) as given; by default
    every usable core, and one more where the cells do not divide among the cores.

    Cells of about one size, two at a time, leave a core idle through the last round when
    their count is odd (5 cells: 3 rounds, the last of one cell); one more at once, the cores
    are shared to the end instead. Measured on two cores, warm runs of numpy x pandas cells:
    5 cells 0.94x and 3 cells 0.89x the time of two at a time, while 4 cells took 1.17x three
    at a time: an even count keeps one cell per core."""
    jobs = options.jobs
    if options.jobs_auto and count % jobs:
        jobs += 1
    return max(1, min(jobs, count))


def load_selection(options: RunOptions) -> tuple[Matrix, list[Cell]]:
    """The matrix, and the cells this run covers: `cells` selection, then the runner's share."""
    try:
        matrix = load_matrix(options.matrix, Limits(max_cells=options.max_cells))
    except OSError as exc:
        msg = f"cannot read matrix {options.matrix}: {exc.strerror}"
        raise UsageError(msg) from None
    if options.backend is not None and options.backend != matrix.backend:
        matrix = replace(matrix, backend=options.backend)
    cells = select_cells(expand(matrix), options.cells)
    return matrix, [cell for cell in cells if runner_selects(cell, options.runner)]


def run_exit_status(
    results: Sequence[CellResult],
    diff: BaselineDiff | None = None,
    fail_on: FailOn = "error",
    *,
    metadata: Sequence[MetadataFinding] | None = None,
    fail_on_metadata: bool = False,
) -> int:
    """The run's exit status: 2 for a package or version that does not exist, else the gate's.

    A cell whose `expect:` entry accepts the error (a deliberate typo in a test matrix) does
    not count. With `fail_on_metadata`, a metadata finding (not a skipped check) exits 1
    where the gate said 0 or 3.
    """
    if fail_on != "never" and any(
        r.status == "error"
        and r.category in NOT_A_VERDICT
        and not (r.expectation is not None and r.expectation.met)
        for r in results
    ):
        return EXIT_USAGE
    status = gate_exit_status(results, diff, fail_on)
    if fail_on_metadata and counted(metadata or ()) and status in (0, EXIT_INFRA):
        return 1
    return status


def finished_line(result: CellResult, done: int, total: int) -> str:
    """`[k/N] <id>: <status> (<category>) <message>`: one finished cell, on one line."""
    line = f"[{done}/{total}] {result.id}: {result.status}"
    if result.category:
        line += f" ({result.category})"
    if result.message:
        line += f" {one_line(result.message, 200)}"
    return line


class Progress:
    """Cells done / total as they end: a live line in a terminal, else one line per cell."""

    def __init__(self, total: int, stream: TextIO | None = None, *, live: bool | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.total = total
        self.done = 0
        self.running: dict[str, float] = {}
        self.started_at = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.live:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._clear()

    def started(self, cell_id: str) -> None:
        with self._lock:
            self.running[cell_id] = time.monotonic()

    def finished(self, result: CellResult) -> None:
        with self._lock:
            self.running.pop(result.id, None)
            self.done += 1
            self._clear()
            line = finished_line(result, self.done, self.total)
            if self.live:  # a terminal: one screen line per cell, never wrapped
                line = one_line(line, max(shutil.get_terminal_size().columns - 1, 20))
            self.stream.write(line + "\n")
            self._draw()
            self.stream.flush()

    def status_line(self, width: int) -> str:
        """`[k/N] 12s running: a, b (+3)`, cut to `width`."""
        elapsed = int(time.monotonic() - self.started_at)
        head = f"[{self.done}/{self.total}] {elapsed // 60}:{elapsed % 60:02d}"
        names = sorted(self.running, key=self.running.__getitem__)
        text = f"{head} running: {', '.join(names)}" if names else head
        return text if len(text) <= width else text[: max(width - 1, 0)] + "…"

    def _tick(self) -> None:  # pragma: no cover - a terminal loop
        while not self._stop.wait(0.5):
            with self._lock:
                self._clear()
                self._draw()
                self.stream.flush()

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")

    def _draw(self) -> None:
        if self.live:
            width = shutil.get_terminal_size().columns
            self.stream.write(self.status_line(max(width - 1, 20)))


@dataclass(frozen=True)
class RunOutcome:
    """What a front door needs: the published results, what was missing, the exit status."""

    published: Published
    exit_status: int

    @property
    def results(self) -> list[CellResult]:
        return self.published.results

    @property
    def missing(self) -> list[str]:
        """Covered cells with no result at all (not those this run has but could not write)."""
        stood_in = {r.id for r in self.results if r.category == "missing"}
        return [cell_id for cell_id in self.published.missing if cell_id in stood_in]


def run_pipeline(
    matrix: Matrix,
    cells: Sequence[Cell],
    options: RunOptions,
    *,
    report_cells: Sequence[Cell] | None = None,
    final: bool = True,
    progress: Progress | None = None,
    baseline: Path | None = None,
    fail_on: FailOn | None = None,
    check_metadata_truth: bool = True,
) -> RunOutcome:
    """Run `cells` (`cells_at_once`), each result written as it ends; publish; judge.

    The report covers `report_cells` (default: `cells`) in job order. `final` says the run is
    over: a covered cell without a result is then `error`/`missing`. A nox `cell(<id>)`
    session runs one cell with `final=False` (the others may still be running); `probe` runs
    none with `final=True`. `fail_on` overrides `options.fail_on`. A final publish runs the
    metadata check (run/metadata.py): its findings are in the reports and, with
    `options.fail_on_metadata`, in the exit status (`check_metadata_truth=False`: not checked,
    for cells that are not the matrix's own, as `floors` builds). A `final=False` run
    publishes only when `publish_due` (another session may have published a moment ago; the
    final publish covers every cell file).
    """
    gate = fail_on if fail_on is not None else options.fail_on
    covered = list(report_cells) if report_cells is not None else list(cells)
    #: This run's results, for the table when a cell's file could not be written (disk full).
    ran: dict[str, CellResult] = {}
    if cells:
        what = f"compat-matrix run of {options.matrix.name}"
        with ExitStack() as held:  # one run at a time per folder; children end with the run
            held.enter_context(run_lock(options.report_dir, what))
            held.enter_context(run_lock(options.env_root, what))
            held.enter_context(children.guarded())
            ran = _run_cells(matrix, cells, covered, options, progress)
    if not final and not publish_due(options.report_dir):
        # Another cell published a moment ago; the next publish (or the final one) covers
        # this cell too, from its cell file.
        return RunOutcome(_unpublished(options.report_dir, covered, ran), 0)
    published = _timed_publish(
        options.report_dir,
        matrix.name,
        covered,
        missing=(lambda cell: ran.get(cell.id) or missing_result(matrix, cell)) if final else None,
        unreadable=(
            lambda cell, path, reason: unreadable_result(
                cell.id,
                cell.axes,
                path,
                reason,
                expectation=expectation_outcome(matrix.expect, cell.axes, "error"),
            )
        )
        if final
        else None,
        baseline=baseline,
        matrix_path=matrix.path,
        metadata_check=(lambda results: check_metadata(matrix, results, options.env_root))
        if final and check_metadata_truth
        else None,
    )
    status = run_exit_status(
        published.results,
        published.diff,
        gate,
        metadata=published.metadata,
        fail_on_metadata=options.fail_on_metadata,
    )
    if published.write_error and status == 0 and gate != "never":
        status = EXIT_INFRA
    return RunOutcome(published, status)


def _last_publish(report_dir: Path) -> tuple[float, float] | None:
    """When the last publish of `report_dir` ended (or began, while it runs) and how long it
    took, from its stamp; None when there is none."""
    try:
        ended, took = (float(x) for x in (report_dir / _PUBLISHED_STAMP).read_text().split())
    except (OSError, ValueError):
        return None
    return ended, took


def _stamp(report_dir: Path, when: float, took: float) -> None:
    # A full or read-only folder: publishes are then not spaced, nothing worse.
    with suppress(OSError):
        (report_dir / _PUBLISHED_STAMP).write_text(f"{when:.3f} {took:.3f}\n")


def publish_due(report_dir: Path, now: float | None = None) -> bool:
    """Whether an intermediate publish of `report_dir` is due: none yet, or the last ended
    `_PUBLISH_EVERY_S` ago and `_PUBLISH_COST_FACTOR` times as long as it took."""
    last = _last_publish(report_dir)
    if last is None:
        return True
    ended, took = last
    now = time.time() if now is None else now
    return now - ended >= max(_PUBLISH_EVERY_S, _PUBLISH_COST_FACTOR * took)


def _timed_publish(report_dir: Path, name: str, cells: Sequence[Cell], **kwargs: Any) -> Published:
    """`publish_run`, remembering when it ended and how long it took (`publish_due`)."""
    last = _last_publish(report_dir)
    # Claimed first: a cell session ending while this publish runs does not start another.
    _stamp(report_dir, time.time(), last[1] if last else 0.0)
    started = time.monotonic()
    published = publish_run(report_dir, name, cells, **kwargs)
    _stamp(report_dir, time.time(), time.monotonic() - started)
    return published


def _unpublished(
    report_dir: Path, covered: Sequence[Cell], ran: Mapping[str, CellResult]
) -> Published:
    """What a skipped intermediate publish stands for: this run's own results, nothing written."""
    results = [ran[cell.id] for cell in covered if cell.id in ran]
    missing = [cell.id for cell in covered if cell.id not in ran]
    return Published(report_paths(report_dir), results, missing)


def _run_cells(
    matrix: Matrix,
    cells: Sequence[Cell],
    covered: Sequence[Cell],
    options: RunOptions,
    progress: Progress | None,
) -> dict[str, CellResult]:
    """Run `cells`, `cells_at_once` of them at once, publishing what has finished every few seconds.

    Ctrl-C (or SIGTERM, made one by the front doors) kills the cells' children, publishes
    what finished and re-raises; the interrupted cells write nothing. It is only noted while
    the loop waits (`children.interrupts_deferred`), and raised between two waits.
    """
    settings = RunSettings(
        report_dir=options.report_dir,
        env_root=options.env_root,
        resume=options.resume,
        lock_max_age=options.lock_max_age,
        reuse_answers=not options.reprobe,
    )
    interpreters = pythons.discover()
    last_publish = time.time()
    ran: dict[str, CellResult] = {}
    jobs = cells_at_once(options, len(cells))
    with children.interrupts_deferred() as interrupted, ThreadPoolExecutor(jobs) as pool:
        pending: dict[Future[CellResult], Cell] = {}
        queue = deque(cells)
        try:
            while queue or pending:
                while queue and len(pending) < jobs:
                    cell = queue.popleft()
                    if progress is not None:
                        progress.started(cell.id)
                    pending[pool.submit(run_cell, matrix, cell, settings, interpreters)] = cell
                # Publish while every slot is busy, never while a finished cell's slot waits.
                now = time.time()
                if now - last_publish >= _PUBLISH_EVERY_S and publish_due(options.report_dir, now):
                    _timed_publish(options.report_dir, matrix.name, covered)
                    last_publish = time.time()
                done: set[Future[CellResult]] = set()
                while not done:  # a Ctrl-C is heard between two waits, never inside one
                    done, _ = wait(pending, _INTERRUPT_POLL_S, FIRST_COMPLETED)
                    if interrupted():
                        raise KeyboardInterrupt
                for future in done:
                    pending.pop(future)
                    result = future.result()
                    ran[result.id] = result
                    if progress is not None:
                        progress.finished(result)
        except BaseException:
            children.stop()
            pool.shutdown(wait=True, cancel_futures=True)
            publish_run(options.report_dir, matrix.name, covered)
            raise
    return ran


def render_outcome(outcome: RunOutcome, *, color: bool, width: int | None = None) -> str:
    """The verdict table, then where the report is and what was missing: every door's ending."""
    text = render_terminal(outcome.results, color=color, width=width)
    missing = len(outcome.missing)
    text += f"report: {outcome.published.paths.markdown.parent}"
    if missing:
        text += f" ({missing} cells had no result: error/missing)"
    if outcome.published.write_error:
        text += (
            f"\nthe report could not be written in {outcome.published.paths.markdown.parent}: "
            f"{outcome.published.write_error} (the table above is what this run has)"
        )
    for path in outcome.published.unreadable:
        text += f"\nunreadable cell file (counted as error/unreadable-result): {path}"
    if outcome.published.metadata:
        text += "\n" + metadata_terminal(outcome.published.metadata).rstrip("\n")
    return text + f"\nexit status {outcome.exit_status}\n"


def terminal_width(stream: TextIO) -> int | None:
    """The terminal's width when `stream` is one, else None (a log: no cutting)."""
    return shutil.get_terminal_size().columns if stream.isatty() else None
