"""Run one cell end to end: interpreter -> environment -> probes -> verdict -> cells/<id>.json.

Whatever happens inside (a crashing probe, a hanging import, a harness bug) the cell ends with a
result on disk, written atomically, so one cell can never cost the others theirs.

The `cuda` axis goes through the CUDA table (`cuda.py`) before anything is installed: it picks
the framework builds and runtime wheels (or conda specs and CONDA_OVERRIDE_CUDA), and a
combination the table says has no build is `unsupported` without a download.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compat_matrix import children
from compat_matrix.build import pythons
from compat_matrix.build.backends import (
    DEFAULT_CHANNELS,
    EnvRequest,
    conda_lock_records,
    find_uv,
    get_backend,
    parse_lock,
    source_digest,
    used_indexes,
)
from compat_matrix.build.cuda import CudaPlan, cuda_resolved, plan_cell
from compat_matrix.build.foreign import foreign_target, resolve_and_download, wheel_probe_args
from compat_matrix.build.platforms import other_platform_reason
from compat_matrix.build.requirements import (
    NOT_PACKAGES,
    conda_python_specs,
    conda_requirements,
    local_names,
    local_sources,
    package_names,
    requirements_for,
    source_built,
    value_kind,
)
from compat_matrix.errors import MatrixError
from compat_matrix.matrix.cuda_table import table_for
from compat_matrix.matrix.gpus import gpu_argument
from compat_matrix.probe.gpu_device import device_agreement
from compat_matrix.probe.runner import run_probe, run_probe_set
from compat_matrix.probe.verdicts import Verdict, cell_verdict, expectation_outcome
from compat_matrix.results import (
    CellResult,
    ProbeResult,
    read_cell_result,
    write_atomic,
    write_cell_result,
)
from compat_matrix.run.hints import HintContext, checked_failure, with_checked_hint

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from compat_matrix.matrix.model import Cell, Matrix
    from compat_matrix.probe.runner import ProbeRun
    from compat_matrix.results import ExpectationOutcome, PythonInfo

__all__ = [
    "BackendSettings",
    "RunSettings",
    "backend_settings",
    "cell_fingerprint",
    "cell_result",
    "default_imports",
    "gpu_arch_args",
    "missing_result",
    "probe_environment",
    "run_cell",
    "unreadable_result",
]

#: Installer tooling that is part of every venv, not of the cell's answer.
_TOOLING = frozenset({"pip", "setuptools", "wheel"})
#: Per-import cap, so one hanging import cannot eat the whole cell budget.
_IMPORT_TIMEOUT_S = 300.0
#: Beside the environments: each cell's kept probe answers (probes/_answers.py), outside the
#: environment, whose every file they are stamped with.
ANSWERS_FOLDER = ".answers"
#: Backends whose cells are conda environments that bring their own Python.
_CONDA_BACKENDS = ("conda", "micromamba")
#: conda packages worth a `resolved` entry besides the axes: the Python and the CUDA toolkit.
_CONDA_RESOLVED = ("python", "cuda-version", "cuda-cudart", "cudatoolkit", "cudnn", "nccl")


@dataclass(frozen=True)
class BackendSettings:
    """The matrix keys for micromamba and CUDA: `channels:`, `pip:`, `cuda-table:`."""

    #: micromamba channels, highest priority first.
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    #: Distributions a micromamba cell installs with pip after the conda solve.
    pip: tuple[str, ...] = ()
    #: A CUDA table file extending the built-in one (absolute).
    cuda_table: Path | None = None


def backend_settings(matrix: Matrix) -> BackendSettings:
    """The matrix's `channels`, `pip` and `cuda_table` fields, as the backends take them."""
    return BackendSettings(
        channels=matrix.channels or DEFAULT_CHANNELS, pip=matrix.pip, cuda_table=matrix.cuda_table
    )


@dataclass(frozen=True)
class RunSettings:
    report_dir: Path
    env_root: Path
    resume: bool = False
    #: Seconds an unchanged cell's lock is reused without resolving (`--lock-max-age`).
    lock_max_age: float = 0.0
    #: Whether kept answers of the file-reading probes may be used (not `--reprobe`).
    reuse_answers: bool = False


