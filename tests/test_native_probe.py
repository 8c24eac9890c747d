"""native_probe: real dlopen in child processes, crash isolation, and agreement with abi_probe."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from _elf_fixtures import (
    build_broken_site,
    c_library,
    extension_module,
    fake_dist,
    interpreter_suffix,
    requires_cc,
    run_probe,
)

from compat_matrix.build import pythons

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF/glibc only"),
    requires_cc,
]

SEGV = "__attribute__((constructor)) static void boom(void) { *(volatile int *)0 = 1; }\n"
HANG = "#include <unistd.h>\n__attribute__((constructor)) static void hang(void) { sleep(60); }\n"


def results_by_file(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        os.path.basename(r["target"]): r for r in doc["results"] if r["target"] != "environment"
    }


def test_a_crash_is_named_and_the_rest_of_the_batch_still_reported(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    pkg = site / "pkg"
    suffix = interpreter_suffix(sys.executable)[0]
    made = [
        extension_module(pkg, "a_ok", suffix),
        c_library(pkg / "b_crash.so", SEGV),  # a library no extension loads: Python would dlopen it
        extension_module(
            pkg,
            "c_undef",
            suffix,
            body="extern int cm_missing(void);\nint u(void){return cm_missing();}\n",
        ),
        extension_module(pkg, "d_ok", suffix),
    ]
    fake_dist(site, "pkg", "0.1", made)
    doc, _ = run_probe(
        sys.executable, "native_probe", ["--prefix", str(tmp_path), "--site", str(site)], tmp_path
    )
    got = results_by_file(doc)
    assert set(got) == {"b_crash.so", f"c_undef{suffix}"}
    crash = got["b_crash.so"]
    assert (crash["status"], crash["category"]) == ("fail", "crash")
    assert crash["details"]["signal"] == "SIGSEGV" and "SIGSEGV" in crash["message"]
    assert "pkg 0.1" in crash["hint"]
    undef = got[f"c_undef{suffix}"]
    assert undef["category"] == "undefined-symbol" and undef["details"]["symbol"] == "cm_missing"
    summary = doc["results"][-1]
    assert summary["target"] == "environment" and summary["status"] == "fail"
    assert summary["details"]["loaded"] == 2 and summary["details"]["files"] == 4
    assert summary["details"]["batches"] == 1  # one child for the package, re-run after the crash


def test_a_hang_times_out_without_losing_the_others(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    suffix = interpreter_suffix(sys.executable)[0]
    c_library(site / "pkg" / "a_hang.so", HANG)
    extension_module(site / "pkg", "b_ok", suffix)
    doc, _ = run_probe(
        sys.executable,
        "native_probe",
        ["--prefix", str(tmp_path), "--site", str(site), "--timeout", "3"],
        tmp_path,
    )
    got = results_by_file(doc)
    assert list(got) == ["a_hang.so"] and got["a_hang.so"]["category"] == "timeout"
    assert doc["results"][-1]["details"]["loaded"] == 1


def test_failure_only_after_another_library_is_order_dependent(tmp_path: Path) -> None:
    """pytorch#115138: an already-loaded soname satisfies a later need it cannot serve."""
    site = tmp_path / "site-packages"
    old = c_library(
        site / "pkg" / "old" / "libdup.so",
        "int f1(void){return 1;}",
        version_script="V1 { global: f1; local: *; };\n",
    )
    new = c_library(
        site / "pkg" / "new" / "libdup.so",
        "int f1(void){return 1;}\nint f2(void){return 2;}",
        version_script="V1 { global: f1; local: *; };\nV2 { global: f2; } V1;\n",
    )
    suffix = interpreter_suffix(sys.executable)[0]
    extension_module(
        site / "pkg",
        "a_old",
        suffix,
        body="extern int f1(void);\nint a(void){return f1();}\n",
        link=[old],
        runpath="$ORIGIN/old",
    )
    extension_module(
        site / "pkg",
        "b_new",
        suffix,
        body="extern int f2(void);\nint b(void){return f2();}\n",
        link=[new],
        runpath="$ORIGIN/new",
    )
    doc, _ = run_probe(
        sys.executable, "native_probe", ["--prefix", str(tmp_path), "--site", str(site)], tmp_path
    )
    got = results_by_file(doc)
    assert list(got) == [f"b_new{suffix}"]
    res = got[f"b_new{suffix}"]
    assert res["category"] == "symbol-version" and res["details"]["order_dependent"] is True
    assert "loads fine alone" in res["message"]
    static, _ = run_probe(
        sys.executable, "abi_probe", ["--prefix", str(tmp_path), "--site", str(site)], tmp_path
    )
    assert [r["status"] for r in static["results"]] == ["pass"]  # each import alone is fine


def test_agrees_with_the_static_probe(
    tmp_path: Path, interpreters: list[pythons.Interpreter]
) -> None:
    usable = sorted((i for i in interpreters if i.supported), key=lambda i: i.sort_key)
    for n, python in enumerate([sys.executable] + [str(i.path) for i in usable[:1]]):
        root = tmp_path / f"env{n}"
        site, _expected = build_broken_site(root, python)
        args = ["--prefix", str(root), "--site", str(site)]
        native, _ = run_probe(python, "native_probe", args, tmp_path)
        static, _ = run_probe(python, "abi_probe", args, tmp_path)
        loader_cats = {"missing-library", "undefined-symbol", "symbol-version", "no-gpu"}
        n_got = {k: v["category"] for k, v in results_by_file(native).items()}
        s_got = {
            k: v["category"]
            for k, v in results_by_file(static).items()
            if v["category"] in loader_cats
        }
        assert n_got == s_got, python
        assert sorted(set(n_got.values())) == sorted(loader_cats)
        assert (
            results_by_file(native)[next(k for k, v in n_got.items() if v == "no-gpu")]["status"]
            == "skip"
        )


def test_foreign_and_truncated_files(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    suffix = interpreter_suffix(sys.executable)[0]
    good = extension_module(site / "pkg", "alien", suffix)
    data = bytearray(good.read_bytes())
    data[18:20] = (183 if data[18] != 183 else 62).to_bytes(2, "little" if data[5] == 1 else "big")
    good.write_bytes(bytes(data))
    cut = extension_module(site / "pkg", "cut", suffix)
    cut.write_bytes(cut.read_bytes()[:40])
    args = ["--prefix", str(tmp_path), "--site", str(site)]
    native, _ = run_probe(sys.executable, "native_probe", args, tmp_path)
    static, _ = run_probe(sys.executable, "abi_probe", args, tmp_path)
    for doc in (native, static):
        got = {k: v["category"] for k, v in results_by_file(doc).items()}
        assert got == {f"alien{suffix}": "abi-python", f"cut{suffix}": "invalid-elf"}, doc["probe"]
