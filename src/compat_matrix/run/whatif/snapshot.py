"""Reading the audited environment: its interpreter, distributions and conda records.

Read by probes/_env_snapshot.py under the audited interpreter, with the probes' own readers
(the ones the environment and consistency probes use); nothing here reads site-packages.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from compat_matrix.errors import UsageError
from compat_matrix.resources import probes_dir

if TYPE_CHECKING:
    from collections.abc import Sequence


#: installed it, from where, and which interpreter a venv was made from (a file in probes/).
_SNAPSHOT_SCRIPT = "_env_snapshot.py"


@dataclass(frozen=True)
class Installed:
    """One distribution the audited interpreter imports from."""

    name: str
    version: str
    installer: str = ""
    #: PEP 610 direct_url.json text: installed from a path, URL or VCS rather than an index.
    direct_url: str | None = None
    metadata_dir: str = ""


@dataclass(frozen=True)
class CondaRecord:
    """One `conda-meta/*.json` record."""

    name: str
    version: str
    build: str = ""
    #: Short channel name: `conda-forge`, `main`, `pypi`.
    channel: str = ""
    #: The channel as a solver takes it: `conda-forge`, or a URL for other hosts.
    channel_source: str = ""
    #: `*.dist-info` / `*.egg-info` directories among its files: the Python metadata it owns.
    metadata_dirs: tuple[str, ...] = ()

    @property
    def from_pypi(self) -> bool:
        """A pip install that conda noticed (channel `pypi`, build `pypi_0`): not conda's."""
        return self.channel == "pypi" or self.build.startswith("pypi_")


@dataclass(frozen=True)
class Snapshot:
    """What the environment of one interpreter holds, read without changing it."""

    python: Path
    version: str
    implementation: str
    free_threaded: bool
    abi: str
    prefix: Path
    base_executable: Path
    distributions: tuple[Installed, ...]
    #: conda-meta records; None when this is no conda environment.
    conda: tuple[CondaRecord, ...] | None = None

    @property
    def is_conda(self) -> bool:
        return self.conda is not None

    def versions(self) -> dict[str, str]:
        """{canonical name: version}: dist-info first, then conda records without one."""
        out = {d.name: d.version for d in self.distributions}
        for record in self.conda or ():
            out.setdefault(canonicalize_name(record.name), record.version)
        return out

    def pip_distributions(self) -> list[Installed]:
        """Distributions pip (or uv) installed: all of them outside conda."""
        if self.conda is None:
            return list(self.distributions)
        owned = {d for r in self.conda if not r.from_pypi for d in r.metadata_dirs}
        return [
            d
            for d in self.distributions
            if d.metadata_dir not in owned and d.installer.lower() != "conda"
        ]


def _conda_records(data: object) -> tuple[CondaRecord, ...] | None:
    """The snapshot's `conda` list as records; None when it is no conda environment."""
    if not isinstance(data, list):
        return None
    return tuple(
        CondaRecord(
            name=str(item["name"]),
            version=str(item.get("version") or ""),
            build=str(item.get("build") or ""),
            channel=str(item.get("channel") or ""),
            channel_source=str(item.get("channel_source") or ""),
            metadata_dirs=tuple(str(d) for d in item.get("metadata_dirs") or ()),
        )
        for item in data
        if isinstance(item, dict)
    )


def _snapshot(python: Path, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run probes/_env_snapshot.py under `python` (-I -B: it writes nothing) and read its JSON."""
    try:
        proc = subprocess.run(
            [str(python), "-I", "-B", str(probes_dir() / _SNAPSHOT_SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"cannot read the environment of {python}: {exc}"
        raise UsageError(msg) from None
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        msg = f"cannot read the environment of {python} (CPython 3.8+ needed): {tail[0]}"
        raise UsageError(msg) from None
    return data


def read_conda_meta(
    prefix: Path, *, python: Path | None = None, timeout: float = 60.0
) -> tuple[CondaRecord, ...] | None:
    """The conda-meta records of `prefix`, or None when it is no conda environment.

    Read by the probes' reader (the one the consistency probe uses), run by `python` (default:
    this interpreter). Unreadable or half-written records are skipped, as conda itself does.
    """
    data = _snapshot(python or Path(sys.executable), ["--conda-meta", str(prefix)], timeout)
    return _conda_records(data.get("conda"))


def read_environment(python: Path, *, timeout: float = 60.0) -> Snapshot:
    """Read the package set of `python`'s environment (runs it with -I -B: writes nothing)."""
    if not python.exists():
        msg = f"no interpreter at {python}"
        raise UsageError(msg)
    data = _snapshot(python, [], timeout)
    prefix = Path(data["prefix"])
    base = Path(data["base_executable"])
    # On 3.8-3.10 a venv reports itself as its base; uv finds the real base from a venv python.
    if not base.exists():
        base = python
    return Snapshot(
        python=python,
        version=str(data["version"]),
        implementation=str(data["implementation"]),
        free_threaded=bool(data["free_threaded"]),
        abi=str(data["abi"]),
        prefix=prefix,
        base_executable=base,
        distributions=tuple(
            Installed(
                name=str(d["name"]),
                version=str(d["version"]),
                installer=str(d.get("installer") or ""),
                direct_url=d.get("direct_url"),
                metadata_dir=str(d.get("metadata_dir") or ""),
            )
            for d in data["distributions"]
        ),
        conda=_conda_records(data.get("conda")),
    )
