"""The `compat-matrix` command line: `run`, `floors`, `expand`, `report`, `plan`, `audit`,
`pythons`.

Exit status: 0 every cell met its expectation, 1 a cell failed or regressed, 2 usage or
matrix-file error (a package or version that does not exist included), 3 infrastructure errors
(`report --fail-on` narrows what counts); 141 when the reader of stdout went away
(`compat-matrix expand ... | head`), without a traceback. `run` is the pipeline (pipeline.py)
every front door shares; its options and their precedence are declared there. SIGTERM and
SIGHUP stop a run as Ctrl-C does (children.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from compat_matrix import __version__, children
from compat_matrix.build import pythons
from compat_matrix.errors import CompatError, UsageError
from compat_matrix.front.plan import (
    OUTPUT_LIMIT,
    PlanSettings,
    github_matrix,
    load_history,
    plan_shards,
)
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.matrix.model import Matrix
from compat_matrix.matrix.select import select_cells
from compat_matrix.matrix.yamlfile import Limits
from compat_matrix.probe.verdicts import EXIT_INFRA
from compat_matrix.probe.verdicts import exit_status as verdict_exit_status
from compat_matrix.reports import JUnitSource, render_terminal
from compat_matrix.reports.baseline import Baseline, BaselineDiff
from compat_matrix.reports.metadata_truth import metadata_terminal
from compat_matrix.reports.publish import collect, publish_results
from compat_matrix.run.cell import unreadable_result
from compat_matrix.run.metadata import check_metadata
from compat_matrix.run.pipeline import (
    DEFAULT_ENV_DIR,
    Progress,
    add_fail_on_option,
    add_run_options,
    cells_at_once,
    load_selection,
    max_cells,
    parse_fail_on_words,
    render_outcome,
    resolve_options,
    run_exit_status,
    run_pipeline,
    terminal_width,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from compat_matrix.results import CellResult

__all__ = ["EXIT_CLOSED_PIPE", "main"]

#: The exit status when the reader of stdout went away (128 + SIGPIPE, as a shell reports it).
EXIT_CLOSED_PIPE = 141


def _cmd_run(args: argparse.Namespace) -> int:
    options = resolve_options(args, os.environ, Path.cwd())
    matrix, cells = load_selection(options)
    print(
        f"compat-matrix: {len(cells)} cells of {matrix.name!r} ({options.matrix}), "
        f"{cells_at_once(options, len(cells))} at a time",
        file=sys.stderr,
        flush=True,
    )
    with Progress(len(cells)) as progress:
        outcome = run_pipeline(matrix, cells, options, progress=progress)
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    print(render_outcome(outcome, color=color, width=terminal_width(sys.stdout)), end="")
    return outcome.exit_status


def _cmd_floors(args: argparse.Namespace) -> int:
    from compat_matrix.run.floors import (  # noqa: PLC0415 - the rarer, heavier path
        find_floors,
        floors_json,
        format_floors,
        write_floors_json,
    )

    ignored = [
        option
        for option, given in (
            ("--cells", args.cells is not None),
            ("--gpu-only", args.gpu_only),
            ("--cpu-only", args.cpu_only),
            ("--fail-on", args.fail_on is not None),
        )
        if given
    ]
    if ignored:
        msg = (
            f"floors does not take {', '.join(ignored)}: it builds its own cells (python and "
            "the pinned floors), not a selection of the matrix's, and its exit status is "
            "fixed (0 floors hold, 1 a bound must move, 3 not judged)"
        )
        raise UsageError(msg)
    options = resolve_options(args, os.environ, Path.cwd())
    options = replace(options, cells="", runner="all", report_dir=options.report_dir / "floors")
    matrix, _ = load_selection(options)
    print(
        f"compat-matrix floors: {matrix.name!r} ({options.matrix}), report in {options.report_dir}",
        file=sys.stderr,
        flush=True,
    )
    outcome = find_floors(matrix, options, budget_s=args.budget, max_steps=args.max_steps)
    try:
        write_floors_json(outcome)
    except OSError as exc:
        print(f"compat-matrix: cannot write floors.json: {exc.strerror}", file=sys.stderr)
    print(floors_json(outcome) if args.json else format_floors(outcome), end="")
    return outcome.exit_status


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        msg = f"expected a number of seconds > 0, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _steps(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        msg = f"expected a whole number of steps >= 1, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _add_max_cells(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-cells",
        type=int,
        metavar="N",
        help="cell limit (default: $COMPAT_MAX_CELLS or 10,000)",
    )


def _load(path: str, args: argparse.Namespace) -> Matrix:
    """The matrix file, with `--max-cells` (else `$COMPAT_MAX_CELLS`) as its cell limit."""
    limit = max_cells(getattr(args, "max_cells", None), os.environ)
    return load_matrix(Path(path), Limits(max_cells=limit))


def _cmd_expand(args: argparse.Namespace) -> int:
    matrix = _load(args.matrix, args)
    cells = expand(matrix)
    if args.json:
        entries: list[dict[str, object]] = []
        for cell in cells:
            entries.append({"id": cell.id, "axes": cell.axes})
            selection = matrix.selection_for(cell)
            if not selection.is_default:  # the top-level keys too: how this cell resolves
                entries[-1]["selection"] = {
                    "resolution": selection.resolution,
                    "as-of": selection.as_of,
                    "prerelease": selection.prerelease,
                }
        print(json.dumps(entries, indent=2))
    else:
        for cell in cells:
            print(cell.id)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    directories = [Path(d) for d in args.dirs]
    for directory in directories:
        if not directory.is_dir():
            msg = f"report directory not found: {directory}"
            raise UsageError(msg)
    # A big baseline is read by a helper while this process reads the matrix and cell files.
    baseline = Baseline.meanwhile(Path(args.baseline)) if args.baseline else None
    try:
        return _report(args, directories, baseline)
    finally:  # the report failed before it compared: the helper is not needed
        if baseline is not None:
            baseline.close()


def _report(args: argparse.Namespace, directories: list[Path], baseline: Baseline | None) -> int:
    """`report` of the cell files in `directories`, compared with `baseline`."""
    matrix = _load(args.matrix, args) if args.matrix else None
    cells = expand(matrix) if matrix is not None else None
    order = [c.id for c in cells] if cells is not None else None
    collected = collect(
        directories,
        order,
        stand_in=lambda cell_id, path, reason: unreadable_result(cell_id, {}, path, reason),
        lines=True,
        slim=True,
    )
    try:
        for path in collected.unreadable:
            print(
                f"compat-matrix: cannot read the cell file {path}: "
                "counted as error/unreadable-result",
                file=sys.stderr,
            )
        results = collected.results
        if not results:
            msg = f"no cell results found in {', '.join(args.dirs)}"
            raise UsageError(msg)
        fail_on, fail_on_metadata = parse_fail_on_words(
            args.fail_on if args.fail_on is not None else os.environ.get("COMPAT_FAIL_ON", "")
        )
        env_root = Path(os.environ.get("COMPAT_ENV_DIR") or DEFAULT_ENV_DIR).absolute()
        metadata = check_metadata(matrix, results, env_root)
        out = Path(args.output) if args.output else directories[0]
        matrix_name = matrix.name if matrix is not None else None
        name = args.name or matrix_name or _report_name(directories) or "compat-matrix"
        source = (
            JUnitSource.for_matrix(matrix.path, cells)
            if matrix is not None and cells is not None
            else None
        )
        annotate = _culprit_search(args, matrix, results, out) if args.culprit else None
        paths, diff, write_error = publish_results(
            out,
            name,
            results,
            baseline=baseline,
            source=source,
            lines=collected.lines,
            metadata=metadata,
            annotate=annotate,
        )
        print(render_terminal(results, color=sys.stdout.isatty()))
        if metadata:
            print(metadata_terminal(metadata), end="")
        if diff is not None:
            print(
                f"since the baseline: {len(diff.regressions)} regressions, "
                f"{len(diff.broken)} newly broken, {len(diff.fixed)} newly fixed, "
                f"{len(diff.unsupported)} newly unsupported, {len(diff.added)} new cells, "
                f"{len(diff.removed)} removed cells"
            )
            for cell_id, finding in diff.culprits.items():
                print(f"  {cell_id}: {finding.sentence()}")
        if write_error:
            print(
                f"compat-matrix: cannot write the report in {out}: {write_error}", file=sys.stderr
            )
            return EXIT_INFRA
        print(f"report: {paths.markdown.parent}")
        return run_exit_status(
            results, diff, fail_on, metadata=metadata, fail_on_metadata=fail_on_metadata
        )
    finally:  # also when a usage error ends the command
        if collected.lines is not None:
            collected.lines.close()
        if args.kept is not None:
            args.kept += [collected, cells, matrix]


def _culprit_search(
    args: argparse.Namespace, matrix: Matrix | None, results: list[CellResult], out: Path
) -> Callable[[BaselineDiff, list[CellResult]], BaselineDiff]:
    """`report --culprit`: re-run each regressed cell with its moved packages reverted."""
    if not args.baseline:
        raise UsageError("--culprit needs --baseline (the night to compare with)")
    if matrix is None:
        raise UsageError("--culprit needs --matrix FILE: the cells are re-run from it")
    from compat_matrix.build.backends import package_index  # noqa: PLC0415 - --culprit only
    from compat_matrix.run.culprit import find_culprits  # noqa: PLC0415
    from compat_matrix.run.pipeline import DEFAULT_ENV_DIR  # noqa: PLC0415

    env_root = Path(os.environ.get("COMPAT_ENV_DIR") or DEFAULT_ENV_DIR).absolute()

    def annotate(diff: BaselineDiff, baseline: list[CellResult]) -> BaselineDiff:
        print(
            f"compat-matrix: searching the culprits of {len(diff.regressions)} regressions "
            f"(budget {args.culprit_budget:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        return find_culprits(
            matrix,
            diff,
            baseline,
            results,
            report_dir=out.absolute(),
            env_root=env_root,
            budget_s=args.culprit_budget,
            index=package_index(),
        )

    return annotate


def _report_name(directories: Sequence[Path]) -> str | None:
    for directory in directories:
        try:
            return str(json.loads((directory / "compat.json").read_text("utf-8"))["name"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def _runs_on(label: str) -> str | list[str]:
    """A runner label, or a JSON list of labels (`["self-hosted", "gpu"]`)."""
    text = label.strip()
    if text.startswith("["):
        try:
            labels = json.loads(text)
        except ValueError:
            labels = None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            msg = f"runner labels must be a label or a JSON list of labels, not {label!r}"
            raise UsageError(msg)
        return labels
    if not text:
        msg = "a runner label cannot be empty"
        raise UsageError(msg)
    return text


def _cmd_plan(args: argparse.Namespace) -> int:
    cells = select_cells(expand(_load(args.matrix, args)), args.cells or "")
    settings = PlanSettings(
        max_jobs=args.max_jobs,
        runs_on=_runs_on(args.runs_on),
        gpu_runs_on=_runs_on(args.gpu_label) if args.gpu_label else None,
        max_gpu_jobs=args.max_gpu_jobs,
    )
    history = load_history(Path(args.history)) if args.history else None
    shards = plan_shards(cells, settings, history)
    if args.github or args.github_output:
        document = json.dumps(github_matrix(shards), separators=(",", ":"))
        if args.github_output:
            _write_plan_outputs(document, len(shards), len(cells))
        if args.github:
            print(document)
        return 0
    for shard in shards:
        where = shard.runs_on if isinstance(shard.runs_on, str) else json.dumps(shard.runs_on)
        print(f"{shard.name}  {len(shard.cells):>5} cells  ~{shard.cost:>7.0f} s  on {where}")
        for cell_id in shard.cells:
            print(f"    {cell_id}")
    print(f"{len(cells)} cells in {len(shards)} jobs")
    return 0


def _write_plan_outputs(document: str, jobs: int, cells: int) -> None:
    """`matrix`, `has-cells`, `jobs`, `cells` for the plan job's `outputs:`."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        msg = "--github-output needs $GITHUB_OUTPUT (it is set inside a GitHub Actions step)"
        raise UsageError(msg)
    if len(document.encode("utf-8")) > OUTPUT_LIMIT:
        msg = (
            f"the plan is {len(document)} bytes, over GitHub's {OUTPUT_LIMIT}-byte job output "
            "limit: split the matrix into several files, or select cells with --cells"
        )
        raise UsageError(msg)
    from compat_matrix.front.gha import set_outputs  # noqa: PLC0415  (GitHub-only path)

    set_outputs(
        Path(target),
        {
            "matrix": document,
            "has-cells": "true" if jobs else "false",
            "jobs": str(jobs),
            "cells": str(cells),
        },
    )


