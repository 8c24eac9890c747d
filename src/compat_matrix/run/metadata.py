"""Metadata truth: does the project's own metadata say what its verdicts say?

A project's `Requires-Python` and `Programming Language :: Python :: X.Y` classifiers are what
installers and readers trust; the matrix measures the truth. This check finds where they part:

- `Requires-Python` admits a Python whose cells all fail, are unsupported or conflict;
- the matrix tests a Python that `Requires-Python` excludes;
- an `X.Y` classifier claims such a Python, or a Python whose cells pass has no classifier
  (only when the project lists any `X.Y` classifier: a project that lists none is not
  told to start);
- a cell's running interpreter is not the Python its `python` axis asked for (a job that
  silently ran another Python).

The metadata comes from the local project(s) in `packages:` (pyproject.toml's `[project]`).
Where `requires-python` or `classifiers` is `dynamic` (the build backend computes it), it is
read from the project's METADATA as built and installed in a cell's environment; when no such
environment is found the check says it was skipped, and why.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from compat_matrix.matrix.model import Matrix
from compat_matrix.reports.metadata_truth import FindingKind, MetadataFinding
from compat_matrix.results import CellResult

__all__ = ["ProjectMetadata", "check_metadata", "project_metadata", "python_minor"]

#: Where an environment keeps installed distributions' metadata (POSIX venv/conda, Windows).
_DIST_INFO = (
    "lib/python*/site-packages/*.dist-info/METADATA",
    "Lib/site-packages/*.dist-info/METADATA",
)
_CLASSIFIER = re.compile(r"^Programming Language :: Python :: (\d+\.\d+)$")
#: Verdicts that say the project does not work on a Python (no cell of it passes).
_BROKEN = frozenset({"fail", "unsupported", "conflict"})


@dataclass(frozen=True)
class ProjectMetadata:
    """What a local project declares about Pythons, read from its pyproject.toml."""

    name: str
    path: Path
    #: `requires-python` ("" when absent); None when it cannot be read (dynamic, no table).
    requires_python: str | None
    #: The `X.Y` of each `Programming Language :: Python :: X.Y` classifier; None: unreadable.
    classifier_pythons: tuple[str, ...] | None
    #: Why a field could not be read (dynamic, no [project] table), one note each.
    skipped: tuple[str, ...] = ()
    #: `[project] dependencies` as written (floors reads them); None when dynamic.
    dependencies: tuple[str, ...] | None = ()
    #: The `dynamic` fields among requires-python and classifiers (the build computes them).
    dynamic: frozenset[str] = frozenset()


def _toml() -> Any:
    """tomllib from 3.11; before it tomli (which nox, a dependency, requires there). Imported
    when a pyproject is read: with the email parser, 10 ms of every command's start-up."""
    return importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")


def _is_path(item: str) -> bool:
    return item in (".", "..") or item.startswith(("./", "../", "/"))


