"""gpu_arch_probe: which GPUs each distribution's CUDA device code can run on, without a GPU.

CUDA libraries carry their kernels in the ELF section ``.nv_fatbin``: one or more fat binaries,
each a list of entries holding either SASS (a cubin built for one ``sm_XY``) or PTX (for one
``compute_XY``, compiled by the driver at first use). Only the entry headers are read (kind,
architecture, flags), never the payloads, so compressed entries cost nothing to classify.

A GPU of compute capability X.Y runs:

- SASS ``sm_XZ`` with Z <= Y (same major): ``sm_80`` runs on an A10 (8.6), not on an H100 (9.0);
  ``sm_90a`` (arch-specific) only on exactly 9.0; ``sm_100f`` (family) like plain SASS;
- PTX ``compute_VW`` with V.W <= X.Y, by JIT (a warning: slow first use, needs a new driver);
  ``compute_90a`` only on 9.0, ``compute_120f`` on 12.x from 12.0.

A distribution whose device code runs on none of a listed GPU's architectures fails with
``cuda-arch``: ``no kernel image is available for execution on the device`` at run time.

Usage: ``python gpu_arch_probe.py [--prefix P] [--site DIR ...] [--gpu [NAME=]sm_XY ...]``;
prints one JSON document, exits 0, 1 (a listed GPU has no kernels) or 3 (the probe failed).
Stdlib only; runs on CPython 3.8-3.14 on any OS (it only reads files).
"""

from __future__ import annotations

import os
import re
import struct
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _elf
import _probelib as lib

PROBE = "gpu-arch"

FATBIN_MAGIC = 0xBA55ED50
_FATBIN_HEADER = struct.Struct("<IHHQ")  # magic, version, header size, size of the entries
_ENTRY_HEADER = struct.Struct("<HHIQIIHHI")  # kind, version, header size, payload size,
# compressed size, (unknown), minor, major (of the PTX ISA / cubin format), architecture
KIND_PTX, KIND_SASS = 1, 2
FLAG_ARCH_SPECIFIC = 0x100000  # sm_90a / compute_90a
FLAG_FAMILY_SPECIFIC = 0x200000  # sm_100f / compute_120f
FLAG_COMPRESSED = 0x2000 | 0x8000
#: Coverage of a GPU by a file or a distribution, worst first.
COVERAGE = ("none", "ptx", "sass")
_ARCH_RE = re.compile(r"^(?:sm_|compute_)?(\d+)([af]?)$")
_CC_RE = re.compile(r"^(\d+)\.(\d+)$")


class FatbinEntry:
    """One entry of a fat binary: SASS or PTX for one architecture."""

    __slots__ = ("arch", "compressed", "kind", "suffix")

    def __init__(self, kind: int, arch: int, suffix: str, compressed: bool) -> None:
        self.kind = kind
        self.arch = arch
        self.suffix = suffix
        self.compressed = compressed

    @property
    def name(self) -> str:
        prefix = "sm_" if self.kind == KIND_SASS else "compute_"
        return "%s%d%s" % (prefix, self.arch, self.suffix)


def parse_fatbin(data: Any, start: int = 0, end: int | None = None) -> list[Any]:
    """Every entry of the fat binaries laid end to end in ``data[start:end]``.

    Stops at the first header without the magic (padding after the last fat binary); an entry
    that claims more bytes than remain ends the walk of its fat binary.
    """
    end = len(data) if end is None else end
    out: list[Any] = []
    pos = start
    while pos + _FATBIN_HEADER.size <= end:
        magic, _version, header_size, fat_size = _FATBIN_HEADER.unpack_from(data, pos)
        if magic != FATBIN_MAGIC:
            # Fat binaries are 8-byte aligned; skip zero padding between them.
            if data[pos : pos + 8] == b"\x00" * 8:
                pos += 8
                continue
            break
        entry = pos + header_size
        stop = min(entry + fat_size, end)
        while entry + _ENTRY_HEADER.size <= stop:
            kind, _v, ehs, size, csize, _u, _minor, _major, arch = _ENTRY_HEADER.unpack_from(
                data, entry
            )
            flags = struct.unpack_from("<Q", data, entry + 40)[0] if ehs >= 48 else 0
            if ehs < _ENTRY_HEADER.size or kind not in (KIND_PTX, KIND_SASS):
                break
            suffix = (
                "a" if flags & FLAG_ARCH_SPECIFIC else ("f" if flags & FLAG_FAMILY_SPECIFIC else "")
            )
            out.append(FatbinEntry(kind, arch, suffix, bool(csize or flags & FLAG_COMPRESSED)))
            entry += ehs + size
        pos = pos + header_size + fat_size
    return out


