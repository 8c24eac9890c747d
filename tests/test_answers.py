"""The file-reading probes' answers are reused while no file they read has changed
(probes/_answers.py), and never once one has: real environments, real installs by hand."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from _native_fixtures import load_probe_module

from compat_matrix.build.backends import EnvRequest, UvBackend
from compat_matrix.matrix.model import PROBES
from compat_matrix.probe.runner import ProbeRun
from compat_matrix.run.cell import probe_environment

answers = load_probe_module("_answers")

#: Nothing in these environments uses CUDA: the cuda probe's answer is the files' too.
REUSABLE = {"environment", "abi", "gpu-arch", "native", "consistency", "cuda"}


def _digest(root: Path) -> str:
    import hashlib

    digest = hashlib.blake2b(digest_size=20)
    answers._walk(str(root), digest)
    return digest.hexdigest()


def test_the_stamp_sees_every_file_change_but_not_bytecode(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "pkg").mkdir(parents=True)
    module = site / "pkg" / "__init__.py"
    module.write_text("VALUE = 1\n")
    before = _digest(site)
    assert _digest(site) == before  # nothing changed: the same stamp

    (site / "pkg" / "__pycache__").mkdir()
    (site / "pkg" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"\0" * 16)
    assert _digest(site) == before  # imports write bytecode; no file-reading probe reads it

    module.write_text("VALUE = 2\n")  # same size, new content: a new modification time
    os.utime(module, ns=(1, 1))
    edited = _digest(site)
    assert edited != before
    (site / "pkg" / "extra.so").write_bytes(b"")
    assert _digest(site) != edited  # a file added


def test_a_library_added_where_ld_library_path_points_changes_the_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CUDA toolkit's lib64 on LD_LIBRARY_PATH is outside every environment, yet the loader
    reads it: a library added there is a reason to read again."""
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    monkeypatch.setattr(answers, "_roots", list)  # this test's own search path is the checkout
    before = answers.stamp({})
    assert answers.stamp({}) == before
    (tmp_path / "libcudart.so.12").write_bytes(b"")
    assert answers.stamp({}) != before


def test_only_passing_answers_of_file_reading_probes_are_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "answers" / "cell.json")
    passing = {"probe": "abi", "results": [{"status": "pass"}, {"status": "warn"}]}
    failing = {"probe": "native", "results": [{"status": "pass"}, {"status": "fail"}]}
    errored = {"probe": "consistency", "results": [{"status": "error"}]}
    importing = {"probe": "import", "results": [{"status": "pass"}]}
    no_cuda = {"probe": "cuda", "driver": {"checked": False}, "results": [{"status": "skip"}]}
    asked = {"probe": "cuda", "driver": {"checked": True}, "results": [{"status": "pass"}]}
    answers.store(
        path,
        "stamp-1",
        {"abi": passing, "native": failing, "consistency": errored, "import": importing,
         "cuda": no_cuda},
    )  # fmt: skip
    assert answers.load(path, "stamp-1") == {"abi": passing, "cuda": no_cuda}
    assert not answers.keepable("cuda", asked)  # the driver may change under the same files
    assert answers.load(path, "stamp-2") == {}  # another stamp: nothing is reused
    Path(path).write_text("{not json")
    assert answers.load(path, "stamp-1") == {}  # a torn file costs only the reuse


@pytest.fixture
def six_env(tmp_path: Path, python_for) -> Path:  # type: ignore[no-untyped-def]
    env = UvBackend().prepare(
        tmp_path / "envs" / "cell", EnvRequest(python_for("3.12"), ("six==1.17.0",)), timeout=600
    )
    assert env.failure is None, env.log
    return env.python


def _probe(python: Path, kept: Path | None, *, reuse: bool = True) -> dict[str, ProbeRun]:
    runs = probe_environment(
        python,
        PROBES,
        dists=["six"],
        imports=None,
        deadline=time.monotonic() + 300,
        answers=kept,
        reuse=reuse,
    )
    return {run.name: run for run in runs}


