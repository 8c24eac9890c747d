"""The upgrade syntax of `audit --upgrade`: `numpy=2`, `python=3.12`, `pandas>=2.2`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from compat_matrix.build import pythons
from compat_matrix.build.requirements import conda_spec
from compat_matrix.errors import UsageError

if TYPE_CHECKING:
    pass

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_UPGRADE = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(.*?)\s*$")
#: PEP 440 operators as cell-id words; two-character ones first, so `>=` never reads as `>`.
_OPERATOR_WORDS = (
    (">=", "ge"),
    ("<=", "le"),
    ("==", "eq"),
    ("!=", "ne"),
    ("~=", "compat"),
    (">", "gt"),
    ("<", "lt"),
)


@dataclass(frozen=True)
class Upgrade:
    """One `--upgrade` value.

    `NAME=VERSION` means the newest release starting with VERSION (`numpy=2` is `numpy==2.*`,
    as conda reads `=`), unless VERSION has three or more parts (`numpy=2.2.6` is `==2.2.6`);
    `NAME<specifier>` is a PEP 440 specifier (`numpy>=2.1`); a bare `NAME` means the newest
    release. `python=X.Y[.Z][t]` asks for another interpreter.
    """

    text: str
    #: Canonical distribution name, or "python".
    name: str
    #: What follows the name, as written: `=2`, `>=2.1`, `` (the newest release).
    spec: str
    #: PEP 508 requirement for pip/uv ("" for python).
    requirement: str
    #: MatchSpec for conda ("" for python: `conda_python_specs` spells it).
    conda_spec: str
    #: For python: the version requested (`3.12`).
    python: str = ""

    @property
    def label(self) -> str:
        """The upgrade in a cell id: `py3.12`, `numpy2`, `numpy-ge2.1`, `numpy-latest`."""
        if self.name == "python":
            return f"py{self.python}"
        rest = re.sub(r"^=(?!=)", "", self.spec.replace(" ", "").replace(",", ""))
        rest = rest.replace("*", "x")
        for operator, word in _OPERATOR_WORDS:
            rest = rest.replace(operator, f"-{word}")
        return _UNSAFE.sub("_", f"{self.name}{rest or '-latest'}").strip("_")


def parse_upgrade(text: str) -> Upgrade:
    """Parse one `--upgrade` value; raises UsageError with the accepted forms."""
    match = _UPGRADE.match(text)
    usage = (
        f"invalid --upgrade {text!r}: expected python=X.Y, NAME=VERSION (newest matching), "
        "NAME==VERSION, NAME>=VERSION (any PEP 440 specifier) or NAME"
    )
    if match is None:
        raise UsageError(usage)
    raw_name, rest = match.groups()
    name = str(canonicalize_name(raw_name))
    fuzzy = rest.startswith("=") and not rest.startswith("==")
    if name == "python":
        version = rest[1:].strip() if fuzzy else ""
        try:
            pythons.parse_request(version)
        except ValueError as exc:
            msg = f"invalid --upgrade {text!r}: python=X.Y, X.Y.Z or X.Yt ({exc})"
            raise UsageError(msg) from None
        return Upgrade(text, "python", rest, "", "", python=version)
    if not rest:
        return Upgrade(text, name, "", name, name)
    if fuzzy:
        version = rest[1:].strip()
        try:
            release = Version(version).release
        except InvalidVersion:
            raise UsageError(usage) from None
        if len(release) >= 3:
            return Upgrade(text, name, rest, f"{name}=={version}", f"{name}=={version}")
        return Upgrade(text, name, rest, f"{name}=={version}.*", f"{name}={version}")
    try:
        specifiers = SpecifierSet(rest)
    except InvalidSpecifier:
        raise UsageError(usage) from None
    if not len(specifiers):
        raise UsageError(usage)
    conda = conda_spec(name, str(specifiers)) or name
    return Upgrade(text, name, rest, f"{name}{specifiers}", conda)