def _cmd_pythons(args: argparse.Namespace) -> int:
    found = pythons.discover()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "version": i.version,
                        "path": str(i.path),
                        "free_threaded": i.free_threaded,
                        "source": i.source,
                        "abi": i.abi,
                    }
                    for i in found
                ],
                indent=2,
            )
        )
    else:
        print(pythons.format_table(found))
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    python = Path(args.python).absolute()
    report_dir = Path(args.output).absolute()
    imports = args.imports or None
    if args.upgrade:
        from compat_matrix.run.whatif import format_summary, what_if  # noqa: PLC0415 - the rarer, heavier path

        outcome = what_if(python, args.upgrade, report_dir, timeout=args.timeout, imports=imports)
        print(format_summary(outcome), end="")
        return outcome.exit_status
    from compat_matrix.run.audit import audit_environment  # noqa: PLC0415

    result, paths = audit_environment(python, report_dir, imports=imports, timeout=args.timeout)
    print(render_terminal([result], color=sys.stdout.isatty()))
    print(f"report: {paths.markdown.parent}")
    return verdict_exit_status([result])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compat-matrix",
        description="Which combinations of Python x packages x CUDA work, and why not.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="run every cell of a matrix in parallel, write the report, print the table",
        description="Build and probe the cells of MATRIX, write compat-report/, print the "
        "verdicts. Exit status 0 all as expected, 1 a cell failed, 2 a usage or matrix error "
        "(a package or version that does not exist included), 3 infrastructure errors.",
    )
    add_run_options(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "floors",
        help="test the local project's declared lower bounds per Python; suggest true ones",
        description="Pin every direct dependency of the local project (packages: ['.']) at "
        "its declared floor, per Python; bisect each floor that fails over the released "
        "versions to the lowest that passes. Cells and report in <report dir>/floors/, with "
        "floors.json. Only the matrix's python axis is used (other axes are left out, and "
        "said so); --cells, --gpu-only, --cpu-only and --fail-on are refused. Exit status 0 "
        "every floor holds, 1 a bound must be raised, 2 a usage or matrix error, 3 something "
        "could not be judged (infrastructure, budget).",
    )
    add_run_options(p)
    p.add_argument(
        "--budget",
        type=_seconds,
        default=1800.0,
        metavar="SECONDS",
        help="stop starting cells after this long (default 1800); what was not reached is said",
    )
    p.add_argument(
        "--max-steps",
        type=_steps,
        default=8,
        metavar="N",
        help="at most N bisect cells per dependency and Python (default 8)",
    )
    p.add_argument("--json", action="store_true", help="print floors.json instead of the table")
    p.set_defaults(func=_cmd_floors)

    p = sub.add_parser("expand", help="list the cells of a matrix in job order")
    p.add_argument("matrix", metavar="MATRIX")
    _add_max_cells(p)
    p.add_argument("--json", action="store_true", help='print [{"id", "axes"}]')
    p.set_defaults(func=_cmd_expand)

    p = sub.add_parser("report", help="merge cell results into compat.json/junit.xml/md/html")
    _add_max_cells(p)
    p.add_argument("dirs", nargs="+", metavar="DIR", help="report directories (cells/*.json)")
    p.add_argument("-o", "--output", metavar="OUT", help="where to write (default: first DIR)")
    p.add_argument("--matrix", metavar="MATRIX", help="order cells by this matrix's job order")
    p.add_argument("--name", help="report title (default: from compat.json)")
    p.add_argument(
        "--baseline",
        metavar="COMPAT_JSON",
        help="compare with an earlier compat.json: writes diff.json and opens compat.md with "
        "the changes; a regression exits 1",
    )
    add_fail_on_option(p)
    p.add_argument(
        "--culprit",
        action="store_true",
        help="with --baseline and --matrix: re-run each regressed cell with the packages that "
        "moved since the baseline reverted, and name the release that broke it",
    )
    p.add_argument(
        "--culprit-budget",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="time the culprit search may take in all (default 1800)",
    )
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("plan", help="shard the cells into CI jobs balanced by expected cost")
    p.add_argument("matrix", metavar="MATRIX")
    _add_max_cells(p)
    p.add_argument(
        "--github", action="store_true", help='print {"include": [...]} for fromJSON(...)'
    )
    p.add_argument(
        "--github-output",
        action="store_true",
        help="also write matrix, has-cells, jobs and cells to $GITHUB_OUTPUT",
    )
    p.add_argument(
        "--max-jobs", type=int, default=256, metavar="N", help="at most N jobs (default 256)"
    )
    p.add_argument(
        "--runs-on",
        default="ubuntu-latest",
        metavar="LABEL",
        help="runner label for CPU cells, or a JSON list of labels (default ubuntu-latest)",
    )
    p.add_argument(
        "--gpu-label",
        default="",
        metavar="LABEL",
        help="runner label for cells whose cuda axis is not none (default: --runs-on)",
    )
    p.add_argument("--max-gpu-jobs", type=int, metavar="N", help="at most N GPU jobs")
    p.add_argument("--cells", default="", help="only these cell ids or patterns (py3.11-*)")
    p.add_argument(
        "--history",
        metavar="COMPAT_JSON",
        help="balance by the cells' measured times in an earlier compat.json",
    )
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser(
        "audit",
        help="probe an existing environment (no build); with --upgrade, what an upgrade breaks",
    )
    p.add_argument("--python", required=True, metavar="PATH", help="the environment's python")
    p.add_argument(
        "-o",
        "--output",
        default="compat-report",
        metavar="OUT",
        help="report directory (default: compat-report)",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="module to import (repeatable; default: every installed distribution's)",
    )
    p.add_argument(
        "--upgrade",
        action="append",
        metavar="SPEC",
        help="python=3.12, numpy=2, numpy>=2.1 ...: build the same set with this "
        "upgrade in a scratch environment and report what would break (repeatable)",
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds (default: 900)")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("pythons", help="print the interpreter discovery table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_pythons)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command `argv` names (default: the program's arguments); its exit status."""
    return _main(argv)[0]


def console() -> NoReturn:
    """The `compat-matrix` program (its console script, `python -m compat_matrix`): `main`, and
    the process ends. After `report` it ends at once (`os._exit`, stdout and stderr flushed):
    the interpreter would free the millions of objects of a 10,000-cell report one by one
    (0.1-0.2 s), and `report` leaves nothing for an exit handler to do (no thread or temporary
    file outlives it, and its forked helper, let go, ends by itself, holding none of the output:
    reports/_parallel.py; `--culprit`, which runs cells, ends the usual way)."""
    kept: list[object] = []
    status, at_once = _main(None, kept)
    if at_once and threading.active_count() == 1:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def _main(argv: Sequence[str] | None, kept: list[object] | None = None) -> tuple[int, bool]:
    """`main`'s status, and whether the process may end at once after it (see `console`).

    Where the process ends at once, `kept` takes what the command made (`report`: its cells
    and results), so that it is not freed, object by object, when the command returns."""
    parser = build_parser()
    args = parser.parse_args(argv)
    at_once = args.func is _cmd_report and not args.culprit
    args.kept = kept if at_once else None
    children.end_on_signals()
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not as a warning at exit
    except BrokenPipeError:
        return _stdout_closed(), at_once
    except CompatError as exc:
        print(f"compat-matrix: {exc}", file=sys.stderr)
        return exc.exit_status, at_once
    except KeyboardInterrupt:
        return 130, False
    return status, at_once


def _stdout_closed() -> int:
    """`compat-matrix expand ... | head`: the reader left; stop quietly, as `cat` does.

    stdout is pointed at /dev/null so the interpreter's last flush cannot fail again.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE


if __name__ == "__main__":  # pragma: no cover
    console()
