"""Floors: are the project's declared lower bounds true, per Python, and if not, what is?

`compat-matrix floors` reads the direct dependencies of the local project(s) in `packages:`
(pyproject.toml's `[project] dependencies`) and, for each Python of the matrix:

1. builds one cell with every direct dependency pinned at its declared floor (the lowest
   released version its specifier admits: uv's `lowest-direct`). It passes: every floor is
   confirmed by that cell.
2. Otherwise each dependency's floor is tried alone (the others left to the resolver's
   newest): one that passes alone is confirmed; one that fails, is unsupported or conflicts
   is bisected over the released versions above it (pre-releases and yanked files left out,
   and only versions with a distribution for that Python and this platform) to the lowest
   that passes, assuming a version that passes keeps passing in later releases.
3. When a bound had to move, one more cell pins every dependency at its suggested floor, so
   the advice is checked together too.

Only the matrix's `python` axis is used: every other axis (a package axis, `cuda`, a label) is
left out of the floors cells, and the output says so in a note. The matrix's options are kept
(backend, `import:`, `only-binary`, timeouts).

Every cell is an ordinary cell of the one pipeline (run/pipeline.py): built with the matrix's
backend in the same environment folder (uv's cache: the same lock is the same environment),
probed, written to `<report dir>/floors/` and published there. The search is bounded by a
time budget and a number of bisect steps per dependency; what it did not reach is said.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from compat_matrix.build import pythons
from compat_matrix.build.package_index import IndexUnavailable, PackageIndex, Project
from compat_matrix.errors import UsageError
from compat_matrix.matrix.expand import cell_id, expand
from compat_matrix.matrix.model import Cell
from compat_matrix.probe.verdicts import EXIT_FAILED, EXIT_INFRA, EXIT_OK
from compat_matrix.results import write_atomic
from compat_matrix.run.metadata import local_projects, project_metadata, python_minor
from compat_matrix.run.pipeline import Progress, run_pipeline

if TYPE_CHECKING:
    from compat_matrix.matrix.model import Matrix
    from compat_matrix.results import CellResult
    from compat_matrix.run.pipeline import RunOptions

__all__ = [
    "DEFAULT_BUDGET_S",
    "DEFAULT_MAX_STEPS",
    "FloorsOutcome",
    "PythonFloor",
    "direct_dependencies",
    "find_floors",
    "floors_json",
    "format_floors",
]

DEFAULT_BUDGET_S = 1800.0
DEFAULT_MAX_STEPS = 8

Outcome = Literal["confirmed", "raise", "none-passes", "no-floor", "not-reached", "error"]
_WORKS = "pass"
_BROKEN = frozenset({"fail", "unsupported", "conflict"})


@dataclass(frozen=True)
class Dependency:
    """One direct dependency as declared: `six>=1.10,<2` -> name `six`, specifier `>=1.10,<2`."""

    name: str
    requirement: Requirement

    @property
    def declared(self) -> str:
        return str(self.requirement.specifier) or "(any)"


@dataclass(frozen=True)
class PythonFloor:
    """What floors found for one dependency on one Python, with the cell that shows it."""

    dependency: str
    python: str
    declared: str
    #: The declared floor's version (the lowest released version the specifier admits).
    floor: str | None
    outcome: Outcome
    #: The lowest version found to pass (the floor itself when confirmed).
    suggested: str | None = None
    #: The evidence: the cell whose verdict says so, and that verdict (`fail/import-error`).
    cell: str | None = None
    verdict: str | None = None
    #: The declared floor's own cell and verdict when the bound must move.
    floor_cell: str | None = None
    floor_verdict: str | None = None
    note: str = ""
    steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "declared": self.declared,
            "floor": self.floor,
            "outcome": self.outcome,
            "suggested": self.suggested,
            "cell": self.cell,
            "verdict": self.verdict,
            "floor_cell": self.floor_cell,
            "floor_verdict": self.floor_verdict,
            "note": self.note,
            "steps": self.steps,
        }


@dataclass(frozen=True)
class Together:
    """The check that the suggested floors pass together on one Python."""

    python: str
    cell: str
    verdict: str
    passed: bool


@dataclass
class FloorsOutcome:
    """Every dependency's floors per Python, the together-checks, and the exit status."""

    projects: list[str]
    pythons: list[str]
    results: list[PythonFloor] = field(default_factory=list)
    together: list[Together] = field(default_factory=list)
    cells: int = 0
    elapsed_s: float = 0.0
    report_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    def by_dependency(self) -> dict[str, list[PythonFloor]]:
        grouped: dict[str, list[PythonFloor]] = {}
        for result in self.results:
            grouped.setdefault(result.dependency, []).append(result)
        return grouped

    @property
    def exit_status(self) -> int:
        """1 when a bound must be raised (or no version passes, or the floors fail together),
        else 3 when something could not be judged (infrastructure, budget), else 0."""
        if any(r.outcome in ("raise", "none-passes") for r in self.results) or any(
            not t.passed for t in self.together
        ):
            return EXIT_FAILED
        if any(r.outcome in ("error", "not-reached") for r in self.results):
            return EXIT_INFRA
        return EXIT_OK


