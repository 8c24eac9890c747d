"""The steps of the composite action (action.yml), one subcommand each.

`python -m compat_matrix.front.gha STEP` reads the action's inputs from environment variables (the
action passes every `inputs.*` through `env:`, so no value is ever pasted into a script) and
answers through the files and commands the runner provides: `$GITHUB_OUTPUT`,
`$GITHUB_STEP_SUMMARY` and workflow commands on stdout, escaped as actions/toolkit escapes them.

Steps, in the order action.yml runs them:

- `installed`: report the interpreter compat-matrix was installed into.
- `prepare`: validate the inputs, resolve paths, pick the cells, name the artifact.
- `pythons`: install the interpreters the cells ask for (uv); a missing one is a `skip` verdict.
- `probe`: the pipeline (pipeline.py, as `compat-matrix run`) on the selected cells.
- `publish`: the pipeline's publish (missing cells, baseline, exit status as every front door
  has them), then the step summary, at most ten error annotations (most important first) and
  the outputs.
- `conclude`: exit with the status `fail-on` asks for (after the artifact is uploaded).

`fail-on` reads as the CLI's `--fail-on MODE[,metadata]` (pipeline.py's `parse_fail_on_words`):
`metadata` alone is the default mode plus metadata findings (run/metadata.py).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from compat_matrix import children
from compat_matrix.build import pythons as pythons_mod
from compat_matrix.build.backends import find_uv
from compat_matrix.errors import CompatError, MatrixError, UsageError
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.lines import MatrixLines
from compat_matrix.matrix.load import load_matrix
from compat_matrix.matrix.model import BACKENDS
from compat_matrix.matrix.select import parse_selection, select_cells
from compat_matrix.reports._verdicts import clean_text, label, one_line
from compat_matrix.reports.baseline import baseline_file
from compat_matrix.reports.gate import FailOn, run_status
from compat_matrix.reports.metadata_truth import counted
from compat_matrix.results import CellResult
from compat_matrix.run.pipeline import (
    Progress,
    RunOptions,
    load_selection,
    parse_fail_on_words,
    parse_run_options,
    render_outcome,
    run_pipeline,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from compat_matrix.reports.baseline import BaselineDiff
    from compat_matrix.reports.metadata_truth import MetadataFinding

__all__ = [
    "MAX_ANNOTATIONS",
    "SUMMARY_LIMIT",
    "annotation_commands",
    "append_summary",
    "default_artifact_name",
    "escape_data",
    "escape_property",
    "main",
    "metadata_annotations",
    "set_outputs",
    "validate_artifact_name",
    "workflow_command",
]

#: GitHub's step-summary limit: 1 MiB per step.
SUMMARY_LIMIT = 1024 * 1024
#: GitHub shows at most 10 error (and 10 warning) annotations per step.
MAX_ANNOTATIONS = 10
#: Characters upload-artifact refuses in a name (toolkit path-and-artifact-name-validation.ts).
_ARTIFACT_FORBIDDEN = ('"', ":", "<", ">", "|", "*", "?", "\r", "\n", "\\", "/")
_ARTIFACT_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_MESSAGE_LIMIT = 4000
_INSTALL_TIMEOUT_S = 900.0

# -- workflow commands and files ------------------------------------------------------------


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as actions/toolkit `escapeData` does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value, escaped as actions/toolkit `escapeProperty` does."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties: str | int | None) -> str:
    """`::command key=value,...::message`, every part escaped; None properties are left out."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None and value != ""
    )
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


def set_outputs(path: Path, outputs: Mapping[str, str]) -> None:
    """Append step outputs to `$GITHUB_OUTPUT` as `name<<DELIMITER` blocks (multi-line safe)."""
    with path.open("a", encoding="utf-8") as handle:
        for name, value in outputs.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            if delimiter in value or delimiter in name:  # pragma: no cover - a uuid collision
                msg = f"output {name!r} contains its own delimiter"
                raise ValueError(msg)
            handle.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(path: Path, text: str, limit: int = SUMMARY_LIMIT) -> int:
    """Append `text` to the step summary, cut at a line so the file stays under `limit` bytes.

    GitHub rejects a step summary over 1 MiB (and shows none of it), so a cut page with a
    note beats a lost one. Returns the number of bytes written.
    """
    used = path.stat().st_size if path.exists() else 0
    data = text.encode("utf-8")
    room = limit - used
    if len(data) > room:
        note = (
            "\n\n… cut to fit GitHub's 1 MiB step summary: "
            "the whole report is compat.md in the artifact.\n"
        ).encode()
        keep = max(room - len(note), 0)
        cut = data[:keep]
        newline = cut.rfind(b"\n")
        cut = cut[: newline + 1] if newline >= 0 else b""
        data = cut + note if len(cut) + len(note) <= room else b""
    with path.open("ab") as handle:
        handle.write(data)
    return len(data)


