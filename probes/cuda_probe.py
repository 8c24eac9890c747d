"""CUDA in one environment: the driver, every CUDA library and its version, each framework's view.

Usage::

    <env python> cuda_probe.py [--init-timeout 20] [--import-timeout 180] [--cuda VERSION]
                               [--prefix DIR] [--path DIR ...]

What it reports, every problem at once (in the manner of JAX's ``_check_cuda_versions``), each
with the versions involved and a hint:

- ``driver``: ``libcuda.so.1`` loaded with ctypes in a child process; ``cuDriverGetVersion``
  (1000*major + 10*minor) and ``cuInit``/device count under the ``--init-timeout`` cap. No
  driver, or a driver without a device: ``skip``/``no-gpu`` (never a failure of the cell).
- one target per CUDA library family (``cudart``, ``cublas``, ``cudnn``, ...): every copy in
  the environment's site directories (``nvidia/*/lib`` of the nvidia-* wheels, copies bundled
  in frameworks such as ``torch/lib`` or auditwheel's ``*.libs``), in ``<prefix>/lib`` (conda),
  and on ``LD_LIBRARY_PATH``, with its owner (distribution or conda package) and its version:
  what the library itself reports (``cudaRuntimeGetVersion``, ``cudnnGetProperty``, ...,
  called in child processes that survive crashes), else its wheel's version, else its file
  name. Two versions of one library -> ``fail``/``inconsistent-env`` naming both copies; a CUDA
  runtime newer than the driver -> ``fail``/``cuda-driver`` with both versions (also within one
  major, which only minor-version compatibility lets start, and where newer PTX fails).
- ``cuda-version``/``cudatoolkit``: in a conda prefix, conda's CUDA pin against the driver.
- ``torch``, ``jax``, ``tensorflow``, ``cupy`` when installed, each imported in its own child
  process (``--import-timeout``), with the first device initialisation capped at
  ``--init-timeout`` seconds: build versions, CPU-only builds, cuDNN runtime vs compiled,
  jax/jaxlib/plugin skew, and on a machine with a GPU a small computation on the device
  (``no kernel image is available`` -> ``cuda-arch``: the build lacks this GPU's sm_XY).
- ``--cuda VERSION``: the CUDA version the cell asked for; a CPU-only framework build (or one
  for another CUDA major) is then a ``fail``/``cuda-runtime``.

With nothing CUDA in the environment the document has one ``pass`` result (target ``cuda``).
Extra keys: ``driver``, ``libraries``, ``conda_packages`` and ``frameworks``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import _probelib as lib  # noqa: E402

__all__ = [
    "DRIVER_FOR_CUDA",
    "PROBE",
    "classify_library",
    "cuda_text",
    "main",
    "version_tuple",
    "versions_conflict",
]

PROBE = "cuda"
DEFAULT_INIT_TIMEOUT = 20.0
DEFAULT_IMPORT_TIMEOUT = 180.0
_LIBRARY_BATCH_TIMEOUT = 60.0

#: CUDA toolkit (major, minor) -> the Linux driver its GA release needs (CUDA release notes,
#: "CUDA Toolkit and Corresponding Driver Versions"). Minor-version compatibility lets a 12.x
#: runtime start on any >= 525.60.13 driver, but PTX JIT and newer features then fail.
DRIVER_FOR_CUDA = {
    (11, 0): "450.51.05",
    (11, 1): "455.23",
    (11, 2): "460.27.03",
    (11, 3): "465.19.01",
    (11, 4): "470.42.01",
    (11, 5): "495.29.05",
    (11, 6): "510.39.01",
    (11, 7): "515.43.04",
    (11, 8): "520.61.05",
    (12, 0): "525.60.13",
    (12, 1): "530.30.02",
    (12, 2): "535.54.03",
    (12, 3): "545.23.06",
    (12, 4): "550.54.14",
    (12, 5): "555.42.02",
    (12, 6): "560.28.03",
    (12, 8): "570.26",
    (12, 9): "575.51.03",
    (13, 0): "580.65.06",
}

#: library stem -> (family, whether the soname's number is the library's own version).
#: libnvToolsExt.so.1 and libcufile.so.0 keep one soname across CUDA releases.
_LIBRARY_STEMS = {
    "cudart": ("cudart", True),
    "cublas": ("cublas", True),
    "cublasLt": ("cublas", True),
    "cudnn": ("cudnn", True),
    "cufft": ("cufft", True),
    "cufftw": ("cufft", True),
    "curand": ("curand", True),
    "cusolver": ("cusolver", True),
    "cusolverMg": ("cusolver", True),
    "cusparse": ("cusparse", True),
    "cusparseLt": ("cusparseLt", True),
    "nvrtc": ("nvrtc", True),
    "nvrtc-builtins": ("nvrtc", True),
    "nvJitLink": ("nvJitLink", True),
    "cupti": ("cupti", True),
    "nccl": ("nccl", True),
    "nvToolsExt": ("nvtx", False),
    "nvjpeg": ("nvjpeg", True),
    "cufile": ("cufile", False),
    "cufile_rdma": ("cufile", False),
    "nvshmem_host": ("nvshmem", True),
}
_LIBRARY_RE = re.compile(
    r"^lib(?P<stem>[A-Za-z][A-Za-z_]*?(?:-builtins)?)(?:-[0-9a-f]{8,})?"
    r"\.so(?:\.(?P<version>\d+(?:\.\d+)*))?$"
)
#: Which function reports a library's version, by stem: the call is made in a child process.
_VERSION_CALLS = {
    "cudart": "cudaRuntimeGetVersion",
    "cudnn": "cudnnGetProperty",
    "cublas": "cublasGetProperty",
    "cublasLt": "cublasLtGetProperty",
    "cufft": "cufftGetProperty",
    "curand": "curandGetProperty",
    "cusolver": "cusolverGetProperty",
    "cusparse": "cusparseGetProperty",
    "nvrtc": "nvrtcVersion",
    "nvJitLink": "nvJitLinkVersion",
    "nccl": "ncclGetVersion",
}
#: conda packages that are CUDA components (conda-forge and defaults naming).
_CONDA_CUDA_RE = re.compile(
    r"^(cuda-.+|cudatoolkit|cudnn|nccl|cutensor|cusparselt|libcu[a-z]+.*|libnv[a-z]+.*|"
    r"libnpp.*|libnccl.*|libcudnn.*)$"
)
_FRAMEWORK_DISTS = {
    "torch": ("torch",),
    "jax": ("jax",),
    "tensorflow": (
        "tensorflow",
        "tensorflow-cpu",
        "tensorflow-gpu",
        "tensorflow-intel",
        "tf-nightly",
        "tf-nightly-cpu",
    ),
    "cupy": ("cupy",),
}
_CUPY_RE = re.compile(r"^cupy-cuda\d+x?$")
_JAX_PLUGIN_RE = re.compile(r"^jax-cuda(?P<major>\d+)-(?P<kind>plugin|pjrt)$")
_PRUNE_DIRS = frozenset({"__pycache__", "include", "tests", "test"})


# -- versions ----------------------------------------------------------------------------------


def version_tuple(text: object) -> tuple[int, ...]:
    """The leading release numbers of a version: ``"12.4.127+cu12"`` -> ``(12, 4, 127)``."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text or ""))
    if not match:
        return ()
    return tuple(int(part) for part in match.group(1).split("."))