def direct_dependencies(matrix: Matrix) -> tuple[list[str], list[Dependency]]:
    """The local projects' names and their direct dependencies (`[project] dependencies`).

    A UsageError when `packages:` has no local project, or its dependencies are unreadable.
    """
    paths = local_projects(matrix)
    if not paths:
        msg = (
            f"{matrix.path}: floors tests a local project's lower bounds, but packages: names "
            'none (add packages: ["."] beside its pyproject.toml)'
        )
        raise UsageError(msg)
    names: list[str] = []
    deps: dict[str, Dependency] = {}
    for path in paths:
        meta = project_metadata(path)
        if meta is None or meta.dependencies is None:
            why = "no readable pyproject.toml" if meta is None else "its dependencies are dynamic"
            msg = f"floors cannot read the dependencies of {path}: {why}"
            raise UsageError(msg)
        names.append(meta.name)
        for text in meta.dependencies:
            try:
                parsed = Requirement(text)
            except InvalidRequirement as exc:
                msg = f"{path.name}: dependency {text!r} is not a requirement: {exc}"
                raise UsageError(msg) from None
            name = canonicalize_name(parsed.name)
            if parsed.url is None and name not in deps:
                deps[name] = Dependency(name, parsed)
    local = {canonicalize_name(name) for name in names}
    return names, [dep for name, dep in deps.items() if name not in local]


def _applies(dep: Dependency, python: str) -> bool:
    """Whether `dep`'s marker selects it on `python` (an extra-only dependency never does)."""
    marker = dep.requirement.marker
    if marker is None:
        return True
    if "extra" in str(marker):
        return False
    minor = python_minor(python) or python
    environment = {str(key): str(value) for key, value in default_environment().items()}
    environment.update(python_version=minor, python_full_version=f"{minor}.0")
    return bool(marker.evaluate(environment))


def _supported_tags(python: str) -> frozenset[Tag]:
    """The wheel tags an interpreter `python` (`3.12`, `3.13t`) on this platform installs."""
    minor = python_minor(python) or python
    major, minor_number = (int(part) for part in minor.split("."))
    interpreter = f"cp{major}{minor_number}"
    abis = [f"{interpreter}t"] if python.endswith("t") else None
    version = (major, minor_number)
    return frozenset(
        [
            *cpython_tags(version, abis=abis),
            *compatible_tags(version, interpreter=interpreter),
        ]
    )


def _installable(
    project: Project, version: Version, python: Version, tags: frozenset[Tag], *, wheels: bool
) -> bool:
    """Whether `version` has a file for `python` here (a wheel; an sdist too unless `wheels`)."""
    for release in project.files_of(version):
        if not release.admits(python):
            continue
        if not release.is_wheel:
            if not wheels:
                return True
            continue
        try:
            file_tags = parse_wheel_filename(release.filename)[3]
        except InvalidWheelFilename:
            continue
        if file_tags & tags:
            return True
    return False


