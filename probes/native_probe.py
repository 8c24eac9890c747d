"""native_probe: dlopen every shared object of a Python environment, in child processes.

The static ``abi_probe`` predicts what the loader will do; this probe asks the loader itself.  Each
file is opened with ``RTLD_NOW | RTLD_LOCAL`` (what CPython uses for extension modules, so every
non-weak symbol must bind at once) by a child interpreter of the environment.  Files are batched
per top-level package (one child each); a child that dies takes only the file it was loading with
it: the rest of its batch is re-run in a fresh child.  A file that fails inside a batch is re-run
alone, so a failure caused by what was loaded before it is reported as order-dependent.

A file that fails alone is loaded once more in the process it is loaded into in normal use
(``--context`` modules, the cell's import targets, then its own package imported first): a
failure there is a failure; a file that loads there is ``latent`` (it fails only when loaded on
its own, e.g. a plugin whose DT_NEEDED library its package loads first).

Categories: missing-library, undefined-symbol, symbol-version, crash (with the signal name),
timeout, abi-python (wrong ELF class/machine), invalid-elf, exec-stack, static-tls, load-error,
no-gpu (skip) when only an NVIDIA driver library is missing, optional-library (skip) for known
optional backends (numba's TBB layer).

Usage: ``python native_probe.py [--prefix P] [--site DIR ...] [--batch N] [--timeout S]
[--jobs J]``; prints one JSON document and exits 0 (nothing failed), 1 (a real incompatibility)
or 3 (the probe itself failed).  Stdlib only; runs on CPython 3.8-3.14.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _elf
import _probelib as lib

PROBE = "native"
DF_1_PIE = 0x08000000

#: The child (a file beside this one): report each file on a private fd, so a library that prints
#: cannot corrupt the protocol.
CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_native_child.py")

_MISSING_RE = re.compile(r"^(?P<lib>[^:]+): cannot open shared object file")
_UNDEF_RE = re.compile(r"undefined symbol: (?P<sym>[^\s,]+)(?:, version (?P<ver>\S+))?")
_VERSION_RE = re.compile(
    r"^(?P<prov>[^:]+): version `(?P<ver>[^']+)' not found \(required by (?P<req>[^)]+)\)"
)


class Outcome:
    """What happened to one file in one child process."""

    __slots__ = ("before", "error", "kind", "rc", "seconds")

    def __init__(
        self, kind: str, error: str | None = None, seconds: float = 0.0, rc: int = 0
    ) -> None:
        self.kind = kind  # "ok" | "error" | "crash" | "timeout"
        self.error = error
        self.seconds = seconds
        self.rc = rc  # the child's exit status for a crash (negative: killed by that signal)
        #: Set when it fails only after these files were loaded.
        self.before: list[str] | None = None


def _signal_name(rc: int) -> str:
    if rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return "signal %d" % -rc
    return "exit status %d" % rc


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data if isinstance(data, str) else ""


def run_batch(
    files: list[str],
    preload: list[str],
    timeout: float,
    imports: list[str] | None = None,
    path: list[str] | None = None,
) -> list[Outcome]:
    """Load ``files`` in one child; returns one Outcome per file it got to.

    The list is shorter than ``files`` when the child died: its last element is then the crash
    or timeout of the file being loaded, and the caller re-runs the rest in a new child.
    ``imports`` are imported first (with site-packages on the path): the process a package's
    plugins are loaded into in normal use.
    """
    payload = json.dumps(
        {"files": files, "preload": preload, "imports": imports or [], "path": path or []}
    )
    # -S keeps site-packages out of a bare load; importing the context needs them.
    argv = [sys.executable, *(["-I"] if imports else ["-I", "-S"]), CHILD]
    t0 = time.perf_counter()
    timed_out = False
    rc = 0
    try:
        proc = subprocess.run(
            argv,
            input=payload.encode("utf-8"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
        out, err_text, rc = _text(proc.stdout), _text(proc.stderr), proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, err_text, timed_out = _text(exc.stdout), _text(exc.stderr), True
    outcomes: list[Outcome] = []
    started = -1
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "start" in msg:
            started = msg["start"]
        elif "done" in msg:
            e = msg.get("error")
            outcomes.append(Outcome("error" if e else "ok", e, float(msg.get("t") or 0.0)))
    if len(outcomes) < len(files):
        elapsed = time.perf_counter() - t0
        tail = " | ".join(err_text.strip().splitlines()[-3:])
        if timed_out:
            outcomes.append(Outcome("timeout", "no answer after %.0f s" % timeout, elapsed))
        elif started == len(outcomes):
            msg = "the process was killed by %s while loading it" % _signal_name(rc)
            if rc >= 0:
                msg = "the process exited with status %d while loading it" % rc
            if tail:
                msg += " (stderr: %s)" % tail
            outcomes.append(Outcome("crash", msg, elapsed, rc))
        else:
            msg = "the probe child died before loading it (%s): %s" % (_signal_name(rc), tail)
            outcomes.append(Outcome("crash", msg, elapsed, rc))
    return outcomes


def load_all(files: list[str], preload: list[str], timeout: float) -> list[Outcome | None]:
    """One Outcome per file: the rest of a batch is re-run after a crash, failures re-run alone."""
    results: list[Outcome | None] = [None] * len(files)
    pending = list(range(len(files)))
    first_in_process = {0}
    while pending:
        outs = run_batch([files[i] for i in pending], preload, timeout)
        for j, out in enumerate(outs):
            results[pending[j]] = out
        if len(outs) >= len(pending):
            break
        pending = pending[len(outs) :]
        first_in_process.add(pending[0])
    # A failure after other files were loaded may be caused by them: load it alone to tell.
    for i, o in enumerate(results):
        if o is None or o.kind == "ok" or i in first_in_process:
            continue
        alone = run_batch([files[i]], preload, timeout)
        a = alone[0] if alone else Outcome("crash", "no answer")
        if a.kind == "ok":
            o.before = files[:i]
        else:
            results[i] = a
    return results


def classify(error: str, path: str) -> tuple[str, str, dict[str, Any]]:
    """(status, category, details) for the dlerror() message of loading ``path``."""
    m = _MISSING_RE.match(error)
    if m:
        lib = m.group("lib").strip()
        if os.path.abspath(lib) == os.path.abspath(path):
            # The file exists: ld.so rejected it (another machine: open_verify gives up quietly).
            try:
                elf = _elf.open_elf(path)
            except _elf.CORRUPT:
                return "fail", "invalid-elf", {}
            if elf is not None:
                machine = _elf.machine_name(elf.machine)
                elf.release()
                return "fail", "abi-python", {"machine": machine}
            return "fail", "invalid-elf", {}
        if _elf.is_driver_library(lib):
            return "skip", "no-gpu", {"library": lib}
        return "fail", "missing-library", {"library": lib}
    m = _VERSION_RE.search(error)
    if m:
        details = {"provider": m.group("prov"), "version": m.group("ver")}
        details["required_by"] = m.group("req")
        return "fail", "symbol-version", details
    m = _UNDEF_RE.search(error)
    if m:
        return "fail", "undefined-symbol", {"symbol": m.group("sym"), "version": m.group("ver")}
    if "wrong ELF class" in error or "ELF file data encoding" in error:
        return "fail", "abi-python", {}
    if "invalid ELF header" in error or "file too short" in error or "ELF load command" in error:
        return "fail", "invalid-elf", {}
    if "executable stack" in error:
        return "fail", "exec-stack", {}
    if "static TLS" in error:
        return "fail", "static-tls", {}
    return "fail", "load-error", {}


_HINTS = {
    "missing-library": "install the package that provides %(library)s, or reinstall %(owner)s",
    "symbol-version": "%(owner)s needs %(version)s from %(provider)s: provide a newer library "
    "(upgrade the OS or conda runtime libraries) or install a build made with an older toolchain",
    "undefined-symbol": "%(owner)s expects %(symbol)s from a dependency it does not load or from a "
    "different version of it: install the dependency versions it was built against, or rebuild it",
    "abi-python": "install the build of %(owner)s for this platform (this one is for %(machine)s)",
    "invalid-elf": "reinstall %(owner)s: the file is truncated or corrupt",
    "exec-stack": "upgrade %(owner)s to a build linked with -z noexecstack, or run with "
    "GLIBC_TUNABLES=glibc.rtld.execstack=2",
    "static-tls": "import %(owner)s earlier in the process, or preload it (LD_PRELOAD)",
    "load-error": "see the loader message; reinstall %(owner)s",
    "crash": "a constructor in the file (or a library it loads) crashed: report it to %(owner)s",
    "timeout": "a constructor in the file (or a library it loads) hangs: report it to %(owner)s",
    "no-gpu": "run this cell on a machine with an NVIDIA driver to verify GPU loading",
    "optional-library": "pip install %(install)s to enable it",
}


def _group(rel: str) -> str:
    top = rel.split(os.sep, 1)[0]
    if top.endswith(".libs"):
        top = top[: -len(".libs")]
    return top


def collect(env: _elf.Environment) -> list[_elf.EnvFile]:
    """The files Python would dlopen itself: extension modules, and libraries none of them loads.

    A library that only ever loads as a dependency is exercised through its loader: opened alone
    it could fail where the real process succeeds (an RPATH inherited from the loader, a
    dependency the loader brings).  Executables and other interpreters' builds are left out.
    """
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    try:
        resolver = _elf.Resolver(env.executable)
    except _elf.ElfError:
        resolver = None
    exts: list[tuple[_elf.EnvFile, _elf.ElfFile | None]] = []
    libs: list[tuple[_elf.EnvFile, _elf.ElfFile]] = []
    for f in env.scan():
        try:
            elf = resolver.open(f.path) if resolver is not None else _elf.open_elf(f.path)
        except _elf.CORRUPT:
            exts.append((f, None))  # broken: dlopen says how
            continue
        if elf is None:
            continue
        if elf.type == _elf.ET_EXEC or (elf.interp and elf.flags_1 & DF_1_PIE):
            continue
        info = _elf.extension_module(f, elf)
        if info is None:
            libs.append((f, elf))
        elif info[1] in suffixes:
            exts.append((f, elf))
        # else: another interpreter's build; abi_probe reports it, nothing imports it
    reached: set[tuple[int, int]] = set()
    if resolver is not None:
        for f, elf in exts:
            if elf is None or not elf.compatible_with(resolver.executable):
                continue
            try:
                load = resolver.dlopen(f.path)
            except _elf.CORRUPT:
                continue
            reached.update(n.elf.file_id for n in load.searchlist)
    out = [f for f, _e in exts]
    out += [f for f, elf in libs if elf.file_id not in reached]
    out.sort(key=lambda f: f.rel)
    return out


def _torch_preload(env: _elf.Environment) -> list[str]:
    """What torch's ``_preload_cuda_deps`` loads (RTLD_GLOBAL) before its own libraries."""
    out = []
    for site in env.sites:
        nv = os.path.join(site, "nvidia")
        if not os.path.isdir(nv):
            continue
        for pkg in sorted(os.listdir(nv)):
            lib = os.path.join(nv, pkg, "lib")
            try:
                names = sorted(os.listdir(lib))
            except OSError:
                continue
            out += [os.path.join(lib, n) for n in names if ".so" in n]
    return out


