# Identifies the interpreter that runs it, for the harness's interpreter discovery
# (build/pythons.py). Runs under any CPython from 2.7 on and PyPy, so: no annotations, no
# f-strings, no `-I` (3.4+); the harness runs it with `-E -s -S`, and the script's own folder is
# dropped from sys.path, which together is what `-I -S` does.
import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != _HERE]

import json  # noqa: E402
import sysconfig  # noqa: E402

v = sys.version_info
pre = {"alpha": "a", "beta": "b", "candidate": "rc"}.get(v[3])
impl = getattr(getattr(sys, "implementation", None), "name", None)
if impl is None:
    import platform

    impl = platform.python_implementation().lower()
sys.stdout.write(
    json.dumps(
        {
            "version": "%d.%d.%d%s" % (v[0], v[1], v[2], (pre and "%s%d" % (pre, v[4])) or ""),
            "implementation": impl,
            "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
            "abi": sysconfig.get_config_var("SOABI") or "",
        }
    )
)
