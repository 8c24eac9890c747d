"""Is the environment consistent: requirements met, no file owned twice, conda and pip apart?

Usage::

    <env python> consistency_probe.py [--prefix DIR] [--path DIR ...]

Checks, each failure an ``inconsistent-env`` result with a hint:

- every installed distribution's ``Requires-Dist`` is satisfied, as ``pip check`` judges it
  (PEP 508 markers evaluated for this interpreter, PEP 440 specifiers, pre-releases allowed),
  plus the requirements behind extras that other installed distributions ask for (``dask[array]``
  needs what ``array`` lists) and each distribution's ``Requires-Python``;
- two distributions that install the same file with different content (``opencv-python`` and
  ``opencv-python-headless`` both writing ``cv2/``: the last one overwrote the other), or the
  same top-level module as a module and as a package, or from two site directories (one
  shadows the other);
- in a conda environment (``<prefix>/conda-meta``): a package that pip installed over the conda
  package that provides it (its conda record is still there; with ``--ignore-installed`` both
  dist-infos remain), files of a conda package that a pip-installed distribution overwrote,
  conda packages whose files pip removed, and, by content, files that no longer match the
  sha256 and size conda recorded for them (only files newer than their record are hashed).

This is stdlib only: versions, specifiers and markers are implemented here
(``Version``, ``specifier_contains``, ``evaluate_marker``, ``parse_requirement``), matching
``packaging``'s semantics for installed versions.

With nothing wrong, one ``pass`` result with target ``environment``.
"""

from __future__ import annotations

import csv
import hashlib
import os
import platform
import re
import sys
import time
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import _probelib as lib  # noqa: E402

__all__ = [
    "PROBE",
    "InvalidVersion",
    "Requirement",
    "Version",
    "default_environment",
    "evaluate_marker",
    "main",
    "parse_requirement",
    "specifier_contains",
]

PROBE = "consistency"

# -- PEP 440 versions ------------------------------------------------------------------------