def validate_artifact_name(name: str) -> str:
    """`name` if upload-artifact accepts it, else a UsageError naming the bad characters."""
    bad = sorted({char for char in name if char in _ARTIFACT_FORBIDDEN})
    if bad:
        shown = " ".join(repr(char) for char in bad)
        msg = f"artifact-name {name!r} contains characters upload-artifact refuses: {shown}"
        raise UsageError(msg)
    if not name.strip():
        msg = "artifact-name cannot be blank"
        raise UsageError(msg)
    return name


def default_artifact_name(
    env: Mapping[str, str], matrix: Path, selection: str, backend: str
) -> str:
    """`compat-report-<matrix>-<hash>`: unique per job, runner image, matrix and cell selection.

    Artifact names must be unique within a run, and one job of a strategy matrix looks like
    another (same `GITHUB_JOB`), so the hash covers what tells them apart on the runner.
    """
    key = "\n".join(
        [
            env.get("GITHUB_JOB", ""),
            env.get("RUNNER_OS", ""),
            env.get("RUNNER_ARCH", ""),
            env.get("ImageOS", ""),
            env.get("COMPAT_INPUT_PYTHON_VERSION", ""),
            str(matrix),
            selection,
            backend,
        ]
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
    stem = _ARTIFACT_UNSAFE.sub("-", matrix.stem).strip("-") or "matrix"
    return f"compat-report-{stem}-{digest}"


# -- annotations ----------------------------------------------------------------------------


def _annotation_text(result: CellResult) -> str:
    parts = [one_line(result.message, _MESSAGE_LIMIT)] if result.message else []
    if result.hint:
        parts.append(f"Hint: {one_line(result.hint, 1000)}")
    expectation = result.expectation
    if expectation is not None and expectation.reason:
        parts.append(f"Expectation: {one_line(expectation.reason, 500)}")
    return clean_text("\n".join(parts) or label(result))


def _title(result: CellResult, prefix: str = "") -> str:
    words = label(result) + (f" ({result.category})" if result.category else "")
    return one_line(f"{prefix}{result.id}: {words}", 250)


def annotation_commands(
    results: Sequence[CellResult],
    diff: BaselineDiff | None = None,
    *,
    limit: int = MAX_ANNOTATIONS,
    file: str | None = None,
    lines: MatrixLines | None = None,
) -> list[str]:
    """Error annotations for the cells that fail the run, most important first, then warnings.

    Order: regressions, unmet expectations, failures; infrastructure errors are warnings. Each
    kind keeps within GitHub's `limit` per step: when more cells qualify, the last annotation
    counts the rest instead of dropping them silently. With `file`, `lines` puts each on the
    line of the matrix file that made its cell.
    """

    def line(result: CellResult) -> int | None:
        return lines.line(result.axes) if file and lines is not None else None

    regressed = {change.id for change in diff.regressions} if diff is not None else set()
    ranked: list[tuple[int, int, CellResult]] = []
    warnings: list[CellResult] = []
    for index, result in enumerate(results):
        expectation = result.expectation
        if result.id in regressed:
            ranked.append((0, index, result))
        elif expectation is not None and not expectation.met:
            ranked.append((1, index, result))
        elif expectation is None and result.status == "fail":
            ranked.append((2, index, result))
        elif expectation is None and result.status == "error":
            warnings.append(result)
    ranked.sort(key=lambda item: item[:2])
    errors = [
        workflow_command(
            "error",
            _annotation_text(result),
            title=_title(result, "regression: " if rank == 0 else ""),
            file=file,
            line=line(result),
        )
        for rank, _, result in ranked
    ]
    notes = [
        workflow_command(
            "warning", _annotation_text(result), title=_title(result), file=file, line=line(result)
        )
        for result in warnings
    ]
    return _capped(errors, "error", limit, "more cells failed", file) + _capped(
        notes, "warning", limit, "more cells had infrastructure errors", file
    )


def _capped(commands: list[str], kind: str, limit: int, words: str, file: str | None) -> list[str]:
    if len(commands) <= limit:
        return commands
    rest = len(commands) - (limit - 1)
    more = workflow_command(
        kind,
        f"{rest} {words}: see the job summary, compat.md and compat.json in the artifact.",
        title=f"compat-matrix: {rest} {words}",
        file=file,
    )
    return [*commands[: limit - 1], more]


def metadata_annotations(
    findings: Sequence[MetadataFinding],
    *,
    failing: bool,
    limit: int = MAX_ANNOTATIONS,
    file: str | None = None,
) -> list[str]:
    """One annotation per metadata finding: an error when `fail-on` has `metadata` (the finding
    fails the step, and the annotation says why), else a warning; skipped checks are none."""
    kind = "error" if failing else "warning"
    commands = [
        workflow_command(
            kind,
            one_line(finding.message, _MESSAGE_LIMIT),
            title=one_line(f"metadata: {finding.kind}", 250),
            file=file,
        )
        for finding in counted(findings)
    ]
    return _capped(commands, kind, limit, "more metadata findings", file)


# -- steps ----------------------------------------------------------------------------------


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text in ("true", "false"):
        return text == "true"
    input_name = name.removeprefix("COMPAT_INPUT_").lower().replace("_", "-")
    msg = f'{input_name} must be "true" or "false", not {env[name]!r}'
    raise UsageError(msg)


def _workspace(env: Mapping[str, str]) -> Path:
    return Path(env.get("GITHUB_WORKSPACE") or Path.cwd())


def _path(env: Mapping[str, str], text: str) -> Path:
    path = Path(text).expanduser()
    return (path if path.is_absolute() else _workspace(env) / path).resolve()


def _relative(env: Mapping[str, str], path: Path) -> str:
    """`path` relative to the workspace (how annotations name files), else as it is."""
    try:
        return path.relative_to(_workspace(env).resolve()).as_posix()
    except ValueError:
        return str(path)


def _outputs(env: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    target = env.get("GITHUB_OUTPUT")
    if target:
        set_outputs(Path(target), outputs)
    else:
        for name, value in outputs.items():
            print(f"{name}={value}")


def _python_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def step_installed(env: Mapping[str, str]) -> int:
    _outputs(env, {"python": sys.executable})
    return 0


def _fail_on(env: Mapping[str, str]) -> tuple[FailOn, bool, str]:
    """The `fail-on` input as the CLI reads `--fail-on`: (mode, metadata, normalised words)."""
    mode, metadata = parse_fail_on_words(env.get("COMPAT_INPUT_FAIL_ON", ""))
    return mode, metadata, f"{mode},metadata" if metadata else mode


def step_prepare(env: Mapping[str, str]) -> int:
    fail_on = _fail_on(env)[2]
    _flag(env, "COMPAT_INPUT_SUMMARY", default=True)
    _flag(env, "COMPAT_INPUT_ANNOTATIONS", default=True)
    backend = env.get("COMPAT_INPUT_BACKEND", "").strip()
    if backend and backend not in BACKENDS:
        msg = f"backend must be one of {', '.join(BACKENDS)} (or empty), not {backend!r}"
        raise UsageError(msg)
    source = _path(env, env.get("COMPAT_INPUT_MATRIX", "").strip() or "matrix/default.yml")
    report_text = env.get("COMPAT_INPUT_REPORT_DIR", "").strip() or "compat-report"
    report_dir = _path(env, report_text)
    workspace = _workspace(env).resolve()
    escapes = report_dir != workspace and workspace not in report_dir.parents
    if escapes and not Path(report_text).expanduser().is_absolute():
        # A relative path is the workspace's; an absolute one ($RUNNER_TEMP/...) is explicit.
        msg = (
            f"report-dir {report_text!r} resolves to {report_dir}, outside the workspace "
            f"{workspace}: give a folder inside it (or an absolute path)"
        )
        raise UsageError(msg)
    matrix = load_matrix(source)
    if backend and backend != matrix.backend:
        # An option of the run (COMPAT_BACKEND), never a file written beside the user's matrix.
        matrix = replace(matrix, backend=backend)
    wanted = env.get("COMPAT_INPUT_CELLS", "")
    cells = select_cells(expand(matrix), wanted)
    selection = " ".join(cell.id for cell in cells) if parse_selection(wanted) else ""
    needed = {cell.python for cell in cells if cell.python}
    conda = matrix.backend in ("conda", "micromamba")  # conda cells bring their own Python
    interpreters = "" if conda else " ".join(sorted(needed, key=_python_key))
    name = env.get("COMPAT_INPUT_ARTIFACT_NAME", "").strip()
    artifact = (
        validate_artifact_name(name)
        if name
        else default_artifact_name(env, Path(_relative(env, source)), selection, matrix.backend)
    )
    cache = _cache_outputs(env, source, matrix.backend)
    print(f"compat-matrix: {len(cells)} cells of {matrix.name!r} ({_relative(env, source)})")
    _outputs(
        env,
        {
            "matrix": str(source),
            "backend": backend,
            "source": _relative(env, source),
            "name": matrix.name,
            "cells": selection,
            "count": str(len(cells)),
            "report-dir": str(report_dir),
            "pythons": interpreters,
            "artifact-name": artifact,
            "fail-on": fail_on,
            **cache,
        },
    )
    return 0


def _cache_outputs(env: Mapping[str, str], source: Path, backend: str) -> dict[str, str]:
    """Where the package caches live and the actions/cache key: the runner's OS and
    architecture, the backend and the matrix file's contents (as setup-uv keys on a lock
    file); the restore key lets a changed matrix start from the newest earlier cache."""
    temp = Path(env.get("RUNNER_TEMP") or tempfile.gettempdir())
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:20]
    runner = f"{env.get('RUNNER_OS', 'os')}-{env.get('RUNNER_ARCH', 'arch')}"
    prefix = f"compat-matrix-{runner}-{backend}-"
    return {
        "cache-dir": str(temp / "compat-matrix-cache"),
        "cache-key": prefix + digest,
        "cache-restore-key": prefix,
    }


def step_pythons(env: Mapping[str, str]) -> int:
    """Install each requested interpreter that discovery does not find, with `uv python`."""
    wanted = env.get("COMPAT_NEEDED_PYTHONS", "").split()
    if not wanted:
        return 0
    found = pythons_mod.discover()
    missing = [v for v in wanted if pythons_mod.select(found, v) is None]
    if not missing:
        print(f"compat-matrix: every interpreter is here ({' '.join(wanted)})")
        return 0
    uv = find_uv()
    if uv is None:
        print(workflow_command("warning", "uv not found: cannot install " + " ".join(missing)))
        return 0
    for version in missing:
        print(f"::group::uv python install {version}", flush=True)
        try:
            proc = subprocess.run(
                [uv, "python", "install", version],
                timeout=_INSTALL_TIMEOUT_S,
                check=False,
            )
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = -1
        print("::endgroup::", flush=True)
        if code != 0:
            print(
                workflow_command(
                    "notice",
                    f"Python {version} could not be installed: its cells will be skipped "
                    "(no-interpreter).",
                    title=f"compat-matrix: no Python {version}",
                )
            )
    return 0


def _run_options(env: Mapping[str, str]) -> RunOptions:
    """The run options from the step's environment (`COMPAT_MATRIX`, `COMPAT_CELLS`, ...)."""
    environ = dict(env)
    temp = Path(env.get("RUNNER_TEMP") or _workspace(env))
    environ.setdefault("COMPAT_ENV_DIR", str(temp / "compat-envs"))
    return parse_run_options([], environ, _workspace(env), prog="python -m compat_matrix.front.gha")


def step_probe(env: Mapping[str, str]) -> int:
    """The pipeline on the selection; cell verdicts never fail this step, a harness crash does."""
    options = _run_options(env)
    matrix, cells = load_selection(options)
    # Cell messages come from installers and probes: keep them from being read as commands.
    token = f"compat-matrix-{uuid.uuid4().hex}"
    print(f"::stop-commands::{token}", flush=True)
    try:
        with Progress(len(cells), sys.stdout, live=False) as progress:
            outcome = run_pipeline(matrix, cells, options, progress=progress)
    finally:
        print(f"::{token}::", flush=True)
    reported = len(cells) - len(outcome.missing)
    print(f"compat-matrix: {reported} of {len(cells)} cells reported")
    return 0


def _baseline(env: Mapping[str, str]) -> Path | None:
    text = env.get("COMPAT_INPUT_BASELINE", "").strip()
    if not text:
        return None
    path = _path(env, text)
    if not baseline_file(path).exists():
        print(
            workflow_command(
                "notice",
                f"baseline {text} not found: no comparison this time (a first run?)",
                title="compat-matrix: no baseline",
            )
        )
        return None
    return path


def step_publish(env: Mapping[str, str]) -> int:
    """Merge, compare, summarise, annotate; set the outputs. Never fails on verdicts."""
    options = _run_options(env)
    report_dir = options.report_dir
    matrix, cells = load_selection(options)
    fail_on, fail_on_metadata, _ = _fail_on(env)
    options = replace(options, fail_on_metadata=fail_on_metadata)
    outcome = run_pipeline(
        matrix, [], options, report_cells=cells, baseline=_baseline(env), fail_on=fail_on
    )
    results, diff, paths = outcome.results, outcome.published.diff, outcome.published.paths
    missing = len(outcome.missing)
    print("::group::compat-matrix verdicts", flush=True)
    print(render_outcome(outcome, color=False), end="", flush=True)
    print("::endgroup::", flush=True)
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary and _flag(env, "COMPAT_INPUT_SUMMARY", default=True):
        append_summary(Path(summary), paths.markdown.read_text(encoding="utf-8"))
    if _flag(env, "COMPAT_INPUT_ANNOTATIONS", default=True):
        source = env.get("COMPAT_SOURCE") or None
        lines = MatrixLines.read(_path(env, source)) if source else None
        for line in annotation_commands(results, diff, file=source, lines=lines):
            print(line, flush=True)
        metadata = outcome.published.metadata or []
        for line in metadata_annotations(metadata, failing=fail_on_metadata, file=source):
            print(line, flush=True)
    status = run_status(results, diff)
    code = outcome.exit_status
    regressions = len(diff.regressions) if diff is not None else 0
    _outputs(
        env,
        {
            "status": status,
            "exit-code": str(code),
            "regressions": str(regressions),
            "regressed": "true" if regressions else "false",
            "cells": str(len(results)),
            "missing": str(missing),
            "report-dir": str(report_dir),
        },
    )
    return 0


def step_conclude(env: Mapping[str, str]) -> int:
    code = int(env.get("COMPAT_EXIT_CODE", "0") or 0)
    status = env.get("COMPAT_STATUS", "") or "unknown"
    fail_on = env.get("COMPAT_INPUT_FAIL_ON", "") or "error"
    print(f"compat-matrix: status {status}, fail-on {fail_on}: exit status {code}")
    return code


_STEPS = {
    "installed": step_installed,
    "prepare": step_prepare,
    "pythons": step_pythons,
    "probe": step_probe,
    "publish": step_publish,
    "conclude": step_conclude,
}


def _report_error(env: Mapping[str, str], exc: CompatError) -> None:
    if isinstance(exc, MatrixError):
        print(
            workflow_command(
                "error",
                exc.problem,
                title="compat-matrix: bad matrix file",
                file=_relative(env, Path(exc.path).resolve()),
                line=exc.line,
                col=exc.column,
            )
        )
    else:
        print(workflow_command("error", str(exc), title="compat-matrix"))


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat_matrix.front.gha")
    parser.add_argument("step", choices=list(_STEPS))
    args = parser.parse_args(argv)
    environ = os.environ if env is None else env
    if env is None:
        children.end_on_signals()
    try:
        return _STEPS[args.step](environ)
    except CompatError as exc:
        _report_error(environ, exc)
        print(f"compat-matrix: {exc}", file=sys.stderr)
        return exc.exit_status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
