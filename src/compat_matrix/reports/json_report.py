"""compat.json: every cell result, unabridged, for machines (diffs, dashboards, baselines)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Sequence
from typing import BinaryIO

from compat_matrix.reports.metadata_truth import MetadataFinding
from compat_matrix.results import SCHEMA, CellResult, cell_json

__all__ = ["CellLines", "render_json", "write_json"]


class CellLines:
    """Each collected cell's line of compat.json, kept in a temporary file rather than memory.

    A cell file the harness wrote is that line already (`cell_json`), so its bytes are copied
    instead of encoded again: encoding is the costliest step of a 10,000-cell report. Each line
    is spooled with the `,\n` that follows it in compat.json, so `copy` moves line and
    separator from the spool into compat.json in one kernel copy (`os.sendfile`), never
    through Python's memory.
    """

    def __init__(self) -> None:
        #: The spool files: the first takes `add`'s lines, others a helper's (`extra_spool`).
        self._spools: list[BinaryIO] = []
        with contextlib.suppress(OSError):  # then lines are held in memory
            self._spools.append(tempfile.TemporaryFile(buffering=0))  # noqa: SIM115
        #: Where each line is: spool number, offset, length (without its separator).
        self._where: dict[str, tuple[int, int, int]] = {}
        #: Lines the temporary file could not take (no temporary folder, a full disk).
        self._held: dict[str, bytes] = {}
        self._end = 0
        #: False once `os.sendfile` failed (a platform without it for files): pread + write.
        self._sendfile = hasattr(os, "sendfile")

    def can_spool(self) -> bool:
        """Whether lines go to a spool file (else they are held in memory)."""
        return bool(self._spools)

    def add(self, cell_id: str, line: bytes, size: int | None = None) -> None:
        """Keep `line` (its first `size` bytes, when given: a cell file without its newline,
        spooled without being copied first) as `cell_id`'s line."""
        self._where.pop(cell_id, None)
        self._held.pop(cell_id, None)
        size = len(line) if size is None else size
        try:
            if not self._spools:
                raise OSError
            self.write_at(0, memoryview(line)[:size], self._end)
        except OSError:
            self._held[cell_id] = line[:size]
            return
        self._where[cell_id] = (0, self._end, size)
        self._end += size + len(_SEPARATOR)

    def extra_spool(self) -> int | None:
        """A new spool file for another process (a forked helper) to write lines into with
        `write_at`; its number, or None when no temporary file can be made."""
        try:
            self._spools.append(tempfile.TemporaryFile(buffering=0))  # noqa: SIM115
        except OSError:
            return None
        return len(self._spools) - 1

    def write_at(self, spool: int, line: memoryview, offset: int) -> None:
        """Write `line` and its separator at `offset` of spool number `spool`."""
        fd = self._spools[spool].fileno()
        if hasattr(os, "pwritev"):
            written = os.pwritev(fd, [line, _SEPARATOR], offset)
        else:  # pragma: no cover - not on Linux
            written = os.pwrite(fd, bytes(line) + _SEPARATOR, offset)
        if written != len(line) + len(_SEPARATOR):
            msg = "a short write to the spool of compat.json lines"
            raise OSError(msg)

    def place(self, cell_id: str, spool: int, offset: int, size: int) -> None:
        """Take the line another process wrote with `write_at` as `cell_id`'s."""
        self._where.pop(cell_id, None)
        self._held.pop(cell_id, None)
        self._where[cell_id] = (spool, offset, size)

    def get(self, cell_id: str) -> bytes | None:
        held = self._held.get(cell_id)
        if held is not None:
            return held
        where = self._where.get(cell_id)
        if where is None:
            return None
        return os.pread(self._spools[where[0]].fileno(), where[2], where[1])

    def copy(self, cell_id: str, out: BinaryIO, *, separator: bool) -> bool:
        """Write `cell_id`'s line (and `,\\n` after it when `separator`) to `out`; False when
        no line of it is held (the caller encodes the result instead)."""
        held = self._held.get(cell_id)
        if held is not None:
            out.write(held + _SEPARATOR if separator else held)
            return True
        where = self._where.get(cell_id)
        if where is None:
            return False
        spool = self._spools[where[0]].fileno()
        offset, size = where[1], where[2] + (len(_SEPARATOR) if separator else 0)
        if self._sendfile:
            out.flush()  # what `out` buffered goes first
            if _send(out.fileno(), spool, offset, size):
                return True
            self._sendfile = False
        data = os.pread(spool, size, offset)
        if len(data) != size:
            msg = "the spool of compat.json lines was cut short"
            raise OSError(msg)
        out.write(data)
        return True

    def close(self) -> None:
        for spool in self._spools:
            spool.close()


_SEPARATOR = b",\n"


#: What `os.sendfile` says where it cannot copy between these files (macOS: the output is not
#: a socket); the line is copied through memory then.
_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP})


def _send(out_fd: int, in_fd: int, offset: int, size: int) -> bool:
    """Copy `size` bytes at `offset` of `in_fd` to `out_fd`'s position, in the kernel; False,
    with nothing written, where the platform cannot. Any other failure (a full disk) raises
    OSError, as a failed write does."""
    try:
        sent = os.sendfile(out_fd, in_fd, offset, size)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return False
        raise
    while sent < size:
        more = os.sendfile(out_fd, in_fd, offset + sent, size - sent)
        if more <= 0:
            raise OSError(errno.EIO, "the copy of a compat.json line stopped short")
        sent += more
    return True


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


def write_json(
    out: BinaryIO,
    name: str,
    results: Sequence[CellResult],
    lines: CellLines | None = None,
    *,
    metadata: Sequence[MetadataFinding] | None = None,
) -> None:
    """Write `render_json(name, results, metadata=...)` to `out` as UTF-8, each line held in
    `lines` (a cell file's own bytes) copied from its spool by the kernel, the others encoded
    (compat.json of 10,000 cells is 170 MB: read, joined and written again through Python it
    took longer than every other report)."""
    head = _head(name, metadata).encode("ascii")
    if not results:
        out.write(head + b', "cells": []}\n')
        return
    out.write(head + b', "cells": [\n')
    last = len(results) - 1
    for index, result in enumerate(results):
        more = index < last
        if lines is None or not lines.copy(result.id, out, separator=more):
            out.write(cell_json(result).encode("ascii") + (_SEPARATOR if more else b""))
    out.write(b"\n]}\n")
