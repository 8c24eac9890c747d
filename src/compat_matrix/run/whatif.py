"""`compat-matrix audit --python PATH --upgrade SPEC`: will this upgrade break what I have?

The question behind `conda update python` or `pip install -U numpy`, answered before anything
is touched. The environment's package set is read (dist-info through the environment's own
interpreter, plus `conda-meta/*.json` in a conda environment), the same set is built with the
upgrade applied in a scratch environment, both environments are probed, and every package gets
a line: its version now and after, and whether it would break (an ABI break found by the
probes), block the upgrade (no distribution for the new Python, or a declared requirement that
excludes it) or have to move for the upgrade to install.

Pins first, then only what must move: every other distribution keeps its exact version, since
"what happens to what I have" is the question. When that cannot be resolved, the packages the
installer names in its explanation are the blockers; each is relaxed one step (`==` -> `>=`
its current version -> any version) and the resolve retried, so the report says both why the
upgrade is blocked and the smallest set of packages that would have to move.

The scratch environment is built with the environment's own kind of installer: a venv (or a
plain interpreter) with uv, because a what-if is interactive and may resolve several times: uv
resolves in about a second and hardlinks files from its cache, where pip re-resolves and copies
for half a minute per try, with the same PEP 440 and wheel-tag rules. A conda environment is
rebuilt with conda's own solver engine (rattler, built in; micromamba where py-rattler is
missing) from the environment's channels, since its packages (and the new Python itself) come
from conda channels, not PyPI. The real environment is only read: no installer ever points at
it, and its probes run without writing bytecode.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from compat_matrix.build import pythons
from compat_matrix.build.backends import (
    DEFAULT_CHANNELS,
    EnvRequest,
    PreparedEnv,
    get_backend,
    parse_lock,
)
from compat_matrix.build.conda import rattler_available
from compat_matrix.build.install_errors import InstallFailure
from compat_matrix.build.requirements import conda_python_specs, conda_spec
from compat_matrix.errors import UsageError
from compat_matrix.matrix.model import PROBES
from compat_matrix.probe.verdicts import CATEGORY_PRIORITY, EXIT_FAILED, EXIT_INFRA, EXIT_OK
from compat_matrix.reports import ReportPaths, write_reports
from compat_matrix.results import CellResult, ProbeResult, write_atomic, write_cell_result
from compat_matrix.run.audit import environment_name, probe_into_result
from compat_matrix.run.hints import HintContext, check_text, checked_hint

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from compat_matrix.build.backends import EnvBackend

__all__ = [
    "CondaRecord",
    "Installed",
    "PackageChange",
    "ResolveAttempt",
    "Snapshot",
    "Upgrade",
    "WhatIfResult",
    "format_summary",
    "parse_upgrade",
    "read_conda_meta",
    "read_environment",
    "what_if",
]

PackageStatus = Literal[
    "breaks",  # installs, but a probe fails that passes now
    "blocks",  # its pin makes the upgrade impossible, even after relaxing it
    "must-change",  # its current version blocks the upgrade; this version would not
    "still-broken",  # fails now and after
    "fixed",  # fails now, passes after
    "upgraded",
    "downgraded",
    "added",
    "removed",
    "unchanged",
    "unknown",  # the upgraded environment could not be built: no version to compare
]

#: Resolve-and-relax rounds before giving up (each is one resolve: about a second with uv).
MAX_ROUNDS = 12
#: Installer tooling: never pinned (uv environments have no pip), never a table row.
_TOOLING = frozenset({"pip"})
#: Problem statuses, most urgent first (the order of the summary).
_PROBLEMS: tuple[str, ...] = ("breaks", "blocks", "must-change", "still-broken")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_UPGRADE = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(.*?)\s*$")
#: PEP 440 operators as cell-id words; two-character ones first, so `>=` never reads as `>`.
_OPERATOR_WORDS = (
    (">=", "ge"),
    ("<=", "le"),
    ("==", "eq"),
    ("!=", "ne"),
    ("~=", "compat"),
    (">", "gt"),
    ("<", "lt"),
)
_CONDA_INSTALL_HINT = (
    "pip install py-rattler (Python 3.10+), or install micromamba (https://mamba.readthedocs.io/"
    "en/latest/installation/micromamba-installation.html) and put it on PATH or set $MAMBA_EXE"
)

# Runs under the audited interpreter (any CPython >= 3.8) with -I -B: what is installed, who
# installed it, from where, and which interpreter a venv was made from.
_SNAPSHOT_SCRIPT = r"""
import json, os, re, sys, sysconfig
import importlib.metadata as md
dists, seen = [], set()
for d in md.distributions():
    name = d.metadata["Name"]
    if not name:
        continue
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        continue  # shadowed by an earlier sys.path entry: not what imports see
    seen.add(key)
    path = getattr(d, "_path", None)
    dists.append({
        "name": key,
        "version": d.version,
        "installer": (d.read_text("INSTALLER") or "").strip(),
        "direct_url": d.read_text("direct_url.json"),
        "metadata_dir": os.path.basename(str(path)) if path else "",
    })
