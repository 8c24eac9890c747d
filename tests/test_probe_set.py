"""The probes of a cell run together in one interpreter (probes/probe_set.py), with the same
answers as each probe run alone, and a probe the set did not report still runs (real envs)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from compat_matrix.build.backends import EnvRequest, UvBackend
from compat_matrix.matrix.model import PROBES
from compat_matrix.probe.runner import ProbeRun, run_probe
from compat_matrix.run import cell as cell_module
from compat_matrix.run.cell import probe_environment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def numpy_env(tmp_path_factory, python_for) -> Path:  # type: ignore[no-untyped-def]
    envdir = tmp_path_factory.mktemp("probe-set") / "env"
    env = UvBackend().prepare(
        envdir, EnvRequest(python_for("3.12"), ("numpy==2.2.6", "six==1.17.0")), timeout=600
    )
    assert env.failure is None, env.log
    return env.python


def _verdicts(run: ProbeRun) -> list[tuple[str, str, str, str | None]]:
    return sorted((r.probe, r.target, r.status, r.category) for r in run.results)


def _alone(python: Path, name: str, targets: list[str]) -> ProbeRun:
    args: list[str] = []
    if name == "import":
        args = ["--timeout", "120", *targets]
    elif name == "native":
        args = [a for t in targets for a in ("--context", t)]
    elif name == "environment":
        args = ["--dists", "numpy", "six"]
    return run_probe(python, name, args, timeout=300)


def test_the_set_answers_as_each_probe_alone(numpy_env: Path) -> None:
    together = probe_environment(
        numpy_env, PROBES, dists=["numpy", "six"], imports=None, deadline=time.monotonic() + 300
    )
    assert [run.name for run in together] == ["environment", *PROBES]
    targets = ["numpy", "six"]
    for run in together:
        alone = _alone(numpy_env, run.name, targets)
        assert _verdicts(run) == _verdicts(alone), run.name
        assert run.python is not None
        assert run.python.version == alone.python.version  # type: ignore[union-attr]
    imported = next(run for run in together if run.name == "import")
    assert sorted(r.target for r in imported.results) == targets


def test_a_probe_the_set_did_not_report_runs_alone(numpy_env: Path, monkeypatch) -> None:
    """Stand-in for a probe-set process that died after two probes (a crash cannot be caused
    in these stdlib file readers on purpose): the rest run on their own, same answers."""
    real = cell_module.run_probe_set
    full = probe_environment(
        numpy_env, PROBES, dists=["numpy"], imports=None, deadline=time.monotonic() + 300
    )

    def cut_short(*args: Any, **kwargs: Any) -> tuple[dict[str, ProbeRun], str]:
        answered, stderr = real(*args, **kwargs)
        kept = {name: answered[name] for name in ("environment", "abi")}
        return kept, stderr

    monkeypatch.setattr(cell_module, "run_probe_set", cut_short)
    partial = probe_environment(
        numpy_env, PROBES, dists=["numpy"], imports=None, deadline=time.monotonic() + 300
    )
    assert [run.name for run in partial] == [run.name for run in full]
    for before, after in zip(full, partial):
        assert _verdicts(before) == _verdicts(after), before.name


def test_a_built_environment_gets_bytecode_and_an_audit_writes_none(
    tmp_path, python_for, monkeypatch
) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # as on this machine
    request = EnvRequest(python_for("3.12"), ("six==1.17.0", "packaging==24.2"))
    audited = UvBackend().prepare(tmp_path / "audited", request, timeout=300)
    built = UvBackend().prepare(tmp_path / "built", request, timeout=300)
    for env in (audited, built):
        assert env.failure is None, env.log

    def compiled(envdir: Path) -> list[Path]:
        return [p for p in envdir.rglob("*.pyc") if "packaging" in p.parts]

    assert not compiled(tmp_path / "built")  # uv installs no bytecode
    probe_environment(
        built.python, ("import",), dists=["packaging"], imports=None,
        deadline=time.monotonic() + 300,
    )  # fmt: skip
    assert compiled(tmp_path / "built")  # a warm run does not compile packaging again
    probe_environment(
        audited.python, ("import",), dists=["packaging"], imports=None,
        deadline=time.monotonic() + 300, env={"PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert not compiled(tmp_path / "audited")  # audit writes nothing into someone's env


@pytest.mark.parametrize(
    ("user", "seen"),
    [
        ({}, "4"),  # OpenBLAS's shortest spin: idle workers sleep instead of taking a core
        ({"OPENBLAS_THREAD_TIMEOUT": "12"}, "12"),  # the user's own value is kept...
        ({"GOTO_THREAD_TIMEOUT": "9"}, "unset"),  # ...under either of OpenBLAS's names
    ],
)
def test_imports_run_with_openblas_idle_workers_asleep_unless_the_user_says(
    numpy_env: Path, tmp_path: Path, monkeypatch, user: dict[str, str], seen: str
) -> None:
    for name in ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in user.items():
        monkeypatch.setenv(name, value)
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "envspy.py").write_text(
        "import os\n__version__ = os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')\n"
    )
    runs = probe_environment(
        numpy_env, ("import",), dists=["numpy"], imports=["numpy", "envspy"],
        deadline=time.monotonic() + 300, probe_args={"import": ["--path", str(spy)]},
    )  # fmt: skip
    results = {r.target: r for run in runs for r in run.results if r.probe == "import"}
    assert results["numpy"].status == "pass"
    assert results["envspy"].status == "pass"
    assert results["envspy"].details["version"] == seen


def _slow_framework(site: Path, log: Path) -> None:
    """A distribution named torch (so the cuda probe checks it as a framework) whose import
    takes a second and writes when it began and ended, with its process id."""
    package = site / "torch"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import os, time\n"
        f"_LOG = {str(log)!r}\n"
        "def _say(what):\n"
        "    with open(_LOG, 'a') as log:\n"
        "        log.write('%s %d %.6f\\n' % (what, os.getpid(), time.time()))\n"
        "_say('start')\n"
        "time.sleep(1.0)\n"
        "_say('end')\n"
        "__version__ = '0.0.1'\n"
    )
    info = site / "torch-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 0.0.1\n")
    (info / "top_level.txt").write_text("torch\n")
    (info / "RECORD").write_text("torch/__init__.py,,\ntorch-0.0.1.dist-info/METADATA,,\n")


def test_the_cuda_probe_imports_a_framework_after_the_import_probe(
    tmp_path: Path, uv_bin: str, python_for
) -> None:  # type: ignore[no-untyped-def]
    """In a cold environment (no bytecode yet), a framework the import probe imports is
    imported by the cuda probe's child only once that import has ended: its modules are
    compiled once, not twice at once."""
    envdir = tmp_path / "env"
    subprocess.run(
        [uv_bin, "venv", "-q", "--python", str(python_for("3.12").path), str(envdir)], check=True
    )
    site = next(envdir.glob("lib/python3.12/site-packages"))
    log = tmp_path / "imports.log"
    _slow_framework(site, log)
    runs = probe_environment(
        envdir / "bin" / "python",
        ["import", "cuda"],
        dists=["torch"],
        imports=None,
        deadline=time.monotonic() + 300,
    )
    imported = next(run for run in runs if run.name == "import")
    assert [(r.target, r.status) for r in imported.results] == [("torch", "pass")]
    cuda = next(run for run in runs if run.name == "cuda")
    assert cuda.document["frameworks"]["torch"]["imported"] is not None, cuda.document
    events = [line.split() for line in log.read_text().splitlines()]
    # Two imports, each in its own process, one after the other: start, end, start, end.
    assert [what for what, _, _ in events] == ["start", "end", "start", "end"], events
    assert events[0][1] == events[1][1] != events[2][1] == events[3][1]
