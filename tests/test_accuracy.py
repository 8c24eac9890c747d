"""The framework accuracy suite (issue 15): compat-matrix's verdicts against pip's ground truth.

Each matrix in ``tests/accuracy/`` is run for real (uv or venv, the frameworks' real wheels) and
every cell's verdict is compared with ``tests/accuracy/ground_truth.json``, which
``tests/accuracy/ground_truth.py`` took without compat-matrix (a fresh pip venv and a real
operation per cell). The bar is zero false fails and zero false passes; a mismatch prints the
whole confusion table and each disagreeing cell's findings. A second matrix is built here from
the gcc-built broken extensions of ``_native_fixtures``: those cells must fail, the good one pass.

Environments are kept in ``.nox/accuracy-envs`` (or ``$COMPAT_ACCURACY_ENV_DIR``) and reused
when a cell's inputs are unchanged, and the big wheels stay in uv's own cache, so a warm run
only probes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
from _native_fixtures import build_failure_modules, describe_python

from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.results import CellResult
from compat_matrix.run.pipeline import RunOptions, load_selection, run_pipeline

REPO = Path(__file__).resolve().parents[1]
ACCURACY = REPO / "tests" / "accuracy"
GROUND_TRUTH = ACCURACY / "ground_truth.json"
MATRICES = sorted(ACCURACY.glob("*.yml"))
AxesKey = frozenset[tuple[str, str]]
#: The gcc-built failure modes of ``_native_fixtures`` and the category each cell must carry.
NATIVE_CATEGORIES = {
    "noinit": "abi-python",
    "undefined": "undefined-symbol",
    "crash": "crash",
    "needslib": "missing-library",
    "versioned": "symbol-version",
    "foreign": "abi-python",
}


def env_root() -> Path:
    return Path(os.environ.get("COMPAT_ACCURACY_ENV_DIR") or REPO / ".nox" / "accuracy-envs")


def run_matrix(path: Path, report_dir: Path, jobs: int = 2, cell: str = "") -> list[CellResult]:
    """Run every cell of the matrix at ``path`` (or the one ``cell``) through the one pipeline
    every front door uses. A cell run alone keeps its environments in a folder of its own, so
    cells run by parallel test workers never wait on each other's run lock."""
    envs = env_root() / path.stem / cell if cell else env_root() / path.stem
    options = RunOptions(matrix=path, report_dir=report_dir, env_root=envs, jobs=jobs, cells=cell)
    matrix, cells = load_selection(options)
    return run_pipeline(matrix, cells, options).results


def axes_key(axes: dict[str, str]) -> AxesKey:
    return frozenset(axes.items())


def ground_truth() -> dict[AxesKey, dict[str, object]]:
    """Ground-truth records by the axes a matrix cell would have (python plus the pins)."""
    document = json.loads(GROUND_TRUTH.read_text())
    by_axes: dict[AxesKey, dict[str, object]] = {}
    for record in document["cells"]:
        axes = {"python": record["python"], **record["pins"]}
        by_axes[axes_key(axes)] = record
    return by_axes


def expected_statuses(path: Path) -> dict[AxesKey, str]:
    """Each cell of a matrix file and the status its ``expect:`` entries give it."""
    matrix = load_matrix(path)
    out: dict[AxesKey, str] = {}
    for cell in expand(matrix):
        entry = next((e for e in matrix.expect if e.matches(dict(cell.axes))), None)
        out[axes_key(dict(cell.axes))] = entry.status if entry else "pass"
    return out


def _findings(result: CellResult) -> Iterable[str]:
    for probe in result.probes:
        if probe.status not in ("pass", "skip"):
            message = (probe.message or "").splitlines()[0][:300] if probe.message else ""
            yield f"    {probe.probe}/{probe.target}: {probe.status} {probe.category}: {message}"


def confusion_report(rows: list[tuple[CellResult, str]]) -> str:
    """The truth x verdict counts, then one line per disagreeing cell with its findings."""
    counts = Counter((truth, result.status) for result, truth in rows)
    lines = ["truth -> verdict: count"]
    lines += [
        f"  {truth:11} -> {verdict:11}: {n}" for (truth, verdict), n in sorted(counts.items())
    ]
    false_fails = sum(n for (t, v), n in counts.items() if t == "pass" and v == "fail")
    false_passes = sum(n for (t, v), n in counts.items() if t == "fail" and v == "pass")
    lines.append(f"false fails: {false_fails}, false passes: {false_passes}")
    for result, truth in rows:
        if result.status != truth:
            message = (result.message or "").splitlines()[0][:300] if result.message else ""
            lines.append(f"{result.id}: truth {truth}, verdict {result.status} ({result.category})")
            lines.append(f"  {message}")
            lines.extend(_findings(result))
    return "\n".join(lines)


