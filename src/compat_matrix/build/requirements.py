"""Axis values -> installer requirement strings (pip/uv) and conda MatchSpecs (micromamba).

An axis value is a version (means ``==``), a PEP 440 specifier, ``none`` (not installed), a local
path (``./``, ``../``; relative to the matrix file) or a URL. This module is the one place that
knows those kinds, so validation, ids and installation agree.

In a micromamba cell every distribution is a conda spec, solved in one go, except the ones the
matrix's ``pip:`` list names and every direct reference (a path or URL, which conda cannot
install): those are installed with pip afterwards, in the same environment.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import Specifier
from packaging.utils import canonicalize_name

from compat_matrix.matrix.model import RESERVED_AXES, ValueKind, value_kind

__all__ = [
    "NOT_PACKAGES",
    "CondaRequirements",
    "ValueKind",
    "Variant",
    "conda_python_specs",
    "conda_requirements",
    "conda_spec",
    "is_wheel",
    "local_names",
    "local_project_name",
    "local_sources",
    "package_names",
    "requirement",
    "requirements_for",
    "source_built",
    "value_kind",
    "via_pip",
]

#: Axis keys that are not distributions (labels, per matrix, are not either: see `Cell.packages`).
NOT_PACKAGES = frozenset(RESERVED_AXES)


@dataclass(frozen=True)
class Variant:
    """Which build of an axis distribution a cell installs (chosen by the CUDA table).

    `name` replaces the distribution (cupy -> cupy-cuda12x, torch -> pytorch on conda-forge),
    `extras` are added to a pip requirement (jax[cuda12]), `build` is a conda build-string
    pattern (pytorch=*=cuda*).
    """

    name: str | None = None
    extras: tuple[str, ...] = ()
    build: str | None = None


def requirement(
    name: str, value: str, base_dir: Path, *, extras: Collection[str] = ()
) -> str | None:
    """The requirement string for `name` at `value`; None when the axis says `none`."""
    kind = value_kind(value)
    if kind == "none":
        return None
    target = f"{name}[{','.join(extras)}]" if extras else name
    if kind == "version":
        return f"{target}=={value}"
    if kind == "specifier":
        return f"{target}{value}"
    if kind == "path":
        return f"{target} @ {(base_dir / value).resolve().as_uri()}"
    if kind == "url":
        return f"{target} @ {value}"
    msg = f"{name}: {value!r} is not a version, specifier, path or URL"
    raise ValueError(msg)


_PROJECT_NAME = re.compile(r"^\[project\][^\[]*?^name\s*=\s*[\"']([^\"']+)[\"']", re.M | re.S)


def _is_path(item: str) -> bool:
    return item in (".", "..") or item.startswith(("./", "../", "/"))


def local_project_name(path: Path) -> str | None:
    """`[project].name` of a local project, so it can be named (and built) explicitly."""
    try:
        text = (path / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    match = _PROJECT_NAME.search(text)
    return match.group(1) if match else None


def requirements_for(
    packages: dict[str, str],
    extra: tuple[str, ...],
    base_dir: Path,
    variants: Mapping[str, Variant] | None = None,
) -> list[str]:
    """Requirements of a cell: its axis distributions, then the matrix's `packages:`.

    `extra` entries are either plain requirement strings or local paths (already absolute
    or relative to `base_dir`), installed after the axes as the project under test.
    `variants` (by axis name) rename a distribution or add extras, as the CUDA axis asks.
    """
    out = []
    for name, value in packages.items():
        if name in NOT_PACKAGES:
            continue
        variant = (variants or {}).get(name, Variant())
        req = requirement(variant.name or name, value, base_dir, extras=variant.extras)
        if req is not None:
            out.append(req)
    for item in extra:
        out.append(_extra_requirement(item, base_dir))
    return out


def _extra_requirement(item: str, base_dir: Path) -> str:
    if _is_path(item):
        path = (base_dir / item).resolve()
        name = local_project_name(path)
        return f"{name} @ {path.as_uri()}" if name else str(path)
    return item


# -- conda (micromamba cells) --------------------------------------------------------------------


def _conda_version(value: str) -> str:
    """A PEP 440 axis value as a conda version constraint (`2.2.6` -> `==2.2.6`).

    conda reads `~=`, `!=`, `<`, `>=`, `,` like PEP 440; `==2.*` becomes conda's `2.*`.
    """
    if value_kind(value) == "version":
        return f"=={value}"
    clauses = []
    for clause in value.split(","):
        spec = Specifier(clause.strip())
        if spec.operator in ("==", "===") and spec.version.endswith(".*"):
            clauses.append(spec.version)
        elif spec.operator == "===":
            clauses.append(f"=={spec.version}")
        else:
            clauses.append(str(spec))
    return ",".join(clauses)


def conda_spec(name: str, value: str, build: str | None = None) -> str | None:
    """The conda MatchSpec for `name` at a version/specifier axis `value`; None for `none`.

    With a build-string pattern the spec takes conda's "name version build" form (the form
    of repodata's `depends`, which every conda solver reads): `pytorch ==2.5.1 cuda*`.
    """
    kind = value_kind(value)
    if kind == "none":
        return None
    if kind not in ("version", "specifier"):
        msg = f"{name}: {value!r} is not a version or specifier (conda installs no paths or URLs)"
        raise ValueError(msg)
    version = _conda_version(value)
    if build:
        return f"{name} {version} {build}"
    return f"{name}{version}" if version[0] in "<>=!~" else f"{name} {version}"


def conda_python_specs(python: str | None) -> list[str]:
    """conda specs for a matrix `python` value: `python=3.12`, `python==3.12.4`, `3.13t`.

    A free-threaded request (`3.13t`) adds conda-forge's `python-freethreading` metapackage,
    which selects the `cp313t` build of the interpreter.
    """
    if not python:
        return ["python"]
    free_threaded = python.endswith("t")
    version = python[:-1] if free_threaded else python
    spec = f"python=={version}" if version.count(".") >= 2 else f"python={version}"
    return [spec, "python-freethreading"] if free_threaded else [spec]


@dataclass(frozen=True)
class CondaRequirements:
    """A micromamba cell's installs: one conda solve, then pip for what conda cannot do."""

    conda: tuple[str, ...]
    pip: tuple[str, ...]
    #: Names pip builds from source even in wheels-only cells (local projects, URLs).
    build_from_source: tuple[str, ...]


