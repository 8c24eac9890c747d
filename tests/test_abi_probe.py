"""abi_probe: static findings on gcc-built fake environments and on real PyPI environments."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _elf_fixtures import (
    PROBES,
    build_broken_site,
    c_library,
    extension_module,
    interpreter_suffix,
    requires_cc,
    run_probe,
    torch_cpu_environment,
)

from compat_matrix.build import pythons

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF/glibc only")


@pytest.fixture(scope="module")
def probe_pythons(interpreters: list[pythons.Interpreter]) -> list[str]:
    """This interpreter plus the oldest and newest CPython >= 3.8 on the machine."""
    usable = sorted((i for i in interpreters if i.supported), key=lambda i: i.sort_key)
    out = [sys.executable]
    for i in (usable[:1] + usable[-1:]) if usable else []:
        if os.path.realpath(i.path) not in {os.path.realpath(p) for p in out}:
            out.append(str(i.path))
    return out


def by_file(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    results = doc["results"]
    assert isinstance(results, list)
    return {os.path.basename(r["target"]): r for r in results if r["target"] != "environment"}


@requires_cc
def test_finds_every_planted_failure_under_old_and_new_pythons(
    tmp_path: Path, probe_pythons: list[str]
) -> None:
    for n, python in enumerate(probe_pythons):
        root = tmp_path / f"env{n}"
        site, expected = build_broken_site(root, python)
        doc, _ = run_probe(
            python, "abi_probe", ["--prefix", str(root), "--site", str(site)], tmp_path
        )
        got = by_file(doc)
        assert {k: v["category"] for k, v in got.items()} == expected, python
        for name, res in got.items():
            assert res["probe"] == "abi"
            assert res["status"] == ("skip" if expected[name] == "no-gpu" else "fail")
            assert res["message"] and res["hint"], res
            assert set(res) >= {
                "probe",
                "target",
                "status",
                "category",
                "message",
                "hint",
                "duration_s",
                "details",
            }
        summary = doc["results"][-1]
        assert summary["target"] == "environment" and summary["status"] == "fail"
        assert doc["probe"] == "abi"
        assert set(doc["python"]) >= {
            "version",
            "implementation",
            "abi",
            "free_threaded",
            "executable",
        }


@requires_cc
def test_messages_name_the_cause_and_the_remedy(tmp_path: Path) -> None:
    site, _ = build_broken_site(tmp_path, sys.executable)
    doc, _ = run_probe(
        sys.executable, "abi_probe", ["--prefix", str(tmp_path), "--site", str(site)], tmp_path
    )
    got = {k.split(".")[0]: v for k, v in by_file(doc).items()}
    assert (
        "PyInit_noinit" in got["noinit"]["message"] and "PyInit_renamed" in got["noinit"]["message"]
    )
    assert "cpython-37" in got["oldtag"]["message"]
    assert "compat_matrix_missing_fn" in got["undef"]["message"]
    needs = got["needs"]
    assert needs["message"].startswith("libgone.so: cannot open shared object file")
    assert any("pkg.libs" in s and "RUNPATH" in s for s in needs["details"]["searched"])
    vers = got["vers"]
    assert "version `V2' not found" in vers["message"]
    assert vers["details"]["newest_available"] == "V1"
    assert "pkg 1.0" in vers["hint"]
    assert "numpy<2" in got["np1"]["hint"] and "pkg 1.0" in got["np1"]["hint"]
    assert got["np23"]["details"]["numpy_target"] == "2.3"
    assert "numpy>=2.3" in got["np23"]["hint"]
    assert "np125" not in got  # NumPy 2 headers targeting 1.25 run on numpy 2.2.6


@requires_cc
def test_clean_environment_is_one_passing_result(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    lib = c_library(site / "pkg.libs" / "libdep.so", "int dep(void){return 1;}")
    suffix = interpreter_suffix(sys.executable)[0]
    extension_module(
        site / "pkg",
        "mod",
        suffix,
        body="extern int dep(void);\nint m(void){return dep();}\n",
        link=[lib],
        rpath="$ORIGIN/../pkg.libs",
    )
    doc, _ = run_probe(
        sys.executable, "abi_probe", ["--prefix", str(tmp_path), "--site", str(site)], tmp_path
    )
    results = doc["results"]
    assert isinstance(results, list)
    assert [(r["target"], r["status"]) for r in results] == [("environment", "pass")]
    assert results[0]["details"]["files"] == 2


@requires_cc
def test_torch_preloaded_nvidia_libraries_count_as_loaded(tmp_path: Path) -> None:
    """torch's _preload_cuda_deps loads nvidia/*/lib/* before its extensions: model it."""
    site = tmp_path / "site-packages"
    cudart = c_library(
        site / "nvidia" / "cuda_runtime" / "lib" / "libcudart.so.12",
        "int cudaFree(void*p){return 0;}",
    )
    suffix = interpreter_suffix(sys.executable)[0]
    extension_module(site / "torch", "_C", suffix, link=[cudart])  # no RUNPATH to nvidia/
    extension_module(site / "other", "_ext", suffix, link=[cudart])
    doc, _ = run_probe(
        sys.executable, "abi_probe", ["--prefix", str(tmp_path), "--site", str(site)], tmp_path
    )
    got = by_file(doc)
    assert list(got) == [f"_ext{suffix}"]  # only the package that torch does not preload for
    assert got[f"_ext{suffix}"]["category"] == "missing-library"
    assert "nvidia-cuda-runtime-cu12" in got[f"_ext{suffix}"]["hint"]