base = getattr(sys, "_base_executable", "") or sys.executable
v = sys.version_info
pre = {"alpha": "a", "beta": "b", "candidate": "rc"}.get(v[3], "")
json.dump({
    "version": "%d.%d.%d%s" % (v[0], v[1], v[2], pre and "%s%d" % (pre, v[4])),
    "implementation": sys.implementation.name,
    "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "abi": sysconfig.get_config_var("SOABI") or "",
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "executable": sys.executable,
    "base_executable": base,
    "distributions": dists,
}, sys.stdout)
"""


# --- the upgrade syntax -------------------------------------------------------------------------


@dataclass(frozen=True)
class Upgrade:
    """One `--upgrade` value.

    `NAME=VERSION` means the newest release starting with VERSION (`numpy=2` is `numpy==2.*`,
    as conda reads `=`), unless VERSION has three or more parts (`numpy=2.2.6` is `==2.2.6`);
    `NAME<specifier>` is a PEP 440 specifier (`numpy>=2.1`); a bare `NAME` means the newest
    release. `python=X.Y[.Z][t]` asks for another interpreter.
    """

    text: str
    #: Canonical distribution name, or "python".
    name: str
    #: What follows the name, as written: `=2`, `>=2.1`, `` (the newest release).
    spec: str
    #: PEP 508 requirement for pip/uv ("" for python).
    requirement: str
    #: MatchSpec for conda ("" for python: `conda_python_specs` spells it).
    conda_spec: str
    #: For python: the version requested (`3.12`).
    python: str = ""

    @property
    def label(self) -> str:
        """The upgrade in a cell id: `py3.12`, `numpy2`, `numpy-ge2.1`, `numpy-latest`."""
        if self.name == "python":
            return f"py{self.python}"
        rest = re.sub(r"^=(?!=)", "", self.spec.replace(" ", "").replace(",", ""))
        rest = rest.replace("*", "x")
        for operator, word in _OPERATOR_WORDS:
            rest = rest.replace(operator, f"-{word}")
        return _UNSAFE.sub("_", f"{self.name}{rest or '-latest'}").strip("_")


def parse_upgrade(text: str) -> Upgrade:
    """Parse one `--upgrade` value; raises UsageError with the accepted forms."""
    match = _UPGRADE.match(text)
    usage = (
        f"invalid --upgrade {text!r}: expected python=X.Y, NAME=VERSION (newest matching), "
        "NAME==VERSION, NAME>=VERSION (any PEP 440 specifier) or NAME"
    )
    if match is None:
        raise UsageError(usage)
    raw_name, rest = match.groups()
    name = str(canonicalize_name(raw_name))
    fuzzy = rest.startswith("=") and not rest.startswith("==")
    if name == "python":
        version = rest[1:].strip() if fuzzy else ""
        try:
            pythons.parse_request(version)
        except ValueError as exc:
            msg = f"invalid --upgrade {text!r}: python=X.Y, X.Y.Z or X.Yt ({exc})"
            raise UsageError(msg) from None
        return Upgrade(text, "python", rest, "", "", python=version)
    if not rest:
        return Upgrade(text, name, "", name, name)
    if fuzzy:
        version = rest[1:].strip()
        try:
            release = Version(version).release
        except InvalidVersion:
            raise UsageError(usage) from None
        if len(release) >= 3:
            return Upgrade(text, name, rest, f"{name}=={version}", f"{name}=={version}")
        return Upgrade(text, name, rest, f"{name}=={version}.*", f"{name}={version}")
    try:
        specifiers = SpecifierSet(rest)
    except InvalidSpecifier:
        raise UsageError(usage) from None
    if not len(specifiers):
        raise UsageError(usage)
    conda = conda_spec(name, str(specifiers)) or name
    return Upgrade(text, name, rest, f"{name}{specifiers}", conda)


# --- reading the environment --------------------------------------------------------------------


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


def _channel(record: Mapping[str, Any]) -> tuple[str, str]:
    """(short name, solver channel) of a record's channel, without its platform subdir.

    conda writes a URL (`https://conda.anaconda.org/conda-forge/linux-64`) or a bare name
    depending on its version; on anaconda.org the name is the channel, elsewhere the URL is.
    """
    channel = str(record.get("channel") or "").rstrip("/")
    if not channel:
        url = str(record.get("url") or "")
        channel = url.rsplit("/", 2)[0] if url.count("/") >= 2 else ""
    parts = channel.split("/")
    if parts and re.fullmatch(r"noarch|(?:linux|osx|win|emscripten|wasi|zos)-\w+", parts[-1]):
        parts = parts[:-1]
    source = "/".join(parts)
    short = next((p for p in reversed(parts) if p), "")
    if "://" not in source or re.match(r"https?://conda\.anaconda\.org/", source):
        source = short
    return short, source


def read_conda_meta(prefix: Path) -> tuple[CondaRecord, ...] | None:
    """The conda-meta records of `prefix`, or None when it is no conda environment.

    Unreadable or half-written records are skipped, as conda itself does.
    """
    folder = prefix / "conda-meta"
    if not folder.is_dir():
        return None
    records: list[CondaRecord] = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            continue
        metadata_dirs = {
            part
            for file in data.get("files") or []
            if isinstance(file, str)
            for part in file.split("/")
            if part.endswith((".dist-info", ".egg-info"))
        }
        short, source = _channel(data)
        records.append(
            CondaRecord(
                name=data["name"],
                version=str(data.get("version") or ""),
                build=str(data.get("build") or ""),
                channel=short,
                channel_source=source,
                metadata_dirs=tuple(sorted(metadata_dirs)),
            )
        )
    return tuple(records)


def read_environment(python: Path, *, timeout: float = 60.0) -> Snapshot:
    """Read the package set of `python`'s environment (runs it with -I -B: writes nothing)."""
    if not python.exists():
        msg = f"no interpreter at {python}"
        raise UsageError(msg)
    try:
        proc = subprocess.run(
            [str(python), "-I", "-B", "-c", _SNAPSHOT_SCRIPT],
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
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        msg = f"cannot read the environment of {python} (CPython 3.8+ needed): {tail[0]}"
        raise UsageError(msg) from None
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
        conda=read_conda_meta(prefix),
    )


