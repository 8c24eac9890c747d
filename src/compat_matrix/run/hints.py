"""Hints checked before they are printed: a fix the resolver refuses is never suggested.

A probe's hint is written inside the cell's environment, where nothing knows the packages'
declared requirements or what the index offers. After the verdict, `checked_hint` resolves
every requirement a hint suggests (`pin numpy<2`, `upgrade numpy>=2.0`, a finding's structured
`details["fix"]`) together with the cell's other requirements, with `uv pip compile` for the
cell's Python: a suggestion that resolves says "(verified: resolves)", one the resolver refuses
is dropped, and one that could not be checked says "(unverified)". "Build from source" stays
only when a source distribution exists. An import of a submodule that a declared dependency
only added later (numpy.exceptions in numpy 1.25) is named as such, with the lower bound that
fixes it. `checked_failure` does the same for a cell that did not install (typos,
Requires-Python, clashing pins; see `install_errors.refine_install_failure`).

A verified suggestion that is a range (`pin numpy<2`, `upgrade numpy>=2.0`) also names the
smallest change inside it: the release nearest the installed one that resolves with the cell's
other pins ("pin numpy<2 — smallest change: numpy 1.26.4"), since an installer given the range
would take the newest.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from compat_matrix.build.backends import package_index, resolve
from compat_matrix.build.install_errors import InstallFailure, Resolution, refine_install_failure
from compat_matrix.build.package_index import IndexUnavailable, PackageIndex, Project, ReleaseFile

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from compat_matrix.build.backends import EnvRequest
    from compat_matrix.results import CellResult, ProbeResult

__all__ = [
    "HintContext",
    "check_text",
    "checked_failure",
    "checked_hint",
    "first_release_with",
    "module_added_hint",
    "with_checked_hint",
]

VERIFIED = "(verified: resolves)"
UNVERIFIED = "(unverified)"
#: What suggests a requirement in a hint: "pin numpy<2", "upgrade numpy>=2.0", "e.g. x==1".
_SUGGESTION = re.compile(
    r"(?:\b(?:pin|install|upgrade(?: to)?|downgrade(?: to)?|use|raise the lower bound to|e\.g\.)"
    r"\s+|\()`?(?P<req>[A-Za-z][A-Za-z0-9._-]*(?:\[[\w,-]+\])?\s*"
    r"(?:==|>=|<=|~=|!=|<|>)\s*\d[\w.*+!]*(?:\s*,\s*(?:==|>=|<=|~=|!=|<|>)\s*\d[\w.*+!]*)*)"
)
#: Alternatives within a hint's advice.
_ALTERNATIVES = re.compile(r";\s+|,?\s+or\s+(?=[a-z])")
_SOURCE_BUILD = re.compile(r"only-binary: false|from source|source build", re.IGNORECASE)
#: Seconds the checks of one cell may take at most.
_BUDGET_S = 120.0


@dataclass(frozen=True)
class HintContext:
    """What checking a cell's hint needs: what was installed, for which Python, and a budget."""

    request: EnvRequest
    #: `time.monotonic()` by which the checks give up (they then say "unverified").
    deadline: float = field(default_factory=lambda: time.monotonic() + _BUDGET_S)
    index: PackageIndex | None = None

    def package_index(self) -> PackageIndex:
        return self.index or package_index(self.request.index_urls, self.request.index_url)

    def resolve(self, requirements: Sequence[str]) -> Resolution:
        remaining = min(self.deadline - time.monotonic(), _BUDGET_S)
        return resolve(requirements, self.request, timeout=remaining)

    def resolve_with(self, suggested: Sequence[str]) -> Resolution:
        """Resolve the cell's requirements with each of `suggested` replacing its name's."""
        names = {_name(r): r for r in suggested if _name(r)}
        changed = [
            names.pop(_name(r), r) if _name(r) in names else r for r in self.request.requirements
        ]
        return self.resolve([*changed, *names.values()])


