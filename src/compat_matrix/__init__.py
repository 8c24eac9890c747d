"""compat-matrix: which combinations of Python x packages x CUDA actually work, and why not."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
