"""Which machine a GitHub runner label stands for, so a local run knows what it cannot judge.

The `os` axis holds a runner label (`ubuntu-24.04`, `ubuntu-24.04-arm`, `macos-15`,
`windows-latest`). `plan --github` sends the cell to that runner; a local run compares the
label's platform with this machine's and marks a cell for another platform `skip` /
`other-platform` instead of pretending a Linux x86-64 run answers for macOS arm64. A label this
table does not know (a self-hosted runner's) is taken to mean "here".
"""

from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass

__all__ = ["Platform", "current_platform", "other_platform_reason", "runner_platform"]


@dataclass(frozen=True)
class Platform:
    system: str  # "linux" | "macos" | "windows"
    machine: str  # "x86_64" | "arm64"

    def __str__(self) -> str:
        names = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}
        return f"{names.get(self.system, self.system)} {self.machine}"


_MACHINES = {"amd64": "x86_64", "x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
# GitHub-hosted macOS labels that are Intel machines; every other macOS label is Apple silicon.
_MACOS_INTEL = re.compile(r"macos-1[0-3](\b|-)|macos-.*-(large|intel)$")


def current_platform() -> Platform:
    """This machine, in the same terms as `runner_platform`."""
    system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, "linux")
    machine = _MACHINES.get(platform.machine().lower(), platform.machine().lower())
    return Platform(system, machine)


def runner_platform(label: str) -> Platform | None:
    """The platform of a GitHub-hosted runner label; None for a label it does not know."""
    label = label.lower()
    if label.startswith("ubuntu-"):
        return Platform("linux", "arm64" if label.endswith("-arm") else "x86_64")
    if label.startswith("macos-"):
        return Platform("macos", "x86_64" if _MACOS_INTEL.match(label) else "arm64")
    if label.startswith("windows-"):
        return Platform("windows", "arm64" if label.endswith("-arm") else "x86_64")
    return None


def other_platform_reason(label: str | None, here: Platform | None = None) -> str | None:
    """Why a cell for runner `label` cannot be judged on this machine, or None when it can."""
    if not label:
        return None
    wanted = runner_platform(label)
    here = here or current_platform()
    if wanted is None or wanted == here:
        return None
    return f"this cell runs on {label} ({wanted}); this machine is {here}"