# --- real environments from PyPI ----------------------------------------------------------------


def _uv_env(uv: str, python: str, path: Path, reqs: list[str]) -> Path:
    subprocess.run([uv, "venv", "-q", "-p", python, str(path)], check=True, timeout=300)
    py = path / "bin" / "python"
    subprocess.run([uv, "pip", "install", "-q", "-p", str(py), *reqs], check=True, timeout=900)
    return py


@pytest.mark.slow
def test_pandas_built_for_numpy1_under_numpy2_without_importing(
    tmp_path: Path, uv_bin: str, python_for: Any
) -> None:
    py311 = python_for("3.11")
    py = _uv_env(uv_bin, str(py311.path), tmp_path / "env", ["pandas==2.0.3", "numpy==2.2.6"])
    doc, stderr = run_probe(str(py), "abi_probe", [], tmp_path, extra_flags=["-X", "importtime"])
    imported = {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("numpy", "pandas")}
    results = doc["results"]
    assert isinstance(results, list)
    numpy_fails = [
        r for r in results if r["category"] == "abi-numpy" and r["target"] != "environment"
    ]
    assert len(numpy_fails) >= 10
    assert all(r["target"].startswith("pandas/") for r in numpy_fails)
    assert all(r["status"] == "fail" for r in numpy_fails)
    assert "pandas 2.0.3" in numpy_fails[0]["hint"] and "numpy<2" in numpy_fails[0]["hint"]
    fix = numpy_fails[0]["details"]["fix"]  # machine-readable, for checking before printing
    assert fix["requirements"] == ["numpy<2"]
    assert fix["alternatives"][0]["requirements"] == ["pandas>=2.2.2"]
    assert "2.2.6" in numpy_fails[0]["message"]
    assert {r["category"] for r in results if r["status"] == "fail"} == {"abi-numpy"}


def _readelf(args: list[str], path: str) -> str:
    readelf = shutil.which("readelf")
    assert readelf is not None
    return subprocess.run(
        [readelf, *args, path], capture_output=True, text=True, timeout=120, check=True
    ).stdout


def readelf_deps(path: str) -> tuple[list[str], set[tuple[str, str]]]:
    """(DT_NEEDED in order, {(file, version)} needs) as ``readelf -d -W`` / ``-V -W`` print them."""
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", _readelf(["-d", "-W"], path))
    ver = _readelf(["-V", "-W"], path)
    needs: set[tuple[str, str]] = set()
    current = ""
    if "Version needs section" in ver:
        for line in ver.split("Version needs section", 1)[1].splitlines():
            m = re.search(r"File: (\S+)", line)
            if m:
                current = m.group(1)
            m = re.search(r"Name: (\S+)\s+Flags", line)
            if m:
                needs.add((current, m.group(1)))
    return needed, needs


def _elf_module() -> Any:
    sys.path.insert(0, str(PROBES))
    import _elf

    return _elf


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs binutils readelf")
def test_real_environment_parity_with_readelf_and_clean_verdict(
    tmp_path: Path, uv_bin: str
) -> None:
    py = _uv_env(uv_bin, sys.executable, tmp_path / "env", ["numpy", "pandas", "scipy"])
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    _elf = _elf_module()
    files = _elf.Environment(str(tmp_path / "env"), [site], str(py)).scan()
    assert len(files) > 100
    needed_total = 0
    for f in files:
        needed, needs = readelf_deps(f.path)
        with _elf.ElfFile(f.path) as elf:
            assert elf.needed == needed, f.rel
            assert {(a, b) for a, b, _w, _i in elf.version_needs()} == needs, f.rel
        needed_total += len(needed)
    assert needed_total > 0
    doc, _ = run_probe(str(py), "abi_probe", [], tmp_path)
    results = doc["results"]
    assert isinstance(results, list)
    assert [(r["target"], r["status"]) for r in results] == [("environment", "pass")], results[:3]
    native, _ = run_probe(str(py), "native_probe", [], tmp_path)
    nres = native["results"]
    assert isinstance(nres, list)
    assert [(r["target"], r["status"]) for r in nres] == [("environment", "pass")], nres[:3]