def _floor(dep: Dependency, versions: Sequence[Version]) -> Version | None:
    """The lowest released final version the specifier admits, when it has a lower bound."""
    specifier = dep.requirement.specifier
    if not any(s.operator in (">=", ">", "==", "~=", "===") for s in specifier):
        return None
    admitted = [v for v in versions if not v.is_prerelease and specifier.contains(v)]
    return admitted[0] if admitted else None


def _verdict(result: CellResult) -> str:
    return f"{result.status}/{result.category}" if result.category else result.status


@dataclass
class _Search:
    """One dependency's bisection on one Python: `candidates[lo:hi]` is still open."""

    dep: Dependency
    python: str
    floor: Version
    candidates: list[Version]
    floor_cell: str
    floor_verdict: str
    lo: int = 0
    hi: int = 0
    steps: int = 0
    best: tuple[str, str] | None = None  # (cell id, verdict) of the lowest pass so far
    error: str = ""

    def __post_init__(self) -> None:
        self.hi = len(self.candidates)

    @property
    def open(self) -> bool:
        return self.lo < self.hi and not self.error

    @property
    def mid(self) -> int:
        return (self.lo + self.hi) // 2


class _Runner:
    """Runs cells through the one pipeline, each cell once, publishing every cell so far."""

    def __init__(self, matrix: Matrix, options: RunOptions) -> None:
        self.matrix = replace(
            matrix, axes={}, include=(), exclude=(), expect=(), labels=(), cuda_table=None
        )
        self.options = options
        self.results: dict[str, CellResult] = {}
        self.cells: dict[str, Cell] = {}

    def cell(self, axes: dict[str, str]) -> Cell:
        identifier = "floors-" + cell_id(axes)
        return self.cells.get(identifier) or Cell(id=identifier, axes=axes)

    def run(self, cells: Sequence[Cell]) -> None:
        fresh: dict[str, Cell] = {}
        for cell in cells:
            if cell.id not in self.results:
                fresh[cell.id] = cell
        if not fresh:
            return
        self.cells.update(fresh)
        with Progress(len(fresh), live=False) as progress:
            outcome = run_pipeline(
                self.matrix,
                list(fresh.values()),
                self.options,
                report_cells=list(self.cells.values()),
                progress=progress,
                check_metadata_truth=False,
            )
        for result in outcome.results:
            self.results.setdefault(result.id, result)


