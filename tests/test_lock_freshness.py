"""A cell whose inputs are unchanged reuses its lock for `--lock-max-age` seconds (real uv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compat_matrix.build.backends import DEFAULT_LOCK_MAX_AGE, EnvRequest, UvBackend
from compat_matrix.errors import UsageError
from compat_matrix.run.pipeline import parse_run_options

REUSED = "lock reused"


def _record(envdir: Path) -> Path:
    return envdir.parent / ".locks" / f"{envdir.name}.json"


@pytest.mark.slow
def test_an_unchanged_cell_reuses_its_lock_until_it_is_too_old(tmp_path, python_for) -> None:
    envdir = tmp_path / "envs" / "cell"
    request = EnvRequest(python_for("3.12"), ("six==1.16.0",), lock_max_age=600)
    backend = UvBackend()

    first = backend.prepare(envdir, request, timeout=300)
    assert first.failure is None, first.log
    assert REUSED not in first.log
    assert "six==1.16.0" in first.lock_text

    second = backend.prepare(envdir, request, timeout=300)
    assert REUSED in second.log
    assert second.lock_text == first.lock_text
    assert second.reused  # nothing resolved, nothing installed

    # Other inputs resolve again, and install what they ask for.
    changed = backend.prepare(
        envdir, EnvRequest(request.interpreter, ("six==1.17.0",), lock_max_age=600), timeout=300
    )
    assert REUSED not in changed.log
    assert "six==1.17.0" in changed.lock_text

    # A lock older than the window is resolved again (the record's clock is set back).
    record = json.loads(_record(envdir).read_text())
    record["resolved_at"] -= 601
    _record(envdir).write_text(json.dumps(record))
    aged = backend.prepare(
        envdir, EnvRequest(request.interpreter, ("six==1.17.0",), lock_max_age=600), timeout=300
    )
    assert REUSED not in aged.log

    # 0 (what a nightly passes) always resolves.
    always = backend.prepare(
        envdir, EnvRequest(request.interpreter, ("six==1.17.0",), lock_max_age=0), timeout=300
    )
    assert REUSED not in always.log


@pytest.mark.slow
def test_an_edited_local_project_is_resolved_again(tmp_path, python_for) -> None:
    """A local project's sources are part of the lock's inputs: editing it is never stale."""
    envdir = tmp_path / "envs" / "cell"
    interpreter = python_for("3.12")
    first = UvBackend().prepare(
        envdir,
        EnvRequest(interpreter, ("six==1.16.0",), sources="digest-1", lock_max_age=600),
        timeout=300,
    )
    assert first.failure is None, first.log
    edited = UvBackend().prepare(
        envdir,
        EnvRequest(interpreter, ("six==1.16.0",), sources="digest-2", lock_max_age=600),
        timeout=300,
    )
    assert REUSED not in edited.log


def test_lock_max_age_comes_from_the_command_line_then_the_environment(tmp_path) -> None:
    assert parse_run_options([], {}, tmp_path, prog="t").lock_max_age == DEFAULT_LOCK_MAX_AGE
    assert parse_run_options([], {"COMPAT_LOCK_MAX_AGE": "0"}, tmp_path, prog="t").lock_max_age == 0
    given = parse_run_options(
        ["--lock-max-age", "30"], {"COMPAT_LOCK_MAX_AGE": "0"}, tmp_path, prog="t"
    )
    assert given.lock_max_age == 30
    with pytest.raises(UsageError, match="COMPAT_LOCK_MAX_AGE"):
        parse_run_options([], {"COMPAT_LOCK_MAX_AGE": "soon"}, tmp_path, prog="t")


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_a_bad_lock_max_age_is_a_usage_error(tmp_path, value) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPAT_")}
    done = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "run", f"--lock-max-age={value}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "--lock-max-age" in done.stderr
    assert "Traceback" not in done.stderr
