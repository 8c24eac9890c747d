"""Classify a failed install from the installer's own output.

"No wheel for this Python" is data (`unsupported`), "the declared requirements exclude each
other" is data (`conflict`), an unreachable index is infrastructure (`error`, retried once).
The patterns below are the messages uv and pip really print; tests run both tools for real.
micromamba's are libmamba's problem-tree explanations (libmamba/src/solver/problems_graph.cpp)
and libsolv's problem strings (`--json`'s `solver_problems`); conda-forge is not reachable from
where this was written, so those are tested against the documented formats.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from compat_matrix.matrix.model import Status

__all__ = [
    "InstallFailure",
    "classify_micromamba",
    "classify_pip",
    "classify_uv",
    "micromamba_reason",
    "pip_reason",
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
            " as wheels (set only-binary: false to try building from source)" if only_binary else ""
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
