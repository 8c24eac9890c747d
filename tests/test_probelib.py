"""probes/_probelib.py: the distribution index finds what importlib.metadata finds.

The probes' index reads ``*.dist-info`` / ``*.egg-info`` itself (importing importlib.metadata
cost every warm probe process ~45 ms). These tests put every form a search path can hold in
real folders and files (a wheel's dist-info, a setuptools egg-info folder and egg-info file, an
``.egg`` folder, a zip on the path, a path entry that does not exist, the same distribution
twice) and check, under the oldest and newest interpreters here, that the index lists the same
metadata folders in the same order, with the same names and versions, as importlib.metadata.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from _native_fixtures import edge_interpreter, load_probe_module, make_dist

PROBES = Path(__file__).resolve().parents[1] / "probes"

#: Run by the interpreter under test: both views of the same search path, as JSON.
COMPARE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import _probelib as lib
from importlib import metadata
paths = json.loads(sys.argv[2])
theirs = list(metadata.distributions(path=paths))
ours = lib._distributions(paths)
index = lib.DistributionIndex(paths)
print(json.dumps({
    "theirs": [str(d._path) for d in theirs],
    "ours": [str(d._path) for d in ours],
    "their_versions": {d.metadata["Name"]: d.version for d in theirs},
    "versions": index.versions(),
    "copies": index.copies,
    "sites": {key: index.site_of(key) for key in index.versions()},
    "top_level": {key: index.top_level(key) for key in index.versions()},
    "files": {key: sorted(str(f) for f in index.get(key).files or []) for key in index.versions()},
    "their_files": {
        lib.canonicalize_name(d.metadata["Name"]): sorted(str(f) for f in d.files or [])
        for d in reversed(theirs)
    },
}))
"""


def build_path(root: Path) -> list[str]:
    """A search path holding each form a distribution's metadata takes on disk."""
    site = root / "site"
    make_dist(site, "wheelpkg", "1.0", {"wheelpkg/__init__.py": ""}, top_level=["wheelpkg"])
    make_dist(site, "Odd.Name_pkg", "2.0", {"odd_name/__init__.py": ""})
    folded = site / "folded-3.0.dist-info"  # a folded header: only the email parser reads it
    folded.mkdir()
    (folded / "METADATA").write_text(
        "Metadata-Version: 2.1\nSummary: a summary\n  folded\nName: folded\nVersion: 3.0\n"
    )
    (folded / "RECORD").write_text("folded.py,,\n")
    eggdir = site / "eggdir-4.0-py3.egg-info"  # setuptools' folder: PKG-INFO, no METADATA
    eggdir.mkdir()
    (eggdir / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: eggdir\nVersion: 4.0\n")
    (eggdir / "top_level.txt").write_text("eggdir\n")
    (eggdir / "SOURCES.txt").write_text("eggdir/__init__.py\nsetup.py\n")
    (site / "eggfile-5.0-py3.egg-info").write_text(  # distutils: the egg-info is one file
        "Metadata-Version: 1.1\nName: eggfile\nVersion: 5.0\n"
    )
    egg = root / "old-6.0-py3.egg"  # an .egg folder on the path, its metadata in EGG-INFO
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: old\nVersion: 6.0\n")
    zipped = root / "zipped.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("zipped-7.0.dist-info/METADATA", "Name: zipped\nVersion: 7.0\n")
        archive.writestr("zipped-7.0.dist-info/RECORD", "zipped.py,,\n")
        archive.writestr("zipped.py", "")
    shadow = root / "shadow"  # a second copy of wheelpkg, later on the path
    make_dist(shadow, "wheelpkg", "0.9", {"wheelpkg/__init__.py": ""})
    return [str(site), str(egg), str(zipped), str(root / "missing"), str(shadow)]


@pytest.fixture(params=["oldest", "newest"])
def edge_python(request: pytest.FixtureRequest, interpreters: list[Any]) -> str:
    return str(edge_interpreter(interpreters, request.param).path)


def compare(python: str, paths: list[str], cwd: Path) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-I", "-c", COMPARE, str(PROBES), json.dumps(paths)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_index_lists_what_importlib_metadata_lists(edge_python: str, tmp_path: Path) -> None:
    found = compare(edge_python, build_path(tmp_path), tmp_path)
    assert found["ours"] == found["theirs"]
    assert len(found["ours"]) == 8  # every form above, the shadowed copy included
    assert found["versions"] == {
        "eggdir": "4.0",
        "eggfile": "5.0",
        "folded": "3.0",
        "odd-name-pkg": "2.0",
        "old": "6.0",
        "wheelpkg": "1.0",  # the first on the path wins, as import sees it
        "zipped": "7.0",
    }
    assert [version for _, version in found["copies"]["wheelpkg"]] == ["1.0", "0.9"]
    assert found["sites"]["wheelpkg"] == str((tmp_path / "site").resolve())
    assert found["top_level"]["eggdir"] == ["eggdir"]
    # what the index does not read itself (RECORD, SOURCES.txt) is importlib.metadata's answer
    assert found["files"] == found["their_files"]
    assert found["files"]["zipped"] == ["zipped.py"]


def test_a_plain_environment_is_read_without_importlib_metadata(
    edge_python: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    make_dist(site, "wheelpkg", "1.0", {"wheelpkg/__init__.py": ""}, top_level=["wheelpkg"])
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import _probelib as lib; "
        "index = lib.DistributionIndex(json.loads(sys.argv[2])); "
        "print(json.dumps([index.versions(), index.installed(), index.top_level('wheelpkg'), "
        "'importlib.metadata' in sys.modules]))"
    )
    done = subprocess.run(
        [edge_python, "-I", "-c", script, str(PROBES), json.dumps([str(site), "/nonexistent"])],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    versions, installed, top_level, imported = json.loads(done.stdout)
    assert versions == {"wheelpkg": "1.0"}
    assert installed[0]["metadata_dir"] == "wheelpkg-1.0.dist-info"
    assert top_level == ["wheelpkg"]
    assert imported is False


def test_a_package_is_cold_until_its_bytecode_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cold`: the cuda probe waits for the import probe's import of a framework only while that
    import would compile it (no bytecode of its `__init__` yet, and bytecode may be written)."""
    lib = load_probe_module("_probelib")
    site = tmp_path / "site"
    init = site / "torch" / "__init__.py"
    init.parent.mkdir(parents=True)
    init.write_text("VALUE = 1\n")
    (site / "six.py").write_text("VALUE = 1\n")
    paths = [str(tmp_path / "elsewhere"), str(site)]
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    assert lib.cold("torch", paths)
    assert not lib.cold("six", paths)  # a module, no package: nothing to wait for
    assert not lib.cold("jax", paths)  # not there
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert not lib.cold("torch", paths)  # every import compiles: waiting saves nothing
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE")
    cached = Path(importlib.util.cache_from_source(str(init)))
    cached.parent.mkdir()
    cached.write_bytes(b"")  # the import probe's child wrote it
    assert not lib.cold("torch", paths)
