"""Stdlib-only ELF reader and glibc-exact shared-library resolver for the ABI probes.

Why not pyelftools: it needs Python >= 3.6 plus a wheel inside the probed environment, and it is
about 40x slower than reading the few tables we need with ``mmap`` + ``struct``.  Why not ``ldd``:
it executes the loader on the file.  This module models what glibc's ``ld.so`` does
(``elf/dl-load.c``, ``dl-cache.c``, ``dl-version.c``, ``dl-lookup.c``) closely enough that a
static pass can predict ``cannot open shared object file``, ``version `X' not found`` and
``undefined symbol`` before anything is imported.

Runs unchanged on every CPython from 3.8 to 3.14 (free-threaded included).
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import sys
from array import array
from collections import OrderedDict
from itertools import compress, repeat
from operator import add as _add
from operator import and_ as _and
from operator import attrgetter, methodcaller
from operator import contains as _contains
from operator import eq as _eq
from operator import ge as _ge
from operator import mul as _mul
from operator import not_ as _not
from operator import or_ as _or
from operator import rshift as _rshift

import _probelib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

__all__ = [
    "CORRUPT",
    "DRIVER_LIBRARIES",
    "OPTIONAL_EXTENSIONS",
    "TAG_RE",
    "Edge",
    "ElfError",
    "ElfFile",
    "EnvFile",
    "Environment",
    "LdCache",
    "Load",
    "LoaderConfig",
    "Node",
    "NotElf",
    "NumpyBuild",
    "Process",
    "Resolver",
    "extension_module",
    "gnu_hash",
    "is_driver_library",
    "machine_name",
    "optional_extension",
    "pyinit_name",
    "share_scans",
    "unreadable_document",
    "version_key",
    "version_prefix",
]

# --- ELF constants

ELFMAG = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
PT_GNU_STACK = 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4
SHT_DYNAMIC, SHT_DYNSYM = 6, 11
SHT_GNU_VERDEF, SHT_GNU_VERNEED, SHT_GNU_VERSYM = 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
SHN_UNDEF, SHN_ABS = 0, 0xFFF1
DT_NULL, DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ = 0, 1, 4, 5, 6, 10
DT_SONAME, DT_RPATH, DT_RUNPATH = 14, 15, 29
DT_GNU_HASH = 0x6FFFFEF5
DT_VERSYM = 0x6FFFFFF0
DT_FLAGS_1 = 0x6FFFFFFB
DT_VERDEF, DT_VERDEFNUM = 0x6FFFFFFC, 0x6FFFFFFD
DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF
DF_1_NODEFLIB = 0x800
VER_FLG_BASE, VER_FLG_WEAK = 0x1, 0x2
STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 1, 2, 10
_STT_TLS = 6
# Symbol types ld.so binds to (dl-lookup.c ALLOWED_STT): NOTYPE OBJECT FUNC COMMON TLS IFUNC.
_ALLOWED_STT = frozenset((0, 1, 2, 5, 6, 10))
_BINDS = frozenset((STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE))
# st_info values (bind << 4 | type) precomputed so symbol tables are filtered with C-level maps.
_EXPORT_INFO = frozenset(b << 4 | t for b in _BINDS for t in _ALLOWED_STT)
_UNDEF_INFO = frozenset(b << 4 | t for b in (STB_GLOBAL, STB_GNU_UNIQUE) for t in range(16))
_TLS_INFO = frozenset(b << 4 | _STT_TLS for b in range(16))
_VISIBLE = frozenset(o for o in range(256) if o & 3 in (0, 3))  # STV_DEFAULT, STV_PROTECTED
# The same tests on a little-endian symbol's second word (st_info | st_other << 8 | st_shndx << 16):
# masked with _UNDEF_MASK it is st_info exactly when st_shndx is 0 (undefined); masked with
# _EXPORT_MASK it is st_info | visibility << 8 (st_shndx tested apart).
_UNDEF_MASK = 0xFFFF00FF
_EXPORT_MASK = 0x3FF
_EXPORT_LOW = frozenset(i | v << 8 for i in _EXPORT_INFO for v in (0, 3))
ELFOSABI_SYSV, ELFOSABI_GNU = 0, 3

_MACHINES = {
    3: "i386",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    40: "arm",
    62: "x86_64",
    183: "aarch64",
    243: "riscv",
    258: "loongarch",
}

#: Libraries that come with the NVIDIA driver, never with a wheel: missing means "no GPU here".
DRIVER_LIBRARIES = (
    "libcuda.so",
    "libnvidia-ml.so",
    "libnvcuvid.so",
    "libnvidia-encode.so",
    "libnvidia-opencl.so",
    "libnvidia-ptxjitcompiler.so",
    "libnvidia-nvvm.so",
    "libcudadebugger.so",
)


#: Extension modules their package imports only when an optional library is present (it catches
#: the ImportError): the library missing means "feature off", not a broken package.
#: (file regex, soname prefix, what to install, what it enables)
OPTIONAL_EXTENSIONS = (
    (re.compile(r"^numba/np/ufunc/tbbpool\."), "libtbb.so", "tbb", "numba's TBB threading layer"),
)


def optional_extension(rel: str, library: str) -> tuple[str, str] | None:
    """(what to install, what it enables) when ``rel`` needs ``library`` only optionally."""
    rel = rel.replace(os.sep, "/")
    for rx, lib, dist, feature in OPTIONAL_EXTENSIONS:
        if rx.match(rel) and os.path.basename(library).startswith(lib):
            return dist, feature
    return None


def is_driver_library(name: str) -> bool:
    """True for sonames provided by the NVIDIA driver (their absence means: no GPU driver)."""
    base = os.path.basename(name)
    return any(base == lib or base.startswith(lib + ".") for lib in DRIVER_LIBRARIES)


def machine_name(machine: int) -> str:
    return _MACHINES.get(machine, "EM_%d" % machine)


class ElfError(Exception):
    """The file is not a readable ELF object (not ELF, truncated, or corrupt)."""


class NotElf(ElfError):
    """The file is not an ELF object at all (no ``\\x7fELF`` magic), or cannot be opened."""


#: What reading a damaged file can raise: tables are parsed lazily, after the header checks.
CORRUPT = (ElfError, struct.error)


#: 33**k mod 2**32: the GNU hash as a dot product (C-level ``map``), not a per-byte Python loop.
_POW33 = [1]
for _k in range(2047):
    _POW33.append(_POW33[-1] * 33 & 0xFFFFFFFF)


def gnu_hash(name: bytes) -> int:
    """The DT_GNU_HASH function (dl-new-hash.h): ``h = h * 33 + c`` from 5381, modulo 2**32.

    Unrolled: ``5381 * 33**n + sum(c_i * 33**(n-1-i))``, about 5x faster for mangled C++ names.
    """
    n = len(name)
    if n < len(_POW33):
        return (5381 * _POW33[n] + sum(map(_mul, name[::-1], _POW33))) & 0xFFFFFFFF  # type: ignore[no-any-return]
    h = 5381
    for c in name:
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def sysv_hash(name: bytes) -> int:
    """The DT_HASH function (the SysV ABI ``elf_hash``)."""
    h = 0
    for c in name:
        h = (h << 4) + c
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


#: 5381 * 33**-k mod 2**32 (33 is odd, so invertible): the start value of a name left-padded
#: with k zero bytes, which makes every lane of :func:`gnu_hashes` end on the right hash.
_PAD_START = [5381]
_INV33 = pow(33, -1, 1 << 32)
for _k in range(2047):
    _PAD_START.append(_PAD_START[-1] * _INV33 & 0xFFFFFFFF)


def gnu_hashes(names: list[bytes]) -> list[int]:
    """:func:`gnu_hash` of many names at once, about 2.5x faster than one at a time.

    SIMD within one big integer: each name is a 64-bit lane, and one step ``H = H * 33 + C``
    advances every lane by one byte (``C``: that byte of every name, a column of the
    left-padded name matrix).  A lane grows about 5 bits a step, so it is reduced modulo 2**32
    every sixth step, before it can reach its neighbour.  Names are grouped by length so that
    the padding stays small.
    """
    out = [0] * len(names)
    order = sorted(range(len(names)), key=lambda i: len(names[i]))
    pos, total = 0, len(order)
    while pos < total:
        shortest = len(names[order[pos]])
        limit = shortest + (shortest >> 2) + 8
        end = pos
        while end < total and len(names[order[end]]) <= limit:
            end += 1
        idx = order[pos:end]
        group = [names[i] for i in idx]
        width = len(group[-1])
        if width >= len(_PAD_START):
            for i in idx:
                out[i] = gnu_hash(names[i])
            pos = end
            continue
        n = len(group)
        starts = [_PAD_START[width - len(g)] for g in group]
        h = int.from_bytes(struct.pack("<%dQ" % n, *starts), "little")
        matrix = b"".join([g.rjust(width, b"\x00") for g in group])
        mask = int.from_bytes(b"\xff\xff\xff\xff\x00\x00\x00\x00" * n, "little")
        lanes = bytearray(8 * n)
        for k in range(width):
            lanes[0::8] = matrix[k::width]
            h = h * 33 + int.from_bytes(lanes, "little")
            if k % 6 == 5:
                h &= mask
        h &= mask
        for i, v in zip(idx, struct.unpack("<%dQ" % n, h.to_bytes(8 * n, "little"))):
            out[i] = v
        pos = end
    return out


_hash_cache: dict[bytes, int] = {}


def _prime_hashes(names: Iterable[bytes]) -> None:
    """Memoise the GNU hashes of ``names`` in one :func:`gnu_hashes` batch (when worth it)."""
    cache = _hash_cache
    todo = [n for n in names if n not in cache]
    if len(todo) < 32 or len(cache) + len(todo) > 200000:
        return
    cache.update(zip(todo, gnu_hashes(todo)))


def _gnu_hash_cached(name: bytes) -> int:
    h = _hash_cache.get(name)
    if h is None:
        h = gnu_hash(name)
        if len(_hash_cache) < 200000:
            _hash_cache[name] = h
    return h


#: array typecodes of 4- and 8-byte unsigned integers on this build (hash tables as C arrays).
_U32 = next(c for c in "IL" if array(c).itemsize == 4)
_U64 = "Q"  # unsigned long long: 8 bytes on every platform CPython supports
_UNSET = object()
_HOST_DATA = ELFDATA2LSB if sys.byteorder == "little" else ELFDATA2MSB


def version_prefix(version: str) -> str:
    """``GLIBCXX_3.4.30`` -> ``GLIBCXX_``: the family a version node belongs to."""
    m = re.match(r"^(.*?)(\d[\d.]*)$", version)
    return m.group(1) if m else version


def version_key(version: str) -> tuple[int, ...]:
    """Sort key for version-node names such as ``GLIBCXX_3.4.30`` (numbers compared as ints)."""
    tail = version.rpartition("_")[2]
    return tuple(int(p) for p in re.findall(r"\d+", tail))


class NumpyBuild:
    """What a file's ``.rodata`` says about the NumPy headers it was compiled with.

    ``headers`` is 1 or 2 (the NumPy major of the headers); ``target`` is the minimum NumPy
    runtime ``(major, minor)`` baked in by NumPy 2 headers (``NPY_FEATURE_VERSION_STRING``) or
    None.
    """

    __slots__ = ("headers", "target")

    def __init__(self, headers: int, target: tuple[int, int] | None) -> None:
        self.headers = headers
        self.target = target

    def __repr__(self) -> str:
        return "NumpyBuild(headers=%d, target=%r)" % (self.headers, self.target)


_NUMPY2_MODULE = b"numpy._core._multiarray_umath\x00"
_NUMPY1_MODULE = b"numpy.core._multiarray_umath\x00"
_NUMPY1_ARRAY_API = b"_ARRAY_API not found"
_NUMPY_TARGET_RE = re.compile(rb"\(NumPy (\d+)\.(\d+)\) but the running NumPy")


#: Mapped files, oldest first: each mapping holds a file descriptor, so at most MAX_MAPPED stay.
_MAPPED: OrderedDict[int, ElfFile] = OrderedDict()
MAX_MAPPED = 256


def _mapped(elf: ElfFile) -> None:
    _MAPPED[id(elf)] = elf
    while len(_MAPPED) > MAX_MAPPED:
        _k, old = _MAPPED.popitem(last=False)
        old.release()


class ElfFile:
    """One ELF object read through ``mmap``; tables are parsed on first use.

    The mapping can be released (``release``) and is reopened on demand, so a resolver can hold
    thousands of these without running out of file descriptors.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._mm: mmap.mmap | None = None
        st = self._open()
        self.file_id = (st.st_dev, st.st_ino)
        self.size = st.st_size
        try:
            self._parse_header()
            self._parse_dynamic()
        except struct.error as exc:  # offsets that point outside the file
            self.release()
            raise ElfError("%s: corrupt ELF file (%s)" % (path, exc)) from None
        self._verneed: list[tuple[str, str, bool, int]] | None = None
        self._verdef: dict[int, tuple[str, int]] | None = None
        self._exports: dict[bytes, list[int | None]] | None = None
        self._lookups = 0
        self._provides: dict[tuple[bytes, bytes | None], bool] = {}
        self._nsyms: int | None = None
        self._verdef_names: frozenset[str] | None = None
        self._undef_names: frozenset[bytes] | None = None
        self._export_keys: frozenset[bytes] | None = None
        self._gnu: tuple[int, int, int, int, int, int, int, int] | None = None
        self._gnu_arr: tuple[int, int, array[int], int, int, array[int], array[int]] | None = None
        self._symtab_off: object = _UNSET
        self._versym_off: object = _UNSET
        #: name -> bool: ``defines`` answers, shared by every requester that asks this object.
        self._defines_memo: dict[bytes, bool] = {}
        self._sysv: tuple[int, int, int, int] | None = None
        self._dynstr_bytes: bytes | None = None
        self._sections: list[tuple[str, int, int, int, int, int, int, int, int]] | None = None

    # -- mapping

    def _open(self) -> os.stat_result:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise NotElf("%s: %s" % (self.path, exc.strerror)) from None
        try:
            st = os.fstat(fd)
            if st.st_size < 52:  # smaller than any ELF header
                if os.read(fd, 4) != ELFMAG:
                    raise NotElf("%s: invalid ELF header" % self.path)
                raise ElfError("%s: file too short" % self.path)
            self._mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            _mapped(self)
        except (OSError, ValueError) as exc:
            raise ElfError("%s: %s" % (self.path, exc)) from None
        finally:
            os.close(fd)
        return st

    @property
    def mm(self) -> mmap.mmap:
        mm = self._mm
        if mm is None:
            self._open()
            mm = self._mm
            if mm is None:  # pragma: no cover - _open either maps or raises
                raise ElfError("%s: cannot map" % self.path)
        return mm

    def release(self) -> None:
        """Unmap the file (it is mapped again when a table is next needed)."""
        if self._mm is not None:
            self._mm.close()
            self._mm = None
            _MAPPED.pop(id(self), None)

    close = release

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return "ElfFile(%r)" % self.path

    # -- header, program headers, dynamic table

    def _parse_header(self) -> None:
        mm = self.mm
        ident = mm[:16]
        if ident[:4] != ELFMAG:
            raise NotElf("%s: invalid ELF header" % self.path)
        self.elfclass = ident[4]
        self.data = ident[5]
        self.osabi = ident[7]
        if self.elfclass not in (ELFCLASS32, ELFCLASS64) or self.data not in (1, 2):
            raise ElfError("%s: invalid ELF class/data" % self.path)
        e = "<" if self.data == ELFDATA2LSB else ">"
        self._e = e
        is64 = self.elfclass == ELFCLASS64
        self.is64 = is64
        if is64:
            hdr = struct.unpack_from(e + "HHIQQQIHHHHHH", mm, 16)
        else:
            hdr = struct.unpack_from(e + "HHIIIIIHHHHHH", mm, 16)
        (
            self.type,
            self.machine,
            _version,
            _entry,
            phoff,
            self._shoff,
            self.flags,
            _ehsize,
            phentsize,
            phnum,
            self._shentsize,
            self._shnum,
            self._shstrndx,
        ) = hdr
        self._addr = "Q" if is64 else "I"
        self._sym_fmt = e + ("IBBHQQ" if is64 else "IIIBBH")
        self._sym_size = 24 if is64 else 16
        # Program headers.
        self.loads: list[tuple[int, int, int, int, int]] = []  # (vaddr, memsz, offset, filesz, fl)
        self.interp: str | None = None
        self.exec_stack: bool | None = None  # None: no PT_GNU_STACK
        self._dynamic = None  # (offset, size)
        if phnum == 0xFFFF and self._shoff:  # PN_XNUM: the count lives in section 0's sh_info
            phnum = self._section0_info()
        if phoff and phnum and phentsize:
            pfmt = e + ("IIQQQQQQ" if is64 else "IIIIIIII")
            need = phoff + phnum * phentsize
            if need > self.size:
                raise ElfError("%s: file too short (program headers)" % self.path)
            for i in range(phnum):
                ph = struct.unpack_from(pfmt, mm, phoff + i * phentsize)
                if is64:
                    p_type, p_flags, p_offset, p_vaddr, _p, p_filesz, p_memsz, _a = ph
                else:
                    p_type, p_offset, p_vaddr, _p, p_filesz, p_memsz, p_flags, _a = ph
                if p_type == PT_LOAD:
                    self.loads.append((p_vaddr, p_memsz, p_offset, p_filesz, p_flags))
                elif p_type == PT_DYNAMIC:
                    self._dynamic = (p_offset, p_filesz)
                elif p_type == PT_INTERP:
                    end = mm.find(b"\x00", p_offset, p_offset + p_filesz)
                    self.interp = os.fsdecode(
                        mm[p_offset : end if end >= 0 else p_offset + p_filesz]
                    )
                elif p_type == PT_GNU_STACK:
                    self.exec_stack = bool(p_flags & PF_X)

    def _section0_info(self) -> int:
        s = self._section_headers()
        return s[0][7] if s else 0

    def _section_headers(self) -> list[tuple[str, int, int, int, int, int, int, int, int]]:
        """[(name, type, flags, addr, offset, size, link, info, entsize)]; [] when absent."""
        if self._sections is not None:
            return self._sections
        out: list[tuple[str, int, int, int, int, int, int, int, int]] = []
        shoff, shnum, shentsize = self._shoff, self._shnum, self._shentsize
        if shoff and shentsize and shnum == 0:
            shnum = struct.unpack_from(
                self._e + ("Q" if self.is64 else "I"), self.mm, shoff + (32 if self.is64 else 20)
            )[0]
        if not shoff or not shnum or shoff + shnum * shentsize > self.size:
            self._sections = out
            return out
        fmt = self._e + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")
        size = struct.calcsize(fmt)
        if shentsize != size:
            self._sections = out
            return out
        mm = self.mm
        raw = list(struct.iter_unpack(fmt, mm[shoff : shoff + shnum * size]))
        names = b""
        if self._shstrndx < shnum:
            noff, nsize = raw[self._shstrndx][4], raw[self._shstrndx][5]
            names = mm[noff : noff + nsize]
        for r in raw:
            end = names.find(b"\x00", r[0])
            name = names[r[0] : end].decode("ascii", "replace") if end >= 0 else ""
            out.append((name, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[9]))
        self._sections = out
        return out

    def _section(self, sh_type: int) -> tuple[str, int, int, int, int, int, int, int, int] | None:
        for s in self._section_headers():
            if s[1] == sh_type:
                return s
        return None

    def section_named(self, name: str) -> tuple[Any, ...] | None:
        """(file offset, size) of the section called ``name`` (``.nv_fatbin``), or None.

        None too for a section without file contents (SHT_NOBITS) or one that runs past the end
        of the file, so a caller can slice ``mm`` without checking again.
        """
        for s in self._section_headers():
            if s[0] == name and s[1] != 8:  # not SHT_NOBITS
                off, size = s[4], s[5]
                return (off, size) if off + size <= self.size else None
        return None

    def offset_of(self, vaddr: int) -> int | None:
        """File offset of a virtual address, via PT_LOAD (then section headers)."""
        for v, _memsz, off, filesz, _f in self.loads:
            if v <= vaddr < v + filesz:
                return vaddr - v + off
        for s in self._section_headers():
            addr, off, size = s[3], s[4], s[5]
            if addr and addr <= vaddr < addr + size and s[1] != 8:  # not SHT_NOBITS
                return vaddr - addr + off
        return None

    def _parse_dynamic(self) -> None:
        self.needed: list[str] = []
        self.soname: str | None = None
        self.rpath: str | None = None
        self.runpath: str | None = None
        self.flags_1 = 0
        self.dyn: dict[int, int] = {}
        loc = self._dynamic
        if loc is None or loc[0] + loc[1] > self.size:
            sec = self._section(SHT_DYNAMIC)
            loc = (sec[4], sec[5]) if sec else None
        if loc is None:
            self._strtab = None
            return
        off, size = loc
        fmt = self._e + ("qQ" if self.is64 else "iI")
        entsize = 16 if self.is64 else 8
        size = min(size, self.size - off) // entsize * entsize
        needed_off: list[int] = []
        dyn = self.dyn
        for tag, val in struct.iter_unpack(fmt, self.mm[off : off + size]):
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                needed_off.append(val)
            elif tag not in dyn:
                dyn[tag] = val
        self.flags_1 = dyn.get(DT_FLAGS_1, 0)
        strtab = self.offset_of(dyn[DT_STRTAB]) if DT_STRTAB in dyn else None
        if strtab is None:
            sec = self._section(SHT_DYNAMIC)
            if sec is not None:
                shs = self._section_headers()
                if sec[6] < len(shs):
                    strtab = shs[sec[6]][4]
        self._strtab = strtab
        if strtab is None:
            return
        self.needed = [self._str(strtab + o) for o in needed_off]
        if DT_SONAME in dyn:
            self.soname = self._str(strtab + dyn[DT_SONAME])
        if DT_RUNPATH in dyn:
            self.runpath = self._str(strtab + dyn[DT_RUNPATH])
        if DT_RPATH in dyn:
            self.rpath = self._str(strtab + dyn[DT_RPATH])

    def _bstr(self, off: int) -> bytes:
        mm = self.mm
        end = mm.find(b"\x00", off)
        return mm[off:end] if end >= 0 else b""

    def _str(self, off: int) -> str:
        return os.fsdecode(self._bstr(off))

    # -- convenient facts

    @property
    def nodeflib(self) -> bool:
        return bool(self.flags_1 & DF_1_NODEFLIB)

    @property
    def effective_rpath(self) -> str | None:
        """DT_RPATH as ld.so sees it: ignored when DT_RUNPATH is present (get-dynamic-info.h)."""
        return None if self.runpath is not None else self.rpath

    @property
    def name(self) -> str:
        return self.soname or os.path.basename(self.path)

    def compatible_with(self, other: ElfFile) -> bool:
        """Same class, byte order and machine: ld.so skips a candidate that differs."""
        return (
            self.elfclass == other.elfclass
            and self.data == other.data
            and self.machine == other.machine
        )

    # -- symbol versioning

    def _version_table(self, tag: int, num_tag: int, section: int) -> tuple[int | None, int | None]:
        """(file offset, entry count) of a version table: from the dynamic section (what ld.so
        reads), else from the section header (a stripped or odd file); (None, count) if absent."""
        off = None
        count = self.dyn.get(num_tag)
        if tag in self.dyn:
            off = self.offset_of(self.dyn[tag])
        if off is None:
            sec = self._section(section)
            if sec is not None:
                off, count = sec[4], sec[7]
        return off, count

    def version_needs(self) -> list[tuple[str, str, bool, int]]:
        """``.gnu.version_r``: [(file, version, weak, index)] in file order."""
        if self._verneed is not None:
            return self._verneed
        out: list[tuple[str, str, bool, int]] = []
        off, count = self._version_table(DT_VERNEED, DT_VERNEEDNUM, SHT_GNU_VERNEED)
        strtab = self._strtab
        if off is not None and strtab is not None and count:
            mm, e = self.mm, self._e
            for _ in range(count):
                _ver, cnt, vn_file, vn_aux, vn_next = struct.unpack_from(e + "HHIII", mm, off)
                fname = self._str(strtab + vn_file)
                aux = off + vn_aux
                for _ in range(cnt):
                    _h, flags, other, name, nxt = struct.unpack_from(e + "IHHII", mm, aux)
                    out.append((fname, self._str(strtab + name), bool(flags & VER_FLG_WEAK), other))
                    if not nxt:
                        break
                    aux += nxt
                if not vn_next:
                    break
                off += vn_next
        self._verneed = out
        return out

    def needed_versions(self) -> dict[str, list[str]]:
        """{file: [version, ...]} from ``.gnu.version_r``, in file order."""
        out: dict[str, list[str]] = {}
        for fname, ver, _weak, _idx in self.version_needs():
            out.setdefault(fname, []).append(ver)
        return out

    def _version_defs(self) -> dict[int, tuple[str, int]]:
        """{index: (name, flags)} from ``.gnu.version_d`` (first aux entry is the node's name)."""
        if self._verdef is not None:
            return self._verdef
        out: dict[int, tuple[str, int]] = {}
        off, count = self._version_table(DT_VERDEF, DT_VERDEFNUM, SHT_GNU_VERDEF)
        strtab = self._strtab
        if off is not None and strtab is not None and count:
            mm, e = self.mm, self._e
            for _ in range(count):
                _v, flags, ndx, _cnt, _hash, aux, nxt = struct.unpack_from(e + "HHHHIII", mm, off)
                name_off = struct.unpack_from(e + "I", mm, off + aux)[0]
                out[ndx] = (self._str(strtab + name_off), flags)
                if not nxt:
                    break
                off += nxt
        self._verdef = out
        return out

    def defined_version_names(self) -> frozenset[str]:
        """Every version node name defined here, base node included (what match_symbol compares)."""
        if self._verdef_names is None:
            self._verdef_names = frozenset(n for n, _f in self._version_defs().values())
        return self._verdef_names

    def version_definitions(self) -> list[str]:
        """Version nodes this object defines (``GLIBC_2.17``...), without the base (soname) node."""
        return [n for n, f in self._version_defs().values() if not f & VER_FLG_BASE]

    @property
    def has_verdef(self) -> bool:
        return bool(self._version_defs())

    def newest_version(self, prefix: str) -> str | None:
        """The highest node named ``prefix`` + a number (``GLIBCXX_`` -> ``GLIBCXX_3.4.30``)."""
        n = len(prefix)
        cands = [
            v for v in self.version_definitions() if v.startswith(prefix) and v[n : n + 1].isdigit()
        ]
        return max(cands, key=version_key) if cands else None

    # -- dynamic symbols

    def _dynstr(self) -> bytes:
        if self._dynstr_bytes is None:
            st = self._strtab
            size = self.dyn.get(DT_STRSZ)
            if st is None:
                self._dynstr_bytes = b""
            else:
                end = st + size if size else self.size
                self._dynstr_bytes = self.mm[st:end]
        return self._dynstr_bytes

    def _symtab(self) -> int | None:
        """File offset of ``.dynsym`` (computed once: every lookup needs it)."""
        if self._symtab_off is _UNSET:
            off = self.offset_of(self.dyn[DT_SYMTAB]) if DT_SYMTAB in self.dyn else None
            if off is None:
                sec = self._section(SHT_DYNSYM)
                off = sec[4] if sec else None
            self._symtab_off = off
        return self._symtab_off  # type: ignore[return-value]

    def _versym(self) -> int | None:
        """File offset of ``.gnu.version`` (computed once)."""
        if self._versym_off is _UNSET:
            if DT_VERSYM in self.dyn:
                off = self.offset_of(self.dyn[DT_VERSYM])
            else:
                sec = self._section(SHT_GNU_VERSYM)
                off = sec[4] if sec else None
            self._versym_off = off
        return self._versym_off  # type: ignore[return-value]

    def _gnu_table(self) -> tuple[int, int, int, int, int, int, int, int] | None:
        if self._gnu is None and DT_GNU_HASH in self.dyn:
            off = self.offset_of(self.dyn[DT_GNU_HASH])
            if off is not None:
                nb, symoff, bloom_size, shift = struct.unpack_from(self._e + "IIII", self.mm, off)
                word = 8 if self.is64 else 4
                bloom = off + 16
                buckets = bloom + bloom_size * word
                chain = buckets + nb * 4
                self._gnu = (nb, symoff, bloom_size, shift, bloom, buckets, chain, word)
        return self._gnu

    def _sysv_table(self) -> tuple[int, int, int, int] | None:
        if self._sysv is None and DT_HASH in self.dyn:
            off = self.offset_of(self.dyn[DT_HASH])
            if off is not None:
                nb, nchain = struct.unpack_from(self._e + "II", self.mm, off)
                self._sysv = (nb, nchain, off + 8, off + 8 + nb * 4)
        return self._sysv

    def _array(self, typecode: str, off: int, count: int) -> array[int]:
        """``count`` integers at ``off`` as a host-order C array (one copy, no per-item unpack)."""
        a = array(typecode)
        end = off + count * a.itemsize
        if off < 0 or end > self.size:
            raise ElfError("%s: corrupt ELF file (hash table outside the file)" % self.path)
        a.frombytes(self.mm[off:end])
        if self.data != _HOST_DATA:
            a.byteswap()
        return a

    def _gnu_arrays(self) -> tuple[int, int, array[int], int, int, array[int], array[int]] | None:
        """DT_GNU_HASH as arrays: (nbuckets, symoffset, bloom, bloom bits, shift, buckets, chains).

        Read once per object; lookups then index C arrays instead of calling ``struct``.
        """
        if self._gnu_arr is None:
            g = self._gnu_table()
            if g is None:
                return None
            nb, symoff, bloom_size, shift, bloom, buckets, chain, word = g
            bloom_arr = self._array(_U64 if word == 8 else _U32, bloom, bloom_size)
            nchain = max(self.symbol_count() - symoff, 0)
            self._gnu_arr = (
                nb,
                symoff,
                bloom_arr,
                word * 8,
                shift,
                self._array(_U32, buckets, nb),
                self._array(_U32, chain, nchain),
            )
        return self._gnu_arr

    def symbol_count(self) -> int:
        """Number of ``.dynsym`` entries (from DT_HASH, the GNU hash chains, or the section)."""
        if self._nsyms is None:
            self._nsyms = self._symbol_count()
        return self._nsyms

    def _symbol_count(self) -> int:
        sv = self._sysv_table()
        if sv is not None:
            return sv[1]
        sec = self._section(SHT_DYNSYM)
        if sec is not None and sec[8]:
            return sec[5] // sec[8]
        g = self._gnu_table()
        if g is None:
            return 0
        nb, symoff, _bs, _sh, _bl, buckets, chain, _w = g
        mm, e = self.mm, self._e
        last = max(struct.unpack_from(e + "%dI" % nb, mm, buckets)) if nb else 0
        if last < symoff:
            return symoff
        while not struct.unpack_from(e + "I", mm, chain + (last - symoff) * 4)[0] & 1:
            last += 1
        return last + 1

    def _sym(self, idx: int, symtab: int) -> tuple[int, int, int, int, int]:
        """(st_name, info, other, shndx, value) of symbol ``idx``."""
        s = struct.unpack_from(self._sym_fmt, self.mm, symtab + idx * self._sym_size)
        if self.is64:
            return s[0], s[1], s[2], s[3], s[4]
        return s[0], s[3], s[4], s[5], s[1]

    def _versym_at(self, idx: int) -> int | None:
        vs = self._versym()
        if vs is None:
            return None
        return struct.unpack_from(self._e + "H", self.mm, vs + idx * 2)[0]  # type: ignore[no-any-return]

    @staticmethod
    def _defined(info: int, other: int, shndx: int, value: int) -> bool:
        if shndx == SHN_UNDEF:
            return False
        if info >> 4 not in (STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE):
            return False
        if other & 3 in (1, 2):  # STV_INTERNAL, STV_HIDDEN
            return False
        stt = info & 0xF
        if stt not in _ALLOWED_STT:
            return False
        return not (value == 0 and shndx != SHN_ABS and stt != _STT_TLS)

    def lookup(self, name: bytes) -> list[int | None]:
        """Version indexes (``.gnu.version`` values) of the visible definitions of ``name``.

        [] means not defined; ``None`` inside the list means the object has no version table.
        Uses the GNU hash (or SysV hash) table: O(1), no scan of ``.dynsym``.
        """
        if self._exports is not None:
            return self._exports.get(name, [])
        symtab = self._symtab()
        if symtab is None:
            return []
        g = self._gnu_arrays()
        if g is not None:
            idx = self._gnu_bucket(g, _gnu_hash_cached(name))
            return self._gnu_chain(g, idx, name, symtab, first=False) if idx else []
        self._lookups += 1
        if self._lookups > 256 and self._lookups * 8 > self.symbol_count():
            # Asked often relative to its size: one pass over .dynsym beats more SysV hash walks.
            return self._build_exports().get(name, [])
        sv = self._sysv_table()
        if sv is None:
            return self._build_exports().get(name, [])
        out: list[int | None] = []
        nb, nchain, buckets, chains = sv
        if not nb:
            return out
        dynstr = self._dynstr()
        target = name + b"\x00"
        mm, e = self.mm, self._e
        idx = struct.unpack_from(e + "I", mm, buckets + (sysv_hash(name) % nb) * 4)[0]
        seen = 0
        while idx and idx < nchain and seen < nchain:
            st_name, info, other, shndx, value = self._sym(idx, symtab)
            if dynstr.startswith(target, st_name) and self._defined(info, other, shndx, value):
                out.append(self._versym_at(idx))
            idx = struct.unpack_from(e + "I", mm, chains + idx * 4)[0]
            seen += 1
        return out

    @staticmethod
    def _gnu_bucket(
        g: tuple[int, int, array[int], int, int, array[int], array[int]], h: int
    ) -> int:
        """The first symbol index of hash ``h``'s chain, or 0 when the bloom filter or the bucket
        already rules the name out (most lookups in the wrong library end here)."""
        nb, symoff, bloom, bits, shift, buckets, _chains = g
        if not nb or not bloom:
            return 0
        w = bloom[(h // bits) % len(bloom)]
        if not (w >> (h % bits)) & (w >> ((h >> shift) % bits)) & 1:
            return 0
        idx = buckets[h % nb]
        return idx if idx >= symoff else 0

    def _gnu_chain(
        self,
        g: tuple[int, int, array[int], int, int, array[int], array[int]],
        idx: int,
        name: bytes,
        symtab: int,
        first: bool,
    ) -> list[int | None]:
        """Walk one GNU hash chain from ``idx``: versym values of the visible definitions."""
        symoff, chains = g[1], g[6]
        h1 = _gnu_hash_cached(name) | 1
        target = name + b"\x00"
        n = len(target)
        base, mm = self._strtab, self.mm
        out: list[int | None] = []
        if base is None:
            return out
        i = idx - symoff
        try:
            while True:
                h2 = chains[i]
                if h1 == h2 | 1:
                    st_name, info, other, shndx, value = self._sym(idx, symtab)
                    off = base + st_name
                    if mm[off : off + n] == target and self._defined(info, other, shndx, value):
                        out.append(self._versym_at(idx))
                        if first:
                            break
                if h2 & 1:
                    break
                i += 1
                idx += 1
        except IndexError:
            raise ElfError("%s: corrupt ELF file (GNU hash chain runs off)" % self.path) from None
        return out

    def _sym_columns(
        self, start: int, stop: int
    ) -> tuple[
        tuple[int, ...],
        tuple[int, ...],
        tuple[int, ...],
        tuple[int, ...],
        tuple[int, ...],
        tuple[int, ...] | None,
    ]:
        """(st_name, st_info, st_other, st_shndx, st_value, versym) columns of ``.dynsym[a:b]``.

        One ``struct`` call per column set instead of one per symbol: the hot loop of the probe.
        """
        symtab = self._symtab()
        n = stop - start
        if symtab is None or n <= 0:
            return (), (), (), (), (), None
        mm = self.mm
        size = self._sym_size
        end = min(symtab + stop * size, self.size)
        n = (end - symtab - start * size) // size
        if n <= 0:
            return (), (), (), (), (), None
        if self.is64:
            flat = struct.unpack_from(self._e + "IBBHQ8x" * n, mm, symtab + start * size)
            names, infos, others, shndxs, values = (flat[i::5] for i in range(5))
        else:
            flat = struct.unpack_from(self._e + "II4xBBH" * n, mm, symtab + start * size)
            names, values, infos, others, shndxs = (flat[i::5] for i in range(5))
        vs_off = self._versym()
        versyms = None
        if vs_off is not None and vs_off + (start + n) * 2 <= self.size:
            versyms = struct.unpack_from(self._e + "%dH" % n, mm, vs_off + start * 2)
        return names, infos, others, shndxs, values, versyms

    def _build_exports(self) -> dict[bytes, list[int | None]]:
        exports: dict[bytes, list[int | None]] = {}
        g = self._gnu_table()
        start = g[1] if g is not None else 1
        versyms: tuple[int | None, ...] | None
        names, infos, others, shndxs, values, versyms = self._sym_columns(
            start, self.symbol_count()
        )
        dynstr = self._dynstr()
        find = dynstr.find
        if versyms is None:
            versyms = (None,) * len(names)
        allowed = _ALLOWED_STT
        for st_name, info, other, shndx, value, vs in zip(
            names, infos, others, shndxs, values, versyms
        ):
            if shndx == SHN_UNDEF or other & 3 in (1, 2):
                continue
            if info >> 4 not in _BINDS:
                continue
            stt = info & 0xF
            if stt not in allowed or (value == 0 and shndx != SHN_ABS and stt != _STT_TLS):
                continue
            name = dynstr[st_name : find(b"\x00", st_name)]
            lst = exports.get(name)
            if lst is None:
                exports[name] = [vs]
            else:
                lst.append(vs)
        self._exports = exports
        return exports

    def defines(self, names: frozenset[bytes]) -> frozenset[bytes]:
        """The subset of ``names`` this object defines (visible, any version).

        With a GNU hash table every name is one bloom-filter test (most names asked of the wrong
        library stop there) and at most one chain walk; answers are memoised on the object, so a
        library that many requesters link (``libtorch_cpu.so``, 75k symbols) is never read in
        full; an object asked for more names than it has symbols is read whole instead (one set
        intersection).  Without a GNU table, names are looked up until that would cost about as
        much as reading all the exports once (a SysV hash walk costs about what reading eight
        symbols does).
        """
        if self._export_keys is None and len(names) > self.symbol_count():
            self.export_keys()  # more names asked than it has symbols: read them all once
        if self._export_keys is not None:
            return names & self._export_keys
        g = self._gnu_arrays()
        symtab = self._symtab()
        if g is None or symtab is None:
            if self._exports is None and (self._lookups + len(names)) * 8 < self.symbol_count():
                return frozenset(n for n in names if self.lookup(n))
            return names & self.export_keys()
        # The hot loop of the probe: the bloom test and the chain walk inlined, C arrays only.
        nb, symoff, bloom, bits, shift, buckets, chains = g
        if not nb or not bloom:
            return frozenset()
        nbloom = len(bloom)
        base, mm = self._strtab, self.mm
        if base is None:
            return frozenset()
        memo = self._defines_memo
        _prime_hashes([n for n in names if n not in memo])
        hashes = _hash_cache
        sym = self._sym
        defined = self._defined
        found = []
        try:
            for name in names:
                hit = memo.get(name)
                if hit is None:
                    hit = False
                    h = hashes.get(name)
                    if h is None:
                        h = _gnu_hash_cached(name)
                    w = bloom[(h // bits) % nbloom]
                    if (w >> (h % bits)) & (w >> ((h >> shift) % bits)) & 1:
                        idx = buckets[h % nb]
                        if idx >= symoff:
                            h1 = h | 1
                            target = name + b"\x00"
                            i = idx - symoff
                            while True:
                                h2 = chains[i]
                                if h1 == h2 | 1:
                                    st_name, info, other, shndx, value = sym(idx, symtab)
                                    off = base + st_name
                                    if mm[off : off + len(target)] == target and defined(
                                        info, other, shndx, value
                                    ):
                                        hit = True
                                        break
                                if h2 & 1:
                                    break
                                i += 1
                                idx += 1
                    memo[name] = hit
                if hit:
                    found.append(name)
        except IndexError:
            raise ElfError("%s: corrupt ELF file (GNU hash chain runs off)" % self.path) from None
        return frozenset(found)

    def _sym_words(
        self, start: int, stop: int
    ) -> tuple[array[int], array[int], Iterator[bool]] | None:
        """(st_name, second word, value != 0) columns of ``.dynsym[start:stop]`` as C arrays
        and iterators, for little-endian files (None otherwise: use ``_sym_columns``).

        The second 32-bit word of a little-endian symbol is ``st_info | st_other << 8 |
        st_shndx << 16`` in both classes, so one array slice gives three fields and a set lookup
        tests them together; no ``struct`` call and no Python-level loop.
        """
        symtab = self._symtab()
        if self.data != ELFDATA2LSB or symtab is None:
            return None
        size = self._sym_size
        stop = min(stop, (self.size - symtab) // size)
        if stop <= start:
            return array(_U32), array(_U32), iter(())
        words = self._array(_U32, symtab + start * size, (stop - start) * size // 4)
        if self.is64:  # st_name, info/other/shndx, value (2 words), size (2 words)
            return words[0::6], words[1::6], map(bool, map(_or, words[2::6], words[3::6]))
        return words[0::4], words[3::4], map(bool, words[1::4])  # st_name, value, size, info..

    def export_keys(self) -> frozenset[bytes]:
        """Names (bytes) of all visible definitions, whatever their version."""
        if self._export_keys is None:
            g = self._gnu_table()
            start = g[1] if g is not None else 1
            cols = (
                None if self._exports is not None else self._sym_words(start, self.symbol_count())
            )
            names: array[int] | tuple[int, ...]
            values: Iterator[bool] | tuple[int, ...]
            if self._exports is not None:
                self._export_keys = frozenset(self._exports)
            elif cols is not None:
                names, words, values = cols
                # dl-lookup.c's tests: defined (st_shndx != 0), a bindable binding, type and
                # visibility, and a value (or SHN_ABS, or TLS).
                mask = map(
                    _and,
                    map(
                        _and,
                        map(_ge, words, repeat(0x10000)),
                        map(_EXPORT_LOW.__contains__, map(_and, words, repeat(_EXPORT_MASK))),
                    ),
                    map(
                        _or,
                        values,
                        map(
                            _or,
                            map(_eq, map(_rshift, words, repeat(16)), repeat(SHN_ABS)),
                            map(_eq, map(_and, words, repeat(0xF)), repeat(_STT_TLS)),
                        ),
                    ),
                )
                self._export_keys = frozenset(self._names_at(compress(names, mask)))
            else:
                g = self._gnu_table()
                start = g[1] if g is not None else 1
                names, infos, others, shndxs, values, _vs = self._sym_columns(
                    start, self.symbol_count()
                )
                # dl-lookup.c's tests as C-level masks: defined, visible, a bindable binding and
                # type, and a value (or SHN_ABS, or TLS).
                mask = map(
                    _and,
                    map(_and, map(bool, shndxs), map(_EXPORT_INFO.__contains__, infos)),
                    map(
                        _and,
                        map(_VISIBLE.__contains__, others),
                        map(
                            _or,
                            map(_or, map(bool, values), map(SHN_ABS.__eq__, shndxs)),
                            map(_TLS_INFO.__contains__, infos),
                        ),
                    ),
                )
                self._export_keys = frozenset(self._names_at(compress(names, mask)))
        return self._export_keys

    def _names_at(self, offsets: Iterable[int]) -> Iterator[bytes]:
        """The ``.dynstr`` strings at ``offsets``, sliced without a Python-level loop.

        Read from the mapping, not from a copy of ``.dynstr`` (5 MB in ``libtorch_cpu.so``)."""
        base = self._strtab
        if base is None:
            return iter(())
        mm = self.mm
        offs = list(map(_add, offsets, repeat(base)))
        ends = map(mm.find, repeat(b"\x00", len(offs)), offs)
        return map(mm.__getitem__, map(slice, offs, ends))

    def exported_names(self) -> list[str]:
        """All visible defined dynamic symbol names (decoded), e.g. for parity with ``nm -D``."""
        exports = self._exports if self._exports is not None else self._build_exports()
        return [n.decode("utf-8", "replace") for n in exports]

    def has_export(self, name: str | bytes, version: str | None = None) -> bool:
        """True when ld.so would bind a reference to ``name`` (optionally ``name@version``) here."""
        bname = name.encode("utf-8") if isinstance(name, str) else name
        return self.provides(bname, version.encode("utf-8") if version else None)

    def provides(self, name: bytes, version: bytes | None) -> bool:
        """ld.so's ``check_match`` versioning rules for a reference resolved against this object."""
        key = (name, version)
        hit = self._provides.get(key)
        if hit is None:
            hit = self._provides[key] = self._provides_uncached(name, version)
        return hit

    def _provides_uncached(self, name: bytes, version: bytes | None) -> bool:
        found = self.lookup(name)
        if not found:
            return False
        if found[0] is None:  # no .gnu.version: any definition matches
            return True
        defs = self._version_defs()
        for vs in found:
            ndx = vs & 0x7FFF  # type: ignore[operator]  # not None: checked on found[0]
            hidden = vs & 0x8000  # type: ignore[operator]
            if version is None:
                # Unversioned reference: ndx 0-2 always, or the (single) non-hidden default.
                if ndx < 3 or not hidden:
                    return True
            else:
                d = defs.get(ndx)
                if d is not None and d[0].encode("utf-8") == version:
                    return True
                if d is None and not hidden:  # unversioned definition
                    return True
        return False

    def undefined_names(self) -> frozenset[bytes]:
        """Names (bytes) of the non-weak undefined dynamic symbols, without versions (fast path)."""
        if self._undef_names is None:
            g = self._gnu_table()
            stop = g[1] if g is not None else self.symbol_count()
            cols = self._sym_words(1, stop)
            names: array[int] | tuple[int, ...]
            _v: Iterator[bool] | tuple[int, ...]
            if cols is not None:
                names, words, _v = cols
                mask = map(_UNDEF_INFO.__contains__, map(_and, words, repeat(_UNDEF_MASK)))
            else:
                names, infos, _o, shndxs, _v, _vs = self._sym_columns(1, stop)
                mask = map(_and, map(_not, shndxs), map(_UNDEF_INFO.__contains__, infos))
            self._undef_names = frozenset(self._names_at(compress(compress(names, mask), names)))
        return self._undef_names

    def undefined_symbols(self) -> list[tuple[bytes, bytes | None, str | None]]:
        """Non-weak undefined dynamic symbols: [(name, version or None, version file or None)].

        In a GNU-hash object every undefined symbol sits before ``symoffset`` (undefined symbols are
        never hashed), so only that prefix of ``.dynsym`` is read.
        """
        g = self._gnu_table()
        stop = g[1] if g is not None else self.symbol_count()
        dynstr = self._dynstr()
        find = dynstr.find
        vers: dict[int, tuple[bytes, str]] = {}
        for fname, ver, _weak, idx in self.version_needs():
            vers[idx] = (ver.encode("utf-8"), fname)
        names, infos, _o, shndxs, _v, versyms = self._sym_columns(1, stop)
        keep = [
            i
            for i, (st_name, info, shndx) in enumerate(zip(names, infos, shndxs))
            if shndx == SHN_UNDEF
            and st_name
            and (info >> 4 == STB_GLOBAL or info >> 4 == STB_GNU_UNIQUE)
        ]
        if not vers or versyms is None:
            return [(dynstr[names[i] : find(b"\x00", names[i])], None, None) for i in keep]
        out: list[tuple[bytes, bytes | None, str | None]] = []
        for i in keep:
            st_name = names[i]
            v = vers.get(versyms[i] & 0x7FFF)
            name = dynstr[st_name : find(b"\x00", st_name)]
            out.append((name, v[0], v[1]) if v else (name, None, None))
        return out

    # -- read-only data

    def rodata_ranges(self) -> list[tuple[int, int]]:
        """[(offset, size)] of ``.rodata`` (or the read-only, non-executable PT_LOAD segments)."""
        out = [(s[4], s[5]) for s in self._section_headers() if s[0] == ".rodata" and s[1] != 8]
        if out:
            return out
        return [
            (off, filesz)
            for _v, _m, off, filesz, fl in self.loads
            if fl & (PF_W | PF_X) == 0 and filesz
        ]

    def rodata_find(self, needle: bytes) -> int:
        """Offset of ``needle`` in read-only data, or -1 (never scans the whole file)."""
        mm = self.mm
        for off, size in self.rodata_ranges():
            pos = mm.find(needle, off, min(off + size, self.size))
            if pos >= 0:
                return pos
        return -1

    def numpy_build(self) -> NumpyBuild | None:
        """Which NumPy C-API headers the file was compiled with, from ``_import_array`` literals."""
        if self.rodata_find(_NUMPY2_MODULE) >= 0:
            target = None
            mm = self.mm
            for off, size in self.rodata_ranges():
                pos = mm.find(b"(NumPy ", off, min(off + size, self.size))
                while pos >= 0:
                    m = _NUMPY_TARGET_RE.match(mm[pos : pos + 64])
                    if m:
                        target = (int(m.group(1)), int(m.group(2)))
                        break
                    pos = mm.find(b"(NumPy ", pos + 1, min(off + size, self.size))
                if target:
                    break
            return NumpyBuild(2, target)
        if self.rodata_find(_NUMPY1_MODULE) >= 0 and self.rodata_find(_NUMPY1_ARRAY_API) >= 0:
            return NumpyBuild(1, None)
        return None


def open_elf(path: str) -> ElfFile | None:
    """An ElfFile, or None when the file is not ELF (raises ElfError only for broken ELF files)."""
    try:
        return ElfFile(path)
    except NotElf:
        return None


# --- /etc/ld.so.cache

_CACHE_NEW = b"glibc-ld.so.cache1.1"
_CACHE_OLD = b"ld.so-1.7.0"
_HWCAP_EXTENSION = 1 << 62
# _DL_CACHE_DEFAULT_ID per (class, machine): FLAG_ELF_LIBC6 | the arch flag (sysdeps/*/dl-cache.h).
_CACHE_IDS = {
    (ELFCLASS64, 62): 0x0303,
    (ELFCLASS32, 62): 0x0803,
    (ELFCLASS32, 3): 0x0003,
    (ELFCLASS64, 183): 0x0A03,
    (ELFCLASS64, 21): 0x0503,
    (ELFCLASS64, 22): 0x0403,
    (ELFCLASS64, 243): 0x1003,
    (ELFCLASS32, 40): 0x0903,
}


class LdCache:
    """The new-format ``/etc/ld.so.cache`` (``glibc-ld.so.cache1.1``) as ``dl-cache.c`` reads it."""

    def __init__(self, path: str = "/etc/ld.so.cache") -> None:
        self.path = path
        #: name -> [(flags, path, hwcaps subdirectory or None, legacy hwcap bits)] in cache order
        self.entries: dict[str, list[tuple[int, str, str | None, int]]] = {}
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            return
        try:
            self._parse(data)
        except struct.error:  # a truncated cache: ld.so ignores it too
            self.entries = {}

    def _parse(self, data: bytes) -> None:
        base = 0
        if data.startswith(_CACHE_OLD):
            nlibs = struct.unpack_from("=I", data, 12)[0]
            base = (16 + nlibs * 12 + 7) & ~7
        if data[base : base + 20] != _CACHE_NEW or len(data) < base + 48:
            return
        nlibs, _strlen, _flags, ext_off = struct.unpack_from("=IIB3xI", data, base + 20)
        hwcaps: list[str] = []
        if ext_off and ext_off + 8 <= len(data) - base:
            magic, count = struct.unpack_from("=II", data, base + ext_off)
            if magic == 0xEAA42174:
                for i in range(count):
                    tag, _fl, off, size = struct.unpack_from(
                        "=IIII", data, base + ext_off + 8 + i * 16
                    )
                    if tag == 1:  # cache_extension_tag_glibc_hwcaps
                        for j in range(size // 4):
                            s = struct.unpack_from("=I", data, base + off + j * 4)[0]
                            hwcaps.append(self._cstr(data, base + s))
        for i in range(nlibs):
            flags, key, value, _osv, hwcap = struct.unpack_from("=iIIIQ", data, base + 48 + i * 24)
            sub = None
            if hwcap & _HWCAP_EXTENSION:
                j = hwcap & 0xFFFFFFFF
                sub = hwcaps[j] if j < len(hwcaps) else ""
                hwcap = 0
            name = self._cstr(data, base + key)
            self.entries.setdefault(name, []).append(
                (flags, self._cstr(data, base + value), sub, hwcap)
            )

    @staticmethod
    def _cstr(data: bytes, off: int) -> str:
        end = data.find(b"\x00", off)
        return os.fsdecode(data[off : end if end >= 0 else len(data)])

    def lookup(self, name: str, cache_id: int | None, hwcaps: list[str]) -> str | None:
        """The path ld.so takes from the cache for ``name`` (``search_cache``), or None.

        ``cache_id`` is ``_DL_CACHE_DEFAULT_ID`` for the process (None: accept any flags);
        ``hwcaps`` are the supported glibc-hwcaps subdirectories, most preferred first.
        """
        best = None
        best_prio = None
        for flags, path, sub, legacy in self.entries.get(name, ()):
            if cache_id is not None and flags != cache_id:
                continue
            if sub is not None:
                if sub not in hwcaps:
                    continue
                prio = hwcaps.index(sub)
                if best is None or best_prio is None or prio < best_prio:
                    best, best_prio = path, prio
                continue
            if best is not None:
                break
            if legacy & ~(1 << 63):
                continue
            return path
        return best


# --- the loader's configuration

_SYSTEM_DIRS_RE = re.compile(rb"\x00((?:/[A-Za-z0-9_.+\-/]*/\x00){2,16})")
_cpu_flags: list[frozenset[str]] = []  # memo: [frozenset] once read


def _cpuinfo_flags() -> frozenset[str]:
    """The CPU feature flags the kernel reports (what glibc's ISA-level checks test)."""
    if not _cpu_flags:
        flags: set[str] = set()
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith(("flags", "Features")):
                        flags.update(line.partition(":")[2].split())
                        break
        except OSError:
            pass
        _cpu_flags.append(frozenset(flags))
    return _cpu_flags[0]


_X86_64_LEVELS = (
    ("x86-64-v4", ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")),
    ("x86-64-v3", ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")),
    ("x86-64-v2", ("cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3")),
)


def _dl_platform(interp: str | None) -> str | None:
    """The loader's ``dl_platform`` from ``ld.so --list-diagnostics`` (glibc 2.33+), else None."""
    if not interp or not os.path.isfile(interp):
        return None
    import subprocess

    try:
        proc = subprocess.run(
            [interp, "--list-diagnostics"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(rb'^dl_platform="([^"\n]*)"', proc.stdout, re.MULTILINE)
    return os.fsdecode(m.group(1)) if m and m.group(1) else None


class LoaderConfig:
    """What the process's ``ld.so`` searches: system dirs, hwcaps subdirs, DSTs, the cache."""

    def __init__(
        self,
        *,
        system_dirs: list[str],
        hwcaps: list[str],
        platform: str,
        lib: str,
        cache: LdCache | None,
        cache_id: int | None,
        interp: str | None = None,
    ) -> None:
        self.system_dirs = system_dirs
        self.hwcaps = hwcaps
        self._platform = platform
        self._interp = interp
        self._platform_asked = interp is None
        self.lib = lib
        self.cache = cache
        self.cache_id = cache_id

    @property
    def platform(self) -> str:
        """``$PLATFORM`` as this ld.so expands it: its own ``dl_platform``, asked once, lazily.

        Not always ``uname -m``: glibc up to 2.36 calls an Intel CPU with AVX2 "haswell".
        """
        if not self._platform_asked:
            self._platform_asked = True
            self._platform = _dl_platform(self._interp) or self._platform
        return self._platform

    @classmethod
    def detect(cls, executable: ElfFile | None) -> LoaderConfig:
        """Read the configuration of the loader named in ``executable``'s PT_INTERP."""
        dirs: list[str] = []
        interp = executable.interp if executable is not None else None
        if interp:
            dirs = cls._system_dirs_from(interp)
        is64 = executable.is64 if executable is not None else sys.maxsize > 2**32
        machine = executable.machine if executable is not None else None
        if not dirs:
            dirs = cls._default_system_dirs(is64)
        levels: list[str] = []
        if machine == 62 and is64:
            flags = _cpuinfo_flags()
            for name, need in _X86_64_LEVELS:
                if all(f in flags for f in need):
                    levels.append(name)
        first = dirs[0].strip("/") if dirs else ("lib64" if is64 else "lib")
        cache_id = None
        if executable is not None:
            cache_id = _CACHE_IDS.get((executable.elfclass, executable.machine))
        return cls(
            system_dirs=dirs,
            hwcaps=levels,
            platform=os.uname().machine,
            lib=first,
            cache=LdCache(),
            cache_id=cache_id,
            interp=interp or None,
        )

    @staticmethod
    def _system_dirs_from(interp: str) -> list[str]:
        """glibc keeps its trusted dirs as one NUL-separated literal (``SYSTEM_DIRS``) in ld.so."""
        try:
            ld = ElfFile(interp)
        except ElfError:
            return []
        try:
            mm = ld.mm
            for off, size in ld.rodata_ranges() or [(0, ld.size)]:
                m = _SYSTEM_DIRS_RE.search(mm[off : off + size])
                if m:
                    parts = [p for p in m.group(1).split(b"\x00") if p]
                    if all(b"lib" in p for p in parts):
                        return [os.fsdecode(p).rstrip("/") or "/" for p in parts]
        finally:
            ld.release()
        return []

    @staticmethod
    def _default_system_dirs(is64: bool) -> list[str]:
        out = []
        arch = os.uname().machine
        for triplet in (arch + "-linux-gnu", arch + "-linux-gnueabihf"):
            for d in ("/lib/" + triplet, "/usr/lib/" + triplet):
                if os.path.isdir(d):
                    out.append(d)
        out += ["/lib64", "/usr/lib64"] if is64 else []
        out += ["/lib", "/usr/lib"]
        return out


# --- the process model and the resolver


class Node:
    """One object mapped into the modelled process (glibc's ``struct link_map``)."""

    __slots__ = ("elf", "loader", "path", "reportable")

    def __init__(self, path: str, elf: ElfFile, loader: Node | None, reportable: bool) -> None:
        self.path = path
        self.elf = elf
        self.loader = loader
        self.reportable = reportable

    @property
    def origin(self) -> str:
        return os.path.dirname(self.path)

    def __repr__(self) -> str:
        return "Node(%r)" % self.path


class Process:
    """Loaded objects, found the way ``_dl_name_match_p`` and the file-id check find them."""

    def __init__(self) -> None:
        self.objects: list[Node] = []
        self.by_name: dict[str, Node] = {}
        self.by_id: dict[tuple[int, int], Node] = {}

    def copy(self) -> Process:
        p = Process()
        p.objects = list(self.objects)
        p.by_name = dict(self.by_name)
        p.by_id = dict(self.by_id)
        return p

    def add(self, node: Node, *names: str) -> None:
        if node.elf.file_id not in self.by_id:
            self.objects.append(node)
            self.by_id[node.elf.file_id] = node
        for n in (node.path, node.elf.soname, *names):
            if n and n not in self.by_name:
                self.by_name[n] = node

    def find(self, name: str) -> Node | None:
        return self.by_name.get(name)


class Edge:
    """One DT_NEEDED entry of one object and how it resolved."""

    __slots__ = ("error", "how", "name", "new", "provider", "requester", "searched")

    def __init__(
        self,
        requester: Node,
        name: str,
        provider: Node | None,
        *,
        how: str,
        searched: list[str],
        error: str | None = None,
    ) -> None:
        self.requester = requester
        self.name = name
        self.provider = provider
        self.how = how
        self.searched = searched
        self.error = error
        #: True when this entry mapped a new object (False: already loaded, or not found).
        self.new = False


class Load:
    """The result of one modelled ``dlopen``."""

    __slots__ = ("edges", "process", "searchlist")

    def __init__(self, searchlist: list[Node], edges: list[Edge], process: Process) -> None:
        #: The new object and its dependencies, breadth-first (its local lookup scope).
        self.searchlist = searchlist
        #: Every DT_NEEDED entry met on the way, resolved or not.
        self.edges = edges
        #: All objects loaded afterwards (what ``find_needed`` searches for version checks).
        self.process = process


_DST_RE = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")


class Resolver:
    """glibc's ``_dl_map_object`` search order, applied to files on disk.

    Order for a name without ``/`` requested by object R (``elf/dl-load.c``):

    1. an already-loaded object with that name/soname (``Process``);
    2. unless R has DT_RUNPATH: DT_RPATH of R, then of R's loader and on up the chain, then of the
       executable;
    3. ``LD_LIBRARY_PATH``;
    4. R's own DT_RUNPATH (not inherited);
    5. ``/etc/ld.so.cache``, then the system dirs (under ``-z nodeflib`` neither serves a system
       dir).

    Each directory is tried with the supported ``glibc-hwcaps`` subdirectories first; candidates of
    another class or machine are skipped, like ``open_verify`` does.
    """

    def __init__(
        self,
        executable: str | None = None,
        ld_library_path: str | None = None,
        preload: list[str] | None = None,
        config: LoaderConfig | None = None,
    ) -> None:
        self._elves: dict[tuple[int, int], ElfFile | ElfError | None] = {}
        self._listings: dict[str, frozenset[str] | None] = {}
        exe_path = os.path.realpath(executable or sys.executable)
        exe = self.open(exe_path)
        if exe is None:
            raise ElfError("%s: not an ELF executable" % exe_path)
        #: The interpreter: its class and machine decide which candidates ld.so accepts.
        self.executable: ElfFile = exe
        self.config = config or LoaderConfig.detect(self.executable)
        if ld_library_path is None:
            ld_library_path = os.environ.get("LD_LIBRARY_PATH", "")
        self.ld_library_path = ld_library_path
        if preload is None:
            preload = [p for p in re.split(r"[ :]", os.environ.get("LD_PRELOAD", "")) if p]
        self.preload = preload
        self._base: Process | None = None
        self._base_searchlist: list[Node] = []
        self._base_edges: list[Edge] = []
        self._exe_node: Node | None = None
        self._dlopen_caller: Node | None = None

    # -- files

    def open(self, path: str) -> ElfFile | None:
        """Cached ElfFile for ``path``; None when absent or not ELF. Raises ElfError when corrupt.

        Cached by file identity, so ``a/../b/lib.so`` and ``b/lib.so`` share one parsed object.
        """
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (st.st_dev, st.st_ino)
        if key in self._elves:
            elf = self._elves[key]
            if isinstance(elf, ElfError):
                raise elf
        else:
            try:
                elf = open_elf(path)
            except ElfError as exc:
                self._elves[key] = exc
                raise
            self._elves[key] = elf
        return elf

    def _listing(self, directory: str) -> frozenset[str] | None:
        """The names in ``directory`` (None when it cannot be read), listed once per run."""
        if directory in self._listings:
            return self._listings[directory]
        try:
            lst: frozenset[str] | None = frozenset(os.listdir(directory or "."))
        except OSError:
            lst = None
        self._listings[directory] = lst
        return lst

    # -- path lists

    def expand(self, entry: str, origin: str | None) -> str | None:
        """Expand $ORIGIN/$LIB/$PLATFORM (``${...}`` too); None when $ORIGIN is unknown."""
        if "$" not in entry:
            return entry
        bad = []

        def sub(m: re.Match[str]) -> str:
            key = m.group(1) or m.group(2)
            if key == "ORIGIN":
                if origin is None:
                    bad.append(1)
                    return ""
                return origin
            if key == "LIB":
                return self.config.lib
            return self.config.platform

        out = _DST_RE.sub(sub, entry)
        return None if bad else out

    def path_list(self, value: str | None, origin: str | None, seps: str = ":") -> list[str]:
        """Split and expand a DT_RPATH/DT_RUNPATH/LD_LIBRARY_PATH value like ``fillin_rpath``."""
        if not value:
            return []
        out = []
        for part in re.split("[%s]" % re.escape(seps), value):
            if part == "":
                out.append("")  # empty entry: the current directory
                continue
            exp = self.expand(part, origin)
            if not exp:
                continue
            if len(exp) > 1:
                exp = exp.rstrip("/") or "/"
            out.append(exp)
        return out

    # -- search

    def _try_dir(
        self, directory: str, name: str, want: ElfFile, searched: list[str], label: str
    ) -> tuple[str | None, ElfFile | None, str | None]:
        """(path, elf, error) for the first acceptable candidate in ``directory`` (hwcaps first)."""
        searched.append(("%s (%s)" % (directory or ".", label)))
        listing = self._listing(directory)
        if listing is None:
            return None, None, None
        dirs = []
        if "glibc-hwcaps" in listing:
            for sub in self.config.hwcaps:
                dirs.append(os.path.join(directory, "glibc-hwcaps", sub))
        dirs.append(directory)
        for d in dirs:
            if d is not directory:
                sub_listing = self._listing(d)
                if sub_listing is None or name not in sub_listing:
                    continue
            elif name not in listing:
                continue
            cand = os.path.join(d, name) if d else name
            r = self._verify(cand, want)
            if r is not None:
                return r
        return None, None, None

    def _verify(
        self, cand: str, want: ElfFile
    ) -> tuple[str | None, ElfFile | None, str | None] | None:
        """``open_verify``: None to keep searching, or (path, elf, error) to stop."""
        try:
            elf = self.open(cand)
        except ElfError as exc:
            if os.path.isdir(cand):
                return None
            return cand, None, str(exc)
        if elf is None:
            if not os.path.isfile(cand):
                return None
            return cand, None, "%s: invalid ELF header" % cand
        if not elf.compatible_with(want):
            return None  # wrong class/machine: ld.so skips it and keeps searching
        if elf.osabi not in (ELFOSABI_SYSV, ELFOSABI_GNU):
            return cand, None, "%s: ELF file OS ABI invalid" % cand
        if elf.type != ET_DYN:
            return cand, None, "%s: cannot dynamically load executable" % cand
        return os.path.abspath(cand), elf, None

    def search(
        self, name: str, requester: Node
    ) -> tuple[str | None, ElfFile | None, str, list[str], str | None]:
        """Find DT_NEEDED ``name`` of ``requester``: (path, elf, how, searched, error)."""
        want = self.executable
        searched: list[str] = []
        if "/" in name:
            path = self.expand(name, requester.origin)
            if path is None:
                return None, None, "path", searched, None
            searched.append(path)
            r = self._verify(path, want) if os.path.exists(path) else None
            if r is None:
                return None, None, "path", searched, None
            return r[0], r[1], "path", searched, r[2]
        exe = self._exe_node
        if requester.elf.runpath is None:
            did_main = False
            node: Node | None = requester
            while node is not None:
                rp = node.elf.effective_rpath
                if rp is not None:
                    for d in self.path_list(rp, node.origin):
                        r = self._try_dir(d, name, want, searched, "RPATH of %s" % node.elf.name)
                        if r[0] is not None:
                            return r[0], r[1], "RPATH of %s" % node.path, searched, r[2]
                    did_main = did_main or node is exe
                node = node.loader
            if not did_main and exe is not None and exe.elf.effective_rpath is not None:
                for d in self.path_list(exe.elf.effective_rpath, exe.origin):
                    r = self._try_dir(d, name, want, searched, "RPATH of the executable")
                    if r[0] is not None:
                        return r[0], r[1], "RPATH of the executable", searched, r[2]
        exe_origin = exe.origin if exe is not None else None
        for d in self.path_list(self.ld_library_path, exe_origin, ":;"):
            r = self._try_dir(d, name, want, searched, "LD_LIBRARY_PATH")
            if r[0] is not None:
                return r[0], r[1], "LD_LIBRARY_PATH", searched, r[2]
        if requester.elf.runpath is not None:
            for d in self.path_list(requester.elf.runpath, requester.origin):
                r = self._try_dir(d, name, want, searched, "RUNPATH of %s" % requester.elf.name)
                if r[0] is not None:
                    return r[0], r[1], "RUNPATH of %s" % requester.path, searched, r[2]
        nodeflib = requester.elf.nodeflib
        system = self.config.system_dirs
        cache = self.config.cache
        if cache is not None:
            cached = cache.lookup(name, self.config.cache_id, self.config.hwcaps)
            if cached is not None:
                searched.append("%s (ld.so.cache)" % cached)
                cdir = os.path.dirname(cached)
                in_system = any(cdir == s or cdir.startswith(s + "/") for s in system)
                if not (nodeflib and in_system) and os.path.exists(cached):
                    r = self._verify(cached, want)
                    if r is not None:
                        return r[0], r[1], "ld.so.cache", searched, r[2]
        if not nodeflib:
            for d in system:
                r = self._try_dir(d, name, want, searched, "system")
                if r[0] is not None:
                    return r[0], r[1], "system dirs", searched, r[2]
        return None, None, "", searched, None

    # -- the process

    def base_process(self) -> Process:
        """The interpreter process before any import: the executable, LD_PRELOAD, their deps."""
        if self._base is None:
            proc = Process()
            exe_path = self.executable.path
            exe = Node(exe_path, self.executable, None, reportable=False)
            self._exe_node = exe
            proc.add(exe)
            interp = self.executable.interp
            if interp:
                try:
                    rtld = self.open(os.path.realpath(interp))
                except ElfError:
                    rtld = None
                if rtld is not None:
                    proc.add(Node(os.path.realpath(interp), rtld, None, reportable=False), interp)
            roots = [exe]
            for p in self.preload:
                try:
                    elf = self.open(p)
                except ElfError:
                    elf = None
                if elf is not None:
                    n = Node(os.path.abspath(p), elf, exe, reportable=False)
                    proc.add(n, p)
                    roots.append(n)
            self._base_searchlist, self._base_edges = self._map_deps(roots, proc)
            self._base = proc
            # dlopen() for an import is called from libpython when shared, else the executable.
            self._dlopen_caller = exe
            for n in self._base_searchlist:
                if n.elf.soname and n.elf.soname.startswith("libpython"):
                    self._dlopen_caller = n
                    break
        return self._base

    def trace(self) -> list[tuple[str, str | None]]:
        """[(name, path or None)] for the executable's dependency tree, like ``ld.so --list``."""
        self.base_process()
        seen: set[str] = set()
        out = []
        for e in self._base_edges:
            if e.name in seen or (e.provider is not None and not e.new):
                continue
            seen.add(e.name)
            out.append((e.name, e.provider.path if e.provider is not None else None))
        return out

    @property
    def global_scope(self) -> list[Node]:
        """The main map's search list: where every relocation looks first."""
        self.base_process()
        return self._base_searchlist

    def dlopen(
        self, path: str, process: Process | None = None, preloaded: dict[str, str] | None = None
    ) -> Load:
        """Model ``dlopen(path, RTLD_NOW|RTLD_LOCAL)`` from the interpreter.

        ``preloaded`` maps sonames to files a framework has already loaded in the real process
        (torch's ``_preload_cuda_deps``); they win by name.
        """
        base = self.base_process()
        proc = (process or base).copy()
        if preloaded:
            for soname, ppath in preloaded.items():
                if proc.find(soname) is None:
                    try:
                        pelf = self.open(ppath)
                    except ElfError:
                        pelf = None
                    if pelf is not None:
                        proc.add(Node(ppath, pelf, self._exe_node, reportable=False), soname)
        abspath = os.path.abspath(path)
        found = proc.find(abspath)
        if found is None:
            elf = self.open(abspath)
            if elf is None:
                raise ElfError("%s: invalid ELF header" % path)
            found = proc.by_id.get(elf.file_id)
            if found is None:
                found = Node(abspath, elf, self._dlopen_caller, reportable=True)
                proc.add(found)
        searchlist, edges = self._map_deps([found], proc)
        return Load(searchlist, edges, proc)

    def _map_deps(self, roots: list[Node], proc: Process) -> tuple[list[Node], list[Edge]]:
        """Breadth-first ``_dl_map_object_deps``: (searchlist, edges)."""
        searchlist = list(roots)
        seen = {id(n) for n in roots}
        edges: list[Edge] = []
        queue = list(roots)
        qi = 0
        while qi < len(queue):
            node = queue[qi]
            qi += 1
            for name in node.elf.needed:
                prov = proc.find(name)
                how = "already loaded"
                searched: list[str] = []
                error = None
                new = False
                if prov is None:
                    path, elf, how, searched, error = self.search(name, node)
                    if elf is not None:
                        prov = proc.by_id.get(elf.file_id)
                        if prov is None:
                            prov = Node(path, elf, node, reportable=node.reportable)  # type: ignore[arg-type]
                            new = True
                        proc.add(prov, name)
                edge = Edge(node, name, prov, how=how, searched=searched, error=error)
                edge.new = new
                edges.append(edge)
                if prov is not None and id(prov) not in seen:
                    seen.add(id(prov))
                    searchlist.append(prov)
                    queue.append(prov)
        return searchlist, edges


# --- the environment


class EnvFile:
    """A shared object found in the environment."""

    __slots__ = ("path", "rel", "site")

    def __init__(self, path: str, rel: str, site: str | None) -> None:
        self.path = path
        self.rel = rel
        self.site = site

    def __repr__(self) -> str:
        return "EnvFile(%r)" % self.rel


_IS_DIR = methodcaller("is_dir", follow_symlinks=False)
_NAME = attrgetter("name")


def _is_dir_or_false(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_shared_object_name(name: str) -> bool:
    return name.endswith(".so") or ".so." in name


#: Walks kept for the rest of the process, once :func:`share_scans` is called (probe_set.py).
_SCANNED: dict[tuple[str, tuple[str, ...]], list[EnvFile]] | None = None


def share_scans() -> None:
    """Walk each environment once for the rest of this process: for probes that run together
    on an environment that does not change meanwhile (probe_set.py), not for a library user."""
    global _SCANNED  # noqa: PLW0603 - one switch for the process
    if _SCANNED is None:
        _SCANNED = {}


class Environment:
    """An installed Python environment: its prefix, site dirs, interpreter and installed dists."""

    def __init__(self, prefix: str, sites: list[str], executable: str) -> None:
        self.prefix = os.path.abspath(prefix)
        self.sites = sites
        self.executable = executable
        self._owners: dict[str, tuple[str, str]] | None = None
        self._dists: dict[str, tuple[str, str, str, str]] | None = None

    @classmethod
    def discover(
        cls,
        prefix: str | None = None,
        sites: list[str] | None = None,
        executable: str | None = None,
    ) -> Environment:
        """The running interpreter's environment, or the one at ``prefix``."""
        import sysconfig

        if prefix is None:
            prefix = sys.prefix
            cands: list[str | None] = []
            paths = sysconfig.get_paths()
            cands += [paths.get("purelib"), paths.get("platlib")]
            try:
                import site

                cands += list(site.getsitepackages())
            except AttributeError:  # virtualenv < 20's site.py
                pass
        else:
            import glob

            cands = sorted(glob.glob(os.path.join(prefix, "lib*", "python*", "site-packages")))  # type: ignore[assignment]
            cands += sorted(glob.glob(os.path.join(prefix, "lib", "site-packages")))
        if sites:
            cands = list(sites)
        seen: set[str] = set()
        out = []
        for c in cands:
            if c and os.path.isdir(c):
                real = os.path.realpath(c)
                if real not in seen:
                    seen.add(real)
                    out.append(os.path.abspath(c))
        if executable is None:
            executable = sys.executable
            if prefix != sys.prefix:
                for cand in ("python3", "python"):
                    p = os.path.join(prefix, "bin", cand)
                    if os.path.exists(p):
                        executable = p
                        break
        return cls(prefix, out, executable)

    def scan(self) -> list[EnvFile]:
        """Every ``*.so``/``*.so.*`` regular file: the site dirs (recursively), ``lib/`` and
        ``lib-dynload``. Walked once per process: the probes that run together (abi, gpu-arch,
        native) share the walk after :func:`share_scans`."""
        if _SCANNED is None:
            return self._scan()
        key = (self.prefix, tuple(self.sites))
        if key not in _SCANNED:
            _SCANNED[key] = self._scan()
        return list(_SCANNED[key])

    def _scan(self) -> list[EnvFile]:
        files: list[EnvFile] = []
        seen: set[tuple[int, int]] = set()

        def add(entry: os.DirEntry[str], site: str | None, base: str) -> None:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                return
            key = (st.st_dev, st.st_ino)
            if key in seen:
                return
            seen.add(key)
            files.append(EnvFile(entry.path, os.path.relpath(entry.path, base), site))

        for site in self.sites:
            stack = [site]
            while stack:
                d = stack.pop()
                try:
                    with os.scandir(d) as it:
                        entries = list(it)
                except OSError:
                    continue
                # 17k entries in a torch environment (its headers), 60 of them shared objects: the
                # d_type and name tests run as C-level maps, Python code sees only the few hits.
                try:
                    subdirs = list(compress(entries, map(_IS_DIR, entries)))
                except OSError:  # no d_type and a failed lstat: test one entry at a time
                    subdirs = [e for e in entries if _is_dir_or_false(e)]
                for entry in subdirs:
                    name = entry.name
                    if name != "__pycache__" and not name.endswith(".dist-info"):
                        stack.append(entry.path)
                for entry in compress(entries, map(_contains, map(_NAME, entries), repeat(".so"))):
                    name = entry.name
                    try:
                        if (name.endswith(".so") or ".so." in name) and entry.is_file(
                            follow_symlinks=False
                        ):
                            add(entry, site, site)
                    except OSError:
                        continue
        site_reals = [os.path.realpath(s) for s in self.sites]
        extra = [os.path.join(self.prefix, "lib")]
        ver = "python%d.%d" % sys.version_info[:2]
        extra.append(os.path.join(self.prefix, "lib", ver, "lib-dynload"))
        for d in extra:
            if any(os.path.realpath(d).startswith(s + os.sep) for s in site_reals):
                continue
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for entry in entries:
                try:
                    if _is_shared_object_name(entry.name) and entry.is_file(follow_symlinks=False):
                        add(entry, None, self.prefix)
                except OSError:
                    continue
        files.sort(key=lambda f: f.rel)
        return files

    # -- distributions

    def distributions(self) -> dict[str, tuple[str, str, str, str]]:
        """{normalized name: (name, version, dist-info path)} from ``*.dist-info`` dirs."""
        if self._dists is None:
            dists: dict[str, tuple[str, str, str, str]] = {}
            for site in self.sites:
                try:
                    names = os.listdir(site)
                except OSError:
                    continue
                for n in names:
                    if not n.endswith(".dist-info"):
                        continue
                    path = os.path.join(site, n)
                    name, version = self._read_metadata(path)
                    if not name:
                        stem = n[: -len(".dist-info")]
                        name, _, version = stem.partition("-")
                    dists.setdefault(_probelib.canonicalize_name(name), (name, version, path, site))
            self._dists = dists
        return self._dists

    @staticmethod
    def _read_metadata(dist_info: str) -> tuple[str, str]:
        name = version = ""
        try:
            with open(
                os.path.join(dist_info, "METADATA"), encoding="utf-8", errors="replace"
            ) as fh:
                for line in fh:
                    if not line.strip():
                        break
                    if line.startswith("Name:"):
                        name = line[5:].strip()
                    elif line.startswith("Version:"):
                        version = line[8:].strip()
                    if name and version:
                        break
        except OSError:
            pass
        return name, version

    def version_of(self, dist: str) -> str | None:
        d = self.distributions().get(_probelib.canonicalize_name(dist))
        return d[1] if d else None

    def owner(self, path: str) -> tuple[str, str] | None:
        """(distribution name, version) whose RECORD lists ``path``, or None."""
        if self._owners is None:
            owners: dict[str, tuple[str, str]] = {}
            for name, version, info, site in self.distributions().values():
                try:
                    with open(
                        os.path.join(info, "RECORD"), encoding="utf-8", errors="replace"
                    ) as fh:
                        for line in fh:
                            if ".so" not in line:
                                continue
                            if line.startswith('"'):
                                import csv

                                row = next(csv.reader([line]))
                                rel = row[0] if row else ""
                            else:
                                rel = line.split(",", 1)[0]
                            full = os.path.normpath(os.path.join(site, rel))
                            owners.setdefault(full, (name, version))
                except OSError:
                    continue
            self._owners = owners
        return self._owners.get(os.path.normpath(os.path.abspath(path)))


#: The interpreter tag in an extension module's filename: ``.cpython-311-x86_64-linux-gnu.so``.
TAG_RE = re.compile(
    r"^\.(?P<tag>(?:cpython|pypy|graalpy)[0-9a-z_]*-?[0-9a-z_]*|abi3|cp\d+[a-z]*)(?:-[^.]+)?\.so$"
)


def pyinit_name(module: str) -> str:
    """``PyInit_<name>``, or ``PyInitU_<punycode>`` for non-ASCII names (Python/importdl.c)."""
    try:
        module.encode("ascii")
    except UnicodeEncodeError:
        return "PyInitU_" + module.encode("punycode").decode("ascii").replace("-", "_")
    return "PyInit_" + module


def extension_module(f: EnvFile, elf: ElfFile | None) -> tuple[str, str] | None:
    """(module name, filename suffix) when ``f`` is a Python extension module, else None.

    Tagged files (``.cpython-311-...so``, ``.abi3.so``) always are; a bare ``name.so`` in a site
    dir is one only if it exports ``PyInit_name`` (else it is a plain library such as torch's).
    """
    base = os.path.basename(f.path)
    stem, dot, rest = base.partition(".")
    suffix = dot + rest
    if f.site is None and "lib-dynload" not in f.rel:
        return None
    if TAG_RE.match(suffix):
        return stem, suffix
    if (
        suffix == ".so"
        and stem.isidentifier()
        and elf is not None
        and elf.lookup(pyinit_name(stem).encode("utf-8"))
    ):
        return stem, suffix
    return None


def unreadable_document(probe: str, exc: BaseException, started: float) -> dict[str, object]:
    """The error document of a probe that could not read the interpreter or the loader."""
    return _probelib.error_document(
        probe,
        "%s: %s" % (type(exc).__name__, exc),
        "the environment's interpreter or dynamic loader could not be read",
        started,
    )
