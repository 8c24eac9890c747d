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

__all__ = ["CellLines", "identity", "render_json", "write_json"]


class CellLines:
    """Each collected cell's line of compat.json, kept out of memory.

    A cell file the harness wrote is that line already (`cell_json`): the file itself is
    copied into compat.json when it is written (`os.sendfile`, by the kernel, never through
    Python's memory), neither encoded again (the costliest step of a 10,000-cell report) nor
    copied to a spool first. Other lines (a result encoded again) go to a temporary file, each
    with the `,\n` that follows it in compat.json.

    `encodable`: the results are whole, so a cell file replaced since it was read (a cell
    written again meanwhile) gives way to its result, encoded (the line read, as it was).
    Otherwise (results without some details) that is an OSError: the line is gone.
    """

    def __init__(self, *, encodable: bool = False) -> None:
        self._encodable = encodable
        self._spool: BinaryIO | None = None
        with contextlib.suppress(OSError):  # then lines are held in memory
            self._spool = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115
        #: Where each spooled line is: offset, length (without its separator).
        self._where: dict[str, tuple[int, int]] = {}
        #: The cell files that are lines: path, length of the line, `identity` of the file.
        self._files: dict[str, tuple[str, int, tuple[int, ...]]] = {}
        #: Lines the temporary file could not take (no temporary folder, a full disk).
        self._held: dict[str, bytes] = {}
        self._end = 0
        #: False once `os.sendfile` failed (a platform without it for files): pread + write.
        self._sendfile = hasattr(os, "sendfile")

    def _forget(self, cell_id: str) -> None:
        self._where.pop(cell_id, None)
        self._files.pop(cell_id, None)
        self._held.pop(cell_id, None)

    def add(self, cell_id: str, line: bytes) -> None:
        """Keep `line` as `cell_id`'s line."""
        self._forget(cell_id)
        try:
            if self._spool is None:
                raise OSError
            fd = self._spool.fileno()
            if hasattr(os, "pwritev"):
                written = os.pwritev(fd, [line, _SEPARATOR], self._end)
            else:  # a Python built without it (macOS before 11): one copy of the line more
                written = os.pwrite(fd, line + _SEPARATOR, self._end)
            if written != len(line) + len(_SEPARATOR):
                raise OSError
        except OSError:
            self._held[cell_id] = line
            return
        self._where[cell_id] = (self._end, len(line))
        self._end += len(line) + len(_SEPARATOR)

    def add_file(self, cell_id: str, path: str, size: int, identity: tuple[int, ...]) -> None:
        """Take the first `size` bytes of the cell file `path` as `cell_id`'s line; `identity`
        (of the file as read) makes sure it is still that file when it is copied."""
        self._forget(cell_id)
        self._files[cell_id] = (path, size, identity)

    def copy(self, cell_id: str, out: BinaryIO, *, separator: bool) -> bool:
        """Write `cell_id`'s line (and `,\n` after it when `separator`) to `out`; False when
        no line of it is held (the caller encodes the result instead), also when its cell file
        was replaced and the results are `encodable` (OSError when they are not)."""
        held = self._held.get(cell_id)
        if held is not None:
            out.write(held + _SEPARATOR if separator else held)
            return True
        where = self._where.get(cell_id)
        if where is not None and self._spool is not None:
            size = where[1] + (len(_SEPARATOR) if separator else 0)
            self._send(out, self._spool.fileno(), where[0], size)
            return True
        source = self._files.get(cell_id)
        if source is None:
            return False
        path, size, seen = source
        fd = os.open(path, os.O_RDONLY)
        try:
            if identity(os.fstat(fd)) != seen:
                if self._encodable:
                    return False
                msg = "the cell file changed while the report was being written: report again"
                raise OSError(errno.ESTALE, msg, path)
            self._send(out, fd, 0, size)
        finally:
            os.close(fd)
        if separator:
            out.write(_SEPARATOR)
        return True

    def _send(self, out: BinaryIO, fd: int, offset: int, size: int) -> None:
        """Copy `size` bytes at `offset` of `fd` to `out`."""
        if self._sendfile:
            out.flush()  # what `out` buffered goes first
            if _send(out.fileno(), fd, offset, size):
                return
            self._sendfile = False
        data = os.pread(fd, size, offset)
        if len(data) != size:
            msg = "a line of compat.json was cut short"
            raise OSError(errno.EIO, msg)
        out.write(data)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


def identity(status: os.stat_result) -> tuple[int, ...]:
    """What tells a file from the one that replaced it (cell files are replaced, not edited)."""
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


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
    `lines` (a cell file's own bytes) copied by the kernel, the others encoded
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
