"""Stdlib-only helpers shared by the probes in this directory.

Probes run under any CPython 3.8-3.14 inside a cell's environment, so this module uses nothing
newer than Python 3.8 and nothing outside the standard library. A probe imports it by having its
own directory on ``sys.path`` (automatic for a script; each probe also inserts it itself, for
``python -P`` and ``-I``).

The contract every probe keeps: exactly one JSON document on stdout, even when the probe itself
crashes (:func:`run_probe`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import sysconfig
import time

# argparse, csv, json, platform, signal and traceback are imported where they are used: a probe
# is a new process per environment, and importing them all up front cost ~10 ms of its start-up.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (another 3 ms)
if TYPE_CHECKING:
    import argparse
    import subprocess
    import threading

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAIL",
    "EXIT_OK",
    "EXIT_USAGE",
    "FIRST_NUMPY2_RELEASE",
    "DistributionIndex",
    "ProbeArgumentParser",
    "UsageError",
    "built_document",
    "canonicalize_name",
    "category_counts",
    "cold",
    "conda_channel",
    "conda_channel_source",
    "conda_metadata_dirs",
    "conda_records",
    "distribution_index",
    "document",
    "error_document",
    "exit_status",
    "import_ended",
    "imports_begin",
    "imports_ended",
    "kill_group",
    "make_result",
    "module_name_of_file",
    "public_top_level",
    "python_info",
    "read_tail",
    "results_document",
    "run_document_probe",
    "run_probe",
    "search_paths",
    "share_indexes",
    "summary_result",
    "tail",
    "top_level_from_files",
    "usable_cpus",
    "wait_for_import",
]

EXIT_OK = 0  # every result passed or was skipped
EXIT_FAIL = 1  # at least one result is a real incompatibility
EXIT_USAGE = 2  # bad command line (the document carries one error result)
EXIT_ERROR = 3  # the probe itself failed (the document carries one error result)

#: First release of a distribution whose wheels were built against NumPy 2 (release notes).
FIRST_NUMPY2_RELEASE = {
    "astropy": "6.1.0",
    "bottleneck": "1.4.0",
    "h5py": "3.11.0",
    "matplotlib": "3.8.4",
    "numba": "0.60.0",
    "numexpr": "2.10.0",
    "opencv-python": "4.10.0.84",
    "opencv-python-headless": "4.10.0.84",
    "pandas": "2.2.2",
    "pyarrow": "16.0.0",
    "pywavelets": "1.6.0",
    "scikit-learn": "1.4.2",
    "scipy": "1.13.0",
    "shapely": "2.0.4",
    "statsmodels": "0.14.2",
}

_CANONICAL_RE = re.compile(r"[-_.]+")
_EXTENSION_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.[^./]+)?\.(?:so|pyd)$")
_PY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.pyc?$")
#: Top-level names a distribution should not install; never offered as an import target.
#: What reading a broken or half-written metadata directory can raise.
_METADATA_ERRORS = (OSError, ValueError, LookupError, AttributeError, TypeError)
_NOT_TARGETS = frozenset({"test", "tests", "__pycache__"})


class UsageError(Exception):
    """A bad command line: reported in the JSON document instead of argparse's exit(2)."""


def _probe_argument_parser() -> type:
    import argparse

    class ProbeArgumentParser(argparse.ArgumentParser):
        """argparse that raises :class:`UsageError`, so a usage error still yields a document."""

        def error(self, message: str) -> None:  # type: ignore[override]
            raise UsageError(message)

    return ProbeArgumentParser


def __getattr__(name: str) -> object:
    """``ProbeArgumentParser`` is built on first use (PEP 562), so importing this module does not
    import argparse."""
    if name == "ProbeArgumentParser":
        cls = _probe_argument_parser()
        globals()[name] = cls
        return cls
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


if TYPE_CHECKING:
    ProbeArgumentParser = argparse.ArgumentParser


