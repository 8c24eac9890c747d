"""wheel_probe: static checks of the wheels another platform would install, read on this one.

A cell for macOS arm64, Linux aarch64 or Windows cannot be installed and imported here, but the
wheels that platform would get can be read: nothing in them is run or loaded. Per wheel:

- ELF (Linux): the machine is the platform's; every GLIBC_x.y version the file needs is within
  the wheel's manylinux tag (``platform-tag``) and the runner's glibc (``symbol-version``); every
  DT_NEEDED is shipped by one of the wheels or is in the manylinux policy's system set
  (``missing-library``);
- Mach-O (macOS): a slice for the platform's CPU; the minimum macOS version (LC_BUILD_VERSION /
  LC_VERSION_MIN_MACOSX) within the wheel's macosx tag and the runner's macOS (``platform-tag``);
  every LC_LOAD_DYLIB resolves: ``@rpath`` through
  the file's LC_RPATHs, ``@loader_path``/``@executable_path`` inside the wheels, or a system
  path (``/usr/lib``, ``/System``) (``missing-library``);
- CUDA device code (ELF ``.nv_fatbin``, PE ``.nv_fatb``; with ``--gpu``): the gpu-arch probe's
  rule (``cuda-arch``);
- PE (Windows): the machine is the platform's; every imported DLL is shipped by one of the
  wheels or is a system DLL (``missing-library``).

Usage: ``python wheel_probe.py --system linux|macos|windows --machine x86_64|arm64
[--glibc 2.39] [--macos 15.0] [--gpu NAME=sm_XY ...] WHEEL...``; prints one JSON document, exits
0, 1 or 3.
Stdlib only; runs on CPython 3.8-3.14 on any OS.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import struct
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _elf
import _probelib as lib
import gpu_arch_probe as gpu_arch

PROBE = "wheel"

_ELF_MACHINES = {"x86_64": 62, "arm64": 183}
_MACHO_CPUS = {"x86_64": 0x01000007, "arm64": 0x0100000C}
_PE_MACHINES = {"x86_64": 0x8664, "arm64": 0xAA64}
#: Libraries a manylinux wheel may link against without shipping them (PEP 600 policy).
MANYLINUX_SYSTEM = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libdl.so.2",
        "librt.so.1",
        "libpthread.so.0",
        "libgcc_s.so.1",
        "libstdc++.so.6",
        "libutil.so.1",
        "libnsl.so.1",
        "libcrypt.so.1",
        "libX11.so.6",
        "libXext.so.6",
        "libXrender.so.1",
        "libICE.so.6",
        "libSM.so.6",
        "libGL.so.1",
        "libgobject-2.0.so.0",
        "libgthread-2.0.so.0",
        "libglib-2.0.so.0",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
        "libz.so.1",
        "libexpat.so.1",
    }
)
#: NVIDIA driver libraries: never in a wheel, provided by the GPU runner's driver.
_DRIVER = re.compile(r"^lib(cuda|nvidia-ml|nvcuvid|nvidia-encode)\.so")
#: DLLs every Windows (10+) has, or CPython's installer puts beside python.exe.
_WINDOWS_SYSTEM = re.compile(
    r"^(api-ms-win-.*|ext-ms-.*|kernel32|kernelbase|user32|gdi32|advapi32|shell32|ole32|oleaut32|"
    r"ws2_32|bcrypt|crypt32|ntdll|comdlg32|comctl32|shlwapi|version|winmm|dbghelp|psapi|setupapi|"
    r"secur32|iphlpapi|rpcrt4|userenv|normaliz|imm32|dwmapi|uxtheme|d3d11|d3d12|dxgi|opengl32|"
    r"glu32|winhttp|wininet|mswsock|ncrypt|cfgmgr32|powrprof|ucrtbase|msvcrt|vcruntime140(_1)?|"
    r"msvcp140(_1|_2|_atomic_wait|_codecvt_ids)?|vcomp140|concrt140|python3\d*|nvcuda|nvml)\.dll$",
    re.IGNORECASE,
)
_SYSTEM_DYLIB = ("/usr/lib/", "/System/Library/")
_MANYLINUX_TAG = re.compile(r"manylinux_(\d+)_(\d+)_|manylinux(1|2010|2014)_")
_LEGACY_GLIBC = {"1": (2, 5), "2010": (2, 12), "2014": (2, 17)}
_MACOS_TAG = re.compile(r"macosx_(\d+)_(\d+)_")


def _version(text: str | None) -> tuple[Any, ...] | None:
    if not text:
        return None
    m = re.match(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _vtext(v: tuple[Any, ...]) -> str:
    return "%d.%d" % v


def wheel_tag_glibc(filename: str) -> tuple[Any, ...] | None:
    """The lowest glibc the wheel's manylinux tags promise to run on (what it was built for)."""
    found = []
    for m in _MANYLINUX_TAG.finditer(filename):
        if m.group(1):
            found.append((int(m.group(1)), int(m.group(2))))
        else:
            found.append(_LEGACY_GLIBC[m.group(3)])
    return min(found) if found else None


