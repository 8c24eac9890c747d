"""`compat-matrix audit --python PATH --upgrade SPEC`: will this upgrade break what I have?

The question behind `conda update python` or `pip install -U numpy`, answered before anything
is touched. The environment's package set is read (dist-info through the environment's own
interpreter, plus `conda-meta/*.json` in a conda environment), the same set is built with the
upgrade applied in a scratch environment, both environments are probed, and every package gets
a line: its version now and after, and whether it would break (an ABI break found by the
probes), block the upgrade (no distribution for the new Python, or a declared requirement that
excludes it) or have to move for the upgrade to install.

Pins first, then only what must move: every other distribution keeps its exact version, since
"what happens to what I have" is the question. When that cannot be resolved, the packages the
installer names in its explanation are the blockers; each is relaxed one step (`==` -> `>=`
its current version -> any version) and the resolve retried, so the report says both why the
upgrade is blocked and the smallest set of packages that would have to move.

The scratch environment is built with the environment's own kind of installer: a venv (or a
plain interpreter) with uv, because a what-if is interactive and may resolve several times: uv
resolves in about a second and hardlinks files from its cache, where pip re-resolves and copies
for half a minute per try, with the same PEP 440 and wheel-tag rules. A conda environment is
rebuilt with conda's own solver engine (rattler, built in; micromamba where py-rattler is
missing) from the environment's channels, since its packages (and the new Python itself) come
from conda channels, not PyPI. The real environment is only read: no installer ever points at
it, and its probes run without writing bytecode.

The package follows the question's steps: `upgrade` (the `--upgrade` syntax), `snapshot`
(reading the environment), `resolve` (pins and the resolve-and-relax loop), `answer` (each
package now and after), `render` (compat.md and the terminal summary); this module runs them.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from compat_matrix.build import pythons
from compat_matrix.build.backends import (
    EnvRequest,
    PreparedEnv,
    get_backend,
    package_index,
    parse_lock,
)
from compat_matrix.build.conda import rattler_available
from compat_matrix.build.install_errors import InstallFailure
from compat_matrix.build.requirements import conda_python_specs
from compat_matrix.errors import UsageError
from compat_matrix.matrix.model import PROBES
from compat_matrix.probe.verdicts import Verdict
from compat_matrix.reports import write_reports
from compat_matrix.results import CellResult, write_atomic, write_cell_result
from compat_matrix.run.audit import environment_name, probe_into_result
from compat_matrix.run.cell import cell_result
from compat_matrix.run.hints import HintContext, checked_hint
from compat_matrix.run.whatif.answer import (
    PackageChange,
    WhatIfResult,
    _changes,
    _failures_by_package,
    _Outcome,
)
from compat_matrix.run.whatif.render import _markdown, format_summary
from compat_matrix.run.whatif.resolve import (
    ResolveAttempt,
    _conda_channels,
    _conda_pins,
    _conda_request,
    _Pin,
    _pins,
    _resolve,
)
from compat_matrix.run.whatif.smallest import Search, pinned, smallest_changes
from compat_matrix.run.whatif.snapshot import (
    CondaRecord,
    Installed,
    Snapshot,
    read_conda_meta,
    read_environment,
)
from compat_matrix.run.whatif.upgrade import _UNSAFE, Upgrade, parse_upgrade

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from compat_matrix.build.backends import EnvBackend

__all__ = [
    "CondaRecord",
    "Installed",
    "PackageChange",
    "ResolveAttempt",
    "Snapshot",
    "Upgrade",
    "WhatIfResult",
    "format_summary",
    "parse_upgrade",
    "read_conda_meta",
    "read_environment",
    "what_if",
]


# --- the what-if --------------------------------------------------------------------------------


def _target_interpreter(snapshot: Snapshot, upgrades: Sequence[Upgrade]) -> pythons.Interpreter:
    wanted = next((u for u in upgrades if u.name == "python"), None)
    if wanted is None:
        major, minor, micro = (int(p) for p in re.findall(r"\d+", snapshot.version)[:3])
        return pythons.Interpreter(
            path=snapshot.base_executable,
            version=snapshot.version,
            version_info=(major, minor, micro),
            implementation=snapshot.implementation,
            free_threaded=snapshot.free_threaded,
            abi=snapshot.abi,
            source="env",
        )
    found = pythons.discover()
    interpreter = pythons.select(found, wanted.python)
    if interpreter is None:
        msg = (
            f"--upgrade {wanted.text}: {pythons.describe_missing(found, wanted.python)}; "
            f"install it (uv python install {wanted.python}, pyenv install {wanted.python}) "
            "or name it in COMPAT_PYTHONS"
        )
        raise UsageError(msg)
    return interpreter


def _uv_request(
    interpreter: pythons.Interpreter, source_built: Sequence[str]
) -> Callable[[dict[str, _Pin]], EnvRequest]:
    def make(pins: dict[str, _Pin]) -> EnvRequest:
        requirements = tuple(p.requirement() for p in pins.values())
        return EnvRequest(interpreter, requirements, True, tuple(source_built))

    return make


@dataclass(frozen=True)
class _Plan:
    """Everything decided before building: ids, axes, the interpreter, where the env goes."""

    snapshot: Snapshot
    upgrades: tuple[Upgrade, ...]
    interpreter: pythons.Interpreter | None  # None for a conda environment
    target_python: str
    current_id: str
    upgraded_id: str
    env_name: str

    @property
    def text(self) -> str:
        return " ".join(u.text for u in self.upgrades)

    @property
    def requested(self) -> set[str]:
        return {u.name for u in self.upgrades if u.name != "python"}


def _plan(python: Path, upgrades: Sequence[str]) -> _Plan:
    if not upgrades:
        msg = "--upgrade needs at least one value (python=3.12, numpy=2, ...)"
        raise UsageError(msg)
    parsed = tuple(parse_upgrade(text) for text in upgrades)
    names = [u.name for u in parsed]
    if len(set(names)) != len(names):
        msg = f"--upgrade names a package twice: {', '.join(upgrades)}"
        raise UsageError(msg)
    snapshot = read_environment(python)
    interpreter = None if snapshot.is_conda else _target_interpreter(snapshot, parsed)
    # A conda environment keeps its exact Python unless asked (python==3.11.7, not 3.11.*).
    wanted = next((u.python for u in parsed if u.name == "python"), snapshot.version)
    target = interpreter.tag if interpreter is not None else wanted
    env_name = environment_name(python)
    labels = [u.label for u in parsed if u.name != "python"]
    target_xy = ".".join(target.rstrip("t").split(".")[:2]) + ("t" if target.endswith("t") else "")
    return _Plan(
        snapshot=snapshot,
        upgrades=parsed,
        interpreter=interpreter,
        target_python=target,
        current_id=f"audit-py{'.'.join(snapshot.version.split('.')[:2])}-{env_name}",
        upgraded_id=_UNSAFE.sub("_", "-".join(["whatif", f"py{target_xy}", *labels, env_name])),
        env_name=env_name,
    )


def what_if(
    python: Path,
    upgrades: Sequence[str],
    report_dir: Path,
    *,
    timeout: float = 900.0,
    probes: Sequence[str] = PROBES,
    imports: Sequence[str] | None = None,
    env_dir: Path | None = None,
) -> WhatIfResult:
    """Answer "what if I upgraded `upgrades` in the environment of `python`?" without touching it.

    Probes the environment as it is and a scratch copy with the upgrades applied (built in
    `env_dir`, default `report_dir/.whatif-env/<id>`: hidden, so CI artifact uploads skip it,
    and reused on a rerun), writes both cells and the reports into `report_dir` (the package
    table at the top of compat.md, the whole answer in whatif.json), and returns the answer.
    `timeout` applies to each environment. Raises UsageError for a bad `--upgrade` value, a
    missing interpreter, or a `python=X.Y` that no interpreter on this machine provides.
    """
    plan = _plan(python, upgrades)
    snapshot = plan.snapshot
    current, top_now = probe_into_result(
        python,
        report_dir,
        cell_id=plan.current_id,
        axes={"environment": plan.env_name, "python": snapshot.version, "upgrade": "none"},
        probes=probes,
        imports=imports,
        deadline=time.monotonic() + timeout,
    )
    write_cell_result(report_dir, current)

    notes: dict[str, str] = {}
    backend, make, pins = _scratch_build(plan, notes)
    envdir = env_dir or report_dir / ".whatif-env" / plan.upgraded_id
    started = time.monotonic()
    env: PreparedEnv | None = None
    attempts: list[ResolveAttempt] = []
    env, attempts = _resolve(backend, envdir, make, pins, started + timeout)
    failure: InstallFailure | None = env.failure
    found = None
    if failure is None and plan.interpreter is not None and _relaxed(pins):
        found = _smallest_change(
            plan,
            backend,
            envdir,
            make,
            pins=pins,
            attempts=attempts,
            report_dir=report_dir,
            notes=notes,
            started=started,
            timeout=timeout,
            probes=probes,
            imports=imports,
        )
        if found is None:  # a trial replaced the environment: back to the installer's choice
            env = backend.prepare(envdir, make(pins), timeout=started + timeout - time.monotonic())
            failure = env.failure
    if found is not None:
        pins, (upgraded, top_after, outcome) = found[0], found[1]
    else:
        upgraded, top_after, outcome = _upgraded_cell(
            plan,
            env,
            failure,
            attempts,
            report_dir,
            build_s=time.monotonic() - started,
            probes=probes,
            imports=imports,
            timeout=timeout,
        )
    # A suggested fix is resolved against the upgraded set's own pins before it is shown.
    context = HintContext(make(pins)) if env is not None and failure is None else None
    if context is not None:
        upgraded.hint = checked_hint(upgraded, context)
    write_cell_result(report_dir, upgraded)
    result = WhatIfResult(
        python=python,
        upgrades=plan.upgrades,
        current=current,
        upgraded=upgraded,
        packages=_changes(
            {**snapshot.versions(), "python": snapshot.version},
            outcome,
            pins=pins,
            requested={u.name for u in plan.upgrades},
            failing_now=_failures_by_package(current, top_now),
            failing_after=_failures_by_package(upgraded, top_after),
            context=context,
            resolved=upgraded.resolved,
        ),
        attempts=tuple(attempts),
        notes=notes,
        how=notes.pop("smallest change", ""),
    )
    write_atomic(report_dir / "whatif.json", json.dumps(result.to_dict(), indent=2) + "\n")
    result.reports = write_reports(
        report_dir,
        f"what-if {plan.text} for {python}",
        [current, upgraded],
        preamble=_markdown(result),
    )
    return result


def _upgraded_cell(
    plan: _Plan,
    env: PreparedEnv | None,
    failure: InstallFailure | None,
    attempts: Sequence[ResolveAttempt],
    report_dir: Path,
    *,
    build_s: float,
    probes: Sequence[str],
    imports: Sequence[str] | None,
    timeout: float,
) -> tuple[CellResult, dict[str, list[str]], _Outcome]:
    """The upgraded environment's cell: probed when it was built, else its install failure."""
    cell_id = plan.upgraded_id
    axes = {"environment": plan.env_name, "python": plan.target_python, "upgrade": plan.text}
    lock_rel = f"locks/{cell_id}.txt"
    write_atomic(report_dir / lock_rel, env.lock_text if env is not None else "")
    what = "wheel" if plan.interpreter is not None else "conda build"
    if env is not None and failure is None:
        upgraded, top_level = probe_into_result(
            env.python,
            report_dir,
            cell_id=cell_id,
            axes=axes,
            probes=probes,
            imports=imports,
            deadline=time.monotonic() + timeout,
            build_s=build_s,
            lock=lock_rel,
            read_only=False,  # the scratch environment is ours
        )
        # The lock names conda's non-Python packages too; the probe, what imports really see.
        after: dict[str, str] = {
            str(canonicalize_name(k)): v for k, v in parse_lock(env.lock_text).items()
        }
        after.update(upgraded.resolved)
        if upgraded.python is not None:
            after["python"] = upgraded.python.version
        return upgraded, top_level, _Outcome(after, None, frozenset(), plan.target_python, what)
    assert failure is not None  # noqa: S101 - env is None only with a failure
    write_atomic(report_dir / "logs" / f"{cell_id}.log", env.log if env is not None else "")
    blamed = frozenset(attempts[-1].blamed) if attempts else frozenset()
    hint = failure.hint
    if blamed:
        hint = f"blocked by {', '.join(sorted(blamed))} whatever their version; {hint}"
    upgraded = cell_result(
        cell_id,
        axes,
        Verdict(failure.status, failure.category, failure.message, hint),
        durations={"build": round(build_s, 3), "probes": 0.0},
        lock=lock_rel,
    )
    return upgraded, {}, _Outcome(None, failure, blamed, plan.target_python, what)