def canonicalize_name(name: str) -> str:
    """PEP 503 normalised distribution name (``Foo.Bar_baz`` -> ``foo-bar-baz``)."""
    return _CANONICAL_RE.sub("-", name).lower()


def python_info() -> dict[str, object]:
    """What the harness needs to know about the interpreter that ran the probe."""
    import platform

    return {
        "version": platform.python_version(),
        "implementation": sys.implementation.name,
        "abi": sysconfig.get_config_var("SOABI") or "",
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "executable": sys.executable,
    }


def make_result(
    probe: str,
    target: str,
    status: str,
    *,
    category: str | None = None,
    message: str = "",
    hint: str = "",
    duration_s: float = 0.0,
    details: dict[str, object] | None = None,
) -> dict[str, object]:
    """One entry of a document's ``results`` (the ProbeResult shape of compat.json)."""
    return {
        "probe": probe,
        "target": target,
        "status": status,
        "category": category,
        "message": message,
        "hint": hint,
        "duration_s": round(float(duration_s), 6),
        "details": details if details is not None else {},
    }


def tail(text: str, lines: int = 15, chars: int = 4000) -> str:
    """The last ``lines`` lines of ``text``, at most ``chars`` characters."""
    kept = "\n".join(text.rstrip("\n").splitlines()[-lines:])
    return kept[-chars:]


def read_tail(path: str, limit: int) -> str:
    """The last ``limit`` bytes of a file a child wrote, decoded leniently ("" if unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group (it leads one), and the child itself in any case."""
    import signal

    if hasattr(os, "killpg"):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()


def category_counts(results: list[dict[str, object]], status: str) -> dict[object, int]:
    """``{category: how many results}`` among the results with ``status``."""
    counts: dict[object, int] = {}
    for result in results:
        if result["status"] == status:
            category = result["category"]
            counts[category] = counts.get(category, 0) + 1
    return counts


def _counted(counts: dict[object, int]) -> str:
    return ", ".join("%d %s" % (n, c) for c, n in sorted(counts.items()))


def summary_result(
    probe: str,
    results: list[dict[str, object]],
    summary: str,
    *,
    noun: str,
    started: float,
    details: dict[str, object],
) -> dict[str, object]:
    """The closing ``environment`` result of a per-file probe (abi, native).

    ``summary`` gets the failures (``; 2 <noun>: 1 a, 1 b``) and skips appended; the result
    fails, with the first failure's category, when any of ``results`` failed.
    """
    fails = [r for r in results if r["status"] == "fail"]
    skipped = category_counts(results, "skip")
    latent = category_counts(results, "latent")
    if fails:
        summary += "; %d %s: %s" % (len(fails), noun, _counted(category_counts(results, "fail")))
    if latent:
        summary += "; latent (fail only loaded on their own): %s" % _counted(latent)
    if skipped:
        summary += "; skipped: %s" % _counted(skipped)
    return make_result(
        probe,
        "environment",
        "fail" if fails else "pass",
        category=fails[0]["category"] if fails else None,  # type: ignore[arg-type]
        message=summary,
        hint="see the results for each file" if fails else "",
        duration_s=time.perf_counter() - started,
        details=details,
    )


def document(probe: str, results: list[dict[str, object]]) -> dict[str, object]:
    """A probe's whole JSON document: its name, :func:`python_info` and ``results``."""
    return {"probe": probe, "python": python_info(), "results": results}


def error_document(probe: str, message: str, hint: str, started: float) -> dict[str, object]:
    """A document whose one result says the probe itself could not run (status ``error``)."""
    import traceback

    tb = traceback.format_exc()
    result = make_result(
        probe,
        "environment",
        "error",
        category="probe-error",
        message=message,
        hint=hint,
        duration_s=time.perf_counter() - started,
        details={"traceback": tb[-8000:]} if tb.strip() != "NoneType: None" else {},
    )
    return document(probe, [result])


