"""The native probe's child: import the context modules, then dlopen each file it is given.

Usage (by ``native_probe.py`` only)::

    <env python> -I [-S] _native_child.py  < {"files": [...], "preload": [...], "imports": [...],
                                               "path": [...]}

Reports each file on a private copy of stdout (one JSON line per event), so a library that
prints cannot corrupt the protocol. Python 3.8 syntax, stdlib only; this file's folder is
dropped from ``sys.path`` first, so it cannot shadow a module the context imports.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
if sys.path and (sys.path[0] in ("", ".") or os.path.realpath(sys.path[0]) == _HERE):
    del sys.path[0]

import ctypes  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402


def main() -> None:
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    req = json.loads(sys.stdin.read())
    sys.path[0:0] = [p for p in req.get("path") or [] if p not in sys.path]
    for name in req.get("imports") or []:
        try:
            __import__(name)
            err = None
        except BaseException as exc:  # noqa: BLE001 - reported, and the loads go on
            err = "%s: %s" % (type(exc).__name__, exc)
        proto.write(json.dumps({"imported": name, "error": err}) + "\n")
        proto.flush()
    for p in req["preload"]:
        try:  # noqa: SIM105 - no contextlib import in a child
            ctypes.CDLL(p, mode=os.RTLD_NOW | os.RTLD_GLOBAL)
        except OSError:
            pass
    mode = os.RTLD_NOW | os.RTLD_LOCAL
    for i, p in enumerate(req["files"]):
        proto.write(json.dumps({"start": i}) + "\n")
        proto.flush()
        t = time.perf_counter()
        try:
            ctypes.CDLL(p, mode=mode)
            err = None
        except OSError as exc:
            err = str(exc)
        proto.write(json.dumps({"done": i, "error": err, "t": time.perf_counter() - t}) + "\n")
        proto.flush()


if __name__ == "__main__":
    main()
