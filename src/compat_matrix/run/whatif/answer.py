"""The answer: each package's version now and after, and whether it breaks, blocks or moves."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from compat_matrix.build.install_errors import InstallFailure
from compat_matrix.probe.verdicts import CATEGORY_PRIORITY, EXIT_FAILED, EXIT_INFRA, EXIT_OK
from compat_matrix.reports import ReportPaths
from compat_matrix.results import CellResult, ProbeResult
from compat_matrix.run.hints import HintContext, check_text
from compat_matrix.run.whatif.resolve import _TOOLING, ResolveAttempt, _Pin
from compat_matrix.run.whatif.upgrade import Upgrade

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


PackageStatus = Literal[
    "breaks",  # installs, but a probe fails that passes now
    "blocks",  # its pin makes the upgrade impossible, even after relaxing it
    "must-change",  # its current version blocks the upgrade; this version would not
    "still-broken",  # fails now and after
    "fixed",  # fails now, passes after
    "upgraded",
    "downgraded",
    "added",
    "removed",
    "unchanged",
    "unknown",  # the upgraded environment could not be built: no version to compare
]

#: Problem statuses, most urgent first (the order of the summary).
_PROBLEMS: tuple[str, ...] = ("breaks", "blocks", "must-change", "still-broken")


# --- probing ------------------------------------------------------------------------------------


def _owner(finding: ProbeResult, modules: Mapping[str, str]) -> str | None:
    """The distribution a failing finding belongs to, from the probe's evidence or the path."""
    details = finding.details
    for key in ("failing_distribution", "distribution"):
        if isinstance(details.get(key), str) and details[key]:
            return canonicalize_name(details[key])
    owner = details.get("owner")
    if isinstance(owner, str) and owner and not owner.startswith("the "):
        return canonicalize_name(owner.split()[0])
    head = re.split(r"[/.]", finding.target, maxsplit=1)[0]
    return modules.get(head)


def _failures_by_package(
    result: CellResult, top_level: Mapping[str, Sequence[str]]
) -> dict[str, list[ProbeResult]]:
    modules = {module: dist for dist, names in top_level.items() for module in names}
    rank = {category: index for index, category in enumerate(CATEGORY_PRIORITY)}
    out: dict[str, list[ProbeResult]] = {}
    for finding in result.probes:
        if finding.status != "fail":
            continue
        owner = _owner(finding, modules)
        if owner is not None:
            out.setdefault(owner, []).append(finding)
    for findings in out.values():
        # The most specific cause first; among equals the failed import, what a user sees.
        findings.sort(key=lambda f: (rank.get(f.category or "", len(rank)), f.probe != "import"))
    return out


# --- the result ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageChange:
    """One package: its version now and after the upgrade, and what that does to it."""

    name: str
    current: str | None
    upgraded: str | None
    status: PackageStatus
    requested: bool = False
    #: The cause's own verdict: `unsupported` (no distribution for the new set), `conflict`
    #: (declared requirements exclude it), `fail` (a probe found a break), `pass` (fixed).
    verdict: str | None = None
    category: str | None = None
    reason: str = ""
    hint: str = ""


@dataclass
class WhatIfResult:
    """Both environments' verdicts and the per-package changes of one what-if."""

    python: Path
    upgrades: tuple[Upgrade, ...]
    current: CellResult
    upgraded: CellResult
    packages: tuple[PackageChange, ...]
    attempts: tuple[ResolveAttempt, ...] = ()
    reports: ReportPaths | None = None
    notes: dict[str, str] = field(default_factory=dict)
    #: How the versions after were chosen when the upgrade needed packages to move
    #: ("smallest change: 2 packages moved, ..."); "" when nothing had to move.
    how: str = ""

    @property
    def problems(self) -> list[PackageChange]:
        """Packages that would break, block the upgrade or have to move, most urgent first."""
        rows = [p for p in self.packages if p.status in _PROBLEMS]
        return sorted(rows, key=lambda p: (_PROBLEMS.index(p.status), p.name))

    @property
    def verdict(self) -> str:
        """The answer in one sentence."""
        after = self.upgraded
        names = {
            status: [p.name for p in self.packages if p.status == status] for status in _PROBLEMS
        }
        moving = names["must-change"]
        also = f" (and {', '.join(moving)} would have to change)" if moving else ""
        if after.status == "error":
            return f"no answer, infrastructure trouble: {after.message} ({after.hint or 'retry'})"
        if after.status in ("unsupported", "conflict"):
            requested = {p.name for p in self.packages if p.requested}
            blockers = [n for n in names["blocks"] or moving if n not in requested]
            why = f"blocked by {', '.join(blockers)}" if blockers else after.message
            return f"the upgrade cannot be installed ({after.status}): {why}"
        if after.status == "fail" and names["breaks"]:
            return f"the upgrade would break {', '.join(names['breaks'])}{also}"
        if after.status == "fail" and names["still-broken"]:
            return f"{', '.join(names['still-broken'])} fail now and would still fail after it"
        if after.status == "fail":
            return f"the upgraded environment would fail ({after.category}): {after.message}"
        if moving:
            verb = "moves" if len(moving) == 1 else "move"
            return f"the upgrade works if {', '.join(moving)} {verb} as listed"
        return "the upgrade keeps everything working"

    @property
    def exit_status(self) -> int:
        """0: the upgraded set installs and passes; 1: it breaks or cannot install; 3: error."""
        if "error" in (self.current.status, self.upgraded.status):
            return EXIT_INFRA
        return EXIT_OK if self.upgraded.status == "pass" else EXIT_FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": str(self.python),
            "upgrades": [u.text for u in self.upgrades],
            "verdict": self.verdict,
            "exit_status": self.exit_status,
            "current": {"id": self.current.id, "status": self.current.status},
            "upgraded": {
                "id": self.upgraded.id,
                "status": self.upgraded.status,
                "category": self.upgraded.category,
                "message": self.upgraded.message,
            },
            "packages": [asdict(p) for p in self.packages],
            "attempts": [asdict(a) for a in self.attempts],
            "notes": dict(self.notes),
            "how": self.how,
        }


