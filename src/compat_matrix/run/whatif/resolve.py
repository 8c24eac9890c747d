"""The upgraded set: every distribution pinned, then relaxed one step at a time where the
installer names it, until the resolve succeeds or nothing is left to relax.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from compat_matrix.build.backends import (
    DEFAULT_CHANNELS,
    EnvRequest,
    PreparedEnv,
)
from compat_matrix.build.install_errors import InstallFailure
from compat_matrix.run.whatif.snapshot import CondaRecord, Installed, Snapshot
from compat_matrix.run.whatif.upgrade import Upgrade

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from compat_matrix.build.backends import EnvBackend

#: Resolve-and-relax rounds before giving up (each is one resolve: about a second with uv).
MAX_ROUNDS = 12
#: Installer tooling: never pinned (uv environments have no pip), never a table row.
_TOOLING = frozenset({"pip"})


_KEPT, _FLOOR, _FREE = 0, 1, 2
_LEVEL_WORDS = ("kept", "at least the current version", "any version")


@dataclass
class _Pin:
    name: str
    current: str
    #: A requirement that cannot be relaxed: a direct reference, or the user's upgrade.
    fixed: str = ""
    level: int = _KEPT
    #: Why it was relaxed: the first failure that named it, and the pin it named.
    blocked: InstallFailure | None = None
    blocked_as: str = ""
    #: The version the smallest-change search chose for a blocker (smallest.py).
    chosen: str = ""

    def requirement(self) -> str:
        if self.fixed:
            return self.fixed
        if self.chosen:
            return f"{self.name}=={self.chosen}"
        if self.level == _FREE:
            return self.name
        operator = ">=" if self.level == _FLOOR else "=="
        return f"{self.name}{operator}{self.current}"

    @property
    def relaxable(self) -> bool:
        return not self.fixed and self.level < _FREE


@dataclass(frozen=True)
class ResolveAttempt:
    """One resolve of the upgraded set: what was relaxed before it and how it ended."""

    relaxed: dict[str, str]
    status: str  # "ok" or the failure status
    category: str | None = None
    message: str = ""
    #: The packages (the requested ones included) the installer's explanation names.
    blamed: tuple[str, ...] = ()


def _direct_requirement(dist: Installed) -> tuple[str | None, str]:
    """(requirement, note) of a distribution installed from a path, URL or VCS (PEP 610).

    The requirement is None when it came from an index (pin it by version), or from a local
    path that is gone: then the note says why it is left out of the upgraded set.
    """
    try:
        data = json.loads(dist.direct_url or "")
    except ValueError:
        return None, ""
    url = str(data.get("url") or "") if isinstance(data, dict) else ""
    if not url:
        return None, ""
    vcs = data.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs"):
        commit = vcs.get("commit_id") or vcs.get("requested_revision") or ""
        return f"{dist.name} @ {vcs['vcs']}+{url}" + (f"@{commit}" if commit else ""), ""
    parsed = urlparse(url)
    if parsed.scheme == "file" and not Path(unquote(parsed.path)).exists():
        return None, f"installed from {unquote(parsed.path)}, which no longer exists: left out"
    return f"{dist.name} @ {url}", ""


def _pins(
    dists: Sequence[Installed], upgrades: Sequence[Upgrade], notes: dict[str, str]
) -> tuple[dict[str, _Pin], list[str]]:
    """Pins of every distribution (the upgrades replacing theirs), and the source-built names.

    A distribution installed from a path or URL keeps that reference (and is built from it);
    the others are pinned to their version, to be relaxed only when they block the upgrade.
    """
    requested = {u.name: u for u in upgrades if u.name != "python"}
    pins: dict[str, _Pin] = {}
    source_built: list[str] = []
    for dist in dists:
        if dist.name in _TOOLING or dist.name in requested:
            continue
        reference, note = _direct_requirement(dist)
        if note:
            notes[dist.name] = note
            continue
        pins[dist.name] = _Pin(dist.name, dist.version, fixed=reference or "")
        if reference:
            source_built.append(dist.name)
    for name, upgrade in requested.items():
        pins[name] = _Pin(name, "", fixed=upgrade.requirement)
    return pins, source_built


#: conda packages that stand for the interpreter: replaced by the Python of the upgraded set.
_CONDA_PYTHON = frozenset({"python", "python_abi", "python-freethreading"})


def _conda_channels(records: Sequence[CondaRecord]) -> tuple[str, ...]:
    """The environment's channels, most used first (conda-forge when the records name none)."""
    counts: dict[str, int] = {}
    for record in records:
        if not record.from_pypi and record.channel_source:
            counts[record.channel_source] = counts.get(record.channel_source, 0) + 1
    ranked = sorted(counts, key=lambda channel: -counts[channel])
    return tuple(ranked) or DEFAULT_CHANNELS


