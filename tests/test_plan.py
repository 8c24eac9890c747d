"""`compat-matrix plan`: shards for a GitHub fan-out, balanced, complete, within 256 jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from compat_matrix.errors import UsageError
from compat_matrix.front.plan import (
    GITHUB_MAX_JOBS,
    PlanSettings,
    estimate_cost,
    github_matrix,
    load_history,
    needs_gpu,
    plan_shards,
)
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.matrix.model import Cell

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compat_matrix", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def _matrix(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.yml"
    path.write_text(textwrap.dedent(body))
    return path


def _cells(n: int, **extra: str) -> list[Cell]:
    return [Cell(f"c{i}", {"python": "3.11", "pkg": f"1.{i}", **extra}) for i in range(n)]


def _flatten(shards) -> list[str]:  # type: ignore[no-untyped-def]
    return [cell for shard in shards for cell in shard.cells]


@pytest.mark.parametrize(
    ("cells", "max_jobs"), [(1, 256), (22, 256), (22, 4), (1000, 256), (3000, 7)]
)
def test_every_cell_lands_in_exactly_one_shard_within_the_job_limit(cells, max_jobs) -> None:
    shards = plan_shards(_cells(cells), PlanSettings(max_jobs=max_jobs))
    placed = _flatten(shards)
    assert sorted(placed) == sorted(f"c{i}" for i in range(cells))
    assert not [cell for cell, n in Counter(placed).items() if n > 1]
    assert len(shards) == min(cells, max_jobs)
    assert len(shards) <= GITHUB_MAX_JOBS


def test_ten_thousand_cells_fit_256_jobs_balanced_by_cost() -> None:
    cells = [
        Cell(f"c{i}", {"python": "3.12", "torch" if i % 10 == 0 else "six": "2.0"})
        for i in range(10_000)
    ]
    shards = plan_shards(cells)
    assert len(shards) == 256
    assert len(_flatten(shards)) == 10_000
    costs = [shard.cost for shard in shards]
    # LPT keeps every shard within one (largest) cell of the others.
    biggest = max(estimate_cost(cell) for cell in cells)
    assert max(costs) - min(costs) <= biggest


def test_cells_keep_job_order_inside_a_shard_and_a_single_cell_names_its_job() -> None:
    cells = _cells(9)
    shards = plan_shards(cells, PlanSettings(max_jobs=2))
    order = {cell.id: i for i, cell in enumerate(cells)}
    for shard in shards:
        assert [order[c] for c in shard.cells] == sorted(order[c] for c in shard.cells)
    one = plan_shards(cells[:1])
    assert one[0].title == "c0"


def test_expensive_cells_are_spread_not_stacked() -> None:
    heavy = [Cell(f"t{i}", {"python": "3.12", "torch": "2.5.1"}) for i in range(4)]
    light = [Cell(f"s{i}", {"python": "3.12", "six": "1.17.0"}) for i in range(40)]
    shards = plan_shards(heavy + light, PlanSettings(max_jobs=4))
    assert [sum(c.startswith("t") for c in s.cells) for s in shards] == [1, 1, 1, 1]


def test_gpu_cells_get_their_own_shards_on_the_gpu_label() -> None:
    cpu = [Cell(f"cpu{i}", {"python": "3.12", "cuda": "none", "torch": "2.5.1"}) for i in range(6)]
    gpu = [Cell(f"gpu{i}", {"python": "3.12", "cuda": "12.4", "torch": "2.5.1"}) for i in range(3)]
    assert not needs_gpu(cpu[0])
    assert needs_gpu(gpu[0])
    settings = PlanSettings(max_jobs=4, runs_on="ubuntu-24.04", gpu_runs_on="gpu-runner")
    shards = plan_shards(cpu + gpu, settings)
    for shard in shards:
        if shard.gpu:
            assert shard.runs_on == "gpu-runner"
            assert all(c.startswith("gpu") for c in shard.cells)
        else:
            assert shard.runs_on == "ubuntu-24.04"
            assert all(c.startswith("cpu") for c in shard.cells)
    assert {s.gpu for s in shards} == {True, False}
    assert len(shards) <= 4
    capped = plan_shards(cpu + gpu, PlanSettings(gpu_runs_on="gpu", max_gpu_jobs=1))
    assert sum(s.gpu for s in capped) == 1


def test_without_a_gpu_label_gpu_cells_run_with_the_others() -> None:
    cells = [Cell("g", {"python": "3.12", "cuda": "12.4"}), Cell("c", {"python": "3.12"})]
    shards = plan_shards(cells, PlanSettings(max_jobs=1))
    assert shards[0].cells == ("g", "c")
    assert shards[0].runs_on == "ubuntu-latest"


def test_history_from_a_previous_report_drives_the_balance(tmp_path: Path) -> None:
    report = tmp_path / "compat.json"
    report.write_text(
        json.dumps(
            {
                "schema": 1,
                "name": "x",
                "cells": [
                    {"id": "c0", "durations": {"build": 500.0, "probes": 100.0}},
                    {"id": "c1", "durations": {"build": 1.0, "probes": 1.0}},
                ],
            }
        )
    )
    history = load_history(report)
    assert history == {"c0": 600.0, "c1": 2.0}
    shards = plan_shards(_cells(6), PlanSettings(max_jobs=2), history)
    alone = next(s for s in shards if "c0" in s.cells)
    assert alone.cells == ("c0",)


def test_job_limits_are_checked() -> None:
    with pytest.raises(UsageError, match="between 1 and 256"):
        plan_shards(_cells(3), PlanSettings(max_jobs=257))
    with pytest.raises(UsageError, match="between 1 and 256"):
        plan_shards(_cells(3), PlanSettings(max_jobs=0))


def test_github_matrix_is_what_a_workflow_reads() -> None:
    shards = plan_shards(_cells(3), PlanSettings(max_jobs=2, runs_on="ubuntu-24.04"))
    include = github_matrix(shards)["include"]
    assert [sorted(entry) for entry in include] == [
        ["cells", "cost", "count", "gpu", "name", "runs-on", "shard"]
    ] * 2
    assert include[0]["shard"] == "cpu-1"
    assert include[0]["cells"].split() == list(shards[0].cells)
    assert include[0]["gpu"] == "false"


def test_cli_plan_github_output_and_empty_guard(tmp_path: Path) -> None:
    matrix = _matrix(
        tmp_path,
        """\
        matrix:
          python: ["3.11", "3.12"]
          six: ["1.16.0", "1.17.0"]
          cuda: ["none", "12.4"]
        """,
    )
    output = tmp_path / "github_output"
    env = {**os.environ, "GITHUB_OUTPUT": str(output)}
    proc = _cli(
        "plan",
        str(matrix),
        "--github",
        "--github-output",
        "--max-jobs",
        "3",
        "--gpu-label",
        '["self-hosted", "gpu"]',
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert sum(entry["count"] for entry in printed["include"]) == 8
    gpu = [entry for entry in printed["include"] if entry["gpu"] == "true"]
    assert gpu
    assert all(entry["runs-on"] == ["self-hosted", "gpu"] for entry in gpu)
    text = output.read_text()
    assert "has-cells<<ghadelimiter_" in text
    assert "\ntrue\n" in text
    assert proc.stdout.strip() in text


def test_cli_plan_selects_cells_and_rejects_unknown_ids(tmp_path: Path) -> None:
    matrix = _matrix(tmp_path, 'matrix:\n  python: ["3.11", "3.12"]\n  six: ["1.17.0"]\n')
    proc = _cli("plan", str(matrix), "--github", "--cells", "py3.12-*")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["include"][0]["cells"] == "py3.12-six1.17.0"
    proc = _cli("plan", str(matrix), "--github", "--cells", "py3.13-six1.17.0")
    assert proc.returncode == 2
    assert "no such cell: py3.13-six1.17.0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_plan_github_output_needs_the_runner_file(tmp_path: Path) -> None:
    matrix = _matrix(tmp_path, 'matrix:\n  python: ["3.11"]\n  six: ["1.17.0"]\n')
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_OUTPUT"}
    proc = _cli("plan", str(matrix), "--github-output", env=env)
    assert proc.returncode == 2
    assert "GITHUB_OUTPUT" in proc.stderr


def test_default_matrix_plans_one_job_per_cell() -> None:
    proc = _cli("plan", str(REPO / "matrix" / "default.yml"), "--github")
    include = json.loads(proc.stdout)["include"]
    ids = [c.id for c in expand(load_matrix(REPO / "matrix" / "default.yml"))]
    assert sorted(entry["cells"] for entry in include) == sorted(ids)


def test_an_empty_plan_says_so_instead_of_breaking_fromjson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compat_matrix.front import cli

    assert plan_shards([]) == []
    assert github_matrix([]) == {"include": []}
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    cli._write_plan_outputs(json.dumps(github_matrix([])), 0, 0)
    text = output.read_text()
    # The workflow's run job is guarded by `has-cells == 'true'`; fromJSON never sees [].
    assert "has-cells<<" in text
    assert "\nfalse\n" in text
