"""Where in the matrix file a cell comes from: the line an annotation or a JUnit location names.

Kept apart from the loader: it reads the file's node tree again, only for line numbers, and
never fails (a report about a file that changed or vanished since the run still gets written).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["MatrixLines"]


@dataclass(frozen=True)
class MatrixLines:
    """The lines of a matrix file's axis values and `include` entries (1-based)."""

    #: Axis key -> {value as written -> line of that value}, in file order.
    values: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Each `include` entry: its pairs and its line, in file order.
    includes: list[tuple[dict[str, str], int]] = field(default_factory=list)
    #: The line of `matrix:` (or 1), the answer when nothing more precise matches.
    fallback: int = 1
    #: (axis, value) -> the line of its last matching written value: each pair is looked up
    #: once, not once per cell (10,000 cells share a few dozen values).
    _matched: dict[tuple[str, str | None], int | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def read(cls, path: Path) -> MatrixLines:
        """The lines of the matrix file at `path`; no lines (all 1) when it cannot be read."""
        try:
            root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except (OSError, UnicodeError, yaml.YAMLError):
            return cls()
        return cls.from_node(root)

    @classmethod
    def from_node(cls, root: yaml.Node | None) -> MatrixLines:
        if not isinstance(root, yaml.MappingNode):
            return cls()
        section = next(
            (
                (key, value)
                for key, value in root.value
                if isinstance(key, yaml.ScalarNode) and key.value == "matrix"
            ),
            None,
        )
        if section is None or not isinstance(section[1], yaml.MappingNode):
            return cls()
        lines = cls(fallback=section[0].start_mark.line + 1)
        for key, value in section[1].value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            if key.value == "include" and isinstance(value, yaml.SequenceNode):
                for entry in value.value:
                    if isinstance(entry, yaml.MappingNode):
                        pairs = {
                            k.value: v.value
                            for k, v in entry.value
                            if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode)
                        }
                        lines.includes.append((pairs, entry.start_mark.line + 1))
            elif key.value != "exclude":
                items = value.value if isinstance(value, yaml.SequenceNode) else [value]
                lines.values[key.value] = {
                    item.value: item.start_mark.line + 1
                    for item in items
                    if isinstance(item, yaml.ScalarNode)
                }
        return lines

    def line(self, axes: Mapping[str, str]) -> int:
        """The line that made the cell with these `axes`.

        The last `include` entry that the cell carries all of (it added or extended the cell),
        else the value of the last axis (in file order) the cell takes from the vectors, else
        the `matrix:` line.
        """
        for pairs, line in reversed(self.includes):
            if pairs and all(_same(axes.get(k), v) for k, v in pairs.items()):
                return line
        found = self.fallback
        for key, by_value in self.values.items():
            value = axes.get(key)
            pair = (key, value)
            if pair not in self._matched:
                matched = None
                for written, line in by_value.items():
                    if _same(value, written):
                        matched = line
                self._matched[pair] = matched
            matched_line = self._matched[pair]
            if matched_line is not None:
                found = matched_line
        return found


def _same(value: str | None, written: str) -> bool:
    """An axis value equals a value as written in YAML (`true` and `True` are one boolean)."""
    if value is None:
        return False
    return value == written or value.lower() == written.lower() in ("true", "false")
