"""probes/import_probe.py against real failures: gcc-built broken extensions and PyPI packages.

The loader produces every error string here; the classification tests at the end feed the
published error strings (anchors-elf-abi.md §4, anchors-ml-matrices.md §7) through the same
classifier with a real (synthetic) site directory behind it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _native_fixtures import (
    PROBES,
    build_failure_modules,
    build_numpy2_env,
    by_target,
    describe_python,
    edge_interpreter,
    load_probe_module,
    make_dist,
    probe_process,
    require_gcc,
    run_probe,
)

RESULT_KEYS = {"probe", "target", "status", "category", "message", "hint", "duration_s", "details"}


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every gcc-built failure mode imported by one probe run (as the harness runs it)."""
    require_gcc()
    root = tmp_path_factory.mktemp("native")
    names = build_failure_modules(describe_python(sys.executable), root)
    targets = [names[k] for k in ("good", "noinit", "undefined", "crash", "needslib")]
    targets += [names["versioned"], names["foreign"], "compat_matrix_not_installed", "json"]
    document, code = run_probe(
        sys.executable,
        "import_probe",
        ["--path", str(root / "site"), *targets],
        tmp_path_factory.mktemp("cwd"),
    )
    return {"document": document, "code": code, "names": names, "targets": targets, "root": root}


def test_document_follows_the_contract(native: dict[str, Any]) -> None:
    document = native["document"]
    assert native["code"] == 1  # some targets failed
    python = document["python"]
    assert python["version"] == ".".join(map(str, sys.version_info[:3]))
    assert python["abi"] == sysconfig.get_config_var("SOABI")
    assert python["implementation"] == "cpython"
    assert python["free_threaded"] is bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert [r["target"] for r in document["results"]] == native["targets"]
    for result in document["results"]:
        assert set(result) == RESULT_KEYS
        assert result["probe"] == "import"
        assert result["status"] in {"pass", "fail"}
        assert isinstance(result["duration_s"], float)
        if result["status"] == "fail":
            assert result["category"]
            assert result["message"]
            assert result["hint"]


def test_good_extension_passes_with_its_version(native: dict[str, Any]) -> None:
    result = by_target(native["document"])[native["names"]["good"]]
    assert result["status"] == "pass"
    assert result["category"] is None
    assert result["details"]["version"] == "1.2.3"
    assert 0 <= result["details"]["import_s"] < 30
    assert by_target(native["document"])["json"]["status"] == "pass"


def test_missing_init_function_is_abi_python(native: dict[str, Any]) -> None:
    module = native["names"]["noinit"]
    result = by_target(native["document"])[module]
    assert (result["status"], result["category"]) == ("fail", "abi-python")
    assert f"PyInit_{module}" in result["message"]
    assert result["details"]["file"].endswith(module + sysconfig.get_config_var("EXT_SUFFIX"))
    running = "CPython {}.{}".format(*sys.version_info[:2])
    assert running in result["hint"]


def test_undefined_symbol_names_symbol_and_file(native: dict[str, Any]) -> None:
    module = native["names"]["undefined"]
    result = by_target(native["document"])[module]
    assert (result["status"], result["category"]) == ("fail", "undefined-symbol")
    assert result["details"]["symbol"] == "compat_matrix_missing_function"
    assert Path(result["details"]["file"]).name.startswith(module + ".")
    assert "compat_matrix_missing_function" in result["hint"]


def test_missing_library_names_library_and_requester(native: dict[str, Any]) -> None:
    module = native["names"]["needslib"]
    result = by_target(native["document"])[module]
    assert (result["status"], result["category"]) == ("fail", "missing-library")
    assert result["details"]["library"] == "libcompatfoo.so.1"
    assert Path(result["details"]["requested_by"]).name.startswith(module + ".")
    assert "libcompatfoo.so.1" in result["hint"]
    assert "cannot open shared object file" in result["message"]


