"""What an environment holds, for ``compat-matrix audit --upgrade`` (the what-if).

Usage (by the harness's ``run/whatif``)::

    <audited python> -I -B _env_snapshot.py                    # the whole snapshot
    <python> -I -B _env_snapshot.py --conda-meta PREFIX        # only PREFIX's conda records

Prints one JSON object: the interpreter (version, implementation, build, prefixes, the base
executable a venv was made from), ``distributions`` (what is installed, who installed it, from
where: ``DistributionIndex.installed``) and ``conda`` (the ``conda-meta`` records, None outside
a conda environment). It reads with the probes' own readers (``_probelib``), the ones the
environment and consistency probes use, and writes nothing. Python 3.8 syntax, stdlib only.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
if sys.path and (sys.path[0] in ("", ".") or os.path.realpath(sys.path[0]) == _HERE):
    del sys.path[0]
sys.path.insert(0, _HERE)
import _probelib as lib  # noqa: E402

del sys.path[0]

import json  # noqa: E402
import sysconfig  # noqa: E402


def conda_meta(prefix: str) -> list[dict[str, object]] | None:
    """The records of ``<prefix>/conda-meta`` as the what-if needs them; None: no conda env."""
    if not os.path.isdir(os.path.join(prefix, "conda-meta")):
        return None
    found: list[dict[str, object]] = []
    for record in lib.conda_records(prefix):
        short, source = lib.conda_channel_source(record)
        found.append(
            {
                "name": record["name"],
                "version": str(record.get("version") or ""),
                "build": str(record.get("build") or ""),
                "channel": short,
                "channel_source": source,
                "metadata_dirs": lib.conda_metadata_dirs(record),
            }
        )
    return found


def snapshot() -> dict[str, object]:
    """The interpreter, its distributions and its conda records."""
    v = sys.version_info
    pre = {"alpha": "a", "beta": "b", "candidate": "rc"}.get(v[3], "")
    return {
        "version": "%d.%d.%d%s" % (v[0], v[1], v[2], pre and "%s%d" % (pre, v[4])),
        "implementation": sys.implementation.name,
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "abi": sysconfig.get_config_var("SOABI") or "",
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "executable": sys.executable,
        "base_executable": getattr(sys, "_base_executable", "") or sys.executable,
        "distributions": lib.DistributionIndex(lib.search_paths()).installed(),
        "conda": conda_meta(sys.prefix),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--conda-meta"] and len(sys.argv) == 3:
        json.dump({"conda": conda_meta(sys.argv[2])}, sys.stdout)
    elif len(sys.argv) == 1:
        json.dump(snapshot(), sys.stdout)
    else:
        sys.exit("usage: _env_snapshot.py [--conda-meta PREFIX]")
