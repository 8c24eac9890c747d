"""The reaper of a compat-matrix run (children.py): run as a script, stdlib only.

It reads lines on stdin from the run: `+g PID` / `-g PID` (a child's process group started /
ended), `+d HEX` / `-d HEX` (a temporary folder, its path hex-encoded, made / removed), and
`exit` (the run is ending normally). When stdin closes without `exit`, the run has died (even
by SIGKILL): it kills the groups still registered and removes the folders, then exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys


def main() -> int:
    for name in ("SIGINT", "SIGHUP", "SIGPIPE"):
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, signal.SIG_IGN)
    groups: set[int] = set()
    folders: set[bytes] = set()
    for raw in sys.stdin.buffer:
        line = raw.decode("ascii", "replace").strip()
        if line == "exit":
            return 0
        sign, _, rest = line.partition(" ")
        try:
            if sign == "+g":
                groups.add(int(rest))
            elif sign == "-g":
                groups.discard(int(rest))
            elif sign == "+d":
                folders.add(bytes.fromhex(rest))
            elif sign == "-d":
                folders.discard(bytes.fromhex(rest))
        except ValueError:
            continue
    for pid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