def exit_status(document: dict[str, object]) -> int:
    """0 when nothing failed, 1 for a real incompatibility, 3 when the probe itself broke."""
    statuses = {r.get("status") for r in document.get("results", [])}  # type: ignore[attr-defined]
    if "error" in statuses:
        return EXIT_ERROR
    return EXIT_FAIL if "fail" in statuses else EXIT_OK


def built_document(name: str, build: object, argv: list[str] | None = None) -> dict[str, object]:
    """The document ``build(argv)`` returns; a bad command line or a crash becomes an
    :func:`error_document`. For the probes that build their whole document (abi, native)."""
    started = time.perf_counter()
    try:
        return build(argv)  # type: ignore[operator,no-any-return]
    except UsageError as exc:
        hint = "the harness called the %s probe with a bad command line" % name
        return error_document(name, "usage: %s" % exc, hint, started)
    except Exception as exc:  # noqa: BLE001 - the one JSON document must be printed regardless
        hint = "the %s probe itself failed (a compat-matrix bug): see details" % name
        return error_document(name, "%s: %s" % (type(exc).__name__, exc), hint, started)


def run_document_probe(name: str, build: object, argv: list[str] | None = None) -> int:
    """Print :func:`built_document`, indented; 0, 1 or 3 by :func:`exit_status`.

    Unlike :func:`run_probe`, stdout is not swapped: nothing these probes run writes to it.
    """
    doc = built_document(name, build, argv)
    import json

    sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    return exit_status(doc)