# --- pins and the resolve loop ------------------------------------------------------------------

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

    def requirement(self) -> str:
        if self.fixed:
            return self.fixed
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


# --- probing ------------------------------------------------------------------------------------


def _owner(finding: ProbeResult, modules: Mapping[str, str]) -> str | None:
    """The distribution a failing finding belongs to, from the probe's evidence or the path."""
    details = finding.details
    for key in ("failing_distribution", "distribution"):
        if isinstance(details.get(key), str) and details[key]:
            return canonicalize_name(details[key])
    owner = details.get("owner")
    if isinstance(owner, str) and owner and not owner.startswith("the "):
        return canonicalize_name(owner.split()[0])
    head = re.split(r"[/.]", finding.target, maxsplit=1)[0]
    return modules.get(head)


def _failures_by_package(
    result: CellResult, top_level: Mapping[str, Sequence[str]]
) -> dict[str, list[ProbeResult]]:
    modules = {module: dist for dist, names in top_level.items() for module in names}
    rank = {category: index for index, category in enumerate(CATEGORY_PRIORITY)}
    out: dict[str, list[ProbeResult]] = {}
    for finding in result.probes:
        if finding.status != "fail":
            continue
        owner = _owner(finding, modules)
        if owner is not None:
            out.setdefault(owner, []).append(finding)
    for findings in out.values():
        # The most specific cause first; among equals the failed import, what a user sees.
        findings.sort(key=lambda f: (rank.get(f.category or "", len(rank)), f.probe != "import"))
    return out