def test_missing_version_node_is_symbol_version(native: dict[str, Any]) -> None:
    module = native["names"]["versioned"]
    result = by_target(native["document"])[module]
    assert (result["status"], result["category"]) == ("fail", "symbol-version")
    details = result["details"]
    assert details["version_node"] == "VER_1"
    assert Path(details["library"]).name == "libcompatver.so.1"
    assert Path(details["required_by"]).name.startswith(module + ".")
    assert "VER_1" in result["hint"]
    assert "libcompatver.so.1" in result["hint"]


def test_segfault_is_a_crash_and_does_not_hide_the_others(native: dict[str, Any]) -> None:
    module = native["names"]["crash"]
    result = by_target(native["document"])[module]
    assert (result["status"], result["category"]) == ("fail", "crash")
    assert result["details"]["signal"] == "SIGSEGV"
    assert "SIGSEGV" in result["message"]
    assert module in result["details"]["imports_started_last"]
    assert "Segmentation fault" in result["details"]["stderr_tail"]  # faulthandler's report
    # the targets imported alongside it still have their own verdicts
    assert by_target(native["document"])[native["names"]["good"]]["status"] == "pass"


def test_extension_for_another_python_is_abi_python(native: dict[str, Any]) -> None:
    tag = native["names"]["foreign_tag"]  # e.g. cpython-39
    result = by_target(native["document"])[native["names"]["foreign"]]
    assert (result["status"], result["category"]) == ("fail", "abi-python")
    assert tag in result["message"]
    built_for = f"CPython {tag[len('cpython-')]}.{tag[len('cpython-') + 1 :]}"
    assert result["details"]["built_for"] == built_for
    assert built_for in result["hint"]
    assert "CPython {}.{}".format(*sys.version_info[:2]) in result["hint"]


def test_module_not_installed_hint(native: dict[str, Any]) -> None:
    result = by_target(native["document"])["compat_matrix_not_installed"]
    assert (result["status"], result["category"]) == ("fail", "import-error")
    assert "compat_matrix_not_installed is not installed" in result["hint"]
    assert result["details"]["exception"].startswith("ModuleNotFoundError")


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie counts: nobody may reap orphans here)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z":
            return True
        time.sleep(0.1)
    return False


