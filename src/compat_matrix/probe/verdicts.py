"""From probe findings to one cell verdict, and from cell verdicts to an exit status.

The most specific cause wins: an ABI finding explains the import error it causes, so the cell's
category is the ABI one and the import error stays a supporting finding.

Reachability decides whether a static finding fails the cell. The abi probe judges every file
on its own; the import probe measures which files importing the targets really loads, and the
native probe re-loads a file that failed alone in its package's process. A finding on a file
the import loads (or that fails in that context) fails the cell; one on a file that is never
loaded, or that loads fine once its package is imported, is `latent`: reported, with the
evidence, but the cell passes (unless the matrix says `strict: true`).
"""

from __future__ import annotations

import dataclasses
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
    "REACHABILITY_CATEGORIES",
    "Verdict",
    "cell_verdict",
    "exit_status",
    "expectation_outcome",
    "judge_reachability",
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


#: Static findings whose harm depends on whether (and in which process) the file is loaded.
REACHABILITY_CATEGORIES: frozenset[str] = frozenset(
    {"abi-numpy", "abi-python", "missing-library", "symbol-version", "undefined-symbol"}
)
#: Of those, the ones the loader decides: a file that is in the process has passed them.
_LOADER_CATEGORIES = frozenset({"missing-library", "symbol-version", "undefined-symbol"})
#: Per-file probes whose closing `environment` result summarises their file findings.
_FILE_PROBES = ("abi", "native")


@dataclass(frozen=True)
class Verdict:
    status: Status
    category: str | None
    message: str
    hint: str
    gpu_unverified: bool = False
    #: True when some finding is latent ("fails if loaded on its own"); on a `pass` cell that
    #: is the "pass (latent)" mark.
    latent: bool = False
    #: The findings as judged (latent ones re-labelled); what the CellResult stores.
    probes: tuple[ProbeResult, ...] = ()


@dataclass(frozen=True)
class _Evidence:
    """What the probes measured about the process: which imports loaded which files."""

    #: Real path of every shared object in the process -> the import targets that loaded it.
    loaded: dict[str, tuple[str, ...]]
    #: Native probe results by file (target, relative like the abi probe's).
    native: dict[str, ProbeResult]
    #: Every import succeeded: a file none of them loaded is one the cell never loads. After a
    #: failed import that is unknown (it stopped early), so findings are only attributed.
    complete: bool


def _evidence(results: Sequence[ProbeResult]) -> _Evidence | None:
    """None unless every import target says what it loaded."""
    imports = [r for r in results if r.probe == "import"]
    if not imports or any("loaded" not in r.details for r in imports):
        return None
    loaded: dict[str, tuple[str, ...]] = {}
    for r in imports:
        for path in r.details.get("loaded") or ():
            loaded[str(path)] = (*loaded.get(str(path), ()), r.target)
    native = {r.target: r for r in results if r.probe == "native" and r.target != "environment"}
    return _Evidence(loaded, native, complete=all(r.status == "pass" for r in imports))


def _imports(targets: Sequence[str]) -> str:
    return ", ".join(f"import {t}" for t in targets[:3]) + (" ..." if len(targets) > 3 else "")


def _latent(result: ProbeResult, why: str, **evidence: object) -> ProbeResult:
    details = dict(result.details)
    details.update(evidence)
    details["latent"] = why
    if "fix" in details:  # nothing to fix for normal use: the fix is for loading it alone
        details["fix_if_loaded"] = details.pop("fix")
    return dataclasses.replace(
        result,
        status="latent",
        message=f"[latent: {why}] {result.message}",
        hint=f"nothing to change for normal use ({why}); if you load it: {result.hint}",
        details=details,
    )


