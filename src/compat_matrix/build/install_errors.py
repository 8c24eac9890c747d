"""Classify a failed install from the installer's own output.

"No wheel for this Python" is data (`unsupported`), "the declared requirements exclude each
other" is data (`conflict`), an unreachable index is infrastructure (`error`, retried once).
The patterns below are the messages uv and pip really print; tests run both tools for real.
micromamba's are libmamba's problem-tree explanations (libmamba/src/solver/problems_graph.cpp)
and libsolv's problem strings (`--json`'s `solver_problems`); conda-forge is not reachable from
where this was written, so those are tested against the documented formats.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

from packaging import tags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from compat_matrix.build.package_index import IndexUnavailable, PackageIndex, Project

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from compat_matrix.matrix.model import Status

    #: `resolve(requirements)`: what the resolver says of them, without installing.
    Resolve = Callable[[Sequence[str]], "Resolution"]

__all__ = [
    "InstallFailure",
    "Resolution",
    "classify_micromamba",
    "classify_pip",
    "classify_rattler",
    "classify_uv",
    "micromamba_reason",
    "pip_reason",
    "rattler_reason",
    "refine_install_failure",
    "shorten",
    "uv_reason",
]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

_NETWORK = re.compile(
    r"Failed to fetch|error sending request|dns error|tcp connect error|Connection refused"
    r"|Connection reset|Network is unreachable|Temporary failure in name resolution"
    r"|NewConnectionError|Max retries exceeded|ReadTimeoutError|ConnectTimeoutError"
    r"|operation timed out|Failed to download",
    re.IGNORECASE,
)
#: pip's debug log line for an index it could not reach. With retries off (PIP_RETRIES=0) it is
#: the only trace of the network: the console says just "No matching distribution found".
_PIP_UNREACHABLE = re.compile(
    r"Could not fetch URL \S+: (?:connection error|There was a problem confirming the ssl)[^\n]*"
)
_UV_NO_DIST = re.compile(
    r"has no usable wheels|has no wheels with a matching|no wheels are available"
    r"|only has source distributions|there is no version of|was not found in the package registry"
    r"|the current Python version \([^)]*\) does not satisfy|requires-python",
    re.IGNORECASE,
)
_UV_BUILD = re.compile(r"Failed to build|Failed to prepare distributions", re.IGNORECASE)
_PIP_CONFLICT = re.compile(r"ResolutionImpossible|conflicting dependencies", re.IGNORECASE)
_PIP_NO_DIST = re.compile(
    r"No matching distribution found|Could not find a version that satisfies"
    r"|requires a different Python",
    re.IGNORECASE,
)
_PIP_BUILD = re.compile(
    r"Failed building wheel|Failed to build|subprocess-exited-with-error", re.IGNORECASE
)


@dataclass(frozen=True)
class InstallFailure:
    status: Status
    category: str
    message: str
    hint: str = ""

    @property
    def retryable(self) -> bool:
        return self.category == "network"


def _clean(output: str) -> list[str]:
    return [_ANSI.sub("", line).rstrip() for line in output.splitlines()]


def shorten(output: str, *, keep: tuple[str, ...] = (), limit: int = 800) -> str:
    """The lines of `output` a person needs: errors, causes and hints, without progress noise."""
    lines = _clean(output)
    wanted = [
        line.strip()
        for line in lines
        if line.strip()
        and (
            line.lstrip().lower().startswith(("error", "cause:", "hint:", "╰─▶", "×"))
            or any(word in line for word in keep)
        )
    ]
    if not wanted:
        wanted = [line.strip() for line in lines if line.strip()][-6:]
    return _cap("\n".join(dict.fromkeys(wanted)), limit)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def uv_reason(output: str, limit: int = 800) -> str:
    """uv's own explanation: the `cause:` chain (with its continuation lines), else the errors.

    The generic "No solution found" headline and uv's flag advice are dropped: the verdict and
    our hint already say that.
    """
    reason: list[str] = []
    in_cause = False
    for line in _clean(output):
        stripped = line.strip()
        if stripped.startswith(("cause:", "╰─▶")):
            reason.append(stripped.split(None, 1)[1] if " " in stripped else "")
            in_cause = True
        elif in_cause and line.startswith((" ", "\t")) and stripped and ":" not in stripped[:8]:
            reason[-1] += " " + stripped
        else:
            in_cause = False
    return _cap(" ".join(r for r in reason if r), limit) if reason else shorten(output, limit=limit)


def pip_reason(output: str, limit: int = 800) -> str:
    """pip's explanation: the ERROR lines and the 'conflict is caused by' block."""
    lines = _clean(output)
    reason: list[str] = []
    in_block = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("ERROR:") and not any(
            noise in stripped for noise in ("ResolutionImpossible", "Ignored the following")
        ):
            reason.append(re.sub(r" \(from versions: [^)]*\)", "", stripped[6:].strip()))
        elif stripped == "The conflict is caused by:":
            in_block = True
        elif in_block and stripped and line.startswith(" "):
            reason.append(stripped)
        else:
            in_block = False
    return _cap("; ".join(dict.fromkeys(reason)), limit) if reason else shorten(output, limit=limit)


