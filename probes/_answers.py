"""Answers of the file-reading probes, kept while nothing they read has changed.

The environment, abi, gpu-arch, native and consistency probes answer from the environment's
files and the system's loader alone, and so does the cuda probe when nothing uses CUDA:
run twice on the same files, they answer the same. A warm run of an unchanged environment (the
maintainer's loop: edit, run again) need not read a torch environment's 500 MB again. Git
decides "unchanged" the same way: a stamp over every file's path, size, modification time and
inode, under the environment's prefix and every other folder on its search path, plus what the
loader looks at outside it (the interpreter, libpython, ``/etc/ld.so.cache``, the system
library folders and those ``LD_LIBRARY_PATH`` names, ``LD_*`` variables), plus the probes'
own sources and command lines. Any difference and every probe runs again.

Kept only for answers with no failure, error or timeout, so a broken cell is always probed
afresh; the import probe (it runs code) is never kept, nor a cuda answer that asked the driver.
Stdlib only; CPython 3.8-3.14.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

try:  # hashlib's own BLAKE2, without hashlib loading OpenSSL first (4 ms a probe process)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import blake2b

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

__all__ = ["REUSABLE", "keepable", "load", "stamp", "store"]

#: The probes whose answers may depend only on files: kept and reused by stamp.
REUSABLE = ("environment", "abi", "gpu-arch", "native", "consistency", "cuda")
#: Bumped when the stored layout changes.
FORMAT = 1
_HERE = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
#: Outside the environment: where the dynamic loader finds system libraries. A package upgrade
#: renames files into these folders, which changes their modification time.
_SYSTEM_LIBRARY_DIRS = (
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
)
#: Bytecode is written by the imports themselves and read by no file-reading probe.
_SKIPPED_DIRS = ("__pycache__",)


def _line(path: str, st: os.stat_result) -> str:
    """What the stamp takes of one file: a change to any of these is a change to the file."""
    return "%s %d %d %d %d\n" % (path, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)


def _stat_line(path: str) -> str:
    try:
        return _line(path, os.stat(path))
    except OSError:
        return "%s -\n" % path


def _walk(root: str, digest: Any) -> None:
    """Feed every file under ``root`` to ``digest`` (a folder is its files: its own stat would
    be one more system call of ~5 us for each of a torch environment's thousands of folders).
    The order is the file system's: an order that changed only costs a reuse, never a wrong
    answer."""
    lines: list[str] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            lines.append("%s ?\n" % folder)
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):  # the type scandir read: no system call
                if entry.name not in _SKIPPED_DIRS:
                    stack.append(entry.path)
                continue
            try:
                lines.append(_line(entry.path, entry.stat(follow_symlinks=False)))
            except OSError:
                continue
    digest.update("".join(lines).encode("utf-8", "surrogateescape"))


def _roots() -> list[str]:
    """The environment's prefix and every folder on the search path outside it and outside the
    standard library (a venv that sees the system's site-packages, a ``.pth`` that adds a
    source tree): what the probes read."""
    prefix = os.path.realpath(sys.prefix)
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    roots = [prefix]
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if real == _HERE or any(real == root or real.startswith(root + os.sep) for root in roots):
            continue
        in_stdlib = real == stdlib or real.startswith(stdlib + os.sep)
        if in_stdlib and "site-packages" not in real and "dist-packages" not in real:
            continue
        roots.append(real)
    return roots


def stamp(spec: dict[str, Any]) -> str:
    """The stamp of everything the reusable probes' answers depend on, for ``spec``'s
    command lines (probe_set.py's spec)."""
    digest = blake2b(digest_size=20)
    head = {
        "format": FORMAT,
        "args": {name: spec.get("args", {}).get(name, []) for name in REUSABLE},
        "dists": spec.get("dists"),
        "imports": spec.get("imports"),
        "tooling": spec.get("tooling"),
        "version": sys.version,
        "executable": sys.executable,
        "loader": sorted((k, v) for k, v in os.environ.items() if k.startswith("LD_")),
        "platform": list(os.uname()) if hasattr(os, "uname") else sys.platform,
    }
    digest.update(json.dumps(head, sort_keys=True, default=str).encode("utf-8"))
    for name in sorted(os.listdir(_HERE)):  # the probes' own sources, by content
        if name.endswith(".py"):
            with open(os.path.join(_HERE, name), "rb") as handle:
                digest.update(name.encode("utf-8") + b"\0" + handle.read())
    outside = [os.path.realpath(sys.executable), "/etc/ld.so.cache", *_SYSTEM_LIBRARY_DIRS]
    # The folders LD_LIBRARY_PATH names (a CUDA toolkit's lib64): a library added, removed or
    # replaced there renames a file in the folder, which changes its modification time.
    outside += [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    base_lib = os.path.join(sys.base_prefix, "lib")
    with contextlib.suppress(OSError):
        outside += sorted(
            os.path.join(base_lib, n) for n in os.listdir(base_lib) if n.startswith("libpython")
        )
    for path in outside:
        digest.update(_stat_line(path).encode("utf-8", "surrogateescape"))
    for root in _roots():
        _walk(root, digest)
    return digest.hexdigest()


def keepable(name: str, document: dict[str, Any]) -> bool:
    """Whether probe ``name``'s answer may be reused: it read only files (a cuda answer that
    did not ask the driver) and every result passed, was skipped or warned."""
    if name not in REUSABLE:
        return False
    if name == "cuda":
        driver = document.get("driver")
        if not isinstance(driver, dict) or driver.get("checked") is not False:
            return False
    results = document.get("results")
    if not isinstance(results, list):
        return False
    return all(isinstance(r, dict) and r.get("status") in ("pass", "skip", "warn") for r in results)


def load(path: str, current: str) -> dict[str, dict[str, Any]]:
    """The answers kept at ``path`` under stamp ``current``; {} when none match."""
    try:
        with open(path, encoding="utf-8") as handle:
            kept = json.load(handle)
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict) or kept.get("stamp") != current:
        return {}
    answers = kept.get("answers")
    if not isinstance(answers, dict):
        return {}
    return {
        str(name): document
        for name, document in answers.items()
        if isinstance(document, dict) and keepable(str(name), document)
    }


def store(path: str, current: str, answers: dict[str, dict[str, Any]]) -> None:
    """Keep ``answers`` under ``current`` at ``path`` (written whole, then renamed); a folder
    that cannot be written only costs the next run its reuse."""
    kept = {name: doc for name, doc in answers.items() if keepable(name, doc)}
    temporary = "%s.%d.tmp" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump({"stamp": current, "answers": kept}, handle, default=str)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