def _verdicts(run: ProbeRun) -> list[tuple[str, str, str | None]]:
    return sorted((r.target, r.status, r.category) for r in run.results)


@pytest.mark.slow
def test_answers_are_reused_until_the_environment_changes(
    six_env: Path, tmp_path: Path, uv_bin: str
) -> None:
    kept = tmp_path / "envs" / ".answers" / "cell.json"
    first = _probe(six_env, kept)
    assert not any(run.reused for run in first.values())
    assert kept.is_file()

    second = _probe(six_env, kept)
    assert {name for name, run in second.items() if run.reused} == REUSABLE
    for name, run in second.items():
        assert _verdicts(run) == _verdicts(first[name]), name

    # The user installs a package by hand, without its dependencies: the next run reads again.
    subprocess.run(
        [uv_bin, "pip", "install", "-q", "--no-deps", "--python", str(six_env),
         "requests==2.32.3"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    third = _probe(six_env, kept)
    assert not any(run.reused for run in third.values())
    broken = [r for r in third["consistency"].results if r.status == "fail"]
    assert broken, _verdicts(third["consistency"])
    assert any("urllib3" in r.message for r in broken)

    # A failing answer is never kept: the run after reads the environment again too.
    fourth = _probe(six_env, kept)
    assert not fourth["consistency"].reused
    assert _verdicts(fourth["consistency"]) == _verdicts(third["consistency"])
    assert {name for name, run in fourth.items() if run.reused} == REUSABLE - {"consistency"}

    # Without a place to keep them (audit), or told to read again (--reprobe), nothing is reused.
    assert not any(run.reused for run in _probe(six_env, None).values())
    assert not any(run.reused for run in _probe(six_env, kept, reuse=False).values())


@pytest.mark.slow
def test_a_folder_a_pth_file_adds_is_stamped_too(six_env: Path, tmp_path: Path) -> None:
    """A source tree on the search path through a `.pth` file (an editable install): a file
    changed there is read again, though nothing under the environment's prefix changed."""
    kept = tmp_path / "envs" / ".answers" / "cell.json"
    tree = tmp_path / "tree"
    (tree / "mylib").mkdir(parents=True)
    (tree / "mylib" / "__init__.py").write_text("VALUE = 1\n")
    site = next((tmp_path / "envs" / "cell" / "lib").glob("python3*/site-packages"))
    (site / "mylib-tree.pth").write_text(f"{tree}\n")
    _probe(six_env, kept)
    assert {name for name, run in _probe(six_env, kept).items() if run.reused} == REUSABLE
    (tree / "mylib" / "_native.so").write_bytes(b"not an ELF file")
    assert not any(run.reused for run in _probe(six_env, kept).values())


@pytest.mark.slow
def test_run_says_what_it_reused_and_reprobe_reads_everything(tmp_path: Path, python_for) -> None:  # type: ignore[no-untyped-def]
    python_for("3.12")
    (tmp_path / "compat.yml").write_text(
        textwrap.dedent("""\
        name: answers
        matrix:
          python: ["3.12"]
          six: ["1.17.0"]
        """)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPAT_", "GITHUB_"))}
    env.update(COMPAT_ENV_DIR=str(tmp_path / "envs"), NO_COLOR="1")

    def run(*extra: str, **more: str) -> str:
        done = subprocess.run(
            [str(Path(os.sys.executable).parent / "compat-matrix"), "run", *extra],
            cwd=tmp_path, env={**env, **more}, capture_output=True, text=True, timeout=900,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        cells = json.loads((tmp_path / "compat-report" / "compat.json").read_text())["cells"]
        assert [c["status"] for c in cells] == ["pass"]
        return (tmp_path / "compat-report" / "logs" / f"{cells[0]['id']}.log").read_text()

    assert "answers reused" not in run()
    assert "answers reused" in run()
    assert "environment, abi, gpu-arch, native, cuda, consistency" in run()
    assert "answers reused" not in run("--reprobe")
    assert "answers reused" not in run(COMPAT_REPROBE="1")
    assert "answers reused" in run()  # what --reprobe read is kept for the next run