#: Data sections where some NVIDIA libraries keep most of their fat binaries, outside
#: ``.nv_fatbin`` (libcufft's 270 MB of kernels sit in ``.ldata``; its ``.nv_fatbin`` holds
#: one sm_52 stub): reading only ``.nv_fatbin`` would say cuFFT runs on no current GPU.
_DATA_SECTIONS = (".ldata", ".lrodata", ".rodata", ".data.rel.ro", ".data", ".nvFatBinSegment")
#: A fat binary's header as it starts: magic, version 1, header size 16.
_HEADER_START = struct.pack("<IHH", FATBIN_MAGIC, 1, 16)


#: Libraries through which a file without ``.nv_fatbin`` can load device code it embeds.
_CUDA_LOADERS = ("libcuda.so", "libcudart.so")


def file_architectures(elf: _elf.ElfFile) -> tuple[Any, ...] | None:
    """(sorted SASS names, sorted PTX names, any entry compressed) of an ELF file's device code;
    None when it has none.

    Besides ``.nv_fatbin``, the data sections are searched for fat binaries: in every file
    with a ``.nv_fatbin``, and in a file without one that can load device code itself (it
    registers fat binaries, ``.nvFatBinSegment``, or links the CUDA driver or runtime: kernels
    embedded as a byte array, ``bin2c`` output, loaded with ``cudaLibraryLoadData``). Other files'
    data sections are not read, so a CPU-only environment costs what it did.
    """
    where = elf.section_named(".nv_fatbin")
    if where is not None:
        entries = parse_fatbin(elf.mm, where[0], where[0] + where[1])
    elif elf.section_named(".nvFatBinSegment") is not None or any(
        needed.startswith(_CUDA_LOADERS) for needed in elf.needed
    ):
        entries = []
    else:
        return None
    for name in _DATA_SECTIONS:
        section = elf.section_named(name)
        if section is not None:
            entries += _embedded_fatbins(elf.mm, *section)
    return _summary(entries) if entries or where is not None else None


def _embedded_fatbins(data: Any, off: int, size: int) -> list[Any]:
    """Entries of every fat binary found by its header inside ``data[off:off + size]``."""
    out: list[Any] = []
    end = off + size
    pos = data.find(_HEADER_START, off, end)
    while 0 <= pos < end:
        _magic, _version, header_size, fat_size = _FATBIN_HEADER.unpack_from(data, pos)
        stop = min(pos + header_size + fat_size, end)
        out += parse_fatbin(data, pos, stop)
        pos = data.find(_HEADER_START, max(stop, pos + 8), end)
    return out


def pe_fatbin_section(data: bytes) -> tuple[Any, ...] | None:
    """(file offset, size) of a PE file's ``.nv_fatb`` section (Windows CUDA DLLs); None when
    it is not PE or has none. Section names are 8 bytes in PE, hence the cut name."""
    if len(data) < 64 or data[:2] != b"MZ":
        return None
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe : pe + 4] != b"PE\x00\x00":
        return None
    nsections, opt_size = (
        struct.unpack_from("<H", data, pe + 6)[0],
        struct.unpack_from("<H", data, pe + 20)[0],
    )
    table = pe + 24 + opt_size
    for i in range(nsections):
        name, vsize, _vaddr, rawsize, rawptr = struct.unpack_from("<8sIIII", data, table + i * 40)
        if name.rstrip(b"\x00") == b".nv_fatb":
            size = min(vsize, rawsize) if vsize else rawsize
            return (rawptr, size) if rawptr + size <= len(data) else None
    return None


def pe_file_architectures(data: Any) -> tuple[Any, ...] | None:
    """Like :func:`file_architectures`, for a PE file's bytes (or mapping)."""
    where = pe_fatbin_section(data)
    if where is None:
        return None
    off, size = where
    return _summary(parse_fatbin(data, off, off + size))


def _summary(entries: list[Any]) -> tuple[Any, ...]:
    sass = sorted({e.name for e in entries if e.kind == KIND_SASS}, key=arch_key)
    ptx = sorted({e.name for e in entries if e.kind == KIND_PTX}, key=arch_key)
    return sass, ptx, any(e.compressed for e in entries)


