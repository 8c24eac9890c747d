"""gcc-built ELF fixtures for the ELF/ABI tests: small C sources, real linker output.

Every fixture is a real shared object or executable made by the system toolchain, so the tests
check the reader and the resolver against what ``ld`` writes and what ``ld.so`` does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from _native_fixtures import PROBES, probe_process

__all__ = [
    "CC",
    "PROBES",
    "build_broken_site",
    "c_executable",
    "c_library",
    "extension_module",
    "fake_dist",
    "interpreter_suffix",
    "ld_list",
    "requires_cc",
    "run_probe",
    "torch_cpu_environment",
]

#: The CPU build of torch the ELF tests and the benchmark measure (cp311, manylinux_2_28 x86_64).
#: Pinned with its local label: PyPI has no ``+cpu`` file, so a machine without the CPU wheel
#: skips instead of downloading the CUDA build.
TORCH_CPU = "torch==2.13.0+cpu"
CC = shutil.which("gcc") or shutil.which("cc")
requires_cc = pytest.mark.skipif(CC is None, reason="needs a C compiler (gcc)")
_TIMEOUT = 120


def _link_args(
    link: Sequence[Path], rpath: str | None, runpath: str | None, flags: Sequence[str]
) -> list[str]:
    args = ["-Wl,--no-as-needed"]  # Debian's gcc defaults to --as-needed: keep every DT_NEEDED
    for lib in link:
        args += [f"-L{lib.parent}", f"-l:{lib.name}", f"-Wl,-rpath-link,{lib.parent}"]
    if rpath is not None:
        args.append(f"-Wl,--disable-new-dtags,-rpath,{rpath}")
    if runpath is not None:
        args.append(f"-Wl,--enable-new-dtags,-rpath,{runpath}")
    return [*args, "-Wl,--allow-shlib-undefined", *flags]


def _compile(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    if proc.returncode != 0:
        msg = f"{' '.join(argv)} failed:\n{proc.stderr}"
        raise RuntimeError(msg)


def _cc(path: Path, source: str, before: list[str], after: list[str]) -> Path:
    """``cc <before> -O0 -o path <source> <after>``, the source written next to ``path``."""
    assert CC is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    src = path.with_name(path.name + ".c")
    src.write_text(source)
    _compile([CC, *before, "-O0", "-o", str(path), str(src), *after])
    src.unlink()
    return path


def c_library(
    path: Path,
    source: str,
    *,
    soname: str | None = None,
    link: Sequence[Path] = (),
    rpath: str | None = None,
    runpath: str | None = None,
    version_script: str | None = None,
    flags: Sequence[str] = (),
) -> Path:
    """Compile ``source`` into the shared library ``path`` (soname defaults to its file name)."""
    args = [f"-Wl,-soname,{soname or path.name}"]
    if version_script is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        vs = path.with_name(path.name + ".map")
        vs.write_text(version_script)
        args.append(f"-Wl,--version-script={vs}")
    args += _link_args(link, rpath, runpath, flags)
    return _cc(path, source, ["-shared", "-fPIC"], args)


def c_executable(
    path: Path,
    source: str,
    *,
    link: Sequence[Path] = (),
    rpath: str | None = None,
    runpath: str | None = None,
    flags: Sequence[str] = (),
) -> Path:
    """Compile ``source`` into the executable ``path``."""
    return _cc(path, source, [], _link_args(link, rpath, runpath, flags))


def extension_module(
    directory: Path,
    module: str,
    suffix: str,
    *,
    export: str | None = None,
    body: str = "",
    link: Sequence[Path] = (),
    rpath: str | None = None,
    runpath: str | None = None,
    flags: Sequence[str] = (),
) -> Path:
    """A fake extension module ``<module><suffix>`` exporting ``export`` (default PyInit_<module>).

    It needs no Python headers: the loader and the probes only see symbols and strings.
    """
    init = export or f"PyInit_{module}"
    source = f"{body}\nvoid *{init}(void) {{ return 0; }}\n"
    return c_library(
        directory / f"{module}{suffix}",
        source,
        link=link,
        rpath=rpath,
        runpath=runpath,
        flags=flags,
    )


def fake_dist(site: Path, name: str, version: str, files: Sequence[Path] = ()) -> Path:
    """A minimal ``*.dist-info`` (METADATA + RECORD) so probes can name owners and versions."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    rows = [f"{f.relative_to(site).as_posix()},," for f in files]
    rows.append(f"{info.name}/METADATA,,")
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    return info