# --- the torch CPU environment (the benchmark's subject: 35 ELF files, 489 MiB) --------------


@pytest.fixture(scope="module")
def torch_env(
    tmp_path_factory: pytest.TempPathFactory, uv_bin: str, python_for: Any
) -> tuple[Path, Path]:
    """(python, site-packages) of a Python 3.11 venv with torch 2.13.0+cpu and numpy, built once."""
    py311 = python_for("3.11")
    return torch_cpu_environment(tmp_path_factory.mktemp("torch"), uv_bin, str(py311.path))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs binutils readelf")
def test_torch_environment_parity_with_readelf(torch_env: tuple[Path, Path]) -> None:
    """DT_NEEDED (in order) and version needs of every torch-env ELF file equal readelf's."""
    py, site = torch_env
    dists = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert "torch" in dists and not {d for d in dists if d.startswith("nvidia")}  # the CPU build
    _elf = _elf_module()
    files = _elf.Environment(str(py.parent.parent), [str(site)], str(py)).scan()
    assert len(files) >= 30
    needed_total = needs_total = 0
    for f in files:
        needed, needs = readelf_deps(f.path)
        with _elf.ElfFile(f.path) as elf:
            assert elf.needed == needed, f.rel
            assert {(a, b) for a, b, _w, _i in elf.version_needs()} == needs, f.rel
        needed_total += len(needed)
        needs_total += len(needs)
    assert needed_total >= 100 and needs_total >= 200


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils nm")
def test_torch_symbol_lookups_agree_with_nm(torch_env: tuple[Path, Path]) -> None:
    """The hash-table lookups that resolve libtorch_python's 5k references in libtorch_cpu's 75k
    exports give the answer ``nm -D --defined-only`` gives, without reading every export."""
    _py, site = torch_env
    _elf = _elf_module()
    lib = site / "torch" / "lib"
    nm = shutil.which("nm")
    assert nm is not None
    out = subprocess.run(
        [nm, "-D", "--defined-only", str(lib / "libtorch_cpu.so")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    defined = {line.split()[-1].split("@")[0].encode() for line in out.splitlines() if line}
    with _elf.ElfFile(str(lib / "libtorch_python.so")) as py_lib:
        wanted = py_lib.undefined_names()
    with _elf.ElfFile(str(lib / "libtorch_cpu.so")) as cpu:
        assert cpu.symbol_count() > 70000
        asked = frozenset(wanted | {b"compat_matrix_not_there", b"_ZN3c1010not_there_Ev"})
        got = cpu.defines(asked)
        assert cpu._export_keys is None  # answered from the hash table, not by reading them all
        assert got == asked & defined
        assert len(got) > 4000


@pytest.mark.slow
def test_torch_environment_passes_the_abi_probe(
    torch_env: tuple[Path, Path], tmp_path: Path
) -> None:
    """RUNPATH $ORIGIN, libgomp, libstdc++ and 5k cross-library symbols resolve; libtorch_python's
    NumPy fingerprint reads as NumPy 2 headers targeting 1.20, which the installed numpy meets."""
    py, site = torch_env
    doc, _ = run_probe(str(py), "abi_probe", [], tmp_path)
    results = doc["results"]
    assert [(r["target"], r["status"]) for r in results] == [("environment", "pass")], results[:3]
    details = results[0]["details"]
    assert details["files"] >= 30 and details["extensions"] >= 15
    assert details["numpy"].startswith("2.")
    _elf = _elf_module()
    build = _elf.ElfFile(str(site / "torch" / "lib" / "libtorch_python.so")).numpy_build()
    assert build is not None and (build.headers, build.target) == (2, (1, 20))
    resolver = _elf.Resolver(str(py))
    c_ext = next((site / "torch").glob("_C.cpython-311-*.so"))
    load = resolver.dlopen(str(c_ext))
    assert all(e.provider is not None for e in load.edges), [e.name for e in load.edges]
    by_name: dict[str, Any] = {}
    for e in load.edges:
        by_name.setdefault(e.name, e)  # the edge that mapped it, not a later "already loaded"
    assert by_name["libtorch_cpu.so"].how.startswith("RUNPATH of ")
    assert by_name["libtorch_cpu.so"].provider.path.startswith(str(site / "torch" / "lib"))


def test_a_bad_command_line_is_still_one_json_document(tmp_path: Path) -> None:
    doc, _ = run_probe(sys.executable, "abi_probe", ["--no-such-option"], tmp_path)
    assert [(r["target"], r["status"], r["category"]) for r in doc["results"]] == [
        ("environment", "error", "probe-error")
    ]
    assert "usage" in doc["results"][0]["message"]