def _judge(result: ProbeResult, evidence: _Evidence) -> ProbeResult:
    """One abi finding judged by what the import loaded and what the native probe saw."""
    path = str(result.details.get("path") or "")
    if not path:
        return result
    by = evidence.loaded.get(path)
    category = result.category or ""
    if by:
        if category in _LOADER_CATEGORIES and evidence.complete:
            return _latent(
                result, f"fails if loaded on its own; it loads after {_imports(by)}", loaded_by=by
            )
        details = {**result.details, "loaded_by": list(by)}
        return dataclasses.replace(
            result, message=f"{result.message} (loaded by {_imports(by)})", details=details
        )
    if not evidence.complete:
        return result
    if category not in _LOADER_CATEGORIES:
        targets = sorted({t for ts in evidence.loaded.values() for t in ts})
        return _latent(result, f"not loaded by {_imports(targets) or 'the imports'}")
    files = [result.target, *(str(v) for v in result.details.get("via") or ())]
    native = [evidence.native[f] for f in files if f in evidence.native]
    if any(n.status == "fail" for n in native):
        return result
    for n in native:
        if n.status == "latent":
            after = [str(m) for m in n.details.get("loads_after") or ()]
            what = "it" if n.target == result.target else n.target
            return _latent(
                result,
                f"fails if loaded on its own; {what} loads after {_imports(after)}",
                loads_after=after,
            )
    provided = [str(p) for p in result.details.get("provided_by") or ()]
    in_process = [p for p in provided if p in evidence.loaded]
    if category == "missing-library" and in_process:
        by = evidence.loaded[in_process[0]]
        return _latent(
            result,
            f"fails if loaded on its own; {_imports(by)} loads {in_process[0]} first",
            provided_in_process=in_process,
        )
    return result


def _resummarise(results: list[ProbeResult]) -> list[ProbeResult]:
    """A per-file probe's closing result fails only while one of its file findings does."""
    failing = {x.probe for x in results if x.status == "fail" and x.target != "environment"}
    latent = {x.probe for x in results if x.status == "latent"}
    demote = latent - failing
    return [
        dataclasses.replace(
            r,
            status="pass",
            category=None,
            message=f"{r.message} (latent: they fail only if loaded on their own)",
            hint="",
        )
        if r.probe in demote and _closing(r, "fail")
        else r
        for r in results
    ]


def _closing(result: ProbeResult, status: str) -> bool:
    """Whether `result` is a per-file probe's closing `environment` result with `status`."""
    closing = result.probe in _FILE_PROBES and result.target == "environment"
    return closing and result.status == status


def judge_reachability(results: Sequence[ProbeResult]) -> list[ProbeResult]:
    """Re-label static findings on files the cell's imports never load (or load fine) `latent`.

    Without the import probe's measurement every finding stands as the probe reported it; after
    a failed import (the cell fails anyway) findings on files it loaded only name that import.
    """
    evidence = _evidence(results)
    if evidence is None:
        return list(results)
    judged = [
        _judge(r, evidence)
        if r.probe == "abi" and r.status == "fail" and r.category in REACHABILITY_CATEGORIES
        else r
        for r in results
    ]
    return _resummarise(judged)


def _strict(result: ProbeResult) -> ProbeResult:
    if result.status != "latent":
        return result
    return dataclasses.replace(
        result, status="fail", message=f"{result.message} (a failure under strict: true)"
    )


def _rank(result: ProbeResult) -> tuple[int, int]:
    """Most specific category first; within one, a finding on a file an import loaded."""
    category = result.category or ""
    loaded = 0 if "loaded_by" in result.details else 1
    if category in CATEGORY_PRIORITY:
        return CATEGORY_PRIORITY.index(category), loaded
    if category in _LAST:
        return len(CATEGORY_PRIORITY) + 1, loaded
    return len(CATEGORY_PRIORITY), loaded


def cell_verdict(results: Sequence[ProbeResult], *, strict: bool = False) -> Verdict:
    """Combine every probe finding of an installed cell into its verdict.

    Static findings are judged by reachability first; `strict` makes latent findings fail.
    """
    results = judge_reachability(results)
    if strict:
        results = _resummarise_strict([_strict(r) for r in results])
    probes = tuple(results)
    latent = any(r.status == "latent" for r in results)
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
        return Verdict("fail", first.category, message, first.hint, gpu_unverified, latent, probes)
    errors = [r for r in results if r.status == "error"]
    if errors:
        first = errors[0]
        return Verdict(
            "error",
            first.category,
            f"{first.probe} probe: {first.message}",
            first.hint,
            gpu_unverified,
            latent,
            probes,
        )
    return Verdict("pass", None, "", "", gpu_unverified, latent, probes)


def _resummarise_strict(results: list[ProbeResult]) -> list[ProbeResult]:
    """Under strict, a per-file probe whose findings now fail fails its closing result too."""
    first_fail: dict[str, str | None] = {}
    for x in results:
        if x.status == "fail":
            first_fail.setdefault(x.probe, x.category)
    return [
        dataclasses.replace(r, status="fail", category=first_fail[r.probe])
        if r.probe in first_fail and _closing(r, "pass")
        else r
        for r in results
    ]


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
