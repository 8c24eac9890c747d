"""The smallest change: fewest packages moved, then the fewest releases away, not the newest.

When the pins of what is installed block an upgrade, the resolve-and-relax loop (`resolve`)
finds the blockers and lets the installer pick their versions, and an installer picks the
newest. A maintainer asked "what is the least I must change?" wants the opposite: move as few
packages as possible, each to the release nearest its current one. So the candidates of each
blocker are the releases with a wheel for the target interpreter (read from the index):
upgrades first, nearest first, then downgrades; combinations are tried in order of
(packages moved, total distance) with a resolve (`uv pip compile` with every other pin kept),
and the first few that resolve are handed back to be built and probed. The search is bounded:
at most `MAX_CANDIDATES` releases per package and `MAX_RESOLVES` resolves, and it says when a
cap cut it short.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging import tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from compat_matrix.build.backends import resolve
from compat_matrix.build.package_index import IndexUnavailable, PackageIndex, Project
from compat_matrix.run.whatif.resolve import _KEPT, _Pin

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from compat_matrix.build import pythons
    from compat_matrix.build.backends import EnvRequest

__all__ = ["MAX_CANDIDATES", "MAX_RESOLVES", "Candidate", "Search", "smallest_changes"]

#: Releases considered per moved package (the nearest ones).
MAX_CANDIDATES = 12
#: Combinations one subset of moved packages may enumerate (sorted before resolving).
MAX_COMBINATIONS = 5000
#: Resolves one search may run (each about a second with uv's cache warm).
MAX_RESOLVES = 24


@dataclass(frozen=True)
class Candidate:
    """One combination that resolves: the version each moved package goes to.

    (Inside the search a distance is negative for a downgrade, so upgrades sort first.)
    """

    versions: dict[str, str]
    #: Total releases between the installed versions and these.
    distance: int


@dataclass
class Search:
    """What the search did, for the report: how many resolves, and whether a cap was hit."""

    resolves: int = 0
    combinations: int = 0
    capped: str = ""
    #: Some package had more candidate releases than `MAX_CANDIDATES` (the farther ones left out).
    truncated: bool = False
    #: Packages whose installed release has no wheel for the target: they must move.
    forced: tuple[str, ...] = ()

    def how(self, candidate: Candidate, target_python: str, *, probed: bool) -> str:
        """ "smallest change: 2 packages moved, the oldest versions that ... and pass"."""
        moved = len(candidate.versions)
        plural = "s" if moved != 1 else ""
        verified = "resolve and pass the probes" if probed else "resolve"
        text = (
            f"smallest change: {moved} package{plural} moved "
            f"({', '.join(f'{n} {v}' for n, v in sorted(candidate.versions.items()))}), "
            f"the releases nearest the installed ones that have a wheel for Python "
            f"{target_python} and {verified} with every other package kept, "
            f"not the newest ({candidate.distance} release"
            f"{'s' if candidate.distance != 1 else ''} away in all; "
            f"{self.resolves} resolve{'s' if self.resolves != 1 else ''} tried)"
        )
        return text + (f"; {self.capped}" if self.capped else "")

    def cap_note(self) -> str:
        """Why the search may have missed a smaller change ("" when it saw everything)."""
        notes = [self.capped] if self.capped else []
        if self.truncated:
            notes.append(f"only the {MAX_CANDIDATES} nearest releases of each package tried")
        return "; ".join(notes)


def target_tags(interpreter: pythons.Interpreter) -> frozenset[tags.Tag]:
    """The wheel tags the target interpreter installs, on this machine's platform."""
    major, minor = interpreter.version_info[:2]
    abi = f"cp{major}{minor}{'t' if interpreter.free_threaded else ''}"
    found = list(tags.cpython_tags(python_version=(major, minor), abis=[abi, "abi3", "none"]))
    found += tags.compatible_tags(python_version=(major, minor), interpreter=f"cp{major}{minor}")
    return frozenset(found)


def _installable(
    project: Project, version: Version, wanted: frozenset[tags.Tag], py: Version
) -> bool:
    for file in project.files_of(version):
        if not file.is_wheel or not file.admits(py):
            continue
        try:
            if wanted & parse_wheel_filename(file.filename)[3]:
                return True
        except InvalidWheelFilename:
            continue
    return False