def wheel_tag_macos(filename: str) -> tuple[Any, ...] | None:
    found = [(int(a), int(b)) for a, b in _MACOS_TAG.findall(filename)]
    return min(found) if found else None


# -- Mach-O -------------------------------------------------------------------------------------

_LC_REQ_DYLD = 0x80000000
_LC_LOAD_DYLIB, _LC_LOAD_WEAK_DYLIB = 0xC, 0x18 | _LC_REQ_DYLD
_LC_REEXPORT_DYLIB, _LC_LOAD_UPWARD_DYLIB = 0x1F | _LC_REQ_DYLD, 0x23 | _LC_REQ_DYLD
_LC_RPATH, _LC_BUILD_VERSION, _LC_VERSION_MIN_MACOSX = 0x1C | _LC_REQ_DYLD, 0x32, 0x24


def macho_slices(data: bytes) -> dict[int, Any] | None:
    """{cputype: (offset, size)} of a Mach-O (thin or universal) file; None when not Mach-O."""
    if len(data) < 8:
        return None
    magic = struct.unpack_from(">I", data)[0]
    if magic in (0xCAFEBABE, 0xCAFEBABF):  # universal: big-endian fat header
        count = struct.unpack_from(">I", data, 4)[0]
        if count > 32:  # a Java class file shares the magic
            return None
        wide = magic == 0xCAFEBABF
        out = {}
        for i in range(count):
            if wide:
                cpu, _sub, off, size = struct.unpack_from(">iiQQ", data, 8 + i * 32)
            else:
                cpu, _sub, off, size = struct.unpack_from(">iiII", data, 8 + i * 20)
            out[cpu & 0xFFFFFFFF] = (off, size)
        return out
    little = struct.unpack_from("<I", data)[0]
    if little in (0xFEEDFACE, 0xFEEDFACF):
        return {struct.unpack_from("<I", data, 4)[0]: (0, len(data))}
    return None


def macho_commands(data: bytes, off: int) -> dict[str, Any]:
    """{"dylibs": [(kind, name)], "rpaths": [...], "minos": (X, Y) | None} of one slice."""
    magic = struct.unpack_from("<I", data, off)[0]
    ncmds = struct.unpack_from("<I", data, off + 16)[0]
    pos = off + (32 if magic == 0xFEEDFACF else 28)
    out: dict[str, Any] = {"dylibs": [], "rpaths": [], "minos": None}

    def cstr(at: int, end: int) -> str:
        stop = data.find(b"\x00", at, end)
        return data[at : stop if stop >= 0 else end].decode("utf-8", "replace")

    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if size < 8:
            break
        if cmd in (_LC_LOAD_DYLIB, _LC_LOAD_WEAK_DYLIB, _LC_REEXPORT_DYLIB, _LC_LOAD_UPWARD_DYLIB):
            name_off = struct.unpack_from("<I", data, pos + 8)[0]
            kind = "weak" if cmd == _LC_LOAD_WEAK_DYLIB else "load"
            out["dylibs"].append((kind, cstr(pos + name_off, pos + size)))
        elif cmd == _LC_RPATH:
            out["rpaths"].append(cstr(pos + struct.unpack_from("<I", data, pos + 8)[0], pos + size))
        elif cmd == _LC_BUILD_VERSION:
            platform, minos = struct.unpack_from("<II", data, pos + 8)
            if platform == 1:  # PLATFORM_MACOS
                out["minos"] = (minos >> 16, (minos >> 8) & 0xFF)
        elif cmd == _LC_VERSION_MIN_MACOSX:
            minos = struct.unpack_from("<I", data, pos + 8)[0]
            out["minos"] = (minos >> 16, (minos >> 8) & 0xFF)
        pos += size
    return out


