"""What-if upgrades: real environments built with uv, upgraded in a scratch copy, never touched.

The "existing" environments are built for real (Python 3.11 + numpy 1.26.4 + pandas 2.0.3, a
working pair; requests 2.25.1, which caps urllib3 below 2), then asked what an upgrade would do.
The real environment is checked byte for byte (file list, sizes, mtimes) and by its freeze
before and after, with PYTHONDONTWRITEBYTECODE unset so an import could write bytecode.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from compat_matrix.build.backends import find_micromamba
from compat_matrix.errors import UsageError
from compat_matrix.run.whatif import (
    PackageChange,
    WhatIfResult,
    format_summary,
    parse_upgrade,
    read_conda_meta,
    read_environment,
    what_if,
)
from compat_matrix.run.whatif.resolve import _mentioned

# --- the upgrade syntax -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "requirement", "conda", "label"),
    [
        ("numpy=2", "numpy", "numpy==2.*", "numpy=2", "numpy2"),
        ("numpy=2.2", "numpy", "numpy==2.2.*", "numpy=2.2", "numpy2.2"),
        ("NumPy=2.2.6", "numpy", "numpy==2.2.6", "numpy==2.2.6", "numpy2.2.6"),
        ("numpy>=2.1", "numpy", "numpy>=2.1", "numpy>=2.1", "numpy-ge2.1"),
        ("numpy >=2,<3", "numpy", "numpy<3,>=2", "numpy<3,>=2", "numpy-ge2-lt3"),
        ("scikit_learn~=1.5", "scikit-learn", "scikit-learn~=1.5", "scikit-learn~=1.5", None),
        ("numpy", "numpy", "numpy", "numpy", "numpy-latest"),
        ("python=3.12", "python", "", "", "py3.12"),
        ("python=3.13t", "python", "", "", "py3.13t"),
    ],
)
def test_upgrade_forms(text, name, requirement, conda, label) -> None:
    upgrade = parse_upgrade(text)
    assert (upgrade.name, upgrade.requirement, upgrade.conda_spec) == (name, requirement, conda)
    if label is not None:
        assert upgrade.label == label


@pytest.mark.parametrize("text", ["numpy=two", "numpy>>2", "=2", "", "python=3", "python>=3.12"])
def test_a_bad_upgrade_is_a_usage_error_naming_the_accepted_forms(text) -> None:
    with pytest.raises(UsageError, match="--upgrade"):
        parse_upgrade(text)


# --- reading what is installed ------------------------------------------------------------------


def _record(prefix: Path, name: str, version: str, build: str, channel: str, files=()) -> None:
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "channel": channel,
        "files": list(files),
        "depends": [],
    }
    (meta / f"{name}-{version}-{build}.json").write_text(json.dumps(record), encoding="utf-8")


def _conda_layout(prefix: Path) -> None:
    """conda-meta as conda/micromamba write it: URLs or names, a pip record, a broken file."""
    site = "lib/python3.11/site-packages"
    _record(prefix, "python", "3.11.7", "hab00c5b_1_cpython", "conda-forge")
    _record(
        prefix,
        "numpy",
        "1.26.4",
        "py311h64a7726_0",
        "https://conda.anaconda.org/conda-forge/linux-64",
        [f"{site}/numpy/__init__.py", f"{site}/numpy-1.26.4.dist-info/METADATA"],
    )
    _record(
        prefix, "openssl", "3.0.13", "h7f8727e_0", "https://repo.anaconda.com/pkgs/main/linux-64"
    )
    _record(prefix, "six", "1.17.0", "pypi_0", "pypi")
    (prefix / "conda-meta" / "half-written.json").write_text('{"name": "tru', encoding="utf-8")
    (prefix / "conda-meta" / "history").write_text("==> 2024-01-01 <==\n", encoding="utf-8")


def test_conda_meta_records_are_read_as_conda_writes_them(tmp_path) -> None:
    _conda_layout(tmp_path)
    records = {r.name: r for r in read_conda_meta(tmp_path) or ()}
    assert sorted(records) == ["numpy", "openssl", "python", "six"]
    assert records["numpy"].channel == records["numpy"].channel_source == "conda-forge"
    assert records["numpy"].metadata_dirs == ("numpy-1.26.4.dist-info",)
    assert records["openssl"].channel == "main"
    assert records["openssl"].channel_source == "https://repo.anaconda.com/pkgs/main"
    assert records["six"].from_pypi
    assert not records["numpy"].from_pypi


def test_a_prefix_without_conda_meta_is_no_conda_environment(tmp_path) -> None:
    assert read_conda_meta(tmp_path) is None


def test_the_environment_of_the_running_interpreter_is_read_without_a_build() -> None:
    snapshot = read_environment(Path(sys.executable))
    names = {d.name: d for d in snapshot.distributions}
    assert names["packaging"].version
    assert snapshot.version.startswith(f"{sys.version_info[0]}.{sys.version_info[1]}.")
    assert snapshot.base_executable.exists()
    assert not snapshot.is_conda


def test_a_missing_interpreter_is_a_usage_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="no interpreter"):
        what_if(tmp_path / "env" / "bin" / "python", ["numpy=2"], tmp_path / "report")


def test_a_python_that_is_not_on_this_machine_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(UsageError, match=r"no CPython 3\.99 found.*uv python install 3\.99"):
        what_if(Path(sys.executable), ["python=3.99"], tmp_path / "report")


def test_naming_a_package_twice_is_a_usage_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="twice"):
        what_if(Path(sys.executable), ["numpy=2", "NumPy>=2.1"], tmp_path / "report")


# --- who the installer blames -------------------------------------------------------------------

_UV_NO_WHEEL = (
    "error: No solution found when resolving dependencies\n  cause: Because pandas==2.0.3 has "
    "no usable wheels and you require pandas==2.0.3, we can conclude that your requirements "
    "are unsatisfiable.\n\nhint: Wheels are required for `pandas` because building from "
    "source is disabled for all packages"
)
_UV_CONFLICT = (
    "  cause: Because requests==2.25.1 depends on urllib3>=1.21.1,<1.27 and you require "
    "requests==2.25.1, we can conclude that you require urllib3>=1.21.1,<1.27. And because "
    "you require urllib3==2.*, we can conclude that your requirements are unsatisfiable."
)
# libmamba's problem tree (micromamba 2.x) and libsolv's problem strings (1.x).
_MAMBA_TREE = (
    "error    libmamba Could not solve for environment specs\n"
    "    The following packages are incompatible\n"
    "    ├─ numpy ==1.26.4 * is installable and it requires\n"
    "    │  └─ python >=3.11,<3.12.0a0 *, which can be installed;\n"
    "    └─ python =3.12 * is not installable because it conflicts with any installable "
    "versions previously reported."
)
_LIBSOLV = "  - nothing provides python_abi 3.11.* *_cp311 needed by scipy-1.11.4-py311h64a7726_0"


@pytest.mark.parametrize(
    ("output", "names", "blamed"),
    [
        (_UV_NO_WHEEL, ["numpy", "pandas", "pytz"], ["pandas"]),
        (_UV_CONFLICT, ["urllib3", "requests", "idna", "chardet"], ["urllib3", "requests"]),
        (_MAMBA_TREE, ["numpy", "openssl", "libzlib"], ["numpy"]),
        (_LIBSOLV, ["scipy", "numpy", "python-abi"], ["scipy", "python-abi"]),
        ("Because only six<=1.17.0 is available", ["six", "sixer"], ["six"]),
        ("all versions of python-dateutil are bad", ["python-dateutil", "dateutil"], None),
    ],
)
def test_the_blamed_packages_are_the_ones_the_explanation_names(output, names, blamed) -> None:
    found = _mentioned(output, names)
    if blamed is None:
        assert found == ["python-dateutil"]
    else:
        assert sorted(found) == sorted(blamed)


# --- real environments --------------------------------------------------------------------------


def _venv(root: Path, uv: str, python: Path, *requirements: str) -> Path:
    subprocess.run([uv, "venv", "-q", "--python", str(python), str(root)], check=True, timeout=120)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(root / "bin" / "python"), *requirements],
        check=True,
        timeout=600,
    )
    return root / "bin" / "python"


def _state(python: Path) -> tuple[str, dict[str, tuple[int, int]]]:
    """The environment's freeze, and (size, mtime) of every file and folder under its prefix."""
    freeze = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            "import importlib.metadata as m; print(sorted((d.metadata['Name'], d.version) "
            "for d in m.distributions()))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    prefix = python.parent.parent
    tree = {}
    for path in [prefix, *prefix.rglob("*")]:
        st = path.lstat()
        tree[str(path.relative_to(prefix))] = (st.st_size, st.st_mtime_ns)
    return freeze, tree


