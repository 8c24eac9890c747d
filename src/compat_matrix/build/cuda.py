"""The CUDA axis: from a matrix's `cuda:` value to what each backend installs, by data.

`cuda_table.yml` (shipped beside this module, extensible per matrix with `cuda-table:`) maps an
axis value to conda specs (`cuda-version=12.4`) and PyPI runtime wheels (`nvidia-*-cu12`), and
each framework to the build that matches it (`pytorch ... cuda*`, `jax[cuda12]`,
`cupy-cuda12x`, torch's CUDA index; `none` means CPU builds). This module only reads the
table and applies it to one cell, so supporting a new CUDA release is a data change.

A cell needs a GPU exactly when its `cuda` axis is set and not `none`; on a runner without a
driver such a cell still solves (`CONDA_OVERRIDE_CUDA`) and installs, and its GPU checks are
skipped ("GPU unverified").
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from packaging.utils import canonicalize_name

from compat_matrix.build.requirements import NOT_PACKAGES, Variant, value_kind, via_pip
from compat_matrix.errors import MatrixError

__all__ = [
    "BUILTIN_TABLE",
    "CudaPlan",
    "CudaTable",
    "FrameworkEntry",
    "VersionEntry",
    "builtin_table",
    "cuda_resolved",
    "load_cuda_table",
    "needs_gpu",
    "parse_cuda_table",
    "plan_cell",
    "table_for",
]

#: File name of the built-in table, a data file of this package.
BUILTIN_TABLE = "cuda_table.yml"

Installer = Literal["conda", "pypi"]
_INSTALLERS: tuple[Installer, ...] = ("conda", "pypi")
_TOP_KEYS = ("cuda", "frameworks")
_VERSION_KEYS = ("conda", "pypi")
_ENTRY_KEYS = ("name", "extras", "build", "specs", "index", "unsupported")
_VARIABLES = ("version", "major", "minor", "tag")


def needs_gpu(axes: Mapping[str, str]) -> bool:
    """Whether a cell needs a GPU to be verified: its `cuda` axis is set and not `none`."""
    return axes.get("cuda", "none") != "none"


@dataclass(frozen=True)
class VersionEntry:
    """`cuda.<key>`: what a CUDA version adds to a cell, per installer."""

    conda: tuple[str, ...] = ()
    pypi: tuple[str, ...] = ()


@dataclass(frozen=True)
class FrameworkEntry:
    """`frameworks.<dist>.<installer>.<key>`: the build of one framework for one CUDA value."""

    name: str | None = None
    extras: tuple[str, ...] = ()
    build: str | None = None
    specs: tuple[str, ...] = ()
    index: str | None = None
    unsupported: str | None = None


@dataclass(frozen=True)
class CudaTable:
    """The CUDA table: version entries and framework entries, merged from its sources."""

    cuda: dict[str, VersionEntry] = field(default_factory=dict)
    #: canonical distribution name -> installer -> key -> entry
    frameworks: dict[str, dict[str, dict[str, FrameworkEntry]]] = field(default_factory=dict)
    #: The files it was read from, built-in first.
    sources: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        """A hash of the table's content: part of a cell's fingerprint (`--resume`)."""
        payload = {
            "cuda": {key: asdict(entry) for key, entry in sorted(self.cuda.items())},
            "frameworks": {
                name: {
                    installer: {key: asdict(entry) for key, entry in sorted(entries.items())}
                    for installer, entries in sorted(by_installer.items())
                }
                for name, by_installer in sorted(self.frameworks.items())
            },
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def merged(self, other: CudaTable) -> CudaTable:
        """This table with `other`'s entries replacing its own, entry by entry."""
        frameworks = {
            name: {installer: dict(entries) for installer, entries in by_installer.items()}
            for name, by_installer in self.frameworks.items()
        }
        for name, by_installer in other.frameworks.items():
            for installer, entries in by_installer.items():
                frameworks.setdefault(name, {}).setdefault(installer, {}).update(entries)
        return CudaTable(
            cuda={**self.cuda, **other.cuda},
            frameworks=frameworks,
            sources=self.sources + other.sources,
        )

    def version_entry(self, value: str) -> VersionEntry | None:
        """The entry for axis value `value`: exact, then its major, then `cuda`."""
        for key in _keys(value):
            if key in self.cuda:
                return self.cuda[key]
        return None

    def framework(self, name: str, installer: Installer) -> dict[str, FrameworkEntry] | None:
        """The framework's entries for `installer`, or None when the table does not list it."""
        return self.frameworks.get(canonicalize_name(name), {}).get(installer) or None


