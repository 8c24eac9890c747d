"""The import probe's child: import one module, write a report file, exit.

Usage (by ``import_probe.py`` only)::

    <env python> _import_child.py TARGET OUT_PATH TRACE_PATH DUMP_AFTER PATHS_JSON PARENT_PID

Python 3.8 syntax, stdlib only. This file's own folder (probes/) is dropped from ``sys.path``
first thing, as the cwd entry is, so nothing there can shadow a module of the environment.
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


def _loaded_files() -> list[str]:
    # What the import left in the process: every mapped shared object (Linux), else the
    # extension modules in sys.modules. Measured, so reachability is not guessed. Only the
    # environment's own files (under sys.prefix or a sys.path entry): the OS's are not judged.
    dirs: set[str] = set()
    for entry in [sys.prefix, *sys.path]:
        if entry and os.path.isdir(entry):
            dirs.add(os.path.join(os.path.realpath(entry), ""))
    roots = tuple(sorted(dirs))
    found: set[str] = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.rstrip("\n").split(None, 5)
                if len(parts) < 6 or not parts[5].startswith("/"):
                    continue
                path = parts[5]
                if path.endswith(" (deleted)"):
                    continue
                base = os.path.basename(path)
                if ".so" in base or base.endswith((".dylib", ".pyd")):
                    found.add(os.path.realpath(path))
    except OSError:
        pass
    found = {p for p in found if p.startswith(roots)}
    if not found:
        from importlib.machinery import EXTENSION_SUFFIXES

        for mod in list(sys.modules.values()):
            name = getattr(mod, "__file__", None)
            if isinstance(name, str) and name.endswith(tuple(EXTENSION_SUFFIXES)):
                found.add(os.path.realpath(name))
    return sorted(found)


def main(argv: list[str]) -> None:
    target, out_path, trace_path, dump_after = argv[0], argv[1], argv[2], float(argv[3])
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
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            module = importlib.import_module(target)
        report["import_s"] = time.perf_counter() - start
        report["ok"] = True
        version = getattr(module, "__version__", None)
        if isinstance(version, tuple):
            version = ".".join(_text(part) for part in version)
        report["version"] = None if version is None else _text(version)
        report["file"] = getattr(module, "__file__", None)
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
    report["warnings"] = [
        "%s: %s" % (w.category.__name__, _text(w.message)) for w in (caught or [])[:20]
    ]
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(getattr(numpy, "__version__", None), str):
        report["numpy_version"] = numpy.__version__
    if hasattr(sys, "_is_gil_enabled"):
        report["gil_enabled"] = sys._is_gil_enabled()
    with open(out_path + ".tmp", "w") as handle:
        json.dump(report, handle)
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    main(sys.argv[1:])
