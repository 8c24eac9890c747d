"""The run's child processes and temporary folders, so that a run ends them however it ends.

Every installer and probe runs in a process group of its own (`spawn`), every temporary folder
is made by `temporary_folder`, and both are registered here. While a run is on (`guarded`),
a small reaper process (`_reaper.py`, stdlib only) hears of each through a pipe: when the run
dies, even by SIGKILL, the pipe closes and the reaper kills the groups and removes the
folders. On SIGINT or SIGTERM the run does it itself (`stop`), then publishes what it has.
A result already written is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import FrameType

__all__ = [
    "Stopped",
    "end_on_signals",
    "guarded",
    "interrupts_deferred",
    "kill_group",
    "spawn",
    "stop",
    "stopping",
    "temporary_folder",
]

_REAPER = Path(__file__).with_name("_reaper.py")
_lock = threading.Lock()
_groups: set[int] = set()
_folders: set[str] = set()
_state: dict[str, Any] = {"reaper": None, "depth": 0, "stopping": False}


class Stopped(BaseException):
    """The run is being stopped: no new child, no new result (not an `Exception`, so no cell
    turns it into an `error` verdict)."""


def _tell(line: str) -> None:
    """Send one line to the reaper (caller holds `_lock`); a reaper that is gone is ignored."""
    reaper: subprocess.Popen[bytes] | None = _state["reaper"]
    if reaper is None or reaper.stdin is None:
        return
    try:
        reaper.stdin.write(line.encode("ascii") + b"\n")
        reaper.stdin.flush()
    except (OSError, ValueError):
        pass


def _folder_line(sign: str, path: str) -> str:
    return f"{sign}d {os.fsencode(path).hex()}"


def stopping() -> bool:
    """Whether the run is being stopped (raise `Stopped` rather than start or write anything)."""
    return bool(_state["stopping"])


def kill_group(pid: int) -> None:
    """SIGKILL the process group `pid` leads (a child of `spawn`), and whatever it started."""
    with suppress(OSError):  # already gone
        os.killpg(pid, signal.SIGKILL)


@contextmanager
def spawn(argv: Sequence[str], **kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    """`subprocess.Popen(argv, **kwargs)` in a new process group, registered while it lives.

    On leaving, a child still running is killed with its group, so no path leaves one behind.
    """
    with _lock:
        if _state["stopping"]:
            raise Stopped
        proc: subprocess.Popen[Any] = subprocess.Popen(list(argv), start_new_session=True, **kwargs)
        _groups.add(proc.pid)
        _tell(f"+g {proc.pid}")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        with _lock:
            _groups.discard(proc.pid)
            _tell(f"-g {proc.pid}")


@contextmanager
def temporary_folder(prefix: str) -> Iterator[Path]:
    """`tempfile.mkdtemp(prefix=...)`, removed on leaving, and by the reaper if the run dies."""
    path = tempfile.mkdtemp(prefix=prefix)
    with _lock:
        _folders.add(path)
        _tell(_folder_line("+", path))
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with _lock:
            _folders.discard(path)
            _tell(_folder_line("-", path))


def stop() -> None:
    """Stop the run: no new children, and every running one killed with its group."""
    with _lock:
        _state["stopping"] = True
        groups = list(_groups)
    for pid in groups:
        kill_group(pid)


def _start_reaper() -> subprocess.Popen[bytes] | None:
    try:
        return subprocess.Popen(
            [sys.executable, "-I", str(_REAPER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C or a killpg of the run's group spares it
        )
    except OSError:
        return None  # no reaper: SIGINT/SIGTERM still clean up, only SIGKILL cannot


@contextmanager
def guarded() -> Iterator[None]:
    """While inside, a dying run takes its children and temporary folders along (nestable)."""
    with _lock:
        if _state["depth"] == 0:
            _state["stopping"] = False
            _state["reaper"] = _start_reaper()
            for pid in _groups:
                _tell(f"+g {pid}")
            for path in _folders:
                _tell(_folder_line("+", path))
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            reaper: subprocess.Popen[bytes] | None = _state["reaper"]
            if _state["depth"] == 0 and reaper is not None:
                _tell("exit")
                stdin: IO[bytes] | None = reaper.stdin
                if stdin is not None:
                    with suppress(OSError):
                        stdin.close()
                try:
                    reaper.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    reaper.kill()
                    reaper.wait()
                _state["reaper"] = None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def end_on_signals() -> None:
    """Make SIGTERM and SIGHUP end the run as Ctrl-C does (children killed, report published).

    Only from the main thread (where Python delivers signals); a no-op elsewhere.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) in (signal.SIG_DFL, None):
            signal.signal(signum, _interrupt)


@contextmanager
def interrupts_deferred() -> Iterator[Callable[[], bool]]:
    """While inside, SIGINT (and what `end_on_signals` made one) is only noted, as the yielded
    `interrupted()` tells; the caller raises `KeyboardInterrupt` where it holds no lock.

    Raised by the handler, a KeyboardInterrupt lands between any two calls of the main thread:
    inside `concurrent.futures.wait`, which takes the futures' locks in pure Python, it can
    leave one held, and a cell's worker ending its future then waits for it forever (so does
    the run, in `pool.shutdown`). This handler takes no lock and raises nothing. A signal still
    unread is raised on leaving. Only from the main thread (a no-op elsewhere).
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    signalled: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        signalled.append(signum)

    interrupting = (signal.default_int_handler, _interrupt)  # an ignored signal stays ignored
    previous: dict[int, Any] = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) in interrupting:
            previous[signum] = signal.signal(signum, note)
    try:
        yield lambda: bool(signalled)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if signalled:
        raise KeyboardInterrupt
