"""Issue 10's run-time holes, each as a user meets it: real runs, real installers, real files.

Unreadable cell files, a full or read-only disk, an unreachable index with retries off, wheel
URLs under `only-binary`, two runs on one folder, a killed run, a closed pipe, the indexes a
cell used. The wheels are real ones written by hand (tests/_wheels.py), so no network is needed
except where the test is about the network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _wheels import write_wheel

from compat_matrix.build.backends import EnvRequest, used_indexes
from compat_matrix.build.requirements import source_built
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.results import CellResult, write_cell_result
from compat_matrix.run.locks import run_lock
from compat_matrix.run.pipeline import RunOptions, run_pipeline

HERE = Path(__file__).resolve().parent
UNREACHABLE = "http://127.0.0.1:9/simple"


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COMPAT_MATRIX", None)
    env.pop("COMPAT_REPORT_DIR", None)
    env["COMPAT_ENV_DIR"] = str(tmp / "envs")
    env["UV_HTTP_RETRIES"] = "0"
    env.update(extra)
    return env


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compat_matrix", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=env,
    )


def _cells(report: Path) -> dict[str, dict[str, object]]:
    document = json.loads((report / "compat.json").read_text(encoding="utf-8"))
    return {cell["id"]: cell for cell in document["cells"]}


# -- 1. unreadable cell files ----------------------------------------------------------------


def test_report_names_each_unreadable_cell_file_counts_it_as_error_and_exits_3(
    tmp_path: Path,
) -> None:
    report = tmp_path / "r"
    write_cell_result(report, CellResult("py3.12-six1.17.0", {"python": "3.12"}, "pass"))
    cells = report / "cells"
    (cells / "py3.12-six1.16.0.json").write_text('{"id": "py3.12-six1.16.0", "axes": {"py')
    (cells / "py3.11-six1.17.0.json").write_text("not json at all\n")
    (cells / "py3.10-six1.17.0.json").write_text('{"id": "py3.10-six1.17.0"}\n')  # no status
    proc = _cli("report", str(report), cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("py3.12-six1.16.0.json", "py3.11-six1.17.0.json", "py3.10-six1.17.0.json"):
        assert name in proc.stderr
    found = _cells(report)
    assert found["py3.12-six1.17.0"]["status"] == "pass"
    for cell_id in ("py3.12-six1.16.0", "py3.11-six1.17.0", "py3.10-six1.17.0"):
        assert (found[cell_id]["status"], found[cell_id]["category"]) == (
            "error",
            "unreadable-result",
        )
    assert "unreadable-result" in (report / "compat.md").read_text(encoding="utf-8")


def test_the_run_publish_counts_an_unreadable_cell_file_as_error_not_missing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.yml"
    path.write_text("matrix:\n  python: ['3.98', '3.99']\n")
    matrix = load_matrix(path)
    cells = expand(matrix)
    report = tmp_path / "r"
    (report / "cells").mkdir(parents=True)
    (report / "cells" / f"{cells[0].id}.json").write_text("{")
    options = RunOptions(matrix=path, report_dir=report, env_root=tmp_path / "envs", jobs=1)
    outcome = run_pipeline(matrix, [], options, report_cells=cells)
    verdicts = {r.id: (r.status, r.category) for r in outcome.results}
    assert verdicts == {
        cells[0].id: ("error", "unreadable-result"),
        cells[1].id: ("error", "missing"),
    }
    assert outcome.published.unreadable == [report / "cells" / f"{cells[0].id}.json"]
    assert outcome.exit_status == 3


# -- 7. a closed pipe ------------------------------------------------------------------------


@pytest.mark.parametrize("words", [["expand"], ["expand", "--json"], ["plan"]])
def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path, words: list[str]) -> None:
    path = tmp_path / "m.yml"
    values = ", ".join(f"'1.{i}'" for i in range(9))
    path.write_text(
        "matrix:\n" + "".join(f"  pkg{axis}: [{values}]\n" for axis in range(4)),
    )
    with subprocess.Popen(
        [sys.executable, "-m", "compat_matrix", words[0], str(path), *words[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()  # what `| head -1` does
        err = proc.stderr.read()
        proc.wait(timeout=60)
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert "Exception ignored" not in err


# -- 3. an unreachable index is a network error, whatever the retries ----------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["venv", "uv"])
def test_an_unreachable_index_is_error_network_with_retries_off(
    tmp_path: Path, backend: str
) -> None:
    (tmp_path / "m.yml").write_text(
        f"backend: {backend}\nmatrix:\n  python: ['3.12']\n  six: ['1.17.0']\n"
    )
    env = _env(
        tmp_path,
        PIP_CONFIG_FILE=os.devnull,
        PIP_FIND_LINKS="",
        PIP_EXTRA_INDEX_URL="",
        PIP_RETRIES="0",
        PIP_INDEX_URL=UNREACHABLE,
        UV_INDEX_URL=UNREACHABLE,
        UV_DEFAULT_INDEX=UNREACHABLE,
        UV_EXTRA_INDEX_URL="",
        UV_FIND_LINKS="",
        UV_NO_CONFIG="1",
    )
    proc = _cli("run", "m.yml", "-j", "1", cwd=tmp_path, env=env)
    cell = _cells(tmp_path / "compat-report")["py3.12-six1.17.0"]
    assert (cell["status"], cell["category"]) == ("error", "network"), cell["message"]
    assert proc.returncode == 3, proc.stdout + proc.stderr


# -- 4. wheel URLs and wheel paths under only-binary --------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["uv", "venv"])
def test_a_wheel_path_and_a_wheel_url_install_under_only_binary(
    tmp_path: Path, backend: str
) -> None:
    write_wheel(tmp_path / "wheels", "tinya", "1.0", "VALUE = 1\n")
    url = write_wheel(tmp_path / "elsewhere", "tinyb", "2.0", "VALUE = 2\n").as_uri()
    (tmp_path / "m.yml").write_text(
        textwrap.dedent(f"""\
        backend: {backend}
        matrix:
          python: ['3.12']
          tinya: ['./wheels/tinya-1.0-py3-none-any.whl']
          tinyb: ['{url}']
        """)
    )
    proc = _cli("run", "m.yml", "-j", "1", cwd=tmp_path, env=_env(tmp_path))
    [cell] = _cells(tmp_path / "compat-report").values()
    assert cell["status"] == "pass", cell["message"]
    assert cell["resolved"]["tinya"] == "1.0"
    assert cell["resolved"]["tinyb"] == "2.0"
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- 5. one run at a time per folder ------------------------------------------------------------


@pytest.mark.parametrize("folder", ["report", "envs"])
def test_a_second_run_on_the_same_folder_waits_for_the_first_and_says_so(
    tmp_path: Path, folder: str
) -> None:
    (tmp_path / "m.yml").write_text("matrix:\n  python: ['3.99']\n")  # one skip cell
    held = tmp_path / "compat-report" if folder == "report" else tmp_path / "envs"
    log = tmp_path / "stderr.txt"
    with run_lock(held, "the test's run"), log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "compat_matrix", "run", "m.yml"],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        deadline = time.monotonic() + 30
        while "waiting" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert proc.poll() is None  # still waiting
        assert not (tmp_path / "compat-report" / "cells").exists()
    proc.communicate(timeout=60)
    message = log.read_text()
    assert "waiting" in message
    assert str(held) in message
    assert proc.returncode == 0, message
    assert _cells(tmp_path / "compat-report")["py3.99"]["status"] == "skip"


@pytest.mark.slow
def test_two_runs_on_one_environment_folder_both_get_their_verdicts(tmp_path: Path) -> None:
    write_wheel(tmp_path / "wheels", "tinya", "1.0", "VALUE = 1\n")
    (tmp_path / "m.yml").write_text(
        "matrix:\n  python: ['3.12', '3.11']\n  tinya: ['./wheels/tinya-1.0-py3-none-any.whl']\n"
    )
    env = _env(tmp_path)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "compat_matrix", "run", "m.yml", "-o", f"r{i}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in runs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err
    for i in range(2):
        assert {c["status"] for c in _cells(tmp_path / f"r{i}").values()} == {"pass"}


# -- 6. a killed run takes its children and temporary folders along -----------------------------


def _children(pid: int) -> set[int]:
    """Every descendant of `pid` (from /proc), whatever session it is in."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