CAPSULE = "extern void *PyCapsule_GetPointer(void*, const char*);\nvoid *cap(void *o){return PyCapsule_GetPointer(o,0);}\n"
NUMPY1 = CAPSULE + (
    'const char *n1(void){return "numpy.core._multiarray_umath";}\n'
    'const char *n2(void){return "_ARRAY_API not found";}\n'
)


def numpy2(target: str) -> str:
    return CAPSULE + (
        'const char *n1(void){return "numpy._core._multiarray_umath";}\n'
        'const char *n2(void){return "numpy.core._multiarray_umath";}\n'
        f'const char *n3(void){{return "module was compiled against NumPy C-API version 0x%x (NumPy {target}) '
        'but the running NumPy has C-API version 0x%x.";}\n'
    )


def build_broken_site(root: Path, python: str) -> tuple[Path, dict[str, str]]:
    """A fake environment with one file per failure the abi probe must find.

    Returns (site dir, {file name: expected category}).
    """
    suffix = interpreter_suffix(python)[0]
    site = root / "lib" / "python3" / "site-packages"
    pkg = site / "pkg"
    libs = site / "pkg.libs"
    expected: dict[str, str] = {}
    made: list[Path] = []

    made.append(
        extension_module(
            pkg,
            "good",
            suffix,
            body="extern void *PyLong_FromLong(long);\nvoid *g(void){return PyLong_FromLong(1);}\n",
        )
    )
    made.append(extension_module(pkg, "noinit", suffix, export="PyInit_renamed"))
    expected[f"noinit{suffix}"] = "abi-python"
    other_tag = ".cpython-37m-x86_64-linux-gnu.so"
    made.append(extension_module(pkg, "oldtag", other_tag))
    expected[f"oldtag{other_tag}"] = "abi-python"
    made.append(
        extension_module(
            pkg,
            "undef",
            suffix,
            body="extern int compat_matrix_missing_fn(void);\nint u(void){return compat_matrix_missing_fn();}\n",
        )
    )
    expected[f"undef{suffix}"] = "undefined-symbol"

    gone = c_library(libs / "libgone.so", "int gone(void){return 1;}")
    made.append(extension_module(pkg, "needs", suffix, link=[gone], runpath="$ORIGIN/../pkg.libs"))
    gone.unlink()
    expected[f"needs{suffix}"] = "missing-library"

    script = "V1 { global: f1; local: *; };\nV2 { global: f2; } V1;\n"
    libv = c_library(
        libs / "libv.so",
        "int f1(void){return 1;}\nint f2(void){return 2;}\n",
        version_script=script,
    )
    made.append(
        extension_module(
            pkg,
            "vers",
            suffix,
            body="extern int f2(void);\nint v(void){return f2();}\n",
            link=[libv],
            runpath="$ORIGIN/../pkg.libs",
        )
    )
    c_library(libv, "int f1(void){return 1;}\n", version_script="V1 { global: f1; local: *; };\n")
    made.append(libv)
    expected[f"vers{suffix}"] = "symbol-version"

    cuda = c_library(root / "stub" / "libcuda.so.1", "int cuInit(int f){return f;}")
    made.append(extension_module(pkg, "gpu", suffix, link=[cuda], runpath="$ORIGIN"))
    shutil.rmtree(cuda.parent)
    expected[f"gpu{suffix}"] = "no-gpu"

    made.append(extension_module(pkg, "np1", suffix, body=NUMPY1))
    expected[f"np1{suffix}"] = "abi-numpy"
    made.append(extension_module(pkg, "np23", suffix, body=numpy2("2.3")))
    expected[f"np23{suffix}"] = "abi-numpy"
    made.append(extension_module(pkg, "np125", suffix, body=numpy2("1.25")))
    fake_dist(site, "pkg", "1.0", made)
    fake_dist(site, "numpy", "2.2.6")
    return site, expected


