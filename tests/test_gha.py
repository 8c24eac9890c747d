"""The action's Python side: workflow-command escaping, output files, summary budget, annotations."""

from __future__ import annotations

import re
import textwrap
import uuid
from pathlib import Path

import pytest
from _github_files import parse_outputs

from compat_matrix.errors import UsageError
from compat_matrix.front.gha import (
    MAX_ANNOTATIONS,
    SUMMARY_LIMIT,
    annotation_commands,
    append_summary,
    default_artifact_name,
    escape_data,
    escape_property,
    main,
    set_outputs,
    validate_artifact_name,
    workflow_command,
)
from compat_matrix.reports.baseline import diff_results
from compat_matrix.results import CellResult, ExpectationOutcome
from compat_matrix.run.pipeline import load_selection, parse_run_options

ARTIFACT_FORBIDDEN = '":<>|*?\\/\r\n'


def _cell(cell_id: str, status: str, expected: str | None = None, **fields: str) -> CellResult:
    return CellResult(
        id=cell_id,
        axes={"python": "3.12"},
        status=status,  # type: ignore[arg-type]
        expectation=ExpectationOutcome(expected, expected == status) if expected else None,  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


def test_escaping_follows_the_toolkit() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a,b:c.py") == "a%2Cb%3Ac.py"
    command = workflow_command("error", "line 1\nline 2", title="x: y, z", file=None)
    assert command == "::error title=x%3A y%2C z::line 1%0Aline 2"


def test_an_injected_command_in_a_message_stays_inside_its_annotation() -> None:
    hostile = _cell("c", "fail", message="boom\n::error::forged\n::set-output name=x::y")
    (line,) = annotation_commands([hostile])
    assert "\n" not in line
    assert line.startswith("::error title=c%3A fail::")
    # A runner reads a command only at the start of a line: the forged ones are inert text.
    assert line.endswith("::boom ::error::forged ::set-output name=x::y")


def test_outputs_use_heredoc_delimiters_and_survive_multiline_values(tmp_path: Path) -> None:
    path = tmp_path / "out"
    set_outputs(path, {"one": "plain", "many": "a\nb=c\nEOF\n", "empty": ""})
    set_outputs(path, {"later": "x"})
    outputs = parse_outputs(path.read_text())
    assert outputs == {"one": "plain", "many": "a\nb=c\nEOF\n", "empty": "", "later": "x"}
    assert re.search(r"^one<<ghadelimiter_[0-9a-f-]{36}$", path.read_text(), re.M)


def test_summary_is_cut_at_a_line_to_stay_under_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "summary"
    path.write_text("earlier\n")
    text = "".join(f"| row {i} | ✅ pass |\n" for i in range(100_000))
    assert len(text.encode()) > SUMMARY_LIMIT
    append_summary(path, text)
    written = path.read_bytes()
    assert len(written) <= SUMMARY_LIMIT
    body = written.decode()
    assert body.startswith("earlier\n| row 0 |")
    assert body.endswith("the whole report is compat.md in the artifact.\n")
    before_note = body.rsplit("\n\n… cut", 1)[0]
    assert before_note.endswith("✅ pass |\n")  # whole lines only
    small = tmp_path / "small"
    append_summary(small, "short\n")
    assert small.read_text() == "short\n"


def test_annotations_most_important_first_and_at_most_ten() -> None:
    results = [_cell(f"fail-{i}", "fail", message=f"broken {i}") for i in range(20)]
    results += [
        _cell("unmet", "pass", expected="fail"),
        _cell("regressed", "fail", category="abi-numpy", message="dtype size changed"),
        _cell("infra", "error", category="network", message="connection reset"),
        _cell("expected", "fail", expected="fail"),
        _cell("fine", "pass"),
        _cell("conflict", "conflict"),
    ]
    diff = diff_results([_cell("regressed", "pass")], results)
    lines = annotation_commands(results, diff, file="matrix/default.yml")
    errors = [line for line in lines if line.startswith("::error")]
    warnings = [line for line in lines if line.startswith("::warning")]
    assert len(errors) == MAX_ANNOTATIONS
    assert errors[0].startswith("::error title=regression%3A regressed%3A fail (abi-numpy)")
    assert "unmet%3A pass (expected fail)" in errors[1]
    assert "fail-0%3A fail" in errors[2]
    assert "13 more cells failed" in errors[-1]
    assert len(warnings) == 1
    assert "infra%3A error (network)" in warnings[0]
    assert all(",file=matrix/default.yml::" in line for line in lines)
    assert not any("expected" in line and "fail-on" in line for line in lines)
    assert not any("conflict" in line or "fine" in line for line in lines)


def test_artifact_names_are_checked_and_defaults_are_valid_and_distinct() -> None:
    for char in ARTIFACT_FORBIDDEN:
        with pytest.raises(UsageError, match="refuses"):
            validate_artifact_name(f"junit{char}x")
    assert validate_artifact_name("compat-report-py3.11") == "compat-report-py3.11"
    env = {"GITHUB_JOB": "compat", "RUNNER_OS": "Linux"}
    a = default_artifact_name(env, Path("matrix/torch>=2.yml"), "", "uv")
    b = default_artifact_name(env, Path("matrix/torch>=2.yml"), "py3.11-x", "uv")
    c = default_artifact_name({**env, "RUNNER_OS": "macOS"}, Path("matrix/torch>=2.yml"), "", "uv")
    assert len({a, b, c}) == 3
    for name in (a, b, c):
        assert validate_artifact_name(name) == name
        assert name.startswith("compat-report-torch-2-")


def _env(tmp_path: Path, **inputs: str) -> dict[str, str]:
    env = {
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_OUTPUT": str(tmp_path / f"output-{uuid.uuid4().hex}"),
        "GITHUB_JOB": "test",
    }
    env.update({f"COMPAT_INPUT_{k.upper()}": v for k, v in inputs.items()})
    return env


def test_prepare_resolves_paths_and_lists_the_interpreters(tmp_path: Path, capsys) -> None:
    (tmp_path / "m.yml").write_text(
        textwrap.dedent("""\
        name: demo
        matrix:
          python: ["3.12", "3.9", "3.13t"]
          six: ["1.17.0"]
        """)
    )
    env = _env(tmp_path, matrix="m.yml", cells="py3.9-* py3.13t-six1.17.0")
    assert main(["prepare"], env) == 0
    outputs = parse_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert outputs["matrix"] == str((tmp_path / "m.yml").resolve())
    assert outputs["cells"] == "py3.9-six1.17.0 py3.13t-six1.17.0"
    assert outputs["count"] == "2"
    assert outputs["pythons"] == "3.9 3.13t"
    assert outputs["report-dir"] == str((tmp_path / "compat-report").resolve())
    assert outputs["source"] == "m.yml"
    assert outputs["fail-on"] == "error"
    assert outputs["artifact-name"].startswith("compat-report-m-")
    assert "2 cells of 'demo'" in capsys.readouterr().out


def test_a_backend_override_is_an_option_and_writes_no_file_beside_the_matrix(
    tmp_path: Path,
) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "m.yml").write_text(
        'matrix:\n  python: ["3.12"]\n  mypkg: ["./pkg"]\n',
    )
    env = _env(tmp_path, matrix="m.yml", backend="micromamba")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["prepare"], env) == 0
    outputs = parse_outputs(Path(env["GITHUB_OUTPUT"]).read_text())
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("output-")) == before
    assert outputs["matrix"] == str((tmp_path / "m.yml").resolve())
    assert outputs["backend"] == "micromamba"
    assert outputs["name"] == "m"
    assert outputs["pythons"] == ""  # micromamba brings its own interpreters
    # the later steps get it as COMPAT_BACKEND
    step = {"COMPAT_MATRIX": outputs["matrix"], "COMPAT_BACKEND": outputs["backend"]}
    options = parse_run_options([], step, tmp_path, prog="gha")
    matrix, _ = load_selection(options)
    assert matrix.backend == "micromamba"


