"""abi_probe: static ELF/ABI checks of every shared object in a Python environment.

Nothing is imported or loaded: the files are read with ``_elf`` (mmap + struct) and the dynamic
loader's decisions are modelled, so a broken environment is diagnosed without running its code and
in milliseconds.  Checks per file:

- ELF class, byte order and machine match the interpreter (``abi-python``);
- extension modules: the filename tag is one the interpreter imports, and ``PyInit_<name>`` is
  exported (``abi-python``);
- every DT_NEEDED resolves in glibc's order (``missing-library``; skipped as ``no-gpu`` for NVIDIA
  driver libraries and ``optional-library`` for known optional backends such as numba's TBB);
- every version need is defined by the library that actually provides it (``symbol-version``);
- every non-weak undefined symbol is defined in the load scope (``undefined-symbol``);
- NumPy C-API headers the file was built with vs the installed numpy (``abi-numpy``);
- executable-stack objects under glibc >= 2.41, which refuses them (``exec-stack``).

Usage: ``python abi_probe.py [--prefix ENV_PREFIX] [--site DIR ...]``; prints one JSON document
and exits 0 (nothing failed), 1 (a real incompatibility) or 3 (the probe itself failed).
Stdlib only; runs on CPython 3.8-3.14.
"""

from __future__ import annotations

import importlib.machinery
import os
import re
import struct
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _elf
import _probelib as lib

PROBE = "abi"

# CUDA libraries whose soname major is the CUDA major: the pip distribution that ships them.
_PIP_PROVIDERS = (
    (re.compile(r"^libcudart\.so\.(\d+)$"), "nvidia-cuda-runtime-cu{0}"),
    (re.compile(r"^libcublas(?:Lt)?\.so\.(\d+)$"), "nvidia-cublas-cu{0}"),
    (re.compile(r"^libnvrtc\.so\.(\d+)$"), "nvidia-cuda-nvrtc-cu{0}"),
    (re.compile(r"^libnvJitLink\.so\.(\d+)$"), "nvidia-nvjitlink-cu{0}"),
)


def _glibc_version() -> tuple[int, ...]:
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return ()
    m = re.match(r"glibc (\d+)\.(\d+)", value)
    return (int(m.group(1)), int(m.group(2))) if m else ()


def _version_tuple(v: str | None) -> tuple[int, ...]:
    if not v:
        return ()
    m = re.match(r"(\d+)\.(\d+)", v)
    return (int(m.group(1)), int(m.group(2))) if m else ()


