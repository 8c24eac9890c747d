"""The CUDA table: what a `cuda:` axis value means, as data (`cuda_table.yml` beside this module).

It maps an axis value to conda specs (`cuda-version=12.4`) and PyPI runtime wheels
(`nvidia-*-cu12`), and each framework to the build that matches it (`pytorch ... cuda*`,
`jax[cuda12]`, `cupy-cuda12x`, torch's CUDA index; `none` means CPU builds). A matrix extends it
with `cuda-table:`; this module reads and validates both (`build.cuda` applies it to a cell), so
supporting a new CUDA release is a data change. Nothing in it may become an installer option.
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
from typing import Literal

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from compat_matrix.errors import MatrixError
from compat_matrix.matrix.yamlfile import compose_yaml

__all__ = [
    "BUILTIN_TABLE",
    "CudaTable",
    "FrameworkEntry",
    "Installer",
    "VersionEntry",
    "builtin_table",
    "fill",
    "load_cuda_table",
    "lookup_keys",
    "parse_cuda_table",
    "table_for",
    "variables",
]

#: File name of the built-in table, a data file of this package.
BUILTIN_TABLE = "cuda_table.yml"

Installer = Literal["conda", "pypi"]
_INSTALLERS: tuple[Installer, ...] = ("conda", "pypi")
_TOP_KEYS = ("cuda", "frameworks")
_VERSION_KEYS = ("conda", "pypi")
_ENTRY_KEYS = ("name", "extras", "build", "specs", "index", "unsupported")
_VARIABLES = ("version", "major", "minor", "tag")


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
        for key in lookup_keys(value):
            if key in self.cuda:
                return self.cuda[key]
        return None

    def framework(self, name: str, installer: Installer) -> dict[str, FrameworkEntry] | None:
        """The framework's entries for `installer`, or None when the table does not list it."""
        return self.frameworks.get(canonicalize_name(name), {}).get(installer) or None


def lookup_keys(value: str) -> list[str]:
    """Lookup keys for an axis value, most specific first."""
    if value == "none":
        return ["none"]
    return [value, value.split(".", 1)[0], "cuda"]


def variables(value: str) -> dict[str, str]:
    if value == "none":
        return {"version": "", "major": "", "minor": "", "tag": "cpu"}
    major, _, minor = value.partition(".")
    return {
        "version": value,
        "major": major,
        "minor": minor,
        "tag": "cu" + value.replace(".", ""),
    }


def fill(text: str, variables: Mapping[str, str]) -> str:
    return text.format_map(variables)


# -- reading the table ---------------------------------------------------------------------------


def parse_cuda_table(text: str, source: str) -> CudaTable:
    """Validate a CUDA table's YAML `text`; `source` names the file in every `MatrixError`."""
    reader = _Reader(source)
    root = compose_yaml(text, source)
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
    text = (
        resources.files("compat_matrix.matrix").joinpath(BUILTIN_TABLE).read_text(encoding="utf-8")
    )
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

    def checked(self, node: yaml.Node, where: str, kind: str) -> str:
        """A template that, filled in, is what `kind` says: nothing here may become an option."""
        text = self.template(node, where)
        sample = fill(text, variables("12.4"))
        if not sample.strip() or sample.lstrip().startswith("-") or not sample.isprintable():
            raise self.error(node, where, f"expected a {kind}, got {json.dumps(text)[:80]}")
        if kind == "requirement":
            try:
                Requirement(sample)
            except InvalidRequirement:
                example = '"nvidia-cuda-runtime-cu12==12.4.*"'
                problem = f"expected a requirement such as {example}, got {json.dumps(text)[:80]}"
                raise self.error(node, where, problem) from None
        if kind == "index URL" and (
            not sample.startswith(("https://", "http://", "file://")) or " " in sample
        ):
            raise self.error(node, where, f"expected an index URL, got {json.dumps(text)[:80]}")
        return text

    def strings(self, node: yaml.Node, where: str, kind: str) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, where, "expected a list of strings")
        return tuple(self.checked(item, f"{where}[{i}]", kind) for i, item in enumerate(node.value))

    def version_entry(self, node: yaml.Node, where: str) -> VersionEntry:
        fields = dict(self.pairs(node, where, _VERSION_KEYS))
        return VersionEntry(
            conda=(
                self.strings(fields["conda"], f"{where}.conda", "conda spec")
                if "conda" in fields
                else ()
            ),
            pypi=(
                self.strings(fields["pypi"], f"{where}.pypi", "requirement")
                if "pypi" in fields
                else ()
            ),
        )

    def framework_entry(self, node: yaml.Node, where: str) -> FrameworkEntry:
        fields = dict(self.pairs(node, where, _ENTRY_KEYS))

        pypi = ".pypi." in where

        def text(key: str, kind: str = "value") -> str | None:
            return self.checked(fields[key], f"{where}.{key}", kind) if key in fields else None

        def texts(key: str, kind: str) -> tuple[str, ...]:
            return self.strings(fields[key], f"{where}.{key}", kind) if key in fields else ()

        if "index" in fields and not pypi:
            raise self.error(fields["index"], f"{where}.index", "`index` applies only to pypi")
        return FrameworkEntry(
            name=text("name", "distribution name"),
            extras=texts("extras", "extra"),
            build=text("build", "build string"),
            specs=texts("specs", "requirement" if pypi else "conda spec"),
            index=text("index", "index URL"),
            unsupported=text("unsupported"),
        )


def _valid_key(key: str) -> bool:
    if key in ("none", "cuda"):
        return True
    parts = key.split(".")
    return len(parts) <= 2 and all(part.isdigit() for part in parts)