def search_paths(extra: list[str] | None = None) -> list[str]:
    """The interpreter's module search path, minus the cwd and this directory, after ``extra``.

    The probe's own directory is on ``sys.path`` only because the probe is a script; modules
    and distributions are looked up as the environment itself would see them.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [os.path.abspath(p) for p in extra or []]
    for entry in sys.path:
        if entry in ("", ".") or os.path.abspath(entry) == here:
            continue
        if entry not in paths:
            paths.append(entry)
    return paths


def results_document(
    name: str, main: object, argv: list[str] | None = None
) -> dict[str, object] | None:
    """The document of ``main(argv) -> (results, extra_keys)``; None for ``--help``.

    Stray output from imported code goes to stderr (stdout is swapped while ``main`` runs), and
    any exception becomes a document with one ``error`` result, so the harness always has
    something to parse.
    """
    stdout = sys.stdout
    sys.stdout = sys.stderr
    results: list[dict[str, object]] = []
    extra: dict[str, object] = {}
    try:
        try:
            results, extra = main(argv)  # type: ignore[operator]
        except UsageError as exc:
            results = [
                make_result(
                    name,
                    "<usage>",
                    "error",
                    category="probe-error",
                    message="usage: %s" % exc,
                    hint="the harness called the %s probe with a bad command line" % name,
                )
            ]
        except SystemExit as exc:  # --help
            if exc.code in (0, None):
                return None
            raise
        except BaseException as exc:  # noqa: BLE001 - the document must be printed whatever broke
            import traceback

            results = [
                make_result(
                    name,
                    "<probe>",
                    "error",
                    category="probe-error",
                    message="%s: %s" % (type(exc).__name__, exc),
                    hint="the %s probe itself failed (a bug in compat-matrix): see details" % name,
                    details={"traceback": tail(traceback.format_exc(), 30, 8000)},
                )
            ]
        document: dict[str, object] = {"probe": name}
        try:
            document["python"] = python_info()
        except Exception as exc:  # noqa: BLE001 - a broken sysconfig must not lose the results
            import platform

            document["python"] = {"version": platform.python_version(), "error": str(exc)}
        document["results"] = results
        for key, value in extra.items():
            document.setdefault(key, value)
        return document
    finally:
        sys.stdout = stdout


def run_probe(name: str, main: object, argv: list[str] | None = None) -> int:
    """Run ``main(argv) -> (results, extra_keys)`` and print its one JSON document
    (:func:`results_document`); exit status 0, 1 or 3 by :func:`exit_status`, 2 for usage."""
    document = results_document(name, main, argv)
    if document is None:
        return EXIT_OK
    import json

    text = json.dumps(document, ensure_ascii=True, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    results = document["results"]
    if any(r.get("category") == "probe-error" and r.get("target") == "<usage>" for r in results):  # type: ignore[attr-defined]
        return EXIT_USAGE
    return exit_status(document)


def module_name_of_file(filename: str) -> str | None:
    """The module a file at the top of a site directory provides, or None if it is no module.

    ``six.py`` -> ``six``; ``_cffi_backend.cpython-311-x86_64-linux-gnu.so`` -> ``_cffi_backend``.
    """
    for pattern in (_PY_RE, _EXTENSION_RE):
        match = pattern.match(filename)
        if match:
            return match.group(1)
    return None


def top_level_from_files(files: list[str]) -> set[str]:
    """Every top-level importable name in a distribution's RECORD (posix relative paths).

    Packages are directories with an ``__init__`` module; a directory that is a valid
    identifier and holds Python code anywhere below counts too (namespace packages such as
    ``google``). Metadata directories, ``*.libs``, ``*-stubs`` and files outside the site
    directory (``../../bin/...``) are not modules.
    """
    packages: set[str] = set()
    namespaces: set[str] = set()
    modules: set[str] = set()
    for entry in files:
        parts = [p for p in entry.replace("\\", "/").split("/") if p]
        if not parts or parts[0] in ("..", "."):
            continue
        if len(parts) == 1:
            name = module_name_of_file(parts[0])
            if name:
                modules.add(name)
            continue
        top = parts[0]
        if not top.isidentifier() or top == "__pycache__" or "__pycache__" in parts[:-1]:
            continue
        leaf = module_name_of_file(parts[-1])
        if leaf is None:
            continue
        if len(parts) == 2 and leaf == "__init__":
            packages.add(top)
        else:
            namespaces.add(top)
    return packages | namespaces | modules


def public_top_level(names: set[str] | list[str]) -> list[str]:
    """The names worth importing: no tests, and private names only when that is all there is."""
    usable = sorted(n for n in set(names) if n not in _NOT_TARGETS)
    public = [n for n in usable if not n.startswith("_")]
    return public or usable


def _read_text(dist: object, name: str) -> str | None:
    """A metadata file of ``dist`` (None when it has none or it cannot be read)."""
    try:
        text = dist.read_text(name)  # type: ignore[attr-defined]
    except _METADATA_ERRORS:
        return None
    return None if text is None else str(text)


def _name_and_version(dist: object) -> tuple[object, str]:
    """``Name`` and ``Version`` from the metadata's first lines; the whole email parse only when
    they are not plain headers there (a folded or encoded header, no METADATA file)."""
    text = None
    for filename in ("METADATA", "PKG-INFO"):
        text = dist.read_text(filename)  # type: ignore[attr-defined]
        if text is not None:
            break
    fields: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            break  # the headers end at the first blank line
        if line[0] in " \t":
            fields.clear()  # a folded header: let the email parser read it
            break
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version") and key not in fields:
            fields[key] = value.strip()
        if len(fields) == 2:
            return fields["Name"], fields["Version"]
    # .get(): a missing field is None, not a DeprecationWarning (3.12+) or KeyError
    meta = dist.metadata  # type: ignore[attr-defined]
    return meta.get("Name"), meta.get("Version") or ""


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's cpuset or ``taskset`` narrows them;
    ``os.cpu_count()`` counts the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


class _PathDist:
    """One ``*.dist-info`` / ``*.egg-info`` found on the search path: what importlib.metadata's
    ``PathDistribution`` answers for ``read_text``, ``locate_file`` and ``_path``, without
    importing importlib.metadata (email, zipfile, csv, inspect: ~45 ms, the largest cost of a
    warm probe process). Anything else (``metadata``, ``files``, ``requires``) is asked of a
    real ``PathDistribution`` made on first use, so every answer stays importlib.metadata's."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._real: object | None = None

    def read_text(self, filename: str) -> str | None:
        # PathDistribution.read_text: the same errors mean "no such file"
        try:
            with open(os.path.join(self._path, filename), encoding="utf-8") as handle:
                return handle.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            return None

    def locate_file(self, path: str) -> str:
        parent = os.path.dirname(self._path)
        return os.path.join(parent, str(path)) if path else parent

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._real is None:
            import pathlib
            from importlib import metadata

            self._real = metadata.PathDistribution(pathlib.Path(self._path))
        return getattr(self._real, name)


