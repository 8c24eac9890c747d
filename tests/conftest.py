"""Shared fixtures: the repository, real interpreters found on this machine, uv; and how the
suite runs in parallel (`nox -s tests` runs pytest-xdist with `--dist loadgroup`).

Every test module is one xdist group unless its tests name groups of their own (the accuracy
suite: one group per cell), so a module's module- and session-scoped environments are built
once, on one worker. Fixtures that several modules share and that are expensive to build are
built once per machine under a file lock (the conda test channel). The groups that take
longest start first, so the long poles do not begin last.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from compat_matrix.build import pythons
from compat_matrix.build.backends import find_uv

REPO = Path(__file__).resolve().parents[1]

#: Modules whose tests take longest (measured: building real framework environments), started
#: first so the run does not end waiting on one of them. Accuracy cells come before these.
LONG_MODULES = (
    "test_abi_probe.py",
    "test_cuda_probe.py",
    "test_gpu_arch.py",
    "test_install_errors.py",
    "test_conda.py",
    "test_conda_envs.py",
    "test_micromamba.py",
    "test_whatif.py",
    "test_hostile_runtime.py",
    "test_consistency_probe.py",
    "test_environments.py",
    "test_front_doors.py",
    "test_nox_e2e.py",
)
#: Accuracy matrices by how long a cold cell takes (the biggest wheels first).
ACCURACY_ORDER = ("tensorflow", "jax", "torch", "scikit-learn", "pandas")


def _start_rank(item: pytest.Item) -> tuple[int, int]:
    name = item.path.name
    if name == "test_accuracy.py":
        stem = item.nodeid.rsplit("[", 1)[-1]
        ranks = [n for n, matrix in enumerate(ACCURACY_ORDER) if stem.startswith(matrix + "-")]
        return (0, ranks[0] if ranks else len(ACCURACY_ORDER))
    if name in LONG_MODULES:
        return (1, LONG_MODULES.index(name))
    return (2, 0)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group each module's tests for `--dist loadgroup`, and order the long groups first.

    Runs before xdist reads the groups. The sort is stable and the same on every worker (xdist
    checks that each collects the same items in the same order)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.path.name))
    items.sort(key=_start_rank)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def interpreters() -> list[pythons.Interpreter]:
    return pythons.discover()


@pytest.fixture(scope="session")
def uv_bin() -> str:
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed")
    return uv


@pytest.fixture(scope="session")
def python_for(interpreters: list[pythons.Interpreter]):  # type: ignore[no-untyped-def]
    """python_for("3.11") -> Interpreter, or skip the test when this machine lacks it."""

    def pick(request: str) -> pythons.Interpreter:
        found = pythons.select(interpreters, request)
        if found is None:
            pytest.skip(f"no CPython {request} on this machine")
        return found

    return pick


@pytest.fixture(autouse=True)
def _no_slow_network_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """uv retries an unreachable index 3 times by default; tests only need to see it fail."""
    monkeypatch.setenv("UV_HTTP_RETRIES", os.environ.get("COMPAT_TEST_UV_RETRIES", "0"))


@pytest.fixture(scope="session")
def channel():  # type: ignore[no-untyped-def]
    """The local conda test channel (tests/_conda_channel.py), built once and cached on disk."""
    from _conda_channel import build_channel, channel_pythons

    if sys.platform != "linux":
        pytest.skip("the local conda channel is built from Linux CPythons (ELF, patchelf)")
    if len(channel_pythons()) < 2:
        pytest.skip("the local conda channel needs CPython 3.11 and 3.12 on this machine")
    return build_channel()


@pytest.fixture(scope="session")
def conda_cache(channel) -> Path:  # type: ignore[no-untyped-def]
    """One package cache for every test and run: packages are extracted once, then linked."""
    return channel.path.with_name(channel.path.name + "-cache")
