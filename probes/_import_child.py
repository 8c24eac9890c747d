"""The import probe's child: import one module, write a report file, exit.

Usage (by ``import_probe.py`` only)::

    <env python> _import_child.py TARGET OUT_PATH TRACE_PATH DUMP_AFTER PATHS_JSON PARENT_PID
        [EVENTS_FD OBSERVE_JSON]

Python 3.8 syntax, stdlib only. This file's own folder (probes/) is dropped from ``sys.path``
first thing, as the cwd entry is, so nothing there can shadow a module of the environment.

OBSERVE_JSON names other targets (top-level modules) that TARGET's import may import first
thing: pandas imports numpy before anything else of its own runs. When such an import begins
in a process where nothing of the environment has run or been mapped but TARGET's own package
``__init__`` (see :class:`_Observer`), it is the same observation as a fresh ``import numpy``;
the child records it like its own report (``observed``), and says on EVENTS_FD when it cannot
(``unclean NAME``, ``failed NAME``) so that the probe imports that target alone at once.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
if sys.path and (sys.path[0] in ("", ".") or os.path.realpath(sys.path[0]) == _HERE):
    del sys.path[0]

import faulthandler  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception as exc:  # noqa: BLE001 - a broken __str__ must not hide the import error
        return "<unprintable: %r>" % (exc,)


def _chain(exc: BaseException | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(items) < 8:
        seen.add(id(exc))
        kind = type(exc)
        name = kind.__qualname__
        if kind.__module__ != "builtins":
            name = kind.__module__ + "." + name
        files: list[str] = []
        item: dict[str, Any] = {"type": name, "message": _text(exc), "files": files}
        if isinstance(exc, ImportError):
            item["name"] = exc.name
            item["path"] = exc.path
        tb = exc.__traceback__
        while tb is not None:
            files.append(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
        items.append(item)
        if exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            exc = None if exc.__suppress_context__ else exc.__context__
    return items


def _foreign_extensions(missing: str) -> list[str]:
    from importlib.machinery import EXTENSION_SUFFIXES

    parent, _, leaf = missing.rpartition(".")
    if parent:
        dirs = list(getattr(sys.modules.get(parent), "__path__", None) or [])
    else:
        dirs = list(sys.path)
    found: list[str] = []
    for folder in dirs:
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:
            continue
        for name in names:
            if not name.startswith(leaf + ".") or not name.endswith((".so", ".pyd")):
                continue
            if name[len(leaf) :] in EXTENSION_SUFFIXES:
                continue
            found.append(os.path.join(folder, name))
    return found[:10]


def _mapped() -> set[str]:
    """Every shared object mapped in this process (Linux: OSError elsewhere), as real paths.

    Each file is mapped four or five times (one line each): its path is resolved once
    (a realpath is a system call per folder: 20 ms for pandas' 580 lines, 4 ms for its 100
    files)."""
    paths: set[str] = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.rstrip("\n").split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                paths.add(parts[5])
    found: set[str] = set()
    for path in paths:
        if path.endswith(" (deleted)"):
            continue
        base = os.path.basename(path)
        if ".so" in base or base.endswith((".dylib", ".pyd")):
            found.add(os.path.realpath(path))
    return found


def _loaded_files() -> list[str]:
    # What the import left in the process: every mapped shared object (Linux), else the
    # extension modules in sys.modules. Measured, so reachability is not guessed. Only the
    # environment's own files (under sys.prefix or a sys.path entry): the OS's are not judged.
    dirs: set[str] = set()
    for entry in [sys.prefix, *sys.path]:
        if entry and os.path.isdir(entry):
            dirs.add(os.path.join(os.path.realpath(entry), ""))
    roots = tuple(sorted(dirs))
    try:
        found = {p for p in _mapped() if p.startswith(roots)}
    except OSError:
        found = set()
    if not found:
        from importlib.machinery import EXTENSION_SUFFIXES

        for mod in list(sys.modules.values()):
            name = getattr(mod, "__file__", None)
            if isinstance(name, str) and name.endswith(tuple(EXTENSION_SUFFIXES)):
                found.add(os.path.realpath(name))
    return sorted(found)


_STDLIB = os.path.join(os.path.dirname(os.path.realpath(os.__file__)), "")


def _stdlib_file(path: str) -> bool:
    """A file of the interpreter's standard library (not of a site-packages inside it)."""
    real = os.path.realpath(path)
    return real.startswith(_STDLIB) and "-packages" + os.sep not in real[len(_STDLIB) :]


