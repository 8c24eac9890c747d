"""A PEP 517 build backend that packages already-built files as a wheel, without a compiler.

The accuracy suite compiles its broken extension modules with gcc in the test (so the failure
is real), puts them in ``prebuilt/`` of a tiny local project beside a copy of this file, and
lets the installer "build" that project: the resulting wheel holds exactly those files, tagged
for the interpreter that builds it. Stdlib only; ``[project]`` gives name and version.
"""

from __future__ import annotations

import base64
import hashlib
import platform
import re
import sys
import zipfile
from pathlib import Path

_FIELD = re.compile(r'^(name|version)\s*=\s*"([^"]+)"', re.M)


def _project() -> tuple[str, str]:
    fields = dict(_FIELD.findall(Path("pyproject.toml").read_text(encoding="utf-8")))
    return fields["name"], fields["version"]


def get_requires_for_build_wheel(config_settings: object = None) -> list[str]:
    return []


def build_wheel(
    wheel_directory: str, config_settings: object = None, metadata_directory: object = None
) -> str:
    name, version = _project()
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    py = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    tag = f"{py}-{py}-linux_{platform.machine()}"
    contents = {p.name: p.read_bytes() for p in sorted(Path("prebuilt").iterdir())}
    contents[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    contents[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: prebuilt_backend\nRoot-Is-Purelib: false\nTag: {tag}\n"
    ).encode()
    record = []
    for arc, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arc},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    filename = f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(Path(wheel_directory, filename), "w") as archive:
        for arc, data in contents.items():
            archive.writestr(arc, data)
    return filename
