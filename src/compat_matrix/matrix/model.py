"""The matrix file's model: plain, immutable data resolved once from YAML.

Loading and validation live in `matrix_file.py`; expansion into cells in `expansion.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = [
    "BACKENDS",
    "PROBES",
    "RESERVED_AXES",
    "STATUSES",
    "Backend",
    "Cell",
    "Expectation",
    "Matrix",
    "Status",
    "ValueKind",
    "value_kind",
]

ValueKind = Literal["none", "version", "specifier", "path", "url", "invalid"]

_URL = re.compile(r"^(?:https?|file|git\+[a-z]+|hg\+[a-z]+|svn\+[a-z]+|bzr\+[a-z]+)://", re.I)


def value_kind(value: str) -> ValueKind:
    """Classify one distribution axis value: a version, a specifier, a local path, a URL, none."""
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


Backend = Literal["uv", "venv", "conda", "micromamba"]
BACKENDS: tuple[Backend, ...] = ("uv", "venv", "conda", "micromamba")

Status = Literal["pass", "fail", "unsupported", "conflict", "skip", "error"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "unsupported", "conflict", "skip", "error")

#: Axes that are neither distributions nor labels: the interpreter, the CUDA toolkit and the
#: GitHub runner label a cell runs on.
RESERVED_AXES: tuple[str, ...] = ("python", "cuda", "os")

#: Probe names, in the order they run inside a cell: the static ELF/ABI pass first (it explains
#: what the later loads and imports run into), then dlopen of every library, then imports, then
#: the CUDA runtime against the driver, then the environment's consistency.
PROBES: tuple[str, ...] = ("abi", "native", "import", "cuda", "consistency")


@dataclass(frozen=True)
class Expectation:
    """`expect:` entry: cells whose axes contain every pair of `match` should end in `status`."""

    match: dict[str, str]
    status: Status
    reason: str = ""

    def matches(self, axes: dict[str, str]) -> bool:
        return all(axes.get(key) == value for key, value in self.match.items())


@dataclass(frozen=True)
class Matrix:
    """A validated matrix file. Every axis value is a string, exactly as written (quoted)."""

    path: Path
    name: str
    backend: Backend = "uv"
    timeout: float = 900.0
    #: Installed in every cell after the axis packages; local paths already made absolute.
    packages: tuple[str, ...] = ()
    #: The `matrix:` vectors (not include/exclude), in declaration order.
    axes: dict[str, list[str]] = field(default_factory=dict)
    include: tuple[dict[str, str], ...] = ()
    exclude: tuple[dict[str, str], ...] = ()
    #: `import:` targets; None means the top-level modules of each axis distribution.
    imports: tuple[str, ...] | None = None
    expect: tuple[Expectation, ...] = ()
    #: `only-binary:` wheels only (default). False lets the installer build sdists.
    only_binary: bool = True
    #: `strict:` latent findings (on files the imports never load) fail the cell too.
    strict: bool = False
    #: `probes:` switched on, in run order.
    probes: tuple[str, ...] = PROBES
    #: `channels:` for conda/micromamba cells, in priority order.
    channels: tuple[str, ...] = ("conda-forge",)
    #: `pip:` distributions that conda/micromamba cells install with pip after the conda solve.
    pip: tuple[str, ...] = ()
    #: `cuda-table:` a user's CUDA table extending the built-in one (absolute path).
    cuda_table: Path | None = None
    #: `labels:` keys that name, group and route cells and install nothing.
    labels: tuple[str, ...] = ()

    @property
    def base_dir(self) -> Path:
        """Directory that relative paths in the file are resolved against."""
        return self.path.parent


@dataclass(frozen=True)
class Cell:
    """One job of the expanded matrix: its id and its axis values in declaration order."""

    id: str
    axes: dict[str, str]
    #: The matrix's `labels:` keys (whether or not this cell has them).
    labels: frozenset[str] = frozenset()

    @property
    def python(self) -> str | None:
        return self.axes.get("python")

    @property
    def os(self) -> str | None:
        """The GitHub runner label this cell runs on (`os` axis), if the matrix routes it."""
        return self.axes.get("os")

    @property
    def packages(self) -> dict[str, str]:
        """Axis entries that name distributions: not python, cuda, os, nor a label."""
        return {
            k: v for k, v in self.axes.items() if k not in RESERVED_AXES and k not in self.labels
        }
