"""Classify a failed install from the installer's own output.

"No wheel for this Python" is data (`unsupported`), "the declared requirements exclude each
other" is data (`conflict`), an unreachable index is infrastructure (`error`, retried once).
The patterns below are the messages uv and pip really print; tests run both tools for real.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .matrix import Status

__all__ = ["InstallFailure", "classify_pip", "classify_uv", "pip_reason", "shorten", "uv_reason"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

_NETWORK = re.compile(
    r"Failed to fetch|error sending request|dns error|tcp connect error|Connection refused"
    r"|Connection reset|Network is unreachable|Temporary failure in name resolution"
    r"|NewConnectionError|Max retries exceeded|ReadTimeoutError|ConnectTimeoutError"
    r"|operation timed out|Failed to download",
    re.IGNORECASE,
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


def classify_pip(output: str, *, only_binary: bool) -> InstallFailure:
    """Classify the output of a failed `pip install`."""
    message = pip_reason(output)
    if _NETWORK.search(output):
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
