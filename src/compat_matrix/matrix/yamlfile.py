"""Reading a YAML file the project accepts (a matrix, a CUDA table) into nodes, within limits.

pyyaml's node API keeps a start mark on every node, so every later error points at the key or
value a person has to edit. A file may come from a pull request on a shared runner, so its size,
its nesting, the values it expands to (aliases followed) and the length of each value are bounded
before anything else looks at it.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from compat_matrix.errors import MatrixError

__all__ = ["DEFAULT_LIMITS", "Limits", "compose_yaml"]

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Limits:
    """What one matrix file may ask for: checked before any work, each an exit-2 error.

    A matrix file may come from a pull request on a shared runner, so its size, its nesting, the
    cells it expands to and the length of each value are bounded; the loader then finishes in
    well under a second on any file it accepts. `max_cells` is raised with `--max-cells` (or
    `COMPAT_MAX_CELLS`); the others are fixed.
    """

    max_bytes: int = 1024 * 1024
    max_depth: int = 16
    #: Values in the file (lines and commas, before parsing), and values the YAML expands to
    #: with aliases followed (a "billion laughs" file stops here).
    max_nodes: int = 20_000
    max_scalar: int = 4096
    max_cells: int = 10_000
    #: Values of one vector, and entries of `include` / `exclude`.
    max_values: int = 1_000
    max_entries: int = 256


DEFAULT_LIMITS = Limits()


def compose_yaml(text: str, path: str, limits: Limits = DEFAULT_LIMITS) -> yaml.Node | None:
    """The document's node tree, within `limits`; every problem is a `MatrixError` at its mark.

    Also used for CUDA tables, so both files get the same bounds and messages.
    """
    if len(text) > limits.max_bytes:
        problem = f"the file is larger than {limits.max_bytes:,} bytes, the limit for a matrix file"
        raise MatrixError(path, 1, 1, problem)
    # Parsing cost grows faster than the number of values: count them before parsing.
    values = text.count(",") + text.count("\n")
    if values > limits.max_nodes:
        problem = f"the file holds more than {limits.max_nodes:,} values (lines and commas)"
        raise MatrixError(path, 1, 1, problem)
    root = _compose(text, path)
    if root is not None:
        _check_tree(root, path, limits)
    return root


def _check_tree(root: yaml.Node, path: str, limits: Limits) -> None:
    """Depth, expanded size (aliases followed once per use) and scalar length, without recursion.

    Sizes of finished nodes are remembered, so shared aliases cost nothing to count; a node that
    contains itself never finishes and is stopped by the depth limit.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if key in sizes and not done:
            continue
        if depth > limits.max_depth:
            mark = node.start_mark
            problem = f"the YAML is nested more than {limits.max_depth} levels deep"
            raise MatrixError(path, mark.line + 1, mark.column + 1, problem)
        if isinstance(node, yaml.ScalarNode):
            if len(str(node.value)) > limits.max_scalar:
                mark = node.start_mark
                problem = (
                    f"a value of {len(str(node.value)):,} characters; the limit is "
                    f"{limits.max_scalar:,}"
                )
                raise MatrixError(path, mark.line + 1, mark.column + 1, problem)
            sizes[key] = 1
            continue
        children: list[yaml.Node] = (
            [child for pair in node.value for child in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if done:
            sizes[key] = 1 + sum(sizes.get(id(child), 1) for child in children)
            if sizes[key] > limits.max_nodes:
                mark = node.start_mark
                problem = (
                    f"the YAML expands to more than {limits.max_nodes:,} values "
                    "(anchors and aliases included)"
                )
                raise MatrixError(path, mark.line + 1, mark.column + 1, problem)
            continue
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


#: Below this size a file with a YAML error is parsed again by pyyaml's Python parser, whose
#: messages name what they found ("found undefined alias 'versions'"); libyaml's are terser.
_REPARSE_BYTES = 64 * 1024


def _compose(text: str, path: str) -> yaml.Node | None:
    """The document's node tree; YAML syntax errors become `MatrixError` at pyyaml's mark.

    libyaml (when pyyaml has it) parses, being several times faster than the Python parser.
    """
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError:
        nesting = text.count("[") + text.count("{")
        if _LOADER is yaml.SafeLoader or len(text) > _REPARSE_BYTES or nesting > 500:
            return _compose_with(text, path, _LOADER)
    return _compose_with(text, path, yaml.SafeLoader)


def _compose_with(text: str, path: str, loader: type[yaml.SafeLoader]) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and problem.startswith("but "):
            problem = f"{exc.context}, {problem}"
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise MatrixError(path, line, column, problem) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"unacceptable character #x{code:04x}: {exc.reason}"
        raise MatrixError(path, line, column, problem) from None
    except yaml.YAMLError as exc:
        raise MatrixError(path, 1, 1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise MatrixError(path, 1, 1, "the YAML is nested too deeply") from None