def versions_conflict(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Two versions disagree where both are known (``12`` agrees with ``12.4.127``)."""
    common = min(len(a), len(b))
    return common > 0 and a[:common] != b[:common]


def cuda_text(code: int) -> str:
    """``12040`` -> ``"12.4"`` (``cudaRuntimeGetVersion``/``cuDriverGetVersion`` encoding)."""
    return "%d.%d" % (code // 1000, (code % 1000) // 10)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def _driver_needed(version: tuple[int, ...]) -> str:
    """``"550.54.14 (CUDA 12.4)"``, or a general phrase when the release is not in the table."""
    if len(version) >= 2 and (version[0], version[1]) in DRIVER_FOR_CUDA:
        key = (version[0], version[1])
        return ">= %s (CUDA %s)" % (DRIVER_FOR_CUDA[key], _dotted(key))
    return "one that supports CUDA %s (see the CUDA release notes)" % _dotted(version[:2])


def classify_library(filename: str) -> tuple[str, str, bool, tuple[int, ...]] | None:
    """``libcudart-9335f6a2.so.11.0`` -> ``("cudart", "cudart", True, (11, 0))``; None: no CUDA lib.

    Returns ``(stem, family, soname number is the version, version from the file name)``.
    """
    match = _LIBRARY_RE.match(filename)
    if not match:
        return None
    stem = match.group("stem")
    if stem.startswith("cudnn_"):
        family, meaningful = "cudnn", True  # cuDNN's sub-libraries (libcudnn_ops.so.9, ...)
    elif stem.startswith("npp") and stem.isalpha():
        family, meaningful = "npp", True
    elif stem in _LIBRARY_STEMS:
        family, meaningful = _LIBRARY_STEMS[stem]
    else:
        return None
    return stem, family, meaningful, version_tuple(match.group("version") or "")


# -- child processes ---------------------------------------------------------------------------


class _Child:
    """A Python child that writes JSON lines on stdout, with a deadline per phase.

    The child marks the end of a phase by a line with ``"phase"``; ``run`` waits up to
    ``timeouts[i]`` seconds for phase ``i`` to end, so a slow import and a hung first device
    initialisation get different budgets. The child leads its own process group, killed whole.
    """

    def __init__(self, args: list[str], workdir: str) -> None:
        self.args = args
        self.workdir = workdir
        self.lines: list[dict[str, Any]] = []
        self.stderr = ""
        self.returncode: int | None = None
        self.timed_out_in: int | None = None
        self.spawn_error = ""
        self._changed = threading.Condition()

    def _reader(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            try:
                item = json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                continue
            if isinstance(item, dict):
                with self._changed:
                    self.lines.append(item)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def phases(self) -> int:
        return sum(1 for line in self.lines if "phase" in line)

    def run(
        self, timeouts: list[float], env: dict[str, str] | None = None, stdin: str = ""
    ) -> _Child:
        """Start the child, wait for each phase within its timeout, then reap it."""
        fd, err_path = tempfile.mkstemp(prefix="cuda-", suffix=".err", dir=self.workdir)
        os.close(fd)
        fd, in_path = tempfile.mkstemp(prefix="cuda-", suffix=".in", dir=self.workdir)
        with os.fdopen(fd, "w") as handle:
            handle.write(stdin)
        argv = [sys.executable, _CHILD, *self.args]
        try:
            with open(err_path, "wb") as err, open(in_path, "rb") as source:
                proc = subprocess.Popen(
                    argv,
                    cwd=self.workdir,
                    stdin=source,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    env=env,
                    start_new_session=hasattr(os, "setsid"),
                )
        except OSError as exc:
            self.spawn_error = "%s: %s" % (type(exc).__name__, exc)
            for path in (err_path, in_path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            return self
        reader = threading.Thread(target=self._reader, args=(proc.stdout,), daemon=True)
        reader.start()
        try:
            for index, timeout in enumerate(timeouts):
                deadline = time.monotonic() + timeout
                with self._changed:
                    while self.phases() <= index and proc.poll() is None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._changed.wait(min(left, 0.2))
                if self.phases() <= index and proc.poll() is None:
                    self.timed_out_in = index
                    break
                if proc.poll() is not None:
                    break
            if self.timed_out_in is None:
                try:
                    proc.wait(timeout=max(5.0, timeouts[-1] if timeouts else 5.0))
                except subprocess.TimeoutExpired:
                    self.timed_out_in = len(timeouts) - 1
        finally:
            lib.kill_group(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            reader.join(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        self.returncode = proc.returncode
        self.stderr = lib.read_tail(err_path, 6000)
        for path in (err_path, in_path):
            with contextlib.suppress(OSError):
                os.unlink(path)
        return self


#: The children (driver, libraries, one framework): a file beside this one, run in a mode.
_CHILD = os.path.join(_HERE, "_cuda_child.py")

# -- the driver --------------------------------------------------------------------------------


def _kernel_module_version() -> str:
    """The loaded NVIDIA kernel module's version (``/proc/driver/nvidia/version``), or ``""``."""
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8", errors="replace") as handle:
            text = handle.read(4000)
    except OSError:
        return ""
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+(?:\.\d+)+)", text)
    return match.group(1) if match else ""


def probe_driver(workdir: str, init_timeout: float) -> dict[str, Any]:
    """What the driver says: found, path, CUDA version, cuInit outcome and devices."""
    child = _Child(["driver"], workdir).run([30.0, init_timeout])
    driver: dict[str, Any] = {"found": False}
    for line in child.lines:
        driver.update({k: v for k, v in line.items() if k != "phase"})
    if child.spawn_error:
        driver["error"] = child.spawn_error
    if child.timed_out_in == 1:
        driver["init_timed_out"] = init_timeout
    elif child.timed_out_in == 0:
        driver["error"] = "loading libcuda.so.1 did not finish within 30 s"
    elif child.returncode and not child.lines:
        driver["error"] = "the driver check exited with status %s: %s" % (
            child.returncode,
            lib.tail(child.stderr, 5, 600),
        )
    returncode = child.returncode or 0
    if driver.get("found") and child.timed_out_in is None and returncode < 0:
        driver["crashed"] = "signal %d" % -returncode
    code = driver.get("version")
    if isinstance(code, int) and code > 0:
        driver["cuda"] = cuda_text(code)
    release = _kernel_module_version()
    path = str(driver.get("path") or "")
    if not release and path:
        match = re.search(r"libcuda\.so\.(\d+\.\d+(?:\.\d+)?)$", os.path.realpath(path))
        release = match.group(1) if match else ""
    if release:
        driver["release"] = release
    return driver


