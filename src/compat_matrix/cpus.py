"""How many CPUs this process may use: what `-j`'s default, nox's parallel cells and a big
report's forked helper all go by (a stage-free module: the run and the reports both ask it)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["cpu_quota", "usable_cpus"]


def usable_cpus() -> int:
    """The CPUs this process may run on: a container's cpuset or `taskset` narrows them, where
    `os.cpu_count()` still counts the machine's (3.13's `process_cpu_count` says the same), and
    a CPU quota (`docker --cpus 2`, a Kubernetes CPU limit) caps them at the CPUs it pays for."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = cpu_quota()
    if quota is not None:
        cpus = min(cpus or 1, math.ceil(quota))
    return max(1, cpus or 1)


def cpu_quota(
    cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")
) -> float | None:
    """The CPUs' worth of time this process's cgroup and its parents allow (cgroup v2 `cpu.max`,
    v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), the smallest; None when none is set or the
    files are not there (not Linux, no cgroup file system)."""
    try:
        lines = cgroup.read_text().splitlines()
    except OSError:
        return None
    found: list[float] = []
    for line in lines:
        fields = line.split(":", 2)  # hierarchy id, controllers, path
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        names = controllers.split(",")
        if not controllers:  # v2: the unified tree, at the root or beside v1's (hybrid)
            base = root if (root / "cgroup.controllers").exists() else root / "unified"
            found += _quotas(base, path, _cpu_max)
        elif "cpu" in names:
            for mount in (",".join(names), "cpu,cpuacct", "cpuacct,cpu", "cpu"):
                if (root / mount).is_dir():
                    found += _quotas(root / mount, path, _cfs_quota)
                    break
    return min(found) if found else None


def _quotas(base: Path, path: str, read: Callable[[Path], float | None]) -> list[float]:
    """The quota of `path`'s cgroup under `base` and of each parent up to `base` (a container
    sees its own cgroup as the root)."""
    found: list[float] = []
    folder = base / path.strip("/")
    while True:
        quota = read(folder)
        if quota is not None:
            found.append(quota)
        if folder == base or base not in folder.parents:
            return found
        folder = folder.parent


def _cpu_max(folder: Path) -> float | None:
    try:
        quota, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100_000)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _cfs_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