def _conda_pins(
    snapshot: Snapshot, upgrades: Sequence[Upgrade], notes: dict[str, str]
) -> tuple[dict[str, _Pin], set[str], list[str]]:
    """Pins of a conda environment: (pins, the names that are conda specs, source-built names).

    Conda packages are pinned by version (`numpy==1.26.4`), leaving the solver free to pick the
    build for the new Python; what pip installed goes to pip after the solve, as in a cell.
    """
    pip_dists = snapshot.pip_distributions()
    pins, source_built = _pins(pip_dists, upgrades, notes)
    requested = {u.name: u for u in upgrades if u.name != "python"}
    conda_names: set[str] = set()
    for record in snapshot.conda or ():
        name = record.name.lower()
        if record.from_pypi or name in _CONDA_PYTHON or name in pins:
            continue
        pins[name] = _Pin(name, record.version)
        conda_names.add(name)
    for name, upgrade in requested.items():
        if name in conda_names or not any(d.name == name for d in pip_dists):
            pins[name] = _Pin(name, "", fixed=upgrade.conda_spec)
            conda_names.add(name)
    return pins, conda_names, source_built


def _conda_request(
    python_specs: Sequence[str],
    conda_names: set[str],
    channels: tuple[str, ...],
    source_built: Sequence[str],
) -> Callable[[dict[str, _Pin]], EnvRequest]:
    def make(pins: dict[str, _Pin]) -> EnvRequest:
        specs = [*python_specs, *(p.requirement() for p in pins.values() if p.name in conda_names)]
        pip = tuple(p.requirement() for p in pins.values() if p.name not in conda_names)
        return EnvRequest(
            None,
            pip,
            True,
            tuple(source_built),
            conda_specs=tuple(specs),
            channels=channels,
        )

    return make


def _mentioned(output: str, names: Sequence[str]) -> list[str]:
    """Names the installer's explanation blames: `pandas==2.0.3`, `versions of pandas`."""
    found = []
    for name in names:
        spelled = "[-_.]".join(re.escape(part) for part in re.split(r"[-_.]", name))
        pattern = (
            rf"(?<![A-Za-z0-9._-]){spelled}(?=\s*(?:[<>=!~]=?|\[)|\s+(?:has\b|\d)|-\d)"
            rf"|\b(?:versions? of|requires?|provides?|depends on) {spelled}(?![A-Za-z0-9_-])"
        )
        if re.search(pattern, output, re.IGNORECASE):
            found.append(name)
    return found


def _resolve(
    backend: EnvBackend,
    envdir: Path,
    make_request: Callable[[dict[str, _Pin]], EnvRequest],
    pins: dict[str, _Pin],
    deadline: float,
) -> tuple[PreparedEnv, list[ResolveAttempt]]:
    """Build the upgraded set, relaxing the pins the installer blames until it installs."""
    attempts: list[ResolveAttempt] = []
    while True:
        relaxed = {p.name: _LEVEL_WORDS[p.level] for p in pins.values() if p.level != _KEPT}
        env = backend.prepare(envdir, make_request(pins), timeout=deadline - time.monotonic())
        failure = env.failure
        if failure is None:
            attempts.append(ResolveAttempt(relaxed, "ok"))
            return env, attempts
        blamed = _mentioned(env.log, list(pins))
        named = [name for name in blamed if pins[name].relaxable]
        attempts.append(
            ResolveAttempt(
                relaxed, failure.status, failure.category, failure.message, tuple(blamed)
            )
        )
        if failure.status not in ("unsupported", "conflict") or not named:
            return env, attempts
        if len(attempts) >= MAX_ROUNDS or time.monotonic() >= deadline:
            return env, attempts
        for name in named:
            pin = pins[name]
            if pin.blocked is None:
                pin.blocked, pin.blocked_as = failure, pin.requirement()
            pin.level += 1