_VERSION_RE = re.compile(
    r"""^\s*v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?
    (?P<dev>[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_PRE_LETTERS = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "c": "rc", "pre": "rc"}
_PRE_LETTERS.update({"preview": "rc", "rc": "rc"})


class InvalidVersion(ValueError):
    """Not a PEP 440 version."""


class Version:
    """A PEP 440 version, ordered as ``packaging.version.Version`` orders it."""

    __slots__ = ("_key", "dev", "epoch", "local", "post", "pre", "release")

    def __init__(self, text: str) -> None:
        match = _VERSION_RE.match(text)
        if not match:
            raise InvalidVersion(text)
        self.epoch = int(match.group("epoch") or 0)
        self.release = tuple(int(part) for part in match.group("release").split("."))
        self.pre: tuple[str, int] | None = None
        if match.group("pre"):
            letter = _PRE_LETTERS[match.group("pre_l").lower()]
            self.pre = (letter, int(match.group("pre_n") or 0))
        self.post: int | None = None
        if match.group("post"):
            self.post = int(match.group("post_n1") or match.group("post_n2") or 0)
        self.dev: int | None = int(match.group("dev_n") or 0) if match.group("dev") else None
        self.local: tuple[int | str, ...] | None = None
        if match.group("local"):
            self.local = tuple(
                int(part) if part.isdigit() else part.lower()
                for part in re.split(r"[-_.]", match.group("local"))
            )
        self._key = self._cmpkey()

    def _cmpkey(self) -> tuple[Any, ...]:
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        if self.pre is None and self.post is None and self.dev is not None:
            pre: tuple[Any, ...] = (-1,)  # 1.0.dev0 sorts before 1.0a0
        elif self.pre is None:
            pre = (1,)
        else:
            pre = (0, *self.pre)
        post: tuple[Any, ...] = (-1,) if self.post is None else (0, self.post)
        dev: tuple[Any, ...] = (1,) if self.dev is None else (0, self.dev)
        if self.local is None:
            local: tuple[Any, ...] = (-1,)
        else:
            local = (
                0,
                tuple((1, p, "") if isinstance(p, int) else (0, 0, p) for p in self.local),
            )
        return (self.epoch, tuple(release), pre, post, dev, local)

    @property
    def public(self) -> str:
        return str(self).split("+", 1)[0]

    @property
    def base_version(self) -> str:
        epoch = "%d!" % self.epoch if self.epoch else ""
        return epoch + ".".join(str(p) for p in self.release)

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None or self.dev is not None

    @property
    def is_postrelease(self) -> bool:
        return self.post is not None

    def __str__(self) -> str:
        text = self.base_version
        if self.pre is not None:
            text += "%s%d" % self.pre
        if self.post is not None:
            text += ".post%d" % self.post
        if self.dev is not None:
            text += ".dev%d" % self.dev
        if self.local is not None:
            text += "+" + ".".join(str(p) for p in self.local)
        return text

    def __repr__(self) -> str:
        return "<Version(%r)>" % str(self)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key == other._key

    def __lt__(self, other: Version) -> bool:
        return self._key < other._key

    def __le__(self, other: Version) -> bool:
        return self._key <= other._key

    def __gt__(self, other: Version) -> bool:
        return self._key > other._key

    def __ge__(self, other: Version) -> bool:
        return self._key >= other._key


# -- PEP 440 specifiers --------------------------------------------------------------------------

_SPEC_RE = re.compile(r"^\s*(===|==|!=|~=|<=|>=|<|>)\s*(\S+?)\s*$")
_WILDCARD_RE = re.compile(r"^v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*\.\*$", re.IGNORECASE)


def _replace(version: Version, **parts: Any) -> Version:
    """A copy of ``version`` with some of its parts replaced (``dev=0``, ``local=None``)."""
    copy = Version.__new__(Version)
    for name in ("epoch", "release", "pre", "post", "dev", "local"):
        setattr(copy, name, parts.get(name, getattr(version, name)))
    copy._key = copy._cmpkey()
    return copy


def _trimmed(release: tuple[int, ...]) -> tuple[int, ...]:
    end = len(release)
    while end > 1 and release[end - 1] == 0:
        end -= 1
    return release[:end]


def _same_release(a: Version, b: Version) -> bool:
    return a.epoch == b.epoch and _trimmed(a.release) == _trimmed(b.release) and a.pre == b.pre


def _next_prefix(version: Version) -> Version:
    """The first version past a release prefix: ``1.2`` -> ``1.3.dev0``."""
    release = (*version.release[:-1], version.release[-1] + 1)
    return _replace(version, release=release, pre=None, post=None, dev=0, local=None)


def _matches(op: str, spec: str, version: Version) -> bool:
    """One clause against a version, pre-releases allowed (as pip check asks).

    The semantics of ``packaging`` 26: ``<V`` excludes V's pre-releases, ``>V`` excludes V's
    post-releases and local versions, ``==V``/``<=V`` include V's local versions.
    """
    if spec.endswith(".*"):
        base = Version(spec[:-2])
        base = _replace(base, dev=0)
        inside = base <= version < _next_prefix(base)
        return inside if op == "==" else not inside
    target = Version(spec)
    public = _replace(version, local=None)
    if op == "==":
        return version == target if target.local is not None else public == target
    if op == "!=":
        return version != target if target.local is not None else public != target
    if op == ">=":
        return version >= target
    if op == "<=":
        return public <= target
    if op == "~=":
        prefix = _replace(target, release=target.release[:-1])
        return target <= version < _next_prefix(prefix)
    if op == "<":
        bound = target if target.is_prerelease else _replace(target, dev=0, local=None)
        return version < bound
    if op == ">":
        if target.dev is not None:
            return version >= _replace(target, dev=target.dev + 1, local=None)
        if target.post is not None:
            return version >= _replace(target, post=target.post + 1, dev=0, local=None)
        if not version > target:
            return False
        return not (
            _same_release(version, target) and (version.dev is None or version.post is not None)
        )
    raise ValueError("unknown operator %r" % op)


def parse_specifiers(text: str) -> list[tuple[str, str]]:
    """``">=1.0, !=1.3.*"`` -> ``[(">=", "1.0"), ("!=", "1.3.*")]``; ValueError if malformed."""
    clauses = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        match = _SPEC_RE.match(raw)
        if not match:
            raise ValueError("invalid specifier %r" % raw.strip())
        op, spec = match.groups()
        if op != "===":
            if spec.endswith(".*"):
                if op not in ("==", "!=") or not _WILDCARD_RE.match(spec):
                    raise ValueError("invalid specifier %r" % raw.strip())
            else:
                parsed = Version(spec)
                if parsed.local is not None and op not in ("==", "!="):
                    raise ValueError("a local version needs == or !=: %r" % raw.strip())
                if op == "~=" and len(parsed.release) < 2:
                    raise ValueError("~= needs two release numbers: %r" % raw.strip())
        clauses.append((op, spec))
    return clauses


def specifier_contains(specifiers: str, version: str) -> bool:
    """Whether ``version`` satisfies every clause of ``specifiers`` (pre-releases allowed).

    An unparsable version matches only ``===`` with the same text, as in ``packaging``.
    """
    clauses = parse_specifiers(specifiers)
    try:
        parsed: Version | None = Version(version)
    except InvalidVersion:
        parsed = None
    for op, spec in clauses:
        if op == "===":
            if version.strip().lower() != spec.lower():
                return False
        elif parsed is None or not _matches(op, spec, parsed):
            return False
    return True


# -- PEP 508 markers -----------------------------------------------------------------------------

_MARKER_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<lparen>\()|(?P<rparen>\))
        |(?P<string>'[^']*'|"[^"]*")
        |(?P<op>===|==|!=|~=|<=|>=|<|>|not\s+in\b|in\b)
        |(?P<bool>and\b|or\b)
        |(?P<var>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_MARKER_ALIASES = {
    "os.name": "os_name",
    "sys.platform": "sys_platform",
    "platform.version": "platform_version",
    "platform.machine": "platform_machine",
    "platform.python_implementation": "platform_python_implementation",
    "python_implementation": "platform_python_implementation",
}
_MARKER_VARIABLES = frozenset(
    {
        "implementation_name",
        "implementation_version",
        "os_name",
        "platform_machine",
        "platform_release",
        "platform_system",
        "platform_version",
        "python_full_version",
        "platform_python_implementation",
        "python_version",
        "sys_platform",
        "extra",
    }
)


class InvalidMarker(ValueError):
    """Not a PEP 508 marker."""


def default_environment() -> dict[str, str]:
    """The marker variables of this interpreter (PEP 508), as ``packaging`` computes them."""
    info = sys.implementation.version
    implementation_version = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        implementation_version += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": implementation_version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _MARKER_TOKEN_RE.match(text, position)
        if not match or match.end() == position:
            raise InvalidMarker("cannot parse marker %r at %r" % (text, text[position:]))
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "op":
            value = re.sub(r"\s+", " ", value)
        tokens.append((kind, value))
        position = match.end()
    return tokens


def _compare(lhs: str, op: str, rhs: str) -> bool:
    """A marker comparison: PEP 440 when both sides are versions, else Python's on strings."""
    if op in ("in", "not in"):
        return (lhs in rhs) if op == "in" else (lhs not in rhs)
    try:
        parse_specifiers(op + rhs)
    except ValueError:
        pass
    else:  # packaging: a version comparison, false when the left side is no version
        return specifier_contains(op + rhs, lhs)
    if op == "==":
        return lhs == rhs
    if op == "!=":
        return lhs != rhs
    if op in ("<", "<=", ">", ">="):
        return {
            "<": lhs < rhs,
            "<=": lhs <= rhs,
            ">": lhs > rhs,
            ">=": lhs >= rhs,
        }[op]
    raise InvalidMarker("cannot compare %r %s %r" % (lhs, op, rhs))


class _MarkerParser:
    def __init__(self, tokens: list[tuple[str, str]], environment: dict[str, str]) -> None:
        self.tokens = tokens
        self.index = 0
        self.environment = environment

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.index] if self.index < len(self.tokens) else ("end", "")

    def take(self, kind: str) -> str:
        found, value = self.peek()
        if found != kind:
            raise InvalidMarker("expected %s, found %r" % (kind, value))
        self.index += 1
        return value

    def parse_or(self) -> bool:
        value = self.parse_and()
        while self.peek() == ("bool", "or"):
            self.index += 1
            right = self.parse_and()
            value = value or right
        return value

    def parse_and(self) -> bool:
        value = self.parse_atom()
        while self.peek() == ("bool", "and"):
            self.index += 1
            right = self.parse_atom()
            value = value and right
        return value

    def parse_atom(self) -> bool:
        if self.peek()[0] == "lparen":
            self.index += 1
            value = self.parse_or()
            self.take("rparen")
            return value
        left_kind, left = self.operand()
        op = self.take("op")
        right_kind, right = self.operand()
        if "extra" in (left_kind, right_kind):
            left, right = lib.canonicalize_name(left), lib.canonicalize_name(right)
        return _compare(left, op, right)

    def operand(self) -> tuple[str, str]:
        kind, value = self.peek()
        self.index += 1
        if kind == "string":
            return "string", value[1:-1]
        if kind == "var":
            name = _MARKER_ALIASES.get(value, value)
            if name not in _MARKER_VARIABLES:
                raise InvalidMarker("unknown marker variable %r" % value)
            return name, self.environment.get(name, "")
        raise InvalidMarker("expected a marker variable or a string, found %r" % value)


