"""One run at a time per report folder and per environment folder.

Two runs on one environment folder race (`uv venv --clear` of one empties what the other
installs: "failed to remove directory ...: Directory not empty"), and two runs on one report
folder overwrite each other's report. So a run holds a lock on each folder, and a second run
waits for the first, saying once whose turn it is. The lock is `flock`: the kernel releases it
when its process ends, however it ends, so a killed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from compat_matrix.build.backends import RUN_FOLDER_MARK

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["LOCK_NAME", "run_lock"]

#: The lock file in a locked folder; it names the run holding it (for the waiting one). It also
#: marks the folder as a run's output, never a project's sources (build/backends.py).
LOCK_NAME = RUN_FOLDER_MARK


def _open(path: Path) -> int:
    """The lock file, created if need be; read-only where the folder is (flock works there too)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return os.open(path, os.O_RDONLY)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f" ({text})" if text else ""


def _claim(fd: int, what: str) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {what}\n".encode(), 0)
    except OSError:
        pass  # a read-only folder: the lock holds, only its note is missing


@contextmanager
def run_lock(folder: Path, what: str, *, stream: TextIO | None = None) -> Iterator[None]:
    """Hold `folder` for this run (`what` names it); wait, with a message, while another has it.

    A folder that cannot be created or opened is not locked: the cells that need it fail one
    by one with the reason, which says more than a lock error would.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = _open(folder / LOCK_NAME)
    except OSError:
        fd = -1
    try:
        if fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(
                    f"compat-matrix: waiting for the other run{_holder(fd)} that is using "
                    f"{folder} to finish (one run at a time per folder)",
                    file=stream or sys.stderr,
                    flush=True,
                )
                fcntl.flock(fd, fcntl.LOCK_EX)
            _claim(fd, what)
        yield
    finally:
        if fd >= 0:
            os.close(fd)