def result_for(
    f: _elf.EnvFile, o: Outcome, env: _elf.Environment, timeout: float
) -> dict[str, Any]:
    """The probe result for a file that did not load."""
    own = env.owner(f.path)
    owner = "%s %s" % own if own else "the package that owns it"
    if o.kind == "crash":
        status, category = "fail", "crash"
        details: dict[str, Any] = {
            "signal": _signal_name(o.rc) if o.rc < 0 else None,
            "exit_status": o.rc if o.rc >= 0 else None,
        }
        message = "%s: %s" % (f.rel, o.error)
    elif o.kind == "timeout":
        status, category, details = "fail", "timeout", {"timeout_s": timeout}
        message = "%s: loading it did not finish: %s" % (f.rel, o.error)
    else:
        status, category, details = classify(o.error or "", f.path)
        message = o.error or ""
        optional = _elf.optional_extension(f.rel, details.get("library") or "")
        if category == "missing-library" and optional is not None:
            status, category = "skip", "optional-library"
            details["install"] = optional[0]
            message += (
                " (%s is off: the package imports this module only when it is available)"
                % (optional[1])
            )
    if o.before is not None:
        details["order_dependent"] = True
        here = os.path.dirname(f.path)
        details["loaded_before"] = [os.path.relpath(p, here) for p in o.before[-10:]]
        message += (
            " (loads fine alone; fails after %d other files of %s were loaded in the same "
            "process)" % (len(o.before), _group(f.rel))
        )
    fmt = {
        "library": "the missing library",
        "symbol": "a symbol",
        "version": "a version",
        "provider": "a library",
        "machine": "another machine",
    }
    fmt.update({k: v for k, v in details.items() if isinstance(v, str)})
    fmt["owner"] = owner
    details["owner"] = owner
    details["path"] = os.path.realpath(f.path)
    return {
        "probe": PROBE,
        "target": f.rel,
        "status": status,
        "category": category,
        "message": message,
        "hint": _HINTS.get(category, "") % fmt,
        "duration_s": round(o.seconds, 6),
        "details": details,
    }


