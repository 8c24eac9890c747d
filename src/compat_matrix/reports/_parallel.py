"""A second CPU for a big report: one forked helper that shares this process's memory.

Reading 10,000 cell files and rendering four reports of them takes seconds of one CPU; a fork
costs milliseconds and shares what was read without copying or sending it. Only where that
is safe and pays: Linux (fork without exec is what it is made for), a second CPU this
process may use (`usable_cpus`: its affinity and its CPU quota), enough cells, and no other
thread (a run's cell workers: a fork copies their locks as they are, held or not).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from compat_matrix.cpus import usable_cpus

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["PARALLEL_MIN_CELLS", "Forked", "can_fork", "fork_pays"]

#: Reports of fewer cells are read and rendered in one process: a helper would not pay.
PARALLEL_MIN_CELLS = 2000


def fork_pays(cells: int) -> bool:
    """Whether a report of `cells` cells gets a forked helper (see the module's docstring)."""
    return cells >= PARALLEL_MIN_CELLS and can_fork()


def can_fork() -> bool:
    """Whether a forked helper is safe and has a CPU of its own (see the module's docstring)."""
    if not sys.platform.startswith("linux"):
        return False
    return usable_cpus() > 1 and threading.active_count() == 1


class Forked:
    """A forked helper running `work`; it leaves with `os._exit` (0: `work` returned), so no
    buffered output, exit handler or `finally` of this process runs twice.

    It tells through a pipe when `work` ended (`finished`), then waits to be let go
    (`release`) before it exits: its exit (tearing down a copy of a big process) and freeing
    what it holds open (the report files this process replaces, `hold`) then take their tens
    of milliseconds after this process has gone on, not while it waits. A released helper is
    reaped later: when the next one starts, else at exit (`_reap`)."""

    def __init__(self, work: Callable[[], None], *, hold: Sequence[int] = ()) -> None:
        ended_r, ended_w = os.pipe()
        go_r, go_w = os.pipe()
        try:
            _reap(block=False)
            pid = os.fork()
        except BaseException:
            for fd in (ended_r, ended_w, go_r, go_w):
                os.close(fd)
            raise
        if pid == 0:  # the helper: `hold` stays open until it exits; nothing leaves this block
            status = 1
            try:
                for fd in (*_ends, ended_r, go_w):  # another helper's ends are not its to keep
                    os.close(fd)
                _ends.clear()
                work()
                status = 0
            finally:
                with contextlib.suppress(BaseException):
                    _let_go_of_output()
                    os.write(ended_w, bytes([status]))
                    os.read(go_r, 1)  # until let go (or this process is gone)
                os._exit(status)
        os.close(ended_w)
        os.close(go_r)
        for fd in hold:
            os.close(fd)
        _ends.update((ended_r, go_w))
        self.pid = pid
        self._ended: int | None = ended_r
        self._go: int | None = go_w

    def finished(self) -> bool:
        """Wait until `work` ended: True when it returned (False: it raised, or the helper
        was killed)."""
        if self._ended is None:
            return False
        try:
            told = os.read(self._ended, 1)
        finally:
            _close(self._ended)
            self._ended = None
        return told == b"\x00"

    def release(self) -> None:
        """Let the helper exit, without waiting for it (see the class's docstring)."""
        if self._go is not None:
            _close(self._go)
            self._go = None
            _released.append(self.pid)
            self.pid = 0

    def stop(self) -> None:
        """End the helper if it was not released (this process failed or was interrupted):
        killed, and waited for."""
        for fd in (self._ended, self._go):
            if fd is not None:
                _close(fd)
        self._ended = self._go = None
        if self.pid:
            with contextlib.suppress(OSError):  # it is a zombie at worst
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = 0


def _let_go_of_output() -> None:
    """Point the helper's standard streams at /dev/null: a pipe this process writes to (`|
    tail`, a captured run) must end when this process does, not when the helper exits."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


#: Helpers let go and not yet waited for.
_released: list[int] = []
#: This process's ends of its helpers' pipes.
_ends: set[int] = set()


def _close(fd: int) -> None:
    _ends.discard(fd)
    os.close(fd)


def _reap(*, block: bool = True) -> None:
    """Wait for the released helpers (`block`), or for those that have exited already."""
    for pid in list(_released):
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped by someone else (a SIGCHLD handler)
            done = pid
        if done:
            _released.remove(pid)


atexit.register(_reap)