def evaluate_marker(marker: str, environment: dict[str, str] | None = None) -> bool:
    """Evaluate a PEP 508 marker (``python_version < "3.11" and extra == "test"``)."""
    env = dict(default_environment() if environment is None else environment)
    env.setdefault("extra", "")
    parser = _MarkerParser(_tokenize(marker), env)
    value = parser.parse_or()
    if parser.index != len(parser.tokens):
        raise InvalidMarker("unexpected %r in marker %r" % (parser.peek()[1], marker))
    return value


# -- PEP 508 requirements ------------------------------------------------------------------------

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*")
_EXTRAS_RE = re.compile(r"^\[([^\]]*)\]\s*")


class Requirement:
    """A parsed ``Requires-Dist`` value."""

    __slots__ = ("extras", "key", "marker", "name", "specifier", "text", "url")

    def __init__(
        self,
        text: str,
        *,
        name: str,
        extras: list[str],
        specifier: str,
        url: str,
        marker: str,
    ) -> None:
        self.text = text
        self.name = name
        self.key = lib.canonicalize_name(name)
        self.extras = extras
        self.specifier = specifier
        self.url = url
        self.marker = marker

    def __repr__(self) -> str:
        return "<Requirement(%r)>" % self.text

    def display(self) -> str:
        """``numpy>=1.22.4`` / ``pkg[extra]`` / ``pkg @ url``: the requirement without marker."""
        extras = "[%s]" % ",".join(self.extras) if self.extras else ""
        if self.url:
            return "%s%s @ %s" % (self.name, extras, self.url)
        return "%s%s%s" % (self.name, extras, self.specifier.replace(" ", ""))