# --- the result ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageChange:
    """One package: its version now and after the upgrade, and what that does to it."""

    name: str
    current: str | None
    upgraded: str | None
    status: PackageStatus
    requested: bool = False
    #: The cause's own verdict: `unsupported` (no distribution for the new set), `conflict`
    #: (declared requirements exclude it), `fail` (a probe found a break), `pass` (fixed).
    verdict: str | None = None
    category: str | None = None
    reason: str = ""
    hint: str = ""


@dataclass
class WhatIfResult:
    """Both environments' verdicts and the per-package changes of one what-if."""

    python: Path
    upgrades: tuple[Upgrade, ...]
    current: CellResult
    upgraded: CellResult
    packages: tuple[PackageChange, ...]
    attempts: tuple[ResolveAttempt, ...] = ()
    reports: ReportPaths | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def problems(self) -> list[PackageChange]:
        """Packages that would break, block the upgrade or have to move, most urgent first."""
        rows = [p for p in self.packages if p.status in _PROBLEMS]
        return sorted(rows, key=lambda p: (_PROBLEMS.index(p.status), p.name))

    @property
    def verdict(self) -> str:
        """The answer in one sentence."""
        after = self.upgraded
        names = {
            status: [p.name for p in self.packages if p.status == status] for status in _PROBLEMS
        }
        moving = names["must-change"]
        also = f" (and {', '.join(moving)} would have to change)" if moving else ""
        if after.status == "error":
            return f"no answer, infrastructure trouble: {after.message} ({after.hint or 'retry'})"
        if after.status in ("unsupported", "conflict"):
            requested = {p.name for p in self.packages if p.requested}
            blockers = [n for n in names["blocks"] or moving if n not in requested]
            why = f"blocked by {', '.join(blockers)}" if blockers else after.message
            return f"the upgrade cannot be installed ({after.status}): {why}"
        if after.status == "fail" and names["breaks"]:
            return f"the upgrade would break {', '.join(names['breaks'])}{also}"
        if after.status == "fail" and names["still-broken"]:
            return f"{', '.join(names['still-broken'])} fail now and would still fail after it"
        if after.status == "fail":
            return f"the upgraded environment would fail ({after.category}): {after.message}"
        if moving:
            verb = "moves" if len(moving) == 1 else "move"
            return f"the upgrade works if {', '.join(moving)} {verb} as listed"
        return "the upgrade keeps everything working"

    @property
    def exit_status(self) -> int:
        """0: the upgraded set installs and passes; 1: it breaks or cannot install; 3: error."""
        if "error" in (self.current.status, self.upgraded.status):
            return EXIT_INFRA
        return EXIT_OK if self.upgraded.status == "pass" else EXIT_FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": str(self.python),
            "upgrades": [u.text for u in self.upgrades],
            "verdict": self.verdict,
            "exit_status": self.exit_status,
            "current": {"id": self.current.id, "status": self.current.status},
            "upgraded": {
                "id": self.upgraded.id,
                "status": self.upgraded.status,
                "category": self.upgraded.category,
                "message": self.upgraded.message,
            },
            "packages": [asdict(p) for p in self.packages],
            "attempts": [asdict(a) for a in self.attempts],
            "notes": dict(self.notes),
        }


def _version_move(before: str | None, after: str | None) -> PackageStatus:
    if before is None:
        return "added"
    if after is None:
        return "removed"
    if before == after:
        return "unchanged"
    try:
        return "upgraded" if Version(after) > Version(before) else "downgraded"
    except InvalidVersion:
        return "upgraded"


def _blocked_reason(pin: _Pin, failure: InstallFailure, target_python: str, what: str) -> str:
    if failure.category == "no-distribution" and not pin.fixed:
        return f"no {what} of {pin.blocked_as} for Python {target_python}"
    return failure.message


@dataclass(frozen=True)
class _Outcome:
    """What the upgraded build came to, as `_changes` needs it."""

    after: Mapping[str, str] | None  # versions installed; None when it could not be built
    failure: InstallFailure | None  # the last resolve's failure when it could not be built
    blamed: frozenset[str]  # packages that failure names
    target_python: str
    #: "wheel" for PyPI environments (wheels only), "conda build" for conda ones.
    what: str