def _row(result: WhatIfResult, name: str) -> PackageChange:
    return next(p for p in result.packages if p.name == name)


@pytest.fixture(scope="module")
def pandas_env(tmp_path_factory, uv_bin, python_for) -> Path:
    root = tmp_path_factory.mktemp("whatif") / "analysis"
    return _venv(root, uv_bin, python_for("3.11").path, "numpy==1.26.4", "pandas==2.0.3")


@pytest.fixture(scope="module")
def requests_env(tmp_path_factory, uv_bin, python_for) -> Path:
    root = tmp_path_factory.mktemp("whatif") / "web"
    return _venv(root, uv_bin, python_for("3.11").path, "requests==2.25.1")


@pytest.fixture
def bytecode_allowed(monkeypatch) -> None:
    """Imports may write __pycache__ unless compat-matrix stops them: let them, to see it does."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)


@pytest.mark.slow
@pytest.mark.usefixtures("bytecode_allowed")
def test_numpy_2_would_break_pandas_and_says_why(pandas_env, tmp_path) -> None:
    before = _state(pandas_env)
    result = what_if(pandas_env, ["numpy=2"], tmp_path / "report")
    assert _state(pandas_env) == before

    assert result.current.status == "pass", result.current.message
    assert result.current.id == "audit-py3.11-analysis"
    assert (result.upgraded.status, result.upgraded.category) == ("fail", "abi-numpy")
    assert result.upgraded.id == "whatif-py3.11-numpy2-analysis"

    numpy = _row(result, "numpy")
    assert numpy.requested
    assert (numpy.current, numpy.status) == ("1.26.4", "upgraded")
    assert Version(numpy.upgraded or "0").major == 2

    # pandas 2.0.3 declares no numpy<2 bound, so it installs pinned, and its extensions break.
    pandas = _row(result, "pandas")
    assert (pandas.current, pandas.upgraded) == ("2.0.3", "2.0.3")
    assert (pandas.status, pandas.verdict, pandas.category) == ("breaks", "fail", "abi-numpy")
    assert "pandas" in pandas.reason
    assert pandas.hint.startswith("pin numpy<2")  # the smallest fix, checked against the resolver
    assert pandas.hint.endswith("(verified: resolves)")
    assert [p.name for p in result.problems] == ["pandas"]
    assert result.verdict == "the upgrade would break pandas"
    assert result.exit_status == 1
    assert [a.status for a in result.attempts] == ["ok"]  # every pin held

    report = tmp_path / "report"
    cells = json.loads((report / "compat.json").read_text())["cells"]
    assert [c["id"] for c in cells] == [result.current.id, result.upgraded.id]
    assert json.loads((report / "whatif.json").read_text())["verdict"] == result.verdict
    markdown = (report / "compat.md").read_text()
    assert markdown.startswith("## What if: numpy=2")
    assert "| pandas | 2.0.3 | 2.0.3 | BREAKS" in markdown
    assert (report / "cells" / f"{result.upgraded.id}.json").exists()
    summary = format_summary(result)
    assert "pandas" in summary
    assert "verdict: the upgrade would break pandas" in summary


@pytest.mark.slow
@pytest.mark.usefixtures("bytecode_allowed")
def test_python_312_needs_a_newer_pandas(pandas_env, tmp_path, python_for) -> None:
    python_for("3.12")
    before = _state(pandas_env)
    result = what_if(pandas_env, ["python=3.12"], tmp_path / "report")
    assert _state(pandas_env) == before

    # With every pin kept, pandas 2.0.3 has no cp312 wheel: that is the answer's first half.
    first = result.attempts[0]
    assert (first.status, first.category) == ("unsupported", "no-distribution")
    assert first.blamed == ("pandas",)
    # Then only pandas moves (numpy keeps its pin), and the upgraded set works.
    pandas = _row(result, "pandas")
    assert (pandas.status, pandas.verdict, pandas.category) == (
        "must-change",
        "unsupported",
        "no-distribution",
    )
    assert pandas.reason.startswith("no wheel of pandas==2.0.3 for Python 3.12")
    assert Version(pandas.upgraded or "0") >= Version("2.1.1")  # the first with cp312 wheels
    assert (_row(result, "numpy").current, _row(result, "numpy").upgraded) == ("1.26.4", "1.26.4")
    python = _row(result, "python")
    assert python.requested
    assert (python.upgraded or "").startswith("3.12.")
    assert result.upgraded.status == "pass", result.upgraded.message
    assert result.upgraded.id == "whatif-py3.12-analysis"
    assert result.verdict == "the upgrade works if pandas moves as listed"
    assert result.exit_status == 0


@pytest.mark.slow
@pytest.mark.usefixtures("bytecode_allowed")
def test_a_declared_cap_is_reported_then_the_capping_package_moves(requests_env, tmp_path) -> None:
    before = _state(requests_env)
    result = what_if(requests_env, ["urllib3=2"], tmp_path / "report")
    assert _state(requests_env) == before

    first = result.attempts[0]
    assert (first.status, first.category) == ("conflict", "resolution-conflict")
    assert "urllib3>=1.21.1,<1.27" in first.message
    requests = _row(result, "requests")
    assert (requests.status, requests.verdict) == ("must-change", "conflict")
    assert Version(requests.upgraded or "0") > Version("2.25.1")
    assert Version(_row(result, "urllib3").upgraded or "0").major == 2
    assert _row(result, "idna").status == "unchanged"  # still pinned: nothing asked it to move
    assert result.upgraded.status == "pass"
    assert result.exit_status == 0


@pytest.mark.slow
def test_an_upgrade_that_does_not_exist_is_blocked_by_itself(requests_env, tmp_path) -> None:
    result = what_if(requests_env, ["urllib3=9"], tmp_path / "report")
    assert result.upgraded.status in ("conflict", "unsupported")
    urllib3 = _row(result, "urllib3")
    assert urllib3.requested
    assert urllib3.status == "blocks"
    assert urllib3.upgraded is None
    assert "urllib3==9.*" in urllib3.reason
    assert result.verdict.startswith("the upgrade cannot be installed")
    assert result.exit_status == 1
    assert "not compared" in format_summary(result)


@pytest.mark.slow
def test_a_conda_environment_without_micromamba_gets_an_error_not_a_crash(
    tmp_path, uv_bin, python_for, monkeypatch
) -> None:
    if find_micromamba() is not None:
        pytest.skip("micromamba is installed: the conda path would run for real")
    # as on Python 3.9, where py-rattler (the built-in conda engine) has no wheel
    monkeypatch.setattr("compat_matrix.run.whatif.rattler_available", lambda: False)
    python = _venv(tmp_path / "conda-env", uv_bin, python_for("3.11").path, "six==1.17.0")
    _conda_layout(tmp_path / "conda-env")
    snapshot = read_environment(python)
    assert snapshot.is_conda
    assert [d.name for d in snapshot.pip_distributions()] == ["six"]

    result = what_if(python, ["python=3.12"], tmp_path / "report")
    # The environment as it is still gets its verdict (its numpy record has no files here).
    assert result.current.probes
    assert result.current.status in ("pass", "fail")
    assert (result.upgraded.status, result.upgraded.category) == ("error", "backend")
    assert "micromamba" in result.upgraded.message
    assert "MAMBA_EXE" in result.upgraded.hint
    assert result.exit_status == 3


def test_a_conda_environment_is_rebuilt_as_one_solve_then_pip(tmp_path) -> None:
    """The micromamba command line of a conda what-if: every conda package pinned by version in
    one create (the interpreter replaced), the pip-installed ones after it, with pip."""
    from compat_matrix.build.backends import MicromambaBackend
    from compat_matrix.run.whatif import Installed, Snapshot
    from compat_matrix.run.whatif.resolve import _conda_channels, _conda_pins, _conda_request

    _conda_layout(tmp_path)
    _record(tmp_path, "python_abi", "3.11", "4_cp311", "conda-forge")
    snapshot = Snapshot(
        python=tmp_path / "bin" / "python",
        version="3.11.7",
        implementation="cpython",
        free_threaded=False,
        abi="cpython-311-x86_64-linux-gnu",
        prefix=tmp_path,
        base_executable=tmp_path / "bin" / "python",
        distributions=(
            Installed("numpy", "1.26.4", "conda", None, "numpy-1.26.4.dist-info"),
            Installed("six", "1.17.0", "pip", None, "six-1.17.0.dist-info"),
        ),
        conda=read_conda_meta(tmp_path),
    )
    upgrades = [parse_upgrade("python=3.12"), parse_upgrade("numpy=2")]
    pins, conda_names, _ = _conda_pins(snapshot, upgrades, {})
    channels = _conda_channels(snapshot.conda or ())
    request = _conda_request(["python=3.12"], conda_names, channels, [])(pins)
    assert request.interpreter is None
    assert sorted(request.conda_specs) == ["numpy=2", "openssl==3.0.13", "python=3.12"]
    assert request.requirements == ("six==1.17.0",)
    # The environment's own channels, the one most of its packages came from first.
    assert channels == ("conda-forge", "https://repo.anaconda.com/pkgs/main")
    argv = MicromambaBackend("micromamba").create_command(tmp_path / "scratch", request)
    assert argv[:2] == ["micromamba", "create"]
    assert {"python=3.12", "numpy=2", "openssl==3.0.13", "pip"} <= set(argv)
    assert not any(a.startswith("python_abi") for a in argv)
