"""compat-matrix: which combinations of Python x packages x CUDA actually work, and why not.

The sub-packages follow the data: `matrix` (load and expand the file) -> `build` (interpreters,
backends, install classification) -> `probe` (run probes/ in the environment, verdicts) -> `run`
(a cell end to end, audit, what-if) -> `reports` (renderers, baseline, gate, publish) -> `front`
(command line, nox, GitHub Action). A module imports only from its own folder and earlier ones,
except that a run (`run.pipeline`, `audit`, what-if) ends by handing its results to `reports`
to be written. `compat_matrix.nox` is the stable name a user's noxfile imports.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