def _keys(value: str) -> list[str]:
    """Lookup keys for an axis value, most specific first."""
    if value == "none":
        return ["none"]
    return [value, value.split(".", 1)[0], "cuda"]


def _variables(value: str) -> dict[str, str]:
    if value == "none":
        return {"version": "", "major": "", "minor": "", "tag": "cpu"}
    major, _, minor = value.partition(".")
    return {
        "version": value,
        "major": major,
        "minor": minor,
        "tag": "cu" + value.replace(".", ""),
    }


def _fill(text: str, variables: Mapping[str, str]) -> str:
    return text.format_map(variables)


# -- the plan for one cell -----------------------------------------------------------------------


@dataclass(frozen=True)
class CudaPlan:
    """What the `cuda` axis changes in one cell (nothing when the matrix has no `cuda` axis)."""

    cuda: str | None = None
    #: Environment variables for the installer (CONDA_OVERRIDE_CUDA in conda cells).
    env: dict[str, str] = field(default_factory=dict)
    #: Added to the conda solve (micromamba cells).
    conda_specs: tuple[str, ...] = ()
    #: Added to the pip/uv install (the runtime wheels; frameworks' extra requirements).
    pip_requirements: tuple[str, ...] = ()
    #: Extra package indexes a framework's builds come from.
    index_urls: tuple[str, ...] = ()
    #: The build each CUDA-aware axis distribution takes, by axis name.
    variants: dict[str, Variant] = field(default_factory=dict)
    #: Why no build exists for this combination: the cell is `unsupported`.
    unsupported: str = ""
    #: The table cannot answer (no entry for this CUDA version): the cell is an `error`.
    problem: str = ""

    @property
    def needs_gpu(self) -> bool:
        return self.cuda is not None and self.cuda != "none"


def plan_cell(
    table: CudaTable,
    axes: Mapping[str, str],
    *,
    conda: bool,
    pip: Collection[str] = (),
) -> CudaPlan:
    """Apply the table to a cell's axes: micromamba cells when `conda`, else uv/venv cells.

    In a micromamba cell, distributions named in `pip` (or given as paths/URLs) take their
    PyPI entry, the others their conda entry; the version's PyPI runtime wheels are left to
    the frameworks that pip installs (conda's `cuda-version` already pins the toolkit).
    """
    cuda = axes.get("cuda")
    if cuda is None:
        return CudaPlan()
    entry = table.version_entry(cuda)
    if entry is None:
        return CudaPlan(
            cuda=cuda,
            problem=(
                f"the CUDA table has no entry for cuda {cuda!r} (nor for CUDA "
                f"{cuda.split('.', 1)[0]}): add one in a `cuda-table:` file"
            ),
        )
    variables = _variables(cuda)
    conda_specs = [_fill(spec, variables) for spec in entry.conda] if conda else []
    pip_requirements = [] if conda else [_fill(req, variables) for req in entry.pypi]
    index_urls: list[str] = []
    variants: dict[str, Variant] = {}
    unsupported: list[str] = []
    for name, value in axes.items():
        if name in NOT_PACKAGES or value_kind(value) == "none":
            continue
        installer: Installer = "pypi" if not conda or via_pip(name, value, pip) else "conda"
        entries = table.framework(name, installer)
        if entries is None:
            continue
        chosen = next((entries[key] for key in _keys(cuda) if key in entries), None)
        what = "conda-forge" if installer == "conda" else "PyPI"
        if chosen is None:
            build = "CPU" if cuda == "none" else f"CUDA {cuda}"
            unsupported.append(f"the CUDA table lists no {what} {build} build of {name}")
            continue
        if chosen.unsupported:
            unsupported.append(f"{name} with cuda {cuda}: {_fill(chosen.unsupported, variables)}")
            continue
        variants[name] = Variant(
            name=_fill(chosen.name, variables) if chosen.name else None,
            extras=tuple(_fill(extra, variables) for extra in chosen.extras),
            build=_fill(chosen.build, variables) if chosen.build else None,
        )
        specs = [_fill(spec, variables) for spec in chosen.specs]
        (conda_specs if installer == "conda" else pip_requirements).extend(specs)
        if chosen.index and installer == "pypi":
            index_urls.append(_fill(chosen.index, variables))
    return CudaPlan(
        cuda=cuda,
        env={"CONDA_OVERRIDE_CUDA": "" if cuda == "none" else cuda} if conda else {},
        conda_specs=tuple(dict.fromkeys(conda_specs)),
        pip_requirements=tuple(dict.fromkeys(pip_requirements)),
        index_urls=tuple(dict.fromkeys(index_urls)),
        variants=variants,
        unsupported="; ".join(unsupported),
    )