def _finding_text(findings: Sequence[ProbeResult]) -> str:
    first, more = findings[0], len(findings) - 1
    text = first.message
    if first.target not in text:
        text = f"{first.probe} {first.target}: {text}"
    return text + (f" (+{more} more finding{'s' if more > 1 else ''})" if more else "")


def _changes(
    before: Mapping[str, str],
    outcome: _Outcome,
    *,
    pins: Mapping[str, _Pin],
    requested: set[str],
    failing_now: Mapping[str, list[ProbeResult]],
    failing_after: Mapping[str, list[ProbeResult]],
    context: HintContext | None = None,
    resolved: Mapping[str, str] | None = None,
) -> tuple[PackageChange, ...]:
    after = outcome.after
    names = sorted((set(before) | set(after or {}) | requested) - _TOOLING)
    rows = []
    for name in names:
        now, later = before.get(name), (after or {}).get(name)
        pin = pins.get(name)
        row = PackageChange(name, now, later, "unknown", name in requested)
        if after is not None:
            row = replace(row, status=_version_move(now, later))
        if after is None and name in outcome.blamed and outcome.failure is not None:
            failure = outcome.failure
            row = replace(
                row,
                status="blocks",
                verdict=failure.status,
                category=failure.category,
                reason=failure.message,
                hint=failure.hint,
            )
        elif pin is not None and pin.blocked is not None:
            row = replace(
                row,
                status="must-change",
                verdict=pin.blocked.status,
                category=pin.blocked.category,
                reason=_blocked_reason(pin, pin.blocked, outcome.target_python, outcome.what),
            )
        if after is not None and name in failing_after:
            row = replace(
                row,
                status="still-broken" if name in failing_now else "breaks",
                verdict="fail",
                category=failing_after[name][0].category,
                reason=_finding_text(failing_after[name]),
                hint=failing_after[name][0].hint
                if context is None
                else check_text(
                    failing_after[name][0].hint,
                    resolved or {},
                    context,
                    fix=failing_after[name][0].details.get("fix"),
                ),
            )
        elif after is not None and later is not None and name in failing_now:
            row = replace(
                row,
                status="fixed",
                verdict="pass",
                category=failing_now[name][0].category,
                reason=f"fails now: {_finding_text(failing_now[name])}",
            )
        rows.append(row)
    return tuple(rows)


# --- the what-if --------------------------------------------------------------------------------


def _target_interpreter(snapshot: Snapshot, upgrades: Sequence[Upgrade]) -> pythons.Interpreter:
    wanted = next((u for u in upgrades if u.name == "python"), None)
    if wanted is None:
        major, minor, micro = (int(p) for p in re.findall(r"\d+", snapshot.version)[:3])
        return pythons.Interpreter(
            path=snapshot.base_executable,
            version=snapshot.version,
            version_info=(major, minor, micro),
            implementation=snapshot.implementation,
            free_threaded=snapshot.free_threaded,
            abi=snapshot.abi,
            source="env",
        )
    found = pythons.discover()
    interpreter = pythons.select(found, wanted.python)
    if interpreter is None:
        msg = (
            f"--upgrade {wanted.text}: {pythons.describe_missing(found, wanted.python)}; "
            f"install it (uv python install {wanted.python}, pyenv install {wanted.python}) "
            "or name it in COMPAT_PYTHONS"
        )
        raise UsageError(msg)
    return interpreter


def _uv_request(
    interpreter: pythons.Interpreter, source_built: Sequence[str]
) -> Callable[[dict[str, _Pin]], EnvRequest]:
    def make(pins: dict[str, _Pin]) -> EnvRequest:
        requirements = tuple(p.requirement() for p in pins.values())
        return EnvRequest(interpreter, requirements, True, tuple(source_built))

    return make