def cell_result(
    cell_id: str,
    axes: Mapping[str, str],
    verdict: Verdict,
    *,
    python: PythonInfo | None = None,
    resolved: Mapping[str, str] | None = None,
    probes: Sequence[ProbeResult] = (),
    durations: Mapping[str, float] | None = None,
    lock: str | None = None,
    expectation: ExpectationOutcome | None = None,
    static_only: bool = False,
    indexes: Sequence[str] = (),
) -> CellResult:
    """The one way a CellResult is made: a verdict plus what the cell found out on the way.

    Every path (an installed cell, an install failure, a skip, a harness bug, a missing cell,
    `audit`) goes through here, so a field added to `Verdict` reaches every result at once.
    """
    return CellResult(
        id=cell_id,
        axes=dict(axes),
        status=verdict.status,
        category=verdict.category,
        message=verdict.message,
        hint=verdict.hint,
        python=python,
        resolved=dict(resolved or {}),
        # The findings as the verdict judged them (latent ones re-labelled), unless given.
        probes=list(probes or verdict.probes),
        durations=dict(durations) if durations is not None else {"build": 0.0, "probes": 0.0},
        lock=lock,
        expectation=expectation,
        gpu_unverified=verdict.gpu_unverified,
        indexes=list(indexes),
        latent=verdict.latent,
        static_only=static_only,
    )


def missing_result(matrix: Matrix, cell: Cell) -> CellResult:
    """The result of a selected cell that wrote none (its job or session ended first)."""
    return cell_result(
        cell.id,
        cell.axes,
        Verdict(
            "error",
            "missing",
            "no result for this cell: its job or nox session ended before writing one",
            "see the job's log, then re-run the job",
        ),
        expectation=expectation_outcome(matrix.expect, cell.axes, "error"),
    )


def unreadable_result(
    cell_id: str,
    axes: Mapping[str, str],
    path: Path,
    reason: str,
    *,
    expectation: ExpectationOutcome | None = None,
) -> CellResult:
    """The result of a cell whose file exists but cannot be read: an error, never dropped."""
    return cell_result(
        cell_id,
        axes,
        Verdict(
            "error",
            "unreadable-result",
            f"the cell's result file {path} could not be read ({reason})",
            "rerun this cell: its result file was cut short or damaged (a full disk, an "
            "interrupted copy or an edit)",
        ),
        expectation=expectation,
    )


def _axis_distributions(cell: Cell) -> list[str]:
    return [
        name
        for name, value in cell.axes.items()
        if name not in NOT_PACKAGES and value_kind(value) != "none"
    ]


def _target_distributions(matrix: Matrix, cell: Cell) -> list[str]:
    """The axis distributions, then the project(s) under test in `packages:`."""
    names = _axis_distributions(cell)
    names += [n for n in package_names(matrix.packages, matrix.base_dir) if n not in names]
    return names


def sources_digest(matrix: Matrix, cell: Cell) -> str:
    """Content hash of the cell's local projects ("" when it has none): a changed file reruns it."""
    paths = local_sources(cell.packages, matrix.packages, matrix.base_dir)
    return source_digest(paths) if paths else ""


def cell_fingerprint(matrix: Matrix, cell: Cell, interpreter: pythons.Interpreter | None) -> str:
    """Hash of everything that decides a cell's answer; `--resume` keeps results that match it.

    Local projects count by the content of their sources, so fixing the package under test
    reruns its cells.
    """
    settings = backend_settings(matrix)
    try:
        table = table_for(settings.cuda_table).digest if "cuda" in cell.axes else ""
    except MatrixError as exc:
        table = str(exc)
    payload = {
        "channels": list(settings.channels),
        "pip": list(settings.pip),
        "cuda_table": table,
        "axes": cell.axes,
        "packages": list(matrix.packages),
        "backend": matrix.backend,
        "only_binary": matrix.only_binary,
        "imports": list(matrix.imports) if matrix.imports is not None else None,
        "probes": list(matrix.probes),
        "python": [str(interpreter.path), interpreter.version] if interpreter else None,
        "sources": sources_digest(matrix, cell),
    }
    if matrix.strict:  # only when set: existing fingerprints stay valid
        payload["strict"] = True
    if matrix.gpus:  # the GPUs the device code is judged against
        payload["gpus"] = list(matrix.gpus)
    if not matrix.selection.is_default:  # top-level resolution/as-of/prerelease
        payload["selection"] = dataclasses.astuple(matrix.selection)
    if matrix.index_url or matrix.extra_index_urls:
        payload["index_url"] = matrix.index_url
        payload["extra_index_urls"] = list(matrix.extra_index_urls)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def default_imports(cell: Cell, top_level: dict[str, list[str]]) -> list[str]:
    """Top-level modules of each axis distribution (scikit-learn -> sklearn)."""
    return _top_level_targets(_axis_distributions(cell), top_level)