def _interp_of(executable: str) -> str | None:
    sys.path.insert(0, str(PROBES))
    try:
        import _elf

        elf = _elf.ElfFile(os.path.realpath(executable))
        try:
            return elf.interp
        finally:
            elf.release()
    finally:
        sys.path.remove(str(PROBES))


def ld_list(target: Path, env: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """What the real ld.so resolves for ``target``, as ``ldd`` prints it: {name: path or None}."""
    ld_so = _interp_of(sys.executable)
    if ld_so is None:
        pytest.skip("the interpreter has no PT_INTERP")
    # ldd's way: ``ld.so --list`` exits silently on the first missing library, this lists all.
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_TRACE_LOADED_OBJECTS": "1"}
    clean.update(env or {})
    proc = subprocess.run(
        [ld_so, str(target)],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        env=clean,
        check=False,
    )
    out: dict[str, str | None] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (not found|(\S+) \(0x[0-9a-f]+\))", line)
        if m:
            out[m.group(1)] = None if m.group(2) == "not found" else os.path.realpath(m.group(3))
    return out


def interpreter_suffix(python: str | os.PathLike[str]) -> list[str]:
    """``importlib.machinery.EXTENSION_SUFFIXES`` of another interpreter."""
    code = "import importlib.machinery, json; print(json.dumps(importlib.machinery.EXTENSION_SUFFIXES))"
    proc = subprocess.run(
        [str(python), "-I", "-c", code],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=True,
    )
    result: list[str] = json.loads(proc.stdout)
    return result


def run_probe(
    python: str,
    probe: str,
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    extra_flags: Sequence[str] = (),
) -> tuple[dict[str, Any], str]:
    """Run ``probes/<probe>.py`` with ``python`` from ``cwd``: (the JSON document, stderr).

    The exit status must agree with the document: 1 when a result failed, 3 for an error.
    """
    proc = probe_process(python, probe, args, cwd, env=env, python_args=extra_flags, timeout=600)
    doc: dict[str, Any] = json.loads(proc.stdout)
    statuses = {r["status"] for r in doc["results"]}
    expected = 3 if "error" in statuses else 1 if "fail" in statuses else 0
    assert proc.returncode == expected, proc.stderr
    return doc, proc.stderr


def _pip_download_torch(dest: Path) -> Path:
    """The torch CPU wheel, fetched by pip with pip's own configuration (its index, its
    find-links), for CPython 3.11 whatever runs the tests; skip when pip cannot get it."""
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"),
            *("--python-version", "3.11", "--disable-pip-version-check", "-q"),
            *("-d", str(dest), TORCH_CPU),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    wheels = sorted(dest.glob("torch-*+cpu-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
        pytest.skip(f"pip download {TORCH_CPU} failed here (no CPU wheel reachable): {tail[0]}")
    return wheels[0]


def torch_cpu_environment(root: Path, uv: str, python: str) -> tuple[Path, Path]:
    """A Python 3.11 venv with the torch CPU wheel and numpy: (its python, its site-packages).

    The wheel comes through ``pip download`` (pip's configuration knows where the CPU build
    lives; uv does not read it), its dependencies from the index.
    """
    wheel = _pip_download_torch(root / "wheels")
    env = root / "torch-env"
    subprocess.run([uv, "venv", "-q", "-p", python, str(env)], check=True, timeout=300)
    py = env / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "-p", str(py), str(wheel), "numpy"],
        check=True,
        timeout=900,
    )
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    return py, Path(site)
