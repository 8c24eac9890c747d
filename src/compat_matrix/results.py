"""The result model (`CellResult`, `ProbeResult`) and its JSON form, the contract of compat.json.

Cell files are written atomically (temp file + rename) so a killed run never leaves half a file.
Beside each, `<id>.summary` holds the cell as reporters read it (`cell_summary`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from compat_matrix.matrix.model import STATUSES, Status

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "CELL_KEYS",
    "REPORTED_DETAILS",
    "SCHEMA",
    "SUMMARY_SUFFIX",
    "CellResult",
    "ExpectationOutcome",
    "ProbeResult",
    "PythonInfo",
    "cell_fields",
    "cell_json",
    "cell_summary",
    "fill_stage",
    "from_cell_fields",
    "load_cell_results",
    "new_stage",
    "read_cell_result",
    "read_summary",
    "reported_details",
    "stage_file",
    "stage_with",
    "write_atomic",
    "write_atomic_bytes",
    "write_cell_result",
]

SCHEMA = 1

#: The keys of a cell's JSON, in the order `CellResult.to_dict` writes them.
CELL_KEYS = (
    "id",
    "axes",
    "status",
    "category",
    "message",
    "hint",
    "python",
    "resolved",
    "probes",
    "durations",
    "expectation",
    "fingerprint",
    "lock",
    "gpu_unverified",
    "latent",
    "static_only",
    "indexes",
    "resolution",
    "as-of",
    "prerelease",
)

#: The probe `details` keys a reporter reads (finding owners, GPU coverage): a cell's summary,
#: and the results `report` holds, keep only these (compat.json gets every detail, from the
#: cell file).
REPORTED_DETAILS = frozenset({"owner", "gpus", "table"})
_REPORTED = tuple(sorted(REPORTED_DETAILS))


def reported_details(details: dict[str, Any]) -> dict[str, Any]:
    """The `REPORTED_DETAILS` of a probe's `details`: `details` itself when it has no other
    (a summary's probes have been cut already)."""
    if REPORTED_DETAILS.issuperset(details):
        return details
    if REPORTED_DETAILS.isdisjoint(details):
        return {}
    return {k: details[k] for k in _REPORTED if k in details}


#: Probe-level statuses (a probe never says unsupported/conflict: those come from installing).
#: "latent": a finding on a file the cell's imports never load, or that loads fine in its
#: package's process: it fails only when loaded on its own, so the cell still passes.
ProbeStatus = str  # "pass" | "fail" | "latent" | "skip" | "error"


@dataclass
class ProbeResult:
    """One check of one target (a module, a file, the environment) by one probe."""

    probe: str
    target: str
    status: ProbeStatus
    category: str | None = None
    message: str = ""
    hint: str = ""
    duration_s: float = 0.0
    #: Free-form evidence (versions, import time, paths searched); not part of the contract.
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        return cls(
            probe=str(data["probe"]),
            target=str(data["target"]),
            status=str(data["status"]),
            category=data.get("category"),
            message=str(data.get("message") or ""),
            hint=str(data.get("hint") or ""),
            duration_s=float(data.get("duration_s") or 0.0),
            details=dict(data.get("details") or {}),
        )


@dataclass
class PythonInfo:
    version: str
    implementation: str = "cpython"
    abi: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PythonInfo:
        return cls(
            version=str(data.get("version", "")),
            implementation=str(data.get("implementation", "")),
            abi=str(data.get("abi", "")),
        )


@dataclass
class ExpectationOutcome:
    """How the cell compares with the matrix's `expect:` entries (absent: no expectation)."""

    status: Status
    met: bool
    reason: str = ""


@dataclass
class CellResult:
    id: str
    axes: dict[str, str]
    status: Status
    category: str | None = None
    message: str = ""
    hint: str = ""
    python: PythonInfo | None = None
    resolved: dict[str, str] = field(default_factory=dict)
    probes: list[ProbeResult] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=lambda: {"build": 0.0, "probes": 0.0})
    expectation: ExpectationOutcome | None = None
    #: Hash of the cell's inputs; `--resume` reruns a cell only when it changed.
    fingerprint: str = ""
    #: Path of the cell's lock file, relative to the report directory.
    lock: str | None = None
    #: True when the cell's GPU checks could not run (no driver): "GPU unverified".
    gpu_unverified: bool = False
    #: True when some finding is latent ("fails if loaded on its own", a file no import loads):
    #: a `pass` cell with it is marked "pass (latent)".
    latent: bool = False
    #: True when the verdict comes from reading another platform's resolution and wheels
    #: (no install, no import): "static only".
    static_only: bool = False
    #: Non-default package indexes and index strategy the installer used, as options
    #: (`--extra-index-url URL`, `--index-strategy unsafe-best-match`), and installer variables
    #: that change how it picks versions (`--resolution lowest ($UV_RESOLUTION)`); empty: none.
    indexes: list[str] = field(default_factory=list)
    #: How the installer picked versions: `resolution` strategy, the `as-of` day (None: today)
    #: and the `prerelease` mode (None: the installer's default).
    resolution: str = "highest"
    as_of: str | None = None
    prerelease: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            msg = f"unknown cell status {self.status!r}"
            raise ValueError(msg)

    @property
    def selection(self) -> list[str]:
        """How versions were picked, where not the default: `resolution: lowest-direct`,
        `as-of: 2024-06-01`, `prerelease: allow` (reports show it even on a passing cell)."""
        shown = [f"resolution: {self.resolution}"] if self.resolution != "highest" else []
        shown += [f"as-of: {self.as_of}"] if self.as_of else []
        shown += [f"prerelease: {self.prerelease}"] if self.prerelease else []
        return shown

    def to_dict(self) -> dict[str, Any]:
        """The compat.json form. Written by hand: `dataclasses.asdict` deep-copies every value
        and dominates merging 10,000 cells."""
        return {
            "id": self.id,
            "axes": dict(self.axes),
            "status": self.status,
            "category": self.category,
            "message": self.message,
            "hint": self.hint,
            "python": None
            if self.python is None
            else {
                "version": self.python.version,
                "implementation": self.python.implementation,
                "abi": self.python.abi,
            },
            "resolved": dict(self.resolved),
            "probes": [
                {
                    "probe": p.probe,
                    "target": p.target,
                    "status": p.status,
                    "category": p.category,
                    "message": p.message,
                    "hint": p.hint,
                    "duration_s": p.duration_s,
                    "details": p.details,
                }
                for p in self.probes
            ],
            "durations": dict(self.durations),
            "expectation": None
            if self.expectation is None
            else {
                "status": self.expectation.status,
                "met": self.expectation.met,
                "reason": self.expectation.reason,
            },
            "fingerprint": self.fingerprint,
            "lock": self.lock,
            "gpu_unverified": self.gpu_unverified,
            "latent": self.latent,
            "static_only": self.static_only,
            "indexes": list(self.indexes),
            "resolution": self.resolution,
            "as-of": self.as_of,
            "prerelease": self.prerelease,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellResult:
        python = data.get("python")
        expectation = data.get("expectation")
        return cls(
            id=str(data["id"]),
            axes={str(k): str(v) for k, v in dict(data.get("axes") or {}).items()},
            status=cast("Status", data["status"]),
            category=data.get("category"),
            message=str(data.get("message") or ""),
            hint=str(data.get("hint") or ""),
            python=PythonInfo.from_dict(python) if python else None,
            resolved={str(k): str(v) for k, v in dict(data.get("resolved") or {}).items()},
            probes=[ProbeResult.from_dict(p) for p in data.get("probes") or []],
            durations={str(k): float(v) for k, v in dict(data.get("durations") or {}).items()},
            expectation=ExpectationOutcome(**expectation) if expectation else None,
            fingerprint=str(data.get("fingerprint") or ""),
            lock=data.get("lock"),
            gpu_unverified=bool(data.get("gpu_unverified", False)),
            latent=bool(data.get("latent", False)),
            static_only=bool(data.get("static_only", False)),
            indexes=[str(item) for item in data.get("indexes") or []],
            resolution=str(data.get("resolution") or "highest"),
            as_of=_optional_text(data.get("as-of")),
            prerelease=_optional_text(data.get("prerelease")),
        )


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _read_umask() -> int:
    """The process umask. Reading it means setting it, so it is read once, at import, before
    any cell thread could create a file under the briefly changed mask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_atomic(path: Path, text: str) -> None:
    """Write `text` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; a report is read by the CI's upload step and by others,
        # so give it the mode `open()` would: 0666 less the umask.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic_bytes(path: Path, chunks: Iterable[bytes]) -> None:
    """`write_atomic` for a file written piece by piece (compat.json of 10,000 cells is
    never held in memory whole)."""
    staged = stage_file(path, chunks)
    try:
        staged.replace(path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def stage_file(path: Path, chunks: Iterable[bytes]) -> Path:
    """Write `chunks` to a new temporary file beside `path`, flushed to disk; the caller
    renames it over `path` (so several files can be written before any is replaced)."""

    def write(handle: BinaryIO) -> None:
        for chunk in chunks:
            handle.write(chunk)

    return stage_with(path, write)


def stage_with(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """`stage_file` for a writer that needs the file itself: `write` gets it open for binary
    writing (compat.json copies its cell lines into it in the kernel, not through Python)."""
    fd, tmp = new_stage(path)
    try:
        fill_stage(fd, write)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def new_stage(path: Path) -> tuple[int, Path]:
    """A new, empty temporary file beside `path`, open for writing (its descriptor), with the
    mode `open()` gives; `fill_stage` writes it. Made apart so that another process can fill
    a file whose name this one knows (and removes, whatever happens to that process)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; a report is read by the CI's upload step and by others,
        # so give it the mode `open()` would: 0666 less the umask.
        os.fchmod(fd, 0o666 & ~_UMASK)
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, Path(tmp)


def fill_stage(fd: int, write: Callable[[BinaryIO], None]) -> None:
    """Write a file of `new_stage` with `write`, flush it to disk and close it."""
    with os.fdopen(fd, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def cell_json(result: CellResult) -> str:
    """The one-line JSON of a cell: its cell file's content and its line in compat.json.

    ASCII escapes make any text, even a lone surrogate, safe to write as UTF-8. The same bytes
    in both places let `report` copy a cell file into compat.json without encoding it again.
    """
    return json.dumps(result.to_dict(), ensure_ascii=True)


#: A cell file's summary: `cells/<id>.summary` beside `cells/<id>.json`. Not `.json`, so that
#: versions without summaries (which read every `cells/*.json`) pass it by.
SUMMARY_SUFFIX = ".summary"
#: 2: the cell's fields by position (`cell_fields`); a summary of another version is passed by
#: (the cell file is parsed).
_SUMMARY_VERSION = 2


def cell_fields(result: CellResult) -> tuple[Any, ...]:
    """`result` as the values of its fields in `CellResult`'s order, its python, probes and
    expectation as tuples of theirs (`from_cell_fields` makes it again). A summary holds them,
    and a report's helper sends them: lists of values parse, marshal and unpack in a fraction
    of the time of the dicts of a cell file."""
    python, expectation = result.python, result.expectation
    return (
        result.id,
        result.axes,
        result.status,
        result.category,
        result.message,
        result.hint,
        None if python is None else (python.version, python.implementation, python.abi),
        result.resolved,
        [
            (p.probe, p.target, p.status, p.category, p.message, p.hint, p.duration_s, p.details)
            for p in result.probes
        ],
        result.durations,
        None if expectation is None else (expectation.status, expectation.met, expectation.reason),
        result.fingerprint,
        result.lock,
        result.gpu_unverified,
        result.latent,
        result.static_only,
        result.indexes,
        result.resolution,
        result.as_of,
        result.prerelease,
    )


def from_cell_fields(fields: Sequence[Any]) -> CellResult:
    """The result `cell_fields` took apart (lists where it made tuples do as well)."""
    values = list(fields)  # in CellResult's order: its fields, by position
    python, probes, expectation = values[6], values[8], values[10]
    values[6] = None if python is None else PythonInfo(*python)
    values[8] = [ProbeResult(*p) for p in probes]
    values[10] = None if expectation is None else ExpectationOutcome(*expectation)
    return CellResult(*values)


def cell_summary(text: str) -> str | None:
    """The summary of the cell file `text`: the size and CRC-32 of `text` as UTF-8, then the
    cell as `report` reads it (`cell_fields`, probe details cut to `REPORTED_DETAILS`), one
    line of JSON: `[version, size, crc32, field, ...]`.

    A 10,000-cell report parses the summaries (30 MB) instead of the cell files (170 MB, most
    of it the files each import loaded), and copies the cell files into compat.json. The cell
    is the result a reader would make of `text`; None when that result would not encode to
    `text` again (compat.json then gets the result, encoded, not the file: `report` must parse
    the file)."""
    line = text.removesuffix("\n")
    result = CellResult.from_dict(json.loads(line))
    if cell_json(result) != line:
        return None
    fields = list(cell_fields(result))
    fields[8] = [(*probe[:7], reported_details(probe[7])) for probe in fields[8]]
    data = text.encode("utf-8")
    summary = [_SUMMARY_VERSION, len(data), zlib.crc32(data), *fields]
    return json.dumps(summary, ensure_ascii=True, separators=(",", ":"))


def read_summary(path: str, data: bytes) -> Any:
    """The cell fields of the summary at `path` if it is the summary of the cell file `data`
    (its size and CRC-32 match: a summary left from an earlier run of the cell, or copied
    beside another file, is not); None when it is not, or cannot be read. The fields' types
    are the caller's to check."""
    try:
        fd = os.open(path, os.O_RDONLY)  # a descriptor: a file object costs as much as parsing
        try:
            raw = os.read(fd, os.fstat(fd).st_size + 1)
        finally:
            os.close(fd)
        summary = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # the cell file is read then
        return None
    if (
        type(summary) is not list
        or len(summary) != _SUMMARY_HEAD + len(CELL_KEYS)
        or summary[0] != _SUMMARY_VERSION
        or summary[1] != len(data)
        or summary[2] != zlib.crc32(data)
    ):
        return None
    return summary[_SUMMARY_HEAD:]


#: A summary's version, size and CRC-32, before the cell's fields.
_SUMMARY_HEAD = 3


def write_cell_result(report_dir: Path, result: CellResult) -> Path:
    """Write the cell file of `result`, then its summary (`cell_summary`)."""
    path = report_dir / "cells" / f"{result.id}.json"
    text = cell_json(result) + "\n"
    write_atomic(path, text)
    summary = cell_summary(text)
    # The summary only speeds up `report`, which checks it against the cell file (a stale one
    # is passed by): a run does not fail for want of it.
    with contextlib.suppress(OSError):
        where = path.with_name(f"{result.id}{SUMMARY_SUFFIX}")
        if summary is None:
            where.unlink(missing_ok=True)
        else:
            write_atomic(where, summary + "\n")
    return path


def read_cell_result(path: Path) -> CellResult:
    # Bytes, unbuffered, decoded in one go: a TextIOWrapper per file costs as much as parsing
    # it when `report` reads 10,000 of them.
    with path.open("rb", buffering=0) as handle:
        data = handle.read()
    return CellResult.from_dict(json.loads(data.decode("utf-8")))


def load_cell_results(directory: Path) -> list[CellResult]:
    """Every readable cell result under `directory/cells` (or `directory` itself), by file name.

    Unreadable files (a run killed by SIGKILL mid-rename cannot leave one, but a user can) are
    skipped rather than failing the whole report.
    """
    cells_dir = directory / "cells" if (directory / "cells").is_dir() else directory
    try:
        with os.scandir(cells_dir) as entries:
            names = sorted(entry.name for entry in entries if entry.name.endswith(".json"))
    except OSError:
        return []
    results: list[CellResult] = []
    for name in names:
        try:
            results.append(read_cell_result(cells_dir / name))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return results
