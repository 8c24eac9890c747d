"""Which release broke last night's cell: the two locks diffed, the changes reverted, re-run.

A nightly cell that regressed against its baseline resolved other versions than the night
before (its `resolved` lock). Each package that moved is a suspect. The cell is re-run through
the one pipeline with suspects pinned back to their baseline versions (an extra axis per pin,
so the re-run is an ordinary cell): one at a time when at most `ONE_AT_A_TIME` moved, else
bisected (revert half; keep the half whose revert restores the baseline verdict). A suspect whose
revert alone restores the verdict is the culprit, named with the date its new release was
uploaded (the index's `upload-time`). The matrix's local projects (`packages: ["."]`) are the
code under test, never suspects: a new version of one is said in the search's note. The search
is bounded by a budget in seconds: when it runs out, the finding says it stopped and what it
tried. Re-runs go to `<report>/.culprit/` (hidden: CI artifact uploads skip it), never over the
night's own cell files.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from compat_matrix.build.package_index import IndexUnavailable, PackageIndex
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.model import RESERVED_AXES, Cell
from compat_matrix.reports.baseline import BaselineDiff, CulpritFinding, LockChange
from compat_matrix.run.metadata import local_projects, project_metadata
from compat_matrix.run.pipeline import RunOptions, run_pipeline

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from compat_matrix.matrix.model import Matrix
    from compat_matrix.results import CellResult

__all__ = [
    "DEFAULT_BUDGET_S",
    "ONE_AT_A_TIME",
    "find_culprits",
    "local_names",
    "lock_changes",
]

#: Seconds the whole search may take by default (every regressed cell together).
DEFAULT_BUDGET_S = 1800.0
#: Up to this many moved packages are reverted one at a time; more are bisected.
ONE_AT_A_TIME = 4
#: A re-run is not started with less time than this left.
_MIN_RERUN_S = 1.0
#: Never suspects: installer tooling that moves every night and breaks nothing it installs.
_TOOLING = frozenset({"pip", "setuptools", "wheel"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def lock_changes(
    before: Mapping[str, str],
    after: Mapping[str, str],
    index: PackageIndex | None = None,
    *,
    exclude: Collection[str] = (),
) -> list[LockChange]:
    """Packages in both locks whose versions differ, by name, with the new release's date;
    `exclude`: canonical names that are never suspects (the projects under test)."""
    old = {canonicalize_name(k): v for k, v in before.items()}
    changes = []
    for name, version in sorted(after.items()):
        key = canonicalize_name(name)
        if key in _TOOLING or key == "python" or key not in old or old[key] == version:
            continue
        if key in exclude:
            continue
        changes.append(LockChange(key, old[key], version, _released(index, key, version)))
    return changes


def local_names(matrix: Matrix) -> frozenset[str]:
    """The canonical names of the matrix's local projects (the code under test)."""
    names = set()
    for path in local_projects(matrix):
        meta = project_metadata(path)
        names.add(canonicalize_name(meta.name if meta is not None else path.name))
    return frozenset(names)


def _released(index: PackageIndex | None, name: str, version: str) -> str:
    if index is None:
        return ""
    try:
        project = index.project(name)
        return project.release_date(Version(version)) if project is not None else ""
    except (IndexUnavailable, InvalidVersion):
        return ""


@dataclass
class _Search:
    """One cell's search: the re-runs so far, and the budget they share with other cells."""

    matrix: Matrix
    cell: Cell
    baseline_status: str
    options: RunOptions
    deadline: float
    tried: list[str] = field(default_factory=list)
    stopped: str = ""

    def restores(self, reverted: Sequence[LockChange]) -> bool | None:
        """Whether the cell gets its baseline verdict back with `reverted` pinned back; None
        when it could not tell (out of budget, or the re-run had no verdict)."""
        left = self.deadline - time.monotonic()
        what = ", ".join(f"{c.name} {c.after} → {c.before}" for c in reverted)
        if left < _MIN_RERUN_S:
            self.stopped = "the culprit budget was spent"
            return None
        axes = dict(self.cell.axes)
        for change in reverted:
            key = next((k for k in axes if canonicalize_name(k) == change.name), change.name)
            if key in RESERVED_AXES:
                continue
            axes[key] = change.before
        label = "-".join(f"{c.name}{c.before}" for c in reverted)
        cell_id = _UNSAFE.sub("_", f"{self.cell.id}-revert-{label}")[:200]
        cell = Cell(cell_id, axes, self.cell.labels)
        matrix = replace(self.matrix, timeout=min(self.matrix.timeout, left))
        outcome = run_pipeline(matrix, [cell], self.options)
        result = outcome.results[0] if outcome.results else None
        status = result.status if result is not None else "error"
        self.tried.append(f"reverted {what}: {status}")
        if status in ("error", "skip"):
            if time.monotonic() >= self.deadline:
                self.stopped = "the culprit budget was spent"
            return None
        return status == self.baseline_status

    def finding(
        self,
        changed: Sequence[LockChange],
        culprits: Sequence[LockChange] = (),
        *,
        together: bool = False,
    ) -> CulpritFinding:
        stopped = self.stopped
        if stopped and self.tried:
            stopped += f" after {len(self.tried)} re-run{'s' if len(self.tried) != 1 else ''}"
        elif stopped:
            stopped += " before any re-run"
        return CulpritFinding(
            cell=self.cell.id,
            changed=tuple(changed),
            culprits=tuple(culprits),
            together=together,
            tried=tuple(self.tried),
            stopped=stopped,
        )