def _distributions(paths: list[str]) -> list[object]:
    """Every distribution on ``paths``, in the order ``importlib.metadata.distributions(path=)``
    yields them: path entry by path entry, each folder's ``*.dist-info`` / ``*.egg-info``
    entries (and an ``.egg``'s ``EGG-INFO``) in listing order. A path entry that is not a
    folder (a zip file) is read by importlib.metadata itself."""
    found: list[object] = []
    for root in paths:
        folder = root or "."
        try:
            children = os.listdir(folder)
        except OSError:
            if not os.path.isfile(folder):
                continue  # missing (python3X.zip mostly is) or unreadable: nothing there
            from importlib import metadata

            with contextlib.suppress(*_METADATA_ERRORS):
                found.extend(metadata.distributions(path=[root]))
            continue
        egg = root.lower().endswith(".egg")
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")) or (egg and low == "egg-info"):
                found.append(_PathDist(os.path.join(root, child)))
    return found


class DistributionIndex:
    """The distributions visible on a search path, read once, as importlib.metadata finds them.

    Python 3.8 has no ``packages_distributions``, so module and file ownership are derived here
    from ``top_level.txt`` and RECORD, as pip and importlib_metadata do.
    """

    def __init__(self, paths: list[str]) -> None:
        self.paths = list(paths)
        #: canonical name -> the distribution import would see (first on the path)
        self._dists: dict[str, object] = {}
        #: canonical name -> [(dist-info path, version)] for every copy found
        self.copies: dict[str, list[tuple[str, str]]] = {}
        self._raw_top: dict[str, set[str]] = {}
        self._module_owners: dict[str, list[str]] | None = None
        self._component_owners: dict[tuple[str, str], list[str]] | None = None
        self._record_cache: dict[str, set[str]] = {}
        #: canonical name -> (name as its metadata spells it, version)
        self._meta: dict[str, tuple[str, str]] = {}
        for dist in _distributions(self.paths):
            try:
                name, version = _name_and_version(dist)
            except _METADATA_ERRORS:  # unreadable metadata: not a distribution import can use
                continue
            if not name:
                continue
            key = canonicalize_name(str(name))
            location = str(getattr(dist, "_path", "") or "")
            self.copies.setdefault(key, []).append((location, str(version)))
            if key not in self._dists:
                self._dists[key] = dist
                self._meta[key] = (str(name), str(version))

    # -- names and versions ------------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        """``{canonical name: version}`` of every distribution import would see."""
        return {key: self._meta[key][1] for key in sorted(self._dists)}

    def get(self, name: str) -> object | None:
        return self._dists.get(canonicalize_name(name))

    def display(self, key: str) -> tuple[str, str]:
        """``(name as its metadata spells it, version)`` for a canonical name."""
        return self._meta.get(key, (key, ""))

    def required(self, key: str) -> set[str]:
        """Canonical names of what a distribution requires outside any extra: its METADATA's
        ``Requires-Dist`` headers (environment markers not judged). Empty when unknown."""
        dist = self._dists.get(key)
        text = _read_text(dist, "METADATA") if dist is not None else None
        names: set[str] = set()
        for line in (text or "").splitlines():
            if not line:
                break  # the headers end at the first empty line (spaces only: a folded one)
            field, sep, value = line.partition(":")
            if not sep or field != "Requires-Dist":
                continue
            requirement, _, marker = value.partition(";")
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
            if match and "extra" not in marker:
                names.add(canonicalize_name(match.group(1)))
        return names

    def site_of(self, key: str) -> str:
        dist = self._dists.get(key)
        if dist is None:
            return ""
        try:
            return os.path.realpath(str(dist.locate_file("")))  # type: ignore[attr-defined]
        except _METADATA_ERRORS:
            return ""

    def installed(self) -> list[dict[str, object]]:
        """Per distribution import would see, in search order: canonical ``name``, ``version``,
        ``installer`` (INSTALLER), ``direct_url`` (PEP 610 text or None) and ``metadata_dir``
        (its ``*.dist-info`` directory's name)."""
        found: list[dict[str, object]] = []
        for key, dist in self._dists.items():
            found.append(
                {
                    "name": key,
                    "version": self._meta[key][1],
                    "installer": (_read_text(dist, "INSTALLER") or "").strip(),
                    "direct_url": _read_text(dist, "direct_url.json"),
                    "metadata_dir": os.path.basename(str(getattr(dist, "_path", "") or "")),
                }
            )
        return found

    # -- top-level modules -------------------------------------------------------------------

    def _record(self, key: str) -> list[str]:
        """The paths a distribution installed (RECORD, read directly: 10x faster than .files)."""
        import csv

        dist = self._dists.get(key)
        if dist is None:
            return []
        try:
            text = dist.read_text("RECORD")  # type: ignore[attr-defined]
            if text:
                return [row[0] for row in csv.reader(text.splitlines()) if row and row[0]]
            files = dist.files  # type: ignore[attr-defined]
        except (csv.Error, *_METADATA_ERRORS):
            return []
        return [str(f) for f in files or []]

    def raw_top_level(self, key: str) -> set[str]:
        """Every top-level name the distribution provides, private ones included."""
        if key in self._raw_top:
            return self._raw_top[key]
        dist = self._dists.get(key)
        names: set[str] = set()
        if dist is not None:
            text = None
            try:
                text = dist.read_text("top_level.txt")  # type: ignore[attr-defined]
            except _METADATA_ERRORS:
                text = None
            if text:
                for raw in text.splitlines():
                    line = raw.strip().replace("\\", "/")
                    if line:
                        names.add(line.split("/", maxsplit=1)[0])
                # top_level.txt may name what the wheel does not ship (tensorflow-cpu 2.15.1
                # lists third_party): keep the names its RECORD backs, when it backs any.
                heads = {f.split("/", 1)[0] for f in self._record(key)}
                backed = {
                    n for n in names if n in heads or any(h.startswith(n + ".") for h in heads)
                }
                names = backed or names
            else:
                files = self._record(key)
                names = top_level_from_files(files)
                if not [n for n in names if not n.startswith("_")]:
                    names |= self._editable_top_level(key, files)
        self._raw_top[key] = names
        return names

    def top_level(self, name: str) -> list[str]:
        """The importable top-level modules of a distribution ([] when it is not installed)."""
        key = canonicalize_name(name)
        if key not in self._dists:
            return []
        raw = self.raw_top_level(key)
        return public_top_level(raw)

    def _editable_top_level(self, key: str, files: list[str]) -> set[str]:
        """Names behind an editable install (setuptools finder MAPPING or a .pth directory)."""
        site = self.site_of(key)
        names: set[str] = set()
        for entry in files:
            if "/" in entry:
                continue
            path = os.path.join(site, entry)
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read(200000)
            except OSError:
                continue
            if entry.startswith("__editable__") and entry.endswith("_finder.py"):
                match = re.search(r"^MAPPING[^=]*=\s*(\{[^}]*\})", text, re.MULTILINE)
                if match:
                    names.update(
                        re.findall(r"['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*:", match.group(1))
                    )
            elif entry.endswith(".pth"):
                for raw in text.splitlines():
                    line = raw.strip()
                    if not line or line.startswith(("#", "import ", "import\t")):
                        continue
                    if os.path.isdir(line):
                        for child in sorted(os.listdir(line)):
                            if os.path.isfile(os.path.join(line, child, "__init__.py")):
                                names.add(child)
        return names

    # -- ownership ---------------------------------------------------------------------------

    def owner_of_module(self, module: str) -> str | None:
        """Canonical name of the distribution that provides ``module`` (by its top level)."""
        top = module.split(".", maxsplit=1)[0]
        guess = canonicalize_name(top)
        if guess in self._dists and top in self.raw_top_level(guess):
            return guess
        if self._module_owners is None:
            owners: dict[str, list[str]] = {}
            for key in self._dists:
                for name in self.raw_top_level(key):
                    owners.setdefault(name, []).append(key)
            self._module_owners = owners
        found = self._module_owners.get(top) or []
        return found[0] if len(found) == 1 else None

    def owner_of_file(self, path: str) -> str | None:
        """Canonical name of the distribution whose RECORD lists ``path`` (None: not ours)."""
        if not path or path.startswith("<"):
            return None
        real = os.path.realpath(path)
        if self._component_owners is None:
            owners: dict[tuple[str, str], list[str]] = {}
            for key in self._dists:
                site = self.site_of(key)
                for entry in self._record(key):
                    first = entry.replace("\\", "/").split("/")[0]
                    if first in ("..", "."):
                        continue
                    bucket = owners.setdefault((site, first), [])
                    if key not in bucket:
                        bucket.append(key)
            self._component_owners = owners
        sites = sorted({site for site, _ in self._component_owners}, key=len, reverse=True)
        for site in sites:
            if not real.startswith(site + os.sep):
                continue
            rel = real[len(site) + 1 :]
            first = rel.split(os.sep)[0]
            candidates = self._component_owners.get((site, first)) or []
            if len(candidates) == 1:
                return candidates[0]
            rel_posix = rel.replace(os.sep, "/")
            for key in candidates:
                if key not in self._record_cache:
                    self._record_cache[key] = set(self._record(key))
                if rel_posix in self._record_cache[key]:
                    return key
            return candidates[0] if candidates else None
        return None

    def duplicates(self) -> dict[str, list[tuple[str, str]]]:
        """Distributions with more than one metadata directory in the same site directory."""
        found: dict[str, list[tuple[str, str]]] = {}
        for key, copies in self.copies.items():
            by_dir: dict[str, list[tuple[str, str]]] = {}
            for location, version in copies:
                by_dir.setdefault(os.path.dirname(location), []).append((location, version))
            for group in by_dir.values():
                if len(group) > 1:
                    found.setdefault(key, []).extend(group)
        return found