def _top_level_targets(dists: Sequence[str], top_level: dict[str, list[str]]) -> list[str]:
    targets: list[str] = []
    for dist in dists:
        modules = top_level.get(dist) or [dist.replace("-", "_").replace(".", "_").lower()]
        targets.extend(m for m in modules if m not in targets)
    return targets


def _resumable(path: Path, fingerprint: str) -> CellResult | None:
    try:
        existing = read_cell_result(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if existing.fingerprint == fingerprint and existing.status != "error":
        return existing
    return None


def run_cell(
    matrix: Matrix,
    cell: Cell,
    settings: RunSettings,
    interpreters: Sequence[pythons.Interpreter],
) -> CellResult:
    """Run `cell` and write its result; returns the result (possibly resumed from disk)."""
    requested = cell.python or "3"
    if matrix.backend in _CONDA_BACKENDS:
        interpreter = None  # conda installs the cell's Python itself
    else:
        interpreter = (
            pythons.select(interpreters, requested)
            if cell.python
            else (interpreters[-1] if interpreters else None)
        )
    fingerprint = cell_fingerprint(matrix, cell, interpreter)
    cell_file = settings.report_dir / "cells" / f"{cell.id}.json"
    if settings.resume and (existing := _resumable(cell_file, fingerprint)) is not None:
        return existing
    try:
        result = _run(matrix, cell, settings, interpreter, interpreters)
    except Exception as exc:  # noqa: BLE001 - nothing is lost: a harness bug is an `error` verdict
        result = cell_result(
            cell.id,
            cell.axes,
            _disk_trouble(exc, settings.report_dir)
            or Verdict(
                "error",
                "harness",
                f"{type(exc).__name__}: {exc}",
                "compat-matrix itself failed on this cell: rerun, and report it if it persists",
            ),
        )
    result.fingerprint = fingerprint
    result.expectation = expectation_outcome(matrix.expect, cell.axes, result.status)
    selection = matrix.selection_for(cell)
    result.resolution = selection.resolution
    result.as_of = selection.as_of
    result.prerelease = selection.prerelease
    if children.stopping():  # the run was interrupted: this cell has no verdict
        raise children.Stopped
    try:
        write_cell_result(settings.report_dir, result)
    except OSError as exc:
        if result.category in _DISK_CATEGORIES:
            return result  # its message already says why
        trouble = _disk_trouble(exc, settings.report_dir) or Verdict(
            "error", "harness", str(exc), "check the report folder, then rerun with --resume"
        )
        result = cell_result(
            cell.id,
            cell.axes,
            Verdict(
                "error",
                trouble.category,
                f"its verdict ({result.status}) could not be written: {trouble.message}",
                trouble.hint,
            ),
            expectation=expectation_outcome(matrix.expect, cell.axes, "error"),
        )
    return result


#: Folder trouble, by errno: (category, what to do). Never a verdict on the packages.
_DISK_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("disk-full", "free space on that disk, then rerun with --resume"),
    errno.EDQUOT: ("disk-full", "free space within your disk quota, then rerun with --resume"),
    errno.EACCES: ("permission", "make the folder writable for this user, or choose another"),
    errno.EPERM: ("permission", "make the folder writable for this user, or choose another"),
    errno.EROFS: ("read-only-disk", "choose a folder on a writable disk (-o, $COMPAT_ENV_DIR)"),
}
_DISK_CATEGORIES = frozenset(category for category, _ in _DISK_ERRORS.values())