# -- PE -----------------------------------------------------------------------------------------


def pe_imports(data: bytes) -> tuple[Any, ...] | None:
    """(machine, [imported DLL names]) of a PE file; None when not PE."""
    if len(data) < 64 or data[:2] != b"MZ":
        return None
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe : pe + 4] != b"PE\x00\x00":
        return None
    machine, nsections, _t, _p, _n, opt_size, _c = struct.unpack_from("<HHIIIHH", data, pe + 4)
    opt = pe + 24
    magic = struct.unpack_from("<H", data, opt)[0]
    dirs = opt + (112 if magic == 0x20B else 96)
    nrva = struct.unpack_from("<I", data, dirs - 4)[0]
    sections = []
    table = opt + opt_size
    for i in range(nsections):
        _name, vsize, vaddr, rawsize, rawptr = struct.unpack_from("<8sIIII", data, table + i * 40)
        sections.append((vaddr, max(vsize, rawsize), rawptr))

    def offset(rva: int) -> int | None:
        for vaddr, size, raw in sections:
            if vaddr <= rva < vaddr + size:
                return int(rva - vaddr + raw)
        return None

    names: list[Any] = []
    if nrva < 2:
        return machine, names
    rva = struct.unpack_from("<I", data, dirs + 8)[0]
    pos = offset(rva) if rva else None
    while pos is not None and pos + 20 <= len(data):
        name_rva = struct.unpack_from("<I", data, pos + 12)[0]
        if name_rva == 0:
            break
        at = offset(name_rva)
        if at is not None:
            end = data.find(b"\x00", at)
            names.append(data[at:end].decode("ascii", "replace"))
        pos += 20
    return machine, names


# -- the checks ---------------------------------------------------------------------------------


class Wheels:
    """The wheels of one resolution, their files by path and by basename."""

    def __init__(self, paths: list[Any]) -> None:
        self.paths = paths
        self.owner: dict[str, Any] = {}  # member path -> (dist, version, wheel filename)
        self.basenames: dict[str, Any] = {}  # lower-case basename -> [member paths]
        for path in paths:
            filename = os.path.basename(path)
            parts = filename[:-4].split("-")
            dist = lib.canonicalize_name(parts[0])
            version = parts[1] if len(parts) > 1 else ""
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if name.endswith("/"):
                        continue
                    self.owner[name] = (dist, version, filename)
                    self.basenames.setdefault(posixpath.basename(name).lower(), []).append(name)

    def has(self, member: str) -> bool:
        return posixpath.normpath(member) in self.owner


def _binary_kind(name: str, system: str) -> bool:
    base = posixpath.basename(name).lower()
    if system == "linux":
        return base.endswith(".so") or ".so." in base
    if system == "macos":
        return base.endswith((".so", ".dylib"))
    return base.endswith((".pyd", ".dll"))


