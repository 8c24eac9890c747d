"""`--fail-on`: which outcomes turn into a non-zero exit status, and the run's status word.

The modes go from strict to lenient:

- `error` (default): the full contract. 1 when a cell failed, missed its `expect:` entry or
  regressed; else 3 when a cell had infrastructure trouble; else 0.
- `fail`: 1 when a cell failed, missed its expectation or regressed; infrastructure errors
  are reported but do not fail the run.
- `regression`: 1 only when a cell regressed against the baseline (a nightly's gate).
- `never`: always 0; the report is the product.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from compat_matrix.errors import UsageError
from compat_matrix.probe.verdicts import EXIT_FAILED, EXIT_INFRA, EXIT_OK, exit_status

if TYPE_CHECKING:
    from collections.abc import Sequence

    from compat_matrix.reports.baseline import BaselineDiff
    from compat_matrix.results import CellResult

__all__ = [
    "DEFAULT_FAIL_ON",
    "FAIL_ON",
    "FailOn",
    "gate_exit_status",
    "parse_fail_on",
    "run_status",
]

FailOn = Literal["error", "fail", "regression", "never"]
FAIL_ON: tuple[FailOn, ...] = ("error", "fail", "regression", "never")
DEFAULT_FAIL_ON: FailOn = "error"


def parse_fail_on(text: str) -> FailOn:
    value = text.strip().lower() or DEFAULT_FAIL_ON
    for mode in FAIL_ON:
        if mode == value:
            return mode
    msg = f"fail-on must be one of {', '.join(FAIL_ON)}, not {text!r}"
    raise UsageError(msg)


def run_status(results: Sequence[CellResult], diff: BaselineDiff | None = None) -> str:
    """One word for the run, worst first: regression, fail, error or pass."""
    if diff is not None and diff.regressions:
        return "regression"
    return {EXIT_FAILED: "fail", EXIT_INFRA: "error"}.get(exit_status(results), "pass")


def gate_exit_status(
    results: Sequence[CellResult], diff: BaselineDiff | None, fail_on: FailOn
) -> int:
    """The exit status `fail_on` asks for (0, 1 or 3)."""
    if fail_on == "never":
        return EXIT_OK
    regressed = diff is not None and bool(diff.regressions)
    if fail_on == "regression":
        return EXIT_FAILED if regressed else EXIT_OK
    status = exit_status(results)
    if regressed or status == EXIT_FAILED:
        return EXIT_FAILED
    if status == EXIT_INFRA and fail_on == "error":
        return EXIT_INFRA
    return EXIT_OK
