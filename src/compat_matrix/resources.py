"""Where compat-matrix's own files are: the probe scripts and their child programs.

Every stage runs some of them in another interpreter (interpreter discovery, the probes, the
what-if snapshot), so the one function that finds them sits above the stages.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["probes_dir"]


def probes_dir() -> Path:
    """probes/ of the installed package, or of the source checkout this module lives in."""
    spec = importlib.util.find_spec("compat_matrix.probes")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "probes"