def classify_uv(output: str, *, only_binary: bool) -> InstallFailure:
    """Classify the output of a failed `uv pip compile`/`uv pip sync`/`uv venv`."""
    message = uv_reason(output)
    if _UV_NO_DIST.search(output):
        hint = "no distribution matches this Python/platform: the combination is not offered" + (
            " as wheels" if only_binary else ""
        )
        return InstallFailure("unsupported", "no-distribution", message, hint)
    if _NETWORK.search(output):
        return InstallFailure(
            "error", "network", message, "the package index was unreachable; retry"
        )
    if _UV_BUILD.search(output):
        return InstallFailure(
            "unsupported", "build-failure", message, "no wheel, and building from source failed"
        )
    if "No solution found" in output or "unsatisfiable" in output:
        return InstallFailure(
            "conflict",
            "resolution-conflict",
            message,
            "the packages' declared requirements exclude each other: change one of the pins",
        )
    return InstallFailure("error", "install", message, "the installer failed; see the lock log")


def classify_pip(output: str, *, only_binary: bool, log: str = "") -> InstallFailure:
    """Classify the output of a failed `pip install`; `log` is its `--log` file, if any."""
    message = pip_reason(output)
    unreachable = _PIP_UNREACHABLE.search(log)
    if unreachable is not None or _NETWORK.search(output):
        if unreachable is not None:
            message = _cap(f"{unreachable.group(0).strip()}; {message}", 800)
        return InstallFailure(
            "error", "network", message, "the package index was unreachable; retry"
        )
    if _PIP_CONFLICT.search(output):
        return InstallFailure(
            "conflict",
            "resolution-conflict",
            message,
            "the packages' declared requirements exclude each other: change one of the pins",
        )
    if _PIP_NO_DIST.search(output):
        hint = "no distribution matches this Python/platform: the combination is not offered" + (
            " as wheels" if only_binary else ""
        )
        return InstallFailure("unsupported", "no-distribution", message, hint)
    if _PIP_BUILD.search(output):
        return InstallFailure(
            "unsupported", "build-failure", message, "no wheel, and building from source failed"
        )
    return InstallFailure("error", "install", message, "the installer failed; see the lock log")


# -- micromamba --------------------------------------------------------------------------------

