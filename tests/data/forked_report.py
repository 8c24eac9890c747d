"""A big report made with its forked helpers (made to fail when the third argument is
`fail`): prints the report folder's files and the cell files that could not be read.
Arguments: the run folders (comma-separated), the report folder, `ok` or `fail`."""

import os
import sys
from pathlib import Path

from compat_matrix import reports
from compat_matrix.reports import _parallel, publish

runs, out, fail = [Path(p) for p in sys.argv[1].split(",")], Path(sys.argv[2]), sys.argv[3]
_parallel.PARALLEL_MIN_CELLS = 0
main = os.getpid()
fill, send = reports.fill_stage, publish._send_outcomes


def fill_stage(fd, write):
    if fail == "fail" and os.getpid() != main:
        raise OSError("the helper fails")
    fill(fd, write)


def send_outcomes(*args, **kwargs):
    if fail == "fail":
        raise OSError("the helper fails")
    send(*args, **kwargs)


reports.fill_stage, publish._send_outcomes = fill_stage, send_outcomes
collected = publish.collect(runs, None, lines=True, slim=True)
assert _parallel.fork_pays(len(collected.results))
reports.write_reports(out, "scale", collected.results, lines=collected.lines)
collected.lines.close()
print(sorted(p.name for p in out.iterdir()))
print(sorted(p.name for p in collected.unreadable))
