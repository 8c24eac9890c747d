"""action.yml, run step by step the way a runner runs a composite action.

Each `run:` step goes to `bash --noprofile --norc -eo pipefail` with `GITHUB_OUTPUT`,
`GITHUB_STEP_SUMMARY`, `GITHUB_ENV`, `GITHUB_PATH` set to fresh temp files and
`GITHUB_ACTION_PATH` to this repository; `${{ }}` in `env:`, `with:` and `if:` is evaluated
with the contexts a runner provides; `uses:` steps are stood in for (setup-python answers with
a real interpreter, upload-artifact checks and records what it would upload). The action's own
metadata is checked against the rules GitHub and the security linters apply.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from _github_files import parse_outputs

from compat_matrix.matrix.expand import cell_id as make_id
from compat_matrix.reports import write_reports
from compat_matrix.results import CellResult, ExpectationOutcome, write_cell_result

REPO = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((REPO / "action.yml").read_text())
MIB = 1024 * 1024
ARTIFACT_FORBIDDEN = set('":<>|*?\\/\r\n')
FEATHER_OK = {"grid", "table", "check-circle", "layers", "package"}
COLORS = {"white", "black", "yellow", "blue", "green", "orange", "red", "purple", "gray-dark"}


# -- a small evaluator for GitHub expressions ------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>&&|\|\||==|!=|!|\(|\))|(?P<num>\d+(?:\.\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.-]*(?:\(\))?))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match and match.end() > pos, f"cannot parse expression {text!r} at {pos}"
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _truthy(value: Any) -> bool:
    return value not in (None, False, "", 0)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Expression:
    """GitHub's expression language, the part action.yml uses: paths, literals, ==, !=, !,
    &&, || (which return an operand, as GitHub's do), parentheses and status functions."""

    def __init__(self, text: str, contexts: dict[str, Any], status: dict[str, bool]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.contexts = contexts
        self.status = status

    def value(self) -> Any:
        result = self._or()
        assert self.pos == len(self.tokens), f"trailing tokens in {self.tokens}"
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self.pos += 1
            right = self._and()
            left = left if _truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._not()
        while self._peek() == "&&":
            self.pos += 1
            right = self._not()
            left = right if _truthy(left) else left
        return left

    def _not(self) -> Any:
        if self._peek() == "!":
            self.pos += 1
            return not _truthy(self._not())
        return self._compare()

    def _compare(self) -> Any:
        left = self._primary()
        if self._peek() in ("==", "!="):
            op = self.tokens[self.pos][1]
            self.pos += 1
            right = self._primary()
            equal = _text(left).lower() == _text(right).lower()  # GitHub ignores case
            return equal if op == "==" else not equal
        return left

    def _primary(self) -> Any:
        kind, lexeme = self.tokens[self.pos]
        self.pos += 1
        if lexeme == "(":
            inner = self._or()
            assert self._peek() == ")"
            self.pos += 1
            return inner
        if kind == "str":
            return lexeme[1:-1].replace("''", "'")
        if kind == "num":
            return float(lexeme)
        if lexeme.endswith("()"):
            return self.status[lexeme[:-2]]
        if lexeme in ("true", "false"):
            return lexeme == "true"
        if lexeme == "null":
            return None
        value: Any = self.contexts
        for part in lexeme.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value


def evaluate(text: str, contexts: dict[str, Any], status: dict[str, bool]) -> Any:
    return Expression(text, contexts, status).value()


def substitute(template: str, contexts: dict[str, Any], status: dict[str, bool]) -> str:
    return re.sub(
        r"\$\{\{(.*?)\}\}", lambda m: _text(evaluate(m.group(1), contexts, status)), template
    )


# -- the runner -------------------------------------------------------------------------------


@dataclass
class StepRun:
    name: str
    ran: bool
    code: int = 0
    stdout: str = ""
    stderr: str = ""
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ActionRun:
    steps: list[StepRun]
    outputs: dict[str, str]
    uploads: list[dict[str, Any]]
    caches: list[dict[str, str]] = field(default_factory=list)

    def step(self, name: str) -> StepRun:
        return next(step for step in self.steps if step.name == name)

    @property
    def failed(self) -> bool:
        return any(step.code != 0 for step in self.steps)

    @property
    def stdout(self) -> str:
        return "".join(step.stdout for step in self.steps)

    @property
    def summary(self) -> str:
        return "".join(step.summary for step in self.steps)


def run_action(
    workspace: Path,
    inputs: dict[str, str],
    *,
    real_install: bool = False,
    extra_env: dict[str, str] | None = None,
) -> ActionRun:
    """Run action.yml's steps in order, as the runner does for `uses: ./`."""
    temp = workspace / ".runner-temp"
    temp.mkdir(exist_ok=True)
    unknown = set(inputs) - set(ACTION["inputs"])
    assert not unknown, f"not inputs of action.yml: {unknown}"
    given = {
        name: inputs.get(name, str(spec.get("default", "")))
        for name, spec in ACTION["inputs"].items()
    }
    contexts: dict[str, Any] = {
        "inputs": given,
        "steps": {},
        "runner": {"temp": str(temp), "os": "Linux"},
        "github": {"action_path": str(REPO), "workspace": str(workspace)},
    }
    base_env = dict(os.environ)
    base_env.update(
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(workspace),
        GITHUB_ACTION_PATH=str(REPO),
        GITHUB_JOB="compat",
        RUNNER_TEMP=str(temp),
        RUNNER_OS="Linux",
        RUNNER_ARCH="X64",
        NO_COLOR="1",
    )
    base_env.update(extra_env or {})
    runs: list[StepRun] = []
    uploads: list[dict[str, Any]] = []
    caches: list[dict[str, str]] = []
    for index, step in enumerate(ACTION["runs"]["steps"]):
        name = step.get("name", f"step {index}")
        failed = any(run.code != 0 for run in runs)
        status = {"always": True, "success": not failed, "failure": failed, "cancelled": False}
        condition = str(step.get("if", "success()"))
        if not re.search(r"\b(always|success|failure|cancelled)\(\)", condition):
            condition = f"success() && ({condition})"  # what GitHub adds to a plain `if:`
        if not _truthy(evaluate(condition, contexts, status)):
            runs.append(StepRun(name, ran=False))
            continue
        env = {k: substitute(str(v), contexts, status) for k, v in step.get("env", {}).items()}
        with_ = {k: substitute(str(v), contexts, status) for k, v in step.get("with", {}).items()}
        if "uses" in step:
            run = _stand_in(step["uses"], name, with_, workspace, uploads, caches)
        elif step.get("id") == "install" and not real_install:
            # Stand-in for a pip install: the test's own interpreter has compat_matrix.
            run = StepRun(name, ran=True, outputs={"python": sys.executable})
        else:
            run = _bash(name, step["run"], {**base_env, **env}, workspace, temp)
        runs.append(run)
        if step.get("id"):
            contexts["steps"][step["id"]] = {
                "outputs": run.outputs,
                "outcome": "success" if run.code == 0 else "failure",
            }
    outputs = {
        name: substitute(spec["value"], contexts, {"always": True})
        for name, spec in ACTION["outputs"].items()
    }
    return ActionRun(runs, outputs, uploads, caches)


def _bash(name: str, script: str, env: dict[str, str], cwd: Path, temp: Path) -> StepRun:
    files = {}
    for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH"):
        path = temp / f"{var.lower()}_{uuid.uuid4().hex}"
        path.touch()
        files[var] = path
        env[var] = str(path)
    script_file = temp / f"step_{uuid.uuid4().hex}.sh"
    script_file.write_text(script)
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    return StepRun(
        name,
        ran=True,
        code=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        summary=files["GITHUB_STEP_SUMMARY"].read_text(),
        outputs=parse_outputs(files["GITHUB_OUTPUT"].read_text()),
        env=env,
    )


def _stand_in(
    uses: str,
    name: str,
    with_: dict[str, str],
    workspace: Path,
    uploads: list[dict[str, Any]],
    caches: list[dict[str, str]],
) -> StepRun:
    action = uses.split("@", maxsplit=1)[0]
    if action == "actions/setup-python":
        assert with_["python-version"]
        return StepRun(name, ran=True, outputs={"python-path": sys.executable})
    if action == "actions/upload-artifact":
        artifact = with_["name"]
        bad = ARTIFACT_FORBIDDEN & set(artifact)
        if bad or not artifact or any(u["name"] == artifact for u in uploads):
            return StepRun(name, ran=True, code=1, stdout=f"bad artifact name {artifact!r}")
        root = workspace / with_["path"]
        files = sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        uploads.append({"name": artifact, "files": files, "with": with_})
        artifact_id = str(len(uploads))
        url = f"https://github.com/owner/repo/actions/runs/1/artifacts/{artifact_id}"
        return StepRun(name, ran=True, outputs={"artifact-id": artifact_id, "artifact-url": url})
    if action == "actions/cache":
        caches.append(with_)
        return StepRun(name, ran=True, outputs={"cache-hit": "false"})
    raise AssertionError(f"no stand-in for {uses}")


# -- fixtures -----------------------------------------------------------------------------------


def _cell(cell_id: str, status: str, expected: str | None = None, **fields: Any) -> CellResult:
    axes = dict(part.split("=") for part in cell_id.split(","))
    return CellResult(
        id=make_id(axes),
        axes=axes,
        status=status,  # type: ignore[arg-type]
        expectation=ExpectationOutcome(expected, expected == status) if expected else None,  # type: ignore[arg-type]
        **fields,
    )


MATRIX = """\
name: demo
matrix:
  python: ["3.11", "3.12"]
  six: ["1.16.0", "1.17.0"]
expect:
  - match: {python: "3.12", six: "1.16.0"}
    status: fail
    reason: six 1.16 predates 3.12
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "matrix").mkdir()
    (tmp_path / "matrix" / "demo.yml").write_text(MATRIX)
    return tmp_path


def _results(report: Path, *results: CellResult) -> None:
    for result in results:
        write_cell_result(report, result)


GOOD = [
    _cell("python=3.11,six=1.16.0", "pass"),
    _cell("python=3.11,six=1.17.0", "pass"),
    _cell(
        "python=3.12,six=1.16.0",
        "fail",
        expected="fail",
        category="import-error",
        message="No module named 'six.moves'",
    ),
    _cell("python=3.12,six=1.17.0", "pass"),
]


# -- metadata -----------------------------------------------------------------------------------


def test_metadata_follows_githubs_rules_and_conventions() -> None:
    assert ACTION["runs"]["using"] == "composite"
    assert ACTION["branding"]["icon"] in FEATHER_OK
    assert ACTION["branding"]["color"] in COLORS
    for name, spec in {**ACTION["inputs"], **ACTION["outputs"]}.items():
        assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name), name
        assert spec["description"]
    for name, spec in ACTION["inputs"].items():
        default = spec.get("default", "")
        assert isinstance(default, str), f"{name}: defaults are strings ('true', not true)"
    for spec in ACTION["outputs"].values():
        assert spec["value"].startswith("${{ steps.")
    required = {"matrix", "cells", "backend", "report-dir", "baseline", "fail-on"}
    assert required <= set(ACTION["inputs"])
    assert {"python-version", "artifact-name"} <= set(ACTION["inputs"])
    assert {"report-dir", "status", "regressions"} <= set(ACTION["outputs"])


def test_no_expression_is_ever_pasted_into_a_script() -> None:
    for step in ACTION["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            assert "${{" not in step["run"], step["name"]
            # One call each: no logic in bash.
            assert not re.search(r"\b(if|for|while|case)\b", step["run"]), step["name"]


def test_every_action_is_pinned_by_commit_sha_with_its_version() -> None:
    text = (REPO / "action.yml").read_text()
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)", text, re.M)
    assert uses
    for ref, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), ref
        assert re.search(r"#\s*v\d", comment), ref
    for workflow in (REPO / ".github" / "workflows").glob("*.yml"):
        for ref, comment in re.findall(
            r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)", workflow.read_text(), re.M
        ):
            if not ref.startswith("./"):
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), (workflow, ref)
                assert re.search(r"#\s*v\d", comment), (workflow, ref)


def test_workflows_guard_the_fan_out_and_never_fail_fast() -> None:
    reusable = yaml.safe_load((REPO / ".github" / "workflows" / "compat-matrix.yml").read_text())
    jobs = reusable["jobs"]
    assert reusable[True]["workflow_call"]  # `on:` parses as True in YAML 1.1
    assert jobs["run"]["if"] == "needs.plan.outputs.has-cells == 'true'"
    assert jobs["run"]["strategy"]["fail-fast"] is False
    assert "fromJSON(needs.plan.outputs.matrix)" in jobs["run"]["strategy"]["matrix"]
    download = next(s for s in jobs["report"]["steps"] if s.get("name") == "Download the shards")
    assert download["with"]["merge-multiple"] is True
    assert download["with"]["pattern"].endswith("-*")
    assert "always()" in jobs["report"]["if"]
    for job in jobs.values():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", "")
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


# -- the action, run ---------------------------------------------------------------------------


def test_publish_only_run_sets_outputs_summary_and_uploads(workspace: Path) -> None:
    _results(workspace / "out", *GOOD)
    run = run_action(
        workspace, {"matrix": "matrix/demo.yml", "probe": "false", "report-dir": "out"}
    )
    assert not run.failed, run.stdout + "".join(s.stderr for s in run.steps)
    assert run.outputs["status"] == "pass"
    assert run.outputs["exit-code"] == "0"
    assert run.outputs["regressions"] == "0"
    assert run.outputs["regressed"] == "false"
    assert run.outputs["cells"] == "4"
    assert run.outputs["report-dir"] == str((workspace / "out").resolve())
    assert not run.step("Probe the cells").ran
    assert not run.step("Install the cells' interpreters").ran
    summary = run.step("Publish the report").summary
    assert summary.startswith("## compat-matrix: demo")
    assert "expected fail" in summary
    assert "::error" not in run.stdout  # an expected failure is no failure
    (upload,) = run.uploads
    assert upload["name"] == run.outputs["artifact-name"]
    assert {"compat.json", "compat.md", "compat.html", "junit.xml"} <= set(upload["files"])
    assert ".lock" not in upload["files"]
    assert run.outputs["artifact-id"] == "1"
    assert run.outputs["artifact-url"].endswith("/artifacts/1")
    assert run.step("Conclude").code == 0
    assert not run.caches  # nothing probed: no package cache to restore


def test_package_caches_are_keyed_on_runner_backend_and_matrix(workspace: Path) -> None:
    """The cache step gets the folder the probe step's installers use, and a key that changes
    with the matrix file (the restore key does not, so a changed matrix reuses the cache)."""
    prepare = ACTION["runs"]["steps"][2]
    probe = next(s for s in ACTION["runs"]["steps"] if s.get("name") == "Probe the cells")
    cache = next(
        s for s in ACTION["runs"]["steps"] if str(s.get("uses", "")).startswith("actions/cache@")
    )
    assert prepare["id"] == "prepare"
    assert ACTION["inputs"]["cache"]["default"] == "true"
    assert cache["if"] == "inputs.probe == 'true' && inputs.cache == 'true'"
    steps = [s.get("name") for s in ACTION["runs"]["steps"]]
    assert steps.index(cache["name"]) < steps.index("Probe the cells")
    for variable in ("UV_CACHE_DIR", "COMPAT_CACHE_DIR", "CONDA_PKGS_DIRS"):
        assert probe["env"][variable].startswith("${{ steps.prepare.outputs.cache-dir }}/")
    inputs = {"matrix": "matrix/demo.yml", "probe": "false", "report-dir": "out"}
    _results(workspace / "out", *GOOD)
    first = run_action(workspace, inputs).step("Check the inputs and pick the cells").outputs
    (workspace / "matrix" / "demo.yml").write_text(MATRIX.replace('"1.16.0", ', ""))
    second = run_action(workspace, inputs).step("Check the inputs and pick the cells").outputs
    assert first["cache-key"].startswith("compat-matrix-Linux-X64-uv-")
    assert (
        first["cache-restore-key"] == second["cache-restore-key"] == "compat-matrix-Linux-X64-uv-"
    )
    assert first["cache-key"] != second["cache-key"]
    assert first["cache-dir"] == str(workspace / ".runner-temp" / "compat-matrix-cache")


def test_failures_annotate_fail_the_step_after_the_upload(workspace: Path) -> None:
    broken = [
        *GOOD[:3],
        _cell(
            "python=3.12,six=1.17.0",
            "fail",
            category="abi-python",
            message="100% broken, see: log\nline two",
            hint="pin six<1.17",
        ),
    ]
    _results(workspace / "out", *broken)
    run = run_action(
        workspace, {"matrix": "matrix/demo.yml", "probe": "false", "report-dir": "out"}
    )
    publish = run.step("Publish the report")
    errors = [line for line in publish.stdout.splitlines() if line.startswith("::error")]
    assert errors == [
        # The line of the six axis, the last axis value that made the cell.
        "::error title=py3.12-six1.17.0%3A fail (abi-python),file=matrix/demo.yml,line=4::"
        "100%25 broken, see: log line two%0AHint: pin six<1.17"
    ]
    assert run.outputs["status"] == "fail"
    assert run.outputs["exit-code"] == "1"
    names = [step.name for step in run.steps if step.ran]
    assert names.index("Upload the report") < names.index("Conclude")
    assert run.uploads
    assert run.step("Conclude").code == 1
    assert "status fail, fail-on error: exit status 1" in run.step("Conclude").stdout


def test_fail_on_never_reports_but_passes(workspace: Path) -> None:
    _results(workspace / "out", *GOOD[:3], _cell("python=3.12,six=1.17.0", "fail"))
    run = run_action(
        workspace,
        {"matrix": "matrix/demo.yml", "probe": "false", "report-dir": "out", "fail-on": "never"},
    )
    assert not run.failed
    assert run.outputs["status"] == "fail"
    assert run.outputs["exit-code"] == "0"


def test_fail_on_metadata_fails_the_step_on_a_metadata_finding(workspace: Path) -> None:
    """`fail-on: metadata` reads as the CLI's `--fail-on metadata`: the default mode plus the
    metadata check. The project under test says Requires-Python >=3.12, the matrix tests 3.11."""
    (workspace / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1.0"\nrequires-python = ">=3.12"\n'
    )
    (workspace / "matrix" / "demo.yml").write_text(
        MATRIX.replace("matrix:\n", 'packages: [".."]\nmatrix:\n', 1)
    )
    _results(workspace / "out", *GOOD)
    inputs = {"matrix": "matrix/demo.yml", "probe": "false", "report-dir": "out"}
    plain = run_action(workspace, inputs)
    assert not plain.failed  # a finding is a warning unless fail-on asks for it
    assert "::warning title=metadata%3A outside-requires-python" in plain.stdout
    run = run_action(workspace, {**inputs, "fail-on": "metadata"})
    prepare = run.step("Check the inputs and pick the cells")
    assert prepare.code == 0
    assert prepare.outputs["fail-on"] == "error,metadata"
    assert run.outputs["exit-code"] == "1"
    assert run.step("Conclude").code == 1
    assert "::error title=metadata%3A outside-requires-python" in run.stdout
    assert "which Requires-Python >=3.12 excludes" in run.stdout
    assert "Requires-Python >=3.12" in run.summary
    never = run_action(workspace, {**inputs, "fail-on": "never,metadata"})
    assert never.outputs["exit-code"] == "1"  # metadata fails even a never gate, as on the CLI
    bad = run_action(workspace, {**inputs, "fail-on": "fail,never"})
    assert bad.step("Check the inputs and pick the cells").code == 2


def test_baseline_regression_opens_the_summary_and_fails(workspace: Path) -> None:
    write_reports(workspace / "last-night", "demo", GOOD)
    tonight = [*GOOD[:3], _cell("python=3.12,six=1.17.0", "unsupported", category="x")]
    _results(workspace / "out", *tonight)
    run = run_action(
        workspace,
        {
            "matrix": "matrix/demo.yml",
            "probe": "false",
            "report-dir": "out",
            "baseline": "last-night/compat.json",
            "fail-on": "regression",
        },
    )
    assert run.outputs["status"] == "regression"
    assert run.outputs["regressions"] == "1"
    assert run.outputs["regressed"] == "true"
    assert run.summary.startswith("### Changes since baseline (demo)")
    assert "#### ⛔ Newly unsupported (1)" in run.summary
    assert json.loads((workspace / "out" / "diff.json").read_text())["regressions"] == [
        "py3.12-six1.17.0"
    ]
    assert "::error title=regression%3A py3.12-six1.17.0" in run.stdout
    assert "diff.json" in run.uploads[0]["files"]
    assert run.step("Conclude").code == 1


def test_a_missing_baseline_is_a_notice_not_a_failure(workspace: Path) -> None:
    _results(workspace / "out", *GOOD)
    run = run_action(
        workspace,
        {
            "matrix": "matrix/demo.yml",
            "probe": "false",
            "report-dir": "out",
            "baseline": "nowhere/compat.json",
        },
    )
    assert not run.failed
    assert "::notice title=compat-matrix%3A no baseline::baseline nowhere/compat.json" in run.stdout


def test_at_most_ten_error_annotations_most_important_first(workspace: Path) -> None:
    versions = ", ".join(f'"1.{i}"' for i in range(30))
    (workspace / "matrix" / "many.yml").write_text(
        f'name: many\nmatrix:\n  python: ["3.12"]\n  pkg: [{versions}]\n'
    )
    results = [_cell(f"python=3.12,pkg=1.{i}", "fail", message=f"m{i}") for i in range(30)]
    results[17] = _cell("python=3.12,pkg=1.17", "pass", expected="fail")  # unmet: first
    _results(workspace / "out", *results)
    run = run_action(
        workspace, {"matrix": "matrix/many.yml", "probe": "false", "report-dir": "out"}
    )
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 10
    assert errors[0].startswith("::error title=py3.12-pkg1.17%3A pass (expected fail)")
    assert "21 more cells failed" in errors[-1]


def test_cells_missing_from_the_report_are_errors_not_silence(workspace: Path) -> None:
    _results(workspace / "out", *GOOD[:2])
    run = run_action(
        workspace, {"matrix": "matrix/demo.yml", "probe": "false", "report-dir": "out"}
    )
    cells = json.loads((workspace / "out" / "compat.json").read_text())["cells"]
    missing = {c["id"]: c for c in cells if c["category"] == "missing"}
    assert set(missing) == {"py3.12-six1.16.0", "py3.12-six1.17.0"}
    # The matrix expects a fail for one of them: an error there misses the expectation.
    assert missing["py3.12-six1.16.0"]["expectation"]["met"] is False
    assert run.outputs["status"] == "fail"
    assert run.step("Conclude").code == 1


def test_bad_inputs_stop_before_probing_with_one_annotation(workspace: Path) -> None:
    run = run_action(workspace, {"matrix": "matrix/demo.yml", "cells": "py3.12-six9.9.9"})
    prepare = run.step("Check the inputs and pick the cells")
    assert prepare.code == 2
    assert prepare.stdout.startswith("::error title=compat-matrix::no such cell: py3.12-six9.9.9")
    assert not run.step("Probe the cells").ran
    assert not run.step("Publish the report").ran
    assert not run.step("Upload the report").ran  # nothing to upload
    assert not run.step("Conclude").ran


def test_the_step_summary_stays_under_a_mib_for_thousands_of_cells(workspace: Path) -> None:
    axis = ", ".join(f'"1.{i}"' for i in range(60))
    (workspace / "matrix" / "big.yml").write_text(
        f'name: big\nmatrix:\n  python: ["3.12"]\n  a: [{axis}]\n  b: [{axis}]\n'
    )
    cells = workspace / "out" / "cells"
    cells.mkdir(parents=True)
    for i in range(60):
        for j in range(60):
            status = "fail" if (i + j) % 3 == 0 else "pass"
            cell = {
                "id": f"py3.12-a1.{i}-b1.{j}",
                "axes": {"python": "3.12", "a": f"1.{i}", "b": f"1.{j}"},
                "status": status,
                "message": f"{i}-{j} " + "x" * 2000 if status == "fail" else "",
            }
            (cells / f"{cell['id']}.json").write_text(json.dumps(cell))
    run = run_action(
        workspace,
        {"matrix": "matrix/big.yml", "probe": "false", "report-dir": "out", "fail-on": "never"},
    )
    assert not run.failed
    assert run.outputs["cells"] == "3600"
    assert 0 < len(run.summary.encode()) < MIB
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 10


@pytest.mark.slow
def test_the_whole_action_installs_itself_and_probes_real_cells(
    workspace: Path, python_for
) -> None:
    """Every step for real: pip-installs compat-matrix, runs nox on a pass and a skip cell."""
    here = python_for(f"{sys.version_info.major}.{sys.version_info.minor}")
    (workspace / "matrix" / "real.yml").write_text(
        textwrap.dedent(f"""\
        name: real
        timeout: 300
        matrix:
          include:
            - {{python: "{here.version.rsplit(".", 1)[0]}", six: "1.17.0"}}
            - {{python: "3.99", six: "1.17.0"}}
        """)
    )
    run = run_action(
        workspace,
        {"matrix": "matrix/real.yml", "report-dir": "out"},
        real_install=True,
    )
    logs = "\n".join(
        f"{s.name}: {s.code}\n{s.stdout[-3000:]}\n{s.stderr[-3000:]}" for s in run.steps
    )
    assert not run.failed, logs
    assert run.step("Install compat-matrix").outputs["python"].startswith(str(workspace))
    cells = {
        c["id"]: c["status"]
        for c in json.loads((workspace / "out" / "compat.json").read_text())["cells"]
    }
    assert sorted(cells.values()) == ["pass", "skip"], logs
    assert run.outputs["status"] == "pass"
    assert "## compat-matrix: real" in run.summary
    assert "::stop-commands::" in run.step("Probe the cells").stdout
    assert "no Python 3.99" in run.step("Install the cells' interpreters").stdout
    (cache,) = run.caches
    assert cache["path"] == str(workspace / ".runner-temp" / "compat-matrix-cache")
    assert (workspace / ".runner-temp" / "compat-matrix-cache" / "uv").is_dir()


def _noxfile() -> Any:
    spec = importlib.util.spec_from_file_location("compat_noxfile", REPO / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lint_accepts_only_node24_pins_listed_with_their_sha(tmp_path: Path) -> None:
    """`nox -s lint`'s check: the repository's pins pass; a Node 20 major, an unknown
    version and a SHA under the wrong version comment are each named."""
    noxfile = _noxfile()
    table = REPO / ".github" / "action-runtimes.yml"
    mine = [str(REPO / "action.yml"), *map(str, (REPO / ".github" / "workflows").glob("*.yml"))]
    assert noxfile.action_runtime_problems(mine, table) == []
    old = tmp_path / "old.yml"
    old.write_text(
        "steps:\n"
        "  - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n"
        "  - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.0\n"
        "  - uses: some/action@3d3c42e5aac5ba805825da76410c181273ba90b1 # v1.0.0\n"
        "  - uses: ./local\n"
    )
    problems = noxfile.action_runtime_problems([str(old)], table)
    assert len(problems) == 3
    assert "actions/checkout@v4.2.2: runs on node20" in problems[0]
    assert "old.yml:3" in problems[1] and "not in action-runtimes.yml" in problems[1]
    assert "some/action@v1.0.0: not in" in problems[2]


def test_readme_action_snippets_are_copy_pasteable() -> None:
    """Every YAML snippet in the README parses; every `with:` given to the action names one of
    its inputs; other actions are pinned by SHA with their version; no placeholder is left."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Use it in GitHub Actions") :]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) >= 4
    checked = 0
    for block in blocks:
        assert "OWNER" not in block and "<sha>" not in block, block
        data = yaml.safe_load(textwrap.dedent(block))
        steps = data if isinstance(data, list) else []
        for job in (data or {}).get("jobs", {}).values() if isinstance(data, dict) else []:
            steps += job.get("steps", [])
            if "uses" in job:  # the reusable workflow
                assert job["uses"].startswith("compat-matrix/compat-matrix/.github/workflows/")
        for step in steps:
            uses = step.get("uses", "")
            if uses == "compat-matrix/compat-matrix@v0":
                assert set(step.get("with", {})) <= set(ACTION["inputs"]), step
                checked += 1
            elif uses:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), uses
                assert re.search(rf"{re.escape(uses)} # v\d", block), uses
    assert checked >= 2