def find_floors(
    matrix: Matrix,
    options: RunOptions,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    max_steps: int = DEFAULT_MAX_STEPS,
    index: PackageIndex | None = None,
) -> FloorsOutcome:
    """Test the declared floors of the local project's direct dependencies (module doc)."""
    started = time.monotonic()
    deadline = started + budget_s
    names, deps = direct_dependencies(matrix)
    python_axes = list(
        dict.fromkeys(c.axes["python"] for c in expand(matrix) if "python" in c.axes)
    )
    if not python_axes:
        msg = f"{matrix.path}: floors needs a python axis (the Pythons to test the floors on)"
        raise UsageError(msg)
    outcome = FloorsOutcome(projects=names, pythons=python_axes, report_dir=options.report_dir)
    others = [name for name in matrix.axes if name != "python"]
    if others:
        outcome.notes.append(
            f"the matrix's other axes ({', '.join(others)}) are not used: each floors cell "
            "has only python and the pins floors chose (the rest resolves to the newest)"
        )
    index = index or PackageIndex()
    projects: dict[str, Project] = {}
    for dep in deps:
        try:
            found = index.project(dep.name)
        except IndexUnavailable as exc:
            msg = f"the package index could not list {dep.name}'s releases: {exc}"
            raise UsageError(msg) from None
        if found is None:
            msg = f"{dep.name} (a dependency of {', '.join(names)}) is not on the package index"
            raise UsageError(msg)
        projects[dep.name] = found
    runner = _Runner(matrix, options)
    interpreters = pythons.discover()

    # 1. every floor at once, per Python
    plans: dict[str, dict[str, Version]] = {}
    for python in python_axes:
        pinned: dict[str, Version] = {}
        for dep in deps:
            if not _applies(dep, python):
                continue
            floor = _floor(dep, projects[dep.name].versions())
            if floor is None:
                outcome.results.append(
                    PythonFloor(
                        dep.name,
                        python,
                        dep.declared,
                        None,
                        "no-floor",
                        note="no lower bound declared (or no release admits it): not tested",
                    )
                )
                continue
            pinned[dep.name] = floor
        plans[python] = pinned
    all_floors = {
        python: runner.cell({"python": python, **{n: str(v) for n, v in pinned.items()}})
        for python, pinned in plans.items()
        if pinned
    }
    runner.run(list(all_floors.values()))

    # 2. each floor alone where the floors fail together
    alone: dict[tuple[str, str], Cell] = {}
    for python, cell in all_floors.items():
        result = runner.results[cell.id]
        pinned = plans[python]
        for name, floor in pinned.items():
            if result.status == _WORKS or result.status not in _BROKEN:
                continue
            alone[python, name] = (
                cell if len(pinned) == 1 else runner.cell({"python": python, name: str(floor)})
            )
    if time.monotonic() < deadline:
        runner.run(list(alone.values()))

    searches: list[_Search] = []
    dep_by_name = {dep.name: dep for dep in deps}
    for python, cell in all_floors.items():
        result = runner.results[cell.id]
        for name, floor in plans[python].items():
            dep = dep_by_name[name]
            base = PythonFloor(name, python, dep.declared, str(floor), "confirmed")
            if result.status == _WORKS:
                outcome.results.append(
                    replace(base, suggested=str(floor), cell=cell.id, verdict=_verdict(result))
                )
                continue
            if result.status not in _BROKEN:
                outcome.results.append(
                    replace(
                        base,
                        outcome="not-reached" if result.status == "skip" else "error",
                        cell=cell.id,
                        verdict=_verdict(result),
                        note=f"the floors cell could not be judged: {result.message[:200]}",
                    )
                )
                continue
            own = alone[python, name]
            own_result = runner.results.get(own.id)
            if own_result is None:
                outcome.results.append(
                    replace(base, outcome="not-reached", note="the time budget ran out")
                )
            elif own_result.status == _WORKS:
                outcome.results.append(
                    replace(
                        base,
                        suggested=str(floor),
                        cell=own.id,
                        verdict=_verdict(own_result),
                        note="passes alone (the other dependencies at their newest)",
                    )
                )
            elif own_result.status not in _BROKEN:
                outcome.results.append(
                    replace(
                        base,
                        outcome="error",
                        cell=own.id,
                        verdict=_verdict(own_result),
                        note=f"could not be judged: {own_result.message[:200]}",
                    )
                )
            else:
                searches.append(
                    _Search(
                        dep,
                        python,
                        floor,
                        _candidates(
                            dep,
                            projects[name],
                            floor,
                            python,
                            interpreters,
                            wheels=matrix.only_binary,
                        ),
                        own.id,
                        _verdict(own_result),
                    )
                )

    # 3. bisect, every open search one step per round (cells of a round run in parallel)
    while any(s.open and s.steps < max_steps for s in searches):
        if time.monotonic() >= deadline:
            break
        round_cells = {
            id(s): runner.cell({"python": s.python, s.dep.name: str(s.candidates[s.mid])})
            for s in searches
            if s.open and s.steps < max_steps
        }
        runner.run(list(round_cells.values()))
        for search in searches:
            if id(search) not in round_cells:
                continue
            cell = round_cells[id(search)]
            result = runner.results[cell.id]
            search.steps += 1
            if result.status == _WORKS:
                search.best = (cell.id, _verdict(result))
                search.hi = search.mid
            elif result.status in _BROKEN:
                search.lo = search.mid + 1
            else:
                search.error = f"{cell.id}: {_verdict(result)} {result.message[:200]}"
    for search in searches:
        outcome.results.append(_searched(search))

    # 4. the suggested floors together, where a bound moved; where none moved but the floors
    # failed together (each passes alone), the all-floors cell itself is the finding
    moved = {r.python for r in outcome.results if r.outcome == "raise"}
    for python, cell in all_floors.items():
        result = runner.results[cell.id]
        alone_ok = all(
            r.outcome == "confirmed" for r in outcome.results if r.python == python and r.floor
        )
        if python not in moved and result.status in _BROKEN and alone_ok:
            outcome.together.append(Together(python, cell.id, _verdict(result), passed=False))
    together: dict[str, Cell] = {}
    for python in sorted(moved, key=python_axes.index):
        axes = {"python": python}
        for floor_result in outcome.results:
            if floor_result.python == python and floor_result.suggested is not None:
                axes[floor_result.dependency] = floor_result.suggested
        together[python] = runner.cell(axes)
    if together and time.monotonic() < deadline:
        runner.run(list(together.values()))
        for python, cell in together.items():
            result = runner.results[cell.id]
            outcome.together.append(
                Together(python, cell.id, _verdict(result), result.status == _WORKS)
            )
    elif together:
        outcome.notes.append("the suggested floors were not checked together: budget spent")
    if time.monotonic() >= deadline:
        outcome.notes.append(f"the time budget ({budget_s:.0f} s) ran out")
    order = {dep.name: i for i, dep in enumerate(deps)}
    outcome.results.sort(key=lambda r: (order.get(r.dependency, 0), python_axes.index(r.python)))
    outcome.cells = len(runner.results)
    outcome.elapsed_s = time.monotonic() - started
    return outcome


