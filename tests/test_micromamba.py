"""The micromamba backend: command lines, environment, locks, failure classification, cells.

conda-forge cannot be reached from the machine these tests were written on, so micromamba
cannot solve anything here. What can be checked without it is checked here: the exact command
lines and environment variables, the `@EXPLICIT` lock handling, and the classification of
micromamba's own solver output, written in the formats libmamba documents and prints
(libmamba/src/solver/problems_graph.cpp for the problem tree, libsolv's problem strings for
`--json`'s `solver_problems`, `actions.LINK` for `--dry-run --json`). The build sequence
(create -> pip -> export -> lock, reuse, failures) runs against a stand-in executable that
records what it was asked and builds a real environment with uv, so pip installs for real.
Tests marked `micromamba` run the real thing and are skipped where micromamba is absent.
"""

from __future__ import annotations

import json
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from compat_matrix.build.backends import (
    EnvRequest,
    MicromambaBackend,
    conda_lock_records,
    find_micromamba,
    find_uv,
    get_backend,
    parse_lock,
)
from compat_matrix.build.install_errors import classify_micromamba
from compat_matrix.build.requirements import (
    Variant,
    conda_python_specs,
    conda_requirements,
    conda_spec,
    requirement,
)
from compat_matrix.matrix.model import Cell, Matrix
from compat_matrix.run.cell import RunSettings, backend_settings, run_cell


@dataclass(frozen=True)
class CondaMatrix(Matrix):
    """A Matrix with the micromamba keys (`channels:`, `pip:`, `cuda-table:`) wired in."""

    channels: tuple[str, ...] = ("conda-forge",)
    pip: tuple[str, ...] = ()
    cuda_table: Path | None = None


EXPLICIT = """\
# This file may be used to create an environment using:
# $ conda create --name <env> --file <this file>
# platform: linux-64
@EXPLICIT
https://conda.anaconda.org/conda-forge/linux-64/_libgcc_mutex-0.1-conda_forge.tar.bz2#d7c89558ba9fa0495403155b64376d81
https://conda.anaconda.org/conda-forge/noarch/cuda-version-12.4-h3060b56_3.conda#c9a3fe8b957176e1a8452c6f3431b0d8
https://conda.anaconda.org/conda-forge/linux-64/numpy-2.2.6-py312h72c5963_0.conda#17fac9db62daa5c810091c2882b28f45
https://conda.anaconda.org/conda-forge/linux-64/python-3.12.10-h9e4cc4f_0_cpython.conda#ea15f2b1d3d8d3e9ad3e0f15c7b3a1e2
"""


# -- conda specs -------------------------------------------------------------------------------


def test_axis_values_become_conda_match_specs() -> None:
    assert conda_spec("numpy", "2.2.6") == "numpy==2.2.6"
    assert conda_spec("numpy", ">=2,<3") == "numpy>=2,<3"
    assert conda_spec("pandas", "~=2.2") == "pandas~=2.2"
    assert conda_spec("numpy", "==2.*") == "numpy 2.*"
    assert conda_spec("torch", "none") is None
    # a build pattern takes repodata's "name version build" form
    assert conda_spec("pytorch", "2.5.1", "cuda*") == "pytorch ==2.5.1 cuda*"
    with pytest.raises(ValueError, match="no paths or URLs"):
        conda_spec("mypkg", "./pkg")
    assert requirement("jax", "0.4.35", Path(), extras=("cuda12",)) == "jax[cuda12]==0.4.35"


def test_python_values_become_conda_python_specs() -> None:
    assert conda_python_specs("3.12") == ["python=3.12"]
    assert conda_python_specs("3.12.4") == ["python==3.12.4"]
    assert conda_python_specs("3.13t") == ["python=3.13", "python-freethreading"]
    assert conda_python_specs(None) == ["python"]