#: Candidates built and probed before falling back to the installer's choice.
MAX_PROBED = 3


def _relaxed(pins: dict[str, _Pin]) -> bool:
    return any(pin.blocked is not None for pin in pins.values())


def _smallest_change(
    plan: _Plan,
    backend: EnvBackend,
    envdir: Path,
    make: Callable[[dict[str, _Pin]], EnvRequest],
    *,
    pins: dict[str, _Pin],
    attempts: Sequence[ResolveAttempt],
    report_dir: Path,
    notes: dict[str, str],
    started: float,
    timeout: float,
    probes: Sequence[str],
    imports: Sequence[str] | None,
) -> tuple[dict[str, _Pin], tuple[CellResult, dict[str, list[str]], _Outcome]] | None:
    """The smallest change that resolves and passes the probes (see smallest.py), built and
    probed; None when none was found within the caps, and then notes say why."""
    assert plan.interpreter is not None  # noqa: S101 - only for uv environments
    search = Search()
    deadline = started + timeout
    probed = 0
    for candidate in smallest_changes(
        pins, make, plan.interpreter, index=package_index(), deadline=deadline, search=search
    ):
        trial_pins = pinned(pins, candidate)
        env = backend.prepare(envdir, make(trial_pins), timeout=deadline - time.monotonic())
        if env.failure is not None:
            continue
        probed += 1
        cell = _upgraded_cell(
            plan,
            env,
            None,
            attempts,
            report_dir,
            build_s=time.monotonic() - started,
            probes=probes,
            imports=imports,
            timeout=timeout,
        )
        if cell[0].status == "pass":
            notes["smallest change"] = search.how(candidate, plan.target_python, probed=True)
            return trial_pins, cell
        if probed >= MAX_PROBED or time.monotonic() >= deadline:
            search.capped = search.capped or f"stopped after {probed} probed candidates"
            break
    tried = f"{search.resolves} resolve{'s' if search.resolves != 1 else ''}, {probed} probed"
    notes["smallest change"] = (
        f"no smaller change found that resolves and passes ({tried}"
        + (f"; {search.cap_note()}" if search.cap_note() else "")
        + "): the installer's own (newest) versions are shown"
    )
    return None


def _scratch_build(
    plan: _Plan, notes: dict[str, str]
) -> tuple[EnvBackend, Callable[[dict[str, _Pin]], EnvRequest], dict[str, _Pin]]:
    """The backend, request builder and pins of the upgraded set, by kind of environment."""
    snapshot = plan.snapshot
    if plan.interpreter is not None:
        pins, source_built = _pins(snapshot.distributions, plan.upgrades, notes)
        return get_backend("uv"), _uv_request(plan.interpreter, source_built), pins
    pins, conda_names, source_built = _conda_pins(snapshot, plan.upgrades, notes)
    python = conda_python_specs(plan.target_python)
    channels = _conda_channels(snapshot.conda or ())
    make = _conda_request(python, conda_names, channels, source_built)
    # rattler (built in) where py-rattler is installed, else a micromamba binary.
    return get_backend("conda" if rattler_available() else "micromamba"), make, pins