def _candidates(
    dep: Dependency,
    project: Project,
    floor: Version,
    python: str,
    interpreters: Sequence[pythons.Interpreter],
    *,
    wheels: bool,
) -> list[Version]:
    """Released final versions above `floor` the specifier admits, installable on `python`."""
    found = pythons.select(interpreters, python)
    full = Version(found.version) if found is not None else Version(f"{python_minor(python)}.0")
    tags = _supported_tags(python)
    return [
        version
        for version in project.versions()
        if version > floor
        and not version.is_prerelease
        and dep.requirement.specifier.contains(version)
        and _installable(project, version, full, tags, wheels=wheels)
    ]


def _searched(search: _Search) -> PythonFloor:
    base = PythonFloor(
        search.dep.name,
        search.python,
        search.dep.declared,
        str(search.floor),
        "raise",
        floor_cell=search.floor_cell,
        floor_verdict=search.floor_verdict,
        steps=search.steps,
    )
    if search.best is not None and search.lo >= search.hi:
        cell, verdict = search.best
        return replace(
            base, suggested=str(search.candidates[search.hi]), cell=cell, verdict=verdict
        )
    if search.error:
        return replace(
            base, outcome="error", note=f"a bisect cell could not be judged: {search.error}"
        )
    if not search.candidates:
        return replace(
            base,
            outcome="none-passes",
            note="no later release the specifier admits has a distribution for this Python",
        )
    if search.lo >= search.hi:
        return replace(
            base,
            outcome="none-passes",
            note=f"no release up to {search.candidates[-1]} passes (tried {search.steps})",
        )
    low = search.candidates[search.lo]
    high = search.candidates[search.hi] if search.hi < len(search.candidates) else None
    where = f"between {low} and {high}" if high is not None else f"at or above {low}"
    return replace(
        base,
        outcome="not-reached",
        note=f"bisect stopped after {search.steps} steps (cap or budget): the floor is {where}",
    )