# -- libraries -------------------------------------------------------------------------------


def query_versions(items: list[dict[str, str]], workdir: str) -> dict[str, dict[str, Any]]:
    """``{path: {"version": [...]} | {"error": ...}}`` for each ``{"path", "call"}``.

    A child loads the libraries one after another; when it crashes or hangs, the library it
    was loading is blamed and a new child carries on with the rest.
    """
    found: dict[str, dict[str, Any]] = {}
    pending = list(items)
    while pending:
        stdin = "".join(json.dumps(item) + "\n" for item in pending)
        outcome = _Child(["libraries"], workdir).run([_LIBRARY_BATCH_TIMEOUT], stdin=stdin)
        started = None
        for line in outcome.lines:
            if "start" in line:
                started = line["start"]
            elif "path" in line:
                found[line["path"]] = line
                started = None
        if outcome.spawn_error:
            for item in pending:
                found.setdefault(item["path"], {"error": outcome.spawn_error})
            break
        if started is not None and started not in found:
            why = (
                "timed out"
                if outcome.timed_out_in is not None
                else "crashed (exit status %s)" % outcome.returncode
            )
            found[started] = {"path": started, "error": "loading it %s" % why}
        remaining = [item for item in pending if item["path"] not in found]
        if len(remaining) == len(pending):  # no progress: give up on the rest
            for item in remaining:
                found[item["path"]] = {"path": item["path"], "error": "not loaded"}
            break
        pending = remaining
    return found


def _site_dirs(paths: list[str]) -> list[str]:
    """The search-path entries that hold installed distributions (no stdlib, no zip files)."""
    import sysconfig

    stdlib = set()
    for key in ("stdlib", "platstdlib"):
        with contextlib.suppress(KeyError):
            stdlib.add(os.path.realpath(sysconfig.get_paths()[key]))
    dirs: list[str] = []
    for entry in paths:
        real = os.path.realpath(entry)
        if not os.path.isdir(real) or real in stdlib or os.path.basename(real) == "lib-dynload":
            continue
        inside = any(real.startswith(d + os.sep) for d in stdlib)
        if inside and not re.search(r"[\\/](site|dist)-packages([\\/]|$)", real):
            continue
        if any(real == d or real.startswith(d + os.sep) for d in dirs):
            continue
        dirs.append(real)
    return dirs


def _scan(folder: str, recursive: bool) -> list[str]:
    """Paths of CUDA library files under ``folder``."""
    found: list[str] = []
    if recursive:
        for root, subdirs, files in os.walk(folder):
            subdirs[:] = [
                d
                for d in subdirs
                if d not in _PRUNE_DIRS and not d.endswith((".dist-info", ".egg-info"))
            ]
            for name in files:
                if name.startswith("lib") and ".so" in name and classify_library(name):
                    found.append(os.path.join(root, name))
        return found
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return found
    for name in names:
        if name.startswith("lib") and ".so" in name and classify_library(name):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                found.append(path)
    return found


class _CondaFiles:
    """Which conda package installed a file (records' ``files`` are relative to the prefix)."""

    def __init__(self, prefix: str, records: list[dict[str, object]]) -> None:
        self.prefix = prefix
        self.owner: dict[str, dict[str, object]] = {}
        for record in records:
            for rel in record.get("files") or []:  # type: ignore[attr-defined]
                if isinstance(rel, str) and ".so" in rel:
                    self.owner[os.path.normpath(rel)] = record

    def of(self, path: str) -> dict[str, object] | None:
        for candidate in (os.path.abspath(path), os.path.realpath(path)):
            rel = os.path.relpath(candidate, self.prefix)
            if not rel.startswith(".."):
                found = self.owner.get(os.path.normpath(rel))
                if found is not None:
                    return found
        return None


def _conda_label(record: dict[str, object]) -> str:
    channel = lib.conda_channel(record)
    return "conda package %s %s%s" % (
        record.get("name"),
        record.get("version"),
        " (%s)" % channel if channel else "",
    )


def inventory(
    index: lib.DistributionIndex,
    paths: list[str],
    prefix: str,
    records: list[dict[str, object]],
    workdir: str,
) -> list[dict[str, Any]]:
    """Every CUDA library file in the environment, one entry per real file, with its version."""
    places: list[tuple[str, str, bool]] = [(d, "site-packages", True) for d in _site_dirs(paths)]
    prefix_libs = [os.path.join(prefix, "lib"), os.path.join(prefix, "lib64")]
    targets = os.path.join(prefix, "targets")
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(targets)):
            prefix_libs.append(os.path.join(targets, name, "lib"))
    places += [(d, "environment lib", False) for d in prefix_libs]
    for folder in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep):
        if folder:
            places.append((folder, "LD_LIBRARY_PATH", False))
    by_real: dict[str, dict[str, Any]] = {}
    seen_dirs: set[str] = set()
    for folder, where, recursive in places:
        real_folder = os.path.realpath(folder)
        if real_folder in seen_dirs or not os.path.isdir(real_folder):
            continue
        seen_dirs.add(real_folder)
        for path in _scan(folder, recursive):
            real = os.path.realpath(path)
            name = os.path.basename(path)
            parsed = classify_library(os.path.basename(real)) or classify_library(name)
            if parsed is None:
                continue
            entry = by_real.get(real)
            if entry is None:
                stem, family, meaningful, _ = parsed
                entry = by_real[real] = {
                    "family": family,
                    "stem": stem,
                    "path": path,
                    "display": path
                    if where == "LD_LIBRARY_PATH"
                    else os.path.relpath(path, folder if where == "site-packages" else prefix),
                    "real": real,
                    "links": [],
                    "where": where,
                    "_meaningful": meaningful,
                    "_file_versions": [],
                }
            elif path != entry["path"]:
                entry["links"].append(path)
            if parsed[2] and parsed[3]:
                entry["_file_versions"].append(parsed[3])
    conda = _CondaFiles(prefix, records)
    dist_families: dict[str, set[str]] = {}
    for entry in by_real.values():
        key = index.owner_of_file(entry["path"]) or index.owner_of_file(entry["real"])
        if key:
            name, version = index.display(key)
            entry["owner"] = "%s %s" % (name, version)
            entry["_owner_key"] = key
            entry["_owner_version"] = version
            dist_families.setdefault(key, set()).add(entry["family"])
            continue
        record = None
        for candidate in [entry["path"], entry["real"], *entry["links"]]:
            record = conda.of(candidate)
            if record is not None:
                break
        if record is not None:
            entry["owner"] = _conda_label(record)
            entry["_owner_key"] = "conda:%s" % record.get("name")
            entry["_owner_version"] = str(record.get("version") or "")
            dist_families.setdefault(entry["_owner_key"], set()).add(entry["family"])
    calls = [
        {"path": entry["real"], "call": _VERSION_CALLS[entry["stem"]]}
        for entry in by_real.values()
        if entry["stem"] in _VERSION_CALLS
    ]
    reported = query_versions(calls, workdir) if calls else {}
    entries = sorted(by_real.values(), key=lambda e: (e["family"], e["path"]))
    for entry in entries:
        _settle_version(entry, reported.get(entry["real"]), dist_families)
    return entries