def test_matrices_list_exactly_the_ground_truth_cells_with_its_verdicts() -> None:
    """The suite's ``expect:`` entries are pip's verdicts, every cell has one, none is missing."""
    truth = ground_truth()
    expected: dict[AxesKey, str] = {}
    for path in MATRICES:
        expected.update(expected_statuses(path))
    assert set(expected) == set(truth), "matrix cells and ground-truth cells differ"
    assert {key: str(record["status"]) for key, record in truth.items()} == expected
    assert not [r for r in truth.values() if r["status"] == "error"], "rerun ground_truth.py"


def matrix_cells() -> list[object]:
    """One test per cell of every accuracy matrix, each its own xdist group: the suite's cells
    spread over the test workers instead of one matrix holding one worker for minutes."""
    params: list[object] = []
    for path in MATRICES:
        for cell in expand(load_matrix(path)):
            group = pytest.mark.xdist_group(f"accuracy-{path.stem}-{cell.id}")
            params.append(pytest.param(path, cell.id, marks=group, id=f"{path.stem}-{cell.id}"))
    return params


@pytest.mark.slow
@pytest.mark.parametrize(("path", "cell"), matrix_cells())
def test_framework_verdicts_equal_pip_ground_truth(
    path: Path, cell: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_HTTP_RETRIES", "3")  # the frameworks' wheels are hundreds of MB
    truth = ground_truth()
    results = run_matrix(path, tmp_path / "report", cell=cell)
    assert [r.id for r in results] == [cell]
    missing = [r.id for r in results if r.category == "no-interpreter"]
    assert not missing, f"CPython 3.9-3.13 exist on this image and in CI; missing for {missing}"
    rows = [
        (r, str(truth.get(axes_key(dict(r.axes)), {}).get("status", "no-truth"))) for r in results
    ]
    assert all(result.status == status for result, status in rows), confusion_report(rows)
    # Every hint that proposes a version was checked against the resolver before it was printed.
    proposing = [r for r in results if r.status != "pass" and re.search(r"[<>=]=?\s*\d", r.hint)]
    unchecked = [
        (r.id, r.hint)
        for r in proposing
        if not r.hint.rstrip(".").endswith(("(verified: resolves)", "(unverified)"))
    ]
    assert not unchecked, unchecked
    refused = [(r.id, r.hint) for r in results if "numpy>=2" in r.hint and "tensorflow" in r.id]
    assert not refused, refused


def _prebuilt_project(root: Path, name: str, files: list[Path]) -> Path:
    """A local project whose build (``prebuilt_backend.py``) packages ``files`` as they are."""
    project = root / name
    (project / "prebuilt").mkdir(parents=True)
    for path in files:
        shutil.copy2(path, project / "prebuilt" / path.name)
    shutil.copy2(ACCURACY / "prebuilt_backend.py", project / "prebuilt_backend.py")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "prebuilt_backend"\n'
        'backend-path = ["."]\n\n'
        f'[project]\nname = "{name}"\nversion = "1.0"\n'
    )
    return project


@pytest.mark.slow
def test_broken_native_extensions_fail_and_the_good_one_passes(
    tmp_path: Path, python_for: object
) -> None:
    """The gcc-built failure modes, each a local project installed in its own cell."""
    interpreter = python_for("3.11")  # type: ignore[operator]
    target = describe_python(str(interpreter.path))
    names = build_failure_modules(target, tmp_path / "native")
    site = tmp_path / "native" / "site"
    include = []
    for mode in ("good", *NATIVE_CATEGORIES):
        files = sorted(site.glob(names[mode] + ".*"))
        _prebuilt_project(tmp_path / "projects", f"cm-{mode}", files)
        include.append(f'    - {{python: "3.11", cm-{mode}: "./projects/cm-{mode}"}}')
    matrix = tmp_path / "native.yml"
    matrix.write_text(
        "name: accuracy-native\nbackend: uv\nmatrix:\n  include:\n" + "\n".join(include) + "\n"
    )
    results = run_matrix(matrix, tmp_path / "report")
    rows = [(r, "pass" if "cm-good" in r.axes else "fail") for r in results]
    assert len(rows) == 7
    assert all(result.status == status for result, status in rows), confusion_report(rows)
    categories = {next(iter(r.axes.keys() - {"python"}))[3:]: r.category for r in results}
    assert categories == {"good": None, **NATIVE_CATEGORIES}


if __name__ == "__main__":  # pragma: no cover - a by-hand run of one matrix
    for result in run_matrix(Path(sys.argv[1]), Path(sys.argv[2])):
        print(result.id, result.status, result.category, (result.message or "")[:200])
