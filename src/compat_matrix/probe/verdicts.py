"""From probe findings to one cell verdict, and from cell verdicts to an exit status.

The most specific cause wins: an ABI finding explains the import error it causes, so the cell's
category is the ABI one and the import error stays a supporting finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from compat_matrix.results import CellResult, ExpectationOutcome, ProbeResult

if TYPE_CHECKING:
    from collections.abc import Sequence

    from compat_matrix.matrix.model import Expectation, Status

__all__ = [
    "CATEGORY_PRIORITY",
    "EXIT_FAILED",
    "EXIT_INFRA",
    "EXIT_OK",
    "Verdict",
    "cell_verdict",
    "exit_status",
    "expectation_outcome",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3

#: Most specific first. A category not listed sorts after these, before import-error.
CATEGORY_PRIORITY: tuple[str, ...] = (
    "abi-python",
    "abi-numpy",
    "symbol-version",
    "missing-library",
    "undefined-symbol",
    "cuda-driver",
    "cuda-arch",
    "cuda-runtime",
    "inconsistent-env",
    "crash",
    "timeout",
)
_LAST = ("import-error",)

#: Statuses that are not a failure of the combination when no `expect:` entry says otherwise.
_ACCEPTABLE: frozenset[str] = frozenset({"pass", "unsupported", "conflict", "skip"})


@dataclass(frozen=True)
class Verdict:
    status: Status
    category: str | None
    message: str
    hint: str
    gpu_unverified: bool = False


def _rank(result: ProbeResult) -> int:
    category = result.category or ""
    if category in CATEGORY_PRIORITY:
        return CATEGORY_PRIORITY.index(category)
    if category in _LAST:
        return len(CATEGORY_PRIORITY) + 1
    return len(CATEGORY_PRIORITY)


def cell_verdict(results: Sequence[ProbeResult]) -> Verdict:
    """Combine every probe finding of an installed cell into its verdict."""
    gpu_unverified = any(r.status == "skip" and r.category == "no-gpu" for r in results)
    failures = sorted((r for r in results if r.status == "fail"), key=_rank)
    if failures:
        first = failures[0]
        message = first.message
        if first.target and first.target not in first.message:
            message = f"{first.target}: {message}"
        others = len(failures) - 1
        if others:
            message += f" (+{others} more finding{'s' if others > 1 else ''})"
        return Verdict("fail", first.category, message, first.hint, gpu_unverified)
    errors = [r for r in results if r.status == "error"]
    if errors:
        first = errors[0]
        return Verdict(
            "error",
            first.category,
            f"{first.probe} probe: {first.message}",
            first.hint,
            gpu_unverified,
        )
    return Verdict("pass", None, "", "", gpu_unverified)


def expectation_outcome(
    expectations: Sequence[Expectation], axes: dict[str, str], status: Status
) -> ExpectationOutcome | None:
    """The first `expect:` entry matching `axes`, and whether `status` meets it."""
    for expectation in expectations:
        if expectation.matches(axes):
            return ExpectationOutcome(
                status=expectation.status,
                met=status == expectation.status,
                reason=expectation.reason,
            )
    return None


def exit_status(results: Sequence[CellResult]) -> int:
    """0 when every cell met its expectation, 1 on a failure or unmet expectation, 3 on errors."""
    failed = infra = False
    for result in results:
        if result.expectation is not None:
            failed |= not result.expectation.met
        elif result.status == "error":
            infra = True
        elif result.status not in _ACCEPTABLE:
            failed = True
    if failed:
        return EXIT_FAILED
    return EXIT_INFRA if infra else EXIT_OK
