"""compat-matrix as a user gets it: a built wheel, installed (not editable) into a fresh venv,
run from a project folder that has nothing to do with this checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(argv: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COMPAT_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, uv_bin: str) -> Path:
    """The `bin/` folder of a venv holding compat-matrix installed from its wheel."""
    tmp = tmp_path_factory.mktemp("installed")
    built = _run([uv_bin, "build", "--wheel", "--out-dir", str(tmp / "dist"), str(REPO)], tmp)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((tmp / "dist").glob("compat_matrix-*.whl"))
    venv = tmp / "venv"
    made = _run([uv_bin, "venv", "--python", sys.executable, str(venv)], tmp)
    assert made.returncode == 0, made.stderr
    done = _run(
        [uv_bin, "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel)], tmp
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin"


def test_the_installed_package_is_the_wheel_not_this_checkout(
    installed: Path, tmp_path: Path
) -> None:
    proc = _run(
        [str(installed / "python"), "-c", "import compat_matrix; print(compat_matrix.__file__)"],
        tmp_path,
    )
    assert Path(proc.stdout.strip()).is_relative_to(installed.parent), proc.stdout
    assert not Path(proc.stdout.strip()).is_relative_to(REPO)


def test_run_on_compat_yml_in_any_folder(installed: Path, tmp_path: Path, python_for) -> None:
    here = python_for(f"{sys.version_info.major}.{sys.version_info.minor}")
    version = here.version.rsplit(".", 1)[0]
    (tmp_path / "compat.yml").write_text(
        textwrap.dedent(f"""\
        name: outside
        matrix:
          include:
            - {{python: "{version}", six: "1.17.0"}}
            - {{python: "3.99", six: "1.17.0"}}
        """)
    )
    proc = _run([str(installed / "compat-matrix"), "run"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cells = json.loads((tmp_path / "compat-report" / "compat.json").read_text())["cells"]
    assert sorted(c["status"] for c in cells) == ["pass", "skip"]
    passed = next(c for c in cells if c["status"] == "pass")
    assert {p["probe"] for p in passed["probes"]} >= {"abi", "import", "consistency"}

    # the same folder through a user's noxfile, with nox from the same install
    (tmp_path / "noxfile.py").write_text(
        "import compat_matrix.nox\n\ncompat_matrix.nox.register('compat.yml')\n"
    )
    listed = _run([str(installed / "nox"), "-l"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"cell(py{version}-six1.17.0)" in listed.stdout
    probe = _run([str(installed / "nox"), "-s", "probe", "--", "--resume"], tmp_path)
    assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr[-3000:]


def test_without_compat_yml_the_packaged_default_matrix_is_used(
    installed: Path, tmp_path: Path
) -> None:
    cell = "py3.14-numpy2.3.5-pandas2.3.3"
    proc = _run([str(installed / "compat-matrix"), "run", "--cells", cell, "-j", "1"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "'scientific-python'" in proc.stderr
    assert (tmp_path / "compat-report" / "cells" / f"{cell}.json").exists()