def via_pip(name: str, value: str, pip: Collection[str]) -> bool:
    """Whether a micromamba cell installs axis distribution `name` with pip, not conda."""
    wanted = {canonicalize_name(item) for item in pip}
    return canonicalize_name(name) in wanted or value_kind(value) in ("path", "url")


def _needs_pip(item: str, pip: Collection[str]) -> bool:
    """Whether a `packages:` entry must go to pip: listed in `pip:`, a path, URL, extras, marker."""
    if _is_path(item) or " @ " in item or "://" in item:
        return True
    try:
        parsed = Requirement(item)
    except InvalidRequirement:
        return True
    return bool(
        canonicalize_name(parsed.name) in pip or parsed.extras or parsed.marker or parsed.url
    )


def conda_requirements(
    packages: dict[str, str],
    extra: tuple[str, ...],
    base_dir: Path,
    *,
    pip: Collection[str] = (),
    variants: Mapping[str, Variant] | None = None,
) -> CondaRequirements:
    """Split a micromamba cell's distributions into conda specs and pip requirements.

    An axis distribution is a conda spec unless `pip` (the matrix's `pip:` names) names it or
    its value is a path or URL. A `packages:` entry is a conda spec when it is a plain name and
    specifier that `pip` does not name. `variants` (by axis name) are the builds the CUDA axis
    chose: conda ones for conda specs, PyPI ones for what pip installs (`via_pip` says which).
    """
    wanted = {canonicalize_name(name) for name in pip}
    conda: list[str] = []
    by_pip: dict[str, str] = {}
    for name, value in packages.items():
        if name in NOT_PACKAGES or value_kind(value) == "none":
            continue
        if via_pip(name, value, wanted):
            by_pip[name] = value
            continue
        variant = (variants or {}).get(name, Variant())
        spec = conda_spec(variant.name or name, value, variant.build)
        if spec is not None:
            conda.append(spec)
    pip_requirements = requirements_for(by_pip, (), base_dir, variants)
    pip_extra = []
    for item in extra:
        if _needs_pip(item, wanted):
            pip_requirements.append(_extra_requirement(item, base_dir))
            pip_extra.append(item)
        else:
            conda.append(_conda_from_requirement(item))
    return CondaRequirements(
        conda=tuple(conda),
        pip=tuple(pip_requirements),
        build_from_source=tuple(source_built(by_pip, tuple(pip_extra), base_dir)),
    )