#: Indexes kept for the rest of the process, once :func:`share_indexes` is called.
_INDEXES: dict[tuple[str, ...], DistributionIndex] | None = None


def share_indexes() -> None:
    """Read each search path's distributions once for the rest of this process: for probes that
    run together on an environment that does not change meanwhile (probe_set.py)."""
    global _INDEXES  # noqa: PLW0603 - one switch for the process
    if _INDEXES is None:
        _INDEXES = {}


def distribution_index(paths: list[str]) -> DistributionIndex:
    """The :class:`DistributionIndex` of ``paths``: read afresh, or shared after
    :func:`share_indexes`."""
    if _INDEXES is None:
        return DistributionIndex(paths)
    key = tuple(paths)
    index = _INDEXES.get(key)
    if index is None:
        index = _INDEXES[key] = DistributionIndex(paths)
    return index


#: The import probe's targets while it runs beside other probes in this process (probe_set.py),
#: each with an event set once that target's import has ended (``imports_begin``).
_IMPORTS: dict[str, threading.Event] = {}


def imports_begin(targets: list[str], paths: list[str]) -> None:
    """The import probe of this process is about to import ``targets`` (from ``paths``): a
    probe that would import one of them too (the cuda probe's frameworks) may wait for it
    (``wait_for_import``) where that target is ``cold`` now, and so import it with its bytecode
    written, not compile its modules a second time at once (seconds of CPU for tensorflow).
    Decided before the import starts: the first thing an import does is write its bytecode."""
    import threading  # only probe_set.py, which has it already, calls this

    for target in targets:
        if cold(target, paths):
            _IMPORTS.setdefault(target, threading.Event())