#: libmamba/libcurl transfer failures ("Download error (6) Could not resolve hostname",
#: "(28) Timeout was reached", "Failed to load subdir"): mamba 2.x then also says "Could not
#: solve", so these are checked first.
_MAMBA_NETWORK = re.compile(
    r"Download error \((?!22\))\d+\)|Could not resolve host|Could not connect to server"
    r"|Timeout was reached|Failed to load subdir|Couldn't resolve host|SSL connect error"
    r"|Connection timed out|Operation too slow",
    re.IGNORECASE,
)
#: HTTP errors on a channel's repodata: a wrong channel name or URL, not a network blip.
_MAMBA_CHANNEL = re.compile(
    r"Download error \(22\)|HTTP response code said error|returned error: 40[134]", re.IGNORECASE
)
_MAMBA_SOLVE = re.compile(
    r"Could not solve for environment specs|Encountered problems while solving"
    r"|UnsatisfiableError|\"solver_problems\"",
    re.IGNORECASE,
)
#: libmamba's tree: the top-level spec does not exist at all (depth 1 says "a typo or").
_REQUESTED_MISSING = re.compile(
    r"perhaps a typo or a missing channel|nothing provides requested|^package \S+ does not exist",
    re.IGNORECASE,
)
_DEEP_MISSING = re.compile(
    r"which does not exist \(perhaps a missing channel\)|is missing on the system"
    r"|nothing provides .+ needed by",
    re.IGNORECASE,
)
_TREE_GLYPHS = re.compile(r"^[\s│├└─|`-]*")
_LOG_PREFIX = re.compile(r"^\s*(?:error|critical|warning|info)\s+libmamba\s+", re.IGNORECASE)
#: Packages that stand for "this Python" or "this platform" rather than for a requirement.
_PLATFORM = re.compile(r"^(?:python|python_abi|python-freethreading|_python_rc|__\w+)$")
_FILENAME = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<build>[^-]+)$")

_MAMBA_CONFLICT_HINT = (
    "the packages' declared requirements exclude each other: change one of the pins"
)
_MAMBA_NO_DIST_HINT = (
    "no conda build matches this Python/platform on these channels: the combination is "
    "not offered (check the channels, or the version's builds with `micromamba search`)"
)


def _tree_lines(output: str) -> list[str]:
    """The solver's explanation, one stripped line each, without log prefixes and tree glyphs."""
    lines = []
    for line in _clean(output):
        text = _TREE_GLYPHS.sub("", _LOG_PREFIX.sub("", line)).strip()
        if text:
            lines.append(text)
    return lines


def _solver_problems(output: str) -> list[str]:
    """libsolv's problem strings from micromamba's `--json` document or its older text form."""
    problems: list[str] = []
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"^\{", output, re.MULTILINE)):
        try:
            document, _ = decoder.raw_decode(output, start)
        except ValueError:
            continue
        if isinstance(document, dict):
            problems += [str(p) for p in document.get("solver_problems") or ()]
        break
    in_block = False
    for line in _clean(output):
        stripped = line.strip()
        if stripped.startswith("Encountered problems while solving"):
            in_block = True
        elif in_block and stripped.startswith("- "):
            problems.append(stripped[2:])
        elif stripped:
            in_block = False
    return problems


def _spec_name(text: str) -> str:
    """The package a tree line or problem string is about: `pin on python =3.13` -> python."""
    text = re.sub(r"^(?:pin on|package)\s+", "", text.strip())
    token = re.split(r"[\s=<>!~\[,;*]", text, maxsplit=1)[0]
    match = _FILENAME.match(token)  # libsolv names a solvable by its file: numpy-1.26.4-py312_0
    return match.group("name") if match and any(c.isdigit() for c in token) else token


def _conflicting_names(lines: list[str], problems: list[str]) -> list[str]:
    names = [
        _spec_name(line)
        for line in lines
        if "conflicts with any installable versions previously reported" in line
    ]
    for problem in problems:
        both = re.match(r"cannot install both (\S+) and (\S+)", problem)
        if both:
            names += [_spec_name(both.group(1)), _spec_name(both.group(2))]
            continue
        requires = re.match(r"package \S+ requires (.+?), but none of the providers", problem)
        if requires:
            names.append(_spec_name(requires.group(1)))
            continue
        constraint = re.match(r"package \S+ has constraint (.+?) conflicting with", problem)
        if constraint:
            names.append(_spec_name(constraint.group(1)))
    return names