def _disk_trouble(exc: BaseException, folder: Path) -> Verdict | None:
    """The `error` verdict of a full, read-only or forbidden folder; None for anything else.

    `folder` is named when the error names no file (a failed write names none).
    """
    if not isinstance(exc, OSError) or exc.errno not in _DISK_ERRORS:
        return None
    category, hint = _DISK_ERRORS[exc.errno]
    where = Path(exc.filename).parent if exc.filename else folder
    return Verdict("error", category, f"{exc.strerror}: cannot write in {where}", hint)


def _run(
    matrix: Matrix,
    cell: Cell,
    settings: RunSettings,
    interpreter: pythons.Interpreter | None,
    interpreters: Sequence[pythons.Interpreter],
) -> CellResult:
    conda = matrix.backend in _CONDA_BACKENDS
    elsewhere = other_platform_reason(cell.os)
    if elsewhere is not None:
        answered = _foreign_cell(matrix, cell, settings)
        if answered is not None:
            return answered
        return cell_result(
            cell.id,
            cell.axes,
            Verdict(
                "skip",
                "other-platform",
                elsewhere,
                f"run it on a {cell.os} runner: `compat-matrix plan --github` routes it there",
            ),
        )
    if interpreter is None and not conda:
        return cell_result(
            cell.id,
            cell.axes,
            Verdict(
                "skip",
                "no-interpreter",
                pythons.describe_missing(interpreters, cell.python or "3"),
                "install that Python (pyenv install, uv python install) or drop it from the matrix",
            ),
        )
    backend = get_backend(matrix.backend)
    deadline = time.monotonic() + matrix.timeout
    options = backend_settings(matrix)
    try:
        plan = plan_cell(table_for(options.cuda_table), cell.axes, conda=conda, pip=options.pip)
    except MatrixError as exc:
        plan = CudaPlan(cuda=cell.axes.get("cuda"), problem=str(exc))
    if plan.problem or plan.unsupported:
        return _not_installed(cell, plan)
    request = dataclasses.replace(
        _request(matrix, cell, interpreter, plan, options), lock_max_age=settings.lock_max_age
    )
    indexes = used_indexes(backend.name, request)
    started = time.monotonic()
    env = backend.prepare(settings.env_root / cell.id, request, timeout=matrix.timeout)
    build_s = time.monotonic() - started
    lock_rel = f"locks/{cell.id}.txt"
    write_atomic(settings.report_dir / lock_rel, env.lock_text or "")
    log = [_install_line(backend.name, request), env.log]
    if env.failure is not None:
        env.failure = checked_failure(env.failure, HintContext(request))
        write_atomic(settings.report_dir / "logs" / f"{cell.id}.log", "\n".join(log))
        failure = env.failure
        return cell_result(
            cell.id,
            cell.axes,
            Verdict(failure.status, failure.category, failure.message, failure.hint),
            resolved=parse_lock(env.lock_text),
            durations={"build": round(build_s, 3), "probes": 0.0},
            lock=lock_rel,
            indexes=indexes,
        )

    started = time.monotonic()
    answers = settings.env_root / ANSWERS_FOLDER / f"{cell.id}.json"
    runs = _run_probes(
        matrix, cell, env.python, deadline, answers=answers, reuse=settings.reuse_answers
    )
    probes_s = time.monotonic() - started
    reused = [run.name for run in runs if run.reused]
    if reused:
        log.append(
            f"answers reused, no file of the environment changed since: {', '.join(reused)} "
            "(--reprobe reads them again)"
        )
    log.extend(f"--- {run.name} probe stderr ---\n{run.stderr}" for run in runs if run.stderr)
    write_atomic(settings.report_dir / "logs" / f"{cell.id}.log", "\n".join(log))

    environment = runs[0]
    distributions = environment.document.get("distributions") or parse_lock(env.lock_text)
    wanted = {name.lower() for name in cell.packages}
    resolved = {
        str(k): str(v)
        for k, v in sorted(dict(distributions).items())
        if k not in _TOOLING or k in wanted
    }
    records = conda_lock_records(env.lock_text) if conda else {}
    conda_names = [
        (plan.variants[name].name if name in plan.variants else None) or name
        for name in cell.packages
    ]
    for name in (*conda_names, *_CONDA_RESOLVED):
        if name in records and name not in resolved:
            resolved[name] = records[name][0]
    cuda_document = next((run.document for run in runs if run.name == "cuda"), None)
    if "cuda" in cell.axes:
        builds = [
            variant.name or name
            for name, variant in plan.variants.items()
            if variant.build and conda
        ]
        resolved.update(
            cuda_resolved(
                resolved, conda_records=records, cuda_document=cuda_document, builds=builds
            )
        )
    findings: list[ProbeResult] = [r for run in runs for r in run.results]
    cuda_run = next((run for run in runs if run.name == "cuda"), None)
    if cuda_run is not None:  # on a GPU runner: the static architectures against the device
        gpu_arch = [r for run in runs if run.name == "gpu-arch" for r in run.results]
        findings += device_agreement(gpu_arch, cuda_run.results, cuda_run.document)
    result = cell_result(
        cell.id,
        cell.axes,
        cell_verdict(findings, strict=matrix.strict),
        python=environment.python,
        resolved=resolved,
        durations={"build": round(build_s, 3), "probes": round(probes_s, 3)},
        lock=lock_rel,
        indexes=indexes,
    )
    # A hint is printed only once the resolver agrees with it (or it says it is unverified).
    return with_checked_hint(result, HintContext(request))


