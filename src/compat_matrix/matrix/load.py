"""Load and validate a matrix file into a `Matrix`, locating every problem by line and column.

pyyaml's node API (not `safe_load`) keeps a start mark on every node, so each error points at the
key or value a person has to edit. It also lets us refuse what plain loading hides: duplicate
keys (pyyaml keeps the last one) and unquoted versions such as `3.10`, which YAML reads as 3.1.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from compat_matrix.errors import MatrixError
from compat_matrix.matrix.cuda_table import load_cuda_table
from compat_matrix.matrix.expand import expand_combinations
from compat_matrix.matrix.gpus import gpu_problem
from compat_matrix.matrix.model import (
    BACKENDS,
    PRERELEASES,
    PROBES,
    RESERVED_AXES,
    RESOLUTIONS,
    STATUSES,
    Backend,
    Expectation,
    Matrix,
    Prerelease,
    Resolution,
    Selection,
    Status,
    value_kind,
)
from compat_matrix.matrix.yamlfile import DEFAULT_LIMITS, Limits, compose_yaml

__all__ = [
    "DEFAULT_LIMITS",
    "TOP_LEVEL_KEYS",
    "Limits",
    "compose_yaml",
    "load_matrix",
    "parse_matrix",
]

#: Keys a matrix file may have at its top level, in documentation order.
TOP_LEVEL_KEYS = (
    "name",
    "backend",
    "timeout",
    "packages",
    "labels",
    "matrix",
    "import",
    "expect",
    "only-binary",
    "strict",
    "probes",
    "channels",
    "pip",
    "cuda-table",
    "gpus",
    "resolution",
    "as-of",
    "prerelease",
    "index-url",
    "extra-index-url",
)
_EXPECT_KEYS = ("match", "status", "reason")
_RESERVED = RESERVED_AXES

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP = _TAG + "timestamp"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PLAIN_INT = re.compile(r"0|[1-9][0-9]*")
_PYTHON = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?t?")
_CUDA = re.compile(r"[0-9]+\.[0-9]+")
# GitHub runner labels: ubuntu-24.04, macos-15, windows-11-arm, a self-hosted label.
_RUNNER_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# PEP 508 names (https://packaging.python.org/en/latest/specifications/name-normalization/).
_DIST_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)


_Pairs = list[tuple[str, yaml.Node, yaml.Node]]
_Entry = dict[str, str]


@dataclass(frozen=True)
class _Source:
    """The file being read: names it in every error and anchors its relative paths."""

    path: str
    base_dir: Path
    #: The file's `labels:` keys: any scalar value, no distribution.
    labels: frozenset[str] = frozenset()
    limits: Limits = DEFAULT_LIMITS

    def error(self, node: yaml.Node, where: str, problem: str) -> MatrixError:
        mark = node.start_mark
        text = f"{where}: {problem}" if where else problem
        return MatrixError(self.path, mark.line + 1, mark.column + 1, text)


@dataclass(frozen=True)
class _MatrixSection:
    axes: dict[str, list[str]]
    include: tuple[_Entry, ...]
    exclude: tuple[_Entry, ...]


def load_matrix(path: Path, limits: Limits = DEFAULT_LIMITS) -> Matrix:
    """Read and validate the matrix file at `path`; every problem is a `MatrixError`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise MatrixError(str(path), 1, 1, f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > limits.max_bytes:
        problem = f"the file is larger than {limits.max_bytes:,} bytes, the limit for a matrix file"
        raise MatrixError(str(path), 1, 1, problem)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise MatrixError(str(path), line, column, "the file is not valid UTF-8") from None
    return parse_matrix(text, path, limits)


def parse_matrix(text: str, path: Path, limits: Limits = DEFAULT_LIMITS) -> Matrix:
    """Validate matrix-file `text`; `path` names it in errors and anchors relative paths."""
    src = _Source(str(path), path.parent, limits=limits)
    root = compose_yaml(text, src.path, limits)
    if root is None:
        raise MatrixError(src.path, 1, 1, "the file is empty; expected a mapping with `matrix:`")
    if not isinstance(root, yaml.MappingNode):
        raise src.error(root, "", f"expected a mapping at the top level, got {_describe(root)}")
    nodes = {key: value for key, _, value in _known_pairs(src, root, "", TOP_LEVEL_KEYS)}
    if "matrix" not in nodes:
        raise src.error(root, "", 'missing required key "matrix"')
    labels = _labels(src, nodes.get("labels"))
    _check_labels_used(src, nodes.get("labels"), labels, nodes["matrix"])
    src = _Source(src.path, src.base_dir, frozenset(labels), limits)
    section = _matrix_section(src, nodes["matrix"])
    _check_size(src, nodes["matrix"], section)
    backend = _backend(src, nodes.get("backend"))
    selection = _selection(src, nodes)
    _check_selection_backend(src, nodes, backend)
    combinations = expand_combinations(section.axes, section.include, section.exclude)
    if len(combinations) > limits.max_cells:
        raise src.error(nodes["matrix"], "matrix", _too_many(len(combinations), limits))
    if not combinations:
        raise src.error(nodes["matrix"], "matrix", "every combination is excluded; no cells")
    return Matrix(
        path=path,
        name=_name(src, nodes.get("name"), path.stem),
        backend=backend,
        timeout=_timeout(src, nodes.get("timeout")),
        packages=_packages(src, nodes.get("packages")),
        axes=section.axes,
        include=section.include,
        exclude=section.exclude,
        imports=_imports(src, nodes.get("import")),
        expect=_expectations(src, nodes.get("expect"), combinations),
        only_binary=_only_binary(src, nodes.get("only-binary")),
        strict=_strict(src, nodes.get("strict")),
        probes=_probes(src, nodes.get("probes")),
        labels=tuple(labels),
        gpus=_gpus(src, nodes.get("gpus")),
        selection=selection,
        index_url=_index_url(src, nodes.get("index-url")),
        extra_index_urls=_extra_index_urls(src, nodes.get("extra-index-url")),
        **_conda_fields(src, nodes),
    )


def _too_many(count: int, limits: Limits) -> str:
    return (
        f"the matrix expands to {count:,} cells; the limit is {limits.max_cells:,} "
        "(raise it with --max-cells or COMPAT_MAX_CELLS)"
    )


def _check_size(src: _Source, node: yaml.Node, section: _MatrixSection) -> None:
    """Refuse a matrix too large to expand, before expanding it (2^30 cells stop here)."""
    product = math.prod(len(values) for values in section.axes.values())
    if product + len(section.include) > src.limits.max_cells:
        raise src.error(node, "matrix", _too_many(product + len(section.include), src.limits))


# -- YAML plumbing ---------------------------------------------------------------------------


def _describe(node: yaml.Node) -> str:
    """What a node is, in words, for 'got ...' in messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    raw = str(node.value)
    if node.tag == _STR:
        return f"the string {_q(raw)}"
    if node.tag in (_INT, _FLOAT):
        return f"the number {raw}"
    if node.tag == _BOOL:
        return f"the boolean {raw}"
    if node.tag == _NULL:
        return "an empty value" if raw in ("", "~") else "null"
    return f"a value tagged {node.tag}"


def _q(text: str, limit: int = 80) -> str:
    """Quote for a message, the way the user would write it in YAML; long values are cut."""
    if len(text) > limit:
        return json.dumps(text[:limit], ensure_ascii=False) + f"… ({len(text):,} characters)"
    return json.dumps(text, ensure_ascii=False)


def _where(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _pairs(src: _Source, node: yaml.Node, where: str) -> _Pairs:
    """A mapping's (key, key node, value node) triples; rejects duplicate and non-string keys."""
    if not isinstance(node, yaml.MappingNode):
        raise src.error(node, where, f"expected a mapping, got {_describe(node)}")
    seen: dict[str, yaml.Node] = {}
    pairs: _Pairs = []
    for key_node, value_node in node.value:
        if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR):
            raise src.error(key_node, where, f"expected a string key, got {_describe(key_node)}")
        key = str(key_node.value)
        if key in seen:
            first = seen[key].start_mark.line + 1
            raise src.error(key_node, where, f"duplicate key {_q(key)} (first on line {first})")
        seen[key] = key_node
        pairs.append((key, key_node, value_node))
    return pairs