def micromamba_reason(output: str, limit: int = 800) -> str:
    """libmamba's explanation as one line: each requirement joined to what it requires.

    The tree's positive leaves keep their requirement (which Pythons a package's builds need
    is the answer a reader wants) but lose "which can be installed"; headers are dropped.
    """
    problems = _solver_problems(output)
    lines = _tree_lines(output)
    try:
        start = next(i for i, line in enumerate(lines) if "Could not solve" in line) + 1
    except StopIteration:
        start = len(lines)
    merged: list[str] = []
    joining = False
    for line in lines[start:]:
        if "Could not solve" in line or line.startswith(("{", "}", '"')):
            break
        if line.startswith(("The following package", "Pins seem", "- ")):
            joining = False
            continue
        text = re.sub(r",? which can be installed(?: \(as previously explained\))?", "", line)
        text = text.rstrip(";.").strip()
        if joining and merged:
            merged[-1] += " " + text
        else:
            merged.append(text)
        joining = text.endswith(("requires", "would require"))
    reason = "; ".join(merged) or "; ".join(problems)
    return _cap(reason, limit) if reason else shorten(output, limit=limit)


def classify_micromamba(output: str) -> InstallFailure:
    """Classify the output of a failed `micromamba create` (text or `--json`).

    Nothing matching a requested spec (a name or version the channels do not have, a virtual
    package such as `__cuda`/`__glibc` this platform lacks, or builds only for other Pythons:
    every conflict is with `python`/`python_abi`) is `unsupported`/`no-distribution`; specs
    whose declared requirements exclude each other are `conflict`/`resolution-conflict`.
    """
    if _MAMBA_NETWORK.search(output):
        return InstallFailure(
            "error", "network", shorten(output), "the conda channel was unreachable; retry"
        )
    if _MAMBA_CHANNEL.search(output):
        return InstallFailure(
            "error",
            "channel",
            shorten(output),
            "a channel's repodata could not be fetched (HTTP error): check the matrix's "
            "`channels:`",
        )
    if not _MAMBA_SOLVE.search(output):
        return InstallFailure(
            "error", "install", shorten(output), "micromamba failed; see the cell's log"
        )
    message = micromamba_reason(output)
    lines = _tree_lines(output)
    problems = _solver_problems(output)
    evidence = lines + problems
    if any(_REQUESTED_MISSING.search(line) for line in evidence):
        return InstallFailure("unsupported", "no-distribution", message, _MAMBA_NO_DIST_HINT)
    conflicting = _conflicting_names(lines, problems)
    if conflicting and all(_PLATFORM.match(name) for name in conflicting):
        return InstallFailure("unsupported", "no-distribution", message, _MAMBA_NO_DIST_HINT)
    if not conflicting and any(_DEEP_MISSING.search(line) for line in evidence):
        return InstallFailure("unsupported", "no-distribution", message, _MAMBA_NO_DIST_HINT)
    return InstallFailure("conflict", "resolution-conflict", message, _MAMBA_CONFLICT_HINT)


# -- what the index says: typos, Requires-Python, missing wheels, clashing pins ---------------

#: Well-known distribution names a misspelling is compared with (beside the matrix's own).
_KNOWN_FILE = "known_distributions.txt"
#: Import names people write where the distribution has another name.
_IMPORT_NAMES = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "cv2": "opencv-python",
    "pil": "pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "attr": "attrs",
    "google-protobuf": "protobuf",
}
_PIN_CHECKS = 3


@dataclass(frozen=True)
class Resolution:
    """A resolve without install: `ok` True (with the chosen `pins`), False (refused), or None
    (not decided: offline, timeout)."""

    ok: bool | None
    pins: dict[str, str] = field(default_factory=dict)


def _known_names() -> list[str]:
    try:
        text = resources.files("compat_matrix.build").joinpath(_KNOWN_FILE).read_text("utf-8")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _named(requirements: Sequence[str]) -> list[Requirement]:
    """The index requirements among `requirements` (direct references and paths are not)."""
    named = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.url is None and req.marker is None:
            named.append(req)
    return named


def _python_version(python: str) -> Version:
    return Version(python.rstrip("t"))


