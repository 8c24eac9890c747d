"""Run a cell's probes in one interpreter of its environment.

Usage (by the harness)::

    <env python> probe_set.py SPEC_JSON

Each probe on its own costs an interpreter start and its own reading of the environment's
metadata; here the probes that only read files (environment, abi, gpu-arch, cuda,
consistency) share one start and one distribution index, and the import probe's children
import while they read. Whatever loads code still does it in children, as the probes always
do (the import probe's, the native probe's, the cuda probe's), so a crash or a hang in the
environment never takes this process down.

``SPEC_JSON`` is ``{"probes": [NAME, ...], "args": {NAME: [ARG, ...]}, "dists": [NAME, ...] |
null, "imports": [MODULE, ...] | null, "import_timeout": SECONDS, "tooling": [NAME, ...],
"answers": PATH | null, "reuse": BOOL}``: the probes to run; each probe's own command line; the
distributions whose top-level modules are the import targets (null: every installed
distribution but ``tooling``); explicit targets instead; where the file-reading probes' answers
are kept between runs (_answers.py: reused while no file they read has changed; null: never
kept); whether kept answers may be used now (false: read everything, keep the answers). The
environment probe runs first, since it names the targets; native gets the targets as
``--context``.

Prints one JSON line per probe as soon as it ends, ``{"probe": NAME, "duration_s": S,
"document": {...}, "reused": BOOL}`` (the document the probe prints when run alone; reused:
kept from an earlier run on the same files), on a private copy of
stdout, so nothing a probe or a library prints can corrupt it. When this process dies, the
harness runs the probes it did not report on their own. Stdlib only; CPython 3.8-3.14.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (5 ms a process)
if TYPE_CHECKING:
    from typing import Any, TextIO

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import _answers  # noqa: E402
import _probelib as lib  # noqa: E402

__all__ = ["MODULES", "document_of", "import_targets", "main", "run"]

#: Probe name -> (module, how its document is made: "results" = main() -> (results, extra)
#: through lib.results_document, "built" = _build() -> document through lib.built_document).
MODULES: dict[str, tuple[str, str]] = {
    "environment": ("environment", "results"),
    "import": ("import_probe", "results"),
    "abi": ("abi_probe", "built"),
    "gpu-arch": ("gpu_arch_probe", "built"),
    "native": ("native_probe", "built"),
    "cuda": ("cuda_probe", "results"),
    "consistency": ("consistency_probe", "results"),
}


class _Out:
    """One JSON line per finished probe, whole lines only, from any thread."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def emit(
        self, name: str, duration_s: float, document: dict[str, Any], reused: bool = False
    ) -> None:
        line = json.dumps(
            {
                "probe": name,
                "duration_s": round(duration_s, 3),
                "document": document,
                "reused": reused,
            },
            ensure_ascii=True,
            default=str,
        )
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def document_of(name: str, argv: list[str]) -> dict[str, Any]:
    """Probe ``name``'s JSON document for command line ``argv``; an error document if the probe
    cannot even be loaded."""
    started = time.perf_counter()
    try:
        if name != "import":  # the ELF readers: imported only when one reads (not when reused)
            import _elf

            _elf.share_scans()  # the probes here read one environment that does not change
        module_name, kind = MODULES[name]
        module = importlib.import_module(module_name)
        if kind == "built":
            return lib.built_document(name, module._build, argv)
        document = lib.results_document(name, module.main, argv)
    except Exception as exc:  # noqa: BLE001 - one probe's trouble must not lose the others
        hint = "the %s probe itself failed (a compat-matrix bug): see details" % name
        return lib.error_document(name, "%s: %s" % (type(exc).__name__, exc), hint, started)
    if document is None:
        raise lib.UsageError("%s: --help is not a probe run" % name)
    return document


def import_targets(dists: list[str], top_level: dict[str, list[str]]) -> list[str]:
    """Each distribution's top-level modules (scikit-learn -> sklearn), in order, once each;
    its normalised name where it records none."""
    targets: list[str] = []
    for dist in dists:
        modules = top_level.get(dist) or [dist.replace("-", "_").replace(".", "_").lower()]
        targets.extend(m for m in modules if m not in targets)
    return targets


def run(spec: dict[str, Any], out: _Out) -> None:
    """Run the probes of ``spec``, reporting each on ``out`` as it ends."""
    args: dict[str, list[str]] = {k: [str(a) for a in v] for k, v in spec.get("args", {}).items()}
    answers_path = spec.get("answers")
    # Stamped before any probe reads a file: an answer kept now is never newer than its stamp.
    current = _answers.stamp(spec) if answers_path else ""
    reuse = bool(answers_path) and spec.get("reuse", True) is not False
    kept = _answers.load(str(answers_path), current) if reuse else {}
    fresh: dict[str, dict[str, Any]] = {}

    def timed(name: str, argv: list[str], report: bool = True) -> dict[str, Any]:
        started = time.perf_counter()
        document = kept.get(name) if report else None
        if document is not None:
            out.emit(name, time.perf_counter() - started, document, reused=True)
            return document
        document = document_of(name, argv)
        if report:
            out.emit(name, time.perf_counter() - started, document)
            fresh[name] = document
        return document

    dists = spec.get("dists")
    if dists is None:
        everything = timed("environment", [], report=False)
        tooling = set(spec.get("tooling") or ())
        dists = [n for n in everything.get("distributions") or {} if n not in tooling]
    environment = timed("environment", ["--dists", *dists] if dists else [])
    imports = spec.get("imports")
    targets = (
        [str(m) for m in imports]
        if imports is not None
        else import_targets([str(d) for d in dists], dict(environment.get("top_level") or {}))
    )
    probes = [str(name) for name in spec.get("probes", [])]
    importer: threading.Thread | None = None
    if "import" in probes and targets:
        timeout = "%.0f" % float(spec.get("import_timeout") or 300)
        argv = [*args.get("import", []), "--timeout", timeout, *targets]

        def imports() -> None:
            try:
                timed("import", argv)
            finally:
                lib.imports_ended()

        lib.imports_begin(targets, lib.search_paths())  # before any probe below can ask
        importer = threading.Thread(target=imports, daemon=True)
        importer.start()  # its children import while the file readers below read
    # cuda last: its frameworks' children wait for the import probe's import of the same
    # framework (lib.wait_for_import), while the other readers read.
    for name in sorted(probes, key=lambda name: name == "cuda"):
        if name in ("import", "native"):
            continue
        timed(name, args.get(name, []))
    if "native" in probes:
        context = [arg for target in targets for arg in ("--context", target)]
        timed("native", [*args.get("native", []), *context])
    if importer is not None:
        importer.join()
    if answers_path and any(name in fresh for name in _answers.REUSABLE):
        _answers.store(str(answers_path), current, {**kept, **fresh})


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: probe_set.py SPEC_JSON\n")
        return lib.EXIT_USAGE
    spec = json.loads(argv[0])
    lib.share_indexes()  # the probes here read one environment that does not change meanwhile
    # The JSON lines go to a private copy of stdout; fd 1 itself now leads to stderr, so output
    # from C code in the probes' children or in this process lands there.
    private = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    run(spec, _Out(private))
    private.close()
    return lib.EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
