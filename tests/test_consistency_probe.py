"""probes/consistency_probe.py: pip-check semantics, files owned twice, conda and pip mixed.

The probe's stdlib PEP 440/508 code is checked against ``packaging`` (what pip vendors) on a
corpus of versions, specifiers, markers and requirements. The environments are real: uv venvs
where the violations are made the way users make them (``--no-deps`` installs, uninstalls, two
projects that ship the same module, built from local flit projects), and ``uv pip check``
gives the expected answer. conda-forge is not reachable here, so the conda environment is a
uv venv plus ``conda-meta/*.json`` records written by the test in conda's record format, for
packages that are really installed in it; pip (uv) then works on that environment for real.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _elf_fixtures import run_probe
from _native_fixtures import edge_interpreter, load_probe_module
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    return load_probe_module("consistency_probe")


def consistency(
    python: str | Path, cwd: Path, args: list[str] | None = None, isolated: bool = False
) -> tuple[dict[str, Any], int]:
    """Run the probe (``-S``: only ``--path`` directories, not the interpreter's site)."""
    flags = ("-S",) if isolated else ()
    document, _ = run_probe(str(python), "consistency_probe", args or [], cwd, extra_flags=flags)
    assert document["probe"] == "consistency"
    statuses = {r["status"] for r in document["results"]}
    return document, 1 if "fail" in statuses else 0


def messages(document: dict[str, Any]) -> list[str]:
    return sorted(r["message"] for r in document["results"] if r["status"] == "fail")


# -- PEP 440 / PEP 508 against packaging ---------------------------------------------------------

VERSIONS = [
    "1.0", "1.0.0", "1.0.post1", "1.0.post0", "1.0.dev0", "1.0a1", "1.0b2", "1.0rc1", "1.0c1",
    "1.0+local", "1.0+local.7", "1.0.1", "1.1", "1.1.dev1", "1.1a1.dev2", "2.0", "2!1.0",
    "1.0.post1.dev3", "0.9", "1.0.0.0", "1.0-1", "1.0_r3", "1.0.preview4", "1!2.0a1",
    "1.0+abc.5", "1.0+5.abc", "3.11.7", "3.12.0rc1", "1.21.6", "1.22.4", "12.4.127", "V1.2",
    "1.0alpha3", "1.0-dev", "2.5.1+cu124", "not-a-version",
]  # fmt: skip
OPERATORS = ["==", "!=", "<", "<=", ">", ">=", "~=", "==="]


def _random_version(rnd: random.Random) -> str:
    text = rnd.choice(["", "", "", "1!"])
    text += ".".join(str(rnd.choice([0, 0, 1, 2, 10])) for _ in range(rnd.randint(1, 4)))
    if rnd.random() < 0.3:
        text += rnd.choice(["a", "b", "rc", ".alpha", "-pre"]) + str(rnd.randint(0, 2))
    if rnd.random() < 0.3:
        text += rnd.choice([".post", "-", ".r", "post"]) + str(rnd.randint(0, 2))
    if rnd.random() < 0.3:
        text += rnd.choice([".dev", "dev"]) + str(rnd.randint(0, 2))
    if rnd.random() < 0.2:
        text += "+" + rnd.choice(["local", "1", "abc.2", "cu121"])
    return text


def _specifier_cases() -> list[tuple[str, str]]:
    cases = []
    for op in OPERATORS:
        for spec in VERSIONS:
            cases += [(op + spec, version) for version in VERSIONS]
            if op in ("==", "!="):
                cases += [(op + spec.split("+")[0] + ".*", version) for version in VERSIONS]
    rnd = random.Random(440)  # noqa: S311 - a reproducible corpus
    pool = [_random_version(rnd) for _ in range(300)]
    for _ in range(4000):
        op = rnd.choice(OPERATORS)
        cases.append((op + rnd.choice(pool), rnd.choice(pool)))
    cases += [(">=1.0,<2.0,!=1.5.*", v) for v in ("1.4", "1.5.2", "1.9", "2.0")]
    return cases


def test_versions_order_like_packaging(probe: ModuleType) -> None:
    rnd = random.Random(508)  # noqa: S311 - a reproducible corpus
    pool = [v for v in VERSIONS if v != "not-a-version"] + [
        _random_version(rnd) for _ in range(200)
    ]
    ours = [probe.Version(v) for v in pool]
    theirs = [Version(v) for v in pool]
    assert [str(v) for v in ours] == [str(v) for v in theirs]
    order = sorted(range(len(pool)), key=lambda i: ours[i])
    assert [theirs[i] for i in order] == sorted(theirs)
    for i in range(len(pool) - 1):
        assert (ours[i] == ours[i + 1]) == (theirs[i] == theirs[i + 1])
    with pytest.raises(probe.InvalidVersion):
        probe.Version("not-a-version")


def test_specifiers_match_like_packaging(probe: ModuleType) -> None:
    """pip check calls SpecifierSet.contains(version, prereleases=True): same answers."""
    checked = mismatched = 0
    wrong = []
    for spec, version in _specifier_cases():
        try:
            expected = SpecifierSet(spec).contains(version, prereleases=True)
        except InvalidSpecifier:
            with pytest.raises(ValueError):
                probe.parse_specifiers(spec)
            continue
        checked += 1
        if probe.specifier_contains(spec, version) != expected:
            mismatched += 1
            wrong.append((spec, version, expected))
    assert checked > 10000
    assert wrong == []


MARKERS = [
    'python_version < "3.11"',
    'python_version >= "3.8" and sys_platform == "linux"',
    'extra == "Test_Foo"',
    'extra == "test-foo" or os_name == "nt"',
    '(python_version == "3.11" or python_version == "3.12") and platform_machine == "x86_64"',
    '"linux" in sys_platform',
    'platform_system != "Windows"',
    'python_full_version >= "3.11.0rc1"',
    'implementation_name == "cpython" and python_version ~= "3.0"',
    "platform_python_implementation == 'CPython'",
    'python_version > "3.6"',
    'python_version in "3.10 3.11"',
    'sys_platform not in "win32 cygwin"',
    'os.name == "posix"',
    'python_version == "3.11.*"',
    'platform_release >= "5"',
    '"3.11" == python_version',
    "extra == 'gpu' and (platform_machine == 'x86_64' or platform_machine == 'aarch64')",
]


def test_markers_evaluate_like_packaging(probe: ModuleType) -> None:
    wrong = []
    for marker in MARKERS:
        for python in ("3.8.18", "3.11.7", "3.13.0", "3.14.0b1"):
            for extra in ("", "test_foo", "GPU"):
                env = dict(probe.default_environment())
                env.update(
                    python_full_version=python,
                    python_version=".".join(python.split(".")[:2]),
                    extra=extra,
                )
                if probe.evaluate_marker(marker, env) != Marker(marker).evaluate(env):
                    wrong.append((marker, python, extra))
    assert wrong == []
    with pytest.raises(ValueError):
        probe.evaluate_marker('python_version < "3.11" and')
    with pytest.raises(ValueError):
        probe.evaluate_marker('no_such_variable == "1"')


REQUIREMENTS = [
    "numpy>=1.22.4",
    'numpy>=1.22.4; python_version < "3.11"',
    "pandas[excel, performance] (>=2.0,<3) ; extra == 'all'",
    "requests[socks]==2.*",
    "torch @ https://download.pytorch.org/whl/cu124/torch-2.5.1.whl ; sys_platform == 'linux'",
    "zope.interface",
    "A.B-C_D ~= 1.4.5",
    "tzdata>=2022.7",
]


@pytest.mark.parametrize("text", REQUIREMENTS)
def test_requirements_parse_like_packaging(probe: ModuleType, text: str) -> None:
    ours = probe.parse_requirement(text)
    theirs = Requirement(text)
    assert ours.name == theirs.name
    assert sorted(ours.extras) == sorted(theirs.extras)
    assert SpecifierSet(ours.specifier) == theirs.specifier
    assert (ours.url or None) == theirs.url
    assert bool(ours.marker) == (theirs.marker is not None)
    if ours.marker:
        env = probe.default_environment()
        for extra in ("", "all"):
            assert probe.evaluate_marker(ours.marker, dict(env, extra=extra)) == (
                theirs.marker.evaluate(dict(env, extra=extra))
            )


# -- synthetic site directories (real dist-info files) ------------------------------------------


def _hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def dist(
    site: Path,
    name: str,
    version: str,
    files: dict[str, str] | None = None,
    requires: list[str] | None = None,
    requires_python: str | None = None,
) -> None:
    """A dist-info with METADATA (Requires-Dist), RECORD with real hashes, and its files."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires or []]
    (info / "METADATA").write_text("\n".join(lines) + "\n\nA long description: not headers.\n")
    rows = [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    for rel, text in (files or {}).items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        rows.append(f"{rel},{_hash(text.encode())},{len(text.encode())}")
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def broken_site(root: Path) -> Path:
    site = root / "site"
    dist(
        site,
        "app",
        "1.0",
        {"app/__init__.py": ""},
        requires=[
            "lib>=2.0",
            "missing-dep",
            "lib2[feat]>=1; python_version >= '3'",
            "never-needed; python_version < '3'",
            "testonly; extra == 'test'",
        ],
    )
    dist(site, "lib", "1.5", {"lib/__init__.py": ""})
    dist(site, "lib2", "1.0", {"lib2.py": ""}, requires=["featdep>=3; extra == 'feat'"])
    dist(site, "featdep", "2.0", {"featdep.py": ""})
    dist(site, "newpy", "1.0", {"newpy.py": ""}, requires_python=">=4")
    dist(site, "clash-module", "1.0", {"clash.py": "X = 1\n"})
    dist(site, "clash-package", "1.0", {"clash/__init__.py": "X = 2\n"})
    # a shared namespace package, as every nvidia-* wheel ships nvidia/__init__.py: not a clash
    dist(site, "ns-a", "1.0", {"nsp/__init__.py": "", "nsp/a/__init__.py": ""})
    dist(site, "ns-b", "1.0", {"nsp/__init__.py": "", "nsp/b/__init__.py": ""})
    return site


EXPECTED_BROKEN = [
    "app 1.0 requires lib>=2.0, but lib 1.5 is installed",
    "app 1.0 requires missing-dep, which is not installed",
    "clash-module 1.0 and clash-package 1.0 install clash both as a module file and as a "
    "package: the package hides the module",
    "lib2 1.0 [feat] (extra requested by app 1.0) requires featdep>=3, but featdep 2.0 is "
    "installed",
    "newpy 1.0 requires Python >=4, but this interpreter is {python}",
]


@pytest.fixture(params=["oldest", "newest"])
def edge_python(request: pytest.FixtureRequest, interpreters: list[Any]) -> Any:
    return edge_interpreter(interpreters, request.param)


def test_requirement_violations_in_a_site(edge_python: Any, tmp_path: Path) -> None:
    """Missing, wrong version, an extra another package asks for, Requires-Python, shadowing."""
    site = broken_site(tmp_path)
    document, _ = consistency(edge_python.path, tmp_path, ["--path", str(site)], isolated=True)
    version = subprocess.run(
        [str(edge_python.path), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert messages(document) == sorted(m.format(python=version) for m in EXPECTED_BROKEN)
    for result in document["results"]:
        assert result["category"] == "inconsistent-env"
        assert result["hint"]
    wrong = next(r for r in document["results"] if "lib 1.5 is installed" in r["message"])
    assert wrong["target"] == "app"
    assert wrong["details"]["installed"] == "1.5"
    assert "uv pip install 'lib>=2.0'" in wrong["hint"]


def test_clean_site_is_one_pass(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist(site, "app", "1.0", {"app/__init__.py": ""}, requires=["lib>=1.0", "x; extra == 'y'"])
    dist(site, "lib", "1.5", {"lib/__init__.py": ""})
    document, code = consistency(sys.executable, tmp_path, ["--path", str(site)], isolated=True)
    assert code == 0
    [result] = document["results"]
    assert (result["target"], result["status"]) == ("environment", "pass")
    assert result["message"] == "2 distributions, 1 requirements satisfied, no file installed twice"


# -- real environments ---------------------------------------------------------------------------


def uv(uv_bin: str, *args: str) -> None:
    done = subprocess.run([uv_bin, *args], check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"uv {' '.join(args)} failed:\n{done.stderr}"


def new_env(uv_bin: str, python: str | Path, root: Path, *packages: str) -> Path:
    uv(uv_bin, "venv", "--quiet", "--python", str(python), str(root))
    if packages:
        uv(uv_bin, "pip", "install", "--quiet", "--python", str(root / "bin" / "python"), *packages)
    return root / "bin" / "python"


def uv_check(uv_bin: str, python: Path) -> set[tuple[str, str]]:
    """``uv pip check``'s findings as (package, required name)."""
    done = subprocess.run(
        [uv_bin, "pip", "check", "--python", str(python)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = set()
    for line in (done.stdout + done.stderr).splitlines():
        match = re.match(r"The package `([^`]+)` requires `([A-Za-z0-9._-]+)", line.strip())
        if match:
            found.add((match.group(1).lower(), match.group(2).lower()))
    return found


@pytest.mark.slow
def test_pip_check_violations_like_uv_pip_check(
    uv_bin: str, python_for: Any, tmp_path: Path
) -> None:
    """pandas 2.2.3 on Python 3.10, then numpy 1.21.6 forced in and tzdata removed."""
    python = new_env(uv_bin, python_for("3.10").path, tmp_path / "env", "pandas==2.2.3")
    clean, _ = consistency(python, tmp_path)
    assert [r["status"] for r in clean["results"]] == ["pass"]

    uv(uv_bin, "pip", "install", "--quiet", "--no-deps", "--python", str(python), "numpy==1.21.6")
    uv(uv_bin, "pip", "uninstall", "--quiet", "--python", str(python), "tzdata")
    document, code = consistency(python, tmp_path)
    assert code == 1
    found = messages(document)
    assert "pandas 2.2.3 requires numpy>=1.22.4, but numpy 1.21.6 is installed" in found
    assert "pandas 2.2.3 requires tzdata>=2022.7, which is not installed" in found
    ours = {
        (r["target"], re.match(r"[A-Za-z0-9._-]+", r["details"]["requirement"]).group(0).lower())
        for r in document["results"]
    }
    assert ours == uv_check(uv_bin, python)


CONDA_SITE = "lib/python3.11/site-packages"


def conda_record(prefix: Path, name: str, version: str, files: list[str], **extra: Any) -> None:
    """conda-meta/<name>-<version>-<build>.json as conda writes it for a noarch package."""
    build = extra.pop("build", "pyhd8ed1ab_0")
    channel = extra.pop("channel", "https://conda.anaconda.org/conda-forge/noarch")
    paths = []
    for rel in files:
        data = (prefix / rel).read_bytes()
        paths.append(
            {
                "_path": rel.replace("lib/python3.11/", ""),
                "path_type": "hardlink",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_in_bytes": len(data),
            }
        )
    record = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "channel": channel,
        "subdir": "noarch",
        "noarch": "python",
        "depends": ["python >=3.8"],
        "constrains": [],
        "fn": f"{name}-{version}-{build}.conda",
        "url": f"{channel}/{name}-{version}-{build}.conda",
        "requested_spec": name,
        "files": files,
        "paths_data": {"paths_version": 1, "paths": paths},
        "link": {"source": f"/opt/conda/pkgs/{name}-{version}-{build}", "type": 1},
        **extra,
    }
    (prefix / "conda-meta").mkdir(exist_ok=True)
    (prefix / "conda-meta" / f"{name}-{version}-{build}.json").write_text(json.dumps(record))


def adopt_by_conda(prefix: Path, dist_name: str, conda_name: str) -> None:
    """Make an installed distribution conda's: its files in a record, INSTALLER 'conda'."""
    site = prefix / CONDA_SITE
    [info] = site.glob(f"{dist_name}-*.dist-info")
    (info / "INSTALLER").write_text("conda\n")
    files = []
    for line in (info / "RECORD").read_text().splitlines():
        rel = line.split(",")[0]
        if rel and not rel.startswith(".."):
            files.append(f"{CONDA_SITE}/{rel}")
    version = info.name[len(dist_name) + 1 : -len(".dist-info")]
    conda_record(prefix, conda_name, version, sorted(files))


@pytest.mark.slow
def test_conda_environment_with_pip_over_conda(
    uv_bin: str, python_for: Any, tmp_path: Path
) -> None:
    """A conda-layout prefix (records written by this test: no conda-forge here) that uv
    then changes for real: six upgraded over conda's, idna written over a conda package's
    files, tomli (conda's) uninstalled."""
    prefix = tmp_path / "conda"
    python = new_env(
        uv_bin, python_for("3.11").path, prefix, "six==1.16.0", "tomli==2.0.1", "idna==3.7"
    )
    adopt_by_conda(prefix, "six", "six")
    adopt_by_conda(prefix, "tomli", "tomli")
    # a conda package that ships the idna module without pip metadata (as conda-forge's
    # py-opencv ships cv2): conda's files, then pip knows nothing of them
    site = prefix / CONDA_SITE
    [idna_info] = site.glob("idna-*.dist-info")
    shutil.rmtree(idna_info)
    conda_record(
        prefix,
        "py-idna",
        "3.6",
        sorted(f"{CONDA_SITE}/idna/{p.name}" for p in (site / "idna").glob("*.py")),
    )
    clean, _ = consistency(python, tmp_path)
    assert [r["status"] for r in clean["results"]] == ["pass"]
    assert "conda and pip packages apart (3 conda records)" in clean["results"][0]["message"]

    uv(uv_bin, "pip", "install", "--quiet", "--python", str(python), "six==1.17.0", "idna==3.7")
    uv(uv_bin, "pip", "uninstall", "--quiet", "--python", str(python), "tomli")
    conda_record(  # what conda's pip interop writes for a package pip installed
        prefix, "six", "1.17.0", [], build="pypi_0", channel="pypi"
    )
    document, _ = consistency(python, tmp_path)
    by_target = {}
    for result in document["results"]:
        by_target.setdefault(result["target"], []).append(result)
    [six] = by_target["six"]
    assert six["message"].startswith(
        "six 1.17.0 was installed by uv (conda lists it from channel pypi) over conda's "
        "six 1.16.0 (conda-forge)"
    )
    assert "conda install --force-reinstall six" in six["hint"]
    [idna] = by_target["idna"]
    assert idna["message"].startswith("idna 3.7 (installed by uv) overwrote ")
    assert (
        "of conda package py-idna 3.6 (conda-forge), e.g. lib/python3.11/site-packages/idna/"
        in (idna["message"])
    )
    [tomli] = by_target["tomli"]
    assert tomli["message"].startswith(
        "conda package tomli 2.0.1 (conda-forge) is recorded as installed, but its files were "
        "removed"
    )
    assert set(by_target) == {"six", "idna", "tomli"}
    assert document["conda"]["pypi_channel_records"] == ["six"]


def flit_project(root: Path, name: str, body: str) -> Path:
    project = root / name
    (project / "samename").mkdir(parents=True)
    (project / "samename" / "__init__.py").write_text(body)
    (project / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["flit_core>=3.2,<4"]\n'
        'build-backend = "flit_core.buildapi"\n\n'
        f'[project]\nname = "{name}"\nversion = "1.0"\ndescription = "fixture"\n\n'
        '[tool.flit.module]\nname = "samename"\n'
    )
    return project


@pytest.mark.slow
def test_two_projects_shipping_one_module(edge_python: Any, uv_bin: str, tmp_path: Path) -> None:
    """Two local flit projects that both ship the module samename, on the oldest and newest
    interpreters: the second install overwrote the first's file."""
    first = flit_project(tmp_path, "samename-a", "WHO = 'a'\n")
    second = flit_project(tmp_path, "samename-b", "WHO = 'b'\n")
    python = new_env(uv_bin, edge_python.path, tmp_path / "env", str(first))
    clean, _ = consistency(python, tmp_path)
    assert [r["status"] for r in clean["results"]] == ["pass"]
    uv(uv_bin, "pip", "install", "--quiet", "--python", str(python), str(second))
    document, _ = consistency(python, tmp_path)
    [result] = document["results"]
    assert result["target"] == "samename"
    assert result["message"] == (
        "samename-a 1.0 and samename-b 1.0 both install 1 file of samename with different "
        "content (e.g. samename/__init__.py): whichever was installed last overwrote the other's"
    )
    assert result["details"]["distributions"] == ["samename-a 1.0", "samename-b 1.0"]


@pytest.mark.slow
def test_cuda_wheels_for_two_majors_overwrite_each_other(
    uv_bin: str, python_for: Any, tmp_path: Path
) -> None:
    """The cu11 and cu12 runtime wheels share nvidia/cuda_runtime/: headers are overwritten,
    while nvidia/__init__.py, the same empty file in every nvidia-* wheel, is no finding."""
    python = new_env(
        uv_bin,
        python_for("3.11").path,
        tmp_path / "env",
        "nvidia-cuda-runtime-cu12==12.4.127",
        "nvidia-nvtx-cu12==12.4.127",
    )
    clean, _ = consistency(python, tmp_path)
    assert [r["status"] for r in clean["results"]] == ["pass"]
    uv(
        uv_bin,
        "pip",
        "install",
        "--quiet",
        "--python",
        str(python),
        "nvidia-cuda-runtime-cu11==11.8.89",
    )
    document, _ = consistency(python, tmp_path)
    [result] = document["results"]
    assert result["target"] == "nvidia"
    assert result["message"].startswith(
        "nvidia-cuda-runtime-cu11 11.8.89 and nvidia-cuda-runtime-cu12 12.4.127 both install "
    )
    assert "nvidia/cuda_runtime/include/" in result["message"]