def test_hanging_import_times_out_and_its_process_group_is_killed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    pid_file = tmp_path / "grandchild.pid"
    (site / "cm_sleeper.py").write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(600)\n"
    )
    (site / "cm_quick.py").write_text("VALUE = 1\n")
    start = time.monotonic()
    document, code = run_probe(
        sys.executable,
        "import_probe",
        ["--timeout", "2", "--path", str(site), "cm_sleeper", "cm_quick"],
        tmp_path,
    )
    elapsed = time.monotonic() - start
    pid = int(pid_file.read_text())
    try:
        assert _gone(pid), "the import's own child process survived the timeout"
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
    assert code == 1
    assert elapsed < 30
    result = by_target(document)["cm_sleeper"]
    assert (result["status"], result["category"]) == ("fail", "timeout")
    assert "within 2 s" in result["message"]
    assert "cm_sleeper.py" in result["details"]["stack_at_deadline"]
    assert by_target(document)["cm_quick"]["status"] == "pass"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_import_children_die_with_a_killed_probe(tmp_path: Path) -> None:
    """The harness SIGKILLs a probe's process group at its deadline: no import may outlive it."""
    site = tmp_path / "site"
    site.mkdir()
    pid_file = tmp_path / "import-child.pid"
    (site / "cm_hangs.py").write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n"
    )
    probe = subprocess.Popen(
        [sys.executable, str(PROBES / "import_probe.py"), "--path", str(site), "cm_hangs"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
    finally:
        os.killpg(probe.pid, signal.SIGKILL)
        probe.wait(timeout=30)
    try:
        assert _gone(child), "the import child outlived the killed probe"
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_cwd_and_probe_directory_cannot_shadow_modules(tmp_path: Path) -> None:
    (tmp_path / "json.py").write_text("raise RuntimeError('shadowed by the cwd')\n")
    document, _ = run_probe(sys.executable, "import_probe", ["json", "_probelib"], tmp_path)
    results = by_target(document)
    assert results["json"]["status"] == "pass"
    # the probe's own helper module is not on the child's path either
    assert results["_probelib"]["category"] == "import-error"


def test_noisy_and_exiting_imports_keep_one_document(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "cm_noisy.py").write_text(
        "print('{not json'); import sys; print('x', file=sys.stderr)\n"
    )
    (site / "cm_exits.py").write_text("import os\nos._exit(3)\n")
    (site / "cm_needsdep.py").write_text("import compat_matrix_absent_dependency\n")
    document, _ = run_probe(
        sys.executable,
        "import_probe",
        ["--path", str(site), "cm_noisy", "cm_exits", "cm_needsdep"],
        tmp_path,
    )
    results = by_target(document)
    assert results["cm_noisy"]["status"] == "pass"
    exits = results["cm_exits"]
    assert (exits["status"], exits["category"]) == ("fail", "import-error")
    assert "status 3" in exits["message"]
    dep = results["cm_needsdep"]
    assert dep["category"] == "import-error"
    assert dep["details"]["missing_module"] == "compat_matrix_absent_dependency"
    assert "imports compat_matrix_absent_dependency, which is not installed" in dep["hint"]


def test_usage_error_is_an_error_document(tmp_path: Path) -> None:
    document, code = run_probe(sys.executable, "import_probe", ["--timeout", "0", "json"], tmp_path)
    assert code == 2
    [result] = document["results"]
    assert (result["status"], result["category"]) == ("error", "probe-error")
    assert "--timeout" in result["message"]


@pytest.fixture(params=["oldest", "newest"])
def edge_python(request: pytest.FixtureRequest, interpreters: list[Any]) -> str:
    """The oldest and newest CPython >= 3.8 on this machine (the probes' whole range)."""
    return str(edge_interpreter(interpreters, request.param).path)


def test_probe_runs_under_oldest_and_newest_python(edge_python: str, tmp_path: Path) -> None:
    require_gcc()
    target = describe_python(edge_python)
    names = build_failure_modules(target, tmp_path / "native")
    modes = ("good", "noinit", "undefined", "crash", "needslib", "versioned", "foreign")
    document, code = run_probe(
        edge_python,
        "import_probe",
        ["--path", str(tmp_path / "native" / "site"), *(names[m] for m in modes)],
        tmp_path,
        python_args=("-W", "error"),  # no deprecated API on the newest Python either
    )
    assert code == 1
    assert document["python"]["abi"] == target.soabi
    categories = {r["target"]: r["category"] for r in document["results"]}
    assert categories == {
        names["good"]: None,
        names["noinit"]: "abi-python",
        names["undefined"]: "undefined-symbol",
        names["crash"]: "crash",
        names["needslib"]: "missing-library",
        names["versioned"]: "symbol-version",
        names["foreign"]: "abi-python",
    }
    assert by_target(document)[names["good"]]["details"]["version"] == "1.2.3"


# -- classification of published error strings -----------------------------------------------

ext = sysconfig.get_config_var("EXT_SUFFIX")


@pytest.fixture(scope="module")
def probe() -> ModuleType:
    return load_probe_module("import_probe")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real site directory with the distributions the error strings talk about."""
    root = tmp_path_factory.mktemp("site")
    make_dist(
        root,
        "pandas",
        "2.0.3",
        {"pandas/__init__.py": "", f"pandas/_libs/interval{ext}": ""},
        top_level=["pandas"],
    )
    make_dist(root, "numpy", "2.2.6", {"numpy/__init__.py": "", "numpy.libs/libopenblas.so": ""})
    make_dist(root, "scipy", "1.11.4", {"scipy/__init__.py": "", f"scipy/linalg/_fblas{ext}": ""})
    make_dist(root, "open3d", "0.17.0", {"open3d/__init__.py": "", f"open3d/cpu/pybind{ext}": ""})
    make_dist(root, "torch", "2.1.0", {"torch/__init__.py": "", f"torch/_C{ext}": ""})
    make_dist(root, "fpsample", "0.3.0", {"fpsample/__init__.py": "", f"fpsample/_core{ext}": ""})
    return root


def classify(
    probe: ModuleType,
    site: Path,
    target: str,
    message: str,
    *,
    kind: str = "ImportError",
    numpy: str | None = "2.2.6",
    stderr: str = "",
    traceback: str = "",
    path: str | None = None,
    files: list[str] | None = None,
) -> dict[str, Any]:
    index = probe.lib.DistributionIndex([str(site)])
    python = {"version": "3.11.7", "abi": "cpython-311-x86_64-linux-gnu", "free_threaded": False}
    report: dict[str, Any] = {
        "ok": False,
        "import_s": 0.1,
        "exception": [
            {"type": kind, "message": message, "files": files or [], "path": path, "name": None}
        ],
        "traceback": traceback or f"{kind}: {message}",
    }
    if numpy:
        report["numpy_version"] = numpy
    outcome = {
        "target": target,
        "returncode": 0,
        "duration_s": 0.2,
        "report": report,
        "stderr": stderr,
    }
    result: dict[str, Any] = probe.classify(outcome, probe.Context(index, python))
    return result


def test_numpy1_extension_under_numpy2_dtype_size(probe: ModuleType, site: Path) -> None:
    # pandas 2.0.3 + numpy 2.2.6, as the loader reports it (header 96 = NumPy 1, runtime 88)
    result = classify(
        probe,
        site,
        "pandas",
        "numpy.dtype size changed, may indicate binary incompatibility. "
        "Expected 96 from C header, got 88 from PyObject",
        kind="ValueError",
        traceback='  File "pandas/_libs/interval.pyx", line 1, in init pandas._libs.interval\n',
        files=[str(site / "pandas" / "__init__.py")],
    )
    assert result["category"] == "abi-numpy"
    assert result["hint"].startswith(
        "pandas 2.0.3 was built against NumPy 1.x but NumPy 2.2.6 is installed: pin numpy<2"
    )
    assert "pandas>=2.2.2" in result["hint"]
    assert result["details"]["built_against_numpy"] == "1.x"


def test_numpy2_extension_under_numpy1(probe: ModuleType, site: Path) -> None:
    result = classify(
        probe,
        site,
        "scipy.linalg",
        "numpy.dtype size changed, may indicate binary incompatibility. "
        "Expected 88 from C header, got 96 from PyObject",
        kind="ValueError",
        numpy="1.26.4",
        path=str(site / "scipy" / "linalg" / f"_fblas{ext}"),
    )
    assert result["category"] == "abi-numpy"
    assert (
        "scipy 1.11.4 was built against NumPy 2.x but NumPy 1.26.4 is installed" in result["hint"]
    )
    assert "numpy>=2" in result["hint"]


def test_numpy1_banner_and_array_api(probe: ModuleType, site: Path) -> None:
    banner = (
        "A module that was compiled using NumPy 1.x cannot be run in\n"
        "NumPy 2.2.6 as it may crash. To support both 1.x and 2.x\n"
        'Traceback (most recent call last):  File "%s", line 1, in <module>\n'
        "AttributeError: _ARRAY_API not found\n" % (site / "pandas" / "__init__.py")
    )
    result = classify(
        probe, site, "pandas", "numpy.core.multiarray failed to import", stderr=banner
    )
    assert result["category"] == "abi-numpy"
    assert "pin numpy<2" in result["hint"]
    assert result["hint"].startswith("pandas 2.0.3")


def test_numpy_that_cannot_load_is_not_an_abi_mismatch(probe: ModuleType, site: Path) -> None:
    # import_array() prints NumPy's own failure and raises the generic message
    stderr = (
        "ImportError: libopenblas64_p-r0-0cf96a72.3.23.dev.so: cannot open shared object "
        "file: No such file or directory\n"
    )
    result = classify(
        probe, site, "pandas", "numpy.core.multiarray failed to import", stderr=stderr
    )
    assert result["category"] == "missing-library"
    assert result["details"]["library"] == "libopenblas64_p-r0-0cf96a72.3.23.dev.so"


def test_numpy_abi_and_api_versions(probe: ModuleType, site: Path) -> None:
    abi = classify(
        probe,
        site,
        "scipy",
        "module compiled against ABI version 0x2000000 but this version of numpy is 0x1000009",
        kind="RuntimeError",
        numpy="1.26.4",
    )
    assert abi["category"] == "abi-numpy"
    assert "built against NumPy 2.x" in abi["hint"]
    api = classify(
        probe,
        site,
        "scipy",
        "module was compiled against NumPy C-API version 0x12 (NumPy 2.0) but the running "
        "NumPy has C-API version 0x11. Check the section C-API incompatibility",
        kind="RuntimeError",
        numpy="1.25.2",
    )
    assert api["category"] == "abi-numpy"
    assert "NumPy >= 2.0" in api["hint"]
    assert "numpy>=2.0" in api["hint"]


def test_imported_but_numpy_support_broken(probe: ModuleType, site: Path) -> None:
    outcome = {
        "target": "torch",
        "returncode": 0,
        "duration_s": 1.0,
        "stderr": "",
        "report": {
            "ok": True,
            "import_s": 0.9,
            "version": "2.1.0",
            "file": str(site / "torch" / "__init__.py"),
            "numpy_version": "2.2.6",
            "warnings": ["UserWarning: Failed to initialize NumPy: _ARRAY_API not found"],
        },
    }
    python = {"version": "3.11.7", "abi": "cpython-311-x86_64-linux-gnu"}
    result = probe.classify(
        outcome, probe.Context(probe.lib.DistributionIndex([str(site)]), python)
    )
    assert (result["status"], result["category"]) == ("fail", "abi-numpy")
    assert "torch 2.1.0 was built against NumPy 1.x" in result["hint"]


def test_glibcxx_too_old(probe: ModuleType, site: Path) -> None:
    requester = site / "open3d" / "cpu" / f"pybind{ext}"
    result = classify(
        probe,
        site,
        "open3d",
        "/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.30' not found "
        f"(required by {requester})",
    )
    assert result["category"] == "symbol-version"
    assert result["details"]["version_node"] == "GLIBCXX_3.4.30"
    assert result["details"]["library"] == "/lib/x86_64-linux-gnu/libstdc++.so.6"
    assert result["details"]["required_by"] == str(requester)
    assert "open3d 0.17.0" in result["hint"]
    assert "GCC >= 12.1" in result["hint"]
    assert "libstdcxx-ng" in result["hint"]


def test_glibc_too_old(probe: ModuleType, site: Path) -> None:
    result = classify(
        probe,
        site,
        "torch",
        f"/lib64/libc.so.6: version `GLIBC_2.99' not found (required by {site}/torch/_C{ext})",
    )
    assert result["category"] == "symbol-version"
    assert "needs glibc >= 2.99" in result["hint"]
    assert "torch 2.1.0" in result["hint"]


def test_undefined_torch_symbol(probe: ModuleType, site: Path) -> None:
    so = site / "fpsample" / f"_core{ext}"
    result = classify(
        probe,
        site,
        "fpsample",
        f"{so}: undefined symbol: _ZNK3c106SymInt22maybe_as_int_slow_pathEv",
    )
    assert result["category"] == "undefined-symbol"
    assert result["details"]["symbol"] == "_ZNK3c106SymInt22maybe_as_int_slow_pathEv"
    assert result["details"]["file"] == str(so)
    assert "fpsample 0.3.0" in result["hint"]
    assert "different torch" in result["hint"]


def test_missing_cuda_runtime(probe: ModuleType, site: Path) -> None:
    result = classify(
        probe,
        site,
        "torch",
        "libcudart.so.12: cannot open shared object file: No such file or directory",
        kind="OSError",
        files=[str(site / "torch" / "__init__.py")],
    )
    assert result["category"] == "missing-library"
    assert result["details"]["library"] == "libcudart.so.12"
    assert "nvidia-cuda-runtime-cu12" in result["hint"]
    assert "torch 2.1.0" in result["hint"]


def test_unknown_exception_is_import_error_with_the_distribution(
    probe: ModuleType, site: Path
) -> None:
    result = classify(
        probe,
        site,
        "pandas",
        "cannot import name 'foo' from 'numpy'",
        files=[str(site / "pandas" / "__init__.py")],
    )
    assert result["category"] == "import-error"
    assert "pandas 2.0.3" in result["hint"]
    assert result["message"] == "ImportError: cannot import name 'foo' from 'numpy'"


# -- a real broken environment from PyPI -----------------------------------------------------


@pytest.fixture(scope="session")
def numpy2_env(tmp_path_factory: pytest.TempPathFactory, uv_bin: str, python_for: Any) -> Path:
    return build_numpy2_env(tmp_path_factory, uv_bin, python_for)


@pytest.mark.slow
def test_numpy1_builds_under_numpy_2_are_abi_numpy(numpy2_env: Path, tmp_path: Path) -> None:
    python = str(numpy2_env / "bin" / "python")
    targets = ["pandas", "numpy", "dateutil", "matplotlib"]
    document, code = run_probe(python, "import_probe", targets, tmp_path)
    assert code == 1
    results = by_target(document)
    pandas = results["pandas"]
    assert (pandas["status"], pandas["category"]) == ("fail", "abi-numpy")
    assert "numpy<2" in pandas["hint"]
    assert "pandas 2.0.3" in pandas["hint"]
    assert "NumPy 2.2.6" in pandas["hint"]
    assert pandas["details"]["distribution_version"] == "2.0.3"
    numpy = results["numpy"]
    assert numpy["status"] == "pass"
    assert numpy["details"]["version"] == "2.2.6"
    assert numpy["details"]["distribution"] == "numpy"
    assert results["dateutil"]["details"]["distribution"] == "python-dateutil"
    # NumPy's own check: "compiled using NumPy 1.x" on stderr, "multiarray failed" raised
    matplotlib = results["matplotlib"]
    assert (matplotlib["status"], matplotlib["category"]) == ("fail", "abi-numpy")
    assert matplotlib["hint"].startswith(
        "matplotlib 3.8.0 was built against NumPy 1.x but NumPy 2.2.6 is installed: pin numpy<2"
    )
    assert "matplotlib>=3.8.4" in matplotlib["hint"]
    assert "_ARRAY_API not found" in matplotlib["details"]["evidence"]


@pytest.mark.parametrize("module", ["environment", "_probelib", "_import_child"])
def test_a_module_named_like_a_probe_file_is_the_users_own(module: str, tmp_path: Path) -> None:
    """The child is a file in probes/, whose folder a script gets first on sys.path: dropped, so
    probes/environment.py never stands in for an installed `environment` module (one found
    after sys.path[0], as site-packages and PYTHONPATH are)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{module}.py").write_text("__version__ = '7.7.7'\n", "utf-8")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = probe_process(
        sys.executable, "import_probe", [module], cwd, env={"PYTHONPATH": str(site)}
    )
    result = by_target(json.loads(done.stdout))[module]
    assert done.returncode == 0, result
    assert result["details"]["version"] == "7.7.7"


def test_a_module_python_removed_from_the_stdlib_is_named_as_such(
    tmp_path: Path, python_for: Any
) -> None:
    """`import imp` on 3.12 is not a missing dependency: the hint says Python removed it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "cm_oldstyle.py").write_text("import imp\n")
    (site / "cm_undeclared.py").write_text("import compat_matrix_absent_dependency\n")
    targets = ["--path", str(site), "cm_oldstyle", "cm_undeclared"]
    new = by_target(run_probe(str(python_for("3.12").path), "import_probe", targets, tmp_path)[0])
    removed = new["cm_oldstyle"]
    assert (removed["status"], removed["category"]) == ("fail", "import-error")
    assert removed["details"]["removed_from_stdlib"] == "3.12"
    assert "Python 3.12 removed from the standard library: use importlib" in removed["hint"]
    assert "not installed" not in removed["hint"]
    # An ordinary missing module keeps the undeclared-dependency hint.
    assert "which is not installed" in new["cm_undeclared"]["hint"]
    old = by_target(run_probe(str(python_for("3.11").path), "import_probe", targets, tmp_path)[0])
    assert old["cm_oldstyle"]["status"] == "pass"


# -- a dependency observed inside its dependent's import -------------------------------------


def _requiring(site: Path, name: str, init: str, requires: list[str]) -> None:
    """A distribution ``name`` (module of the same name) whose METADATA requires ``requires``."""
    info = make_dist(site, name, "1.0", {f"{name}/__init__.py": init}, top_level=[name])
    with (info / "METADATA").open("a") as metadata:
        metadata.write("License: a folded header\n        \n        with a line of spaces\n")
        metadata.writelines(f"Requires-Dist: {r}\n" for r in requires)
        metadata.write("Requires-Dist: cm_not_needed ; extra == 'docs'\n")


@pytest.fixture(scope="module")
def observing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site folder: ``cm_dep`` and packages that require it and import it in different ways."""
    site = tmp_path_factory.mktemp("observing") / "site"
    make_dist(site, "cm_dep", "2.5", {"cm_dep/__init__.py": "__version__ = '2.5'\n"})
    make_dist(site, "cm_helper", "1.0", {"cm_helper/__init__.py": ""})
    make_dist(site, "cm_bad", "1.0", {"cm_bad/__init__.py": "raise ImportError('cm_bad is bad')\n"})
    _requiring(site, "cm_user", "import cm_dep\n", ["cm_dep>=2"])
    _requiring(site, "cm_after", "import cm_helper\nimport cm_dep\n", ["cm_dep", "cm_helper"])
    _requiring(
        site, "cm_environ", "import os\nos.environ['CM_X'] = '1'\nimport cm_dep\n", ["cm_dep"]
    )
    _requiring(site, "cm_breaks", "import cm_dep\nraise RuntimeError('no')\n", ["cm_dep"])
    _requiring(site, "cm_noisy", "import cm_dep, sys\nsys.stderr.write('hm\\n')\n", ["cm_dep"])
    _requiring(site, "cm_of_bad", "import cm_bad\n", ["cm_bad"])
    _requiring(site, "cm_hangs", "import cm_dep, time\ntime.sleep(600)\n", ["cm_dep"])
    _requiring(site, "cm_cycle_a", "import cm_cycle_b\n", ["cm_cycle_b"])
    _requiring(site, "cm_cycle_b", "import cm_cycle_a\n", ["cm_cycle_a"])
    return site


def _imports(
    site: Path, tmp_path: Path, *targets: str, jobs: int = 2, timeout: int = 60
) -> dict[str, Any]:
    args = ["--path", str(site), "--jobs", str(jobs), "--timeout", str(timeout), *targets]
    return by_target(run_probe(sys.executable, "import_probe", args, tmp_path)[0])


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_dependency_imported_first_thing_is_observed_not_imported_again(
    observing: Path, tmp_path: Path, jobs: int
) -> None:
    results = _imports(observing, tmp_path, "cm_dep", "cm_user", jobs=jobs)
    dep = results["cm_dep"]
    assert dep["status"] == "pass"
    assert dep["details"]["observed_in"] == "cm_user"
    assert (dep["details"]["version"], dep["details"]["distribution"]) == ("2.5", "cm_dep")
    assert results["cm_user"]["status"] == "pass"
    assert "observed_in" not in results["cm_user"]["details"]


@pytest.mark.parametrize(
    ("importer", "status"),
    [
        ("cm_after", "pass"),  # another package of the environment ran first
        ("cm_environ", "pass"),  # the importer changed os.environ first
        ("cm_breaks", "fail"),  # the importer failed after importing it
        ("cm_noisy", "pass"),  # the importer wrote to stderr
    ],
)
def test_a_dependency_is_imported_alone_unless_observed_as_a_fresh_import(
    observing: Path, tmp_path: Path, importer: str, status: str
) -> None:
    results = _imports(observing, tmp_path, "cm_dep", importer)
    assert results[importer]["status"] == status
    dep = results["cm_dep"]
    assert dep["status"] == "pass"
    assert "observed_in" not in dep["details"]
    assert dep["details"]["version"] == "2.5"


def test_a_dependency_that_fails_is_judged_by_its_own_import(
    observing: Path, tmp_path: Path
) -> None:
    results = _imports(observing, tmp_path, "cm_bad", "cm_of_bad")
    bad = results["cm_bad"]
    assert (bad["status"], bad["category"]) == ("fail", "import-error")
    assert bad["message"] == "ImportError: cm_bad is bad"
    assert "observed_in" not in bad["details"]
    assert not re.search(
        r'_import_child\.py", line \d+, in exec_module', bad["details"]["traceback_tail"]
    )
    assert results["cm_of_bad"]["status"] == "fail"


def test_an_importer_that_hangs_does_not_hold_its_dependency_back(
    observing: Path, tmp_path: Path
) -> None:
    """cm_hangs imports cm_dep, then never returns: cm_dep waits a quarter of the timeout to be
    observed, then is imported alone, while cm_hangs runs into its own timeout."""
    results = _imports(observing, tmp_path, "cm_dep", "cm_hangs", timeout=12)
    assert (results["cm_hangs"]["status"], results["cm_hangs"]["category"]) == ("fail", "timeout")
    dep = results["cm_dep"]
    assert (dep["status"], dep["details"]["version"]) == ("pass", "2.5")
    assert "observed_in" not in dep["details"]


def test_packages_that_require_each_other_are_both_imported(
    observing: Path, tmp_path: Path
) -> None:
    for jobs in (1, 2):
        results = _imports(observing, tmp_path, "cm_cycle_a", "cm_cycle_b", jobs=jobs)
        assert [r["status"] for r in results.values()] == ["pass", "pass"]


@pytest.fixture(scope="module")
def pandas_env(tmp_path_factory: pytest.TempPathFactory, uv_bin: str, python_for: Any) -> Path:
    env = tmp_path_factory.mktemp("pandas") / "env"
    python = str(python_for("3.12").path)
    subprocess.run([uv_bin, "venv", "-q", "-p", python, str(env)], check=True)
    pins = ["numpy==2.2.6", "pandas==2.2.3"]
    subprocess.run([uv_bin, "pip", "install", "-q", "-p", str(env), *pins], check=True)
    return env


@pytest.mark.slow
def test_numpy_observed_inside_pandas_is_what_importing_numpy_alone_finds(
    pandas_env: Path, tmp_path: Path
) -> None:
    """pandas imports numpy before anything else of its own: that import is observed, and it
    reports what a fresh `import numpy` reports: the same version and the same shared objects."""
    python = str(pandas_env / "bin" / "python")
    both = by_target(run_probe(python, "import_probe", ["numpy", "pandas"], tmp_path)[0])
    alone = by_target(run_probe(python, "import_probe", ["numpy"], tmp_path)[0])
    observed, fresh = both["numpy"], alone["numpy"]
    assert observed["details"]["observed_in"] == "pandas"
    assert "observed_in" not in fresh["details"]
    assert observed["status"] == fresh["status"] == "pass"
    for key in ("version", "distribution", "distribution_version", "loaded"):
        assert observed["details"][key] == fresh["details"][key], key
    assert any("_multiarray_umath" in path for path in observed["details"]["loaded"])
    assert both["pandas"]["status"] == "pass"
