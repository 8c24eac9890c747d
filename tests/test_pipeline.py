"""The one pipeline: options declared once, the run's exit status, progress, the packaged matrix."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from compat_matrix.cpus import usable_cpus
from compat_matrix.errors import UsageError
from compat_matrix.results import CellResult, ExpectationOutcome, write_cell_result
from compat_matrix.run.pipeline import (
    Progress,
    RunOptions,
    add_run_options,
    cells_at_once,
    packaged_matrix,
    parse_run_options,
    resolve_options,
    run_exit_status,
)


def _args(*words: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    return parser.parse_args(list(words))


def test_the_command_line_wins_over_compat_variables_which_win_over_defaults(
    tmp_path: Path,
) -> None:
    env = {
        "COMPAT_MATRIX": "env.yml",
        "COMPAT_REPORT_DIR": "env-report",
        "COMPAT_JOBS": "3",
        "COMPAT_RESUME": "1",
        "COMPAT_CELLS": "py3.11-*",
        "COMPAT_ENV_DIR": "/envs",
    }
    line = resolve_options(
        _args("cli.yml", "-o", "out", "-j", "2", "--cells", "py3.12-*"), env, tmp_path
    )
    assert (line.matrix, line.report_dir, line.jobs, line.cells) == (
        tmp_path / "cli.yml",
        tmp_path / "out",
        2,
        "py3.12-*",
    )
    assert line.resume  # only the environment said so
    from_env = resolve_options(_args(), env, tmp_path)
    assert (from_env.matrix, from_env.report_dir, from_env.jobs, from_env.env_root) == (
        tmp_path / "env.yml",
        tmp_path / "env-report",
        3,
        Path("/envs"),
    )
    defaults = resolve_options(_args(), {}, tmp_path)
    assert defaults.report_dir == tmp_path / "compat-report"
    assert defaults.env_root == tmp_path / ".nox" / "compat-envs"
    assert defaults.jobs == usable_cpus()
    assert not defaults.resume
    assert defaults.runner == "all"


def test_cells_at_once_is_j_as_given_else_the_cores_and_one_more_where_cells_do_not_divide(
    tmp_path: Path,
) -> None:
    """By default a run shares the cores to the end rather than leave one idle through a last
    round of fewer cells than cores (5 cells on 2 cores: 3 at once); an even share keeps one
    cell per core; `-j` and `$COMPAT_JOBS` are taken as given; one core never gets two."""
    default = resolve_options(_args(), {}, tmp_path)
    assert default.jobs_auto
    assert not resolve_options(_args("-j", "2"), {}, tmp_path).jobs_auto
    assert not resolve_options(_args(), {"COMPAT_JOBS": "2"}, tmp_path).jobs_auto

    def at_once(jobs: int, auto: bool, count: int) -> int:
        options = RunOptions(tmp_path, tmp_path, tmp_path, jobs=jobs, jobs_auto=auto)
        return cells_at_once(options, count)

    two_cores = [at_once(2, True, count) for count in range(1, 8)]
    assert two_cores == [1, 2, 3, 2, 3, 2, 3]
    assert [at_once(2, False, count) for count in range(1, 8)] == [1, 2, 2, 2, 2, 2, 2]
    assert [at_once(1, True, count) for count in range(1, 5)] == [1, 1, 1, 1]
    assert [at_once(4, True, count) for count in (3, 4, 5, 8, 9)] == [3, 4, 5, 4, 5]


def test_the_matrix_is_compat_yml_here_else_the_packaged_default(tmp_path: Path) -> None:
    assert resolve_options(_args(), {}, tmp_path).matrix == packaged_matrix()
    assert packaged_matrix().read_text(encoding="utf-8").count("name: scientific-python") == 1
    (tmp_path / "compat.yml").write_text("matrix: {six: ['1.17.0']}\n")
    assert resolve_options(_args(), {}, tmp_path).matrix == tmp_path / "compat.yml"
    # a noxfile's register("x.yml") is the default; $COMPAT_MATRIX still wins over it
    mine = tmp_path / "x.yml"
    assert parse_run_options([], {}, tmp_path, prog="p", matrix=mine).matrix == mine
    env = {"COMPAT_MATRIX": "e.yml"}
    assert parse_run_options([], env, tmp_path, prog="p", matrix=mine).matrix == tmp_path / "e.yml"


@pytest.mark.parametrize(
    ("words", "env", "problem"),
    [
        (["--bogus"], {}, "unrecognized arguments: --bogus"),
        (["--resume", "extra"], {}, "unrecognized arguments: extra"),
        (["--gpu-only", "--cpu-only"], {}, "exclude each other"),
        (["-j", "0"], {}, "whole number"),
        ([], {"COMPAT_JOBS": "many"}, "COMPAT_JOBS"),
        ([], {"COMPAT_RESUME": "maybe"}, "COMPAT_RESUME"),
    ],
)
def test_an_unknown_or_bad_option_is_a_usage_error(
    tmp_path: Path, words: list[str], env: dict[str, str], problem: str
) -> None:
    with pytest.raises(UsageError, match=problem) as caught:
        parse_run_options(words, env, tmp_path, prog="nox ... --")
    assert caught.value.exit_status == 2


def _cell(status: str, category: str | None = None, **fields) -> CellResult:
    return CellResult(
        id=f"c-{status}-{category}", axes={}, status=status, category=category, **fields
    )  # type: ignore[arg-type]


def test_a_package_or_version_that_does_not_exist_is_exit_status_2() -> None:
    fine = _cell("pass")
    typo = _cell("error", "no-such-package")
    assert run_exit_status([fine]) == 0
    assert run_exit_status([fine, _cell("error", "network")]) == 3
    assert run_exit_status([fine, _cell("fail", "import-error")]) == 1
    assert run_exit_status([fine, typo, _cell("fail", "import-error")]) == 2
    assert run_exit_status([fine, _cell("error", "no-such-version")]) == 2
    assert run_exit_status([typo], fail_on="never") == 0
    # a matrix that expects the typo (a test of compat-matrix itself) is not wrong
    expected = _cell("error", "no-such-version", expectation=ExpectationOutcome("error", met=True))
    assert run_exit_status([fine, expected]) == 0


def test_report_exits_2_on_a_typo_cell(tmp_path: Path) -> None:
    write_cell_result(tmp_path, _cell("pass"))
    write_cell_result(
        tmp_path, _cell("error", "no-such-package", message="no package named 'nunpy'")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "report", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr


def test_progress_without_a_terminal_is_one_line_per_finished_cell() -> None:
    out = io.StringIO()
    with Progress(2, out, live=False) as progress:
        progress.started("a")
        progress.started("b")
        progress.finished(_cell("fail", "import-error", message="mypkg: No module\nnamed x"))
        progress.finished(CellResult(id="b", axes={}, status="pass"))
    assert out.getvalue().splitlines() == [
        "[1/2] c-fail-import-error: fail (import-error) mypkg: No module named x",
        "[2/2] b: pass",
    ]


def test_the_live_line_names_the_running_cells_and_fits_the_width() -> None:
    progress = Progress(5, io.StringIO(), live=True)
    progress.started("py3.11-numpy1.26.4")
    progress.started("py3.12-numpy2.2.6")
    line = progress.status_line(200)
    assert line.startswith("[0/5] 0:00 running: py3.11-numpy1.26.4, py3.12-numpy2.2.6")
    assert len(progress.status_line(30)) == 30


def test_compat_matrix_run_prints_a_line_per_cell_without_a_tty(tmp_path: Path) -> None:
    """Cheap cells that need no download: interpreters this machine does not have."""
    (tmp_path / "compat.yml").write_text(
        textwrap.dedent("""\
        name: cheap
        matrix:
          include:
            - {python: "3.99", six: "1.17.0"}
            - {python: "3.98", six: "1.17.0"}
        """)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPAT_")}
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "run", "-j", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    assert [line.split(" no CPython")[0] for line in lines] == [
        "[1/2] py3.99-six1.17.0: skip (no-interpreter)",
        "[2/2] py3.98-six1.17.0: skip (no-interpreter)",
    ]
    assert "\x1b[" not in proc.stderr + proc.stdout
    assert "compat-matrix: 2 cells: 2 skip" in proc.stdout
    assert (tmp_path / "compat-report" / "cells" / "py3.99-six1.17.0.json").exists()


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["missing.yml"], "missing.yml:1:1: cannot read the file"),
        (["--cells", "py3.77-*"], "no such cell: py3.77-*"),
        (["--jobs", "none"], "whole number"),
    ],
)
def test_run_usage_errors_exit_2_without_a_traceback(
    tmp_path: Path, args: list[str], problem: str
) -> None:
    (tmp_path / "compat.yml").write_text("matrix: {python: ['3.99'], six: ['1.17.0']}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("COMPAT_")},
    )
    assert proc.returncode == 2
    assert problem in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "compat-report").exists()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_every_core_means_the_cores_this_process_may_use(tmp_path: Path) -> None:
    """Under `taskset -c 0` (or a container's cpuset) a run starts one cell at a time, not one a
    core of the machine: the cells would only queue for that one CPU."""
    pinned = _three_cells(tmp_path, lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
    assert "3 cells of" in pinned, pinned
    assert "1 at a time" in pinned


def _cpu_cgroup(tmp_path: Path) -> Path:
    """A real cgroup of this machine limited to one CPU's worth of time (v1 or v2)."""
    v1, v2 = Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")
    name = f"compat-matrix-test-{os.getpid()}"
    try:
        if (v2 / "cgroup.controllers").exists():
            group = v2 / name
            group.mkdir()
            (group / "cpu.max").write_text("100000 100000\n")
        else:
            group = v1 / name
            group.mkdir()
            (group / "cpu.cfs_quota_us").write_text("100000\n")
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup with a CPU quota here ({exc.strerror}): needs root")
    return group


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cgroups are Linux's")
def test_a_cpu_quota_runs_one_cell_at_a_time(tmp_path: Path) -> None:
    """In a cgroup allowed one CPU's worth of time (`docker --cpus 1`, a Kubernetes limit) on a
    machine with more cores, cells would only share that one CPU: one at a time."""
    group = _cpu_cgroup(tmp_path)
    try:
        limited = _three_cells(
            tmp_path, lambda: (group / "cgroup.procs").write_text(str(os.getpid()))
        )
    finally:
        group.rmdir()
    assert "3 cells of" in limited, limited
    assert "1 at a time" in limited


def _three_cells(tmp_path: Path, preexec_fn: Callable[[], object]) -> str:
    """`compat-matrix run` of three cells with no `-j` (no interpreter for them: no time
    spent), started by `preexec_fn` in the child; what it printed on stderr."""
    (tmp_path / "compat.yml").write_text("matrix:\n  python: ['2.1', '2.2', '2.3']\n")
    done = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "run", "-o", str(tmp_path / "out")],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if k != "COMPAT_JOBS"},
            "COMPAT_ENV_DIR": str(tmp_path / "envs"),
            "NO_COLOR": "1",
        },
        preexec_fn=preexec_fn,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stderr