def _wheel_tags(python: str) -> set[tags.Tag]:
    """The wheel tags an interpreter of `python` on this machine accepts."""
    version = _python_version(python)
    short = (version.major, version.minor)
    abis = [f"cp{short[0]}{short[1]}t"] if python.endswith("t") else None
    return set(tags.cpython_tags(short, abis=abis)) | set(tags.compatible_tags(short))


@dataclass(frozen=True)
class _Offer:
    """What one project offers an interpreter: installable versions, with or without a build."""

    project: Project
    python: Version
    accepted: set[tags.Tag]

    def admitted(self, version: Version) -> bool:
        return any(f.admits(self.python) for f in self.project.files_of(version))

    def has_wheel(self, version: Version) -> bool:
        for f in self.project.files_of(version):
            if f.is_wheel and f.admits(self.python):
                try:
                    if parse_wheel_filename(f.filename)[3] & self.accepted:
                        return True
                except ValueError:
                    continue
        return False

    def has_sdist(self, version: Version) -> bool:
        return any(not f.is_wheel for f in self.project.files_of(version))

    def installable(self, version: Version, *, only_binary: bool) -> bool:
        if self.has_wheel(version):
            return True
        return not only_binary and self.admitted(version) and self.has_sdist(version)

    def newest(self, spec: SpecifierSet, *, only_binary: bool) -> list[Version]:
        """Installable final releases in `spec`, newest first."""
        return [
            v
            for v in reversed(self.project.versions())
            if not v.is_prerelease
            and spec.contains(v)
            and self.installable(v, only_binary=only_binary)
        ]


def _exists(index: PackageIndex, name: str) -> bool:
    try:
        return index.project(name) is not None
    except IndexUnavailable:
        return False


def _near_names(name: str, others: Sequence[str], index: PackageIndex) -> list[str]:
    """Names that exist on the index and are close to `name`: the matrix's, then well-known."""
    key = canonicalize_name(name)
    candidates = list(dict.fromkeys(canonicalize_name(n) for n in (*others, *_known_names())))
    close: list[str] = difflib.get_close_matches(
        key, [c for c in candidates if c != key], n=3, cutoff=0.75
    )
    alias = _IMPORT_NAMES.get(key)
    if alias:
        close.insert(0, alias)
    return [c for c in dict.fromkeys(close) if _exists(index, c)][:3]


def _near_versions(spec: SpecifierSet, versions: list[Version]) -> list[Version]:
    """Released versions around the one asked for: two below and two above it."""
    finals = [v for v in versions if not v.is_prerelease] or versions
    pinned = [s.version for s in spec if s.operator in ("==", "===", "~=", ">=", "<=")]
    try:
        wanted = Version(pinned[0].rstrip(".*")) if pinned else None
    except ValueError:
        wanted = None
    if wanted is None:
        return finals[-3:]
    below = [v for v in finals if v < wanted][-2:]
    above = [v for v in finals if v > wanted][:2]
    return below + above


def _no_such_package(
    req: Requirement, named: list[Requirement], index: PackageIndex
) -> InstallFailure:
    where = ", ".join(index.urls)
    near = _near_names(req.name, [r.name for r in named if r.name != req.name], index)
    message = f"{req.name} does not exist on the package index ({where})"
    if near:
        hint = f"check the spelling in the matrix: did you mean {' or '.join(near)}?"
    else:
        hint = "check the spelling in the matrix, or the index it is published on"
    return InstallFailure("error", "no-such-package", message, hint)


def _no_such_version(req: Requirement, project: Project) -> InstallFailure:
    versions = sorted({f.version for f in project.files})
    near = _near_versions(req.specifier, versions)
    exact = [s.version for s in req.specifier if s.operator in ("==", "===")]
    if len(exact) == 1 and "*" not in exact[0]:
        message = f"{req.name} {exact[0]} was never released"
    else:
        message = f"no release of {req.name} matches {req.specifier}"
    newest = versions[-1] if versions else None
    hint = "check the version in the matrix"
    if near:
        hint += f": the nearest releases are {', '.join(str(v) for v in near)}"
    if newest is not None and newest not in near:
        hint += f" (newest {newest})"
    return InstallFailure("error", "no-such-version", message, hint)


