"""A big report published against a baseline by a process with forked helpers: prints the
number of cells newly broken (or the usage error) and the report folder's files.
Arguments: the run folder, the report folder, the baseline."""

import sys
from pathlib import Path

from compat_matrix.errors import UsageError
from compat_matrix.reports import _parallel
from compat_matrix.reports.publish import collect, publish_results

run, out, baseline = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
_parallel.PARALLEL_MIN_CELLS = 0
collected = collect([run], None, lines=True, slim=True)
assert _parallel.fork_pays(len(collected.results))
try:
    _, diff, error = publish_results(
        out, "scale", collected.results, baseline=baseline, lines=collected.lines
    )
    print(error or f"{len(diff.broken)} broken")
except UsageError as exc:
    print("UsageError", exc)
print(sorted(p.name for p in out.iterdir()))