def cold(name: str, paths: list[str]) -> bool:
    """Whether importing the package ``name`` (from ``paths``) now would compile it and write
    its bytecode: its ``__init__`` has none yet, and this process's children may write it (no
    ``PYTHONDONTWRITEBYTECODE``). Warm, or a module that is no package, two imports at once
    compile nothing twice."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return False  # every import compiles from source: waiting would save nothing
    import importlib.util

    for folder in paths:
        init = os.path.join(folder, name, "__init__.py")
        if os.path.isfile(init):
            return not os.path.isfile(importlib.util.cache_from_source(init))
    return False


def import_ended(target: str) -> None:
    """``target``'s import has ended (passed, failed, observed, or timed out)."""
    event = _IMPORTS.get(target)
    if event is not None:
        event.set()


def imports_ended() -> None:
    """The import probe has ended: nothing waits for it any more (also when it failed)."""
    for event in _IMPORTS.values():
        event.set()


def wait_for_import(target: str, patience: float) -> None:
    """Wait, at most ``patience`` seconds, for the import probe of this process to end its
    import of ``target`` where it was ``cold`` (no import probe here, or ``target`` warm:
    nothing to wait for)."""
    event = _IMPORTS.get(target)
    if event is not None:
        event.wait(patience)


def conda_records(prefix: str) -> list[dict[str, object]]:
    """Every package record in ``<prefix>/conda-meta`` ([] when ``prefix`` is no conda env).

    A record is conda's JSON as written (``name``, ``version``, ``build``, ``channel``,
    ``files`` relative to the prefix, ...) plus ``_record``: its file name. Unreadable or
    half-written records are skipped: conda itself ignores them.
    """
    folder = os.path.join(prefix, "conda-meta")
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    import json

    records: list[dict[str, object]] = []
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("name"), str):
            record["_record"] = name
            records.append(record)
    return records