def test_a_micromamba_cell_splits_into_conda_specs_then_pip(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\nversion = "1"\n')
    split = conda_requirements(
        {"python": "3.12", "cuda": "12.4", "torch": "2.5.1", "jax": "0.4.35", "six": "none"},
        ("./proj", "rich>=13", "requests[socks]", "httpx"),
        tmp_path,
        pip=["JAX", "httpx"],
        variants={
            "torch": Variant(name="pytorch", build="cuda*"),
            "jax": Variant(extras=("cuda12",)),
        },
    )
    assert split.conda == ("pytorch ==2.5.1 cuda*", "rich>=13")
    assert split.pip == (
        "jax[cuda12]==0.4.35",
        f"proj @ {project.resolve().as_uri()}",
        "requests[socks]",
        "httpx",
    )
    assert split.build_from_source == ("proj",)


# -- command lines and environment -------------------------------------------------------------


def test_one_create_call_holds_every_spec_with_strict_channels(tmp_path: Path) -> None:
    exe = str(tmp_path / "micromamba")
    backend = MicromambaBackend(exe, cache=tmp_path / "cache")
    envdir = tmp_path / "envs" / "cell"
    request = EnvRequest(
        None,
        ("six==1.16.0",),
        conda_specs=("python=3.12", "numpy==2.2.6", "cuda-version=12.4"),
        channels=("conda-forge", "nvidia"),
    )
    assert backend.create_command(envdir, request) == [
        exe,
        "create",
        "--yes",
        "--prefix",
        str(envdir),
        "--override-channels",
        "--strict-channel-priority",
        "--channel",
        "conda-forge",
        "--channel",
        "nvidia",
        "python=3.12",
        "numpy==2.2.6",
        "cuda-version=12.4",
        "pip",  # pip packages follow, so conda installs pip in the same solve
    ]
    conda_only = EnvRequest(None, (), conda_specs=("numpy",))
    dry = backend.create_command(envdir, conda_only, dry_run=True)
    assert dry[-4:] == ["--dry-run", "--json", "python", "numpy"]  # python added when missing
    assert backend.export_command(envdir) == [
        exe,
        "env",
        "export",
        "--explicit",
        "--prefix",
        str(envdir),
    ]
    assert backend.pip_command(envdir, request) == [
        str(envdir / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--no-input",
        "--log",
        str(envdir / "compat-pip.log"),
        "--only-binary",
        ":all:",
        "six==1.16.0",
    ]


def test_the_environment_shares_one_package_cache_and_sets_the_cuda_override(
    tmp_path: Path,
) -> None:
    backend = MicromambaBackend("micromamba", cache=tmp_path / "cache")
    base = {"PATH": "/usr/bin", "HOME": str(tmp_path), "CONDA_OVERRIDE_CUDA": "11.2"}
    gpu = backend.environment(EnvRequest(None, (), env={"CONDA_OVERRIDE_CUDA": "12.4"}), base)
    assert gpu["MAMBA_ROOT_PREFIX"] == str(tmp_path / "cache" / "micromamba")
    assert gpu["CONDA_PKGS_DIRS"] == str(tmp_path / "cache" / "micromamba" / "pkgs")
    assert gpu["CONDA_OVERRIDE_CUDA"] == "12.4"
    assert gpu["PYTHONNOUSERSITE"] == "1"
    cpu = backend.environment(EnvRequest(None, (), env={"CONDA_OVERRIDE_CUDA": ""}), base)
    assert cpu["CONDA_OVERRIDE_CUDA"] == ""  # empty: no __cuda, so no CUDA builds
    # a root prefix the user chose (setup-micromamba sets one) keeps its own package cache
    mine = backend.environment(EnvRequest(None, ()), {**base, "MAMBA_ROOT_PREFIX": "/r"})
    assert mine["MAMBA_ROOT_PREFIX"] == "/r"
    assert "CONDA_PKGS_DIRS" not in mine
    assert mine["CONDA_OVERRIDE_CUDA"] == "11.2"  # no cuda axis: the runner's own setting


def test_default_environment_drops_an_active_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDA_PREFIX", str(tmp_path))
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path))
    monkeypatch.delenv("MAMBA_ROOT_PREFIX", raising=False)
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path / "c"))
    env = MicromambaBackend("micromamba").environment(EnvRequest(None, ()))
    assert "CONDA_PREFIX" not in env
    assert "VIRTUAL_ENV" not in env
    assert env["MAMBA_ROOT_PREFIX"] == str(tmp_path / "c" / "micromamba")