def parse_requirement(text: str) -> Requirement:
    """Parse a PEP 508 requirement; ValueError if it is malformed."""
    match = _NAME_RE.match(text)
    if not match:
        raise ValueError("invalid requirement %r" % text)
    name = match.group(1)
    rest = text[match.end() :]
    extras: list[str] = []
    found = _EXTRAS_RE.match(rest)
    if found:
        extras = [e.strip() for e in found.group(1).split(",") if e.strip()]
        rest = rest[found.end() :]
    url = ""
    marker = ""
    specifier = ""
    if rest.startswith("@"):
        parts = re.split(r"\s+;", rest[1:], maxsplit=1)
        url = parts[0].strip()
        marker = parts[1].strip() if len(parts) > 1 else ""
        if not url:
            raise ValueError("invalid requirement %r: empty URL" % text)
    else:
        spec, _, marker = rest.partition(";")
        spec = spec.strip()
        if spec.startswith("(") and spec.endswith(")"):
            spec = spec[1:-1].strip()
        parse_specifiers(spec)
        specifier = spec
        marker = marker.strip()
    if marker:
        _tokenize(marker)  # syntax check now, evaluation later
    return Requirement(text, name=name, extras=extras, specifier=specifier, url=url, marker=marker)


# -- installed distributions ---------------------------------------------------------------------


def _read(dist: Any, name: str) -> str:
    try:
        return str(dist.read_text(name) or "")
    except (OSError, ValueError, LookupError, AttributeError, TypeError):
        return ""


def _record_rows(dist: Any) -> list[tuple[str, str]]:
    """``(path as written in RECORD, hash)`` for each row."""
    text = _read(dist, "RECORD")
    rows = []
    try:
        for row in csv.reader(text.splitlines()):
            if row and row[0]:
                rows.append((row[0], row[1] if len(row) > 1 else ""))
    except csv.Error:
        return []
    return rows


class _Dist:
    """What the checks need to know about one installed distribution."""

    def __init__(self, key: str, dist: Any, index: lib.DistributionIndex) -> None:
        self.key = key
        self.dist = dist
        self.name, self.version = index.display(key)
        self.site = index.site_of(key)
        self.info_dir = os.path.realpath(str(getattr(dist, "_path", "") or ""))
        self.installer = _read(dist, "INSTALLER").strip()
        self._files: dict[str, str] | None = None

    def label(self) -> str:
        return "%s %s" % (self.name, self.version)

    def files(self) -> dict[str, str]:
        """``{absolute normalised path: hash}`` of every file in RECORD."""
        if self._files is None:
            files: dict[str, str] = {}
            base = self.site or os.path.dirname(self.info_dir)
            for rel, digest in _record_rows(self.dist):
                files[os.path.normpath(os.path.join(base, rel))] = digest
            self._files = files
        return self._files

    def headers(self) -> dict[str, list[str]]:
        """``METADATA``'s header fields (read directly: the email parser is 10x slower)."""
        fields: dict[str, list[str]] = {}
        last = ""
        for line in _read(self.dist, "METADATA").splitlines():
            if not line.strip():
                break  # the body (the long description) starts here
            if line[0] in " \t" and last:
                fields[last][-1] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if sep:
                last = name.strip().lower()
                fields.setdefault(last, []).append(value.strip())
        return fields

    def requirements(self) -> tuple[list[Requirement], list[str]]:
        """Parsed ``Requires-Dist`` values, and the ones that do not parse."""
        raw = self.headers().get("requires-dist")
        if raw is None:  # an .egg-info: importlib.metadata reads requires.txt
            try:
                raw = [str(r) for r in self.dist.requires or []]
            except (OSError, ValueError, LookupError, AttributeError, TypeError):
                raw = []
        parsed, bad = [], []
        for text in raw:
            try:
                parsed.append(parse_requirement(str(text)))
            except ValueError:
                bad.append(str(text))
        return parsed, bad


def _marker_true(requirement: Requirement, env: dict[str, str], extra: str) -> bool | None:
    if not requirement.marker:
        return True
    try:
        return evaluate_marker(requirement.marker, dict(env, extra=extra))
    except ValueError:
        return None


def check_requirements(
    dists: dict[str, _Dist], env: dict[str, str], findings: list[dict[str, Any]]
) -> int:
    """pip check, plus extras other distributions request, plus Requires-Python."""
    pending = [(key, "", "") for key in sorted(dists)]
    checked = 0
    done: set[tuple[str, str]] = set()
    while pending:
        key, extra, asked_by = pending.pop(0)
        if (key, extra) in done or key not in dists:
            continue
        done.add((key, extra))
        dist = dists[key]
        requirements, bad = dist.requirements()
        if not extra and bad:
            findings.append(
                _finding(
                    key,
                    "%s declares requirements that do not parse: %s"
                    % (dist.label(), "; ".join(bad[:5])),
                    "the distribution's metadata is malformed; pip and uv ignore or reject it: "
                    "upgrade %s" % dist.name,
                    {"invalid": bad},
                )
            )
        for requirement in requirements:
            applies = _marker_true(requirement, env, extra)
            if extra and applies and _marker_true(requirement, env, ""):
                continue  # a base requirement, already checked
            if not applies:
                continue
            checked += 1
            for wanted in requirement.extras:
                normal = lib.canonicalize_name(wanted)
                if requirement.key in dists and (requirement.key, normal) not in done:
                    pending.append((requirement.key, normal, dist.label()))
            _check_one(dist, requirement, dists, findings, extra=extra, asked_by=asked_by)
        if not extra:
            _check_python(dist, findings)
    return checked