def _windows_binaries(sites: list[Any]) -> list[Any]:
    """(path, rel) of every ``.dll``/``.pyd`` under the site dirs: where Windows keeps CUDA code."""
    out = []
    for site in sites:
        for root, dirs, files in os.walk(site):
            dirs[:] = [d for d in dirs if d != "__pycache__" and not d.endswith(".dist-info")]
            for name in files:
                if name.lower().endswith((".dll", ".pyd")):
                    path = os.path.join(root, name)
                    out.append((path, os.path.relpath(path, site)))
    return sorted(out, key=lambda item: item[1])


def _pe_architectures_at(path: str) -> tuple[Any, ...] | None:
    import mmap

    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size < 64:
                return None
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return pe_file_architectures(mm)
    except (OSError, ValueError, struct.error):
        return None


def arch_key(name: str) -> tuple[Any, ...]:
    m = _ARCH_RE.match(name)
    return (int(m.group(1)), m.group(2)) if m else (0, name)


def parse_gpu(spec: str) -> tuple[Any, ...]:
    """``"H100=sm_90"`` / ``"sm_90"`` / ``"9.0"`` -> (label, (major, minor))."""
    label, _, arch = spec.rpartition("=")
    arch = arch.strip()
    m = _CC_RE.match(arch)
    if m:
        cc = (int(m.group(1)), int(m.group(2)))
    else:
        m = _ARCH_RE.match(arch)
        if m is None:
            raise lib.UsageError("--gpu %r: expected sm_XY, X.Y or NAME=sm_XY" % spec)
        number = int(m.group(1))
        cc = (number // 10, number % 10)
    return (label.strip() or "sm_%d%d" % cc), cc


def runs_on(name: str, cc: tuple[Any, ...]) -> bool:
    """True when code for architecture ``name`` (sm_XY[a|f] or compute_XY[a|f]) runs on ``cc``."""
    m = _ARCH_RE.match(name)
    if m is None:
        return False
    number, suffix = int(m.group(1)), m.group(2)
    built = (number // 10, number % 10)
    if suffix == "a":
        return built == cc
    if name.startswith("sm_") or suffix == "f":
        return bool(built[0] == cc[0] and built[1] <= cc[1])
    return built <= cc  # plain PTX: JIT for any later architecture


def coverage(sass: list[Any], ptx: list[Any], cc: tuple[Any, ...]) -> str:
    """``sass`` (a native kernel), ``ptx`` (only by JIT) or ``none`` for a GPU of ``cc``."""
    if any(runs_on(a, cc) for a in sass):
        return "sass"
    if any(runs_on(a, cc) for a in ptx):
        return "ptx"
    return "none"


def _gpu_text(label: str, cc: tuple[Any, ...]) -> str:
    arch = "sm_%d%d" % cc
    return label if label == arch else "%s (%s)" % (label, arch)


def _archs_text(sass: list[Any], ptx: list[Any]) -> str:
    parts = []
    if sass:
        parts.append("SASS " + " ".join(sass))
    if ptx:
        parts.append("PTX " + " ".join(ptx))
    return ", ".join(parts) or "no device code"


def _record(
    per_dist: dict[str, Any], env: _elf.Environment, path: str, rel: str, found: tuple[Any, ...]
) -> None:
    owner = env.owner(path)
    target = owner[0] if owner else rel
    entry = per_dist.setdefault(target, {"version": owner[1] if owner else None, "files": {}})
    entry["files"][rel] = {"sass": found[0], "ptx": found[1], "compressed": found[2]}


def run(prefix: str | None, sites: list[Any] | None, gpus: list[Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    env = _elf.Environment.discover(prefix, sites)
    per_dist: dict[str, Any] = {}  # target -> {"version", "files": {rel: {...}}}
    files_read = 0
    for f in env.scan():
        try:
            elf = _elf.open_elf(f.path)
        except _elf.CORRUPT:
            continue
        if elf is None:
            continue
        files_read += 1
        try:
            found = file_architectures(elf)
        except _elf.CORRUPT:
            found = None
        finally:
            elf.release()
        if found is None:
            continue
        _record(per_dist, env, f.path, f.rel, found)
    if sys.platform == "win32":  # CUDA DLLs and .pyd extensions are PE files there
        for path, rel in _windows_binaries(env.sites):
            files_read += 1
            found = _pe_architectures_at(path)
            if found is not None:
                _record(per_dist, env, path, rel, found)

    results: list[Any] = []
    table: dict[str, Any] = {}
    for target in sorted(per_dist, key=str.lower):
        info = per_dist[target]
        files = info["files"]
        sass = sorted({a for v in files.values() for a in v["sass"]}, key=arch_key)
        ptx = sorted({a for v in files.values() for a in v["ptx"]}, key=arch_key)
        cover: dict[str, Any] = {}
        missing: list[Any] = []  # (gpu text, [files without kernels])
        jit: list[Any] = []
        for label, cc in gpus:
            # Judged per distribution, as the question is put ("can it run a kernel on this
            # GPU?"): NVIDIA's libraries carry 400-byte sm_52 stubs in some files (libcufftw
            # beside libcufft's real kernels), so one file's stub must not fail the package.
            worst = coverage(sass, ptx, cc)
            lacking = [
                rel for rel, v in files.items() if coverage(v["sass"], v["ptx"], cc) == "none"
            ]
            cover[label] = worst
            if worst == "none":
                missing.append((_gpu_text(label, cc), lacking))
            elif worst == "ptx":
                jit.append(_gpu_text(label, cc))
        table[target] = cover
        name = target + (" " + info["version"] if info["version"] else "")
        details = {
            "distribution": target,
            "version": info["version"],
            "sass": sass,
            "ptx": ptx,
            "coverage": cover,
            "files": files,
        }
        if jit:
            details["ptx_only"] = jit
        if missing:
            gpu_list = ", ".join(g for g, _ in missing)
            lacking = sorted({rel for _, rels in missing for rel in rels})
            details["no_kernel_for"] = [g for g, _ in missing]
            message = "%s has no kernel for %s: it carries %s (%d file%s: %s)" % (
                name,
                gpu_list,
                _archs_text(sass, ptx),
                len(lacking),
                "" if len(lacking) == 1 else "s",
                ", ".join(lacking[:3]) + (" ..." if len(lacking) > 3 else ""),
            )
            results.append(
                lib.make_result(
                    PROBE,
                    target,
                    "fail",
                    category="cuda-arch",
                    message=message,
                    hint="install a build of %s compiled for %s (a newer release or another "
                    "CUDA variant), or drop that GPU from `gpus:`" % (target, gpu_list),
                    details=details,
                )
            )
        else:
            message = "%s carries %s" % (name, _archs_text(sass, ptx))
            if jit:
                message += "; PTX only (JIT-compiled at first use) for %s" % ", ".join(jit)
            results.append(lib.make_result(PROBE, target, "pass", message=message, details=details))

    # Across packages: a GPU one distribution covers and another does not.
    fails = [r for r in results if r["status"] == "fail"]
    for r in fails:
        for gpu in r["details"]["no_kernel_for"]:
            others = [
                t
                for t, cover in table.items()
                if t != r["target"] and cover.get(_label_of(gpu)) in ("sass", "ptx")
            ]
            if others:
                r["message"] += "; %s run on %s" % (", ".join(sorted(others)), gpu)
    summary = "%d of %d shared objects carry CUDA device code, in %d distributions" % (
        sum(len(v["files"]) for v in per_dist.values()),
        files_read,
        len(per_dist),
    )
    if gpus:
        summary += "; GPUs checked: %s" % ", ".join(_gpu_text(lbl, cc) for lbl, cc in gpus)
    jit_pairs = [
        "%s on %s" % (t, g) for t, cover in table.items() for g, c in cover.items() if c == "ptx"
    ]
    if jit_pairs:
        summary += "; PTX only (JIT at first use): %s" % ", ".join(jit_pairs)
    details = {
        "gpus": {lbl: "sm_%d%d" % cc for lbl, cc in gpus},
        "table": table,
        "files": files_read,
    }
    results.append(
        lib.summary_result(PROBE, results, summary, noun="findings", started=t0, details=details)
    )
    return lib.document(PROBE, results)


def _label_of(gpu_text: str) -> str:
    return gpu_text.split(" (", 1)[0]


def _build(argv: list[Any] | None) -> dict[str, Any]:
    parser = lib.ProbeArgumentParser(prog="gpu_arch_probe.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", help="environment prefix (default: this interpreter's)")
    parser.add_argument("--site", action="append", help="site-packages dir (repeatable)")
    parser.add_argument("--gpu", action="append", default=[], help="[NAME=]sm_XY (repeatable)")
    args = parser.parse_args(argv)
    return run(args.prefix, args.site, [parse_gpu(spec) for spec in args.gpu])


def main(argv: list[Any] | None = None) -> int:
    return lib.run_document_probe(PROBE, _build, argv)


if __name__ == "__main__":
    sys.exit(main())