#: Rows of the compat.md table; the rest are counted (whatif.json has every row).
_MARKDOWN_ROWS = 200
_MD_ESCAPES = str.maketrans(
    {c: f"\\{c}" for c in "\\`*_[]|#~"} | {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
)


def _describe(row: PackageChange, limit: int = 300) -> str:
    """`BREAKS [fail/abi-numpy]: <why>`: a row's outcome in one line."""
    what = row.status.upper() if row.status in _PROBLEMS else row.status
    if row.requested:
        what += " (requested)"
    if row.category:
        what += f" [{row.verdict}/{row.category}]" if row.verdict else f" [{row.category}]"
    if row.reason:
        what += ": " + " ".join(row.reason.split())
    return what if len(what) <= limit else what[: limit - 1] + "…"


def _shown(result: WhatIfResult) -> list[PackageChange]:
    """The rows worth a line: all but unchanged (or not compared) packages nobody asked about."""
    rows = [p for p in result.packages if p.status not in ("unchanged", "unknown") or p.requested]
    return sorted(rows, key=_row_order)


def _markdown(result: WhatIfResult) -> str:
    """The per-package table put at the top of compat.md."""

    def cell(text: str | None, limit: int = 400) -> str:
        flat = " ".join((text or "").split())
        flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
        return flat.translate(_MD_ESCAPES) or "—"

    upgraded = result.upgraded
    lines = [
        f"## What if: {cell(' '.join(u.text for u in result.upgrades))}",
        "",
        f"Now: **{result.current.status}** · after the upgrade: **{upgraded.status}**"
        + (f" ({cell(upgraded.category)})" if upgraded.category else ""),
        "",
        "| package | now | after | what happens |",
        "| --- | --- | --- | --- |",
    ]
    shown = _shown(result)
    for row in shown[:_MARKDOWN_ROWS]:
        what = _describe(row) + (f" — hint: {row.hint}" if row.hint else "")
        lines.append(
            f"| {cell(row.name)} | {cell(row.current)} | {cell(row.upgraded)} | {cell(what)} |"
        )
    if len(shown) > _MARKDOWN_ROWS:
        lines += ["", f"… {len(shown) - _MARKDOWN_ROWS} more changed packages in whatif.json."]
    same = len(result.packages) - len(shown)
    if same:
        state = "unchanged" if upgraded.python is not None else "not compared"
        lines += ["", f"{same} other package{'s' if same != 1 else ''} {state}."]
    lines += ["", f"**Verdict**: {cell(result.verdict, 1000)}"]
    for name, note in sorted(result.notes.items()):
        lines += ["", f"{cell(name)}: {cell(note)}"]
    return "\n".join(lines) + "\n"


def _row_order(row: PackageChange) -> tuple[int, int, str]:
    urgent = _PROBLEMS.index(row.status) if row.status in _PROBLEMS else len(_PROBLEMS)
    return (urgent, 0 if row.requested else 1, row.name)


@dataclass(frozen=True)
class _Plan:
    """Everything decided before building: ids, axes, the interpreter, where the env goes."""

    snapshot: Snapshot
    upgrades: tuple[Upgrade, ...]
    interpreter: pythons.Interpreter | None  # None for a conda environment
    target_python: str
    current_id: str
    upgraded_id: str
    env_name: str

    @property
    def text(self) -> str:
        return " ".join(u.text for u in self.upgrades)

    @property
    def requested(self) -> set[str]:
        return {u.name for u in self.upgrades if u.name != "python"}


def _plan(python: Path, upgrades: Sequence[str]) -> _Plan:
    if not upgrades:
        msg = "--upgrade needs at least one value (python=3.12, numpy=2, ...)"
        raise UsageError(msg)
    parsed = tuple(parse_upgrade(text) for text in upgrades)
    names = [u.name for u in parsed]
    if len(set(names)) != len(names):
        msg = f"--upgrade names a package twice: {', '.join(upgrades)}"
        raise UsageError(msg)
    snapshot = read_environment(python)
    interpreter = None if snapshot.is_conda else _target_interpreter(snapshot, parsed)
    # A conda environment keeps its exact Python unless asked (python==3.11.7, not 3.11.*).
    wanted = next((u.python for u in parsed if u.name == "python"), snapshot.version)
    target = interpreter.tag if interpreter is not None else wanted
    env_name = environment_name(python)
    labels = [u.label for u in parsed if u.name != "python"]
    target_xy = ".".join(target.rstrip("t").split(".")[:2]) + ("t" if target.endswith("t") else "")
    return _Plan(
        snapshot=snapshot,
        upgrades=parsed,
        interpreter=interpreter,
        target_python=target,
        current_id=f"audit-py{'.'.join(snapshot.version.split('.')[:2])}-{env_name}",
        upgraded_id=_UNSAFE.sub("_", "-".join(["whatif", f"py{target_xy}", *labels, env_name])),
        env_name=env_name,
    )


def what_if(
    python: Path,
    upgrades: Sequence[str],
    report_dir: Path,
    *,
    timeout: float = 900.0,
    probes: Sequence[str] = PROBES,
    imports: Sequence[str] | None = None,
    env_dir: Path | None = None,
) -> WhatIfResult:
    """Answer "what if I upgraded `upgrades` in the environment of `python`?" without touching it.

    Probes the environment as it is and a scratch copy with the upgrades applied (built in
    `env_dir`, default `report_dir/.whatif-env/<id>`: hidden, so CI artifact uploads skip it,
    and reused on a rerun), writes both cells and the reports into `report_dir` (the package
    table at the top of compat.md, the whole answer in whatif.json), and returns the answer.
    `timeout` applies to each environment. Raises UsageError for a bad `--upgrade` value, a
    missing interpreter, or a `python=X.Y` that no interpreter on this machine provides.
    """
    plan = _plan(python, upgrades)
    snapshot = plan.snapshot
    current, top_now = probe_into_result(
        python,
        report_dir,
        cell_id=plan.current_id,
        axes={"environment": plan.env_name, "python": snapshot.version, "upgrade": "none"},
        probes=probes,
        imports=imports,
        deadline=time.monotonic() + timeout,
    )
    write_cell_result(report_dir, current)

    notes: dict[str, str] = {}
    backend, make, pins = _scratch_build(plan, notes)
    envdir = env_dir or report_dir / ".whatif-env" / plan.upgraded_id
    started = time.monotonic()
    env: PreparedEnv | None = None
    attempts: list[ResolveAttempt] = []
    failure: InstallFailure | None = None
    if backend is None:
        failure = _unavailable(snapshot)
    else:
        env, attempts = _resolve(backend, envdir, make, pins, started + timeout)
        failure = env.failure
    upgraded, top_after, outcome = _upgraded_cell(
        plan,
        env,
        failure,
        attempts,
        report_dir,
        build_s=time.monotonic() - started,
        probes=probes,
        imports=imports,
        timeout=timeout,
    )
    # A suggested fix is resolved against the upgraded set's own pins before it is shown.
    context = HintContext(make(pins)) if env is not None and failure is None else None
    if context is not None:
        upgraded.hint = checked_hint(upgraded, context)
    write_cell_result(report_dir, upgraded)
    result = WhatIfResult(
        python=python,
        upgrades=plan.upgrades,
        current=current,
        upgraded=upgraded,
        packages=_changes(
            {**snapshot.versions(), "python": snapshot.version},
            outcome,
            pins=pins,
            requested={u.name for u in plan.upgrades},
            failing_now=_failures_by_package(current, top_now),
            failing_after=_failures_by_package(upgraded, top_after),
            context=context,
            resolved=upgraded.resolved,
        ),
        attempts=tuple(attempts),
        notes=notes,
    )
    write_atomic(report_dir / "whatif.json", json.dumps(result.to_dict(), indent=2) + "\n")
    result.reports = write_reports(
        report_dir,
        f"what-if {plan.text} for {python}",
        [current, upgraded],
        preamble=_markdown(result),
    )
    return result


def _upgraded_cell(
    plan: _Plan,
    env: PreparedEnv | None,
    failure: InstallFailure | None,
    attempts: Sequence[ResolveAttempt],
    report_dir: Path,
    *,
    build_s: float,
    probes: Sequence[str],
    imports: Sequence[str] | None,
    timeout: float,
) -> tuple[CellResult, dict[str, list[str]], _Outcome]:
    """The upgraded environment's cell: probed when it was built, else its install failure."""
    cell_id = plan.upgraded_id
    axes = {"environment": plan.env_name, "python": plan.target_python, "upgrade": plan.text}
    lock_rel = f"locks/{cell_id}.txt"
    write_atomic(report_dir / lock_rel, env.lock_text if env is not None else "")
    what = "wheel" if plan.interpreter is not None else "conda build"
    if env is not None and failure is None:
        upgraded, top_level = probe_into_result(
            env.python,
            report_dir,
            cell_id=cell_id,
            axes=axes,
            probes=probes,
            imports=imports,
            deadline=time.monotonic() + timeout,
            build_s=build_s,
            lock=lock_rel,
            read_only=False,  # the scratch environment is ours
        )
        # The lock names conda's non-Python packages too; the probe, what imports really see.
        after: dict[str, str] = {
            str(canonicalize_name(k)): v for k, v in parse_lock(env.lock_text).items()
        }
        after.update(upgraded.resolved)
        if upgraded.python is not None:
            after["python"] = upgraded.python.version
        return upgraded, top_level, _Outcome(after, None, frozenset(), plan.target_python, what)
    assert failure is not None  # noqa: S101 - env is None only with a failure
    write_atomic(report_dir / "logs" / f"{cell_id}.log", env.log if env is not None else "")
    blamed = frozenset(attempts[-1].blamed) if attempts else frozenset()
    hint = failure.hint
    if blamed:
        hint = f"blocked by {', '.join(sorted(blamed))} whatever their version; {hint}"
    upgraded = CellResult(
        id=cell_id,
        axes=axes,
        status=failure.status,
        category=failure.category,
        message=failure.message,
        hint=hint,
        durations={"build": round(build_s, 3), "probes": 0.0},
        lock=lock_rel,
    )
    return upgraded, {}, _Outcome(None, failure, blamed, plan.target_python, what)


def _scratch_build(
    plan: _Plan, notes: dict[str, str]
) -> tuple[EnvBackend | None, Callable[[dict[str, _Pin]], EnvRequest], dict[str, _Pin]]:
    """The backend, request builder and pins of the upgraded set, by kind of environment."""
    snapshot = plan.snapshot
    if plan.interpreter is not None:
        pins, source_built = _pins(snapshot.distributions, plan.upgrades, notes)
        return get_backend("uv"), _uv_request(plan.interpreter, source_built), pins
    pins, conda_names, source_built = _conda_pins(snapshot, plan.upgrades, notes)
    python = conda_python_specs(plan.target_python)
    channels = _conda_channels(snapshot.conda or ())
    make = _conda_request(python, conda_names, channels, source_built)
    # rattler (built in) where py-rattler is installed, else a micromamba binary.
    return get_backend("conda" if rattler_available() else "micromamba"), make, pins


def _unavailable(snapshot: Snapshot) -> InstallFailure:
    kind = "micromamba" if snapshot.is_conda else "uv"
    return InstallFailure(
        "error",
        "backend",
        f"the what-if of {snapshot.prefix} is built with {kind}, which is not available here",
        _CONDA_INSTALL_HINT if snapshot.is_conda else "install uv (pip install uv)",
    )


# --- the terminal summary -----------------------------------------------------------------------


def format_summary(result: WhatIfResult) -> str:
    """What `audit --upgrade` prints: both verdicts, then every package that is not unchanged."""
    upgrades = " ".join(u.text for u in result.upgrades)
    now, after = result.current, result.upgraded

    def verdict(cell: CellResult) -> str:
        text = cell.status + (f" ({cell.category})" if cell.category else "")
        return f"{text}: {cell.message}" if cell.status != "pass" and cell.message else text

    lines = [
        f"what-if {upgrades} for {result.python}",
        f"  now:   {verdict(now)}  [{now.id}]",
        f"  after: {verdict(after)}  [{after.id}]",
    ]
    shown = _shown(result)
    if shown:
        width = max(len(p.name) for p in shown)
        vwidth = max(len(p.current or "-") for p in shown)
        for row in shown:
            lines.append(
                f"  {row.name.ljust(width)}  {(row.current or '-').ljust(vwidth)} -> "
                f"{row.upgraded or '?'}  {_describe(row, 240)}"
            )
            if row.hint:
                lines.append(f"  {''.ljust(width)}  hint: {' '.join(row.hint.split())[:240]}")
    hidden = len(result.packages) - len(shown)
    if hidden:
        plural = "s" if hidden != 1 else ""
        state = "unchanged" if after.python is not None else "not compared: nothing was built"
        lines.append(f"  ({hidden} other package{plural} {state})")
    lines.append(f"verdict: {result.verdict}")
    if result.reports is not None:
        lines.append(f"report: {result.reports.markdown}")
    return "\n".join(lines) + "\n"