def _check(
    replaced: dict[str, str], requirements: Sequence[str], resolve: Resolve | None
) -> Resolution:
    """Resolve `requirements` with `replaced` (name -> new requirement) swapped in."""
    if resolve is None:
        return Resolution(None)
    changed = []
    for text in requirements:
        name: str = ""
        with contextlib.suppress(InvalidRequirement):
            name = canonicalize_name(Requirement(text).name)
        changed.append(replaced.get(name, text))
    changed += [r for n, r in replaced.items() if r not in changed and n]
    return resolve(changed)


def _verified(outcome: bool | None) -> str:
    return " (verified: resolves)" if outcome else " (unverified)"


def _nearest(
    candidates: list[Version], to: Version | None, releases: list[Version]
) -> list[Version]:
    """`candidates` nearest `to` first, counted in releases (at equal distance the newer):
    the smallest change, not the newest release. Newest first when `to` is unknown."""
    if to is None:
        return candidates
    position = {v: i for i, v in enumerate(sorted({*releases, *candidates, to}))}
    here = position[to]
    return sorted(candidates, key=lambda v: (abs(position[v] - here), -position[v]))


def _pinned_version(requirement: Requirement) -> Version | None:
    for spec in requirement.specifier:
        if spec.operator in ("==", "===") and "*" not in spec.version:
            try:
                return Version(spec.version)
            except ValueError:
                return None
    return None


def _pick(
    name: str,
    candidates: list[Version],
    within: SpecifierSet,
    requirements: Sequence[str],
    resolve: Resolve | None,
) -> tuple[str, str] | None:
    """The first candidate pin (callers order them nearest first) that resolves.

    The first few candidates are tried as pins; when the resolver refuses them all, it is
    asked for `name` within `within` and its own choice is the answer (verified by
    construction). Returns the version and how it was checked; None when nothing resolves.
    """
    key = canonicalize_name(name)
    for version in candidates[:_PIN_CHECKS]:
        outcome = _check({key: f"{name}=={version}"}, requirements, resolve).ok
        if outcome is not False:
            return str(version), _verified(outcome)
    if not candidates or resolve is None:
        return None
    loose = _check({key: f"{name}{within}"}, requirements, resolve)
    chosen = loose.pins.get(key)
    if loose.ok and chosen:
        return chosen, " with the other pins (verified: resolves)"
    return None


def _unavailable(
    failure: InstallFailure,
    named: list[Requirement],
    offers: dict[str, _Offer],
    python: str,
    *,
    only_binary: bool,
    requirements: Sequence[str],
    resolve: Resolve | None,
) -> InstallFailure:
    """Name the release that has no build here, why, and the newest one that has."""
    short = ".".join(python.rstrip("t").split(".")[:2]) + ("t" if python.endswith("t") else "")
    for req in named:
        offer = offers[canonicalize_name(req.name)]
        matching = [v for v in offer.project.versions() if req.specifier.contains(v, True)]
        if not matching or any(offer.installable(v, only_binary=only_binary) for v in matching):
            continue
        asked = max(matching)
        best = _pick(
            req.name,
            _nearest(
                offer.newest(SpecifierSet(), only_binary=only_binary),
                asked,
                offer.project.versions(),
            ),
            SpecifierSet(),
            requirements,
            resolve,
        )
        if best is None:
            alternative = f"; no release of {req.name} resolves with the other pins on {short}"
        elif best[1].startswith(" with"):  # the resolver's own choice: not searched nearest
            alternative = f"; {req.name} {best[0]} resolves for {short}{best[1]}"
        else:
            alternative = f"; the smallest change for {short} is {req.name} {best[0]}{best[1]}"
        if not any(offer.admitted(v) for v in matching):
            needs = next(
                (f.requires_python for f in offer.project.files_of(asked) if f.requires_python),
                "another Python",
            )
            hint = f"{req.name} {asked} needs Python {needs}{alternative}"
            return InstallFailure(failure.status, failure.category, failure.message, hint)
        hint = f"{req.name} {asked} has no wheel for Python {short} on this platform{alternative}"
        if only_binary and any(offer.has_sdist(v) for v in matching):
            hint += "; or set only-binary: false to try building it from source"
        elif only_binary:
            hint += f" ({req.name} {asked} publishes no source distribution)"
        return InstallFailure(failure.status, failure.category, failure.message, hint)
    return failure