def conda_channel(record: dict[str, object]) -> str:
    """A conda record's channel, short: ``conda-forge``, ``main``, ``pypi``.

    conda writes a URL (``https://conda.anaconda.org/conda-forge/linux-64``) or a bare name
    depending on its version; a pip-installed package that conda noticed has channel ``pypi``.
    """
    return conda_channel_source(record)[0]


def conda_channel_source(record: dict[str, object]) -> tuple[str, str]:
    """``(short name, the channel as a solver takes it)``, without the platform subdir.

    On anaconda.org the name is the channel (``conda-forge``); elsewhere the URL is
    (``https://repo.anaconda.com/pkgs/main``).
    """
    channel = str(record.get("channel") or "").rstrip("/")
    if not channel:
        url = str(record.get("url") or "")
        channel = url.rsplit("/", 2)[0] if url.count("/") >= 2 else ""
    parts = channel.split("/")
    if parts and re.match(r"^(noarch|(linux|osx|win|emscripten|wasi|zos)-\w+)$", parts[-1]):
        parts = parts[:-1]  # a platform subdir
    source = "/".join(parts)
    short = next((p for p in reversed(parts) if p), "")
    if "://" not in source or re.match(r"https?://conda\.anaconda\.org/", source):
        source = short
    return short, source


def conda_metadata_dirs(record: dict[str, object]) -> list[str]:
    """The ``*.dist-info`` / ``*.egg-info`` directory names among a record's files: the Python
    distributions that conda package owns."""
    files = record.get("files")
    found = {
        part
        for rel in (files if isinstance(files, list) else [])
        if isinstance(rel, str)
        for part in rel.replace("\\", "/").split("/")
        if part.endswith((".dist-info", ".egg-info"))
    }
    return sorted(found)
