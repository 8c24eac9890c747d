"""A second CPU for a big report: one forked helper that shares this process's memory.

Reading 10,000 cell files and rendering four reports of them takes seconds of one CPU; a fork
costs milliseconds and shares what was read without copying or sending it. Only where that
is safe and pays: Linux (fork without exec is what it is made for), a second CPU this
process may use (`usable_cpus`: its affinity and its CPU quota), enough cells, and no other
thread (a run's cell workers: a fork copies their locks as they are, held or not).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from compat_matrix.cpus import usable_cpus

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["PARALLEL_MIN_CELLS", "Forked", "fork_pays"]

#: Reports of fewer cells are read and rendered in one process: a helper would not pay.
PARALLEL_MIN_CELLS = 2000


def fork_pays(cells: int) -> bool:
    """Whether a report of `cells` cells gets a forked helper (see the module's docstring)."""
    if cells < PARALLEL_MIN_CELLS or not sys.platform.startswith("linux"):
        return False
    return usable_cpus() > 1 and threading.active_count() == 1


class Forked:
    """A forked helper running `work`; it leaves with `os._exit` (0: `work` returned), so no
    buffered output, exit handler or `finally` of this process runs twice."""

    def __init__(self, work: Callable[[], None]) -> None:
        pid = os.fork()
        if pid == 0:  # the helper
            status = 1
            try:
                work()
                status = 0
            finally:
                os._exit(status)
        self.pid = pid

    def finished(self) -> bool:
        """Wait for the helper: True when `work` returned."""
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        return os.waitstatus_to_exitcode(status) == 0

    def stop(self) -> None:
        """End the helper if it still runs (this process failed or was interrupted)."""
        if self.pid:
            with contextlib.suppress(OSError):  # it is a zombie at worst
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = 0