# -- resolved CUDA versions ----------------------------------------------------------------------

#: `cuda.*` key -> the nvidia-* wheels and conda packages that carry that component.
_COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "cuda.runtime",
        (
            "nvidia-cuda-runtime-cu11",
            "nvidia-cuda-runtime-cu12",
            "nvidia-cuda-runtime",
            "cuda-cudart",
            "cudatoolkit",
        ),
    ),
    ("cuda.cudnn", ("nvidia-cudnn-cu11", "nvidia-cudnn-cu12", "nvidia-cudnn-cu13", "cudnn")),
)


def cuda_resolved(
    resolved: Mapping[str, str],
    *,
    conda_records: Mapping[str, tuple[str, str]] | None = None,
    cuda_document: Mapping[str, Any] | None = None,
    builds: Collection[str] = (),
) -> dict[str, str]:
    """`cuda.*` entries for a cell's `resolved`: the CUDA versions it really got.

    `cuda.driver` and one entry per CUDA library family (`cuda.runtime` for cudart) from the
    cuda probe's document when it ran; otherwise the runtime and cuDNN from the installed
    nvidia-* wheels or conda packages. `conda_records` ({name: (version, build)}) also give
    `cuda.version` (conda's cuda-version) and `cuda.build.<name>` for the conda packages in
    `builds` (the frameworks whose build the table chose).
    """
    out: dict[str, str] = {}
    document = cuda_document or {}
    driver = document.get("driver")
    if isinstance(driver, Mapping) and driver.get("cuda"):
        out["cuda.driver"] = str(driver["cuda"])
    families: dict[str, set[str]] = {}
    for library in document.get("libraries") or ():
        if isinstance(library, Mapping) and library.get("family") and library.get("version"):
            families.setdefault(str(library["family"]), set()).add(str(library["version"]))
    for family, versions in sorted(families.items()):
        key = "cuda.runtime" if family == "cudart" else f"cuda.{family}"
        out[key] = ", ".join(sorted(versions))
    wheels = {str(canonicalize_name(name)): version for name, version in resolved.items()}
    records = {name: version for name, (version, _) in (conda_records or {}).items()}
    if "cuda-version" in records:
        out["cuda.version"] = records["cuda-version"]
    for key, names in _COMPONENTS:
        found = [source[name] for source in (wheels, records) for name in names if name in source]
        if found and key not in out:
            out[key] = ", ".join(dict.fromkeys(found))
    for name in builds:
        if conda_records and name in conda_records:
            out[f"cuda.build.{name}"] = conda_records[name][1]
    return out


# -- reading the table ---------------------------------------------------------------------------