def _one_at_a_time(search: _Search, changed: Sequence[LockChange]) -> CulpritFinding:
    culprits = []
    for change in changed:
        outcome = search.restores([change])
        if outcome:
            culprits.append(change)
        if search.stopped:
            return search.finding(changed, culprits)
    if not culprits and len(changed) > 1 and search.restores(changed):
        return search.finding(changed, changed, together=True)
    return search.finding(changed, culprits)


def _bisect(search: _Search, changed: Sequence[LockChange]) -> CulpritFinding:
    suspects = list(changed)
    while len(suspects) > 1:
        half, rest = suspects[: len(suspects) // 2], suspects[len(suspects) // 2 :]
        if search.restores(half):
            suspects = half
        elif not search.stopped and search.restores(rest):
            suspects = rest
        elif search.stopped:
            return search.finding(changed)
        else:  # neither half alone: the change needs packages from both halves
            together = search.restores(suspects) is True
            return search.finding(changed, suspects if together else (), together=together)
    if len(suspects) == len(changed) and not search.restores(suspects):
        return search.finding(changed)
    return search.finding(changed, suspects)


def find_culprits(
    matrix: Matrix,
    diff: BaselineDiff,
    baseline: Sequence[CellResult],
    current: Sequence[CellResult],
    *,
    report_dir: Path,
    env_root: Path,
    budget_s: float = DEFAULT_BUDGET_S,
    index: PackageIndex | None = None,
) -> BaselineDiff:
    """`diff` with the culprit of each regression whose two locks are known.

    Re-runs `matrix`'s cells (by id) with moved packages reverted, reporting into
    `report_dir/.culprit`; every cell's search shares `budget_s` seconds.
    """
    deadline = time.monotonic() + budget_s
    before = {r.id: r for r in baseline}
    now = {r.id: r for r in current}
    cells = {cell.id: cell for cell in expand(matrix)}
    options = RunOptions(
        matrix=matrix.path, report_dir=report_dir / ".culprit", env_root=env_root, jobs=1
    )
    found: dict[str, CulpritFinding] = {}
    notes: list[str] = []
    local = local_names(matrix)
    for change in diff.regressions:
        old, new, cell = before.get(change.id), now.get(change.id), cells.get(change.id)
        if old is None or new is None:
            continue
        if cell is None:
            notes.append(f"{change.id} is not in {matrix.path.name}: not re-run")
            continue
        if not old.resolved or not new.resolved:
            found[change.id] = CulpritFinding(
                change.id, stopped="no lock to compare (the cell did not install on one side)"
            )
            continue
        changed = lock_changes(old.resolved, new.resolved, index, exclude=local)
        own = [
            c for c in lock_changes(old.resolved, new.resolved) if c.name in local
        ]  # the project under test moved too: said, never reverted
        for moved in own:
            note = f"{moved.name} {moved.before} → {moved.after} is the project under test: "
            note += "not a suspect"
            if note not in notes:
                notes.append(note)
        search = _Search(matrix, cell, old.status, options, deadline)
        if not changed:
            why = "no package moved between the two locks"
            if own:
                why = (
                    "only the project under test moved ("
                    + ", ".join(c.text() for c in own)
                    + "): the regression is in its own changes"
                )
            found[change.id] = CulpritFinding(change.id, stopped=why)
            continue
        found[change.id] = (
            _one_at_a_time(search, changed)
            if len(changed) <= ONE_AT_A_TIME
            else _bisect(search, changed)
        )
    spent = budget_s - max(deadline - time.monotonic(), 0.0)
    notes.insert(0, f"{len(found)} regressed cells searched in {spent:.0f} s of {budget_s:.0f} s")
    return replace(diff, culprits=found, culprit_note="; ".join(notes))
