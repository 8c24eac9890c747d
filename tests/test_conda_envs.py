"""Real conda environments from the local channel: pip over conda by content, and audit.

The environments are made by the conda backend (rattler) from tests/_conda_channel.py's
channel; pip then works on them as users do (`pip install --ignore-installed six==1.17.0`
from PyPI), and `compat-matrix audit` reads them as it would a Miniconda image.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _conda_channel import ChannelInfo
from _elf_fixtures import run_probe

from compat_matrix.build.backends import EnvRequest
from compat_matrix.build.conda import CondaBackend

pytest.importorskip("rattler", reason="py-rattler, the conda engine, needs Python 3.10+")


def _env(path: Path, channel: ChannelInfo, cache: Path, *specs: str) -> Path:
    backend = CondaBackend(cache=cache)
    request = EnvRequest(None, (), conda_specs=specs, channels=(channel.url,))
    prepared = backend.prepare(path, request, timeout=600)
    assert prepared.failure is None, prepared.failure
    return path


def _consistency(python: Path, cwd: Path) -> dict[str, Any]:
    document, _ = run_probe(str(python), "consistency_probe", [], cwd)
    return document


def _failures(document: dict[str, Any]) -> list[str]:
    return [r["message"] for r in document["results"] if r["status"] == "fail"]


@pytest.mark.slow
def test_pip_ignore_installed_over_conda_is_named_by_content(
    tmp_path: Path, channel: ChannelInfo, conda_cache: Path
) -> None:
    env = _env(tmp_path / "env", channel, conda_cache, "python=3.11", "six=1.16.0", "pip")
    python = env / "bin" / "python"
    clean = _consistency(python, tmp_path)
    assert _failures(clean) == []
    assert clean["conda"]["files_hashed"] == 0  # every file is older than its record
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--ignore-installed", "six==1.17.0"],
        check=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    failures = _failures(_consistency(python, tmp_path))
    assert failures == [
        "six 1.17.0 installed by pip over conda's six 1.16.0 (`--ignore-installed`): six.py "
        "no longer matches conda's record; `conda list` and `pip list` disagree"
    ]


@pytest.mark.slow
def test_a_file_changed_in_place_under_conda_is_found_by_its_hash(
    tmp_path: Path, channel: ChannelInfo, conda_cache: Path
) -> None:
    env = _env(tmp_path / "env", channel, conda_cache, "python=3.11", "six=1.16.0")
    six = env / "lib/python3.11/site-packages/six.py"
    data = six.read_bytes()
    os.unlink(six)  # the file is hard-linked from the package cache: never write through it
    six.write_bytes(data.replace(b"1.16.0", b"1.16.9"))  # same size, other content
    failures = _failures(_consistency(env / "bin/python", tmp_path))
    assert len(failures) == 1
    assert failures[0].startswith("1 file of conda package six 1.16.0 ("), failures
    assert "lib/python3.11/site-packages/six.py" in failures[0]
    assert "no installer recorded it" in failures[0]


@pytest.mark.slow
def test_audit_of_a_conda_environment(
    tmp_path: Path, channel: ChannelInfo, conda_cache: Path
) -> None:
    env = _env(tmp_path / "env", channel, conda_cache, "python=3.11", "numpy=1.24.4", "pandas")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "compat_matrix",
            "audit",
            "--python",
            str(env / "bin/python"),
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (cell,) = json.loads((tmp_path / "out" / "compat.json").read_text())["cells"]
    assert cell["status"] == "pass"
    assert cell["resolved"]["numpy"] == "1.24.4"
    assert cell["resolved"]["pandas"] == "2.2.3"
    consistency = [p for p in cell["probes"] if p["probe"] == "consistency"]
    assert "conda record" in consistency[0]["message"]
    imported = {p["target"] for p in cell["probes"] if p["probe"] == "import"}
    assert {"numpy", "pandas"} <= imported


@pytest.mark.slow
def test_audit_upgrade_python_on_a_conda_environment_names_the_blocker(
    tmp_path: Path, channel: ChannelInfo, conda_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`conda update python` asked first: numpy 1.24.4 has no 3.12 build, 2.2.6 has."""
    env = _env(tmp_path / "env", channel, conda_cache, "python=3.11", "numpy=1.24.4", "six")
    before = sorted(p.name for p in (env / "conda-meta").iterdir())
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(conda_cache))
    from compat_matrix.run.whatif import what_if

    result = what_if(env / "bin/python", ["python=3.12"], tmp_path / "out", timeout=600)
    rows = {p.name: p for p in result.packages}
    assert rows["numpy"].current == "1.24.4"
    assert rows["numpy"].upgraded == "2.2.6"
    assert rows["numpy"].status == "must-change", rows["numpy"]
    assert result.upgraded.status == "pass", (result.upgraded.category, result.upgraded.message)
    assert "numpy" in result.verdict
    assert sorted(p.name for p in (env / "conda-meta").iterdir()) == before