def _executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_micromamba_is_found_at_mamba_exe_then_on_path(tmp_path: Path) -> None:
    at_exe = _executable(tmp_path / "exe" / "mm")
    on_path = _executable(tmp_path / "bin" / "micromamba")
    assert find_micromamba({"MAMBA_EXE": str(at_exe), "PATH": str(on_path.parent)}) == str(at_exe)
    missing = str(tmp_path / "nope")
    assert find_micromamba({"MAMBA_EXE": missing, "PATH": str(on_path.parent)}) == str(on_path)
    assert find_micromamba({"PATH": str(tmp_path / "exe")}) is None


def test_without_micromamba_every_cell_is_an_error_saying_how_to_install_it(
    tmp_path: Path, interpreters
) -> None:
    backend = MicromambaBackend(cache=tmp_path)
    backend.micromamba = None
    env = backend.prepare(tmp_path / "env", EnvRequest(None, ()), timeout=10)
    assert env.failure is not None
    assert (env.failure.status, env.failure.category) == ("error", "backend")
    assert "MAMBA_EXE" in env.failure.message
    assert "micro.mamba.pm" in env.failure.hint
    assert "setup-micromamba" in env.failure.hint
    assert isinstance(get_backend("micromamba"), MicromambaBackend)


def test_a_micromamba_cell_needs_no_local_interpreter_and_is_an_error_without_micromamba(
    tmp_path: Path, interpreters, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("MAMBA_EXE", raising=False)
    matrix = Matrix(path=tmp_path / "m.yml", name="conda", backend="micromamba")
    cell = Cell("py3.99-numpy2", {"python": "3.99", "numpy": "2.2.6"})
    result = run_cell(
        matrix, cell, RunSettings(tmp_path / "report", tmp_path / "envs"), interpreters
    )
    assert (result.status, result.category) == ("error", "backend")  # not skip/no-interpreter
    assert "micromamba was not found" in result.message
    assert (tmp_path / "report" / "cells" / "py3.99-numpy2.json").exists()


def test_matrix_settings_default_to_conda_forge_and_read_the_new_keys(tmp_path: Path) -> None:
    plain = Matrix(path=tmp_path / "m.yml", name="m", backend="micromamba")
    assert backend_settings(plain).channels == ("conda-forge",)
    wired = CondaMatrix(
        path=tmp_path / "m.yml",
        name="m",
        channels=("conda-forge", "bioconda"),
        pip=("jax",),
        cuda_table=tmp_path / "cuda.yml",
    )
    settings = backend_settings(wired)
    assert (settings.channels, settings.pip, settings.cuda_table) == (
        ("conda-forge", "bioconda"),
        ("jax",),
        tmp_path / "cuda.yml",
    )


# -- locks -------------------------------------------------------------------------------------


def test_an_explicit_lock_gives_conda_names_versions_builds_and_pip_pins() -> None:
    lock = EXPLICIT + "# pip: six==1.16.0\n# pip: Python_Dateutil==2.9.0.post0\n"
    assert parse_lock(lock) == {
        "_libgcc_mutex": "0.1",
        "cuda-version": "12.4",
        "numpy": "2.2.6",
        "python": "3.12.10",
        "six": "1.16.0",
        "python-dateutil": "2.9.0.post0",
    }
    records = conda_lock_records(lock)
    assert records["python"] == ("3.12.10", "h9e4cc4f_0_cpython")
    assert records["cuda-version"] == ("12.4", "h3060b56_3")
    assert "six" not in records


# -- solver output -----------------------------------------------------------------------------

PYTHON_ONLY = """\
conda-forge/linux-64                                        Using cache
conda-forge/noarch                                          Using cache
error    libmamba Could not solve for environment specs
    The following packages are incompatible
    ├─ numpy ==1.26.4 * is installable with the potential options
    │  ├─ numpy 1.26.4 would require
    │  │  └─ python >=3.10,<3.11.0a0 *, which can be installed;
    │  └─ numpy 1.26.4 would require
    │     └─ python >=3.12,<3.13.0a0 *, which can be installed;
    └─ python =3.13 * is not installable because it conflicts with any installable versions previously reported.
critical libmamba Could not solve for environment specs
"""
PIN_ON_PYTHON = """\
error    libmamba Could not solve for environment specs
    The following packages are incompatible
    ├─ cutadapt =* * is installable with the potential options
    │  └─ cutadapt [4.8|4.9|5.0|5.1] would require
    │     └─ python >=3.12,<3.13.0a0 *, which can be installed;
    └─ pin on python =3.13 * is not installable because it requires
       └─ python =3.13 *, which conflicts with any installable versions previously reported.
critical libmamba Could not solve for environment specs
"""
MISSING = """\
error    libmamba Could not solve for environment specs
    The following package could not be installed
    └─ numpy ==9.9 * does not exist (perhaps a typo or a missing channel).
critical libmamba Could not solve for environment specs
"""
NO_DRIVER = """\
error    libmamba Could not solve for environment specs
    The following package could not be installed
    └─ cupy ==13.3.0 * is not installable because it requires
       └─ __cuda, which is missing on the system.
critical libmamba Could not solve for environment specs
"""
CONFLICT = """\
error    libmamba Could not solve for environment specs
    The following packages are incompatible
    ├─ numpy ==1.21.6 * is requested and can be installed;
    └─ pandas ==2.2.3 * is not installable because it requires
       └─ numpy >=1.22.4,<3 *, which conflicts with any installable versions previously reported.
critical libmamba Could not solve for environment specs
"""
JSON_CONFLICT = (
    json.dumps(
        {
            "solver_problems": [
                "package pandas-2.2.3-py310h5eaa309_1 requires numpy >=1.22.4,<3, "
                "but none of the providers can be installed"
            ],
            "success": False,
        },
        indent=4,
    )
    + "\ncritical libmamba Could not solve for environment specs\n"
)
JSON_PYTHON = json.dumps(
    {
        "solver_problems": [
            "cannot install both python-3.13.1-ha99a958_105_cp313 and python-3.12.8-h9e4cc4f_1_cpython"
        ],
        "success": False,
    }
)
OLD_TEXT = "Encountered problems while solving:\n  - nothing provides requested numpy 9.9.*\n"
UNREACHABLE = """\
warning  libmamba Failed to load subdir: Download error (6) Could not resolve hostname [https://conda.anaconda.org/conda-forge/linux-64/repodata.json]
critical libmamba Could not solve for environment specs
"""
NO_CHANNEL = (
    "critical libmamba Multiple errors occured:\n"
    "    Download error (22) HTTP response code said error "
    "[https://conda.anaconda.org/not-a-channel/linux-64/repodata.json]\n"
    "    The requested URL returned error: 404\n"
)


@pytest.mark.parametrize(
    ("output", "status", "category", "in_message"),
    [
        (PYTHON_ONLY, "unsupported", "no-distribution", "python >=3.12,<3.13.0a0"),
        (
            PIN_ON_PYTHON,
            "unsupported",
            "no-distribution",
            "cutadapt [4.8|4.9|5.0|5.1] would require",
        ),
        (MISSING, "unsupported", "no-distribution", "numpy ==9.9 * does not exist"),
        (NO_DRIVER, "unsupported", "no-distribution", "__cuda, which is missing"),
        (CONFLICT, "conflict", "resolution-conflict", "requires numpy >=1.22.4,<3"),
        (JSON_CONFLICT, "conflict", "resolution-conflict", "but none of the providers"),
        (JSON_PYTHON, "unsupported", "no-distribution", "cannot install both python-3.13.1"),
        (OLD_TEXT, "unsupported", "no-distribution", "nothing provides requested numpy"),
        (UNREACHABLE, "error", "network", "Could not resolve hostname"),
        (NO_CHANNEL, "error", "channel", "404"),
        ("critical libmamba Non-conda folder exists at prefix\n", "error", "install", "folder"),
    ],
)
def test_micromamba_failures_are_classified_from_its_own_output(
    output: str, status: str, category: str, in_message: str
) -> None:
    failure = classify_micromamba(output)
    assert (failure.status, failure.category) == (status, category), failure.message
    assert in_message in failure.message
    assert failure.retryable == (category == "network")


def test_the_reason_joins_each_requirement_to_what_it_requires() -> None:
    message = classify_micromamba(PYTHON_ONLY).message
    assert message == (
        "numpy ==1.26.4 * is installable with the potential options; "
        "numpy 1.26.4 would require python >=3.10,<3.11.0a0 *; "
        "numpy 1.26.4 would require python >=3.12,<3.13.0a0 *; "
        "python =3.13 * is not installable because it conflicts with any installable versions "
        "previously reported"
    )
    assert "Using cache" not in message


# -- building, against a stand-in --------------------------------------------------------------

STANDIN = """\
#!{python}
# Stands in for micromamba (conda-forge is unreachable here): records each call, and for
# `create` builds a real environment with uv on a real interpreter.
import json, os, subprocess, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["STANDIN_LOG"], "a") as log:
    keep = ("CONDA_OVERRIDE_CUDA", "MAMBA_ROOT_PREFIX", "CONDA_PKGS_DIRS")
    log.write(json.dumps({{"argv": args, "env": {{k: os.environ.get(k) for k in keep}}}}) + "\\n")
if args[0] == "create":
    failure = os.environ.get("STANDIN_FAIL")
    if failure:
        sys.stdout.write(Path(failure).read_text())
        sys.exit(1)
    prefix = Path(args[args.index("--prefix") + 1])
    if "--dry-run" in args:
        print(json.dumps({{"actions": {{"LINK": [
            {{"name": "python", "version": "3.11.9", "build_string": "hb806964_0_cpython"}},
            {{"name": "numpy", "version": "2.2.6", "build_string": "py311h5d046bc_0"}}]}},
            "dry_run": True, "prefix": str(prefix), "success": True}}))
        sys.exit(0)
    subprocess.run([{uv!r}, "venv", "--quiet", "--seed", "--python", {interpreter!r}, str(prefix)],
                   check=True)
    (prefix / "conda-meta").mkdir()
    for installer in prefix.glob("lib/python*/site-packages/*.dist-info/INSTALLER"):
        installer.write_text("conda\\n")  # what conda writes for the packages it links
    (prefix / "specs.json").write_text(json.dumps(args[args.index("--prefix") + 2:]))
elif args[:3] == ["env", "export", "--explicit"]:
    prefix = Path(args[args.index("--prefix") + 1])
    specs = json.loads((prefix / "specs.json").read_text())
    print("# This file may be used to create an environment using:")
    print("# $ conda create --name <env> --file <this file>")
    print("# platform: linux-64")
    print("@EXPLICIT")
    print("https://conda.anaconda.org/conda-forge/linux-64/python-3.11.9-hb806964_0_cpython.conda#0")
    if "cuda-version=12.4" in specs:
        print("https://conda.anaconda.org/conda-forge/noarch/cuda-version-12.4-h3060b56_3.conda#0")
    sys.stderr.write("a warning on stderr never lands in the lock\\n")
"""


@pytest.fixture
def standin(tmp_path: Path, python_for, monkeypatch: pytest.MonkeyPatch) -> MicromambaBackend:
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed")
    exe = _executable(
        tmp_path / "bin" / "micromamba",
        STANDIN.format(python=sys.executable, uv=uv, interpreter=str(python_for("3.11").path)),
    )
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.delenv("MAMBA_ROOT_PREFIX", raising=False)
    monkeypatch.setenv("MAMBA_EXE", str(exe))
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path / "cache"))
    return MicromambaBackend()


