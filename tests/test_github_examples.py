"""GitHub's own worked matrix examples, run through `compat-matrix expand` as a user would.

Each example is the `strategy.matrix` of a GitHub documentation page (github/docs:
data/reusables/actions/jobs/*.md), written as a compat-matrix file: the keys that are not
Python, CUDA, a runner (`os`) or a distribution are declared in `labels:`, which is all a user has
to add. The expected jobs are the ones the documentation lists (or counts), in GitHub's order.
Label values are kept as written (`10`, `false`), object values as canonical JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compat_matrix.build.platforms import Platform, other_platform_reason, runner_platform
from compat_matrix.front.plan import PlanSettings, plan_shards
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix


def _expand(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "compat.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "compat_matrix", "expand", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _jobs(tmp_path: Path, text: str) -> list[dict[str, str]]:
    proc = _expand(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    return [cell["axes"] for cell in json.loads(proc.stdout)]


# (page, matrix file, expected jobs in order)
EXAMPLES = [
    (
        "single-dimension-matrix",
        """
        labels: [version]
        matrix:
          version: [10, 12, 14]
        """,
        [{"version": "10"}, {"version": "12"}, {"version": "14"}],
    ),
    (
        "multi-dimension-matrix",
        """
        labels: [version]
        matrix:
          os: [ubuntu-22.04, ubuntu-20.04]
          version: [10, 12, 14]
        """,
        [
            {"os": os, "version": version}
            for os in ("ubuntu-22.04", "ubuntu-20.04")
            for version in ("10", "12", "14")
        ],
    ),
    (
        "multi-dimension-matrix (objects)",
        """
        labels: [node]
        matrix:
          os:
            - ubuntu-latest
            - macos-latest
          node:
            - version: 14
            - version: 20
              env: NODE_OPTIONS=--openssl-legacy-provider
        """,
        [
            {"os": os, "node": node}
            for os in ("ubuntu-latest", "macos-latest")
            for node in (
                '{"version":14}',
                '{"env":"NODE_OPTIONS=--openssl-legacy-provider","version":20}',
            )
        ],
    ),
    (
        "matrix-include (fruit and animal)",
        """
        labels: [fruit, animal, color, shape]
        matrix:
          fruit: [apple, pear]
          animal: [cat, dog]
          include:
            - color: green
            - color: pink
              animal: cat
            - fruit: apple
              shape: circle
            - fruit: banana
            - fruit: banana
              animal: cat
        """,
        [
            {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
            {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
            {"fruit": "pear", "animal": "cat", "color": "pink"},
            {"fruit": "pear", "animal": "dog", "color": "green"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    ),
    (
        "matrix-include (perl: seven jobs, five for ubuntu, two for macos)",
        """
        labels: [perl]
        matrix:
          os: [ubuntu-latest]
          perl:
              - '5.16'
              - '5.20'
              - '5.26'
              - '5.30'
              - latest
          include:
            - os: macos-latest
              perl: '5.26'
            - os: macos-latest
              perl: latest
        """,
        [
            *({"os": "ubuntu-latest", "perl": p} for p in ("5.16", "5.20", "5.26", "5.30")),
            {"os": "ubuntu-latest", "perl": "latest"},
            {"os": "macos-latest", "perl": "5.26"},
            {"os": "macos-latest", "perl": "latest"},
        ],
    ),
    (
        "matrix-expand-with-include (node, npm)",
        """
        labels: [node, npm]
        matrix:
          os: [windows-latest, ubuntu-latest]
          node: [12, 14, 16]
          include:
            - os: windows-latest
              node: 16
              npm: 6
        """,
        [
            {"os": "windows-latest", "node": "12"},
            {"os": "windows-latest", "node": "14"},
            {"os": "windows-latest", "node": "16", "npm": "6"},
            {"os": "ubuntu-latest", "node": "12"},
            {"os": "ubuntu-latest", "node": "14"},
            {"os": "ubuntu-latest", "node": "16"},
        ],
    ),
    (
        "matrix-add-with-include (ten jobs)",
        """
        labels: [version]
        matrix:
          os: [macos-latest, windows-latest, ubuntu-latest]
          version: [12, 14, 16]
          include:
            - os: windows-latest
              version: 17
        """,
        [
            *(
                {"os": os, "version": v}
                for os in ("macos-latest", "windows-latest", "ubuntu-latest")
                for v in ("12", "14", "16")
            ),
            {"os": "windows-latest", "version": "17"},
        ],
    ),
    (
        "matrix-add-with-include (include only: site, datacenter)",
        """
        labels: [site, datacenter]
        matrix:
          include:
            - site: "production"
              datacenter: "site-a"
            - site: "staging"
              datacenter: "site-b"
        """,
        [
            {"site": "production", "datacenter": "site-a"},
            {"site": "staging", "datacenter": "site-b"},
        ],
    ),
    (
        "matrix-exclude (nine jobs)",
        """
        labels: [version, environment]
        matrix:
          os: [macos-latest, windows-latest]
          version: [12, 14, 16]
          environment: [staging, production]
          exclude:
            - os: macos-latest
              version: 12
              environment: production
            - os: windows-latest
              version: 16
        """,
        [
            {"os": os, "version": v, "environment": e}
            for os in ("macos-latest", "windows-latest")
            for v in ("12", "14", "16")
            for e in ("staging", "production")
            if (os, v, e) != ("macos-latest", "12", "production")
            and (os, v) != ("windows-latest", "16")
        ],
    ),
    (
        "fail-fast (experimental)",
        """
        labels: [version, experimental]
        matrix:
          version: [6, 7, 8]
          experimental: [false]
          include:
            - version: 9
              experimental: true
        """,
        [
            {"version": "6", "experimental": "false"},
            {"version": "7", "experimental": "false"},
            {"version": "8", "experimental": "false"},
            {"version": "9", "experimental": "true"},
        ],
    ),
]


@pytest.mark.parametrize(("page", "text", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_expand_reproduces_githubs_worked_example(tmp_path, page, text, expected) -> None:
    assert _jobs(tmp_path, text) == expected


def test_the_exclude_example_runs_nine_jobs_as_the_page_says(tmp_path) -> None:
    page, text, _ = EXAMPLES[8]
    assert page.startswith("matrix-exclude")
    assert len(_jobs(tmp_path, text)) == 9


def test_every_cell_id_is_unique_and_safe(tmp_path) -> None:
    for _, text, _ in EXAMPLES:
        proc = _expand(tmp_path, text)
        ids = [cell["id"] for cell in json.loads(proc.stdout)]
        assert len(set(ids)) == len(ids)
        assert all(c.isalnum() or c in "._+-" for i in ids for c in i)


# GitHub's errors for a matrix, and ours for labels: exit 2, file:line:column, no traceback.
ERRORS = [
    (
        "an empty vector (GitHub: 'Matrix vector ... does not contain any values')",
        """
        labels: [version]
        matrix:
          version: []
        """,
        ":4:12:",
        "empty list",
    ),
    (
        "an exclude key that is not a vector (GitHub fails the workflow)",
        """
        labels: [version, color]
        matrix:
          version: [10, 12]
          include:
            - color: red
          exclude:
            - color: red
        """,
        ":8:7:",
        '"color" is not a matrix vector',
    ),
    (
        "no vectors and no include",
        """
        matrix: {}
        """,
        ":2:9:",
        "no vectors and no include",
    ),
    (
        "a key that is neither a label nor a distribution name",
        """
        matrix:
          fruit color: [apple]
        """,
        ":3:3:",
        "or a key listed in `labels:`",
    ),
    (
        "a label nobody uses (a typo)",
        """
        labels: [fruits]
        matrix:
          fruit: [apple]
        """,
        ":2:10:",
        'label "fruits" is not a key of the matrix',
    ),
    (
        "a reserved key listed as a label",
        """
        labels: [os]
        matrix:
          os: [ubuntu-latest]
        """,
        ":2:10:",
        '"os" is a reserved key',
    ),
    (
        "an os value that is no runner label",
        """
        matrix:
          os: ["ubuntu latest"]
        """,
        ":3:8:",
        "expected a GitHub runner label",
    ),
]


@pytest.mark.parametrize(("what", "text", "where", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_a_bad_matrix_is_an_error_with_its_location(tmp_path, what, text, where, message) -> None:
    proc = _expand(tmp_path, text)
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    assert f"compat.yml{where}" in proc.stderr
    assert message in proc.stderr


def test_labels_install_nothing_and_os_is_no_distribution(tmp_path) -> None:
    path = tmp_path / "compat.yml"
    path.write_text(
        textwrap.dedent(
            """
            labels: [experimental]
            matrix:
              os: [ubuntu-24.04]
              python: ["3.12"]
              numpy: ["2.2.6"]
              experimental: [true]
            expect:
              - {match: {experimental: true}, status: pass}
            """
        ),
        encoding="utf-8",
    )
    [cell] = expand(load_matrix(path))
    assert cell.packages == {"numpy": "2.2.6"}
    assert cell.os == "ubuntu-24.04"
    assert cell.id == "ubuntu-24.04-py3.12-numpy2.2.6-experimentaltrue"
    assert load_matrix(path).expect[0].matches(cell.axes)


def test_plan_routes_each_cell_to_its_os_runner(tmp_path) -> None:
    _page, text, _ = EXAMPLES[6]
    path = tmp_path / "compat.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    cells = expand(load_matrix(path))
    shards = plan_shards(cells, PlanSettings(max_jobs=256))
    by_cell = {cell_id: shard.runs_on for shard in shards for cell_id in shard.cells}
    assert by_cell == {cell.id: cell.os for cell in cells}
    assert {shard.name.rsplit("-", 1)[0] for shard in shards} == {
        "cpu-macos-latest",
        "cpu-windows-latest",
        "cpu-ubuntu-latest",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "plan", str(path), "--github"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    planned = json.loads(proc.stdout.strip().splitlines()[-1].split("=", 1)[-1])
    assert {job["runs-on"] for job in planned["include"]} == {
        "macos-latest",
        "windows-latest",
        "ubuntu-latest",
    }


def test_plan_needs_a_job_per_runner(tmp_path) -> None:
    path = tmp_path / "compat.yml"
    path.write_text(textwrap.dedent(EXAMPLES[6][1]), encoding="utf-8")
    with pytest.raises(Exception, match="at least 3"):
        plan_shards(expand(load_matrix(path)), PlanSettings(max_jobs=2))


@pytest.mark.parametrize(
    ("label", "platform"),
    [
        ("ubuntu-24.04", Platform("linux", "x86_64")),
        ("ubuntu-latest", Platform("linux", "x86_64")),
        ("ubuntu-24.04-arm", Platform("linux", "arm64")),
        ("macos-15", Platform("macos", "arm64")),
        ("macos-latest", Platform("macos", "arm64")),
        ("macos-13", Platform("macos", "x86_64")),
        ("macos-15-intel", Platform("macos", "x86_64")),
        ("macos-14-large", Platform("macos", "x86_64")),
        ("windows-2025", Platform("windows", "x86_64")),
        ("windows-11-arm", Platform("windows", "arm64")),
        ("my-gpu-runner", None),
    ],
)
def test_runner_labels_name_their_platform(label, platform) -> None:
    assert runner_platform(label) == platform


def test_a_cell_for_another_platform_is_named_as_such() -> None:
    here = Platform("linux", "x86_64")
    assert other_platform_reason("ubuntu-24.04", here) is None
    assert other_platform_reason("self-hosted-gpu", here) is None
    assert other_platform_reason(None, here) is None
    reason = other_platform_reason("macos-15", here)
    assert reason == "this cell runs on macos-15 (macOS arm64); this machine is Linux x86_64"


@pytest.mark.slow
def test_a_local_run_skips_cells_for_another_platform(tmp_path) -> None:
    """One real cell runs here (Linux x86-64 runner label); its macOS twin is static only."""
    (tmp_path / "compat.yml").write_text(
        textwrap.dedent(
            """
            matrix:
              os: [ubuntu-24.04, macos-15]
              python: ["3.11"]
              six: ["1.16.0"]
            """
        ),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "run", "compat.yml", "-o", "out"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "out" / "compat.json").read_text(encoding="utf-8"))
    by_os = {cell["axes"]["os"]: cell for cell in report["cells"]}
    assert by_os["ubuntu-24.04"]["status"] == "pass"
    assert by_os["ubuntu-24.04"]["resolved"]["six"] == "1.16.0"
    macos = by_os["macos-15"]  # answered here from its resolution and wheels: static only
    assert (macos["status"], macos["static_only"]) == ("pass", True)
    assert "macos-15 (macOS arm64)" in macos["message"]
    assert "run on a macos-15 runner" in macos["message"]
