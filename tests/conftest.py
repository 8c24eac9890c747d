"""Shared fixtures: the repository, real interpreters found on this machine, uv."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from compat_matrix.build import pythons
from compat_matrix.build.backends import find_uv

REPO = Path(__file__).resolve().parents[1]


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
