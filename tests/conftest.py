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
import resource
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

from compat_matrix.build import pythons
from compat_matrix.build.backends import find_uv

REPO = Path(__file__).resolve().parents[1]

#: Seconds each xdist group took in a measured run (`nox -s tests`, 4 workers, on a loaded
#: 2-core machine, a cold conda channel; an accuracy cell by its matrix, its longest cell).
#: Groups start longest first, so the run does not end waiting on a long one that began last; a
#: group not listed counts as DEFAULT_S.
MEASURED_S = {
    "test_conda.py": 265,
    "test_nox_e2e.py": 152,
    "test_action.py": 128,
    "test_install_errors.py": 125,
    "test_hostile_runtime.py": 104,
    "accuracy-torch": 72,
    "test_gpu_arch.py": 64,
    "test_whatif.py": 62,
    "accuracy-tensorflow": 58,
    "test_abi_probe.py": 55,
    "test_conda_envs.py": 52,
    "test_environments.py": 45,
    "test_cli.py": 41,
    "test_cuda_probe.py": 39,
    "test_resolution.py": 37,
    "test_github_examples.py": 35,
    "test_floors.py": 35,
    "test_foreign_platforms.py": 33,
    "test_import_probe.py": 28,
    "test_micromamba.py": 28,
    "test_culprit.py": 25,
    "test_smallest_change.py": 23,
    "test_front_doors.py": 23,
    "test_consistency_probe.py": 20,
    "test_freshness.py": 18,
    "accuracy-jax": 17,
    "test_answers.py": 17,
    "accuracy-scikit-learn": 16,
    "test_cuda_axis.py": 16,
    "test_matrix_limits.py": 16,
    "test_native_probe.py": 13,
    "test_reachability.py": 13,
    "test_installed.py": 12,
    "accuracy-pandas": 9,
}
DEFAULT_S = 5


def _estimate_s(item: pytest.Item) -> int:
    if item.path.name == "test_accuracy.py" and "[" in item.nodeid:
        matrix = item.nodeid.rsplit("[", 1)[1]
        for name, seconds in MEASURED_S.items():
            if name.startswith("accuracy-") and matrix.startswith(name[len("accuracy-") :] + "-"):
                return seconds
    return MEASURED_S.get(item.path.name, DEFAULT_S)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group each module's tests for `--dist loadgroup`, and order the long groups first.

    Runs before xdist reads the groups. The sort is stable and the same on every worker (xdist
    checks that each collects the same items in the same order), so a module's tests stay
    together.
    """
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.path.name))
        if getattr(config.option, "loadgroup", False):  # an xdist worker, --dist loadgroup
            _name_group(item)
    items.sort(key=lambda item: -_estimate_s(item))


def _name_group(item: pytest.Item) -> None:
    """Append `@group` to the item's id, as xdist does, where xdist's own renaming is lost.

    xdist (3.8) tells the scheduler an item's group by setting `item._nodeid`; pytest 9.2 keeps
    the id in `item._id` instead, so that rename changes nothing and `loadgroup` schedules every
    test alone: a module's module- and session-scoped environments were built on every worker
    (test_gpu_arch's nvcc fixtures four times, test_nox_e2e's broken matrix run three times).
    """
    if hasattr(item, "_nodeid") or not hasattr(item, "_id") or "@" in item.nodeid:
        return  # a pytest whose id xdist renames itself
    mark = item.get_closest_marker("xdist_group")
    assert mark is not None
    group = mark.args[0] if mark.args else mark.kwargs.get("name", "default")
    item._id = type(item._id).parse(f"{item.nodeid}@{group}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Record each test's CPU seconds (its own and its finished child processes') in the JUnit
    file (`cpu_s`): where a 2-core CI run spends its time, which wall time on shared cores hides."""
    before = _cpu_s()
    try:
        return (yield)
    finally:
        item.user_properties.append(("cpu_s", round(_cpu_s() - before, 2)))


def _cpu_s() -> float:
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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
