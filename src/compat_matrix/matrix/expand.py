"""Expand a matrix into cells with GitHub Actions' `strategy.matrix` rules, and name each cell.

The rules are GitHub's to the letter (github/docs: data/reusables/actions/jobs/matrix-*.md), so a
matrix means the same here as in a workflow: Cartesian product in declaration order (first key
slowest), partial-match `exclude` first, then each `include` extends every *original*
combination it does not contradict, or else becomes a job of its own at the end.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence

from packaging.specifiers import InvalidSpecifier, Specifier

from compat_matrix.matrix.model import Cell, Matrix, value_kind

__all__ = ["cell_id", "expand", "expand_combinations"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")

#: Specifier operators as words, so ids stay within `[A-Za-z0-9._+-]`.
_OPERATOR_WORDS = {
    "~=": "compat",
    "==": "eq",
    "===": "eq",
    "!=": "ne",
    "<=": "le",
    ">=": "ge",
    "<": "lt",
    ">": "gt",
}


def expand_combinations(
    vectors: Mapping[str, Sequence[str]],
    include: Sequence[Mapping[str, str]],
    exclude: Sequence[Mapping[str, str]],
) -> list[dict[str, str]]:
    """The jobs GitHub Actions would run for this `strategy.matrix`, in GitHub's order."""
    originals = [
        combination
        for combination in _product(vectors)
        if not any(_contains(combination, entry) for entry in exclude)
    ]
    jobs = [dict(combination) for combination in originals]
    # An include fits an original combination when it agrees on every vector key it names, so
    # index the originals by (key, value) and intersect, instead of comparing every pair.
    index: dict[tuple[str, str], set[int]] = {}
    for i, original in enumerate(originals):
        for pair in original.items():
            index.setdefault(pair, set()).add(i)
    everyone = range(len(originals))
    appended: list[dict[str, str]] = []
    for entry in include:
        constrained = [(key, value) for key, value in entry.items() if key in vectors]
        fits: Iterable[int] = everyone
        if constrained:
            sets = sorted((index.get(pair, set()) for pair in constrained), key=len)
            fits = sorted(sets[0].intersection(*sets[1:]))
        placed = False
        for i in fits:
            jobs[i].update(entry)
            placed = True
        if not placed:
            appended.append(dict(entry))
    return jobs + appended


def _product(vectors: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Cartesian product, first key slowest; no vectors means no combinations (include-only)."""
    if not vectors:
        return []
    keys = list(vectors)
    return [dict(zip(keys, values)) for values in itertools.product(*vectors.values())]


def _contains(combination: Mapping[str, str], entry: Mapping[str, str]) -> bool:
    """Partial match: every pair of `entry` is in `combination`."""
    return all(combination.get(key) == value for key, value in entry.items())


def cell_id(
    axes: Mapping[str, str],
    labels: Collection[str] = (),
    tokens: dict[tuple[str, str], str] | None = None,
) -> str:
    """A readable id such as `py3.11-numpy2.0.2-pandas_compat2.2`, made of `[A-Za-z0-9._+-]`.

    `labels` are the matrix's label keys: their values are shown as written (`experimentaltrue`).
    `tokens` remembers each (key, value)'s token across calls (a matrix of 10,000 cells has a
    few dozen values, each parsed once instead of once per cell).
    """
    parts = []
    for pair in axes.items():
        token = tokens.get(pair) if tokens is not None else None
        if token is None:
            key, value = pair
            token = _UNSAFE.sub("", _token(key, value, key in labels))
            if tokens is not None:
                tokens[pair] = token
        if token:
            parts.append(token)
    return "-".join(parts) or "cell"


def _token(key: str, value: str, label: bool = False) -> str:
    if label:
        return f"{key}{_label_token(value)}"
    if key == "python":
        return f"py{value}"
    if key == "cuda":
        return "cpu" if value == "none" else f"cu{value}"
    if key in ("os", "resolution"):
        return value
    if key == "as-of":
        return f"asof{value}"
    if key == "prerelease":
        return f"pre-{value}"
    kind = value_kind(value)
    if kind == "none":
        return f"no-{key}"
    if kind == "path":
        return f"{key}_local"
    if kind == "url":
        return f"{key}_url"
    if kind == "specifier":
        return _specifier_token(key, value)
    return f"{key}{value}"


def _label_token(value: str) -> str:
    """A label as written; an object value (`{"version":20}`) by its leaf values: `20`."""
    if not value.startswith(("{", "[")):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    leaves: list[str] = []

    def walk(item: object) -> None:
        if isinstance(item, dict):
            for child in item.values():
                walk(child)
        elif isinstance(item, list):
            for child in item:
                walk(child)
        else:
            leaves.append(str(item))

    walk(parsed)
    return "_".join(leaves)[:60]


def _specifier_token(key: str, value: str) -> str:
    """`==2.0` -> `numpy2.0`; `>=2,<3` -> `numpy_ge2_lt3`; `==2.*` -> `numpy2.x`."""
    try:
        clauses = [Specifier(clause.strip()) for clause in value.split(",")]
    except InvalidSpecifier:
        return f"{key}{value}"
    if len(clauses) == 1 and clauses[0].operator == "==":
        return f"{key}{_version_token(clauses[0].version)}"
    words = [f"{_OPERATOR_WORDS[c.operator]}{_version_token(c.version)}" for c in clauses]
    return "_".join([key, *words])


def _version_token(version: str) -> str:
    return version.replace("*", "x")


def expand(matrix: Matrix) -> list[Cell]:
    """The matrix's cells in job order, each with a unique id (same matrix, same ids)."""
    combinations = expand_combinations(matrix.axes, matrix.include, matrix.exclude)
    labels = frozenset(matrix.labels)
    used: set[str] = set()
    tokens: dict[tuple[str, str], str] = {}
    cells = []
    for axes in combinations:
        identifier = _unique(cell_id(axes, labels, tokens), axes, used)
        used.add(identifier)
        cells.append(Cell(id=identifier, axes=axes, labels=labels))
    return cells


def _unique(identifier: str, axes: Mapping[str, str], used: set[str]) -> str:
    """Disambiguate a clash with a digest of the axes (deterministic), then with a counter."""
    if identifier not in used:
        return identifier
    canonical = json.dumps(axes, sort_keys=True, separators=(",", ":"))
    candidate = f"{identifier}-{hashlib.sha256(canonical.encode()).hexdigest()[:6]}"
    base, counter = candidate, 2
    while candidate in used:
        candidate, counter = f"{base}-{counter}", counter + 1
    return candidate
