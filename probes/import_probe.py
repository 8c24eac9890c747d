"""Import each target module in a fresh interpreter and say why an import breaks.

Usage::

    <env python> import_probe.py [--timeout SECONDS] [--jobs N] [--path DIR ...] MODULE [MODULE ...]

Every target is imported by its own child process of this interpreter (``sys.executable``),
so a segfault, an ``abort()`` or a hang in one import cannot hide the others, and one import
cannot mask another's failure by loading a shared library first. Children run a few at a
time, each in a new process group that is killed whole at the deadline (and, on Linux, when
the probe itself is killed). Children run with faulthandler on, so a crash or a hang leaves
its Python stack in ``details``.

The child keeps the environment's normal ``sys.path`` (site-packages included) but drops the
cwd entry and runs in an empty directory, so nothing where the probe was started can shadow
a module. ``--path DIR`` (repeatable) prepends DIR to the child's ``sys.path`` and to the
distribution lookup: for auditing a tree that is not installed, and for tests.

Prints one JSON document (see ``_probelib.run_probe``); per target ``details`` has
``import_s``, ``version``, ``distribution``, ``distribution_version``, ``loaded`` (the real
paths of every shared object in the process after the import: what the verdict uses to tell
files the import loads from files it never touches) and, on failure,
``exception``, ``traceback_tail``, ``stderr_tail`` and what the category needs (symbol,
library, requester, ...). Exit status: 0 all passed, 1 some failed, 2 usage, 3 probe error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (5 ms a process)
if TYPE_CHECKING:
    from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import _probelib as lib  # noqa: E402

__all__ = ["PROBE", "REMOVED_STDLIB", "Context", "classify", "import_targets", "main"]

PROBE = "import"
DEFAULT_TIMEOUT = 180.0

#: The child: import one module, write a report file, exit (a file beside this one).
_CHILD = os.path.join(_HERE, "_import_child.py")

#: First release of a distribution whose wheels were built against NumPy 2 (release notes).
FIRST_NUMPY2_RELEASE = lib.FIRST_NUMPY2_RELEASE

#: Standard-library modules a Python release removed (What's New; PEP 594, PEP 632) ->
#: (that release, what to use instead). ``sys.stdlib_module_names`` no longer names them, so a
#: missing one would otherwise read as an undeclared dependency.
REMOVED_STDLIB: dict[str, tuple[tuple[int, int], str]] = {
    "formatter": ((3, 10), "drop it (no replacement)"),
    "parser": ((3, 10), "use ast"),
    "symbol": ((3, 10), "use ast"),
    "binhex": ((3, 11), "drop it (no replacement)"),
    "asynchat": ((3, 12), "use asyncio"),
    "asyncore": ((3, 12), "use asyncio"),
    "distutils": ((3, 12), "use setuptools or packaging (PEP 632)"),
    "imp": ((3, 12), "use importlib"),
    "smtpd": ((3, 12), "use aiosmtpd"),
    "aifc": ((3, 13), "use a maintained fork from PyPI, e.g. standard-aifc (PEP 594)"),
    "audioop": ((3, 13), "use a maintained fork from PyPI, e.g. audioop-lts (PEP 594)"),
    "cgi": ((3, 13), "use email.message or a fork such as legacy-cgi (PEP 594)"),
    "cgitb": ((3, 13), "use traceback or a fork such as legacy-cgi (PEP 594)"),
    "chunk": ((3, 13), "use a maintained fork from PyPI, e.g. standard-chunk (PEP 594)"),
    "crypt": ((3, 13), "use hashlib or passlib (PEP 594)"),
    "imghdr": ((3, 13), "use filetype or puremagic, or standard-imghdr (PEP 594)"),
    "lib2to3": ((3, 13), "use a parser such as parso or libcst"),
    "mailcap": ((3, 13), "use mimetypes (PEP 594)"),
    "msilib": ((3, 13), "drop it (no replacement, PEP 594)"),
    "nis": ((3, 13), "drop it (no replacement, PEP 594)"),
    "nntplib": ((3, 13), "use a fork from PyPI, e.g. standard-nntplib (PEP 594)"),
    "ossaudiodev": ((3, 13), "drop it (no replacement, PEP 594)"),
    "pipes": ((3, 13), "use subprocess and shlex.quote (PEP 594)"),
    "sndhdr": ((3, 13), "use filetype, or standard-sndhdr (PEP 594)"),
    "spwd": ((3, 13), "use python-pam (PEP 594)"),
    "sunau": ((3, 13), "use a fork from PyPI, e.g. standard-sunau (PEP 594)"),
    "telnetlib": ((3, 13), "use telnetlib3 or Exscript (PEP 594)"),
    "uu": ((3, 13), "use base64 (PEP 594)"),
    "xdrlib": ((3, 13), "use a fork from PyPI, e.g. standard-xdrlib (PEP 594)"),
}

#: NumPy C-API version -> first NumPy release that provides it (numpyconfig.h).
_NUMPY_C_API = {
    0xD: "1.16",
    0xE: "1.20",
    0xF: "1.22",
    0x10: "1.23",
    0x11: "1.25",
    0x12: "2.0",
    0x13: "2.1",
    0x14: "2.3",
}

#: libstdc++ symbol version -> first GCC release that provides it (libstdc++ manual, abi.html).
_GLIBCXX_GCC = {
    "GLIBCXX_3.4.21": "5.1",
    "GLIBCXX_3.4.22": "6.1",
    "GLIBCXX_3.4.23": "7.1",
    "GLIBCXX_3.4.24": "7.2",
    "GLIBCXX_3.4.25": "8.1",
    "GLIBCXX_3.4.26": "9.1",
    "GLIBCXX_3.4.27": "9.2",
    "GLIBCXX_3.4.28": "9.3",
    "GLIBCXX_3.4.29": "11.1",
    "GLIBCXX_3.4.30": "12.1",
    "GLIBCXX_3.4.31": "13.1",
    "GLIBCXX_3.4.32": "13.2",
    "GLIBCXX_3.4.33": "14.1",
    "GLIBCXX_3.4.34": "15.1",
}

_SYMBOL_VERSION_RE = re.compile(
    r"(?P<lib>[^\s:'\"]+): version [`'](?P<node>[^'`]+)' not found \(required by (?P<req>[^)]+)\)"
)
_UNDEFINED_RE = re.compile(
    r"(?P<file>[^\s:'\"]+): undefined symbol: (?P<symbol>[^\s,]+)(?:, version (?P<ver>\S+))?"
)
_MISSING_LIB_RE = re.compile(
    r"(?P<lib>[^\s:'\"]+): cannot open shared object file: No such file or directory"
)
_PYINIT_RE = re.compile(
    r"dynamic module does not define module export function \((?P<func>[^)]+)\)"
)
_DTYPE_SIZE_RE = re.compile(
    r"numpy\.(?P<type>\w+) size changed, may indicate binary incompatibility\. "
    r"Expected (?P<header>\d+) from C header, got (?P<runtime>\d+) from PyObject"
)
_NUMPY_ABI_RE = re.compile(
    r"module compiled against ABI version (?P<built>0x[0-9a-fA-F]+) "
    r"but this version of numpy is (?P<running>0x[0-9a-fA-F]+)"
)
_NUMPY_API_RE = re.compile(
    r"module (?:was )?compiled against (?:NumPy C-)?API version (?P<built>0x[0-9a-fA-F]+)"
    r"(?: \(NumPy (?P<needs>[\d.]+)\))? but (?:this version of numpy is|the running NumPy has "
    r"C-API version) (?P<running>0x[0-9a-fA-F]+)"
)
_CYTHON_INIT_RE = re.compile(r"\bin init (?P<module>[A-Za-z_][\w.]*)")
_FILE_RE = re.compile(r'File "(?P<file>[^"]+)", line \d+')
_TAG_RE = re.compile(r"^[^.]+\.(?P<tag>[^.]+)\.(?:so|pyd)$")


class Context:
    """What classification needs to know about the environment beyond one child's report."""

    def __init__(self, index: lib.DistributionIndex | None, python: dict[str, Any]) -> None:
        self.index = index
        self.python = python

    def numpy_version(self, report: dict[str, Any]) -> str:
        found = report.get("numpy_version")
        if isinstance(found, str) and found:
            return found
        if self.index is not None and self.index.get("numpy") is not None:
            return self.index.display("numpy")[1]
        return ""

    def owner(self, path: str | None = None, module: str | None = None) -> str | None:
        """Canonical name of the distribution owning a file (preferred) or a module."""
        if self.index is None:
            return None
        if path:
            found = self.index.owner_of_file(path)
            if found:
                return found
        if module:
            return self.index.owner_of_module(module)
        return None

    def describe(self, key: str | None) -> str:
        """``pandas 2.0.3`` for a canonical name; ``""`` when unknown."""
        if not key:
            return ""
        if self.index is None:
            return key
        name, version = self.index.display(key)
        return ("%s %s" % (name, version)).strip()

    def prefix(self) -> str:
        return os.path.realpath(sys.prefix)