def plan(
    files: list[_elf.EnvFile], env: _elf.Environment, batch: int
) -> list[tuple[list[_elf.EnvFile], list[str]]]:
    """[(files, preload)]: one batch per top-level package (split every ``batch`` files)."""
    groups: dict[str, list[_elf.EnvFile]] = {}
    for f in files:
        groups.setdefault(_group(f.rel), []).append(f)
    torch_pre = _torch_preload(env) if "torch" in groups else []
    work = []
    for name in sorted(groups):
        members = groups[name]
        pre = torch_pre if name == "torch" else []
        for i in range(0, len(members), max(1, batch)):
            work.append((members[i : i + batch], pre))
    return work


def _context_for(group: str, context: list[str]) -> list[str]:
    """What to import before loading a package's files: the cell's targets, then the package."""
    imports = list(context)
    if group.isidentifier() and group not in imports:
        imports.append(group)
    return imports


def load_in_context(
    done: list[tuple[_elf.EnvFile, Outcome | None]],
    env: _elf.Environment,
    context: list[str],
    timeout: float,
    pool: ThreadPoolExecutor,
) -> dict[str, tuple[list[str], Outcome]]:
    """Re-load every file that failed alone in the process it is loaded into in normal use.

    A plugin may need a library its package loads first (by soname, with no RUNPATH to it):
    alone it fails, after ``import package`` it loads. Returns {path: (imports, Outcome)}.
    """
    groups: dict[str, list[_elf.EnvFile]] = {}
    for f, o in done:
        # Only what fails on its own: an order-dependent failure stays one.
        if o is not None and o.kind == "error" and o.before is None:
            groups.setdefault(_group(f.rel), []).append(f)
    work = [(members, _context_for(name, context)) for name, members in sorted(groups.items())]
    work = [(members, imports) for members, imports in work if imports]
    torch_pre = _torch_preload(env) if "torch" in groups else []

    def do(
        item: tuple[list[_elf.EnvFile], list[str]],
    ) -> list[tuple[str, tuple[list[str], Outcome]]]:
        members, imports = item
        pre = torch_pre if _group(members[0].rel) == "torch" else []
        outs = run_batch([f.path for f in members], pre, timeout, imports, env.sites)
        return [(f.path, (imports, o)) for f, o in zip(members, outs)]

    return dict(pair for part in pool.map(do, work) for pair in part)


