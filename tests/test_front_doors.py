"""Every front door runs the same pipeline: same cells, same verdicts, same exit status.

The same matrix (a local package that imports, one whose import fails, an interpreter this
machine does not have, a combination with no wheel) goes through `compat-matrix run`, a
user's own noxfile that calls `compat_matrix.nox.register`, and the GitHub Action's steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _github_files import parse_outputs

EXPECTED = {
    "py3.11-okpkg_local": ("pass", None),
    "py3.11-badpkg_local": ("fail", "import-error"),
    "py3.99-okpkg_local": ("skip", "no-interpreter"),
    "py3.13-numpy1.26.4": ("unsupported", "no-distribution"),
}
NOXFILE = """\
import compat_matrix.nox

compat_matrix.nox.register("compat.yml")
"""


def _project(root: Path, name: str, init: str) -> None:
    (root / name / name).mkdir(parents=True)
    (root / name / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["flit_core>=3.9"]
        build-backend = "flit_core.buildapi"
        [project]
        name = "{name}"
        version = "0.1"
        description = "fixture"
        """)
    )
    (root / name / name / "__init__.py").write_text(init)


def _env(tmp: Path, door: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPAT_", "GITHUB_"))}
    env.update(COMPAT_ENV_DIR=str(tmp / "envs"), NO_COLOR="1", **extra)
    env["COMPAT_REPORT_DIR"] = str(tmp / "reports" / door)
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=900, check=False, cwd=cwd, env=env
    )


def _verdicts(report: Path) -> dict[str, tuple[str, str | None]]:
    document = json.loads((report / "compat.json").read_text())
    return {c["id"]: (c["status"], c["category"]) for c in document["cells"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("doors") / "project"
    root.mkdir()
    _project(root, "okpkg", "VALUE = 1\n")
    _project(root, "badpkg", "import a_module_that_does_not_exist\n")
    (root / "compat.yml").write_text(
        textwrap.dedent("""\
        name: doors
        timeout: 300
        matrix:
          include:
            - {python: "3.11", okpkg: "./okpkg"}
            - {python: "3.11", badpkg: "./badpkg"}
            - {python: "3.99", okpkg: "./okpkg"}
            - {python: "3.13", numpy: "1.26.4"}
        """)
    )
    (root / "noxfile.py").write_text(NOXFILE)
    return root


@pytest.fixture(scope="module")
def doors(project: Path) -> dict[str, tuple[int, str, Path]]:
    """Each door's (exit status, output, report directory), run one after the other."""
    tmp = project.parent
    out: dict[str, tuple[int, str, Path]] = {}

    proc = _run([sys.executable, "-m", "compat_matrix", "run"], project, _env(tmp, "run"))
    out["run"] = (proc.returncode, proc.stdout + proc.stderr, tmp / "reports" / "run")

    proc = _run(
        [sys.executable, "-m", "nox", "--envdir", str(tmp / ".nox"), "-s", "probe"],
        project,
        _env(tmp, "nox"),
    )
    out["nox"] = (proc.returncode, proc.stdout + proc.stderr, tmp / "reports" / "nox")

    github_output = tmp / "github_output"
    github_output.write_text("")
    env = _env(
        tmp,
        "gha",
        GITHUB_WORKSPACE=str(project),
        GITHUB_OUTPUT=str(github_output),
        RUNNER_TEMP=str(tmp),
        COMPAT_INPUT_MATRIX="compat.yml",
        COMPAT_INPUT_REPORT_DIR=str(tmp / "reports" / "gha"),
    )
    del env["COMPAT_REPORT_DIR"]
    text = ""
    for step in ("prepare", "probe", "publish"):
        if step == "probe":
            prepared = parse_outputs(github_output.read_text())
            env.update(
                COMPAT_MATRIX=prepared["matrix"],
                COMPAT_CELLS=prepared["cells"],
                COMPAT_REPORT_DIR=prepared["report-dir"],
            )
        proc = _run([sys.executable, "-m", "compat_matrix.front.gha", step], project, env)
        text += proc.stdout + proc.stderr
        assert proc.returncode == 0, text
    outputs = parse_outputs(github_output.read_text())
    out["gha"] = (int(outputs["exit-code"]), text, tmp / "reports" / "gha")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("door", ["run", "nox", "gha"])
def test_every_door_gives_the_same_verdicts_and_exit_status(doors, door: str) -> None:
    code, output, report = doors[door]
    assert _verdicts(report) == EXPECTED, output[-3000:]
    assert sorted(p.stem for p in (report / "cells").glob("*.json")) == sorted(EXPECTED)
    # the failing cell fails the run; nox's own exit status is 1 and its message names ours
    if door == "nox":
        assert code == 1, output[-3000:]
        assert "compat-matrix exit status 1" in output
    else:
        assert code == 1, output[-3000:]
    assert "Traceback" not in output


@pytest.mark.slow
def test_a_failed_cell_is_never_a_nox_success(doors) -> None:
    _, output, _ = doors["nox"]
    assert "cell(py3.11-badpkg_local): success" not in output
    assert "* cell(py3.11-badpkg_local): skipped (fail (import-error)" in output, output[-3000:]
    assert "* cell(py3.11-okpkg_local): success" in output


@pytest.mark.slow
def test_the_doors_print_the_same_table(doors) -> None:
    tables = {}
    for door, (_, output, _) in doors.items():
        lines = output.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("pass "))
        tables[door] = [line for line in lines[start:] if line.startswith("  ")][:4]
    assert tables["run"] == tables["nox"] == tables["gha"]


def test_nox_lists_one_session_per_cell_from_a_users_noxfile(project: Path) -> None:
    proc = _run([sys.executable, "-m", "nox", "-l"], project, _env(project.parent, "list"))
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[1] for line in proc.stdout.splitlines() if "cell(" in line]
    assert listed == [f"cell({cell_id})" for cell_id in EXPECTED]
    assert "* probe" in proc.stdout