#: uv: `a==1 depends on b{markers}>=1,<2`; pip: `a 1 depends on b<2 and >=1`.
_DEPENDS = re.compile(
    r"(?P<who>[A-Za-z0-9][\w.-]*)(?:==| )(?P<version>[\w.+!-]+) depends on "
    r"(?P<dep>[A-Za-z0-9][\w.-]*)(?:\[[^\]]*\])?(?:\{[^}]*\})?"
    r"(?P<spec>[<>=!~][^\s,;]*(?:(?:,| and )[<>=!~][^\s,;]*)*)"
)


def _clash(
    failure: InstallFailure,
    named: list[Requirement],
    offers: dict[str, _Offer],
    *,
    only_binary: bool,
    requirements: Sequence[str],
    resolve: Resolve | None,
) -> InstallFailure:
    """Name the declared requirement that excludes a pin, and a version that satisfies it."""
    pinned = {canonicalize_name(r.name): r for r in named}
    for match in _DEPENDS.finditer(failure.message):
        dep = canonicalize_name(match.group("dep"))
        spec_text = match.group("spec").replace(" and ", ",").rstrip(".,")
        if dep not in pinned or canonicalize_name(match.group("who")) == dep:
            continue
        try:
            spec = SpecifierSet(spec_text)
        except ValueError:
            continue
        mine = pinned[dep]
        if any(
            spec.contains(v) for v in offers[dep].project.versions() if mine.specifier.contains(v)
        ):
            continue  # this pin can meet the requirement: the clash is elsewhere
        who = f"{match.group('who')} {match.group('version')}"
        head = f"{who} requires {match.group('dep')}{spec}, which excludes {mine}"
        best = _pick(
            mine.name,
            _nearest(
                offers[dep].newest(spec, only_binary=only_binary),
                _pinned_version(mine),
                offers[dep].project.versions(),
            ),
            spec,
            requirements,
            resolve,
        )
        if best is None:
            hint = f"{head}; no release of {mine.name} in that range resolves with the other pins"
        elif best[1].startswith(" with"):
            hint = f"{head}; {mine.name} {best[0]} satisfies it{best[1]}"
        else:
            hint = (
                f"{head}; the smallest change is {mine.name} {best[0]}, which satisfies it{best[1]}"
            )
        return InstallFailure(failure.status, failure.category, failure.message, hint)
    return failure


def refine_install_failure(
    failure: InstallFailure,
    requirements: Sequence[str],
    python: str,
    *,
    only_binary: bool,
    index: PackageIndex,
    resolve: Resolve | None = None,
) -> InstallFailure:
    """Ask the index what the installer's message leaves out, and say it.

    A name the index does not have is `error`/`no-such-package` and a version never released
    `error`/`no-such-version` (a typo is not a verdict), each naming what does exist.
    `unsupported` says why (Requires-Python, or no wheel for this Python) and which release
    would install; `conflict` names the clashing requirement and a version meeting it. Every
    suggested pin is resolved with `resolve` first and never suggested if refused. When the
    index cannot be reached the installer's own classification stands.
    """
    if failure.category not in ("no-distribution", "resolution-conflict", "build-failure"):
        return failure
    named = _named(requirements)
    try:
        offers: dict[str, _Offer] = {}
        accepted = _wheel_tags(python)
        for req in named:
            project = index.project(req.name)
            if project is None:
                return _no_such_package(req, named, index)
            offers[canonicalize_name(req.name)] = _Offer(project, _python_version(python), accepted)
        for req in named:
            project = offers[canonicalize_name(req.name)].project
            if not any(req.specifier.contains(f.version, True) for f in project.files):
                return _no_such_version(req, project)
        if failure.category == "resolution-conflict":
            return _clash(
                failure,
                named,
                offers,
                only_binary=only_binary,
                requirements=requirements,
                resolve=resolve,
            )
        return _unavailable(
            failure,
            named,
            offers,
            python,
            only_binary=only_binary,
            requirements=requirements,
            resolve=resolve,
        )
    except IndexUnavailable:
        return failure