DATA = Path(__file__).parent / "data"
#: `python -m compat_matrix` with SIGINT at its default, as a command typed at a terminal has it:
#: a background job of a script (`pytest ... &`) inherits SIGINT ignored, and so would the run.
_SIGINT_HEARD = [sys.executable, str(DATA / "sigint_at_default.py")]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killing_the_run_ends_its_cells_and_removes_its_temporary_folders(
    tmp_path: Path, signum: signal.Signals
) -> None:
    write_wheel(tmp_path / "wheels", "tinya", "1.0", "VALUE = 1\n")
    write_wheel(tmp_path / "wheels", "hang", "1.0", "import time\ntime.sleep(600)\n")
    (tmp_path / "m.yml").write_text(
        textwrap.dedent("""\
        timeout: 300
        matrix:
          python: ['3.12']
          tinya: ['./wheels/tinya-1.0-py3-none-any.whl']
          hang: ['none', './wheels/hang-1.0-py3-none-any.whl']
        """)
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.Popen(
        [*_SIGINT_HEARD, "run", "m.yml", "-j", "2"],
        cwd=tmp_path,
        env=_env(tmp_path, TMPDIR=str(temp)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    report = tmp_path / "compat-report"
    deadline = time.monotonic() + 120
    children: set[int] = set()
    while time.monotonic() < deadline:
        children = _children(proc.pid)
        hanging = [pid for pid in children if b"_import_child" in _cmdline(pid)]
        if hanging and (report / "cells" / "py3.12-tinya_local-no-hang.json").exists():
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the run never reached the hanging import: " + proc.communicate()[1])
    assert list(temp.glob("compat-*"))
    children = _children(proc.pid)
    os.kill(proc.pid, signum)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()  # not left behind, still running
        pytest.fail("the run did not end on the signal: " + proc.communicate()[1])
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)]
    assert not list(temp.glob("compat-*"))
    kept = json.loads((report / "cells" / "py3.12-tinya_local-no-hang.json").read_text())
    assert kept["status"] == "pass"


def test_a_ctrl_c_inside_the_wait_for_the_cells_ends_the_run(tmp_path: Path) -> None:
    """Regression: raised there, it left a future's lock held, and the run waited forever for
    the cell's worker, which waited for that lock. (A subprocess: a hang fails, not blocks.)"""
    try:
        proc = subprocess.run(
            [sys.executable, str(DATA / "ctrl_c_inside_wait.py"), str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,  # it ends in about a second
            check=False,
            env=_env(tmp_path),
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the run did not end on Ctrl-C: {exc.stderr!r}")
    assert proc.returncode == 130, proc.stderr
    assert (tmp_path / "r" / "compat.json").exists(), proc.stderr


# -- 2. a full or read-only disk ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux mount namespace")
@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_a_full_or_read_only_report_disk_is_one_line_per_cell_and_exit_3(
    tmp_path: Path, trouble: str
) -> None:
    write_wheel(tmp_path / "wheels", "tinya", "1.0", "VALUE = 1\n")
    (tmp_path / "m.yml").write_text(
        "matrix:\n  python: ['3.12', '3.11']\n  tinya: ['./wheels/tinya-1.0-py3-none-any.whl']\n"
    )
    wrap = [] if os.geteuid() == 0 else ["--map-root-user"]
    out = tmp_path / "out"
    argv = ["unshare", "--mount", *wrap, "--", sys.executable, str(HERE / "_small_disk.py")]
    argv += [trouble, str(tmp_path / "compat-report"), str(out), "py3.12-*"]
    probe = subprocess.run(
        ["unshare", "--mount", *wrap, "--", "true"], capture_output=True, check=False, timeout=30
    )
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.decode(errors='replace').strip()}")
    done = subprocess.run(
        argv,
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    first, second = json.loads((out / "runs.json").read_text())
    assert first["returncode"] == 0, first
    assert second["returncode"] == 3, second
    assert "Traceback" not in second["stderr"] + second["stdout"]
    errno_words = "No space left on device" if trouble == "full" else "Read-only file system"
    lines = [line for line in second["stderr"].splitlines() if "py3.11-tinya_local" in line]
    assert len(lines) == 1 and errno_words in lines[0], second["stderr"]
    assert "py3.12-tinya_local" in second["stdout"]  # the final table is printed
    assert "py3.11-tinya_local" in second["stdout"]
    kept = json.loads((out / "cells" / "py3.12-tinya_local.json").read_text())
    assert kept["status"] == "pass"


def test_only_references_to_sources_are_exempt_from_only_binary(tmp_path: Path) -> None:
    axes = {
        "python": "3.12",
        "a": "./wheels/a-1.0-py3-none-any.whl",
        "b": "https://host/b-2.0-py3-none-any.whl#sha256=00",
        "c": "./c",
        "d": "https://host/d-1.0.tar.gz",
    }
    extra = ("e @ https://host/e-1.0-py3-none-any.whl", "f @ https://host/f-1.0.zip")
    assert source_built(axes, extra, tmp_path) == ["c", "d", "f"]


# -- 9. the indexes a cell used are reported ----------------------------------------------------


def test_the_cuda_tables_index_and_strategy_are_what_the_cell_reports() -> None:
    request = EnvRequest(
        None, ("torch==2.5.1",), index_urls=("https://download.pytorch.org/whl/cu124",)
    )
    assert used_indexes("uv", request, {}) == [
        "--extra-index-url https://download.pytorch.org/whl/cu124",
        "--index-strategy unsafe-best-match",
    ]
    env = {"PIP_INDEX_URL": "http://mirror/simple", "UV_INDEX_URL": "http://other/simple"}
    assert used_indexes("venv", request, env) == [
        "--extra-index-url https://download.pytorch.org/whl/cu124",
        "--index-url http://mirror/simple ($PIP_INDEX_URL)",
    ]
    assert used_indexes("uv", EnvRequest(None, ()), {}) == []


@pytest.mark.slow
def test_an_index_from_the_environment_is_shown_in_every_report(tmp_path: Path) -> None:
    links = tmp_path / "links"
    write_wheel(links, "cmtestidx", "1.0", "VALUE = 1\n")
    (tmp_path / "m.yml").write_text("matrix:\n  python: ['3.12']\n  cmtestidx: ['1.0']\n")
    env = _env(tmp_path, UV_FIND_LINKS=str(links))
    proc = _cli("run", "m.yml", cwd=tmp_path, env=env)
    report = tmp_path / "compat-report"
    [cell] = _cells(report).values()
    assert cell["status"] == "pass", cell["message"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert cell["indexes"] == [f"--find-links {links} ($UV_FIND_LINKS)"]
    markdown = (report / "compat.md").read_text(encoding="utf-8")
    assert f"--find-links {links}" in markdown
    assert "Package indexes" in markdown
    html = (report / "compat.html").read_text(encoding="utf-8")
    assert f"--find-links {links}" in html


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux mount namespace")
def test_a_full_environment_disk_is_error_disk_full_for_each_cell(tmp_path: Path) -> None:
    write_wheel(tmp_path / "wheels", "tinya", "1.0", "VALUE = 1\n")
    (tmp_path / "m.yml").write_text(
        "matrix:\n  python: ['3.12', '3.11']\n  tinya: ['./wheels/tinya-1.0-py3-none-any.whl']\n"
    )
    wrap = [] if os.geteuid() == 0 else ["--map-root-user"]
    if subprocess.run(["unshare", "--mount", *wrap, "--", "true"], check=False).returncode:
        pytest.skip("no mount namespace here")
    out = tmp_path / "out"
    argv = ["unshare", "--mount", *wrap, "--", sys.executable, str(HERE / "_small_disk.py")]
    argv += ["env-full", str(tmp_path / "envs"), str(out), "-"]
    done = subprocess.run(
        argv, cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [run] = json.loads((out / "runs.json").read_text())
    assert run["returncode"] == 3, run
    assert "Traceback" not in run["stderr"] + run["stdout"]
    for cell_id, cell in _cells(tmp_path / "compat-report").items():
        assert (cell["status"], cell["category"]) == ("error", "disk-full"), cell["message"]
        lines = [line for line in run["stderr"].splitlines() if cell_id in line]
        assert len(lines) == 1 and "No space left on device" in lines[0], run["stderr"]