def _version_move(before: str | None, after: str | None) -> PackageStatus:
    if before is None:
        return "added"
    if after is None:
        return "removed"
    if before == after:
        return "unchanged"
    try:
        return "upgraded" if Version(after) > Version(before) else "downgraded"
    except InvalidVersion:
        return "upgraded"


def _blocked_reason(pin: _Pin, failure: InstallFailure, target_python: str, what: str) -> str:
    if failure.category == "no-distribution" and not pin.fixed:
        return f"no {what} of {pin.blocked_as} for Python {target_python}"
    return failure.message


@dataclass(frozen=True)
class _Outcome:
    """What the upgraded build came to, as `_changes` needs it."""

    after: Mapping[str, str] | None  # versions installed; None when it could not be built
    failure: InstallFailure | None  # the last resolve's failure when it could not be built
    blamed: frozenset[str]  # packages that failure names
    target_python: str
    #: "wheel" for PyPI environments (wheels only), "conda build" for conda ones.
    what: str


def _finding_text(findings: Sequence[ProbeResult]) -> str:
    first, more = findings[0], len(findings) - 1
    text = first.message
    if first.target not in text:
        text = f"{first.probe} {first.target}: {text}"
    return text + (f" (+{more} more finding{'s' if more > 1 else ''})" if more else "")


def _changes(
    before: Mapping[str, str],
    outcome: _Outcome,
    *,
    pins: Mapping[str, _Pin],
    requested: set[str],
    failing_now: Mapping[str, list[ProbeResult]],
    failing_after: Mapping[str, list[ProbeResult]],
    context: HintContext | None = None,
    resolved: Mapping[str, str] | None = None,
) -> tuple[PackageChange, ...]:
    after = outcome.after
    names = sorted((set(before) | set(after or {}) | requested) - _TOOLING)
    rows = []
    for name in names:
        now, later = before.get(name), (after or {}).get(name)
        pin = pins.get(name)
        row = PackageChange(name, now, later, "unknown", name in requested)
        if after is not None:
            row = replace(row, status=_version_move(now, later))
        if after is None and name in outcome.blamed and outcome.failure is not None:
            failure = outcome.failure
            row = replace(
                row,
                status="blocks",
                verdict=failure.status,
                category=failure.category,
                reason=failure.message,
                hint=failure.hint,
            )
        elif pin is not None and pin.blocked is not None:
            row = replace(
                row,
                status="must-change",
                verdict=pin.blocked.status,
                category=pin.blocked.category,
                reason=_blocked_reason(pin, pin.blocked, outcome.target_python, outcome.what),
            )
        if after is not None and name in failing_after:
            row = replace(
                row,
                status="still-broken" if name in failing_now else "breaks",
                verdict="fail",
                category=failing_after[name][0].category,
                reason=_finding_text(failing_after[name]),
                hint=failing_after[name][0].hint
                if context is None
                else check_text(
                    failing_after[name][0].hint,
                    resolved or {},
                    context,
                    fix=failing_after[name][0].details.get("fix"),
                ),
            )
        elif after is not None and later is not None and name in failing_now:
            row = replace(
                row,
                status="fixed",
                verdict="pass",
                category=failing_now[name][0].category,
                reason=f"fails now: {_finding_text(failing_now[name])}",
            )
        rows.append(row)
    return tuple(rows)
