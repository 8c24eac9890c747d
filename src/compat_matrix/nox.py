"""compat-matrix in your own noxfile: `compat_matrix.nox.register("compat.yml")`.

This public name stays stable; the sessions themselves live in `compat_matrix.front.nox_sessions`.
"""

from __future__ import annotations

from compat_matrix.front.nox_sessions import NoxMatrix, load_for_nox, register

__all__ = ["NoxMatrix", "load_for_nox", "register"]