def _name(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return ""


def checked_failure(failure: InstallFailure, context: HintContext) -> InstallFailure:
    """A cell's install failure, completed by the index: typos become `error`
    (no-such-package, no-such-version) and hints name a release that resolves; never raises.

    Only for a matrix's own requirements (what a person typed): what-if's pins of a whole
    environment are not typos, so it keeps the installer's classification.
    """
    interpreter = context.request.interpreter
    if interpreter is None:
        return failure
    try:
        return refine_install_failure(
            failure,
            context.request.requirements,
            interpreter.version + ("t" if interpreter.free_threaded else ""),
            only_binary=context.request.only_binary,
            index=context.package_index(),
            resolve=context.resolve,
        )
    except Exception:  # noqa: BLE001 - a hint check must never cost the cell its verdict
        return failure


def checked_hint(result: CellResult, context: HintContext) -> str:
    """The hint to print for `result`, every suggested fix checked; never raises.

    Only `fail` cells are rewritten: a cell that did not install goes through
    `checked_failure`, and a passing cell has no hint.
    """
    if result.status != "fail" or not result.hint:
        return result.hint
    try:
        finding = _leading_finding(result)
        if finding is not None and finding.category == "import-error":
            added = module_added_hint(finding, result.resolved, context)
            if added:
                return added
        return _check_text(result, finding, context)
    except Exception:  # noqa: BLE001 - a hint check must never cost the cell its verdict
        return result.hint


def with_checked_hint(result: CellResult, context: HintContext) -> CellResult:
    """`result` with its hint checked, and the finding that gave it the same hint: a report
    never shows the checked hint beside the unchecked one it replaced."""
    hint = checked_hint(result, context)
    if hint == result.hint:
        return result
    probes = [
        dataclasses.replace(p, hint=hint) if p.status == "fail" and p.hint == result.hint else p
        for p in result.probes
    ]
    return dataclasses.replace(result, hint=hint, probes=probes)


def _leading_finding(result: CellResult) -> ProbeResult | None:
    """The finding whose hint became the cell's hint."""
    return next(
        (p for p in result.probes if p.status == "fail" and p.hint == result.hint),
        None,
    )


def _fix_requirements(fix: object) -> tuple[list[str], str]:
    if not isinstance(fix, dict):
        return [], ""
    requirements = [str(r) for r in fix.get("requirements") or () if _name(str(r))]
    return requirements, str(fix.get("summary") or "")


def _check_text(result: CellResult, finding: ProbeResult | None, context: HintContext) -> str:
    fix = finding.details.get("fix") if finding is not None else None
    return check_text(result.hint, result.resolved, context, fix=fix)


def check_text(
    hint: str, resolved: Mapping[str, str], context: HintContext, *, fix: object = None
) -> str:
    """`hint` with each suggested requirement resolved first: refused ones dropped, the rest
    marked "(verified: resolves)" or "(unverified)"; `fix` is a finding's `details["fix"]`.

    `resolved` (the installed versions) tells which release a "build from source" is about.
    """
    if not hint:
        return hint
    structured, summary = _fix_requirements(fix)
    if structured:
        outcome = context.resolve_with(structured).ok
        if outcome is False:
            return _refused(_explanation(hint, 0))
        text = summary or hint
        if outcome:
            text += _smallest_note(structured, text, resolved, context)
        return f"{text} {VERIFIED if outcome else UNVERIFIED}"
    first = _SUGGESTION.search(hint)
    source = _SOURCE_BUILD.search(hint)
    if first is None and source is None:
        return f"{hint} {UNVERIFIED}"
    start = min(m.start() for m in (first, source) if m is not None)
    explanation = _explanation(hint, start)
    advice = hint[len(explanation) :]
    kept: list[str] = []
    for alternative in _alternatives(advice):
        if not alternative.strip():
            continue
        suggested = [re.sub(r"\s+", "", m.group("req")) for m in _SUGGESTION.finditer(alternative)]
        verdicts = [context.resolve_with([req]).ok for req in suggested]
        if _SOURCE_BUILD.search(alternative):
            verdicts.append(_sdist_exists(alternative, resolved, context))
        if any(v is False for v in verdicts):
            continue
        check = VERIFIED if verdicts and all(verdicts) else UNVERIFIED
        note = (
            _smallest_note(suggested, alternative, resolved, context) if check == VERIFIED else ""
        )
        kept.append(f"{alternative.strip()}{note} {check}")
    if not kept:
        return _refused(explanation)
    return explanation + ", or ".join(kept)


#: Releases tried (nearest first) when naming the smallest change inside a suggested range.
_SMALLEST_CHECKS = 3


def _smallest_note(
    suggested: Sequence[str], text: str, resolved: Mapping[str, str], context: HintContext
) -> str:
    """ " — smallest change: numpy 1.26.4" for the first suggested range that excludes the
    installed release, or "" (an exact pin, one already named, or nothing that resolves)."""
    pinned = {_name(r) for r in suggested if "==" in r}
    for requirement in suggested:
        name = _name(requirement)
        if not name or name in pinned or "==" in requirement:
            continue
        version = _smallest_release(Requirement(requirement), resolved, context)
        if version is not None and f"{name}=={version}" not in text.replace(" ", ""):
            return f" — smallest change: {name} {version}"
    return ""


def _smallest_release(
    requirement: Requirement, resolved: Mapping[str, str], context: HintContext
) -> str | None:
    """The release inside `requirement` nearest the installed one that resolves, if any."""
    name = canonicalize_name(requirement.name)
    installed = next((v for n, v in resolved.items() if canonicalize_name(n) == name), None)
    try:
        now = Version(installed) if installed else None
        project = context.package_index().project(name) if now is not None else None
    except (IndexUnavailable, InvalidVersion):
        return None
    if now is None or project is None or requirement.specifier.contains(now, prereleases=True):
        return None
    releases = [v for v in project.versions() if not v.is_prerelease]
    position = {v: i for i, v in enumerate(sorted({*releases, now}))}
    inside = [v for v in releases if requirement.specifier.contains(v)]
    inside.sort(key=lambda v: (abs(position[v] - position[now]), -position[v]))
    for version in inside[:_SMALLEST_CHECKS]:
        if time.monotonic() >= context.deadline:
            return None
        if context.resolve_with([f"{name}=={version}"]).ok:
            return str(version)
    return None


def _alternatives(advice: str) -> list[str]:
    """The advice split at "; " and " or ", except inside parentheses ("(e.g. A or B)")."""
    parts, start = [], 0
    for match in _ALTERNATIVES.finditer(advice):
        before = advice[: match.start()]
        if before.count("(") > before.count(")"):
            continue
        parts.append(advice[start : match.start()])
        start = match.end()
    parts.append(advice[start:])
    return parts


def _explanation(hint: str, advice_start: int) -> str:
    """The part of a hint before its advice: up to the last ': ' before `advice_start`."""
    cut = hint.rfind(": ", 0, advice_start)
    return hint[: cut + 2] if cut >= 0 else ""


def _refused(explanation: str) -> str:
    prefix = explanation.rstrip().rstrip(":")
    text = (
        "no change of these pins is offered: the one that would fix this conflicts with the "
        "packages' declared requirements (checked with the resolver)"
    )
    return f"{prefix}: {text}" if prefix else text


def _sdist_exists(
    alternative: str, resolved: Mapping[str, str], context: HintContext
) -> bool | None:
    """Whether the installed release of a distribution the advice names has an sdist."""
    words = {canonicalize_name(w) for w in re.findall(r"[A-Za-z][\w.-]*", alternative)}
    names = [name for name in resolved if canonicalize_name(name) in words]
    if not names:
        return None
    try:
        for name in names:
            project = context.package_index().project(name)
            if project is None:
                return False
            version = Version(resolved[name])
            if not any(not f.is_wheel for f in project.files_of(version)):
                return False
    except (IndexUnavailable, InvalidVersion):
        return None
    return True


# -- a submodule a dependency added later -----------------------------------------------------


def _display(version: Version) -> str:
    """1.25.0 -> 1.25 (a lower bound reads better without trailing zeros)."""
    release = list(version.release)
    while len(release) > 2 and release[-1] == 0:
        release.pop()
    return ".".join(str(part) for part in release)


def _a_wheel(project: Project, version: Version) -> ReleaseFile | None:
    wheels = [f for f in project.files_of(version) if f.is_wheel]
    pure = [f for f in wheels if "none-any" in f.filename]
    linux = [
        f
        for f in wheels
        if any("linux" in tag.platform for tag in parse_wheel_filename(f.filename)[3])
    ]
    choice = pure or linux or wheels
    return choice[0] if choice else None


def _has_module(
    index: PackageIndex, project: Project, version: Version, module: str
) -> bool | None:
    wheel = _a_wheel(project, version)
    return None if wheel is None else module in index.wheel_modules(wheel)


def first_release_with(
    index: PackageIndex, project: Project, module: str, after: Version
) -> Version | None:
    """The first final release after `after` whose wheels ship `module` (bisected).

    Assumes a module, once added, stays: the releases between are not all read.
    """
    candidates = [
        v for v in project.versions() if v > after and not v.is_prerelease and _a_wheel(project, v)
    ]
    if not candidates or not _has_module(index, project, candidates[-1], module):
        return None
    low, high = 0, len(candidates) - 1
    while low < high:
        middle = (low + high) // 2
        if _has_module(index, project, candidates[middle], module):
            high = middle
        else:
            low = middle + 1
    return candidates[low]


def module_added_hint(
    finding: ProbeResult, resolved: dict[str, str], context: HintContext
) -> str | None:
    """ "mypkg imports numpy.exceptions, added in numpy 1.25; numpy 1.24.4 is installed: ...".

    For an import error on `pkg.sub` where the installed `pkg` lacks `sub` and a later
    release ships it; None when that is not the cause (or it cannot be told).
    """
    missing = str(finding.details.get("missing_module") or "")
    if "." not in missing:
        return None
    top = missing.split(".", 1)[0]
    importer = finding.target.split(".", 1)[0]
    if canonicalize_name(top) == canonicalize_name(importer):
        return None  # a package missing its own submodule is incomplete, not outdated
    installed_name = next(
        (n for n in resolved if canonicalize_name(n) == canonicalize_name(top)), ""
    )
    if not installed_name:
        return None
    try:
        installed = Version(resolved[installed_name])
        index = context.package_index()
        project = index.project(installed_name)
        if project is None or _has_module(index, project, installed, missing) is not False:
            return None
        first = first_release_with(index, project, missing, installed)
    except (IndexUnavailable, InvalidVersion):
        return None
    if first is None:
        return None
    bound = f"{installed_name}>={_display(first)}"
    outcome = context.resolve_with([bound]).ok
    head = (
        f"{importer} imports {missing}, added in {installed_name} {_display(first)}; "
        f"{installed_name} {installed} is installed"
    )
    if outcome is False:
        return f"{head}: {_refused('')}"
    check = VERIFIED if outcome else UNVERIFIED
    return f"{head}: raise {importer}'s lower bound to {bound} {check}"