def _foreign_cell(matrix: Matrix, cell: Cell, settings: RunSettings) -> CellResult | None:
    """The static-only verdict of a cell for another platform, or None when none can be had.

    Resolved for that platform with uv (no wheel: `unsupported`; clashing requirements:
    `conflict`), then the wheels it would install are read by the wheel probe. Local projects
    and URLs (built, not resolved), CUDA variants and micromamba cells are left to the runner.
    """
    target = foreign_target(cell.os or "")
    python = cell.python
    uv = find_uv()
    if (
        target is None
        or uv is None
        or matrix.backend == "micromamba"
        or cell.axes.get("cuda", "none") != "none"
        or not python
        or python.endswith("t")
        or any(value_kind(v) in ("path", "url") for v in cell.packages.values())
    ):
        return None
    version = ".".join(python.split(".")[:2])
    extra = tuple(p for p in matrix.packages if value_kind(p) not in ("path", "url"))
    requirements = requirements_for(cell.packages, extra, matrix.base_dir)
    work = settings.env_root / cell.id
    work.mkdir(parents=True, exist_ok=True)
    selection = matrix.selection_for(cell)
    chosen = EnvRequest(
        None,
        tuple(requirements),
        index_url=matrix.index_url or "",
        index_urls=matrix.extra_index_urls,
        resolution=selection.resolution,
        as_of=selection.as_of or "",
        prerelease=selection.prerelease or "",
    )
    answer = resolve_and_download(
        target,
        requirements,
        version,
        uv=uv,
        only_binary=matrix.only_binary,
        timeout=matrix.timeout,
        work=work,
        compile_options=[*chosen.index_args("uv"), *chosen.selection_args("uv")],
        download_options=chosen.index_args("pip"),
    )
    if answer.status is not None:
        return cell_result(
            cell.id,
            cell.axes,
            Verdict(answer.status, answer.category, answer.message, answer.hint),
            resolved=answer.resolved,
            durations={"build": round(answer.duration_s, 3), "probes": 0.0},
            static_only=True,
            indexes=used_indexes("uv", chosen),
        )
    run = run_probe(
        Path(sys.executable),
        "wheel",
        wheel_probe_args(target, answer.wheels, gpu_arch_args(matrix, cell)),
        timeout=max(matrix.timeout - answer.duration_s, 1.0),
    )
    verdict = cell_verdict(run.results, strict=matrix.strict)
    if verdict.status == "pass":
        verdict = dataclasses.replace(
            verdict,
            message=f"static only: resolved for {target.label} ({target.platform}) and its "
            f"{len(answer.wheels)} wheels read; imports and loads run on a {target.label} runner",
        )
    return cell_result(
        cell.id,
        cell.axes,
        verdict,
        resolved=answer.resolved,
        durations={"build": round(answer.duration_s, 3), "probes": round(run.duration_s, 3)},
        static_only=True,
        indexes=used_indexes("uv", chosen),
    )