def parse_cuda_table(text: str, source: str) -> CudaTable:
    """Validate a CUDA table's YAML `text`; `source` names the file in every `MatrixError`."""
    reader = _Reader(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise MatrixError(source, line, column, exc.problem or "invalid YAML") from None
    except yaml.YAMLError as exc:
        raise MatrixError(source, 1, 1, f"invalid YAML: {exc}") from None
    if root is None:
        return CudaTable(sources=(source,))
    top = dict(reader.pairs(root, "", _TOP_KEYS))
    cuda = {
        key: reader.version_entry(node, f"cuda.{key}")
        for key, node in reader.keyed(top.get("cuda"), "cuda")
    }
    frameworks: dict[str, dict[str, dict[str, FrameworkEntry]]] = {}
    for name, node in reader.keyed(top.get("frameworks"), "frameworks", distribution=True):
        where = f"frameworks.{name}"
        by_installer: dict[str, dict[str, FrameworkEntry]] = {}
        for installer, entries_node in reader.pairs(node, where, _INSTALLERS):
            by_installer[installer] = {
                key: reader.framework_entry(entry, f"{where}.{installer}.{key}")
                for key, entry in reader.keyed(entries_node, f"{where}.{installer}")
            }
        frameworks[canonicalize_name(name)] = by_installer
    return CudaTable(cuda=cuda, frameworks=frameworks, sources=(source,))


def load_cuda_table(path: Path) -> CudaTable:
    """Read and validate the CUDA table file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError(str(path), 1, 1, f"cannot read the CUDA table: {exc}") from None
    return parse_cuda_table(text, str(path))


@lru_cache(maxsize=1)
def builtin_table() -> CudaTable:
    """The table shipped with compat-matrix (`cuda_table.yml` beside this module)."""
    text = resources.files("compat_matrix").joinpath(BUILTIN_TABLE).read_text(encoding="utf-8")
    return parse_cuda_table(text, BUILTIN_TABLE)


@lru_cache(maxsize=16)
def _user_table(path: str, mtime_ns: int) -> CudaTable:
    del mtime_ns  # part of the cache key only: an edited file is read again
    return builtin_table().merged(load_cuda_table(Path(path)))


def table_for(path: Path | None) -> CudaTable:
    """The built-in table, extended by the matrix's `cuda-table:` file when it names one."""
    if path is None:
        return builtin_table()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise MatrixError(str(path), 1, 1, f"cannot read the CUDA table: {exc.strerror}") from None
    return _user_table(str(path), mtime)


class _Reader:
    """Walks the table's YAML nodes, naming the file, line and column of every problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, node: yaml.Node, where: str, problem: str) -> MatrixError:
        mark = node.start_mark
        text = f"{where}: {problem}" if where else problem
        return MatrixError(self.source, mark.line + 1, mark.column + 1, text)

    def pairs(
        self, node: yaml.Node, where: str, known: Collection[str] | None = None
    ) -> Iterator[tuple[str, yaml.Node]]:
        for key, _, value in self.located_pairs(node, where, known):
            yield key, value

    def located_pairs(
        self, node: yaml.Node, where: str, known: Collection[str] | None = None
    ) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
        """(key, key node, value node) of a mapping; no duplicates, only `known` keys."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, where, "expected a mapping")
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = self.scalar(key_node, where)
            if key in seen:
                raise self.error(key_node, where, f"duplicate key {key!r}")
            seen.add(key)
            if known is not None and key not in known:
                expected = ", ".join(known)
                problem = f"unknown key {key!r}; expected one of: {expected}"
                raise self.error(key_node, where, problem)
            yield key, key_node, value_node

    def keyed(
        self, node: yaml.Node | None, where: str, *, distribution: bool = False
    ) -> Iterator[tuple[str, yaml.Node]]:
        """Entries keyed by a CUDA value (`none`, `cuda`, `12`, `12.4`) or a distribution."""
        if node is None:
            return
        for key, key_node, value in self.located_pairs(node, where):
            if not distribution and not _valid_key(key):
                expected = 'expected "none", "cuda", a CUDA major ("12") or version ("12.4")'
                raise self.error(key_node, where, f"{expected}, got {key!r}")
            yield key, value

    def scalar(self, node: yaml.Node, where: str) -> str:
        # The text as written: `12.4` stays "12.4" and `11.10` "11.10", whatever YAML types.
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
            raise self.error(node, where, "expected a string")
        return str(node.value)

    def template(self, node: yaml.Node, where: str) -> str:
        text = self.scalar(node, where)
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as exc:
            raise self.error(node, where, f"bad placeholder: {exc}") from None
        unknown = [name for name in fields if name not in _VARIABLES]
        if unknown:
            known = ", ".join("{" + name + "}" for name in _VARIABLES)
            raise self.error(node, where, f"unknown placeholder {{{unknown[0]}}}; use {known}")
        return text

    def strings(self, node: yaml.Node, where: str) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, where, "expected a list of strings")
        return tuple(self.template(item, f"{where}[{i}]") for i, item in enumerate(node.value))

    def version_entry(self, node: yaml.Node, where: str) -> VersionEntry:
        fields = dict(self.pairs(node, where, _VERSION_KEYS))
        return VersionEntry(
            conda=self.strings(fields["conda"], f"{where}.conda") if "conda" in fields else (),
            pypi=self.strings(fields["pypi"], f"{where}.pypi") if "pypi" in fields else (),
        )

    def framework_entry(self, node: yaml.Node, where: str) -> FrameworkEntry:
        fields = dict(self.pairs(node, where, _ENTRY_KEYS))

        def text(key: str) -> str | None:
            return self.template(fields[key], f"{where}.{key}") if key in fields else None

        def texts(key: str) -> tuple[str, ...]:
            return self.strings(fields[key], f"{where}.{key}") if key in fields else ()

        return FrameworkEntry(
            name=text("name"),
            extras=texts("extras"),
            build=text("build"),
            specs=texts("specs"),
            index=text("index"),
            unsupported=text("unsupported"),
        )


def _valid_key(key: str) -> bool:
    if key in ("none", "cuda"):
        return True
    parts = key.split(".")
    return len(parts) <= 2 and all(part.isdigit() for part in parts)