def _candidates(
    project: Project, current: str, wanted: frozenset[tags.Tag], py: Version
) -> tuple[list[tuple[Version, int]], bool]:
    """(releases with a wheel for the target, each with its distance in releases, negative for
    a downgrade; whether `current` has one)."""
    releases = [v for v in project.versions() if not v.is_prerelease and not v.is_devrelease]
    try:
        now = Version(current)
    except InvalidVersion:
        return [], False
    ordered = sorted({*releases, now})
    here = ordered.index(now)
    found = []
    for position, version in enumerate(ordered):
        if version != now and _installable(project, version, wanted, py):
            found.append((version, abs(position - here), position < here))
    # Upgrades first (an upgrade is what the question asks for), nearest first, then downgrades.
    found.sort(key=lambda item: (item[2], item[1]))
    return [(v, d if not below else -d) for v, d, below in found], now in releases and _installable(
        project, now, wanted, py
    )


def smallest_changes(
    pins: dict[str, _Pin],
    make_request: Callable[[dict[str, _Pin]], EnvRequest],
    interpreter: pythons.Interpreter,
    *,
    index: PackageIndex,
    deadline: float,
    search: Search,
) -> Iterator[Candidate]:
    """Combinations that resolve, smallest first: the fewest of the relaxed pins moved, then
    the fewest releases away. `pins` are the resolve loop's, the relaxed ones being the
    blockers; `search` records what was tried."""
    movable = sorted(p.name for p in pins.values() if p.level != _KEPT and not p.fixed)
    if not movable:
        return
    wanted = target_tags(interpreter)
    py = Version(".".join(str(p) for p in interpreter.version_info))
    options: dict[str, list[tuple[Version, int]]] = {}
    forced: list[str] = []
    for name in movable:
        try:
            project = index.project(name)
        except IndexUnavailable:
            return
        if project is None:
            return
        found, current_ok = _candidates(project, pins[name].current, wanted, py)
        if len(found) > MAX_CANDIDATES:
            search.truncated = True
        options[name] = found[:MAX_CANDIDATES]
        if not current_ok:
            forced.append(name)
    search.forced = tuple(forced)
    optional = [n for n in movable if n not in forced]
    for size in range(len(optional) + 1):
        for extra in itertools.combinations(optional, size):
            moved = [*forced, *extra]
            # Few enough combinations to sort: the nearest releases of each when many moved.
            width = max(2, int(MAX_COMBINATIONS ** (1 / max(len(moved), 1))))
            if any(len(options[n]) > width for n in moved):
                search.truncated = True
            combos = sorted(
                itertools.product(*(options[n][:width] for n in moved)),
                key=lambda combo: (sum(d < 0 for _, d in combo), sum(abs(d) for _, d in combo)),
            )
            for combo in combos:
                search.combinations += 1
                if search.resolves >= MAX_RESOLVES:
                    search.capped = f"stopped after {MAX_RESOLVES} resolves"
                    return
                if time.monotonic() >= deadline:
                    search.capped = "stopped: out of time"
                    return
                versions = {n: str(v) for n, (v, _) in zip(moved, combo)}
                trial = _pinned(pins, versions)
                search.resolves += 1
                request = make_request(trial)
                outcome = resolve(
                    request.requirements, request, timeout=min(120.0, deadline - time.monotonic())
                )
                if outcome.ok:
                    yield Candidate(versions, sum(abs(d) for _, d in combo))


def _pinned(pins: dict[str, _Pin], versions: dict[str, str]) -> dict[str, _Pin]:
    """`pins` with `versions` chosen and every other relaxed pin back at its current version."""
    out = {}
    for name, pin in pins.items():
        if name in versions:
            out[name] = _Pin(name, pin.current, chosen=versions[name])
        elif pin.level != _KEPT and not pin.fixed:
            out[name] = _Pin(name, pin.current)
        else:
            out[name] = pin
    return out


def pinned(pins: dict[str, _Pin], candidate: Candidate) -> dict[str, _Pin]:
    """The pins that build `candidate` (the relaxed pins keep their `blocked` record)."""
    out = _pinned(pins, candidate.versions)
    for name in candidate.versions:
        out[name].blocked = pins[name].blocked
        out[name].blocked_as = pins[name].blocked_as
    return out
