"""compat.json: every cell result, unabridged, for machines (diffs, dashboards, baselines)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from compat_matrix.reports.metadata_truth import MetadataFinding
from compat_matrix.results import SCHEMA, CellResult, cell_json

__all__ = ["CellLines", "json_chunks", "render_json"]


class CellLines:
    """Each collected cell's line of compat.json, kept in a temporary file rather than memory.

    A cell file the harness wrote is that line already (`cell_json`), so its bytes are copied
    instead of encoded again: encoding is the costliest step of a 10,000-cell report.
    """

    def __init__(self) -> None:
        try:
            self._spool: BinaryIO | None = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115
        except OSError:
            self._spool = None
        self._where: dict[str, tuple[int, int]] = {}
        #: Lines the temporary file could not take (no temporary folder, a full disk).
        self._held: dict[str, bytes] = {}
        self._end = 0

    def add(self, cell_id: str, line: bytes) -> None:
        self._where.pop(cell_id, None)
        self._held.pop(cell_id, None)
        try:
            if self._spool is None or os.pwrite(self._spool.fileno(), line, self._end) != len(line):
                raise OSError
        except OSError:
            self._held[cell_id] = line
            return
        self._where[cell_id] = (self._end, len(line))
        self._end += len(line)

    def get(self, cell_id: str) -> bytes | None:
        held = self._held.get(cell_id)
        if held is not None:
            return held
        where = self._where.get(cell_id)
        if where is None or self._spool is None:
            return None
        return os.pread(self._spool.fileno(), where[1], where[0])

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


def _head(name: str, metadata: Sequence[MetadataFinding] | None) -> str:
    top: dict[str, object] = {"schema": SCHEMA, "name": name}
    if metadata is not None:
        top["metadata"] = [finding.to_dict() for finding in metadata]
    return json.dumps(top, ensure_ascii=True)[:-1]


def render_json(
    name: str,
    results: Sequence[CellResult],
    *,
    metadata: Sequence[MetadataFinding] | None = None,
) -> str:
    """`{"schema": 1, "name": ..., "cells": [...]}`, cells in job order.

    `metadata`, when the metadata check ran, is a top-level `"metadata": [finding, ...]` list.

    Messages are kept exactly as captured (the contract promises the original message); ASCII
    escapes make any text, even a lone surrogate, safe to write as UTF-8.
    """
    # One cell per line: the C encoder (which `indent` turns off) keeps 10,000 cells fast,
    # and a line per cell still diffs and greps well.
    head = _head(name, metadata)
    cells = ",\n".join(cell_json(result) for result in results)
    return f'{head}, "cells": [\n{cells}\n]}}\n' if cells else f'{head}, "cells": []}}\n'


def json_chunks(
    name: str,
    results: Sequence[CellResult],
    lines: CellLines | None = None,
    *,
    metadata: Sequence[MetadataFinding] | None = None,
) -> Iterator[bytes]:
    """`render_json(name, results, metadata=...)` as UTF-8, piece by piece; a result's line is
    taken from `lines` when it has one (the cell file's own bytes), else encoded."""
    head = _head(name, metadata).encode("ascii")
    if not results:
        yield head + b', "cells": []}\n'
        return
    yield head + b', "cells": [\n'
    for index, result in enumerate(results):
        line = lines.get(result.id) if lines is not None else None
        if line is None:
            line = cell_json(result).encode("ascii")
        yield line + (b",\n" if index < len(results) - 1 else b"\n]}\n")
