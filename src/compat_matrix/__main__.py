"""`python -m compat_matrix`."""

from __future__ import annotations

from compat_matrix.front.cli import console

console()