def judge_in_context(res: dict[str, Any], seen: tuple[list[str], Outcome] | None) -> None:
    """A file that loads in its package's process is latent: it fails only loaded on its own."""
    if seen is None or res["status"] != "fail":
        return
    imports, o = seen
    details = res["details"]
    after = ", ".join("import %s" % name for name in imports)
    if o.kind == "ok":
        res["status"] = "latent"
        details["in_context"] = "loads"
        details["loads_after"] = imports
        res["message"] = "[latent: fails if loaded on its own; it loads after %s] %s" % (
            after,
            res["message"],
        )
        res["hint"] = (
            "nothing to change for normal use: it loads once %s has run; only loading the file "
            "on its own (ctypes.CDLL) fails" % after
        )
    elif o.kind == "error":
        details["in_context"] = "fails"
        details["fails_after"] = imports


def run(
    prefix: str | None,
    sites: list[str] | None,
    batch: int = 64,
    timeout: float = 120.0,
    jobs: int = 0,
    *,
    context: list[str] | None = None,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        env = _elf.Environment.discover(prefix, sites)
        files = collect(env)
    except _elf.CORRUPT as exc:
        return _elf.unreadable_document(PROBE, exc, t0)
    work = plan(files, env, batch)

    def do(
        item: tuple[list[_elf.EnvFile], list[str]],
    ) -> list[tuple[_elf.EnvFile, Outcome | None]]:
        chunk, pre = item
        return list(zip(chunk, load_all([f.path for f in chunk], pre, timeout)))

    with ThreadPoolExecutor(max_workers=jobs or min(4, lib.usable_cpus())) as pool:
        done = [pair for part in pool.map(do, work) for pair in part]
        in_context = load_in_context(done, env, context or [], timeout, pool)
    results = []
    for f, o in done:
        if o is None or o.kind == "ok":
            continue
        res = result_for(f, o, env, timeout)
        judge_in_context(res, in_context.get(f.path))
        results.append(res)
    loaded = sum(1 for _f, o in done if o is not None and o.kind == "ok")
    summary = "%d of %d shared objects load with RTLD_NOW|RTLD_LOCAL" % (loaded, len(files))
    details = {
        "files": len(files),
        "loaded": loaded,
        "batches": len(work),
        "findings": lib.category_counts(results, "fail"),
        "sites": env.sites,
        "prefix": env.prefix,
    }
    last = lib.summary_result(PROBE, results, summary, noun="failures", started=t0, details=details)
    results.append(last)
    return lib.document(PROBE, results)


def _build(argv: list[str] | None) -> dict[str, Any]:
    parser = lib.ProbeArgumentParser(prog="native_probe.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", help="environment prefix (default: this interpreter's)")
    parser.add_argument("--site", action="append", help="site-packages dir (repeatable)")
    parser.add_argument("--batch", type=int, default=64, help="files per child (default 64)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per child")
    parser.add_argument("--jobs", type=int, default=0, help="children at once (min(4, CPUs))")
    parser.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE before re-loading a file that failed alone (repeatable)",
    )
    args = parser.parse_args(argv)
    return run(args.prefix, args.site, args.batch, args.timeout, args.jobs, context=args.context)


def main(argv: list[str] | None = None) -> int:
    return lib.run_document_probe(PROBE, _build, argv)


if __name__ == "__main__":
    sys.exit(main())
