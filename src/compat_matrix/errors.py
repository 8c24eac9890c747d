"""Errors a user can act on: each maps to one exit status and never shows a traceback."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CompatError", "MatrixError", "UsageError"]


class CompatError(Exception):
    """Base class: an error with a message meant for a person and an exit status."""

    exit_status = 2


@dataclass
class MatrixError(CompatError):
    """A bad matrix file, located precisely (1-based line and column)."""

    path: str
    line: int
    column: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.problem}"


class UsageError(CompatError):
    """A bad command line or environment variable."""
