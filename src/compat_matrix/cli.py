"""The `compat-matrix` command line.

Exit status: 0 every cell met its expectation, 1 a cell failed or regressed, 2 usage or
matrix-file error, 3 infrastructure errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, pythons
from .errors import CompatError, UsageError
from .expansion import expand
from .matrix_file import load_matrix
from .publishing import collect
from .reports import render_terminal, write_reports
from .verdicts import exit_status

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def _cmd_expand(args: argparse.Namespace) -> int:
    cells = expand(load_matrix(Path(args.matrix)))
    if args.json:
        print(json.dumps([{"id": c.id, "axes": c.axes} for c in cells], indent=2))
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
    order = [c.id for c in expand(load_matrix(Path(args.matrix)))] if args.matrix else None
    results = collect(directories, order)
    if not results:
        msg = f"no cell results found in {', '.join(args.dirs)}"
        raise UsageError(msg)
    out = Path(args.output) if args.output else directories[0]
    name = args.name or _report_name(directories) or "compat-matrix"
    paths = write_reports(out, name, results)
    print(render_terminal(results, color=sys.stdout.isatty()))
    print(f"report: {paths.markdown.parent}")
    return exit_status(results)


def _report_name(directories: Sequence[Path]) -> str | None:
    for directory in directories:
        try:
            return str(json.loads((directory / "compat.json").read_text("utf-8"))["name"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compat-matrix",
        description="Which combinations of Python x packages x CUDA work, and why not.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("expand", help="list the cells of a matrix in job order")
    p.add_argument("matrix", metavar="MATRIX")
    p.add_argument("--json", action="store_true", help='print [{"id", "axes"}]')
    p.set_defaults(func=_cmd_expand)

    p = sub.add_parser("report", help="merge cell results into compat.json/junit.xml/md/html")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="report directories (cells/*.json)")
    p.add_argument("-o", "--output", metavar="OUT", help="where to write (default: first DIR)")
    p.add_argument("--matrix", metavar="MATRIX", help="order cells by this matrix's job order")
    p.add_argument("--name", help="report title (default: from compat.json)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("pythons", help="print the interpreter discovery table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_pythons)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CompatError as exc:
        print(f"compat-matrix: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