def _settle_version(
    entry: dict[str, Any], reported: dict[str, Any] | None, families: dict[str, set[str]]
) -> None:
    """Pick a copy's version: the library's own answer, its package's, then its file name's."""
    owner_key = entry.pop("_owner_key", None)
    owner_version = version_tuple(entry.pop("_owner_version", ""))
    meaningful = entry.pop("_meaningful")
    file_versions = entry.pop("_file_versions")
    # a package's version is the library's only when the package holds that one library
    # (nvidia-cublas-cu12 is cuBLAS 12.4.5.8; cudatoolkit 11.8.0 holds cuFFT 10.9)
    single = (
        owner_key is not None
        and len(families.get(owner_key, ())) == 1
        and (owner_key.startswith(("nvidia-", "conda:")))
    )
    from_package = owner_version if single and owner_version else ()
    from_file: tuple[int, ...] = ()
    for found in file_versions:
        candidate = found if len(found) >= 3 else found[:1]  # a soname's "11.0" is only "11"
        if len(candidate) > len(from_file):
            from_file = candidate
    from_library: tuple[int, ...] = ()
    if reported:
        if isinstance(reported.get("version"), list):
            from_library = tuple(int(p) for p in reported["version"])
            entry["reported"] = _dotted(from_library)
        elif reported.get("error"):
            entry["version_error"] = reported["error"]
    version: tuple[int, ...] = ()
    source = ""
    for candidate, label in (
        (from_library, "library"),
        (from_package, "package"),
        (from_file, "file name"),
    ):
        if not candidate:
            continue
        if not version:
            version, source = candidate, label
        elif versions_conflict(version, candidate):
            entry.setdefault("disagreement", []).append(
                "%s says %s, %s says %s" % (source, _dotted(version), label, _dotted(candidate))
            )
        elif len(candidate) > len(version):
            version = candidate  # same release, more precise (12.4 -> 12.4.127)
    if not meaningful and source == "file name":
        version, source = (), ""
    entry["version"] = _dotted(version) if version else None
    entry["version_source"] = source or None


def _conda_cuda_packages(records: list[dict[str, object]]) -> list[dict[str, str]]:
    packages = []
    for record in records:
        name = str(record.get("name") or "")
        if _CONDA_CUDA_RE.match(name):
            packages.append(
                {
                    "name": name,
                    "version": str(record.get("version") or ""),
                    "build": str(record.get("build") or ""),
                    "channel": lib.conda_channel(record),
                }
            )
    return packages


# -- frameworks --------------------------------------------------------------------------------


def run_framework(
    name: str, workdir: str, import_timeout: float, init_timeout: float, env: dict[str, str]
) -> dict[str, Any]:
    """Import one framework in a child and touch its device; the raw report.

    Where the import probe imports the same framework, cold, in this process (probe_set.py),
    the child starts once that import has ended, so the environment's modules are compiled
    once, not by two children at once (seconds of CPU for tensorflow); not later than half the
    import timeout (a minute at most), so a hung import delays this one only that long."""
    lib.wait_for_import(name, min(60.0, import_timeout / 2))
    child = _Child(["framework", name], workdir)
    child.run([import_timeout, init_timeout], env=env)
    report: dict[str, Any] = {}
    for line in child.lines:
        phase = line.get("phase")
        if phase in ("imported", "device"):
            report[phase] = {k: v for k, v in line.items() if k != "phase"}
    report["stderr"] = child.stderr
    report["returncode"] = child.returncode
    if child.spawn_error:
        report["spawn_error"] = child.spawn_error
    if child.timed_out_in is not None:
        report["timed_out"] = "import" if child.timed_out_in == 0 else "device"
    return report


# -- judgement ---------------------------------------------------------------------------------