def test_an_unknown_option_after_the_double_dash_is_exit_status_2(project: Path) -> None:
    env = _env(project.parent, "bogus")
    proc = _run([sys.executable, "-m", "nox", "-s", "probe", "--", "--resme"], project, env)
    assert proc.returncode == 2
    assert "unrecognized arguments: --resme" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (project.parent / "reports" / "bogus").exists()  # nothing ran


def test_the_noxfiles_own_sessions_keep_their_words_after_the_double_dash(project: Path) -> None:
    """`register()` beside a maintainer's own `tests` session: `nox -s tests -- -x` is theirs."""
    noxfile = project.parent / "own-session" / "noxfile.py"
    noxfile.parent.mkdir()
    noxfile.write_text(
        NOXFILE.replace('"compat.yml"', repr(str(project / "compat.yml")))
        + textwrap.dedent("""\

        import nox

        @nox.session(python=False)
        def tests(session):
            session.log("posargs: " + " ".join(session.posargs))
        """)
    )
    env = _env(project.parent, "own-session")
    argv = [sys.executable, "-m", "nox", "-f", str(noxfile)]
    proc = _run([*argv, "-s", "tests", "--", "-x", "--resme"], noxfile.parent, env)
    assert proc.returncode == 0, proc.stderr
    assert "posargs: -x --resme" in proc.stderr
    # Without nox naming our sessions, `probe` still refuses a word that is not a run option,
    # with the parser's message, when it runs; and nothing was probed.
    proc = _run([*argv, "-s", "tests", "--", "--resme"], noxfile.parent, env)
    assert proc.returncode == 0, proc.stderr
    proc = _run([*argv, "--", "--resme"], noxfile.parent, env)
    assert proc.returncode == 1, proc.stderr
    assert "probe: aborted" in proc.stderr
    assert "unrecognized arguments: --resme" in proc.stderr
    assert "cell(" not in proc.stdout + proc.stderr  # no cell ran first
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (project.parent / "reports" / "own-session").exists()
