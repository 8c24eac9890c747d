"""Reachability decides: a static finding fails a cell only for a file the cell's imports load,
or one that fails to load in the process its package loads it into; otherwise it is latent.

Real environments (gcc-built libraries and extensions, real numpy wheels); the probes run with
the environment's interpreter and the verdict is the one a cell gets.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from _elf_fixtures import requires_cc, run_probe
from _reach_fixtures import build_numpy2_only_env, build_plugin_env

from compat_matrix.build import pythons
from compat_matrix.probe.verdicts import Verdict, cell_verdict
from compat_matrix.results import ProbeResult
from compat_matrix.run.cell import probe_environment

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF/glibc only"),
    requires_cc,
]

_PROBES = ("abi", "native", "import")


def _findings(python: Path, imports: list[str]) -> list[ProbeResult]:
    runs = probe_environment(
        python, _PROBES, dists=[], imports=imports, deadline=time.monotonic() + 600
    )
    return [result for run in runs for result in run.results]


def _one(verdict: Verdict, probe: str, target: str) -> ProbeResult:
    """The one finding of ``probe`` whose target starts with ``target``."""
    found = [p for p in verdict.probes if p.probe == probe and p.target.startswith(target)]
    assert len(found) == 1, [(p.probe, p.target, p.status) for p in verdict.probes]
    return found[0]


@pytest.fixture(scope="module")
def plugin_findings(tmp_path_factory: pytest.TempPathFactory) -> list[ProbeResult]:
    python = build_plugin_env(tmp_path_factory.mktemp("plugin"))
    return _findings(python, ["mainpkg", "pluginpkg"])


def test_a_plugin_needing_a_library_its_framework_loads_first_passes_with_a_latent_finding(
    plugin_findings: list[ProbeResult],
) -> None:
    verdict = cell_verdict(plugin_findings)
    assert (verdict.status, verdict.category, verdict.latent) == ("pass", None, True)
    static = _one(verdict, "abi", "pluginpkg/libplugin.so")
    assert (static.status, static.category) == ("latent", "missing-library")
    assert "libframework.so.2" in static.message and "fails if loaded on its own" in static.message
    assert static.details["loads_after"] == ["mainpkg", "pluginpkg"]
    loaded = _one(verdict, "native", "pluginpkg/libplugin.so")
    assert (loaded.status, loaded.details["in_context"]) == ("latent", "loads")
    assert "import mainpkg" in loaded.message
    assert "reinstall" not in static.hint  # a reinstall cannot change where the library is
    summaries = [p for p in verdict.probes if p.target == "environment" and p.probe != "import"]
    assert all(p.status == "pass" for p in summaries)


def test_strict_turns_the_latent_plugin_finding_into_a_failure(
    plugin_findings: list[ProbeResult],
) -> None:
    verdict = cell_verdict(plugin_findings, strict=True)
    assert (verdict.status, verdict.category, verdict.latent) == ("fail", "missing-library", False)
    assert "pluginpkg/libplugin.so" in verdict.message


def test_the_import_probe_measures_what_each_import_loads(
    plugin_findings: list[ProbeResult],
) -> None:
    loaded = {
        p.target: [Path(f).name for f in p.details["loaded"]]
        for p in plugin_findings
        if p.probe == "import"
    }
    assert "libframework.so.2" in loaded["mainpkg"]
    assert any(name.startswith("_core.") for name in loaded["mainpkg"])
    assert "libplugin.so" not in loaded["pluginpkg"]
    assert "libc.so.6" not in loaded["mainpkg"]  # the environment's files only, not the OS's


def test_the_native_probe_loads_a_failing_file_again_after_its_context_imports(
    plugin_findings: list[ProbeResult], tmp_path: Path
) -> None:
    """Alone, and after importing only its own package, the plugin fails; after the framework's
    import (``--context mainpkg``) it loads: only that makes it latent."""
    (python,) = {
        Path(p.details["executable"])
        for p in plugin_findings
        if p.probe == "abi" and p.target == "environment"
    }
    plugin = "pluginpkg/libplugin.so"
    bare, _ = run_probe(str(python), "native_probe", [], tmp_path)
    (alone,) = [r for r in bare["results"] if r["target"] == plugin]
    assert (alone["status"], alone["details"]["in_context"]) == ("fail", "fails")
    assert alone["details"]["fails_after"] == ["pluginpkg"]
    framed, _ = run_probe(str(python), "native_probe", ["--context", "mainpkg"], tmp_path)
    (loaded,) = [r for r in framed["results"] if r["target"] == plugin]
    assert (loaded["status"], loaded["details"]["loads_after"]) == (
        "latent",
        ["mainpkg", "pluginpkg"],
    )
    assert framed["results"][-1]["status"] == "pass"


def test_a_plugin_whose_library_no_import_loads_still_fails(tmp_path: Path) -> None:
    python = build_plugin_env(tmp_path, orphan=True)
    verdict = cell_verdict(_findings(python, ["mainpkg", "pluginpkg", "orphanpkg"]))
    assert (verdict.status, verdict.category) == ("fail", "missing-library")
    assert "libhelper.so.1" in verdict.message and "orphanpkg/liborphan.so" in verdict.message
    native = _one(verdict, "native", "orphanpkg/liborphan.so")
    assert (native.status, native.details["in_context"]) == ("fail", "fails")
    assert _one(verdict, "abi", "pluginpkg/libplugin.so").status == "latent"


@pytest.fixture(scope="module")
def numpy2_only_env(
    tmp_path_factory: pytest.TempPathFactory, uv_bin: str, interpreters: list[pythons.Interpreter]
) -> Path:
    found = [i for i in interpreters if i.version.startswith("3.11.")]
    if not found:
        pytest.skip("no CPython 3.11 (numpy 1.26.4 and 2.2.6 both have cp311 wheels)")
    return build_numpy2_only_env(tmp_path_factory.mktemp("np2only"), uv_bin, str(found[-1].path))


@pytest.mark.slow
def test_a_numpy2_only_module_imported_only_under_numpy2_is_latent_under_numpy1(
    numpy2_only_env: Path,
) -> None:
    verdict = cell_verdict(_findings(numpy2_only_env, ["condpkg"]))
    assert (verdict.status, verdict.latent) == ("pass", True)
    static = _one(verdict, "abi", "condpkg/_np2only.")
    assert (static.status, static.category) == ("latent", "abi-numpy")
    assert "numpy 1.26.4" in static.message and "not loaded by import condpkg" in static.message
    assert "fix" not in static.details  # nothing to fix for normal use
    assert static.details["fix_if_loaded"]["requirements"] == ["numpy>=2.0"]


@pytest.mark.slow
def test_the_same_module_imported_unconditionally_fails_naming_the_import(
    numpy2_only_env: Path,
) -> None:
    verdict = cell_verdict(_findings(numpy2_only_env, ["condpkg", "uncondpkg"]))
    assert (verdict.status, verdict.category) == ("fail", "abi-numpy")
    assert verdict.message.startswith("uncondpkg/_np2only")
    assert "(loaded by import uncondpkg)" in verdict.message
    imported = _one(verdict, "import", "uncondpkg")
    assert (imported.status, imported.category) == ("fail", "abi-numpy")
    assert imported.details["fix"]["requirements"] == ["numpy>=2.0"]
