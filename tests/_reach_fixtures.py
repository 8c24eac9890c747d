"""Real environments for reachability: whether a static finding fails a cell depends on what the
cell's imports load, and on the process a plugin is loaded into.

- ``build_plugin_env``: ``mainpkg`` (an extension with a RUNPATH to its ``libframework.so.2``)
  and ``pluginpkg``, whose ``libplugin.so`` needs ``libframework.so.2`` by soname with no
  RUNPATH to it, as tensorflow_io_gcs_filesystem's plugin needs tensorflow's framework library:
  alone it fails, in a process that imported mainpkg it loads. With ``orphan=True`` it also has
  ``orphanpkg/liborphan.so`` needing ``lonelypkg``'s ``libhelper.so.1``, which no import loads.
- ``build_numpy2_only_env``: an extension built for NumPy >= 2 (NumPy 2 headers, target 2.0,
  ``import_array()`` in its init) under numpy 1.26.4, imported only under NumPy 2 by
  ``condpkg`` (as h5py imports ``_npystrings``) and unconditionally by ``uncondpkg``.

Everything is compiled by gcc and loaded by the real loader and interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _elf_fixtures import c_library, fake_dist
from _native_fixtures import build_extension, describe_python

__all__ = ["build_numpy2_only_env", "build_plugin_env", "site_packages"]

_TIMEOUT = 600


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    assert done.returncode == 0, f"{argv} failed:\n{done.stderr}"
    return done.stdout


def site_packages(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(_run([str(python), "-I", "-c", code]).strip())


def _package(site: Path, name: str, init: str, files: list[Path]) -> None:
    init_file = site / name / "__init__.py"
    init_file.parent.mkdir(parents=True, exist_ok=True)
    init_file.write_text(init)
    fake_dist(site, name, "1.0", [init_file, *files])


def build_plugin_env(root: Path, *, orphan: bool = False) -> Path:
    """A venv of the running interpreter holding the plugin packages; returns its python."""
    env = root / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)])
    python = env / "bin" / "python"
    site = site_packages(python)
    target = describe_python(str(python))
    main = site / "mainpkg"
    main.mkdir(parents=True)
    framework = c_library(main / "libframework.so.2", "int framework_value(void){return 2;}\n")
    core = build_extension(
        target,
        "good.c",
        "_core",
        main,
        link=[
            "-Wl,--no-as-needed",
            f"-L{main}",
            "-l:libframework.so.2",
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN",
        ],
    )
    _package(site, "mainpkg", "from . import _core\n", [framework, core])
    plugin = c_library(
        site / "pluginpkg" / "libplugin.so",
        "extern int framework_value(void);\nint plugin_value(void){return framework_value();}\n",
        link=[framework],
    )
    # Like tensorflow_io_gcs_filesystem: importing the package does not load its plugin; the
    # framework loads it on demand, into a process that has libframework.so.2 already.
    _package(site, "pluginpkg", "", [plugin])
    if orphan:
        helper = c_library(
            site / "lonelypkg" / "libhelper.so.1", "int helper_value(void){return 1;}\n"
        )
        _package(site, "lonelypkg", "", [helper])
        lonely = c_library(
            site / "orphanpkg" / "liborphan.so",
            "extern int helper_value(void);\nint orphan_value(void){return helper_value();}\n",
            link=[helper],
        )
        _package(site, "orphanpkg", "", [lonely])
    return python


_CONDITIONAL = """\
import numpy

if int(numpy.__version__.split(".")[0]) >= 2:
    from . import _np2only  # NumPy 2 only, as h5py imports _npystrings
"""


def build_numpy2_only_env(root: Path, uv: str, python: str) -> Path:
    """A uv venv with numpy 1.26.4 and two packages sharing a NumPy-2-only extension."""
    env = root / "env"
    _run([uv, "venv", "--quiet", "--python", python, str(env)])
    env_python = env / "bin" / "python"
    install = [uv, "pip", "install", "--quiet", "--python", str(env_python)]
    _run([*install, "numpy==2.2.6"])
    include = _run([str(env_python), "-I", "-c", "import numpy; print(numpy.get_include())"])
    target = describe_python(str(env_python))
    site = site_packages(env_python)
    for name, init in (("condpkg", _CONDITIONAL), ("uncondpkg", "from . import _np2only\n")):
        (site / name).mkdir(parents=True)
        ext = build_extension(
            target, "numpy2only.c", "_np2only", site / name, link=[f"-I{include.strip()}"]
        )
        _package(site, name, init, [ext])
    _run([*install, "numpy==1.26.4"])  # what `pip install numpy<2` leaves behind
    return env_python