def _known_pairs(src: _Source, node: yaml.Node, where: str, known: Sequence[str]) -> _Pairs:
    """Like `_pairs`, and every key must be one of `known` (with a did-you-mean otherwise)."""
    pairs = _pairs(src, node, where)
    for key, key_node, _ in pairs:
        if key not in known:
            raise src.error(key_node, where, _unknown(f"unknown key {_q(key)}", key, known))
    return pairs


def _unknown(problem: str, found: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(found, known, n=1)
    hint = f" (did you mean {_q(close[0])}?)" if close else ""
    return f"{problem}{hint}; expected one of: {', '.join(known)}"


def _items(src: _Source, node: yaml.Node, where: str) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        raise src.error(node, where, f"expected a list, got {_describe(node)}")
    return list(node.value)


def _string(src: _Source, node: yaml.Node, where: str) -> str:
    if not (isinstance(node, yaml.ScalarNode) and node.tag == _STR):
        raise src.error(node, where, f"expected a string, got {_describe(node)}")
    return str(node.value)


def _number(node: yaml.ScalarNode) -> int | float:
    """The number YAML reads from an int or float scalar (`3.10` -> 3.1, `012` -> 10)."""
    value = yaml.safe_load(str(node.value))
    return value if isinstance(value, (int, float)) else math.nan


def _scalar_text(src: _Source, node: yaml.Node, where: str) -> str:
    """An axis value as a string: strings as written, plain ints; floats are refused."""
    if isinstance(node, yaml.ScalarNode):
        raw = str(node.value)
        if node.tag == _STR or (node.tag == _INT and _PLAIN_INT.fullmatch(raw)):
            return raw
        if node.tag in (_INT, _FLOAT):
            number = _number(node)
            read = "" if str(number) == raw else f" (YAML reads {raw} as {number})"
            problem = f"expected a quoted version string, got the number {number}{read}"
            raise src.error(node, where, f"{problem}: write {_q(raw)}")
    raise src.error(node, where, f"expected a version string, got {_describe(node)}")


# -- top-level keys ----------------------------------------------------------------------------


def _name(src: _Source, node: yaml.Node | None, default: str) -> str:
    if node is None:
        return default
    name = _string(src, node, "name")
    if not name.strip():
        raise src.error(node, "name", "empty name; expected the matrix's name for reports")
    return name


def _backend(src: _Source, node: yaml.Node | None) -> Backend:
    if node is None:
        return "uv"
    text = _string(src, node, "backend")
    for backend in BACKENDS:
        if backend == text:
            return backend
    raise src.error(node, "backend", _unknown(f"unknown backend {_q(text)}", text, BACKENDS))


def _timeout(src: _Source, node: yaml.Node | None) -> float:
    if node is None:
        return 900.0
    if isinstance(node, yaml.ScalarNode) and node.tag in (_INT, _FLOAT):
        seconds = float(_number(node))
        if math.isfinite(seconds) and seconds > 0:
            return seconds
    expected = "expected a positive number of seconds"
    raise src.error(node, "timeout", f"{expected}, got {_describe(node)}")


def _only_binary(src: _Source, node: yaml.Node | None) -> bool:
    if node is None:
        return True
    if not (isinstance(node, yaml.ScalarNode) and node.tag == _BOOL):
        raise src.error(node, "only-binary", f"expected true or false, got {_describe(node)}")
    return str(node.value).lower() in ("true", "yes", "on")


def _strict(src: _Source, node: yaml.Node | None) -> bool:
    if node is None:
        return False
    if not (isinstance(node, yaml.ScalarNode) and node.tag == _BOOL):
        raise src.error(node, "strict", f"expected true or false, got {_describe(node)}")
    return str(node.value).lower() in ("true", "yes", "on")


def _packages(src: _Source, node: yaml.Node | None) -> tuple[str, ...]:
    """`packages:` entries; local paths made absolute (they are installed from any cwd)."""
    if node is None:
        return ()
    packages = []
    for index, item in enumerate(_items(src, node, "packages")):
        where = f"packages[{index}]"
        packages.append(_package(src, item, where, _string(src, item, where)))
    return tuple(packages)


def _package(src: _Source, node: yaml.Node, where: str, text: str) -> str:
    kind = value_kind(text)
    if any(ord(c) < 32 or ord(c) == 127 for c in text) or (
        kind == "url" and any(c.isspace() for c in text)
    ):
        # Installers read requirements line by line: a newline would start an option line.
        problem = f"a control character or white space in {_q(text)}; expected one requirement"
        raise src.error(node, where, problem)
    if kind == "path":
        _check_path_exists(src, node, where, text)
        return str((src.base_dir / text).resolve())
    if kind == "url":
        return text
    try:
        Requirement(text)
    except InvalidRequirement:
        expected = 'expected a requirement ("mypkg>=1.0"), a local path ("./") or a URL'
        raise src.error(node, where, f"{expected}, got {_q(text)}") from None
    return text


def _check_path_exists(src: _Source, node: yaml.Node, where: str, text: str) -> None:
    if not (src.base_dir / text).exists():
        problem = f"local path {_q(text)} does not exist (relative to {src.base_dir})"
        raise src.error(node, where, problem)


def _imports(src: _Source, node: yaml.Node | None) -> tuple[str, ...] | None:
    if node is None:
        return None
    modules = []
    for index, item in enumerate(_items(src, node, "import")):
        where = f"import[{index}]"
        module = _string(src, item, where)
        if not all(part.isidentifier() for part in module.split(".")):
            expected = 'expected a dotted module name such as "numpy.linalg"'
            raise src.error(item, where, f"{expected}, got {_q(module)}")
        modules.append(module)
    return tuple(modules)


def _probes(src: _Source, node: yaml.Node | None) -> tuple[str, ...]:
    """`probes:` switched on, returned in run order (the order of `PROBES`)."""
    if node is None:
        return PROBES
    chosen: set[str] = set()
    for index, item in enumerate(_items(src, node, "probes")):
        where = f"probes[{index}]"
        probe = _string(src, item, where)
        if probe not in PROBES:
            raise src.error(item, where, _unknown(f"unknown probe {_q(probe)}", probe, PROBES))
        if probe in chosen:
            raise src.error(item, where, f"probe {_q(probe)} is listed twice")
        chosen.add(probe)
    return tuple(probe for probe in PROBES if probe in chosen)


def _gpus(src: _Source, node: yaml.Node | None) -> tuple[str, ...]:
    """`gpus:` GPU names or architectures (`A100`, `sm_90`, `"12.0"`), each listed once."""
    if node is None:
        return ()
    gpus: list[str] = []
    for index, item in enumerate(_items(src, node, "gpus")):
        where = f"gpus[{index}]"
        gpu = _scalar_text(src, item, where)
        problem = gpu_problem(gpu)
        if problem:
            raise src.error(item, where, problem)
        if gpu in gpus:
            raise src.error(item, where, f"{_q(gpu)} is listed twice")
        gpus.append(gpu)
    return tuple(gpus)


def _selection(src: _Source, nodes: dict[str, yaml.Node]) -> Selection:
    """Top-level `resolution:`, `as-of:` and `prerelease:` (each cell's axes override them)."""
    resolution: Resolution = "highest"
    prerelease: Prerelease | None = None
    as_of: str | None = None
    node = nodes.get("resolution")
    if node is not None:
        text = _string(src, node, "resolution")
        problem = _value_problem("resolution", text)
        if problem:
            raise src.error(node, "resolution", problem)
        resolution = next(r for r in RESOLUTIONS if r == text)
    node = nodes.get("prerelease")
    if node is not None:
        text = _string(src, node, "prerelease")
        problem = _value_problem("prerelease", text)
        if problem:
            raise src.error(node, "prerelease", problem)
        prerelease = next(p for p in PRERELEASES if p == text)
    node = nodes.get("as-of")
    if node is not None:
        as_of = _date(src, node, "as-of")
    return Selection(resolution, as_of, prerelease)


def _date(src: _Source, node: yaml.Node, where: str) -> str:
    """A `YYYY-MM-DD` day, quoted or not (YAML reads `2024-06-01` as a timestamp)."""
    if isinstance(node, yaml.ScalarNode) and node.tag in (_STR, _TIMESTAMP):
        text = str(node.value)
        problem = _value_problem("as-of", text)
        if problem is None:
            return text
        raise src.error(node, where, problem)
    raise src.error(node, where, f"expected a date such as 2024-06-01, got {_describe(node)}")


def _index_url(src: _Source, node: yaml.Node | None) -> str | None:
    if node is None:
        return None
    return _checked_url(src, node, "index-url")


def _extra_index_urls(src: _Source, node: yaml.Node | None) -> tuple[str, ...]:
    """`extra-index-url:` one URL or a list of them, each listed once."""
    if node is None:
        return ()
    if isinstance(node, yaml.ScalarNode):
        return (_checked_url(src, node, "extra-index-url"),)
    urls: list[str] = []
    items = _items(src, node, "extra-index-url")
    if not items:
        raise src.error(node, "extra-index-url", "empty list; expected at least one index URL")
    for index, item in enumerate(items):
        where = f"extra-index-url[{index}]"
        url = _checked_url(src, item, where)
        if url in urls:
            raise src.error(item, where, f"{_q(url)} is listed twice")
        urls.append(url)
    return tuple(urls)


def _checked_url(src: _Source, node: yaml.Node, where: str) -> str:
    """An index URL the installers get as an option's value: one printable http(s) URL with a
    host, no white space, no credentials (every report prints it), never option-like."""
    text = _string(src, node, where)
    expected = "expected an http(s) index URL such as https://pypi.org/simple"
    if not text.isprintable() or any(c.isspace() for c in text):
        raise src.error(node, where, f"{expected}, got {_q(text)} (white space or a control code)")
    try:
        parts = urllib.parse.urlsplit(text)
        netloc_ok = bool(parts.hostname)
    except ValueError:
        raise src.error(node, where, f"{expected}, got {_q(text)}") from None
    if parts.scheme not in ("http", "https") or not netloc_ok or text.startswith("-"):
        raise src.error(node, where, f"{expected}, got {_q(text)}")
    if parts.username is not None or parts.password is not None:
        problem = (
            f"credentials in {_q(parts.scheme + '://' + parts.netloc.rpartition('@')[2] + '/…')}"
            " would be printed in every report; give them to the installer instead "
            "(a keyring, ~/.netrc, or UV_INDEX_<NAME>_USERNAME/PASSWORD)"
        )
        raise src.error(node, where, problem)
    return text


#: Backends that honour each selection key with a value other than the default.
_SELECTION_BACKENDS: dict[str, tuple[str, ...]] = {
    "resolution": ("uv", "conda"),
    "as-of": ("uv", "conda"),
    "prerelease": ("uv",),
}
_WHY_NOT = {
    "venv": "pip has no --resolution, --exclude-newer nor if-necessary/disallow pre-release modes",
    "conda": "its pip step cannot pick versions that way",
    "micromamba": "micromamba's solver has no such option",
}


def _check_selection_backend(src: _Source, nodes: dict[str, yaml.Node], backend: Backend) -> None:
    """A resolution, as-of or prerelease value that the backend cannot honour is an error where
    it is written, rather than a cell that silently resolved another way."""
    if backend == "uv":
        return
    conda_pip = backend == "conda" and "pip" in nodes
    for key, node, where in _selection_nodes(nodes):
        value = str(node.value)
        if key == "resolution" and value == "highest":
            continue
        if key == "prerelease" and value == "allow":
            continue  # pip's --pre
        ok = _SELECTION_BACKENDS[key]
        if backend in ok and not (conda_pip and key in ("resolution", "as-of")):
            continue
        needs = " or ".join(f"`backend: {name}`" for name in ok)
        why = _WHY_NOT["conda" if conda_pip else backend]
        problem = f"{key}: {value} needs {needs} ({why})"
        raise src.error(node, where, problem)


def _selection_nodes(nodes: dict[str, yaml.Node]) -> list[tuple[str, yaml.Node, str]]:
    """Every `resolution`/`as-of`/`prerelease` value (node, where): top level, vectors and
    includes (all already validated)."""
    keys = tuple(_SELECTION_BACKENDS)
    found = [(key, nodes[key], key) for key in keys if key in nodes]
    matrix = nodes["matrix"]
    assert isinstance(matrix, yaml.MappingNode)  # noqa: S101 - checked by _matrix_section
    for key_node, value_node in matrix.value:
        key = str(key_node.value)
        if key in keys and isinstance(value_node, yaml.SequenceNode):
            found += [(key, v, f"matrix.{key}[{i}]") for i, v in enumerate(value_node.value)]
        elif key == "include" and isinstance(value_node, yaml.SequenceNode):
            for index, entry in enumerate(value_node.value):
                found += [
                    (str(k.value), v, f"matrix.include[{index}].{k.value}")
                    for k, v in entry.value
                    if str(k.value) in keys
                ]
    return found


def _conda_fields(src: _Source, nodes: dict[str, yaml.Node]) -> dict[str, Any]:
    """`channels:`, `pip:` (conda and micromamba only) and `cuda-table:`, validated in place."""
    fields: dict[str, Any] = {}
    backend = nodes.get("backend")
    conda = (
        backend is not None
        and isinstance(backend, yaml.ScalarNode)
        and (backend.value in ("conda", "micromamba"))
    )
    for key in ("channels", "pip"):
        node = nodes.get(key)
        if node is None:
            continue
        if not conda:
            raise src.error(
                node, key, f"{_q(key)} applies only to `backend: conda` or `backend: micromamba`"
            )
        values: list[str] = []
        for index, item in enumerate(_items(src, node, key)):
            where = f"{key}[{index}]"
            text = _string(src, item, where)
            if not text or text != text.strip() or any(c.isspace() for c in text):
                raise src.error(item, where, f"expected a name without spaces, got {_q(text)}")
            if text.startswith("-") or any(ord(c) < 32 for c in text):
                problem = f"expected a channel name or URL, got the option-like {_q(text)}"
                raise src.error(item, where, problem)
            if key == "pip" and not _DIST_NAME.fullmatch(text):
                raise src.error(item, where, f"expected a distribution name, got {_q(text)}")
            if text in values:
                raise src.error(item, where, f"{_q(text)} is listed twice")
            values.append(canonicalize_name(text) if key == "pip" else text)
        if not values:
            raise src.error(node, key, "empty list; expected at least one name")
        fields[key] = tuple(values)
    table = nodes.get("cuda-table")
    if table is not None:
        text = _string(src, table, "cuda-table")
        _check_path_exists(src, table, "cuda-table", text)
        path = (src.base_dir / text).resolve()
        load_cuda_table(path)  # its own errors point into the table file
        fields["cuda_table"] = path
    return fields


def _labels(src: _Source, node: yaml.Node | None) -> list[str]:
    """`labels:` keys: they name, group and route cells; never reserved, each listed once."""
    if node is None:
        return []
    labels: list[str] = []
    for index, item in enumerate(_items(src, node, "labels")):
        where = f"labels[{index}]"
        label = _string(src, item, where)
        if not label.strip() or label != label.strip():
            raise src.error(item, where, f"expected a matrix key, got {_q(label)}")
        if label in _RESERVED or label in ("include", "exclude"):
            raise src.error(item, where, f"{_q(label)} is a reserved key, not a label")
        if label in labels:
            raise src.error(item, where, f"{_q(label)} is listed twice")
        labels.append(label)
    return labels


def _check_labels_used(
    src: _Source, node: yaml.Node | None, labels: list[str], matrix: yaml.Node
) -> None:
    """A label that no vector or include uses is a typo: say so where it is written (before the
    values, which would otherwise be judged as a distribution's versions)."""
    used: set[str] = set()
    for key_node, value_node in matrix.value if isinstance(matrix, yaml.MappingNode) else ():
        key = str(key_node.value)
        if key == "include" and isinstance(value_node, yaml.SequenceNode):
            for entry in value_node.value:
                if isinstance(entry, yaml.MappingNode):
                    used.update(str(k.value) for k, _ in entry.value)
        elif key != "exclude":
            used.add(key)
    for index, label in enumerate(labels):
        if label not in used and isinstance(node, yaml.SequenceNode):
            item = node.value[index]
            problem = _unknown(f"label {_q(label)} is not a key of the matrix", label, sorted(used))
            raise src.error(item, f"labels[{index}]", problem)


def _label_value(src: _Source, node: yaml.Node, where: str) -> str:
    """A label's value as text: strings as written, numbers as written, `true`/`false`, and
    GitHub's object values (`node: [{version: 14}]`) as canonical JSON."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _BOOL:
            return "true" if str(node.value).lower() in ("true", "yes", "on") else "false"
        if node.tag == _NULL:
            return "null"
        return str(node.value)
    try:
        value = yaml.safe_load(yaml.serialize(node))
    except (yaml.YAMLError, RecursionError):
        raise src.error(node, where, "expected a value that YAML can read") from None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# -- matrix: ---------------------------------------------------------------------------------


def _matrix_section(src: _Source, node: yaml.Node) -> _MatrixSection:
    pairs = _pairs(src, node, "matrix")
    axes: dict[str, list[str]] = {}
    spellings: dict[str, str] = {}
    for key, key_node, value_node in pairs:
        if key not in ("include", "exclude"):
            _check_axis_key(src, key_node, "matrix", key, spellings)
            axes[key] = _vector(src, value_node, _where("matrix", key), key)
    by_key = {key: value_node for key, _, value_node in pairs}
    include = _entries(src, by_key.get("include"), "matrix.include", spellings, None)
    exclude = _entries(src, by_key.get("exclude"), "matrix.exclude", spellings, list(axes))
    if not axes and not include:
        raise src.error(node, "matrix", "no vectors and no include; expected at least one")
    return _MatrixSection(axes, tuple(include), tuple(exclude))


def _check_axis_key(
    src: _Source, node: yaml.Node, where: str, key: str, spellings: dict[str, str]
) -> None:
    """A reserved axis, a label or a distribution name, spelled the same way everywhere."""
    if key in src.labels:
        return
    canonical = key if key in _RESERVED else canonicalize_name(key)
    if key not in _RESERVED and canonical in _RESERVED:
        raise src.error(node, where, f"{_q(key)} is reserved; write {_q(canonical)}")
    if key not in _RESERVED and not _DIST_NAME.fullmatch(key):
        expected = (
            'expected "python", "cuda", "os", "gpu", "resolution", "as-of", "prerelease", '
            'a distribution name such as "numpy", or a key listed in `labels:`'
        )
        raise src.error(node, where, f"{_q(key)} is not a distribution name; {expected}")
    first = spellings.setdefault(canonical, key)
    if first != key:
        problem = f"{_q(key)} names the same distribution as {_q(first)}; write {_q(first)}"
        raise src.error(node, where, problem)


def _vector(src: _Source, node: yaml.Node, where: str, key: str) -> list[str]:
    if not isinstance(node, yaml.SequenceNode):
        raise src.error(node, where, f"expected a list of versions, got {_describe(node)}")
    if not node.value:
        raise src.error(node, where, "empty list; expected at least one version")
    if len(node.value) > src.limits.max_values:
        problem = f"{len(node.value):,} values; the limit is {src.limits.max_values:,} per vector"
        raise src.error(node, where, problem)
    values: list[str] = []
    for index, item in enumerate(node.value):
        item_where = f"{where}[{index}]"
        if isinstance(item, yaml.MappingNode) and key not in src.labels:
            hint = difflib.get_close_matches(key, ("include", "exclude"), n=1, cutoff=0.8)
            suffix = f"; did you mean {_q(hint[0])}?" if hint else ""
            raise src.error(item, item_where, f"expected a version string, got a mapping{suffix}")
        value = _axis_value(src, item, item_where, key)
        if value in values:
            raise src.error(item, item_where, f"duplicate value {_q(value)}")
        values.append(value)
    return values


def _axis_value(src: _Source, node: yaml.Node, where: str, key: str) -> str:
    if key in src.labels:
        return _label_value(src, node, where)
    if key == "as-of":
        return _date(src, node, where)
    text = _scalar_text(src, node, where)
    problem = _value_problem(key, text)
    if problem:
        raise src.error(node, where, problem)
    if key not in _RESERVED and value_kind(text) == "path":
        _check_path_exists(src, node, where, text)
    return text


def _value_problem(key: str, text: str) -> str | None:
    """Why `text` is not a valid value for axis `key`, or None when it is."""
    if key == "python":
        if _PYTHON.fullmatch(text):
            return None
        return f'expected a Python version such as "3.12", "3.12.4" or "3.13t", got {_q(text)}'
    if key == "cuda":
        if text == "none" or _CUDA.fullmatch(text):
            return None
        return f'expected a CUDA version such as "12.4", or "none", got {_q(text)}'
    if key == "os":
        if _RUNNER_LABEL.fullmatch(text):
            return None
        return (
            f'expected a GitHub runner label such as "ubuntu-24.04" or "macos-15", got {_q(text)}'
        )
    if key == "gpu":
        return gpu_problem(text)
    if key == "resolution":
        return (
            None
            if text in RESOLUTIONS
            else _unknown(f"unknown resolution {_q(text)}", text, RESOLUTIONS)
        )
    if key == "prerelease":
        return (
            None
            if text in PRERELEASES
            else _unknown(f"unknown prerelease {_q(text)}", text, PRERELEASES)
        )
    if key == "as-of":
        return _date_problem(text)
    kind = value_kind(text)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return f"a control character in {_q(text)}; a value is one line of printable text"
    if kind == "url" and any(c.isspace() for c in text):
        return f"white space in the URL {_q(text)}; expected a URL without spaces"
    if text == text.strip() and kind != "invalid":
        return None
    return (
        'expected a version ("2.0.2"), a specifier ("~=2.2", ">=2,<3"), "none", '
        f'a local path ("./pkg") or a URL, got {_q(text)} (if {_q(key)} is not a '
        "distribution, list it in `labels:`)"
    )


def _date_problem(text: str) -> str | None:
    """Why `text` is not a past or present `YYYY-MM-DD` day, or None when it is one."""
    expected = "expected a date such as 2024-06-01 (YYYY-MM-DD: the day to install as of)"
    if not _DATE.fullmatch(text):
        return f"{expected}, got {_q(text)}"
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        return f"{expected}, got {_q(text)}, which is not a day of the calendar"
    # a day of slack: "today" east of UTC is already tomorrow there
    latest = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=1)
    if day > latest:
        return f"{expected}, got {_q(text)}, which is in the future"
    return None


def _entries(
    src: _Source,
    node: yaml.Node | None,
    where: str,
    spellings: dict[str, str],
    vector_keys: list[str] | None,
) -> list[_Entry]:
    """`include` (vector_keys None) or `exclude` entries: non-empty mappings of axis values."""
    if node is None:
        return []
    entries = []
    items = _items(src, node, where)
    if len(items) > src.limits.max_entries:
        problem = f"{len(items):,} entries; the limit is {src.limits.max_entries:,}"
        raise src.error(node, where, problem)
    for index, item in enumerate(items):
        item_where = f"{where}[{index}]"
        pairs = _pairs(src, item, item_where)
        if not pairs:
            raise src.error(item, item_where, "empty entry; expected axis: value pairs")
        entry = {}
        for key, key_node, value_node in pairs:
            if vector_keys is None:
                _check_axis_key(src, key_node, item_where, key, spellings)
            elif key not in vector_keys:
                problem = _unknown(f"{_q(key)} is not a matrix vector", key, vector_keys)
                raise src.error(key_node, item_where, problem)
            entry[key] = _axis_value(src, value_node, _where(item_where, key), key)
        entries.append(entry)
    return entries


# -- expect: ---------------------------------------------------------------------------------


def _expectations(
    src: _Source, node: yaml.Node | None, cells: list[dict[str, str]]
) -> tuple[Expectation, ...]:
    """`expect:` entries; `match` keys are the matrix's vectors or keys that `include` adds."""
    if node is None:
        return ()
    keys = list(dict.fromkeys(key for cell in cells for key in cell))
    items = _items(src, node, "expect")
    return tuple(_expectation(src, item, f"expect[{i}]", keys) for i, item in enumerate(items))


def _expectation(src: _Source, node: yaml.Node, where: str, keys: list[str]) -> Expectation:
    nodes = {key: value for key, _, value in _known_pairs(src, node, where, _EXPECT_KEYS)}
    for required in ("match", "status"):
        if required not in nodes:
            raise src.error(node, where, f"missing required key {_q(required)}")
    return Expectation(
        match=_match(src, nodes["match"], _where(where, "match"), keys),
        status=_status(src, nodes["status"], _where(where, "status")),
        reason=_string(src, nodes["reason"], _where(where, "reason")) if "reason" in nodes else "",
    )


def _match(src: _Source, node: yaml.Node, where: str, keys: list[str]) -> _Entry:
    match = {}
    for key, key_node, value_node in _pairs(src, node, where):
        if key not in keys:
            problem = _unknown(f"{_q(key)} is not an axis of the matrix", key, keys)
            raise src.error(key_node, where, problem)
        match[key] = _axis_value(src, value_node, _where(where, key), key)
    return match


def _status(src: _Source, node: yaml.Node, where: str) -> Status:
    text = _string(src, node, where)
    for status in STATUSES:
        if status == text:
            return status
    raise src.error(node, where, _unknown(f"unknown status {_q(text)}", text, STATUSES))