class Checker:
    def __init__(
        self,
        wheels: Wheels,
        system: str,
        machine: str,
        *,
        glibc: Any,
        macos: Any,
        gpus: Sequence[Any],
    ) -> None:
        self.wheels = wheels
        self.gpus = list(gpus)
        self.system = system
        self.machine = machine
        self.glibc = glibc
        self.macos = macos
        self.findings: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.checked = 0

    def add(self, member: str, category: str, problem: str) -> None:
        dist = self.wheels.owner[member][0]
        self.findings.setdefault((dist, category), []).append((member, problem))

    def run(self, scratch: str) -> None:
        for path in self.wheels.paths:
            filename = os.path.basename(path)
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    if not _binary_kind(name, self.system):
                        continue
                    self.checked += 1
                    if self.system == "linux":
                        target = os.path.join(scratch, str(self.checked))
                        with archive.open(name) as src, open(target, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        self.check_elf(name, target, filename)
                        os.unlink(target)
                    elif self.system == "macos":
                        self.check_macho(name, archive.read(name), filename)
                    else:
                        self.check_pe(name, archive.read(name))

    def check_elf(self, name: str, path: str, filename: str) -> None:
        try:
            elf = _elf.open_elf(path)
        except _elf.CORRUPT as exc:
            self.add(name, "platform-tag", "not a readable ELF file (%s)" % exc)
            return
        if elf is None:
            return
        try:
            want = _ELF_MACHINES.get(self.machine)
            if want is not None and elf.machine != want:
                self.add(
                    name,
                    "platform-tag",
                    "built for %s, not %s" % (_elf.machine_name(elf.machine), self.machine),
                )
                return
            needed_glibc = max(
                (
                    _version(v[len("GLIBC_") :]) or (0, 0)
                    for versions in elf.needed_versions().values()
                    for v in versions
                    if v.startswith("GLIBC_") and _version(v[len("GLIBC_") :])
                ),
                default=None,
            )
            tag = wheel_tag_glibc(filename)
            if needed_glibc and tag and needed_glibc > tag:
                self.add(
                    name,
                    "platform-tag",
                    "needs GLIBC_%s but the wheel's tag promises glibc %s"
                    % (_vtext(needed_glibc), _vtext(tag)),
                )
            elif needed_glibc and self.glibc and needed_glibc > self.glibc:
                self.add(
                    name,
                    "symbol-version",
                    "needs GLIBC_%s; the runner has glibc %s"
                    % (_vtext(needed_glibc), _vtext(self.glibc)),
                )
            for soname in elf.needed:
                if soname in MANYLINUX_SYSTEM or _DRIVER.match(soname):
                    continue
                if soname.lower() not in self.wheels.basenames:
                    self.add(name, "missing-library", "needs %s, which no wheel ships" % soname)
            if self.gpus:
                self.check_device_code(name, gpu_arch.file_architectures(elf))
        finally:
            elf.release()

    def check_device_code(self, name: str, found: tuple[Any, ...] | None) -> None:
        """The gpu-arch probe's rule on this platform's CUDA wheels (e.g. GH200 on aarch64)."""
        if found is None:
            return
        sass, ptx, _compressed = found
        missing = [
            gpu_arch._gpu_text(label, cc)
            for label, cc in self.gpus
            if gpu_arch.coverage(sass, ptx, cc) == "none"
        ]
        if missing:
            self.add(
                name,
                "cuda-arch",
                "no kernel for %s: it carries %s"
                % (", ".join(missing), gpu_arch._archs_text(sass, ptx)),
            )

    def check_macho(self, name: str, data: bytes, filename: str) -> None:
        slices = macho_slices(data)
        if slices is None:
            return
        cpu = _MACHO_CPUS.get(self.machine)
        if cpu not in slices:
            self.add(name, "platform-tag", "has no %s slice" % self.machine)
            return
        info = macho_commands(data, slices[cpu][0])
        tag = wheel_tag_macos(filename)
        minos = info["minos"]
        if minos and tag and minos > tag:
            self.add(
                name,
                "platform-tag",
                "needs macOS %s but the wheel's tag promises macOS %s"
                % (_vtext(minos), _vtext(tag)),
            )
        elif minos and self.macos and minos > self.macos:
            self.add(
                name,
                "platform-tag",
                "needs macOS %s; the runner has macOS %s" % (_vtext(minos), _vtext(self.macos)),
            )
        here = posixpath.dirname(name)
        for kind, dylib in info["dylibs"]:
            if kind == "weak" or dylib.startswith(_SYSTEM_DYLIB):
                continue
            if not self._dylib_found(dylib, here, info["rpaths"]):
                where = "searched LC_RPATH %s" % (info["rpaths"] or "(none)")
                self.add(
                    name,
                    "missing-library",
                    "loads %s, which resolves to no file in the wheels (%s)" % (dylib, where),
                )

    def _dylib_found(self, dylib: str, here: str, rpaths: list[Any]) -> bool:
        def inside(path: str) -> bool:
            return self.wheels.has(posixpath.normpath(path))

        for prefix in ("@loader_path/", "@executable_path/"):
            if dylib.startswith(prefix):
                return inside(posixpath.join(here, dylib[len(prefix) :]))
        if dylib.startswith("@rpath/"):
            rest = dylib[len("@rpath/") :]
            for rpath in rpaths:
                base = rpath.replace("@loader_path", here).replace("@executable_path", here)
                if rpath.startswith("@") and inside(posixpath.join(base, rest)):
                    return True
                if rpath.startswith(_SYSTEM_DYLIB):
                    return True
            return False
        return False  # an absolute path outside the system (a build machine's /opt/homebrew)

    def check_pe(self, name: str, data: bytes) -> None:
        found = pe_imports(data)
        if found is None:
            return
        machine, dlls = found
        want = _PE_MACHINES.get(self.machine)
        if want is not None and machine != want:
            self.add(
                name, "platform-tag", "built for machine 0x%04x, not %s" % (machine, self.machine)
            )
            return
        for dll in dlls:
            if _WINDOWS_SYSTEM.match(dll) or dll.lower() in self.wheels.basenames:
                continue
            self.add(name, "missing-library", "imports %s, which no wheel ships" % dll)
        if self.gpus:
            self.check_device_code(name, gpu_arch.pe_file_architectures(data))


_HINTS = {
    "platform-tag": "the wheel's binaries do not match its platform tag: report it to the "
    "package, and pin a release whose wheel for this platform works",
    "symbol-version": "a newer runner image (newer glibc) or an older release of the package",
    "cuda-arch": "install a build compiled for that GPU's architecture, or drop the GPU from "
    "`gpus:`",
    "missing-library": "the library is neither shipped nor a system one on this platform: "
    "install the distribution that ships it, or report the broken wheel",
}


def run(
    paths: list[Any],
    system: str,
    machine: str,
    *,
    glibc: str | None = None,
    macos: str | None = None,
    gpus: Sequence[Any] = (),
) -> dict[str, Any]:
    t0 = time.perf_counter()
    wheels = Wheels(paths)
    checker = Checker(
        wheels, system, machine, glibc=_version(glibc), macos=_version(macos), gpus=list(gpus)
    )
    scratch = tempfile.mkdtemp(prefix="compat-wheel-")
    try:
        checker.run(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results = []
    versions = {o[0]: o[1] for o in wheels.owner.values()}
    for (dist, category), items in sorted(checker.findings.items()):
        first = items[0]
        message = "%s %s (static, %s %s): %s: %s" % (
            dist,
            versions.get(dist, ""),
            system,
            machine,
            first[0],
            first[1],
        )
        if len(items) > 1:
            message += " (and %d more)" % (len(items) - 1)
        results.append(
            lib.make_result(
                PROBE,
                dist,
                "fail",
                category=category,
                message=message,
                hint=_HINTS[category],
                details={"files": [{"file": f, "problem": p} for f, p in items[:50]]},
            )
        )
    summary = "%d binaries in %d wheels read for %s %s (static only)" % (
        checker.checked,
        len(paths),
        system,
        machine,
    )
    details = {"wheels": [os.path.basename(p) for p in paths], "static_only": True}
    results.append(
        lib.summary_result(PROBE, results, summary, noun="findings", started=t0, details=details)
    )
    return lib.document(PROBE, results)


def _build(argv: list[Any] | None) -> dict[str, Any]:
    parser = lib.ProbeArgumentParser(prog="wheel_probe.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", required=True, choices=("linux", "macos", "windows"))
    parser.add_argument("--machine", required=True, choices=("x86_64", "arm64"))
    parser.add_argument("--glibc", help="the runner's glibc (Linux)")
    parser.add_argument("--macos", help="the runner's macOS version")
    parser.add_argument("--gpu", action="append", default=[], help="[NAME=]sm_XY (repeatable)")
    parser.add_argument("wheels", nargs="*")
    args = parser.parse_args(argv)
    gpus = [gpu_arch.parse_gpu(spec) for spec in args.gpu]
    return run(
        args.wheels, args.system, args.machine, glibc=args.glibc, macos=args.macos, gpus=gpus
    )


def main(argv: list[Any] | None = None) -> int:
    return lib.run_document_probe(PROBE, _build, argv)


if __name__ == "__main__":
    sys.exit(main())