def test_a_report_dir_outside_the_workspace_is_an_error(tmp_path: Path, capsys) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "m.yml").write_text('matrix:\n  python: ["3.12"]\n  six: ["1.17.0"]\n')
    env = _env(workspace, matrix="m.yml", report_dir="../../x")
    assert main(["prepare"], env) == 2
    assert "outside the workspace" in capsys.readouterr().out
    assert not (tmp_path.parent / "x").exists()
    inside = _env(workspace, matrix="m.yml", report_dir="reports/../compat")
    assert main(["prepare"], inside) == 0
    explicit = _env(workspace, matrix="m.yml", report_dir=str(tmp_path / "elsewhere"))
    assert main(["prepare"], explicit) == 0  # an absolute path is the user's explicit choice


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"fail_on": "sometimes"}, "fail-on must be one of error, fail, regression, never"),
        ({"backend": "mamba"}, "backend must be one of uv, venv, conda, micromamba"),
        ({"summary": "yes"}, 'summary must be "true" or "false"'),
        ({"cells": "py3.99-six1.17.0"}, "no such cell: py3.99-six1.17.0"),
        ({"artifact_name": "a/b"}, "artifact-name 'a/b' contains characters"),
    ],
)
def test_bad_inputs_are_one_error_annotation_and_exit_2(tmp_path, capsys, inputs, message) -> None:
    (tmp_path / "m.yml").write_text('matrix:\n  python: ["3.12"]\n  six: ["1.17.0"]\n')
    env = _env(tmp_path, matrix="m.yml", **inputs)
    assert main(["prepare"], env) == 2
    out = capsys.readouterr().out
    assert out.startswith("::error title=compat-matrix::")
    assert message in out.replace("%2C", ",")


def test_a_bad_matrix_file_is_annotated_at_its_line_and_column(tmp_path: Path, capsys) -> None:
    (tmp_path / "m.yml").write_text("matrix:\n  python: [3.10]\n")
    assert main(["prepare"], _env(tmp_path, matrix="m.yml")) == 2
    out = capsys.readouterr().out
    assert out.startswith(
        "::error title=compat-matrix%3A bad matrix file,file=m.yml,line=2,col=12::"
    )