class Checker:
    """Runs every check over an environment and collects results (one per finding)."""

    def __init__(self, env: _elf.Environment, resolver: _elf.Resolver) -> None:
        self.env = env
        self.resolver = resolver
        self.exe = resolver.executable
        self.suffixes = list(importlib.machinery.EXTENSION_SUFFIXES)
        self.findings: dict[tuple[str, ...], dict[str, Any]] = {}
        self.order: list[tuple[str, ...]] = []
        self.durations: dict[str, float] = {}
        self.glibc = _glibc_version()
        self.numpy_version = env.version_of("numpy")
        self.by_id: dict[tuple[int, int], _elf.EnvFile] = {}
        self.files_checked = 0
        self.extensions = 0
        self._undef_done: set[tuple[int, int]] = set()
        self._sonames: dict[str, list[str]] | None = None
        self._elves: dict[tuple[int, int], _elf.ElfFile] = {}
        self._versions_done: dict[tuple[object, ...], bool] = {}
        self._global_ids = {id(n) for n in resolver.global_scope}
        #: Every name the global scope defines: most references (Py*, libc) end here, checked
        #: with one set lookup; their versions are covered by the version-need check.
        self._global_names: set[bytes] = set()
        for n in resolver.global_scope:
            self._global_names |= n.elf.export_keys()

    # -- helpers

    def rel(self, path: str, file_id: tuple[int, int] | None = None) -> str:
        """How results name a file: relative to its site dir (or the prefix) when it is in one."""
        f = self.by_id.get(file_id) if file_id is not None else None
        if f is not None:
            return f.rel
        p = os.path.abspath(path)
        for site in self.env.sites:
            if p.startswith(site + os.sep):
                return os.path.relpath(p, site)
        if p.startswith(self.env.prefix + os.sep):
            return os.path.relpath(p, self.env.prefix)
        return p

    def owner_text(self, path: str) -> str:
        own = self.env.owner(path)
        if own:
            return "%s %s" % own
        if path.startswith(self.env.prefix + os.sep):
            return "the environment"
        return "the system"

    def add(
        self,
        key: tuple[str, ...],
        target: str,
        category: str,
        *,
        message: str,
        hint: str,
        details: dict[str, Any],
        status: str = "fail",
        context: str | None = None,
    ) -> None:
        """Record one finding (once per ``key``); ``context`` names the import that reached it."""
        res = self.findings.get(key)
        if res is None:
            res = {
                "probe": PROBE,
                "target": target,
                "status": status,
                "category": category,
                "message": message,
                "hint": hint,
                "duration_s": 0.0,
                "details": details,
            }
            self.findings[key] = res
            self.order.append(key)
        if context and context != target:
            ctx = res["details"].setdefault("via", [])
            if context not in ctx and len(ctx) < 10:
                ctx.append(context)

    # -- per-file checks

    def check_extension(
        self, f: _elf.EnvFile, elf: _elf.ElfFile | None, module: str, suffix: str
    ) -> bool:
        """Filename tag and PyInit export; True when the interpreter would try to load the file."""
        if suffix not in self.suffixes:
            siblings = [
                module + s
                for s in self.suffixes
                if os.path.exists(os.path.join(os.path.dirname(f.path), module + s))
            ]
            if siblings:
                return False  # another build of the same module is importable: this one is inert
            owner = self.owner_text(f.path)
            m = _elf.TAG_RE.match(suffix)
            built_for = m.group("tag") if m else suffix
            this = sys.implementation.cache_tag or "this interpreter"
            self.add(
                ("tag", f.rel),
                f.rel,
                "abi-python",
                message="%s is built for %s; %s imports only %s "
                "(import %s fails with ModuleNotFoundError)"
                % (f.rel, built_for, this, ", ".join(self.suffixes), module),
                hint="reinstall %s for Python %d.%d (pip install --force-reinstall "
                "--no-cache-dir): the installed file is a build for %s"
                % (owner, sys.version_info[0], sys.version_info[1], built_for),
                details={"built_for": built_for, "suffixes": self.suffixes, "owner": owner},
            )
            return False
        if elf is None:
            return True
        want = _elf.pyinit_name(module)
        if not elf.lookup(want.encode("utf-8")):
            owner = self.owner_text(f.path)
            others = [n for n in self._pyinit_exports(elf) if n != want]
            msg = "dynamic module does not define module export function (%s)" % want
            if others:
                msg += "; it exports %s (the file was renamed?)" % ", ".join(others[:3])
            self.add(
                ("pyinit", f.rel),
                f.rel,
                "abi-python",
                message=msg,
                hint="reinstall %s: %s cannot be imported as %s" % (owner, f.rel, module),
                details={"expected": want, "exported": others[:10], "owner": owner},
            )
        return True

    @staticmethod
    def _pyinit_exports(elf: _elf.ElfFile) -> list[str]:
        try:
            names = elf.exported_names()
        except (_elf.ElfError, struct.error, ValueError, OSError):
            return []
        return sorted(n for n in names if n.startswith(("PyInit_", "PyInitU_")))

    def check_machine(self, f: _elf.EnvFile, elf: _elf.ElfFile) -> bool:
        if elf.compatible_with(self.exe):
            return True
        what = "%s %d-bit %s" % (
            _elf.machine_name(elf.machine),
            64 if elf.is64 else 32,
            "little-endian" if elf.data == 1 else "big-endian",
        )
        mine = "%s %d-bit" % (_elf.machine_name(self.exe.machine), 64 if self.exe.is64 else 32)
        owner = self.owner_text(f.path)
        self.add(
            ("machine", f.rel),
            f.rel,
            "abi-python",
            message="%s is a %s object; the interpreter is %s (wrong ELF class/machine)"
            % (f.rel, what, mine),
            hint="install the %s build of %s (the wheel for the wrong platform was installed)"
            % (mine, owner),
            details={"file": what, "interpreter": mine, "owner": owner},
        )
        return False

    def check_exec_stack(self, f: _elf.EnvFile, elf: _elf.ElfFile) -> None:
        if not self.glibc or self.glibc < (2, 41):
            return
        needs = elf.exec_stack if elf.exec_stack is not None else elf.machine in (3, 62)
        if not needs:
            return
        owner = self.owner_text(f.path)
        self.add(
            ("execstack", f.rel),
            f.rel,
            "exec-stack",
            message="%s: cannot enable executable stack as shared object requires: Invalid "
            "argument (glibc %d.%d refuses executable-stack objects in dlopen)"
            % (f.rel, self.glibc[0], self.glibc[1]),
            hint="upgrade %s to a build linked with -z noexecstack, or run with "
            "GLIBC_TUNABLES=glibc.rtld.execstack=2" % owner,
            details={"owner": owner, "pt_gnu_stack": elf.exec_stack},
        )

    def check_numpy(self, f: _elf.EnvFile, elf: _elf.ElfFile) -> None:
        if self.numpy_version is None:
            return
        if f.rel.startswith(("numpy/", "numpy.libs/")):
            return
        if b"PyCapsule_GetPointer" not in elf.undefined_names():
            return  # every _import_array() calls it: no call, no NumPy C-API use
        build = elf.numpy_build()
        if build is None:
            return
        own = self.env.owner(f.path)  # read RECORD files only for a file that uses the C-API
        if own and own[0].lower() == "numpy":
            return
        installed = _version_tuple(self.numpy_version)
        owner = "%s %s" % own if own else "the package owning it"
        dist = own[0] if own else "the package"
        if build.headers == 1 and installed and installed[0] >= 2:
            fix = _fix(["numpy<2"], "pin numpy<2: %s was built against NumPy 1.x" % owner)
            first = lib.FIRST_NUMPY2_RELEASE.get(lib.canonicalize_name(dist))
            upgrade = ""
            if first:
                upgrade = " (%s>=%s)" % (dist, first)
                fix["alternatives"] = [
                    _fix(["%s>=%s" % (dist, first)], "upgrade %s to a NumPy 2 build" % dist)
                ]
            self.add(
                ("numpy", f.rel),
                f.rel,
                "abi-numpy",
                message="%s was compiled against NumPy 1.x headers and cannot run with numpy %s "
                "(A module that was compiled using NumPy 1.x cannot be run in NumPy 2.x; "
                "_ARRAY_API not found)" % (f.rel, self.numpy_version),
                hint="%s was built against NumPy 1.x: pin numpy<2 (e.g. numpy==1.26.4) or "
                "upgrade %s to a release built against NumPy 2%s" % (owner, dist, upgrade),
                details={
                    "numpy_headers": 1,
                    "numpy_installed": self.numpy_version,
                    "owner": owner,
                    "fix": fix,
                },
            )
        elif build.headers == 2 and build.target and installed and build.target > installed:
            tgt = "%d.%d" % build.target
            self.add(
                ("numpy", f.rel),
                f.rel,
                "abi-numpy",
                message="%s was compiled with NumPy 2 headers targeting NumPy >= %s; numpy %s "
                "is installed (module was compiled against NumPy C-API version ... (NumPy %s) "
                "but the running NumPy has an older C-API version)"
                % (f.rel, tgt, self.numpy_version, tgt),
                hint="install numpy>=%s, or a build of %s that targets numpy %s"
                % (tgt, owner, self.numpy_version),
                details={
                    "numpy_headers": 2,
                    "numpy_target": tgt,
                    "numpy_installed": self.numpy_version,
                    "owner": owner,
                    "fix": _fix(
                        ["numpy>=%s" % tgt], "install numpy>=%s: %s targets it" % (tgt, owner)
                    ),
                },
            )

    # -- loading model

    def load_root(self, f: _elf.EnvFile, preloaded: dict[str, str] | None) -> list[_elf.Node]:
        """Model importing/dlopening ``f``: check its dependency tree, versions, symbols.

        Returns the search list (the objects the load maps).
        """
        try:
            load = self.resolver.dlopen(f.path, preloaded=preloaded)
        except _elf.ElfError:
            return []
        searchlist, edges = load.searchlist, load.edges
        root_rel = f.rel
        # ld.so stops at the first error: a missing library, then a missing version, then symbols.
        blocked: set[int] = set()
        for e in edges:
            req = e.requester
            if e.provider is not None or not req.reportable:
                continue
            blocked.add(id(req))
            req_rel = self.rel(req.path, req.elf.file_id)
            owner = self.owner_text(req.path)
            if _elf.is_driver_library(e.name):
                self.add(
                    ("driver", req_rel, e.name),
                    req_rel,
                    "no-gpu",
                    message="%s: cannot open shared object file: No such file or directory "
                    "(needed by %s; it comes with the NVIDIA driver, which is not installed here)"
                    % (e.name, req_rel),
                    hint="run this cell on a machine with an NVIDIA driver to verify GPU loading",
                    details={"library": e.name, "requester": req_rel},
                    status="skip",
                    context=root_rel,
                )
                continue
            optional = _elf.optional_extension(req_rel, e.name)
            if optional is not None and not e.error:
                self.add(
                    ("optional", req_rel, e.name),
                    req_rel,
                    "optional-library",
                    message="%s needs %s, which is not installed: %s is off (the package imports "
                    "this module only when it is available)" % (req_rel, e.name, optional[1]),
                    hint="pip install %s to enable %s" % optional,
                    details={"library": e.name, "requester": req_rel, "install": optional[0]},
                    status="skip",
                    context=root_rel,
                )
                continue
            msg = e.error or (
                "%s: cannot open shared object file: No such file or directory (needed by %s; "
                "searched: %s)" % (e.name, req_rel, "; ".join(e.searched[-8:]) or "nothing")
            )
            provided_by = self.provided_by(e.name)
            pip_dist = None
            for rx, dist in _PIP_PROVIDERS:
                m = rx.match(e.name)
                if m:
                    pip_dist = dist.format(*m.groups())
                    break
            if provided_by:
                # The library is here, only not on this file's search path: a reinstall changes
                # nothing; it loads once the library is in the process (its package's import).
                hint = (
                    "%s is installed (%s, from %s) but not on %s's search path: it loads only in "
                    "a process that loaded %s first (import the package that ships it before it)"
                    % (
                        e.name,
                        ", ".join(self.rel(p) for p in provided_by[:3]),
                        pip_dist or self.owner_text(provided_by[0]),
                        req_rel,
                        e.name,
                    )
                )
            else:
                hint = "install the package that provides %s" % e.name
                if pip_dist:
                    hint = "pip install %s (it ships %s)" % (pip_dist, e.name)
                hint += ", or reinstall %s" % owner
            self.add(
                ("missing", req_rel, e.name),
                req_rel,
                "missing-library",
                message=msg,
                hint=hint,
                details={
                    "library": e.name,
                    "requester": req_rel,
                    "searched": e.searched,
                    "rpath": req.elf.effective_rpath,
                    "runpath": req.elf.runpath,
                    "owner": owner,
                    "provided_by": provided_by,
                },
                context=root_rel,
            )
        names = load.process.by_name
        preload_nodes = []
        if preloaded:
            seen = {id(n) for n in searchlist}
            for soname in preloaded:
                pn = names.get(soname)
                if pn is not None and id(pn) not in seen:
                    preload_nodes.append(pn)
        for node in searchlist:
            if (
                node.reportable
                and id(node) not in blocked
                and not self.check_versions(node, names, root_rel)
            ):
                blocked.add(id(node))
        scope = list(self.resolver.global_scope) + preload_nodes + searchlist
        for node in searchlist:
            if node.reportable and id(node) not in blocked:
                self.check_symbols(node, scope, root_rel)
        return searchlist

    def provided_by(self, soname: str) -> list[str]:
        """Real paths of the environment's files that a DT_NEEDED of ``soname`` would accept."""
        if self._sonames is None:
            self._sonames = {}
            for elf_id, f in self.by_id.items():
                elf = self._elves.get(elf_id)
                name = (elf.soname if elf is not None else None) or os.path.basename(f.path)
                self._sonames.setdefault(name, []).append(os.path.realpath(f.path))
        return sorted(self._sonames.get(soname, []))

    def check_versions(self, node: _elf.Node, names: dict[str, _elf.Node], root_rel: str) -> bool:
        """Version needs against the provider's definitions (``dl-version.c``); True if all met."""
        needs = node.elf.version_needs()
        if not needs:
            return True
        provs = [names.get(vfile) for vfile, _v, _w, _i in needs]
        key = (node.elf.file_id, tuple(id(p) for p in provs))
        if key in self._versions_done:
            return self._versions_done[key]
        ok = self._check_versions(node, needs, provs, root_rel)
        self._versions_done[key] = ok
        return ok

    def _check_versions(
        self,
        node: _elf.Node,
        needs: list[tuple[str, str, bool, int]],
        provs: list[_elf.Node | None],
        root_rel: str,
    ) -> bool:
        ok = True
        req_rel = self.rel(node.path, node.elf.file_id)
        missing: dict[str, tuple[_elf.Node, list[str]]] = {}
        for (vfile, ver, weak, _idx), prov in zip(needs, provs):
            if prov is None:
                if any(k == vfile for k in node.elf.needed):
                    continue  # the library itself is missing: reported as missing-library
                ok = False
                self.add(
                    ("vfile", req_rel, vfile),
                    req_rel,
                    "symbol-version",
                    message="%s requires version %s of %s, which is not loaded (not in its "
                    "DT_NEEDED): ld.so aborts with Assertion `needed != NULL' failed"
                    % (req_rel, ver, vfile),
                    hint="reinstall %s: its version requirements name a library it does not link "
                    "(a repair tool renamed one but not the other)" % self.owner_text(node.path),
                    details={"file": vfile, "version": ver, "needed": node.elf.needed},
                    context=root_rel,
                )
                continue
            if weak or not prov.elf.has_verdef:
                continue
            if ver not in prov.elf.defined_version_names():
                missing.setdefault(prov.path, (prov, []))[1].append(ver)
        if missing:
            ok = False
        for ppath, (prov, vers) in missing.items():
            prefix = _elf.version_prefix(vers[0])
            newest = prov.elf.newest_version(prefix)
            wanted = max(vers, key=_elf.version_key)
            prov_rel = self.rel(ppath, prov.elf.file_id)
            msg = "%s: version `%s' not found (required by %s)" % (ppath, wanted, req_rel)
            if len(vers) > 1:
                msg += "; also missing: %s" % ", ".join(v for v in vers if v != wanted)
            msg += "; %s provides up to %s" % (prov_rel, newest or "no %s* version" % prefix)
            self.add(
                ("version", req_rel, ppath),
                req_rel,
                "symbol-version",
                message=msg,
                hint="%s (from %s) needs %s but the %s it loads (from %s) stops at %s: provide a "
                "newer %s (e.g. upgrade the OS or conda's runtime libraries) or install a build "
                "of %s made with an older toolchain"
                % (
                    req_rel,
                    self.owner_text(node.path),
                    wanted,
                    os.path.basename(ppath),
                    self.owner_text(ppath),
                    newest or "no such version",
                    prov.elf.name,
                    self.owner_text(node.path),
                ),
                details={
                    "required": sorted(vers, key=_elf.version_key),
                    "provider": prov_rel,
                    "newest_available": newest,
                },
                context=root_rel,
            )
        return ok

    def check_symbols(self, node: _elf.Node, scope: list[_elf.Node], root_rel: str) -> None:
        """Every non-weak undefined symbol must be defined somewhere in the lookup scope.

        The scope of an object mapped by ``dlopen(RTLD_LOCAL)`` is the global scope (the
        executable and its dependencies) followed by the new object's search list.  Names the
        global scope defines go with one set difference; the rest are looked up in each object's
        GNU hash table (answers memoised per object, so no export table is read twice and a 75k
        symbol library is never read whole).  Version nodes are verified by ``check_versions``.
        """
        key = node.elf.file_id
        if key in self._undef_done:
            return
        rest = node.elf.undefined_names() - self._global_names
        if rest:
            # Where a name is defined does not matter here, only whether it is: ask the object's
            # own DT_NEEDED providers first (most references end there), then the rest of the
            # scope, each for the names still unresolved.
            global_ids = self._global_ids
            rest_of_scope = [p for p in scope if id(p) not in global_ids and p is not node]
            by_name: dict[str, _elf.Node] = {}
            for p in rest_of_scope:
                by_name.setdefault(p.elf.soname or os.path.basename(p.path), p)
            # Biggest first: libtorch_python.so's 5k references mostly end in libtorch_cpu.so.
            first = sorted(
                (by_name[n] for n in node.elf.needed if n in by_name),
                key=lambda p: -p.elf.symbol_count(),
            )
            done: set[int] = set()
            for p in first + rest_of_scope:
                if id(p) in done:
                    continue
                done.add(id(p))
                rest = rest - p.elf.defines(rest)
                if not rest:
                    break
        if not rest:
            self._undef_done.add(key)
            return
        missing = [(n, v) for n, v, _f in node.elf.undefined_symbols() if n in rest]
        req_rel = self.rel(node.path, node.elf.file_id)
        shown = [
            n.decode("utf-8", "replace")
            + (", version " + v.decode("utf-8", "replace") if v else "")
            for n, v in missing
        ]
        msg = "%s: undefined symbol: %s" % (req_rel, shown[0])
        if len(shown) > 1:
            msg += " (and %d more)" % (len(shown) - 1)
        self.add(
            ("undefined", req_rel),
            req_rel,
            "undefined-symbol",
            message=msg,
            hint="%s expects these symbols from a library it does not load, or from another "
            "version of one (%s): install the dependency versions it was built against, or "
            "rebuild it"
            % (self.owner_text(node.path), ", ".join(node.elf.needed) or "no DT_NEEDED"),
            details={"symbols": shown[:50], "count": len(shown), "needed": node.elf.needed},
            context=root_rel,
        )

    # -- the whole pass

    def run(self, files: list[_elf.EnvFile]) -> None:
        """Check every file, then model importing each extension module (and each library that
        no extension loads) to check what the loader would do."""
        exts: list[_elf.EnvFile] = []
        libs: list[_elf.EnvFile] = []
        elves: dict[str, _elf.ElfFile] = {}
        for f in files:
            t0 = time.perf_counter()
            try:
                elf = self.resolver.open(f.path)
                if elf is not None:
                    self.by_id.setdefault(elf.file_id, f)
                    self._elves.setdefault(elf.file_id, elf)
                self.check_file(f, elf, exts, libs, elves)
            except _elf.CORRUPT as exc:
                self.invalid(f, str(exc))
            self.durations[f.rel] = time.perf_counter() - t0
        torch_scope = self._torch_scope()
        reached: set[tuple[int, int]] = set()
        for is_ext, f in [(True, f) for f in exts] + [(False, f) for f in libs]:
            elf = elves[f.path]
            if not is_ext and (elf.file_id in reached or elf.type != _elf.ET_DYN):
                continue  # a library some import already loads is judged in that context
            t0 = time.perf_counter()
            pre = self._preloaded_for(f, elf, torch_scope)
            try:
                reached.update(n.elf.file_id for n in self.load_root(f, pre))
            except _elf.CORRUPT as exc:
                self.invalid(f, "while loading its dependencies: %s" % exc)
            self.durations[f.rel] = self.durations.get(f.rel, 0.0) + time.perf_counter() - t0

    def invalid(self, f: _elf.EnvFile, message: str) -> None:
        self.add(
            ("invalid", f.rel),
            f.rel,
            "invalid-elf",
            message=message,
            hint="reinstall %s: the file is truncated or corrupt" % self.owner_text(f.path),
            details={},
        )

    def check_file(
        self,
        f: _elf.EnvFile,
        elf: _elf.ElfFile | None,
        exts: list[_elf.EnvFile],
        libs: list[_elf.EnvFile],
        elves: dict[str, _elf.ElfFile],
    ) -> None:
        """The per-file checks; sorts the file into extension modules or libraries to load."""
        info = _elf.extension_module(f, elf)
        if elf is None:
            if info is not None:
                self.invalid(f, "%s: invalid ELF header (not a shared object)" % f.rel)
            return
        self.files_checked += 1
        elves[f.path] = elf
        ok = self.check_machine(f, elf)
        if info is not None:
            self.extensions += 1
            if self.check_extension(f, elf, info[0], info[1]) and ok:
                exts.append(f)
        elif ok:
            libs.append(f)
        if ok:
            self.check_exec_stack(f, elf)
            self.check_numpy(f, elf)

    def _torch_scope(self) -> tuple[dict[str, str], dict[str, str]]:
        """(nvidia libs torch preloads, libs in torch/lib): torch's ``_preload_cuda_deps`` model."""
        nvidia: dict[str, str] = {}
        torch_libs: dict[str, str] = {}
        for site in self.env.sites:
            nv = os.path.join(site, "nvidia")
            if os.path.isdir(nv):
                for pkg in sorted(os.listdir(nv)):
                    lib = os.path.join(nv, pkg, "lib")
                    self._collect(lib, nvidia)
            self._collect(os.path.join(site, "torch", "lib"), torch_libs)
        return nvidia, torch_libs

    def _collect(self, directory: str, out: dict[str, str]) -> None:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for n in names:
            if not (n.endswith(".so") or ".so." in n):
                continue
            p = os.path.join(directory, n)
            try:
                elf = self.resolver.open(p)
            except _elf.ElfError:
                continue
            if elf is not None and elf.compatible_with(self.exe):
                out.setdefault(elf.soname or n, os.path.abspath(p))

    @staticmethod
    def _preloaded_for(
        f: _elf.EnvFile, elf: _elf.ElfFile, scope: tuple[dict[str, str], dict[str, str]]
    ) -> dict[str, str] | None:
        nvidia, torch_libs = scope
        if not nvidia and not torch_libs:
            return None
        top = f.rel.split(os.sep, 1)[0]
        if top == "torch":
            return nvidia or None
        if top == "nvidia":
            return None
        if any(n in torch_libs for n in elf.needed):
            merged = dict(nvidia)
            merged.update(torch_libs)
            return merged
        return None