def _request(
    matrix: Matrix,
    cell: Cell,
    interpreter: pythons.Interpreter | None,
    plan: CudaPlan,
    options: BackendSettings,
) -> EnvRequest:
    """What to install for `cell`: pip/uv requirements, or conda specs then pip ones."""
    locals_ = tuple(local_names(cell.packages, matrix.packages, matrix.base_dir))
    sources = sources_digest(matrix, cell)
    selection = matrix.selection_for(cell)
    index_urls = tuple(dict.fromkeys((*matrix.extra_index_urls, *plan.index_urls)))
    if matrix.backend in _CONDA_BACKENDS:
        split = conda_requirements(
            cell.packages,
            matrix.packages,
            matrix.base_dir,
            pip=options.pip,
            variants=plan.variants,
        )
        return EnvRequest(
            None,
            (*split.pip, *plan.pip_requirements),
            matrix.only_binary,
            split.build_from_source,
            index_urls=index_urls,
            conda_specs=(*conda_python_specs(cell.python), *split.conda, *plan.conda_specs),
            channels=options.channels,
            env=plan.env,
            local_projects=locals_,
            sources=sources,
            index_url=matrix.index_url or "",
            resolution=selection.resolution,
            as_of=selection.as_of or "",
            prerelease=selection.prerelease or "",
        )
    requirements = requirements_for(cell.packages, matrix.packages, matrix.base_dir, plan.variants)
    return EnvRequest(
        interpreter,
        (*requirements, *plan.pip_requirements),
        matrix.only_binary,
        tuple(source_built(cell.packages, matrix.packages, matrix.base_dir)),
        index_urls=index_urls,
        env=plan.env,
        local_projects=locals_,
        sources=sources,
        index_url=matrix.index_url or "",
        resolution=selection.resolution,
        as_of=selection.as_of or "",
        prerelease=selection.prerelease or "",
    )


def _install_line(backend: str, request: EnvRequest) -> str:
    """The cell log's first line: what was asked of the installer."""
    parts = [f"{key}={value}" for key, value in sorted(request.env.items())]
    if request.conda_specs:
        parts += [f"{backend} create", *request.conda_specs]
        if request.requirements:
            parts += ["&& pip install", *request.requirements]
    else:
        parts += [f"{backend} install", *request.requirements]
    parts += [f"--index-url {request.index_url}"] if request.index_url else []
    parts += [f"--extra-index-url {url}" for url in request.index_urls]
    parts += request.selection_args("uv" if backend == "uv" else "pip")
    return "$ " + " ".join(parts)


def _not_installed(cell: Cell, plan: CudaPlan) -> CellResult:
    """A cell the CUDA table rules out before any download: no build exists, or no entry."""
    if plan.problem:
        return cell_result(
            cell.id,
            cell.axes,
            Verdict(
                "error",
                "cuda-table",
                plan.problem,
                "the CUDA table (cuda_table.yml, extended by `cuda-table:`) cannot map this "
                "`cuda` value: add an entry for it",
            ),
        )
    return cell_result(
        cell.id,
        cell.axes,
        Verdict(
            "unsupported",
            "no-distribution",
            plan.unsupported or "",
            "no build of it exists for this CUDA value: the combination is not offered "
            "(the CUDA table says so; extend it with `cuda-table:` if that has changed)",
        ),
    )


def _run_probes(
    matrix: Matrix, cell: Cell, python: Path, deadline: float, *, answers: Path, reuse: bool
) -> list[ProbeRun]:
    cuda_value = cell.axes.get("cuda")
    probe_args: dict[str, list[str]] = {"gpu-arch": gpu_arch_args(matrix, cell)}
    if cuda_value:
        probe_args["cuda"] = ["--cuda", cuda_value]
    return probe_environment(
        python,
        matrix.probes,
        dists=_target_distributions(matrix, cell),
        imports=list(matrix.imports) if matrix.imports is not None else None,
        deadline=deadline,
        probe_args=probe_args,
        answers=answers,
        reuse=reuse,
    )


def gpu_arch_args(matrix: Matrix, cell: Cell) -> list[str]:
    """The gpu-arch probe's `--gpu NAME=sm_XY` list: the cell's `gpu` value, else `gpus:`."""
    wanted = [cell.axes["gpu"]] if "gpu" in cell.axes else list(getattr(matrix, "gpus", ()))
    args: list[str] = []
    for value in wanted:
        argument = gpu_argument(value)
        if argument is not None:  # the loader refused any other value
            args += ["--gpu", argument]
    return args