# -- rattler (backend: conda) --------------------------------------------------------------------

#: resolvo's leaves: `python >=3.12,<3.13.0a0, for which no candidates were found`, or the
#: top-level `No candidates were found for nosuch *`.
_RATTLER_LEAF = re.compile(
    r"^(?P<spec>.+?),? for which no candidates were found"
    r"|^(?P<conflict>.+?), which conflicts with",
    re.IGNORECASE,
)
_RATTLER_TOP_MISSING = re.compile(r"^No candidates were found for (?P<spec>.+?)\.?$", re.IGNORECASE)
_RATTLER_HEADER = re.compile(r"^Cannot solve the request because of:\s*", re.IGNORECASE)


def rattler_reason(message: str, limit: int = 800) -> str:
    """rattler's (resolvo's) explanation as one line: each requirement joined to its leaf."""
    lines = [
        _TREE_GLYPHS.sub("", _RATTLER_HEADER.sub("", line)).strip() for line in _clean(message)
    ]
    merged: list[str] = []
    joining = False
    for text in (line.rstrip(".:;") for line in lines if line):
        if joining and merged:
            merged[-1] += " " + text
        else:
            merged.append(text)
        joining = text.endswith(("would require", "require"))
    reason = "; ".join(dict.fromkeys(merged))
    return _cap(reason, limit) if reason else shorten(message, limit=limit)


def classify_rattler(error: str, message: str) -> InstallFailure:
    """Classify a failed rattler solve or install (`error` is rattler's exception class).

    A requested name or version no channel offers, or one whose builds all need another
    Python or a virtual package this machine lacks (`__cuda`, `__glibc`), is
    `unsupported`/`no-distribution`; requirements that exclude each other are `conflict`.
    Fetch and transfer failures are `error`/`network` (retried once); an HTTP error on a
    channel's repodata is `error`/`channel`.
    """
    if error != "SolverError":
        fetching = error in ("FetchRepoDataError", "GatewayError")
        if fetching and re.search(r"\b40[134]\b|Not Found|No such file", message, re.I):
            return InstallFailure(
                "error",
                "channel",
                shorten(message),
                "a channel's repodata could not be fetched: check the matrix's `channels:`",
            )
        if fetching or _NETWORK.search(message) or _MAMBA_NETWORK.search(message):
            return InstallFailure(
                "error", "network", shorten(message), "the conda channel was unreachable; retry"
            )
        return InstallFailure(
            "error",
            "install",
            shorten(f"{error}: {message}"),
            "rattler failed to build the environment; see the cell's log",
        )
    reason = rattler_reason(message)
    lines = [
        _TREE_GLYPHS.sub("", _RATTLER_HEADER.sub("", line)).strip() for line in _clean(message)
    ]
    lines = [line for line in lines if line]
    if lines and _RATTLER_TOP_MISSING.match(lines[0]):
        return InstallFailure("unsupported", "no-distribution", reason, _MAMBA_NO_DIST_HINT)
    leaves = []
    for line in lines:
        leaf = _RATTLER_LEAF.search(line)
        if leaf:
            leaves.append(_spec_name(leaf.group("spec") or leaf.group("conflict") or ""))
    if leaves and all(_PLATFORM.match(name) for name in leaves):
        return InstallFailure("unsupported", "no-distribution", reason, _MAMBA_NO_DIST_HINT)
    return InstallFailure("conflict", "resolution-conflict", reason, _MAMBA_CONFLICT_HINT)
