"""Axis values -> installer requirement strings.

An axis value is a version (means ``==``), a PEP 440 specifier, ``none`` (not installed), a local
path (``./``, ``../``; relative to the matrix file) or a URL. This module is the one place that
knows those kinds, so validation, ids and installation agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = [
    "NOT_PACKAGES",
    "ValueKind",
    "local_project_name",
    "requirement",
    "requirements_for",
    "source_built",
    "value_kind",
]

ValueKind = Literal["none", "version", "specifier", "path", "url", "invalid"]

#: Axis keys that are not distributions.
NOT_PACKAGES = frozenset({"python", "cuda"})

_URL = re.compile(r"^(?:https?|file|git\+[a-z]+|hg\+[a-z]+|svn\+[a-z]+|bzr\+[a-z]+)://", re.I)


def value_kind(value: str) -> ValueKind:
    """Classify one distribution axis value."""
    if value == "none":
        return "none"
    if value in (".", "..") or value.startswith(("./", "../")):
        return "path"
    if _URL.match(value):
        return "url"
    try:
        Version(value)
    except InvalidVersion:
        pass
    else:
        return "version"
    try:
        specifiers = SpecifierSet(value)
    except InvalidSpecifier:
        return "invalid"
    return "specifier" if len(specifiers) else "invalid"


def requirement(name: str, value: str, base_dir: Path) -> str | None:
    """The requirement string for `name` at `value`; None when the axis says `none`."""
    kind = value_kind(value)
    if kind == "none":
        return None
    if kind == "version":
        return f"{name}=={value}"
    if kind == "specifier":
        return f"{name}{value}"
    if kind == "path":
        return f"{name} @ {(base_dir / value).resolve().as_uri()}"
    if kind == "url":
        return f"{name} @ {value}"
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


def requirements_for(packages: dict[str, str], extra: tuple[str, ...], base_dir: Path) -> list[str]:
    """Requirements of a cell: its axis distributions, then the matrix's `packages:`.

    `extra` entries are either plain requirement strings or local paths (already absolute
    or relative to `base_dir`), installed after the axes as the project under test.
    """
    out = [
        req
        for name, value in packages.items()
        if name not in NOT_PACKAGES and (req := requirement(name, value, base_dir)) is not None
    ]
    for item in extra:
        if _is_path(item):
            path = (base_dir / item).resolve()
            name = local_project_name(path)
            out.append(f"{name} @ {path.as_uri()}" if name else str(path))
        else:
            out.append(item)
    return out


def source_built(packages: dict[str, str], extra: tuple[str, ...], base_dir: Path) -> list[str]:
    """Names of the direct references (paths, URLs): they are built even in wheels-only cells."""
    names = [
        name
        for name, value in packages.items()
        if name not in NOT_PACKAGES and value_kind(value) in ("path", "url")
    ]
    for item in extra:
        if _is_path(item):
            name = local_project_name((base_dir / item).resolve())
            if name:
                names.append(name)
        elif " @ " in item:
            names.append(item.split(" @ ", 1)[0].strip())
    return names
