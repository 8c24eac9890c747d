"""Describe the environment a cell built: what is installed and what each distribution imports as.

Usage::

    <env python> environment.py [--dists NAME ...] [--path DIR ...]

Prints one JSON document (see ``_probelib.run_probe``) with two extra keys:

- ``distributions``: ``{canonical name: version}`` of every distribution the interpreter sees
  (its site-packages, plus ``--path`` directories first);
- ``top_level``: for each ``--dists`` NAME (spelled as given), its importable top-level
  modules from ``top_level.txt``, else from RECORD (``scikit-learn`` -> ``["sklearn"]``,
  ``python-dateutil`` -> ``["dateutil"]``); ``[]`` when NAME is not installed.

``results`` is empty for a healthy environment. It holds an ``inconsistent-env`` failure when a
site directory has two metadata directories for one distribution, or a ``~``-prefixed leftover
of an interrupted pip install: the files on disk then belong to an unknown mix of versions.
"""

from __future__ import annotations

import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import _probelib as lib  # noqa: E402

__all__ = ["PROBE", "check_consistency", "main"]

PROBE = "environment"


def check_consistency(
    index: lib.DistributionIndex, paths: list[str], elapsed: float
) -> list[dict[str, object]]:
    """``inconsistent-env`` failures: duplicate metadata and half-finished installs."""
    results: list[dict[str, object]] = []
    for key, copies in sorted(index.duplicates().items()):
        listing = ", ".join(
            "%s (%s)" % (os.path.basename(location), version) for location, version in copies
        )
        folder = os.path.dirname(copies[0][0])
        name = index.display(key)[0]
        results.append(
            lib.make_result(
                PROBE,
                key,
                "fail",
                category="inconsistent-env",
                message="%d installations of %s in %s: %s" % (len(copies), name, folder, listing),
                hint="an install was interrupted or two installers wrote the same environment; "
                "reinstall %s (uv pip install --reinstall %s) or rebuild the environment"
                % (name, name),
                duration_s=elapsed,
                details={"copies": [{"path": p, "version": v} for p, v in copies]},
            )
        )
    for folder in paths:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        leftovers = [n for n in names if n.startswith("~")]
        if leftovers:
            results.append(
                lib.make_result(
                    PROBE,
                    folder,
                    "fail",
                    category="inconsistent-env",
                    message="leftovers of an interrupted pip install in %s: %s"
                    % (folder, ", ".join(leftovers[:10])),
                    hint="pip renames a package to ~name while replacing it; these were never "
                    "cleaned up: delete them and reinstall the packages they belong to",
                    duration_s=elapsed,
                    details={"leftovers": leftovers},
                )
            )
    return results


def _platform() -> dict[str, object]:
    libc = ""
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        libc = ""
    uname = os.uname() if hasattr(os, "uname") else None
    return {
        "system": uname.sysname if uname else sys.platform,
        "machine": uname.machine if uname else "",
        "libc": libc,
        "prefix": sys.prefix,
    }


def main(argv: list[str] | None = None) -> tuple[list[dict[str, object]], dict[str, object]]:
    parser = lib.ProbeArgumentParser(
        prog="environment.py",
        description="List installed distributions and their top-level modules.",
    )
    parser.add_argument("--dists", nargs="*", default=[], metavar="NAME")
    parser.add_argument("--path", action="append", default=[], metavar="DIR")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths = lib.search_paths(args.path)
    index = lib.distribution_index(paths)
    top_level = {name: index.top_level(name) for name in args.dists}
    results = check_consistency(index, paths, time.perf_counter() - start)
    return results, {
        "distributions": index.versions(),
        "top_level": top_level,
        "site_paths": paths,
        "platform": _platform(),
    }


if __name__ == "__main__":
    sys.exit(lib.run_probe(PROBE, main))