# -- running children ------------------------------------------------------------------------


def _wait(
    proc: subprocess.Popen[bytes], timeout: float, events: int = -1, on_line: Any = None
) -> int:
    """``proc.wait(timeout)`` that returns as the child exits, and hands each line the child
    writes on ``events`` to ``on_line`` as it comes. Popen.wait with a timeout polls, sleeping
    up to 50 ms between looks, on every import's path; Linux (Python 3.9+) has a file
    descriptor that becomes readable when the process ends. Elsewhere, Popen.wait, and the
    lines after the child ends."""
    pidfd_open = getattr(os, "pidfd_open", None)
    fd = -1
    pending = b""  # a line the child has not finished writing yet
    if pidfd_open is not None:
        try:
            fd = pidfd_open(proc.pid)
        except OSError:  # an old kernel, or the child is gone already
            fd = -1
    if fd >= 0:
        try:
            import select

            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if events >= 0:
                poller.register(events, select.POLLIN)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                ready = poller.poll(max(0, int(left * 1000))) if left > 0 else []
                if not ready:
                    raise subprocess.TimeoutExpired(proc.args, timeout)
                if any(ready_fd == fd for ready_fd, _ in ready):
                    break
                chunk = os.read(events, 4096)
                if not chunk:  # the child closed it: only its end is left to wait for
                    poller.unregister(events)
                pending = _lines(pending + chunk, on_line)
        finally:
            os.close(fd)
    returncode = proc.wait(timeout=timeout)
    if events >= 0:
        _lines(pending + _drain(events), on_line)
    return returncode


def _drain(fd: int) -> bytes:
    """What is left to read on the pipe now (a process the import forked may hold it open)."""
    os.set_blocking(fd, False)
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def _lines(data: bytes, on_line: Any) -> bytes:
    """Hand each whole line of ``data`` to ``on_line``; return the unfinished rest."""
    *lines, rest = data.split(b"\n")
    for line in lines:
        on_line(line.decode("utf-8", "replace"))
    return rest