def _calls(tmp_path: Path) -> list[dict]:
    path = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_create_then_pip_then_an_explicit_lock_with_pip_pins_then_reuse(
    tmp_path: Path, standin: MicromambaBackend
) -> None:
    request = EnvRequest(
        None,
        ("six==1.16.0",),
        conda_specs=("python=3.11", "cuda-version=12.4"),
        env={"CONDA_OVERRIDE_CUDA": "12.4"},
    )
    env = standin.prepare(tmp_path / "env", request, timeout=300)
    assert env.failure is None, env.log
    calls = _calls(tmp_path)
    assert [c["argv"][:3] for c in calls] == [
        ["create", "--yes", "--prefix"],
        ["env", "export", "--explicit"],
    ]
    assert calls[0]["env"] == {
        "CONDA_OVERRIDE_CUDA": "12.4",
        "MAMBA_ROOT_PREFIX": str(tmp_path / "cache" / "micromamba"),
        "CONDA_PKGS_DIRS": str(tmp_path / "cache" / "micromamba" / "pkgs"),
    }
    assert env.lock_text.startswith("# This file may be used to create an environment")
    assert "warning" not in env.lock_text
    assert env.lock_text.endswith("# pip: six==1.16.0\n")
    assert parse_lock(env.lock_text) == {
        "python": "3.11.9",
        "cuda-version": "12.4",
        "six": "1.16.0",
    }
    assert (env.envdir / "lib").exists()

    again = standin.prepare(tmp_path / "env", request, timeout=300)
    assert again.reused
    assert again.lock_text == env.lock_text
    assert len(_calls(tmp_path)) == 2  # nothing solved or installed again

    changed = EnvRequest(None, ("six==1.17.0",), conda_specs=request.conda_specs, env=request.env)
    rebuilt = standin.prepare(tmp_path / "env", changed, timeout=300)
    assert not rebuilt.reused
    assert "# pip: six==1.17.0" in rebuilt.lock_text