def probe_environment(
    python: Path,
    probes: Sequence[str],
    *,
    dists: Sequence[str] | None,
    imports: Sequence[str] | None,
    deadline: float,
    probe_args: Mapping[str, Sequence[str]] | None = None,
    env: dict[str, str] | None = None,
    answers: Path | None = None,
    reuse: bool = True,
) -> list[ProbeRun]:
    """Run the environment probe, then each of `probes`, under `python`; environment first.

    `dists` are the distributions whose top-level modules are the default import targets
    (None: every distribution installed, as `audit` does); `imports` overrides those targets.
    `probe_args` gives a probe its command-line arguments (the cuda probe's `--cuda 12.4`);
    `env` adds environment variables to every probe (`audit` sets PYTHONDONTWRITEBYTECODE so
    it writes nothing). The probes run together in one interpreter (`run_probe_set`); any probe
    that did not answer there (that process crashed or hung) runs again on its own, as it
    would have run alone, so isolation is never lost. `answers` is where the file-reading
    probes keep their answers for the next run on the same files (None: kept nowhere, as in
    `audit`, which writes nothing); `reuse` False reads every file again (`--reprobe`).
    """
    wanted = [name for name in probes if name != "environment"]
    remaining = deadline - time.monotonic()
    spec = {
        "probes": wanted,
        "args": {name: list(args) for name, args in (probe_args or {}).items()},
        "dists": list(dists) if dists is not None else None,
        "imports": list(imports) if imports is not None else None,
        "import_timeout": min(_IMPORT_TIMEOUT_S, max(remaining - 5.0, 1.0)),
        "tooling": sorted(_TOOLING),
        "answers": str(answers) if answers is not None else None,
        "reuse": reuse,
    }
    answered, stderr = run_probe_set(python, spec, timeout=remaining, env=env)
    if stderr.strip():
        first = next(iter(answered.values()), None)
        if first is not None:
            first.stderr = stderr  # shown once in the cell's log
    missing = [name for name in ("environment", *wanted) if name not in answered]
    if missing:
        answered.update(
            _probe_alone(python, missing, answered=answered, spec=spec, deadline=deadline, env=env)
        )
    return [answered[name] for name in ("environment", *wanted) if name in answered]


def _probe_alone(
    python: Path,
    names: Sequence[str],
    *,
    answered: Mapping[str, ProbeRun],
    spec: Mapping[str, Any],
    deadline: float,
    env: dict[str, str] | None,
) -> dict[str, ProbeRun]:
    """Each of `names` in its own interpreter: what the probe set did not report."""
    runs: dict[str, ProbeRun] = {}
    environment = answered.get("environment")
    dists: Sequence[str] | None = spec["dists"]

    def environment_probe(names: Sequence[str]) -> ProbeRun:
        args = ["--dists", *names] if names else []
        return run_probe(python, "environment", args, timeout=deadline - time.monotonic(), env=env)

    if environment is None:
        environment = environment_probe(dists or [])
        if dists is None:
            installed = environment.document.get("distributions") or {}
            dists = [name for name in installed if name not in _TOOLING]
            if dists:
                environment = environment_probe(dists)
        runs["environment"] = environment
    elif dists is None:
        installed = environment.document.get("distributions") or {}
        dists = [name for name in installed if name not in _TOOLING]
    top_level = dict(environment.document.get("top_level") or {})
    imports: Sequence[str] | None = spec["imports"]
    targets = list(imports) if imports is not None else _top_level_targets(dists or [], top_level)
    for name in names:
        if name == "environment":
            continue
        remaining = deadline - time.monotonic()
        args = list(spec["args"].get(name, ()))
        if name == "import":
            if not targets:
                continue
            per_target = min(_IMPORT_TIMEOUT_S, max(remaining - 5.0, 1.0))
            args += ["--timeout", f"{per_target:.0f}", *targets]
        elif name == "native":  # a file that fails alone is re-loaded after these imports
            args += [arg for target in targets for arg in ("--context", target)]
        runs[name] = run_probe(python, name, args, timeout=remaining, env=env)
    return runs