def _run_child(
    target: str,
    number: int,
    workdir: str,
    timeout: float,
    paths: list[str],
    *,
    observe: list[str] | None = None,
    on_event: Any = None,
) -> dict[str, Any]:
    """Import ``target`` in a child process; the raw outcome, not yet classified. The child
    also watches for the imports of ``observe`` (see ``_import_child._Observer``) and reports
    ``on_event(kind, name)`` when it cannot observe one or it failed."""
    stem = os.path.join(workdir, "t%d" % number)
    out_path, trace_path = stem + ".json", stem + ".imports"
    dump_after = max(timeout - max(0.5, timeout * 0.1), timeout * 0.5)
    argv = [sys.executable, _CHILD, target, out_path, trace_path, repr(dump_after)]
    argv += [json.dumps(paths), str(os.getpid())]
    events = write = -1
    if observe:
        events, write = os.pipe()
        argv += [str(write), json.dumps(observe)]
    outcome: dict[str, Any] = {"target": target, "timeout": timeout, "timed_out": False}
    start = time.perf_counter()

    def on_line(line: str) -> None:
        kind, _, name = line.partition(" ")
        if on_event is not None and name in (observe or ()):
            on_event(kind, name)

    with open(stem + ".out", "wb") as out, open(stem + ".err", "wb") as err:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=os.path.join(workdir, "cwd"),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=hasattr(os, "setsid"),
                pass_fds=(write,) if write >= 0 else (),
            )
        except OSError as exc:
            outcome["spawn_error"] = "%s: %s" % (type(exc).__name__, exc)
            outcome["duration_s"] = time.perf_counter() - start
            for fd in (events, write):
                if fd >= 0:
                    os.close(fd)
            return outcome
        if write >= 0:
            os.close(write)  # the child holds the only writer: its end closes the pipe
        try:
            outcome["returncode"] = _wait(proc, timeout, events, on_line)
        except subprocess.TimeoutExpired:
            outcome["timed_out"] = True
            lib.kill_group(proc)
            try:
                outcome["returncode"] = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:  # unkillable (stuck in the kernel): give up on it
                outcome["returncode"] = None
        else:
            lib.kill_group(proc)  # whatever the import left running in its group
        finally:
            if events >= 0:
                os.close(events)
    outcome["duration_s"] = time.perf_counter() - start
    text = lib.read_tail(out_path, 10_000_000)
    if text:
        try:
            outcome["report"] = json.loads(text)
        except ValueError as exc:
            outcome["report_error"] = str(exc)
    outcome["stderr"] = lib.read_tail(stem + ".err", 20000)
    outcome["stdout"] = lib.read_tail(stem + ".out", 4000)
    imports: list[str] = []
    for name in lib.read_tail(trace_path, 4000).splitlines():
        if not imports or imports[-1] != name:
            imports.append(name)
    outcome["imports_tail"] = imports[-5:]
    return outcome