@pytest.mark.slow
def test_a_failed_solve_is_classified_and_a_failed_pip_install_too(
    tmp_path: Path, standin: MicromambaBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "solver-output.txt"
    output.write_text(CONFLICT)
    monkeypatch.setenv("STANDIN_FAIL", str(output))
    request = EnvRequest(None, (), conda_specs=("python=3.10", "numpy==1.21.6", "pandas==2.2.3"))
    env = standin.prepare(tmp_path / "env", request, timeout=120)
    assert env.failure is not None
    assert (env.failure.status, env.failure.category) == ("conflict", "resolution-conflict")
    monkeypatch.delenv("STANDIN_FAIL")
    no_wheel = EnvRequest(None, ("numpy==1.21.6",), True, conda_specs=("python=3.11",))
    env = standin.prepare(tmp_path / "env2", no_wheel, timeout=300)
    assert env.failure is not None
    assert (env.failure.status, env.failure.category) == ("unsupported", "no-distribution")


@pytest.mark.slow
def test_a_dry_run_lists_what_would_be_linked(tmp_path: Path, standin: MicromambaBackend) -> None:
    request = EnvRequest(None, (), conda_specs=("python=3.11", "numpy==2.2.6"))
    solution = standin.solve(tmp_path / "never-created", request, timeout=60)
    assert solution.failure is None
    assert solution.records == {
        "python": ("3.11.9", "hb806964_0_cpython"),
        "numpy": ("2.2.6", "py311h5d046bc_0"),
    }
    assert not (tmp_path / "never-created").exists()
    assert _calls(tmp_path)[0]["argv"][-4:] == [
        "--dry-run",
        "--json",
        "python=3.11",
        "numpy==2.2.6",
    ]


@pytest.mark.slow
def test_a_conda_cell_with_cuda_and_pip_packages_end_to_end(
    tmp_path: Path, standin: MicromambaBackend, interpreters
) -> None:
    matrix = CondaMatrix(
        path=tmp_path / "m.yml",
        name="conda",
        backend="micromamba",
        channels=("conda-forge",),
        pip=("six",),
        imports=("six",),
    )
    cell = Cell("py3.11-six-cu12.4", {"python": "3.11", "six": "1.16.0", "cuda": "12.4"})
    result = run_cell(
        matrix, cell, RunSettings(tmp_path / "report", tmp_path / "envs"), interpreters
    )
    assert result.status == "pass", result.message
    create = _calls(tmp_path)[0]
    assert create["argv"][-3:] == ["python=3.11", "cuda-version=12.4", "pip"]
    assert create["env"]["CONDA_OVERRIDE_CUDA"] == "12.4"
    assert result.resolved["six"] == "1.16.0"
    assert result.resolved["python"] == "3.11.9"  # the conda record, from the lock
    assert result.resolved["cuda.version"] == "12.4"
    lock = (tmp_path / "report" / "locks" / "py3.11-six-cu12.4.txt").read_text()
    assert "@EXPLICIT" in lock
    assert "# pip: six==1.16.0" in lock
    log = (tmp_path / "report" / "logs" / "py3.11-six-cu12.4.log").read_text().splitlines()[0]
    assert log.startswith("$ CONDA_OVERRIDE_CUDA=12.4 micromamba create python=3.11")
    assert log.endswith("&& pip install six==1.16.0")


# -- the real thing (runs where micromamba is installed and conda-forge reachable) -------------


def _real_micromamba() -> str:
    exe = find_micromamba()
    if exe is None:
        pytest.skip("micromamba is not installed (set MAMBA_EXE or put it on PATH)")
    return exe


@pytest.mark.micromamba
@pytest.mark.slow
@pytest.mark.parametrize(
    ("axes", "status", "category"),
    [
        ({"python": "3.12", "numpy": "2.2.6", "cuda": "none"}, "pass", None),
        ({"python": "3.13", "numpy": "1.26.4"}, "unsupported", "no-distribution"),
        (
            {"python": "3.10", "numpy": "1.21.6", "pandas": "2.2.3"},
            "conflict",
            "resolution-conflict",
        ),
        ({"python": "3.12", "six": "1.16.0", "cuda": "12.4"}, "pass", None),
    ],
)
def test_real_micromamba_cells(
    tmp_path: Path, interpreters, axes: dict[str, str], status: str, category: str | None
) -> None:
    _real_micromamba()
    matrix = Matrix(path=tmp_path / "m.yml", name="conda", backend="micromamba", timeout=1800)
    cell = Cell("cell", axes)
    result = run_cell(
        matrix, cell, RunSettings(tmp_path / "report", tmp_path / "envs"), interpreters
    )
    assert (result.status, result.category) == (status, category), result.message
    if status == "pass":
        lock = (tmp_path / "report" / "locks" / "cell.txt").read_text()
        assert "@EXPLICIT" in lock
        assert result.resolved["python"].startswith(axes["python"] + ".")
        assert result.python is not None
        assert result.python.version.startswith(axes["python"] + ".")
        for name, value in axes.items():
            if name not in ("python", "cuda"):
                assert result.resolved[name] == value
    if axes.get("cuda") == "12.4":
        assert result.resolved["cuda.version"] == "12.4"


@pytest.mark.micromamba
@pytest.mark.slow
def test_real_micromamba_installs_pip_packages_after_the_solve(
    tmp_path: Path, interpreters
) -> None:
    _real_micromamba()
    matrix = CondaMatrix(
        path=tmp_path / "m.yml", name="conda", backend="micromamba", pip=("six",), timeout=1800
    )
    cell = Cell("cell", {"python": "3.12", "numpy": "2.2.6", "six": "1.16.0"})
    result = run_cell(
        matrix, cell, RunSettings(tmp_path / "report", tmp_path / "envs"), interpreters
    )
    assert result.status == "pass", result.message
    lock = (tmp_path / "report" / "locks" / "cell.txt").read_text()
    assert "# pip: six==1.16.0" in lock
    assert "/numpy-2.2.6-" in lock
    assert shutil.which("python", path=str(tmp_path / "envs" / "cell" / "bin"))
