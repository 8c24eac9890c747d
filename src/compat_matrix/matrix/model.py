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
    "PRERELEASES",
    "PROBES",
    "RESERVED_AXES",
    "RESOLUTIONS",
    "STATUSES",
    "Backend",
    "Cell",
    "Expectation",
    "Matrix",
    "Prerelease",
    "Resolution",
    "Selection",
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

#: uv's `--resolution` strategies: the newest versions (default), the lowest versions of the
#: direct requirements (the declared floors) and newest of the rest, or lowest of everything.
Resolution = Literal["highest", "lowest-direct", "lowest"]
RESOLUTIONS: tuple[Resolution, ...] = ("highest", "lowest-direct", "lowest")

#: uv's `--prerelease` choices a matrix may name (uv's default, when unset, is
#: `if-necessary-or-explicit`: what pip does too).
Prerelease = Literal["allow", "if-necessary", "disallow"]
PRERELEASES: tuple[Prerelease, ...] = ("allow", "if-necessary", "disallow")

#: Axes that are neither distributions nor labels: the interpreter, the CUDA toolkit, the
#: GitHub runner label a cell runs on, the GPU its CUDA device code is judged against, and how
#: the installer picks versions (strategy, the day it installs as of, pre-releases).
RESERVED_AXES: tuple[str, ...] = (
    "python",
    "cuda",
    "os",
    "gpu",
    "resolution",
    "as-of",
    "prerelease",
)


@dataclass(frozen=True)
class Selection:
    """How a cell's installer picks versions: the matrix's keys, overridden by its axes."""

    resolution: Resolution = "highest"
    #: `as-of: YYYY-MM-DD`: only files uploaded by the end of that day (UTC) count.
    as_of: str | None = None
    #: `prerelease:`; None leaves the installer's default.
    prerelease: Prerelease | None = None

    @property
    def is_default(self) -> bool:
        return self == Selection()


#: Probe names, in the order they run inside a cell: the static ELF/ABI pass first (it explains
#: what the later loads and imports run into), then dlopen of every library, then imports, then
#: the CUDA runtime against the driver, then the environment's consistency. gpu-arch reads the
#: device code's architectures (static, no GPU needed) right after the ELF pass.
PROBES: tuple[str, ...] = ("abi", "gpu-arch", "native", "import", "cuda", "consistency")


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
    #: `gpus:` GPUs (names or sm_XY) every cell's device code is checked against, unless the
    #: cell has a `gpu` axis value.
    gpus: tuple[str, ...] = ()
    #: `resolution:`, `as-of:` and `prerelease:` at the top level (an axis value overrides).
    selection: Selection = field(default_factory=Selection)
    #: `index-url:` the index that replaces PyPI (None: the installer's default).
    index_url: str | None = None
    #: `extra-index-url:` indexes searched besides it (e.g. nightly wheels), in order.
    extra_index_urls: tuple[str, ...] = ()

    @property
    def base_dir(self) -> Path:
        """Directory that relative paths in the file are resolved against."""
        return self.path.parent

    def selection_for(self, cell: Cell) -> Selection:
        """The cell's selection: its `resolution`/`as-of`/`prerelease` axes over the matrix's."""
        axes = cell.axes
        resolution = axes.get("resolution", self.selection.resolution)
        prerelease = axes.get("prerelease", self.selection.prerelease)
        return Selection(
            resolution=next((r for r in RESOLUTIONS if r == resolution), "highest"),
            as_of=axes.get("as-of", self.selection.as_of),
            prerelease=next((p for p in PRERELEASES if p == prerelease), None),
        )


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