def _conda_from_requirement(item: str) -> str:
    parsed = Requirement(item)
    if not parsed.specifier:
        return parsed.name
    return conda_spec(parsed.name, str(parsed.specifier)) or parsed.name


def is_wheel(reference: str) -> bool:
    """Whether a direct reference (a path or URL) names a wheel file: nothing to build."""
    return reference.split("#", 1)[0].split("?", 1)[0].rstrip("/").lower().endswith(".whl")


def source_built(packages: dict[str, str], extra: tuple[str, ...], base_dir: Path) -> list[str]:
    """Names of the direct references (paths, URLs): they are built even in wheels-only cells.

    A reference to a wheel is left out: it is a binary already, and exempting it from
    `--only-binary` is what uv refuses ("points to a wheel which conflicts with --no-binary").
    """
    names = [
        name
        for name, value in packages.items()
        if name not in NOT_PACKAGES and value_kind(value) in ("path", "url") and not is_wheel(value)
    ]
    for item in extra:
        if _is_path(item):
            name = local_project_name((base_dir / item).resolve())
            if name:
                names.append(name)
        elif " @ " in item:
            name, reference = (part.strip() for part in item.split(" @ ", 1))
            if not is_wheel(reference.split(";", 1)[0].strip()):
                names.append(name)
    return names


# -- the project under test ----------------------------------------------------------------------


def package_names(extra: tuple[str, ...], base_dir: Path) -> list[str]:
    """Distribution names of the `packages:` entries: the project(s) under test.

    They are import targets like the axis distributions, so a maintainer's own package is
    imported in every cell. A local path without a readable `[project].name` is left out.
    """
    names: list[str] = []
    for item in extra:
        if _is_path(item):
            name = local_project_name((base_dir / item).resolve())
        elif " @ " in item:
            name = item.split(" @ ", 1)[0].strip()
        else:
            try:
                name = Requirement(item).name
            except InvalidRequirement:
                name = None
        if name and name not in names:
            names.append(name)
    return names


def local_sources(packages: dict[str, str], extra: tuple[str, ...], base_dir: Path) -> list[Path]:
    """The local project folders a cell installs (axis paths and `packages:` paths)."""
    paths = [
        (base_dir / value).resolve()
        for name, value in packages.items()
        if name not in NOT_PACKAGES and value_kind(value) == "path"
    ]
    paths += [(base_dir / item).resolve() for item in extra if _is_path(item)]
    return paths


def local_names(packages: dict[str, str], extra: tuple[str, ...], base_dir: Path) -> list[str]:
    """Names of the local projects a cell installs: the installer rebuilds these every time."""
    names = [
        name
        for name, value in packages.items()
        if name not in NOT_PACKAGES and value_kind(value) == "path"
    ]
    for item in extra:
        if _is_path(item):
            name = local_project_name((base_dir / item).resolve())
            if name:
                names.append(name)
    return names
