"""Run by tests/test_hostile_runtime.py: a run whose Ctrl-C lands inside `wait()` for its cells,
where `wait()` holds a future's lock. Usage: python ctrl_c_inside_wait.py TMPDIR (exit 130)."""

from __future__ import annotations

import concurrent.futures
import signal
import sys
import time
from pathlib import Path
from typing import Any

from compat_matrix import children
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.run import pipeline


def run_cell(*args: object) -> object:
    """A cell busy until the run is stopped, as an installer is."""
    while not children.stopping():
        time.sleep(0.01)
    raise children.Stopped


def wait(fs: Any, *args: Any, **kwargs: Any) -> Any:
    """Ctrl-C lands where `wait()` holds a future's lock: CPython runs a signal handler after
    any call, as after each `acquire()` there."""
    future = min(fs, key=id)
    future._condition.acquire()
    signal.raise_signal(signal.SIGINT)
    future._condition.release()
    return concurrent.futures.wait(fs, *args, **kwargs)


def main(tmp: Path) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal
    (tmp / "m.yml").write_text("matrix:\n  python: ['3.12']\n  six: ['1.16.0', '1.17.0']\n")
    matrix = load_matrix(tmp / "m.yml")
    pipeline.run_cell, pipeline.wait, pipeline.pythons.discover = run_cell, wait, list
    options = pipeline.RunOptions(tmp / "m.yml", tmp / "r", tmp / "envs", jobs=2)
    try:
        pipeline.run_pipeline(matrix, expand(matrix), options)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