class _Findings:
    """Results under construction, with the context every check needs."""

    def __init__(self, driver: dict[str, Any], requested: tuple[int, ...], elapsed: float):
        self.results: list[dict[str, Any]] = []
        #: frameworks whose build uses CUDA (they make the cell a GPU cell)
        self.cuda_builds: set[str] = set()
        self.driver = driver
        self.requested = requested
        self.elapsed = elapsed

    def add(  # noqa: PLR0917 - a result's fields, in their JSON order
        self,
        target: str,
        status: str,
        category: str | None = None,
        message: str = "",
        hint: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        self.results.append(
            lib.make_result(
                PROBE,
                target,
                status,
                category=category,
                message=message,
                hint=hint,
                duration_s=self.elapsed,
                details=details,
            )
        )

    @property
    def driver_cuda(self) -> tuple[int, ...]:
        return version_tuple(self.driver.get("cuda") or "")

    def driver_text(self) -> str:
        release = self.driver.get("release")
        cuda = self.driver.get("cuda")
        if release and cuda:
            return "driver %s (CUDA %s)" % (release, cuda)
        return "driver (CUDA %s)" % cuda if cuda else "driver"

    @property
    def has_gpu(self) -> bool:
        return bool(self.driver.get("count"))


def _describe_copy(copy: dict[str, Any]) -> str:
    """``nvidia/cuda_runtime/lib/libcudart.so.12 (nvidia-cuda-runtime-cu12 12.4.127)``."""
    owner = copy.get("owner") or "owned by no installed distribution or conda package"
    where = ", on LD_LIBRARY_PATH" if copy["where"] == "LD_LIBRARY_PATH" else ""
    return "%s (%s%s)" % (copy.get("display") or copy["path"], owner, where)


def _runtime_hint(version: tuple[int, ...], findings: _Findings, owners: list[str]) -> str:
    """Upgrade the driver, or pin what brought the newer runtime (named when known)."""
    driver = _dotted(findings.driver_cuda[:2])
    ways = []
    for owner in owners:
        name = owner.split(" ", 1)[0]
        if name.startswith("nvidia-"):
            ways.append("%s<%d.%d" % (name, findings.driver_cuda[0], findings.driver_cuda[1] + 1))
        elif owner.startswith("conda package"):
            ways.append("conda install 'cuda-version<=%s'" % driver)
        elif name:
            ways.append("a build of %s for CUDA <= %s" % (name, driver))
    ways.append("a framework build for CUDA <= %s (e.g. torch's cu1xx index)" % driver)
    return "upgrade the NVIDIA driver to %s, or install CUDA components no newer than %s: %s" % (
        _driver_needed(version),
        driver,
        "; ".join(dict.fromkeys(ways)),
    )


def _newer_than_driver(
    findings: _Findings,
    target: str,
    what: str,
    version: tuple[int, ...],
    details: dict[str, Any],
    *,
    owners: list[str] | None = None,
) -> None:
    """``cuda-driver`` failure when ``version`` (major.minor) is newer than the driver's."""
    driver = findings.driver_cuda
    if not driver or not version or tuple(version[:2]) <= tuple(driver[:2]):
        return
    runtime = _dotted(version[:2])
    if version[0] > driver[0]:
        why = "CUDA driver version is insufficient for CUDA runtime version"
    else:
        why = (
            "it runs only through CUDA minor-version compatibility, where PTX built by CUDA %s "
            "and features newer than %s fail (cudaErrorUnsupportedPtxVersion)"
            % (runtime, _dotted(driver[:2]))
        )
    findings.add(
        target,
        "fail",
        "cuda-driver",
        "%s is CUDA %s, newer than the %s: %s" % (what, runtime, findings.driver_text(), why),
        _runtime_hint(version, findings, owners or []),
        dict(details, runtime=runtime, driver=findings.driver.get("cuda")),
    )


def check_driver(findings: _Findings, needs_gpu: bool) -> None:
    driver = findings.driver
    details = {k: v for k, v in driver.items() if k != "found"}
    if not driver.get("found"):
        if needs_gpu:
            findings.add(
                "driver",
                "skip",
                "no-gpu",
                "no NVIDIA driver on this machine (libcuda.so.1 not found): GPU checks not run",
                "run this cell on a machine with an NVIDIA GPU and driver to verify it on a GPU",
                details,
            )
        return
    if not driver.get("cuda"):
        findings.add(
            "driver",
            "fail",
            "cuda-driver",
            "libcuda.so.1 (%s) loads but reports no CUDA version: %s"
            % (driver.get("path"), driver.get("error") or "rc %s" % driver.get("version_rc")),
            "the driver's user-space library does not match its kernel module, or it is a "
            "stub (lib64/stubs/libcuda.so) found first: check LD_LIBRARY_PATH and reinstall "
            "the driver",
            details,
        )
        return
    if driver.get("init_timed_out"):
        findings.add(
            "driver",
            "fail",
            "timeout",
            "cuInit did not return within %g s (%s)"
            % (driver["init_timed_out"], findings.driver_text()),
            "the GPU or its driver hangs on initialisation: check nvidia-smi and dmesg on the "
            "runner, or raise --init-timeout if initialisation is only slow",
            details,
        )
        return
    if driver.get("init_rc") == 100 or (driver.get("init_rc") == 0 and not driver.get("count")):
        findings.add(
            "driver",
            "skip",
            "no-gpu",
            "%s at %s, but no CUDA device is visible (%s): GPU checks not run"
            % (
                findings.driver_text(),
                driver.get("path"),
                driver.get("init_error") or "0 devices",
            ),
            "check CUDA_VISIBLE_DEVICES and that the runner exposes its GPU (docker --gpus)",
            details,
        )
        return
    if driver.get("init_rc") not in (0, None) or driver.get("crashed"):
        findings.add(
            "driver",
            "fail",
            "cuda-driver",
            "cuInit failed with %s (%s at %s)"
            % (
                driver.get("init_error") or driver.get("crashed"),
                findings.driver_text(),
                driver.get("path"),
            ),
            "the driver cannot initialise: a user-space library that does not match the kernel "
            "module (CUDA_ERROR_SYSTEM_DRIVER_MISMATCH) or a cuda-compat package unsupported on "
            "this GPU; fix the driver installation or remove the compat library from the "
            "library path",
            details,
        )
        return
    if driver.get("error"):
        findings.add("driver", "fail", "cuda-driver", str(driver["error"]), "", details)
        return
    names = ", ".join(
        "%s (sm_%s)" % (d.get("name"), str(d.get("capability", "")).replace(".", ""))
        for d in driver.get("devices") or []
    )
    findings.add(
        "driver",
        "pass",
        None,
        "%s, %d device(s): %s" % (findings.driver_text(), driver.get("count") or 0, names),
        "",
        details,
    )


def check_libraries(findings: _Findings, libraries: list[dict[str, Any]]) -> None:
    """Per family: copies at different versions, files that disagree with their package, and a
    CUDA runtime newer than the driver."""
    families: dict[str, list[dict[str, Any]]] = {}
    for copy in libraries:
        families.setdefault(copy["family"], []).append(copy)
    for family, copies in sorted(families.items()):
        details = {"copies": copies}
        problems = 0
        for copy in copies:
            if copy.get("disagreement"):
                problems += 1
                findings.add(
                    family,
                    "fail",
                    "inconsistent-env",
                    "%s is not the version its owner says: %s"
                    % (_describe_copy(copy), "; ".join(copy["disagreement"])),
                    "the file was overwritten by another installer; reinstall %s"
                    % (copy.get("owner") or "the package that owns it"),
                    {"copy": copy},
                )
        versioned = [c for c in copies if c.get("version")]
        groups: list[tuple[tuple[int, ...], list[dict[str, Any]]]] = []
        for copy in versioned:
            version = version_tuple(copy["version"])
            for index, (known, members) in enumerate(groups):
                if not versions_conflict(known, version):
                    members.append(copy)
                    if len(version) > len(known):
                        groups[index] = (version, members)
                    break
            else:
                groups.append((version, [copy]))
        if len(groups) > 1:
            problems += 1
            groups.sort()
            listing = "; ".join(
                "%s in %s" % (_dotted(version), ", ".join(_describe_copy(c) for c in members))
                for version, members in groups
            )
            choices = " or ".join(
                ", ".join(sorted({str(c.get("owner") or c["path"]) for c in members}))
                for _, members in groups
            )
            findings.add(
                family,
                "fail",
                "inconsistent-env",
                "%d versions of %s in this environment: %s" % (len(groups), family, listing),
                "which copy a process uses depends on import order and library paths; keep one: "
                "remove %s, and install builds of your packages for the CUDA you keep" % choices,
                details,
            )
        if family == "cudart":
            for version, members in groups:
                _newer_than_driver(
                    findings,
                    family,
                    "the CUDA runtime %s" % ", ".join(_describe_copy(c) for c in members),
                    version,
                    {"copies": members},
                    owners=[str(c.get("owner") or "") for c in members],
                )
        if not problems:
            versions = sorted({c["version"] for c in versioned})
            findings.add(
                family,
                "pass",
                None,
                "%s %s: %d cop%s"
                % (
                    family,
                    " / ".join(versions) or "(version unknown)",
                    len(copies),
                    "y" if len(copies) == 1 else "ies",
                ),
                "",
                details,
            )


def check_conda(findings: _Findings, packages: list[dict[str, str]]) -> None:
    """conda's own CUDA pin (``cuda-version``, else ``cudatoolkit``) against the driver."""
    pinned = [p for p in packages if p["name"] in ("cuda-version", "cudatoolkit")]
    for package in pinned:
        _newer_than_driver(
            findings,
            package["name"],
            "conda package %s %s" % (package["name"], package["version"]),
            version_tuple(package["version"]),
            {"package": package},
        )


def _import_category(message: str) -> str:
    if "cannot open shared object file" in message:
        return "missing-library"
    if "undefined symbol" in message:
        return "undefined-symbol"
    if re.search(r"version `[^']+' not found", message):
        return "symbol-version"
    return "import-error"


def _device_failure(findings: _Findings, target: str, who: str, report: dict[str, Any]) -> None:
    """The device phase failed or timed out: say why, with the framework's own words."""
    device = report.get("device") or {}
    if report.get("timed_out") == "device":
        findings.add(
            target,
            "fail",
            "timeout",
            "%s: the first CUDA initialisation did not finish within the %g s cap"
            % (who, report["_init_timeout"]),
            "the GPU or driver hangs on initialisation (check nvidia-smi, dmesg, MIG/MPS "
            "settings), or raise --init-timeout if it is only slow",
            {"stderr_tail": lib.tail(report.get("stderr") or "", 20, 3000)},
        )
        return
    error = str(device.get("error") or "")
    text = error + "\n" + str(report.get("stderr") or "")
    details = {
        "error": error,
        "step": device.get("step"),
        "traceback_tail": lib.tail(str(device.get("traceback") or ""), 12, 3000),
        "stderr_tail": lib.tail(report.get("stderr") or "", 15, 3000),
    }
    if "no kernel image is available" in text or "is not compatible with the current" in text:
        findings.add(
            target,
            "fail",
            "cuda-arch",
            "%s has no kernel for this GPU (%s): %s"
            % (who, device.get("capability") or device.get("name") or "?", error),
            "this build was compiled for other GPU architectures (see details.arch_list): "
            "install a build that includes this GPU's sm_XY, or a newer release",
            details,
        )
    elif re.search(r"driver (version )?(on your system )?is (too old|insufficient)", text):
        findings.add(
            target,
            "fail",
            "cuda-driver",
            "%s: %s" % (who, error or "CUDA driver too old"),
            "upgrade the NVIDIA driver, or install a build for an older CUDA",
            details,
        )
    else:
        findings.add(
            target,
            "fail",
            "cuda-runtime",
            "%s could not compute on the GPU%s: %s"
            % (who, " (%s)" % device["step"] if device.get("step") else "", error),
            "see details.traceback_tail; with a working driver this is a broken CUDA library "
            "in the environment",
            details,
        )


def _cuda_install_hint(target: str, findings: _Findings) -> str:
    """How to get ``target``'s build for the CUDA the cell asked for."""
    major = findings.requested[0]
    wanted = _dotted(findings.requested[:2])
    return {
        "torch": "install torch from the PyTorch index for this CUDA "
        "(--index-url https://download.pytorch.org/whl/cu%s)" % wanted.replace(".", ""),
        "jax": "install 'jax[cuda%d]' (the jax-cuda%d-plugin)" % (major, major),
        "tensorflow": "install 'tensorflow[and-cuda]' (Linux)",
        "cupy": "install cupy-cuda%dx" % major,
    }.get(target, "install the build for CUDA %s" % wanted)


def _requested_mismatch(
    findings: _Findings, target: str, who: str, build: tuple[int, ...], how: str
) -> bool:
    """The cell asked for CUDA X and got a CPU-only build or one for another CUDA major."""
    if not findings.requested:
        return False
    wanted = _dotted(findings.requested)
    if not build:
        findings.add(
            target,
            "fail",
            "cuda-runtime",
            "%s is a CPU-only build (%s), but the cell asks for CUDA %s" % (who, how, wanted),
            "the resolver picked a CPU-only build: %s" % _cuda_install_hint(target, findings),
            {"requested": wanted},
        )
        return True
    if build[0] != findings.requested[0]:
        findings.add(
            target,
            "fail",
            "cuda-runtime",
            "%s is built for CUDA %s, but the cell asks for CUDA %s"
            % (who, _dotted(build), wanted),
            _cuda_install_hint(target, findings),
            {"requested": wanted},
        )
        return True
    return False


def _framework_result(
    findings: _Findings,
    target: str,
    who: str,
    report: dict[str, Any],
    build: tuple[int, ...],
    *,
    problems: int,
    details: dict[str, Any],
) -> None:
    """The framework's device verdict: pass, skip/no-gpu, or the device failure."""
    device = report.get("device") or {}
    if build:
        findings.cuda_builds.add(target)
    if not build:
        if not problems:
            findings.add(
                target,
                "pass",
                None,
                "%s is a CPU-only build: nothing CUDA to check" % who,
                "",
                details,
            )
        return
    if report.get("timed_out") == "device" or (device.get("error") and findings.has_gpu):
        _device_failure(findings, target, who, report)
        return
    if device.get("ops") == "ok":
        findings.add(
            target,
            "pass",
            None,
            "%s computed on %s" % (who, device.get("name") or "the GPU"),
            "",
            details,
        )
        return
    if not findings.has_gpu:
        if not problems:
            findings.add(
                target,
                "skip",
                "no-gpu",
                "%s (CUDA %s build): no GPU on this machine, device checks not run"
                % (who, _dotted(build)),
                "run this cell on a GPU runner to verify it",
                details,
            )
        return
    findings.add(
        target,
        "fail",
        "cuda-runtime",
        "%s sees no GPU although the %s has %d device(s)"
        % (who, findings.driver_text(), findings.driver.get("count") or 0),
        "the framework could not load its CUDA libraries or initialise the driver: see "
        "details.stderr_tail",
        dict(details, stderr_tail=lib.tail(report.get("stderr") or "", 20, 3000)),
    )


def _imported(findings: _Findings, target: str, report: dict[str, Any]) -> dict[str, Any] | None:
    """The import report, or None after reporting why the framework did not import."""
    imported = report.get("imported")
    if report.get("spawn_error"):
        findings.add(target, "error", "probe-error", str(report["spawn_error"]), "")
        return None
    if report.get("timed_out") == "import":
        findings.add(
            target,
            "fail",
            "timeout",
            "import %s did not finish within %g s" % (target, report["_import_timeout"]),
            "the import blocks (see the import probe for where); raise --import-timeout if it "
            "is only slow",
            {"stderr_tail": lib.tail(report.get("stderr") or "", 20, 3000)},
        )
        return None
    if not imported:
        rc = report.get("returncode")
        findings.add(
            target,
            "fail",
            "crash" if isinstance(rc, int) and rc < 0 else "import-error",
            "import %s ended the process (exit status %s)" % (target, rc),
            "see details.stderr_tail (and the import probe's result for %s)" % target,
            {"stderr_tail": lib.tail(report.get("stderr") or "", 20, 3000)},
        )
        return None
    if imported.get("import_error"):
        message = str(imported["import_error"])
        findings.add(
            target,
            "fail",
            _import_category(message),
            "import %s failed: %s" % (target, lib.tail(message, 3, 800)),
            "the framework's CUDA libraries do not load: compare details.loaded with the "
            "cuda probe's library results",
            {
                "traceback_tail": lib.tail(str(imported.get("traceback") or ""), 12, 3000),
                "loaded": imported.get("loaded"),
            },
        )
        return None
    return dict(imported)


def judge_torch(findings: _Findings, report: dict[str, Any], index: lib.DistributionIndex) -> None:
    info = _imported(findings, "torch", report)
    if info is None:
        return
    who = "torch %s" % info.get("version")
    build = version_tuple(info.get("cuda") or "")
    details = {"torch": info, "device": report.get("device")}
    details["cpu_only"] = not build and not info.get("hip")
    problems = len(findings.results)
    _requested_mismatch(findings, "torch", who, build, "torch.version.cuda is None")
    compiled = [int(p) for p in info.get("cudnn_compiled") or []]
    runtime = [int(p) for p in info.get("cudnn_runtime") or []]
    if compiled and runtime:
        if compiled[0] != runtime[0] or runtime[1] < compiled[1]:
            cudnn_dists = sorted(
                "%s %s" % index.display(k) for k in index.versions() if k.startswith("nvidia-cudnn")
            )
            findings.add(
                "torch",
                "fail",
                "cuda-runtime",
                "%s was built with cuDNN %s but loads cuDNN %s%s"
                % (
                    who,
                    _dotted(tuple(compiled)),
                    _dotted(tuple(runtime)),
                    " (%s)" % ", ".join(cudnn_dists) if cudnn_dists else "",
                ),
                "install the cuDNN that %s pins (its nvidia-cudnn-cu%d requirement), and make "
                "sure no other libcudnn comes first on LD_LIBRARY_PATH"
                % (who, build[0] if build else 12),
                {
                    "cudnn_compiled": compiled,
                    "cudnn_runtime": runtime,
                    "loaded": info.get("loaded"),
                },
            )
    elif info.get("cudnn_check_error"):
        findings.add(
            "torch",
            "fail",
            "cuda-runtime",
            "%s: torch.backends.cudnn.version() failed: %s" % (who, info["cudnn_check_error"]),
            "install the cuDNN that %s pins" % who,
            {"loaded": info.get("loaded")},
        )
    if build:
        _newer_than_driver(findings, "torch", "%s (torch.version.cuda)" % who, build, {})
    problems = len(findings.results) - problems
    _framework_result(findings, "torch", who, report, build, problems=problems, details=details)


def judge_jax(findings: _Findings, report: dict[str, Any], index: lib.DistributionIndex) -> None:
    versions = index.versions()
    plugins = {key: versions[key] for key in versions if _JAX_PLUGIN_RE.match(key)}
    jax_version = versions.get("jax", "")
    jaxlib_version = versions.get("jaxlib", "")
    before = len(findings.results)
    if (
        jaxlib_version
        and jax_version
        and version_tuple(jaxlib_version) > version_tuple(jax_version)
    ):
        findings.add(
            "jax",
            "fail",
            "inconsistent-env",
            "jaxlib %s is newer than and incompatible with jax %s" % (jaxlib_version, jax_version),
            "install matching releases: uv pip install 'jax==%s' (or jaxlib==%s)"
            % (jaxlib_version, jax_version),
            {"jax": jax_version, "jaxlib": jaxlib_version},
        )
    for key, version in sorted(plugins.items()):
        if jaxlib_version and version_tuple(version)[:3] != version_tuple(jaxlib_version)[:3]:
            findings.add(
                "jax",
                "fail",
                "inconsistent-env",
                "%s %s does not match jaxlib %s: JAX ignores the plugin and runs on the CPU"
                % (key, version, jaxlib_version),
                "install the plugin release that matches jaxlib: uv pip install "
                "'jax[cuda%s]==%s'"
                % (_JAX_PLUGIN_RE.match(key).group("major"), jax_version or jaxlib_version),  # type: ignore[union-attr]
                {"plugin": key, "plugin_version": version, "jaxlib": jaxlib_version},
            )
    info = _imported(findings, "jax", report)
    if info is None:
        return
    who = "jax %s (jaxlib %s)" % (info.get("version"), info.get("jaxlib"))
    majors = sorted({int(_JAX_PLUGIN_RE.match(k).group("major")) for k in plugins})  # type: ignore[union-attr]
    local = re.search(r"\+cuda(\d+)", str(info.get("jaxlib") or ""))
    build: tuple[int, ...] = (
        (majors[-1],) if majors else ((int(local.group(1)[:2]),) if local else ())
    )
    stderr = str(report.get("stderr") or "")
    details = {"jax": info, "plugins": plugins, "device": report.get("device")}
    details["cpu_only"] = not build
    _requested_mismatch(findings, "jax", who, build, "no jax-cuda plugin installed")
    backend = re.search(r"Unable to initialize backend 'cuda'[^\n]*", stderr)
    if build and backend and findings.has_gpu:
        findings.add(
            "jax",
            "fail",
            "cuda-runtime",
            "%s: %s" % (who, backend.group(0)),
            "JAX falls back to the CPU: the message names the CUDA component to fix "
            "(JAX_SKIP_CUDA_CONSTRAINTS_CHECK hides it, it does not fix it)",
            dict(details, stderr_tail=lib.tail(stderr, 20, 3000)),
        )
    elif build and re.search(r"Outdated \w+ installation found", stderr):
        findings.add(
            "jax",
            "fail",
            "cuda-runtime",
            "%s: %s" % (who, re.search(r"Outdated[^\n]*", stderr).group(0)),  # type: ignore[union-attr]
            "install the CUDA library version JAX names (pip install -U 'jax[cuda%d]')" % build[0],
            dict(details, stderr_tail=lib.tail(stderr, 20, 3000)),
        )
    problems = len(findings.results) - before
    _framework_result(findings, "jax", who, report, build, problems=problems, details=details)


def judge_tensorflow(
    findings: _Findings, report: dict[str, Any], libraries: list[dict[str, Any]]
) -> None:
    info = _imported(findings, "tensorflow", report)
    if info is None:
        return
    build_info = info.get("build") or {}
    who = "tensorflow %s" % info.get("version")
    build = (
        version_tuple(build_info.get("cuda_version") or "")
        if build_info.get("is_cuda_build")
        else ()
    )
    details = {"tensorflow": info, "device": report.get("device")}
    details["cpu_only"] = not build
    before = len(findings.results)
    _requested_mismatch(findings, "tensorflow", who, build, "is_cuda_build is False")
    stderr = str(report.get("stderr") or "")
    missing = sorted(set(re.findall(r"Could not load dynamic library '([^']+)'", stderr)))
    if build and missing:
        findings.add(
            "tensorflow",
            "fail",
            "missing-library",
            "%s could not load %s and skips registering GPU devices" % (who, ", ".join(missing)),
            "install the CUDA libraries this build expects (pip install 'tensorflow[and-cuda]"
            "==%s')" % info.get("version"),
            dict(details, stderr_tail=lib.tail(stderr, 20, 3000)),
        )
    wanted_cudnn = version_tuple(build_info.get("cudnn_version") or "")
    if build and wanted_cudnn:
        found = sorted(
            {c["version"] for c in libraries if c["family"] == "cudnn" and c.get("version")}
        )
        if found and all(version_tuple(v)[0] != wanted_cudnn[0] for v in found):
            findings.add(
                "tensorflow",
                "fail",
                "cuda-runtime",
                "%s was built with cuDNN %s but the environment has cuDNN %s"
                % (who, _dotted(wanted_cudnn), ", ".join(found)),
                "install nvidia-cudnn-cu%d %d.x" % (build[0], wanted_cudnn[0]),
                details,
            )
    if build:
        _newer_than_driver(findings, "tensorflow", "%s (build)" % who, build, {})
    problems = len(findings.results) - before
    _framework_result(
        findings, "tensorflow", who, report, build, problems=problems, details=details
    )


def judge_cupy(findings: _Findings, report: dict[str, Any], dist: str) -> None:
    info = _imported(findings, "cupy", report)
    if info is None:
        return
    who = "%s %s" % (dist, info.get("version"))
    runtime = info.get("runtime")
    build = version_tuple(cuda_text(runtime)) if isinstance(runtime, int) and runtime else ()
    match = re.match(r"^cupy-cuda(\d+)", dist)
    if not build and match:
        build = (int(match.group(1)[:2]),)
    details = {"cupy": info, "device": report.get("device")}
    before = len(findings.results)
    _requested_mismatch(findings, "cupy", who, build, "no CUDA runtime")
    if build:
        _newer_than_driver(findings, "cupy", "%s (cudaRuntimeGetVersion)" % who, build, {})
    problems = len(findings.results) - before
    _framework_result(findings, "cupy", who, report, build, problems=problems, details=details)


def _installed_frameworks(index: lib.DistributionIndex) -> dict[str, str]:
    """framework -> the distribution that provides it."""
    versions = index.versions()
    found: dict[str, str] = {}
    for framework, dists in _FRAMEWORK_DISTS.items():
        for dist in dists:
            if dist in versions:
                found[framework] = dist
                break
    if "cupy" not in found:
        for key in sorted(versions):
            if _CUPY_RE.match(key):
                found["cupy"] = key
                break
    return found


# -- command line ----------------------------------------------------------------------------


def _parser() -> lib.ProbeArgumentParser:
    parser = lib.ProbeArgumentParser(
        prog="cuda_probe.py",
        description="Check the CUDA driver, libraries and frameworks of this environment.",
    )
    parser.add_argument(
        "--init-timeout",
        type=float,
        default=DEFAULT_INIT_TIMEOUT,
        help="seconds allowed for the first device initialisation (default %(default)s)",
    )
    parser.add_argument(
        "--import-timeout",
        type=float,
        default=DEFAULT_IMPORT_TIMEOUT,
        help="seconds allowed to import each framework (default %(default)s)",
    )
    parser.add_argument(
        "--cuda", default="", help="the CUDA version the cell asked for ('none': CPU)"
    )
    parser.add_argument("--prefix", default=None, help="environment prefix (default: sys.prefix)")
    parser.add_argument(
        "--path", action="append", default=[], metavar="DIR", help="extra site directory"
    )
    return parser


def _nothing_found(start: float, driver: dict[str, Any]) -> dict[str, Any]:
    return lib.make_result(
        PROBE,
        "cuda",
        "pass",
        message="no CUDA components in this environment",
        duration_s=time.perf_counter() - start,
        details={"driver": driver},
    )


def _nothing_to_check(start: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The answer for an environment with nothing that uses CUDA: the driver is not asked."""
    driver: dict[str, Any] = {"found": False, "checked": False}
    document = {"driver": driver, "libraries": [], "conda_packages": [], "frameworks": {}}
    return [_nothing_found(start, driver)], document


def main(argv: list[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    args = _parser().parse_args(argv)
    if args.init_timeout <= 0 or args.import_timeout <= 0:
        raise lib.UsageError("timeouts must be positive")
    requested: tuple[int, ...] = ()
    if args.cuda and args.cuda.lower() not in ("none", "cpu"):
        requested = version_tuple(args.cuda)
        if not requested:
            raise lib.UsageError("--cuda: not a CUDA version: %r" % args.cuda)
    start = time.perf_counter()
    prefix = os.path.abspath(args.prefix or sys.prefix)
    extra = [os.path.abspath(p) for p in args.path]
    paths = lib.search_paths(extra)
    index = lib.distribution_index(paths)
    records = lib.conda_records(prefix)
    frameworks = _installed_frameworks(index)
    workdir = tempfile.mkdtemp(prefix="compat-cuda-")
    env = dict(os.environ)
    if extra:
        env["PYTHONPATH"] = os.pathsep.join([*extra, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # Nothing here uses CUDA (no framework, no CUDA library, no conda CUDA package, no CUDA
    # requested): the driver cannot change this cell's verdict, so its child is not started.
    # The file scan answers that in milliseconds, before any child.
    libraries: list[dict[str, Any]] | None = None
    if not frameworks and not requested and not _conda_cuda_packages(records):
        libraries = inventory(index, paths, prefix, records, workdir)
    try:
        if libraries == []:
            return _nothing_to_check(start)
        with ThreadPoolExecutor(max_workers=2 + len(frameworks)) as pool:
            driver_job = pool.submit(probe_driver, workdir, args.init_timeout)
            library_job = pool.submit(
                lambda: (
                    libraries
                    if libraries is not None
                    else inventory(index, paths, prefix, records, workdir)
                )
            )
            framework_jobs = {
                name: pool.submit(
                    run_framework, name, workdir, args.import_timeout, args.init_timeout, env
                )
                for name in sorted(frameworks)
            }
            driver = driver_job.result()
            libraries = library_job.result()
            reports = {name: job.result() for name, job in framework_jobs.items()}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    conda_packages = _conda_cuda_packages(records)
    findings = _Findings(driver, requested, time.perf_counter() - start)
    for report in reports.values():
        report["_import_timeout"] = args.import_timeout
        report["_init_timeout"] = args.init_timeout
    if "torch" in reports:
        judge_torch(findings, reports["torch"], index)
    if "jax" in reports:
        judge_jax(findings, reports["jax"], index)
    if "tensorflow" in reports:
        judge_tensorflow(findings, reports["tensorflow"], libraries)
    if "cupy" in reports:
        judge_cupy(findings, reports["cupy"], frameworks["cupy"])
    framework_results = list(findings.results)
    findings.results = []
    check_libraries(findings, libraries)
    check_conda(findings, conda_packages)
    needs_gpu = bool(libraries or conda_packages or requested or findings.cuda_builds)
    library_results = findings.results
    findings.results = []
    check_driver(findings, needs_gpu)
    results = findings.results + library_results + framework_results
    if not results:
        results = [_nothing_found(start, driver)]
    framework_summary = {
        name: {
            "distribution": frameworks[name],
            "imported": report.get("imported"),
            "device": report.get("device"),
            "timed_out": report.get("timed_out"),
        }
        for name, report in reports.items()
    }
    return results, {
        "driver": driver,
        "libraries": libraries,
        "conda_packages": conda_packages,
        "frameworks": framework_summary,
    }


if __name__ == "__main__":
    sys.exit(lib.run_probe(PROBE, main))