def import_targets(
    targets: list[str],
    timeout: float,
    jobs: int,
    paths: list[str],
    observers: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Run one child per target, ``jobs`` at a time; outcomes in target order.

    ``observers`` maps a target (numpy) to targets whose import may import it first thing
    (pandas, which requires it; see ``watched``). Such a target waits: when one of them imports
    it as a fresh process would and then passes cleanly, that observation is its outcome
    (``observed_in``), and it is not imported again; when none can (its import began after
    something else of the environment had run, it failed, the importer failed or left
    anything on stderr), it gets its own child, started as soon as that is known. None waits
    longer than ``_patience(timeout)``: an importer that hangs does not hold it back."""
    waiting = {m: set(d) for m, d in watched(targets, observers or {}).items()}
    release_all_at = time.monotonic() + _patience(timeout)
    numbers = {target: number for number, target in enumerate(targets)}
    outcomes: list[dict[str, Any]] = [{} for _ in targets]
    pending = [target for target in targets if target not in waiting]
    failed: list[BaseException] = []
    running = [0]
    cond = threading.Condition()

    def release(name: str, watcher: str) -> None:
        """``watcher`` will not observe ``name`` (called with ``cond`` held)."""
        if name in waiting:
            waiting[name].discard(watcher)
            if not waiting[name]:
                del waiting[name]
                pending.insert(0, name)  # every watcher had its turn: it goes next
                cond.notify_all()

    def watching(target: str) -> list[str]:
        """The targets still waiting for ``target`` to observe them (``cond`` held)."""
        return [name for name, watchers in waiting.items() if target in watchers]

    def finished(target: str, outcome: dict[str, Any]) -> None:
        """``target`` is done (called with ``cond`` held): settle what it watched."""
        outcomes[numbers[target]] = outcome
        lib.import_ended(target)
        for name in watching(target):
            seen = _observed(outcome, name)
            if seen is not None:
                del waiting[name]
                finished(name, seen)
            else:
                release(name, target)

    workdir = tempfile.mkdtemp(prefix="compat-import-")
    try:
        os.mkdir(os.path.join(workdir, "cwd"))
        # Plain threads: concurrent.futures costs 10 ms of imports in every probe process.

        def work() -> None:
            while True:
                with cond:
                    while not pending and waiting and not failed:
                        left = release_all_at - time.monotonic()
                        if not running[0] or left <= 0:  # waited enough (or nobody left)
                            pending.extend(waiting)
                            waiting.clear()
                            break
                        cond.wait(left)
                    if not pending or failed:
                        return
                    target = pending.pop(0)
                    watch = watching(target)
                    running[0] += 1

                def on_event(kind: str, name: str, target: str = target) -> None:
                    with cond:
                        release(name, target)

                try:
                    outcome = _run_child(
                        target,
                        numbers[target],
                        workdir,
                        timeout,
                        paths,
                        observe=watch,
                        on_event=on_event,
                    )
                except BaseException as exc:  # noqa: BLE001 - raised again below
                    with cond:
                        failed.append(exc)
                        running[0] -= 1
                        cond.notify_all()
                    return
                with cond:
                    finished(target, outcome)
                    running[0] -= 1
                    cond.notify_all()

        workers = [threading.Thread(target=work) for _ in range(min(max(1, jobs), len(targets)))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if failed:
            raise failed[0]
        return outcomes
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _patience(timeout: float) -> float:
    """How long a target waits to be observed before it is imported alone anyway."""
    return min(30.0, timeout / 4)


def watched(targets: list[str], observers: dict[str, list[str]]) -> dict[str, list[str]]:
    """Which targets wait to be observed, and by which: a top-level target with an observer
    among the targets that do not wait themselves, decided in target order (a dependency
    cycle, a requiring b requiring a, then has one side import alone: nothing waits forever)."""
    waits: dict[str, list[str]] = {}
    for name in targets:
        if "." in name:
            continue
        found = [
            d for d in observers.get(name, []) if d in targets and d != name and d not in waits
        ]
        if found:
            waits[name] = found
    return waits


def _observed(outcome: dict[str, Any], name: str) -> dict[str, Any] | None:
    """``name``'s outcome as observed inside ``outcome``'s import, when that import passed
    cleanly (it imported, the process exited 0, nothing on stderr)."""
    report = outcome.get("report") or {}
    seen = (report.get("observed") or {}).get(name)
    clean = report.get("ok") and outcome.get("returncode") == 0 and not outcome.get("timed_out")
    if not (clean and isinstance(seen, dict) and seen.get("ok")) or outcome.get("stderr"):
        return None
    return {
        "target": name,
        "timeout": outcome.get("timeout"),
        "timed_out": False,
        "returncode": 0,
        "duration_s": float(seen.get("import_s") or 0),
        "report": seen,
        "stderr": "",
        "stdout": "",
        "imports_tail": [],
        "observed_in": outcome["target"],
    }


def import_observers(targets: list[str], index: lib.DistributionIndex) -> dict[str, list[str]]:
    """For each target, the other targets whose distribution requires its distribution
    (``Requires-Dist`` outside extras): those may import it first thing."""
    owners = {target: index.owner_of_module(target) for target in targets}
    needs = {target: index.required(key) if key else set() for target, key in owners.items()}
    found: dict[str, list[str]] = {}
    for name, key in owners.items():
        if key:
            found[name] = [d for d in targets if owners[d] != key and key in needs[d]]
    return found


# -- classification --------------------------------------------------------------------------


def _exception_text(report: dict[str, Any]) -> str:
    chain = report.get("exception") or []
    return "\n".join("%s: %s" % (item.get("type"), item.get("message")) for item in chain)


def _first_exception(report: dict[str, Any]) -> dict[str, Any]:
    chain = report.get("exception") or [{}]
    first: dict[str, Any] = chain[0]
    return first


def _short(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _interpreter(tag: str) -> str:
    """``cpython-39`` -> ``CPython 3.9``; ``cpython-313t`` -> ``CPython 3.13 (free-threaded)``."""
    match = re.match(r"cpython-(\d)(\d+)([a-z]*)", tag)
    if match:
        flags = match.group(3)
        extra = " (free-threaded)" if "t" in flags else (" (debug)" if "d" in flags else "")
        return "CPython %s.%s%s" % (match.group(1), match.group(2), extra)
    match = re.match(r"cp(\d)(\d+)", tag)
    if match:
        return "CPython %s.%s" % (match.group(1), match.group(2))
    if tag == "abi3":
        return "the stable ABI (abi3)"
    if tag.startswith("pypy"):
        return "PyPy (%s)" % tag
    return tag


def _running(ctx: Context) -> str:
    version = str(ctx.python.get("version", ""))
    short = ".".join(version.split(".")[:2])
    threaded = " (free-threaded)" if ctx.python.get("free_threaded") else ""
    return "CPython %s%s (%s)" % (short, threaded, ctx.python.get("abi", ""))


def _numpy_major(version: str) -> int | None:
    match = re.match(r"(\d+)", version or "")
    return int(match.group(1)) if match else None


def _failing_dist(report: dict[str, Any], text: str, ctx: Context, target: str) -> str | None:
    """The distribution whose extension failed: Cython init name, ImportError.path, frames."""
    skip = {"numpy"} if target.split(".", maxsplit=1)[0] != "numpy" else set()
    candidates: list[tuple[str | None, str | None]] = []
    for match in _CYTHON_INIT_RE.finditer(text):
        candidates.append((None, match.group("module")))
    chain = report.get("exception") or []
    for item in chain:
        if item.get("path"):
            candidates.append((item["path"], None))
    for item in chain:
        for path in reversed(item.get("files") or []):
            candidates.append((path, None))
    for match in reversed(list(_FILE_RE.finditer(text))):
        candidates.append((match.group("file"), None))
    for path, module in candidates:
        if path and (path.startswith("<") or not os.path.isabs(path) or path == _CHILD):
            continue
        key = ctx.owner(path=path, module=module)
        if key and key not in skip:
            return key
    return ctx.owner(module=target)


def _classify_numpy(
    target: str, report: dict[str, Any], text: str, ctx: Context, numpy: str
) -> dict[str, Any] | None:
    """abi-numpy: the extension and the installed NumPy were not built for each other."""
    built: str | None = None  # "1" / "2" / None (unknown), or a minimum version for C-API
    needs: str | None = None
    evidence = ""
    major = _numpy_major(numpy)
    size = _DTYPE_SIZE_RE.search(text)
    abi = _NUMPY_ABI_RE.search(text)
    api = _NUMPY_API_RE.search(text)
    if "compiled using NumPy 1.x cannot be run in" in text or "_ARRAY_API not found" in text:
        built, evidence = "1", "compiled using NumPy 1.x / _ARRAY_API not found"
    elif "module compiled against NumPy 2.0 but running on NumPy 1.x" in text:
        built, evidence = "2", "compiled against NumPy 2.0, running on NumPy 1.x"
    elif abi:
        built = str(int(abi.group("built"), 16) >> 24)
        evidence = "ABI version %s, running %s" % (abi.group("built"), abi.group("running"))
    elif api:
        code = int(api.group("built"), 16)
        needs = api.group("needs") or _NUMPY_C_API.get(code) or api.group("built")
        evidence = "C-API version %s, running %s" % (api.group("built"), api.group("running"))
    elif size:
        header, runtime = int(size.group("header")), int(size.group("runtime"))
        evidence = "numpy.%s size %d in the C header, %d at runtime" % (
            size.group("type"),
            header,
            runtime,
        )
        if size.group("type") == "dtype" and major is not None:
            built = "1" if major >= 2 else "2"
        elif size.group("type") == "dtype":
            built = "1" if header > runtime else "2"
    elif "numpy.core.multiarray failed to import" in text and major is not None and major >= 2:
        built, evidence = "1", "numpy.core.multiarray failed to import (NumPy 1.x headers)"
    elif "numpy._core.multiarray failed to import" in text and major is not None and major < 2:
        built, evidence = "2", "numpy._core.multiarray failed to import (NumPy 2.x headers)"
    elif "multiarray failed to import" in text and numpy:
        evidence = "multiarray failed to import"
    else:
        return None
    key = _failing_dist(report, text, ctx, target)
    who = ctx.describe(key) or target
    name = (ctx.index.display(key)[0] if ctx.index is not None and key else "") or target
    installed = "NumPy %s" % numpy if numpy else "the installed NumPy"
    fix: dict[str, Any] | None = None
    if built == "1" and (major is None or major >= 2):
        first = FIRST_NUMPY2_RELEASE.get(key or "")
        upgrade = " (%s>=%s)" % (name, first) if first else ""
        hint = (
            "%s was built against NumPy 1.x but %s is installed: pin numpy<2, or upgrade %s "
            "to a release built for NumPy 2%s" % (who, installed, name, upgrade)
        )
        fix = _fix(["numpy<2"], "pin numpy<2: %s was built against NumPy 1.x" % who)
        if first:
            fix["alternatives"] = [
                _fix(["%s>=%s" % (name, first)], "upgrade %s to a NumPy 2 build" % name)
            ]
    elif built == "2" and (major is None or major < 2):
        hint = (
            "%s was built against NumPy 2.x but %s is installed: upgrade numpy>=2, or install "
            "an older %s release built against NumPy 1.x" % (who, installed, name)
        )
        fix = _fix(["numpy>=2"], "upgrade numpy: %s was built against NumPy 2" % who)
    elif needs:
        hint = (
            "%s needs the C-API of NumPy >= %s but %s is installed: upgrade numpy>=%s, or "
            "install an older %s built for this NumPy" % (who, needs, installed, needs, name)
        )
        fix = _fix(["numpy>=%s" % needs], "upgrade numpy: %s needs its C-API" % who)
    else:
        hint = (
            "%s is not binary-compatible with %s: install %s and numpy versions built for "
            "each other (a %s wheel built against this NumPy)" % (who, installed, name, name)
        )
    details: dict[str, Any] = {"numpy_version": numpy, "evidence": evidence}
    if key:
        details["failing_distribution"] = key
    if built:
        details["built_against_numpy"] = built + ".x"
    if fix is not None:
        details["fix"] = fix
    return {"category": "abi-numpy", "hint": hint, "details": details}


def _fix(requirements: list[str], summary: str) -> dict[str, Any]:
    """A requirement change a hint proposes, machine-readable so it can be checked first."""
    return {"requirements": requirements, "summary": summary}


_SYSTEM_LIB_DIRS = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/usr/local/lib/")


def _origin(path: str, ctx: Context) -> str:
    """Where a loaded library came from: a wheel, the environment, the OS, or elsewhere."""
    real = os.path.realpath(path)
    key = ctx.owner(path=real)
    if key:
        return "the copy bundled with %s (%s)" % (ctx.describe(key), real)
    if real.startswith(ctx.prefix() + os.sep):
        return "the environment's own copy (%s)" % real
    if real.startswith(_SYSTEM_LIB_DIRS):
        return "the system's copy (%s)" % real
    return "the copy at %s" % real


def _host_glibc() -> str:
    try:
        found = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return ""
    return (found or "").replace("glibc ", "")


def _missing_library_hint(library: str, requester: str) -> str:
    base = os.path.basename(library)
    match = re.match(r"lib(cudart|cublas|cublasLt|nvrtc)\.so\.(\d+)", base)
    if match:
        package = {
            "cudart": "nvidia-cuda-runtime",
            "cublas": "nvidia-cublas",
            "cublasLt": "nvidia-cublas",
            "nvrtc": "nvidia-cuda-nvrtc",
        }[match.group(1)]
        return (
            "%s (CUDA %s) is not installed or not on the loader's path: install %s-cu%s (pip) "
            "or the CUDA %s toolkit, or use a CPU build of %s"
            % (base, match.group(2), package, match.group(2), match.group(2), requester)
        )
    if base.startswith(("libcudnn", "libnccl", "libcufft", "libcurand", "libcusparse")) or (
        base.startswith(("libcusolver", "libnvJitLink", "libcupti"))
    ):
        return (
            "the NVIDIA library %s is not installed or not on the loader's path: install the "
            "matching nvidia-*-cuXX wheel for your CUDA version, or use a CPU build of %s"
            % (base, requester)
        )
    if base.startswith("libcuda.so"):
        return (
            "%s comes with the NVIDIA driver, not with pip: %s needs a machine with the NVIDIA "
            "driver installed, or use a CPU build" % (base, requester)
        )
    if base.startswith("libpython"):
        return (
            "%s was linked against a shared %s that this interpreter does not provide: it was "
            "built for another Python installation; rebuild it for this interpreter"
            % (requester, base)
        )
    system = {
        "libgomp": "libgomp1 (Debian/Ubuntu), libgomp (RHEL) or conda-forge libgomp",
        "libGL": "libgl1 (Debian/Ubuntu) or mesa-libGL (RHEL), or use a headless build "
        "(e.g. opencv-python-headless)",
        "libglib-2.0": "libglib2.0-0 (Debian/Ubuntu) or glib2 (RHEL)",
        "libgfortran": "libgfortran5 (Debian/Ubuntu) or conda-forge libgfortran",
        "libstdc++": "libstdc++6 (Debian/Ubuntu) or conda-forge libstdcxx-ng",
        "libz": "zlib1g (Debian/Ubuntu) or zlib (RHEL)",
    }
    for prefix, package in system.items():
        if base.startswith(prefix + ".so"):
            return "install %s: %s needs %s" % (package, requester, base)
    return (
        "%s needs %s, which is not installed or not on the loader's search path (the module's "
        "RUNPATH/RPATH, LD_LIBRARY_PATH, /etc/ld.so.cache): install the package that provides "
        "it, or reinstall %s from a wheel that bundles it" % (requester, base, requester)
    )


def _classify_exception(
    target: str, report: dict[str, Any], ctx: Context, stderr: str
) -> dict[str, Any]:
    first = _first_exception(report)
    text = _exception_text(report)
    traceback_text = str(report.get("traceback") or "")
    message = _short("%s: %s" % (first.get("type"), first.get("message")))
    base: dict[str, Any] = {"message": message}

    # NumPy's import_array() prints the real cause (a loader error when NumPy itself cannot
    # load) and raises a generic "multiarray failed to import": look at stderr then.
    loader_text = text
    if "multiarray failed to import" in text:
        loader_text = text + "\n" + stderr
    match = _SYMBOL_VERSION_RE.search(loader_text)
    if match:
        library, node, requester = match.group("lib"), match.group("node"), match.group("req")
        req_key = ctx.owner(path=requester) or ctx.owner(module=target)
        who = ctx.describe(req_key) or target
        details: dict[str, Any] = {
            "library": library,
            "version_node": node,
            "required_by": requester,
        }
        if node.startswith(("GLIBCXX_", "CXXABI_")):
            gcc = _GLIBCXX_GCC.get(node)
            built = " (built with GCC >= %s)" % gcc if gcc else ""
            hint = (
                "%s%s needs %s from libstdc++, but the libstdc++ loaded is older: %s. In a "
                "conda environment install a newer libstdcxx-ng (conda-forge), otherwise use a "
                "newer OS image or a %s wheel built with an older toolchain; if another "
                "module loaded an old libstdc++ first, import order matters"
                % (who, built, node, _origin(library, ctx), who)
            )
        elif node.startswith("GLIBC_"):
            host = _host_glibc()
            details["host_glibc"] = host
            hint = (
                "%s needs glibc >= %s but this system has glibc %s: install a wheel whose "
                "manylinux tag is at most manylinux_%s, or run on a newer OS"
                % (
                    who,
                    node[len("GLIBC_") :],
                    host or "(unknown)",
                    (host or "2_17").replace(".", "_"),
                )
            )
        else:
            soname = os.path.basename(library)
            hint = (
                "%s (%s) needs version %s of %s, which the loaded library does not define: "
                "it was built against a newer or different %s than %s; install the %s that "
                "%s was built for, or rebuild %s against this one"
                % (
                    who,
                    os.path.basename(requester),
                    node,
                    soname,
                    soname,
                    _origin(library, ctx),
                    soname,
                    who,
                    who,
                )
            )
        if req_key:
            details["requester_distribution"] = req_key
        base.update(category="symbol-version", hint=hint, details=details)
        return base

    match = _UNDEFINED_RE.search(loader_text)
    if match:
        path, symbol = match.group("file"), match.group("symbol")
        key = ctx.owner(path=path) or ctx.owner(module=target)
        who = ctx.describe(key) or target
        details = {"symbol": symbol, "file": path}
        if match.group("ver"):
            details["symbol_version"] = match.group("ver")
        if re.match(r"_?Py|_Py", symbol):
            details["symbol_origin"] = "python"
            hint = (
                "%s (%s) uses the Python C-API symbol %s, which %s does not export: it was built "
                "for a different Python version or build; reinstall %s for this interpreter"
                % (who, os.path.basename(path), symbol, _running(ctx), who)
            )
        elif re.match(r"_ZN?K?\d*(c10|at|torch|caffe2)", symbol):
            details["symbol_origin"] = "torch"
            hint = (
                "%s (%s) was built against a different torch than the one installed (%s missing): "
                "install the %s release built for this torch, or the torch it was built for"
                % (who, os.path.basename(path), symbol, who)
            )
        else:
            hint = (
                "%s (%s) references %s, which none of the loaded libraries export: it was built "
                "against a different version of the library that defines it; reinstall %s "
                "matching the installed versions of its dependencies"
                % (who, os.path.basename(path), symbol, who)
            )
        if key:
            details["distribution_of_file"] = key
        base.update(category="undefined-symbol", hint=hint, details=details)
        return base

    match = _MISSING_LIB_RE.search(loader_text)
    if match:
        library = match.group("lib")
        requester = next(
            (str(item["path"]) for item in report.get("exception") or [] if item.get("path")),
            "",
        )
        if not requester:
            frames = [
                f
                for item in report.get("exception") or []
                for f in item.get("files") or []
                if f and not f.startswith("<") and f != _CHILD and ctx.owner(path=f)
            ]
            requester = frames[-1] if frames else ""
        key = ctx.owner(path=requester) if requester else None
        key = key or ctx.owner(module=target)
        who = ctx.describe(key) or target
        details = {"library": library, "requested_by": requester}
        if key:
            details["requester_distribution"] = key
        hint = _missing_library_hint(library, who)
        if requester:
            hint += " (needed by %s or one of its dependencies)" % requester
        base.update(category="missing-library", hint=hint, details=details)
        return base

    match = _PYINIT_RE.search(text)
    if match:
        path = str(first.get("path") or "")
        key = ctx.owner(path=path) or ctx.owner(module=target)
        who = ctx.describe(key) or target
        details = {"init_function": match.group("func"), "file": path}
        tag = _TAG_RE.match(os.path.basename(path)) if path else None
        if tag:
            details["file_tag"] = tag.group("tag")
        hint = (
            "%s (%s) does not export %s: it was built for a different Python (this is %s) or "
            "renamed after it was built; reinstall %s for this interpreter"
            % (who, os.path.basename(path) or target, match.group("func"), _running(ctx), who)
        )
        base.update(category="abi-python", hint=hint, details=details)
        return base

    # NumPy prints its specific diagnosis ("compiled using NumPy 1.x", "_ARRAY_API not found")
    # to stderr and raises a generic "multiarray failed to import": read both.
    numpy = ctx.numpy_version(report)
    numpy_text = "\n".join((text, traceback_text, stderr))
    numpy_result = _classify_numpy(target, report, numpy_text, ctx, numpy)
    if numpy_result is not None:
        base.update(numpy_result)
        return base

    foreign = [str(p) for p in report.get("foreign_extensions") or []]
    if first.get("type") == "ModuleNotFoundError" and foreign:
        tags = []
        for path in foreign:
            tag = _TAG_RE.match(os.path.basename(path))
            tags.append(tag.group("tag") if tag else os.path.basename(path))
        built_for = ", ".join(sorted({_interpreter(t) for t in tags}))
        key = ctx.owner(path=foreign[0]) or ctx.owner(module=target)
        who = ctx.describe(key) or target
        base.update(
            category="abi-python",
            message=_short(
                "%s; found only %s, built for %s"
                % (message, ", ".join(os.path.basename(p) for p in foreign), built_for)
            ),
            hint=(
                "%s ships %s for %s, but this interpreter is %s and loads only %s: install the "
                "%s build for this Python (a cp%s wheel), or run it with the Python it was "
                "built for"
                % (
                    who,
                    os.path.basename(foreign[0]),
                    built_for,
                    _running(ctx),
                    ", ".join(_extension_suffixes()),
                    who,
                    "".join(str(ctx.python.get("version", "")).split(".")[:2]),
                )
            ),
            details={"foreign_extensions": foreign, "built_for": built_for},
        )
        return base

    missing = str(first.get("name") or "")
    details = {}
    if first.get("type") == "ModuleNotFoundError" and missing:
        details["missing_module"] = missing
        top = target.split(".", maxsplit=1)[0]
        if missing in (target, top) or target.startswith(missing + "."):
            hint = (
                "module %s is not installed: check the import: list or the distribution's "
                "top-level module (e.g. scikit-learn is imported as sklearn)" % missing
            )
        elif missing.startswith(top + "."):
            key = ctx.owner(module=target)
            who = ctx.describe(key) or top
            hint = "%s is incomplete (%s is missing): reinstall %s" % (who, missing, who)
        else:
            key = ctx.owner(module=target)
            who = ctx.describe(key) or target
            parent = missing.split(".", maxsplit=1)[0]
            provider = ctx.owner(module=parent) if parent != missing else None
            if provider:
                # The package is there, the submodule is not: another release of it has (or had)
                # it. The harness names the release that added it (run/hints.py).
                hint = (
                    "%s imports %s, which %s does not provide: %s needs another release of %s "
                    "(most often a newer one: raise its lower bound)"
                    % (who, missing, ctx.describe(provider), who, provider)
                )
            elif parent in REMOVED_STDLIB and sys.version_info[:2] >= REMOVED_STDLIB[parent][0]:
                removed, replacement = REMOVED_STDLIB[parent]
                details["removed_from_stdlib"] = "%d.%d" % removed
                hint = (
                    "%s imports %s, which Python %d.%d removed from the standard library: "
                    "%s; or keep %s below Python %d.%d (Requires-Python)"
                    % (who, parent, removed[0], removed[1], replacement, who, *removed)
                )
            else:
                hint = (
                    "%s imports %s, which is not installed: add the distribution that provides "
                    "%s (a dependency %s does not declare, or an optional extra)"
                    % (who, missing, parent, who)
                )
    else:
        key = _failing_dist(report, text + "\n" + traceback_text, ctx, target)
        who = ctx.describe(key) or target
        hint = (
            "importing %s raised %s in %s: see details.traceback_tail; usually a version of %s "
            "that does not support the installed dependencies or this Python"
            % (target, first.get("type"), who, who)
        )
    base.update(category="import-error", hint=hint, details=details)
    return base


def _extension_suffixes() -> list[str]:
    from importlib.machinery import EXTENSION_SUFFIXES

    return list(EXTENSION_SUFFIXES)


_SIGNAL_HINTS = {
    "SIGSEGV": "native code crashed during the import: usually two builds that do not fit "
    "together (an extension built against another version of a library it shares, e.g. "
    "numpy, torch or libstdc++)",
    "SIGILL": "the CPU lacks an instruction the binary uses (e.g. AVX, AVX2, AVX-512): install "
    "a build for this CPU's baseline",
    "SIGABRT": "native code aborted during the import (a failed assertion or an uncaught C++ "
    "exception); the message is in details.stderr_tail",
    "SIGBUS": "a bus error: a truncated or modified shared library or memory-mapped file",
    "SIGFPE": "an arithmetic fault in native code during the import",
    "SIGKILL": "killed from outside during the import (the out-of-memory killer?)",
}


def classify(outcome: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Turn one child's raw outcome into a result entry (status, category, message, hint)."""
    target = str(outcome["target"])
    report: dict[str, Any] = outcome.get("report") or {}
    stderr = str(outcome.get("stderr") or "")
    rc = outcome.get("returncode")
    details: dict[str, Any] = {"import_s": report.get("import_s")}
    if outcome.get("observed_in"):
        # imported first thing by that target's import, as a fresh process would import it
        details["observed_in"] = outcome["observed_in"]
    if report.get("warnings"):
        details["warnings"] = report["warnings"]
    if "gil_enabled" in report:
        details["gil_enabled"] = report["gil_enabled"]
    key = None
    if report.get("ok"):
        key = ctx.owner(path=str(report.get("file") or ""), module=target)
    else:
        key = ctx.owner(module=target)
    if key and ctx.index is not None:
        name, version = ctx.index.display(key)
        details["distribution"], details["distribution_version"] = name, version
    details["version"] = report.get("version") or details.get("distribution_version")
    who = ctx.describe(key) or target

    def result(status: str, category: str | None, message: str, hint: str) -> dict[str, Any]:
        return lib.make_result(
            PROBE,
            target,
            status,
            category=category,
            message=message,
            hint=hint,
            duration_s=float(outcome.get("duration_s") or 0),
            details=details,
        )

    if outcome.get("spawn_error"):
        return result(
            "error",
            "probe-error",
            str(outcome["spawn_error"]),
            "could not start %s" % sys.executable,
        )

    if outcome.get("timed_out"):
        timeout = float(outcome.get("timeout") or 0)
        details["stack_at_deadline"] = lib.tail(stderr, 40, 6000)
        details["imports_started_last"] = outcome.get("imports_tail") or []
        last = (outcome.get("imports_tail") or [""])[-1]
        where = " (last import started: %s)" % last if last else ""
        if report.get("ok"):
            message = "imported in %.2f s, but the interpreter did not exit within %g s" % (
                float(report.get("import_s") or 0),
                timeout,
            )
            hint = (
                "%s leaves a non-daemon thread or an atexit handler that blocks interpreter "
                "exit: scripts that import it never end" % who
            )
        else:
            message = "import of %s did not finish within %g s%s" % (target, timeout, where)
            hint = (
                "the import of %s blocked (a deadlock, a network call or a very slow first-time "
                "initialization): details.stack_at_deadline shows where; raise --timeout if it "
                "is only slow" % who
            )
        return result("fail", "timeout", message, hint)

    if isinstance(rc, int) and rc < 0:
        try:
            signame = signal.Signals(-rc).name
        except ValueError:
            signame = "signal %d" % -rc
        details["signal"] = signame
        details["stderr_tail"] = lib.tail(stderr, 40, 6000)
        last = (outcome.get("imports_tail") or [""])[-1]
        details["imports_started_last"] = outcome.get("imports_tail") or []
        if report.get("ok"):
            message = "%s imported, then the interpreter was killed by %s (signal %d) at exit" % (
                target,
                signame,
                -rc,
            )
        else:
            where = " (last import started: %s)" % last if last else ""
            message = "import of %s killed by %s (signal %d)%s" % (target, signame, -rc, where)
        hint = "%s: %s" % (
            who,
            _SIGNAL_HINTS.get(signame, "killed by %s during the import" % signame),
        )
        if signame == "SIGSEGV" and ctx.numpy_version(report):
            hint += "; NumPy %s is installed" % ctx.numpy_version(report)
        return result("fail", "crash", message, hint)

    if not report:
        details["stderr_tail"] = lib.tail(stderr, 40, 6000)
        details["returncode"] = rc
        if outcome.get("report_error"):
            return result(
                "error", "probe-error", "unreadable child report: %s" % outcome["report_error"], ""
            )
        return result(
            "fail",
            "import-error",
            "the interpreter exited with status %s while importing %s" % (rc, target),
            "%s ends the process during import (os._exit or a fatal error): see details.stderr_tail"
            % who,
        )

    if report.get("ok"):
        # Imported, but NumPy's "compiled using NumPy 1.x" banner or torch's "Failed to
        # initialize NumPy" warning means the module runs without its NumPy support.
        noise = stderr + "\n" + "\n".join(str(w) for w in report.get("warnings") or [])
        if any(m in noise for m in ("compiled using NumPy 1.x", "_ARRAY_API not found")):
            found = _classify_numpy(target, report, noise, ctx, ctx.numpy_version(report))
            if found is not None:
                details.update(found["details"])
                details["stderr_tail"] = lib.tail(stderr, 20, 3000)
                return result(
                    "fail",
                    "abi-numpy",
                    "%s imported, but its NumPy support failed to load (_ARRAY_API not found)"
                    % target,
                    str(found["hint"]),
                )
        if isinstance(rc, int) and rc > 0:
            details["stderr_tail"] = lib.tail(stderr, 20, 3000)
            return result(
                "fail",
                "import-error",
                "%s imported, but the interpreter exited with status %d" % (target, rc),
                "%s fails at interpreter exit: see details.stderr_tail" % who,
            )
        _add_loaded(details, report)
        return result("pass", None, "", "")

    found = _classify_exception(target, report, ctx, stderr)
    first = _first_exception(report)
    details["exception"] = "%s: %s" % (first.get("type"), _short(str(first.get("message")), 2000))
    chain = report.get("exception") or []
    if len(chain) > 1:
        details["exception_chain"] = [
            "%s: %s" % (i.get("type"), _short(str(i.get("message")), 500)) for i in chain
        ]
    details["traceback_tail"] = lib.tail(str(report.get("traceback") or ""), 15)
    if stderr.strip():
        details["stderr_tail"] = lib.tail(stderr, 15, 3000)
    details.update(found.get("details") or {})
    _add_loaded(details, report)
    return result("fail", str(found["category"]), str(found["message"]), str(found["hint"]))


def _add_loaded(details: dict[str, Any], report: dict[str, Any]) -> None:
    """The shared objects the import left in the process (a failed init stays mapped)."""
    if isinstance(report.get("loaded"), list):
        details["loaded"] = [str(p) for p in report["loaded"]]


# -- command line ----------------------------------------------------------------------------


def _parser() -> lib.ProbeArgumentParser:
    parser = lib.ProbeArgumentParser(
        prog="import_probe.py",
        description="Import each MODULE in a fresh interpreter and classify failures.",
    )
    parser.add_argument("modules", nargs="+", metavar="MODULE")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds allowed per import (default %(default)s)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(4, lib.usable_cpus()),
        help="imports run at the same time (default: min(4, CPUs))",
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="prepend DIR to the children's sys.path (repeatable)",
    )
    return parser


def main(argv: list[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    args = _parser().parse_args(argv)
    if args.timeout <= 0:
        raise lib.UsageError("--timeout must be positive")
    targets: list[str] = []
    for name in args.modules:
        if not re.match(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*$", name):
            raise lib.UsageError("not a module name: %r" % name)
        if name not in targets:
            targets.append(name)
    extra = [os.path.abspath(p) for p in args.path]
    index = lib.distribution_index(lib.search_paths(extra))
    # The child observes on Linux only (it reads /proc/self/maps).
    observers = import_observers(targets, index) if sys.platform.startswith("linux") else {}
    outcomes = import_targets(targets, args.timeout, args.jobs, extra, observers)
    ctx = Context(index, lib.python_info())
    results = [classify(outcome, ctx) for outcome in outcomes]
    return results, {}


if __name__ == "__main__":
    sys.exit(lib.run_probe(PROBE, main))
