"""probes/environment.py: installed distributions, their top-level modules, broken installs.

Site directories here are real files (dist-info with METADATA/RECORD/top_level.txt) read by the
probe through importlib.metadata, under the oldest and newest interpreters on the machine;
the slow test reads a real uv environment built from PyPI.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from _native_fixtures import build_numpy2_env, edge_interpreter, make_dist, run_probe

EXT = sysconfig.get_config_var("EXT_SUFFIX")

#: --dists NAME as a cell would pass it -> the top-level modules it must report.
EXPECTED_TOP_LEVEL = {
    "pyyaml": ["yaml"],  # top_level.txt lists _yaml and yaml: private names are dropped
    "scikit-learn": ["sklearn"],  # RECORD only; tests/, *.libs and bin/ are not modules
    "Python_Dateutil": ["dateutil"],  # spelled as given, found by its canonical name
    "cffi": ["cffi"],  # the private _cffi_backend extension is dropped
    "only-private": ["_only_private"],  # ...unless private names are all there is
    "sloppy": ["sloppy"],  # a stray top-level tests/ package is never a target
    "protobuf": ["google"],  # namespace package
    "six": ["six"],  # single-module distribution
    "types-foo": [],  # stubs only: nothing to import
    "mypkg": ["mypkg"],  # setuptools editable install (finder MAPPING)
    "srcpkg": ["srcpkg"],  # .pth editable install pointing at a src/ directory
    "tensorflow-cpu": ["tensorflow"],  # top_level.txt also names third_party, never shipped
    "not-installed": [],
}


def build_site(root: Path) -> Path:
    site = root / "site"
    make_dist(
        site,
        "PyYAML",
        "6.0.2",
        {"yaml/__init__.py": "", f"_yaml{EXT}": ""},
        top_level=["_yaml", "yaml"],
    )
    make_dist(
        site,
        "scikit-learn",
        "1.5.2",
        {
            "sklearn/__init__.py": "",
            "sklearn/tests/test_base.py": "",
            f"sklearn/utils/_fast{EXT}": "",
            "scikit_learn.libs/libgomp-a34b3233.so.1.0.0": "",
            "../../../bin/sklearn-tool": "",
        },
    )
    make_dist(site, "python-dateutil", "2.9.0.post0", {"dateutil/__init__.py": ""})
    make_dist(site, "cffi", "1.17.1", {"cffi/__init__.py": "", f"_cffi_backend{EXT}": ""})
    make_dist(site, "only-private", "1.0", {"_only_private.py": ""})
    make_dist(site, "sloppy", "0.1", {"sloppy/__init__.py": "", "tests/__init__.py": ""})
    make_dist(site, "protobuf", "5.28.3", {"google/protobuf/__init__.py": ""})
    make_dist(site, "six", "1.16.0", {"six.py": ""})
    make_dist(
        site,
        "tensorflow-cpu",
        "2.15.1",
        {"tensorflow/__init__.py": ""},
        top_level=["tensorflow", "third_party"],
    )
    make_dist(site, "types-foo", "1.0", {"foo-stubs/__init__.pyi": ""})
    finder = "__editable___mypkg_0_1_finder.py"
    make_dist(
        site,
        "mypkg",
        "0.1",
        {finder: f"MAPPING: dict[str, str] = {{'mypkg': {str(root / 'src' / 'mypkg')!r}}}\n"},
    )
    (root / "src" / "srcpkg").mkdir(parents=True)
    (root / "src" / "srcpkg" / "__init__.py").write_text("")
    make_dist(site, "srcpkg", "0.2", {"_srcpkg.pth": str(root / "src") + "\n"})
    # half-written metadata: skipped, never a probe error
    (site / "nameless-1.0.dist-info").mkdir()
    (site / "nameless-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\n")
    (site / "empty-1.0.dist-info").mkdir()
    return site


def run_environment(python: str, site: Path, cwd: Path) -> tuple[dict[str, Any], int]:
    """The probe under ``-W error``: no deprecated API on the newest Python either."""
    args = ["--path", str(site), "--dists", *EXPECTED_TOP_LEVEL]
    return run_probe(python, "environment", args, cwd, python_args=("-W", "error"))


def test_top_level_modules_and_versions(tmp_path: Path) -> None:
    site = build_site(tmp_path)
    document, code = run_environment(sys.executable, site, tmp_path)
    assert code == 0
    assert document["results"] == []
    assert document["top_level"] == EXPECTED_TOP_LEVEL
    distributions = document["distributions"]
    assert distributions["pyyaml"] == "6.0.2"
    assert distributions["scikit-learn"] == "1.5.2"
    assert distributions["python-dateutil"] == "2.9.0.post0"
    assert "not-installed" not in distributions
    assert document["python"]["abi"] == sysconfig.get_config_var("SOABI")
    # the probe sees the environment it runs in, not only --path
    assert distributions["pytest"] == pytest.__version__


@pytest.fixture(params=["oldest", "newest"])
def edge_python(request: pytest.FixtureRequest, interpreters: list[Any]) -> str:
    return str(edge_interpreter(interpreters, request.param).path)


def test_same_answers_under_oldest_and_newest_python(edge_python: str, tmp_path: Path) -> None:
    document, code = run_environment(edge_python, build_site(tmp_path), tmp_path)
    assert code == 0
    assert document["top_level"] == EXPECTED_TOP_LEVEL
    assert document["distributions"]["scikit-learn"] == "1.5.2"


def test_duplicate_metadata_and_pip_leftovers_are_inconsistent(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(site, "numpy", "1.26.4", {"numpy/__init__.py": ""})
    make_dist(site, "numpy", "2.2.6", {"numpy/__init__.py": ""})
    (site / "~umpy").mkdir()
    document, code = run_probe(
        sys.executable, "environment", ["--path", str(site), "--dists", "numpy"], tmp_path
    )
    assert code == 1
    by_category = {(r["target"], r["category"]): r for r in document["results"]}
    duplicate = by_category["numpy", "inconsistent-env"]
    assert duplicate["status"] == "fail"
    assert "numpy-1.26.4.dist-info (1.26.4)" in duplicate["message"]
    assert "numpy-2.2.6.dist-info (2.2.6)" in duplicate["message"]
    assert "reinstall numpy" in duplicate["hint"]
    leftover = by_category[str(site), "inconsistent-env"]
    assert leftover["details"]["leftovers"] == ["~umpy"]
    assert document["top_level"] == {"numpy": ["numpy"]}


def test_bad_option_is_an_error_document(tmp_path: Path) -> None:
    document, code = run_probe(sys.executable, "environment", ["--bogus"], tmp_path)
    assert code == 2
    [result] = document["results"]
    assert (result["status"], result["category"]) == ("error", "probe-error")


@pytest.fixture(scope="session")
def numpy2_env(tmp_path_factory: pytest.TempPathFactory, uv_bin: str, python_for: Any) -> Path:
    return build_numpy2_env(tmp_path_factory, uv_bin, python_for)


@pytest.mark.slow
def test_real_environment_from_pypi(numpy2_env: Path, tmp_path: Path) -> None:
    python = str(numpy2_env / "bin" / "python")
    dists = ["pandas", "numpy", "python-dateutil", "PyYAML", "pillow"]
    document, code = run_probe(python, "environment", ["--dists", *dists], tmp_path)
    assert code == 0
    distributions = document["distributions"]
    assert distributions["numpy"] == "2.2.6"
    assert distributions["pandas"] == "2.0.3"
    assert distributions["pyyaml"] == "6.0.2"
    assert distributions["pillow"] == "11.0.0"
    assert distributions["matplotlib"] == "3.8.0"
    assert "python-dateutil" in distributions
    assert "pytest" not in distributions  # only what the cell's environment holds
    assert document["top_level"] == {
        "pandas": ["pandas"],
        "numpy": ["numpy"],
        "python-dateutil": ["dateutil"],
        "PyYAML": ["yaml"],
        "pillow": ["PIL"],
    }
    assert document["python"]["version"].startswith("3.11.")