def _fix(requirements: list[str], summary: str) -> dict[str, object]:
    """A requirement change a hint proposes, machine-readable so it can be checked first."""
    return {"requirements": requirements, "summary": summary}


def _real_path(env: _elf.Environment, rel: str) -> str:
    """The real path of a finding's file (its target is relative to a site dir or the prefix):
    the verdict compares it with the files the import probe saw in the process."""
    for base in [*env.sites, env.prefix]:
        p = os.path.join(base, rel)
        if os.path.exists(p):
            return os.path.realpath(p)
    return os.path.realpath(rel)


def run(
    prefix: str | None, sites: list[str] | None, executable: str | None = None
) -> dict[str, Any]:
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    try:
        env = _elf.Environment.discover(prefix, sites, executable)
        resolver = _elf.Resolver(env.executable)
        checker = Checker(env, resolver)
        files = env.scan()
        checker.run(files)
    except _elf.CORRUPT as exc:
        return _elf.unreadable_document(PROBE, exc, t0)
    for key in checker.order:
        res = checker.findings[key]
        res["duration_s"] = round(checker.durations.get(res["target"], 0.0), 6)
        res["details"]["path"] = _real_path(env, res["target"])
        results.append(res)
    summary = "%d shared objects checked (%d extension modules)" % (
        checker.files_checked,
        checker.extensions,
    )
    details = {
        "files": checker.files_checked,
        "extensions": checker.extensions,
        "sites": env.sites,
        "prefix": env.prefix,
        "executable": env.executable,
        "numpy": checker.numpy_version,
        "findings": lib.category_counts(results, "fail"),
        "system_dirs": resolver.config.system_dirs,
        "hwcaps": resolver.config.hwcaps,
    }
    last = lib.summary_result(PROBE, results, summary, noun="findings", started=t0, details=details)
    results.append(last)
    return lib.document(PROBE, results)


def _build(argv: list[str] | None) -> dict[str, Any]:
    parser = lib.ProbeArgumentParser(prog="abi_probe.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", help="environment prefix (default: this interpreter's)")
    parser.add_argument("--site", action="append", help="site-packages dir (repeatable)")
    parser.add_argument("--executable", help="the interpreter (default: found in the prefix)")
    args = parser.parse_args(argv)
    return run(args.prefix, args.site, args.executable)


def main(argv: list[str] | None = None) -> int:
    return lib.run_document_probe(PROBE, _build, argv)


if __name__ == "__main__":
    sys.exit(main())