def _stdlib_module(name: str, module: object) -> bool:
    if name.split(".", 1)[0] in sys.builtin_module_names:
        return True
    spec = getattr(module, "__spec__", None)
    if getattr(spec, "origin", None) == "frozen":
        return True
    path = getattr(module, "__file__", None)
    return isinstance(path, str) and _stdlib_file(path)


class _Observer:
    """A meta-path finder that watches for the first import of each of ``names`` in a process
    that imports ``target``, and observes it when it is the same as a fresh import.

    The same means: what the process had at its start (the interpreter, ``site``, this harness)
    plus only the target's own top-level package, partly run, and standard-library modules;
    no shared object mapped but the standard library's; and ``os.environ``, ``sys.path``,
    ``sys.meta_path``, ``sys.path_hooks``, ``sys.getdlopenflags()``, the warning filters, the
    builtins, the modules present at the start, the working directory and the recursion limit
    as they were. Anything else and the target is imported alone (the probe is told at once).
    The loader is the finders' own; only its ``exec_module`` is timed, on the instance, and
    restored as it runs."""

    def __init__(self, target: str, names: list[str], events: int, caught: list[Any]) -> None:
        self.top = target.split(".", 1)[0]
        self.names = set(names)
        self.events = events
        self.caught = caught
        self.seen: set[str] = set()
        self.observed: dict[str, dict[str, Any]] = {}
        self.environ = dict(os.environ)
        self.path = list(sys.path)
        self.meta_path = [self, *sys.meta_path]
        self.path_hooks = list(sys.path_hooks)
        self.dlopenflags = sys.getdlopenflags() if hasattr(sys, "getdlopenflags") else None
        self.filters = list(warnings.filters)
        import builtins

        self.builtins = {k: id(v) for k, v in vars(builtins).items()}
        self.modules = dict(sys.modules)
        self.cwd = os.getcwd()
        self.recursion = sys.getrecursionlimit()
        self.maps = _mapped()

    def _tell(self, event: str, name: str) -> None:
        try:  # noqa: SIM105 - no contextlib import in a child
            os.write(self.events, ("%s %s\n" % (event, name)).encode())
        except OSError:
            pass

    def _clean(self) -> set[str] | None:
        """The shared objects mapped since the start (all the standard library's) when the
        process is as at its start but for the target's package; else None."""
        import builtins

        if (
            os.environ != self.environ
            or sys.path != self.path
            or sys.meta_path != self.meta_path
            or sys.path_hooks != self.path_hooks
            or (self.dlopenflags is not None and sys.getdlopenflags() != self.dlopenflags)
            or warnings.filters != self.filters
            or {k: id(v) for k, v in vars(builtins).items()} != self.builtins
            or os.getcwd() != self.cwd
            or sys.getrecursionlimit() != self.recursion
        ):
            return None
        for name, module in list(sys.modules.items()):
            if name in self.modules:
                if self.modules[name] is not module:
                    return None
            elif name != self.top and not _stdlib_module(name, module):
                return None
        if any(name not in sys.modules for name in self.modules):
            return None
        new = _mapped() - self.maps
        return new if all(_stdlib_file(path) for path in new) else None

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> Any:
        if fullname not in self.names or fullname in self.seen:
            return None
        self.seen.add(fullname)
        try:
            return self._watch(fullname, path, target)
        except Exception:  # noqa: BLE001 - never in the way of the import: it is imported alone
            self._tell("unclean", fullname)
            return None

    def _watch(self, name: str, path: object, target: object) -> Any:
        from importlib.machinery import SourceFileLoader, SourcelessFileLoader

        before = self._clean()
        start = time.perf_counter()  # a fresh import's time begins with finding the module
        spec = None
        if before is not None:
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(name, path, target)
                if spec is not None:
                    break
        loader = getattr(spec, "loader", None)
        if before is None or not isinstance(loader, (SourceFileLoader, SourcelessFileLoader)):
            self._tell("unclean", name)
            return None
        original = loader.exec_module
        first = len(self.caught)

        def exec_module(module: Any) -> None:
            del loader.exec_module  # the class's own again, before anything else can look
            try:
                original(module)
            except BaseException:
                self._tell("failed", name)
                raise
            try:
                self.observed[name] = self._report(name, module, start, before, first)
            except Exception:  # noqa: BLE001 - not observed: it is imported alone
                self._tell("unclean", name)

        loader.exec_module = exec_module  # type: ignore[method-assign]  # this loader only
        return spec

    def _report(
        self, name: str, module: Any, start: float, before: set[str], first: int
    ) -> dict[str, Any]:
        """What a fresh child's report would say of ``name``, taken as its import returns."""
        report: dict[str, Any] = {"target": name, "ok": True}
        report["import_s"] = time.perf_counter() - start
        _describe(report, module)
        report["loaded"] = sorted(set(_loaded_files()) - before)
        report["warnings"] = _warnings(self.caught[first:])
        _numpy_and_gil(report)
        return report