def _check_one(
    dist: _Dist,
    requirement: Requirement,
    dists: dict[str, _Dist],
    findings: list[dict[str, Any]],
    *,
    extra: str,
    asked_by: str,
) -> None:
    who = dist.label()
    if extra:
        who = "%s [%s] (extra requested by %s)" % (dist.label(), extra, asked_by)
    needed = requirement.display()
    details: dict[str, Any] = {
        "requirement": requirement.text,
        "required_by": dist.label(),
        "extra": extra or None,
    }
    target = dists.get(requirement.key)
    if target is None:
        findings.append(
            _finding(
                dist.key,
                "%s requires %s, which is not installed" % (who, needed),
                "install it (uv pip install '%s'); it was removed after %s was installed, or "
                "%s was installed with --no-deps" % (needed, dist.name, dist.name),
                details,
            )
        )
        return
    if requirement.url or not requirement.specifier:
        return
    details["installed"] = target.version
    try:
        ok = specifier_contains(requirement.specifier, target.version)
    except (ValueError, InvalidVersion):
        return  # an invalid specifier or version: pip cannot judge it either
    if ok:
        return
    findings.append(
        _finding(
            dist.key,
            "%s requires %s, but %s is installed" % (who, needed, target.label()),
            "install a %s that satisfies it (uv pip install '%s'), or a release of %s that "
            "supports %s; the environment was changed after it was resolved (a --no-deps or "
            "forced install, or a second installer)"
            % (target.name, needed, dist.name, target.label()),
            details,
        )
    )


def _check_python(dist: _Dist, findings: list[dict[str, Any]]) -> None:
    requires = (dist.headers().get("requires-python") or [""])[0]
    if not requires:
        return
    here = platform.python_version()
    try:
        ok = specifier_contains(str(requires), here)
    except (ValueError, InvalidVersion):
        return
    if not ok:
        findings.append(
            _finding(
                dist.key,
                "%s requires Python %s, but this interpreter is %s"
                % (dist.label(), requires, here),
                "it was installed for another Python (the interpreter was upgraded in place, or "
                "it was installed with --ignore-requires-python): reinstall %s, or rebuild the "
                "environment" % dist.name,
                {"requires_python": str(requires), "python": here},
            )
        )


def _finding(target: str, message: str, hint: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"target": target, "message": message, "hint": hint, "details": details}


# -- files owned twice ---------------------------------------------------------------------------


def _top_of(path: str, site: str) -> str | None:
    """The top-level module a file under ``site`` belongs to (None: not a module's file)."""
    if not path.startswith(site + os.sep):
        return None
    rel = path[len(site) + 1 :].split(os.sep)
    if len(rel) == 1:
        name: str | None = lib.module_name_of_file(rel[0])
        return name
    return rel[0] if rel[0].isidentifier() else None


def check_shared_files(dists: dict[str, _Dist], findings: list[dict[str, Any]]) -> None:
    """Files two distributions both install with different content, and shadowed modules."""
    owners: dict[str, list[tuple[str, str]]] = {}
    for key in sorted(dists):
        for path, digest in dists[key].files().items():
            if "__pycache__" in path or path.startswith(dists[key].info_dir + os.sep):
                continue
            owners.setdefault(path, []).append((key, digest))
    clashes: dict[tuple[str, str], list[str]] = {}
    for path, found in owners.items():
        if len(found) < 2:
            continue
        for index, (first, first_hash) in enumerate(found):
            for second, second_hash in found[index + 1 :]:
                if first_hash and second_hash and first_hash == second_hash:
                    continue  # the same bytes (an empty namespace __init__.py, say)
                if not (first_hash and second_hash) and os.path.basename(path) == "__init__.py":
                    continue
                clashes.setdefault((first, second), []).append(path)
    for (first, second), paths in sorted(clashes.items()):
        a, b = dists[first], dists[second]
        tops = sorted({t for t in (_top_of(p, a.site) for p in paths) if t})
        findings.append(
            _finding(
                tops[0] if len(tops) == 1 else first,
                "%s and %s both install %d file%s%s with different content (e.g. %s): "
                "whichever was installed last overwrote the other's"
                % (
                    a.label(),
                    b.label(),
                    len(paths),
                    "" if len(paths) == 1 else "s",
                    " of %s" % ", ".join(tops) if tops else "",
                    _short_path(sorted(paths)[0], a.site),
                ),
                "keep one of them (two builds of one project, like opencv-python and "
                "opencv-python-headless, or two projects claiming one import name): uninstall "
                "both, then install the one you want",
                {"distributions": [a.label(), b.label()], "files": sorted(paths)[:20]},
            )
        )
    _check_shadowing(dists, findings)