def advice(results: Sequence[PythonFloor]) -> tuple[str | None, str]:
    """One `>=` bound for a dependency across Pythons (the highest), and a note when they differ."""
    suggested = [Version(r.suggested) for r in results if r.suggested is not None]
    if not suggested:
        return None, ""
    top = max(suggested)
    distinct = {r.python: r.suggested for r in results if r.suggested is not None}
    note = ""
    if len(set(distinct.values())) > 1:
        per = ", ".join(f"{python}: >={version}" for python, version in distinct.items())
        note = f"the highest over Pythons ({per}); no environment markers suggested"
    return str(top), note


def format_floors(outcome: FloorsOutcome) -> str:
    """The terminal report: one line per dependency, then one per Python where it matters."""
    lines = [
        f"floors of {', '.join(outcome.projects)} on Python {', '.join(outcome.pythons)}: "
        f"{outcome.cells} cell{'s' if outcome.cells != 1 else ''} in {outcome.elapsed_s:.0f} s"
    ]
    for name, results in outcome.by_dependency().items():
        suggested, note = advice(results)
        declared = results[0].declared
        if all(r.outcome == "confirmed" for r in results):
            head = f"  {name}{declared}: confirmed"
        elif suggested is not None and any(r.outcome == "raise" for r in results):
            head = f"  {name}>={suggested}: raise (declared {declared})"
        else:
            head = f"  {name}{declared}: {', '.join(sorted({r.outcome for r in results}))}"
        lines.append(head + (f"  [{note}]" if note else ""))
        for r in results:
            evidence = f" {r.cell} ({r.verdict})" if r.cell else ""
            floor = f"; floor {r.floor}: {r.floor_cell} ({r.floor_verdict})" if r.floor_cell else ""
            extra = f"; {r.note}" if r.note else ""
            shown = f">={r.suggested}" if r.suggested else (r.floor or "-")
            lines.append(f"    py{r.python}: {r.outcome} {shown} evidence{evidence}{floor}{extra}")
    for check in outcome.together:
        word = "pass" if check.passed else "FAIL: the floors do not work together"
        lines.append(f"  together on py{check.python}: {word} {check.cell} ({check.verdict})")
    lines.extend(f"  note: {note}" for note in outcome.notes)
    if outcome.report_dir is not None:
        lines.append(f"report: {outcome.report_dir}")
    lines.append(f"exit status {outcome.exit_status}")
    return "\n".join(lines) + "\n"


def floors_json(outcome: FloorsOutcome) -> str:
    """The `--json` document (also written as floors.json beside the floors report)."""
    dependencies = []
    for name, results in outcome.by_dependency().items():
        suggested, note = advice(results)
        dependencies.append(
            {
                "name": name,
                "declared": results[0].declared,
                "suggested": f">={suggested}" if suggested else None,
                "confirmed": all(r.outcome == "confirmed" for r in results),
                "note": note,
                "pythons": [r.to_dict() for r in results],
            }
        )
    document = {
        "schema": 1,
        "projects": outcome.projects,
        "pythons": outcome.pythons,
        "dependencies": dependencies,
        "together": [
            {"python": t.python, "cell": t.cell, "verdict": t.verdict, "pass": t.passed}
            for t in outcome.together
        ],
        "not_reached": [
            f"{r.dependency} on {r.python}: {r.note}"
            for r in outcome.results
            if r.outcome == "not-reached"
        ],
        "notes": outcome.notes,
        "cells": outcome.cells,
        "elapsed_s": round(outcome.elapsed_s, 1),
        "exit_status": outcome.exit_status,
    }
    return json.dumps(document, indent=2) + "\n"


def write_floors_json(outcome: FloorsOutcome) -> Path | None:
    """floors.json in the floors report folder (None when there is no folder)."""
    if outcome.report_dir is None:
        return None
    path = outcome.report_dir / "floors.json"
    write_atomic(path, floors_json(outcome))
    return path