def _describe(report: dict[str, Any], module: Any) -> None:
    version = getattr(module, "__version__", None)
    if isinstance(version, tuple):
        version = ".".join(_text(part) for part in version)
    report["version"] = None if version is None else _text(version)
    report["file"] = getattr(module, "__file__", None)


def _warnings(caught: list[Any]) -> list[str]:
    return ["%s: %s" % (w.category.__name__, _text(w.message)) for w in caught[:20]]


def _numpy_and_gil(report: dict[str, Any]) -> None:
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(getattr(numpy, "__version__", None), str):
        report["numpy_version"] = numpy.__version__
    if hasattr(sys, "_is_gil_enabled"):
        report["gil_enabled"] = sys._is_gil_enabled()


def main(argv: list[str]) -> None:
    target, out_path, trace_path, dump_after = argv[0], argv[1], argv[2], float(argv[3])
    events, observe = (int(argv[6]), json.loads(argv[7])) if len(argv) > 7 else (-1, [])
    if events >= 0:
        os.set_inheritable(events, False)  # the probe's, not for what the import starts
    sys.path[0:0] = json.loads(argv[4])
    if sys.platform.startswith("linux"):
        # Die with the probe: it may be SIGKILLed by the harness, and this child leads its own
        # process group, out of reach of the harness's killpg.
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        except Exception:  # noqa: BLE001 - without it the child still works
            pass
        if os.getppid() != int(argv[5]):
            os._exit(70)
    faulthandler.enable()
    if dump_after > 0:
        faulthandler.dump_traceback_later(dump_after, exit=False)
    trace = os.open(trace_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    tracing = [True]

    def hook(event: str, args: tuple[Any, ...], _write: Any = os.write) -> None:
        if event == "import" and tracing[0]:
            try:  # noqa: SIM105 - no contextlib import in a child
                _write(trace, (str(args[0]) + "\n").encode("utf-8", "replace"))
            except Exception:  # noqa: BLE001 - the trace is best effort
                pass

    if hasattr(sys, "addaudithook"):
        sys.addaudithook(hook)

    report: dict[str, Any] = {"target": target, "ok": False}
    caught: list[warnings.WarningMessage] | None = []
    observer = None
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            if observe and events >= 0 and sys.platform.startswith("linux"):
                try:
                    observer = _Observer(target, observe, events, caught)
                except Exception:  # noqa: BLE001 - no observing: each is imported alone
                    observer = None
                else:
                    sys.meta_path.insert(0, observer)
                start = time.perf_counter()
            module = importlib.import_module(target)
        report["import_s"] = time.perf_counter() - start
        report["ok"] = True
        _describe(report, module)
    except BaseException as exc:  # noqa: BLE001 - every failure is the report
        report["import_s"] = time.perf_counter() - start
        report["exception"] = _chain(exc)
        import traceback  # only a failure needs it: not in the way of every import's timing

        report["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            report["foreign_extensions"] = _foreign_extensions(exc.name)
    tracing[0] = False
    faulthandler.cancel_dump_traceback_later()

    report["loaded"] = _loaded_files()
    report["warnings"] = _warnings(caught or [])
    _numpy_and_gil(report)
    if observer is not None and observer.observed:
        report["observed"] = observer.observed
    with open(out_path + ".tmp", "w") as handle:
        json.dump(report, handle)
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main(sys.argv[1:])