def _check_shadowing(dists: dict[str, _Dist], findings: list[dict[str, Any]]) -> None:
    """The same top-level name as a module and as a package, or from two site directories."""
    provided: dict[str, list[tuple[str, str, str]]] = {}  # name -> [(key, kind, site)]
    for key in sorted(dists):
        dist = dists[key]
        kinds: dict[str, str] = {}
        for path in dist.files():
            if not dist.site or not path.startswith(dist.site + os.sep):
                continue
            parts = path[len(dist.site) + 1 :].split(os.sep)
            if len(parts) == 1:
                name = lib.module_name_of_file(parts[0])
                if name and name != "__init__":
                    kinds[name] = "module"
            elif len(parts) == 2 and parts[1] == "__init__.py" and parts[0].isidentifier():
                kinds.setdefault(parts[0], "package")
                if kinds[parts[0]] == "module":
                    kinds[parts[0]] = "module+package"
        for name, kind in kinds.items():
            provided.setdefault(name, []).append((key, kind, dist.site))
    for name, found in sorted(provided.items()):
        if len(found) < 2:
            continue
        shapes = {kind for _, kind, _ in found}
        sites = {site for _, _, site in found}
        if len(sites) > 1:
            first = found[0]
            shadowed = [f for f in found[1:] if f[2] != first[2]]
            findings.append(
                _finding(
                    name,
                    "%s in %s shadows %s: import %s only ever finds the first"
                    % (
                        dists[first[0]].label(),
                        first[2],
                        ", ".join("%s in %s" % (dists[k].label(), s) for k, _, s in shadowed),
                        name,
                    ),
                    "two site directories provide the same module: uninstall the copy you do "
                    "not want (PYTHONNOUSERSITE=1 hides the user site)",
                    {"providers": [[dists[k].label(), kind, s] for k, kind, s in found]},
                )
            )
        elif "module" in shapes and ("package" in shapes or "module+package" in shapes):
            findings.append(
                _finding(
                    name,
                    "%s install %s both as a module file and as a package: the package hides "
                    "the module" % (" and ".join(dists[k].label() for k, _, _ in found), name),
                    "two distributions claim the import name %s: keep one of them" % name,
                    {"providers": [[dists[k].label(), kind] for k, kind, _ in found]},
                )
            )


def _short_path(path: str, site: str) -> str:
    if site and path.startswith(site + os.sep):
        return path[len(site) + 1 :]
    return path


# -- conda -----------------------------------------------------------------------------------