def project_metadata(path: Path) -> ProjectMetadata | None:
    """The metadata of the local project at `path`; None when it has no readable pyproject."""
    try:
        document = _toml().loads((path / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable, not UTF-8, not TOML (TOMLDecodeError)
        return None
    if not isinstance(document, dict):
        return None
    project = document.get("project")
    if not isinstance(project, dict):
        return ProjectMetadata(
            name=path.name,
            path=path,
            requires_python=None,
            classifier_pythons=None,
            skipped=(
                f"{path.name}: pyproject.toml has no [project] table (metadata set by "
                "setup.py or another tool): metadata check skipped",
            ),
            dependencies=None,
        )
    name = str(project.get("name") or path.name)
    dynamic = {str(item) for item in project.get("dynamic") or ()}
    requires: str | None = str(project.get("requires-python") or "")
    if "requires-python" in dynamic:
        requires = None
    classifiers: tuple[str, ...] | None = _classifier_pythons(project.get("classifiers") or ())
    if "classifiers" in dynamic:
        classifiers = None
    dependencies: tuple[str, ...] | None = tuple(
        str(item) for item in project.get("dependencies") or ()
    )
    if "dependencies" in dynamic:
        dependencies = None
    return ProjectMetadata(
        name,
        path,
        requires,
        classifiers,
        dependencies=dependencies,
        dynamic=frozenset(dynamic & {"requires-python", "classifiers"}),
    )


def _classifier_pythons(classifiers: Iterable[object]) -> tuple[str, ...]:
    return tuple(
        match.group(1) for item in classifiers if (match := _CLASSIFIER.match(str(item).strip()))
    )


def built_metadata(
    name: str, env_root: Path, cell_ids: Iterable[str]
) -> tuple[Path, str, tuple[str, ...]] | None:
    """The installed METADATA of project `name` in a cell's environment (built from its
    sources by the cell): its path, Requires-Python and classifier Pythons; None if none."""
    wanted = canonicalize_name(name)
    for cell_id in cell_ids:
        env = env_root / cell_id
        for pattern in _DIST_INFO:
            for path in sorted(env.glob(pattern)):
                dist = path.parent.name[: -len(".dist-info")].rsplit("-", 1)[0]
                if canonicalize_name(dist) != wanted:
                    continue
                from email.parser import Parser  # noqa: PLC0415 - see _toml

                try:
                    message = Parser().parsestr(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError):
                    continue
                requires = str(message.get("Requires-Python") or "")
                return path, requires, _classifier_pythons(message.get_all("Classifier") or ())
    return None


def _with_built(
    meta: ProjectMetadata, env_root: Path | None, results: Sequence[CellResult]
) -> ProjectMetadata:
    """`meta` with its dynamic fields read from a cell's installed copy, or skipped notes."""
    if not meta.dynamic:
        return meta
    ids = [r.id for r in results if r.status == "pass"] + [
        r.id for r in results if r.status != "pass"
    ]
    found = built_metadata(meta.name, env_root, ids) if env_root is not None else None
    if found is not None:
        _, requires, classifiers = found
        return replace(
            meta,
            requires_python=requires if "requires-python" in meta.dynamic else meta.requires_python,
            classifier_pythons=classifiers
            if "classifiers" in meta.dynamic
            else meta.classifier_pythons,
        )
    why = (
        "is dynamic (computed by the build backend) and no cell environment holding the built "
        "project was found to read its METADATA from: check skipped"
    )
    notes = tuple(f"{meta.name}: {field} {why}" for field in sorted(meta.dynamic))
    return replace(meta, skipped=meta.skipped + notes)


def local_projects(matrix: Matrix) -> list[Path]:
    """The local project folders in the matrix's `packages:` (the projects under test)."""
    return [(matrix.base_dir / item).resolve() for item in matrix.packages if _is_path(item)]


@lru_cache(maxsize=1024)
def python_minor(axis: str) -> str | None:
    """`3.12`, `3.12.4`, `3.13t` -> `3.12`, `3.12`, `3.13`; None for anything else. Cached: a
    10,000-cell report asks it twice a cell, of the few Pythons of its matrix."""
    match = re.match(r"^(\d+)\.(\d+)(?:\.\d+)?t?$", axis.strip())
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _admits(requires_python: str, python: str) -> bool | None:
    """Whether `requires_python` admits `python` (a full or X.Y version); None: unreadable."""
    try:
        return SpecifierSet(requires_python).contains(Version(python), prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return None


def _interpreter_mismatch(result: CellResult) -> MetadataFinding | None:
    axis = result.axes.get("python", "")
    ran = result.python.version if result.python is not None else ""
    wanted = axis.rstrip("t")
    if not axis or not ran or python_minor(axis) is None:
        return None
    if ran == wanted or ran.startswith(wanted + "."):
        return None
    return MetadataFinding(
        kind="interpreter-mismatch",
        project="",
        python=axis,
        message=f"cell {result.id} asked for Python {axis} but its interpreter reported {ran}: "
        "the verdict is about another Python",
        cells=(result.id,),
    )


def _finding(
    kind: FindingKind, project: str, python: str, message: str, cells: Sequence[str]
) -> MetadataFinding:
    return MetadataFinding(kind, project, python, message, tuple(cells))


def _project_findings(
    meta: ProjectMetadata, by_python: dict[str, list[CellResult]]
) -> list[MetadataFinding]:
    findings = [_finding("skipped", meta.name, "", note, ()) for note in meta.skipped]
    for python, cells in by_python.items():
        ids = [cell.id for cell in cells]
        judged = [cell for cell in cells if cell.status in _BROKEN or cell.status == "pass"]
        passing = [cell.id for cell in judged if cell.status == "pass"]
        broken = bool(judged) and not passing
        statuses = ", ".join(sorted({cell.status for cell in judged}))
        if meta.requires_python:
            ran = next((c.python.version for c in cells if c.python and c.python.version), "")
            admits = _admits(meta.requires_python, ran or f"{python}.0")
            if admits is None:
                findings.append(
                    _finding(
                        "skipped",
                        meta.name,
                        python,
                        f"{meta.name}: requires-python {meta.requires_python!r} is not a "
                        "valid specifier: check skipped",
                        (),
                    )
                )
            elif admits and broken:
                findings.append(
                    _finding(
                        "requires-python-broken",
                        meta.name,
                        python,
                        f"{meta.name}: Requires-Python {meta.requires_python} admits Python "
                        f"{python}, but no {python} cell passes ({statuses}): raise it or fix "
                        f"{python}",
                        [cell.id for cell in judged],
                    )
                )
            elif not admits:
                findings.append(
                    _finding(
                        "outside-requires-python",
                        meta.name,
                        python,
                        f"{meta.name}: the matrix tests Python {python}, which Requires-Python "
                        f"{meta.requires_python} excludes: drop it from the matrix or widen "
                        "Requires-Python",
                        ids,
                    )
                )
        if meta.classifier_pythons:
            if python in meta.classifier_pythons and broken:
                findings.append(
                    _finding(
                        "classifier-broken",
                        meta.name,
                        python,
                        f"{meta.name}: classifier 'Programming Language :: Python :: {python}' "
                        f"claims Python {python}, but no {python} cell passes ({statuses})",
                        [cell.id for cell in judged],
                    )
                )
            elif python not in meta.classifier_pythons and passing:
                findings.append(
                    _finding(
                        "classifier-missing",
                        meta.name,
                        python,
                        f"{meta.name}: Python {python} passes, but no 'Programming Language :: "
                        f"Python :: {python}' classifier says so",
                        passing,
                    )
                )
    return findings


def check_metadata(
    matrix: Matrix | None, results: Sequence[CellResult], env_root: Path | None = None
) -> list[MetadataFinding] | None:
    """Every finding for `results` against the local projects of `matrix` (see the module doc).

    The interpreter check needs no project; the metadata checks need a local project in
    `packages:` (`matrix` None: `report` without `--matrix`, only the interpreter check).
    None when there was nothing to check (no local project, no python axis)
    and no interpreter ran the wrong Python: the reports then have no metadata section.
    A `dynamic` requires-python or classifiers is read from the project's installed METADATA
    in a cell environment under `env_root` (the build's own answer), else skipped.
    """
    findings = [f for f in map(_interpreter_mismatch, results) if f is not None]
    by_python: dict[str, list[CellResult]] = {}
    for result in results:
        minor = python_minor(result.axes.get("python", ""))
        if minor is not None:
            by_python.setdefault(minor, []).append(result)
    projects = local_projects(matrix) if matrix is not None else []
    if not by_python or not projects:
        return findings or None
    ordered = dict(sorted(by_python.items(), key=lambda item: Version(item[0])))
    for path in projects:
        meta = project_metadata(path)
        if meta is None:
            note = f"{path.name}: no readable pyproject.toml: metadata check skipped"
            findings.insert(0, _finding("skipped", path.name, "", note, ()))
            continue
        findings[:0] = _project_findings(_with_built(meta, env_root, results), ordered)
    return findings
