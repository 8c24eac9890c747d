"""How many CPUs a process may use (compat_matrix/cpus.py): its affinity and its CPU quota,
read from the cgroup files of every layout a container or host has. The quota's effect on a
real run (one cell at a time in a real cgroup) is tested with the run (test_pipeline.py)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from compat_matrix.cpus import cpu_quota, usable_cpus
from compat_matrix.reports import _parallel


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this OS")
def test_never_more_than_the_affinity_allows() -> None:
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the helper is forked on Linux")
def test_a_big_report_forks_its_helper_only_with_a_second_usable_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A quota of one CPU on a machine of many: the helper would only share that one CPU. (The
    CPU counts stand in for the machines; the thread count for a process of this one thread,
    which an xdist worker is not.)"""
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(_parallel, "usable_cpus", lambda: 2)
    assert _parallel.fork_pays(10_000)
    monkeypatch.setattr(_parallel, "usable_cpus", lambda: 1)
    assert not _parallel.fork_pays(10_000)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        # cgroup v2 in a container (its own cgroup is the root): `docker run --cpus 1.5`
        ({"proc": "0::/\n", "fs/cgroup.controllers": "cpu", "fs/cpu.max": "150000 100000\n"}, 1.5),
        ({"proc": "0::/\n", "fs/cgroup.controllers": "cpu", "fs/cpu.max": "max 100000\n"}, None),
        # v2 on a host: the tightest of the cgroup and its parents (a Kubernetes pod's limit)
        (
            {
                "proc": "0::/kubepods/pod1/c1\n",
                "fs/cgroup.controllers": "cpu",
                "fs/kubepods/pod1/cpu.max": "200000 100000\n",
                "fs/kubepods/pod1/c1/cpu.max": "max 100000\n",
            },
            2.0,
        ),
        # v1 with cpu and cpuacct mounted together, and a hybrid host's empty unified tree
        (
            {
                "proc": "4:cpu,cpuacct:/docker/abc\n0::/\n",
                "fs/unified/cgroup.procs": "",
                "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n",
                "fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
            },
            0.5,
        ),
        ({"proc": "1:cpu:/\n", "fs/cpu/cpu.cfs_quota_us": "-1\n"}, None),
        ({"fs/cpu.max": "100000 100000\n"}, None),  # no /proc/self/cgroup: not Linux
    ],
)
def test_a_cpu_quota_is_read_from_the_cgroup_files(
    tmp_path: Path, files: dict[str, str], quota: float | None
) -> None:
    """The kernel's files as a container sees them, laid out in a folder (the layouts of other
    machines cannot exist on this one); the real cgroup is the test below."""
    _write(tmp_path, files)
    assert cpu_quota(tmp_path / "proc", tmp_path / "fs") == quota