def _conda_owned(dist: _Dist, conda_files: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The conda record that installed this distribution, if conda did (INSTALLER agrees)."""
    record = None
    for path in ("METADATA", "PKG-INFO", ""):  # "": an .egg-info that is a single file
        record = conda_files.get(os.path.normpath(os.path.join(dist.info_dir, path)))
        if record is not None:
            break
    if record is None or dist.installer.lower() not in ("conda", ""):
        return None
    return record


def _record_label(record: dict[str, Any]) -> str:
    channel = lib.conda_channel(record)
    return "%s %s%s" % (
        record.get("name"),
        record.get("version"),
        " (%s)" % channel if channel else "",
    )


def _metadata_dirs(record: dict[str, Any]) -> dict[str, str]:
    """canonical distribution name -> metadata directory, for each one a conda record installs."""
    found: dict[str, str] = {}
    for rel in record.get("files") or []:
        if not isinstance(rel, str):
            continue
        parts = rel.replace("\\", "/").split("/")
        for index, part in enumerate(parts[:-1]):
            match = re.match(r"^(.+?)-[^-]+\.(dist-info|egg-info)$", part)
            if match:
                found.setdefault(
                    lib.canonicalize_name(match.group(1)), "/".join(parts[: index + 1])
                )
    return found


def changed_conda_files(
    prefix: str, records: list[dict[str, Any]], hash_all: bool = False
) -> tuple[dict[str, list[str]], int]:
    """``({record file: [paths whose content is no longer conda's]}, files hashed)``.

    Each record's ``paths_data`` gives every file's sha256 and size as conda linked it
    (``sha256_in_prefix`` where the prefix was written into a text file). A file whose size
    differs has changed, with no hashing; one no newer than its record (conda writes the record
    after linking the files) is taken as conda's; only the rest are hashed. ``hash_all`` hashes
    every file (the slow way, to measure the difference).
    """
    changed: dict[str, list[str]] = {}
    hashed = 0
    for record in records:
        paths = (record.get("paths_data") or {}).get("paths") or []
        try:
            meta = os.path.join(prefix, "conda-meta", str(record.get("_record")))
            written = os.stat(meta).st_mtime
        except OSError:
            written = 0.0
        for entry in paths:
            if not isinstance(entry, dict) or entry.get("path_type", "hardlink") != "hardlink":
                continue
            rel = str(entry.get("_path") or "")
            placeholder = bool(entry.get("prefix_placeholder"))
            expected = entry.get("sha256_in_prefix") if placeholder else entry.get("sha256")
            if not rel or not expected or rel.startswith("__clobbers__/"):
                continue
            path = os.path.join(prefix, rel)
            try:
                st = os.stat(path)
            except OSError:
                continue  # a removed file: the dist-info checks name the package
            size = entry.get("size_in_bytes")
            if not placeholder and isinstance(size, int) and st.st_size != size:
                changed.setdefault(str(record.get("_record")), []).append(rel)
                continue
            if st.st_mtime <= written and not hash_all:
                continue
            hashed += 1
            if _sha256_file(path) != expected:
                changed.setdefault(str(record.get("_record")), []).append(rel)
    return changed, hashed


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def _doubled(
    index: lib.DistributionIndex, conda_files: dict[str, dict[str, Any]]
) -> dict[str, tuple[dict[str, Any], str, list[tuple[str, str]]]]:
    """Projects with two dist-infos, one conda's: ``{name: (record, its version, others)}``.

    ``pip install --ignore-installed`` over a conda package leaves both: the new files over
    conda's, conda's dist-info beside pip's. ``others`` are ``(dist-info path, version)``.
    """
    found: dict[str, tuple[dict[str, Any], str, list[tuple[str, str]]]] = {}
    for key, copies in sorted(index.copies.items()):
        if len(copies) < 2:
            continue
        owned = [
            (conda_files.get(os.path.normpath(os.path.join(os.path.realpath(p), "METADATA"))), p, v)
            for p, v in copies
        ]
        mine = [(record, p, v) for record, p, v in owned if record is not None]
        if not mine:
            continue
        # beside conda's dist-info (a copy in another site directory is a shadowing problem)
        site = os.path.dirname(os.path.realpath(mine[0][1]))
        others = [
            (p, v)
            for record, p, v in owned
            if record is None and os.path.dirname(os.path.realpath(p)) == site
        ]
        if others:
            found[key] = (mine[0][0], mine[0][2], others)
    return found


def _installer_of(info_dir: str) -> str:
    try:
        with open(os.path.join(info_dir, "INSTALLER"), encoding="utf-8") as handle:
            return handle.read().strip() or "an installer that left no INSTALLER file"
    except OSError:
        return "an installer that left no INSTALLER file"


def _files_phrase(paths: list[str], site: str) -> str:
    shown = [os.path.relpath(p, site) if site and p.startswith(site) else p for p in paths]
    text = ", ".join(shown[:3]) + (" and %d more" % (len(shown) - 3) if len(shown) > 3 else "")
    return "%s no longer match%s conda's record" % (text, "es" if len(shown) == 1 else "")


def check_conda(
    prefix: str,
    records: list[dict[str, Any]],
    dists: dict[str, _Dist],
    findings: list[dict[str, Any]],
    index: lib.DistributionIndex | None = None,
) -> dict[str, Any]:
    """pip over conda (by dist-info and by content), files changed under conda, removals."""
    prefix = os.path.realpath(prefix)
    conda_files: dict[str, dict[str, Any]] = {}
    real_records = [r for r in records if lib.conda_channel(r) != "pypi"]
    for record in real_records:
        for rel in record.get("files") or []:
            if isinstance(rel, str):
                conda_files.setdefault(os.path.normpath(os.path.join(prefix, rel)), record)
    claims: dict[str, dict[str, Any]] = {}  # canonical dist name -> conda record providing it
    for record in real_records:
        python_files = any(
            isinstance(f, str) and "site-packages/" in f for f in record.get("files") or []
        )
        for name in _metadata_dirs(record):
            claims.setdefault(name, record)
        if python_files:
            claims.setdefault(lib.canonicalize_name(str(record.get("name"))), record)
    pypi_records = {
        lib.canonicalize_name(str(r.get("name"))): r
        for r in records
        if lib.conda_channel(r) == "pypi"
    }
    by_record = {str(r.get("_record")): r for r in real_records}
    changed, hashed = changed_conda_files(prefix, real_records)
    doubled = _doubled(index, conda_files) if index is not None else {}
    pip_installed = []
    for key in sorted(dists):
        dist = dists[key]
        if _conda_owned(dist, conda_files) is not None and key not in doubled:
            continue
        pip_installed.append(dist.label())
        if key in doubled:
            continue  # named below, with what it did to conda's files
        claimed = claims.get(key)
        overwritten: dict[str, list[str]] = {}
        for path in dist.files():
            owner = conda_files.get(path)
            if owner is not None and owner is not claimed:
                overwritten.setdefault(str(owner.get("_record")), []).append(path)
        installer = dist.installer or "an installer that left no INSTALLER file"
        if key in pypi_records:
            installer += " (conda lists it from channel pypi)"
        if claimed is not None:
            gone = [
                rel
                for rel in claimed.get("files") or []
                if isinstance(rel, str) and not os.path.lexists(os.path.join(prefix, rel))
            ]
            findings.append(
                _finding(
                    key,
                    "%s was installed by %s over conda's %s%s: conda still records its own copy "
                    "and will update or remove files it no longer owns"
                    % (
                        dist.label(),
                        installer,
                        _record_label(claimed),
                        "; %d of that package's files are gone" % len(gone) if gone else "",
                    ),
                    "use one installer per package: pip uninstall %s, then conda install "
                    "--force-reinstall %s (or conda install '%s=%s' if that version is "
                    "packaged); install conda packages first and pip only what conda lacks"
                    % (dist.name, claimed.get("name"), claimed.get("name"), dist.version),
                    {
                        "pip": dist.label(),
                        "installer": dist.installer,
                        "conda": _record_label(claimed),
                        "conda_record": claimed.get("_record"),
                        "conda_files_missing": gone[:20],
                    },
                )
            )
        for record_file, paths in sorted(overwritten.items()):
            record = by_record[record_file]
            findings.append(
                _finding(
                    key,
                    "%s (installed by %s) overwrote %d file%s of conda package %s, e.g. %s"
                    % (
                        dist.label(),
                        installer,
                        len(paths),
                        "" if len(paths) == 1 else "s",
                        _record_label(record),
                        os.path.relpath(sorted(paths)[0], prefix),
                    ),
                    "both now claim the same files and removing either breaks the other: "
                    "pip uninstall %s, conda install --force-reinstall %s, and get %s from conda "
                    "(or drop the conda package)" % (dist.name, record.get("name"), dist.name),
                    {
                        "pip": dist.label(),
                        "conda": _record_label(record),
                        "conda_record": record_file,
                        "files": [os.path.relpath(p, prefix) for p in sorted(paths)[:20]],
                    },
                )
            )
    explained: set[str] = set()
    for key, (record, conda_version, others) in sorted(doubled.items()):
        info_dir, version = others[0]
        installer = _installer_of(info_dir)
        name = dists[key].name if key in dists else key
        record_file = str(record.get("_record"))
        files = [
            os.path.join(prefix, rel)
            for rel in changed.get(record_file, [])
            if not os.path.join(prefix, rel).startswith(os.path.realpath(info_dir))
        ]
        explained.add(record_file)
        site = os.path.dirname(os.path.realpath(info_dir))
        findings.append(
            _finding(
                key,
                "%s %s installed by %s over conda's %s %s (`--ignore-installed`): %s; "
                "`conda list` and `pip list` disagree"
                % (
                    name,
                    version,
                    installer,
                    record.get("name"),
                    conda_version,
                    _files_phrase(files, site + os.sep)
                    if files
                    else "both dist-infos remain, the module is %s's" % installer,
                ),
                "use one installer per package: pip uninstall %s (removes %s's copy), then "
                "conda install --force-reinstall %s; or, if %s %s is what you want, get it "
                "from conda (conda install '%s=%s')"
                % (name, installer, record.get("name"), name, version, record.get("name"), version),
                {
                    "pip": "%s %s" % (name, version),
                    "installer": installer,
                    "conda": _record_label(record),
                    "conda_record": record_file,
                    "dist_infos": [p for p, _ in others],
                    "files": [os.path.relpath(p, prefix) for p in files[:20]],
                },
            )
        )
    for record_file, rels in sorted(changed.items()):
        changed_record = by_record.get(record_file)
        if changed_record is None or record_file in explained:
            continue
        findings.append(
            _finding(
                lib.canonicalize_name(str(changed_record.get("name"))),
                "%d file%s of conda package %s changed after conda installed %s (e.g. %s): "
                "the content no longer matches conda's record, and no installer recorded it"
                % (
                    len(rels),
                    "" if len(rels) == 1 else "s",
                    _record_label(changed_record),
                    "it",
                    rels[0],
                ),
                "something wrote into the environment behind conda's back (a tool that keeps no "
                "RECORD, or an edit by hand): conda install --force-reinstall %s restores it"
                % changed_record.get("name"),
                {"conda_record": record_file, "files": rels[:20]},
            )
        )
    for name, record in sorted(claims.items()):
        meta = _metadata_dirs(record).get(name)
        if name in dists or meta is None:
            continue
        if not os.path.isdir(os.path.join(prefix, meta)):
            findings.append(
                _finding(
                    name,
                    "conda package %s is recorded as installed, but its files were removed "
                    "(%s is missing): pip or uv uninstalled it" % (_record_label(record), meta),
                    "reinstall it with conda (conda install --force-reinstall %s) or remove it "
                    "with conda (conda remove %s)" % (record.get("name"), record.get("name")),
                    {"conda_record": record.get("_record"), "missing": meta},
                )
            )
    return {
        "conda_records": len(records),
        "files_hashed": hashed,
        "pip_installed": pip_installed,
        "pypi_channel_records": sorted(pypi_records),
    }


# -- command line ----------------------------------------------------------------------------


def _parser() -> lib.ProbeArgumentParser:
    parser = lib.ProbeArgumentParser(
        prog="consistency_probe.py",
        description="Check installed requirements, file ownership and conda/pip mixing.",
    )
    parser.add_argument("--prefix", default=None, help="environment prefix (default: sys.prefix)")
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="extra site directory, searched first (repeatable)",
    )
    return parser


def main(argv: list[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    prefix = os.path.abspath(args.prefix or sys.prefix)
    paths = lib.search_paths([os.path.abspath(p) for p in args.path])
    index = lib.distribution_index(paths)
    dists: dict[str, _Dist] = {}
    for key in index.versions():
        dist = index.get(key)
        if dist is not None:
            dists[key] = _Dist(key, dist, index)
    env = default_environment()
    found: list[dict[str, Any]] = []
    checked = check_requirements(dists, env, found)
    check_shared_files(dists, found)
    records = lib.conda_records(prefix)
    conda: dict[str, Any] = {}
    if records or os.path.isdir(os.path.join(prefix, "conda-meta")):
        conda = check_conda(prefix, records, dists, found, index)
    elapsed = time.perf_counter() - start
    results = [
        lib.make_result(
            PROBE,
            item["target"],
            "fail",
            category="inconsistent-env",
            message=item["message"],
            hint=item["hint"],
            duration_s=elapsed,
            details=item["details"],
        )
        for item in found
    ]
    if not results:
        message = "%d distributions, %d requirements satisfied, no file installed twice" % (
            len(dists),
            checked,
        )
        if records:
            message += ", conda and pip packages apart (%d conda record%s)" % (
                len(records),
                "" if len(records) == 1 else "s",
            )
        results.append(
            lib.make_result(PROBE, "environment", "pass", message=message, duration_s=elapsed)
        )
    return results, {"conda": conda or None, "distributions": len(dists)}


if __name__ == "__main__":
    sys.exit(lib.run_probe(PROBE, main))
