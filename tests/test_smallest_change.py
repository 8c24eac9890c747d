"""The smallest change: `audit --upgrade python=3.13` proposes the oldest releases that work.

A real Python 3.11 environment with pandas 2.0.3 and numpy 1.26.4 (neither has a cp313 wheel)
is asked to move to Python 3.13. The answer must name, for each, the oldest release with a wheel
for CPython 3.13 on this platform (read here from the index's own JSON pages, independently of
compat-matrix's index client), built and probed, never the newest release.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from packaging import tags
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from compat_matrix.run.whatif import WhatIfResult, format_summary, what_if

pytestmark = pytest.mark.slow


def _oldest_with_wheel(name: str, after: str, wanted: frozenset[tags.Tag]) -> Version:
    """The oldest final release after `after` with a wheel the target interpreter installs."""
    request = urllib.request.Request(
        f"https://pypi.org/simple/{name}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        files = json.load(response)["files"]
    versions = set()
    for file in files:
        if not file["filename"].endswith(".whl") or file.get("yanked"):
            continue
        _, version, _, file_tags = parse_wheel_filename(file["filename"])
        if version > Version(after) and not version.is_prerelease and wanted & file_tags:
            versions.add(version)
    return min(versions)


def _newest(name: str) -> Version:
    with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=30) as response:
        return Version(json.load(response)["info"]["version"])


def _row_versions(result: WhatIfResult, name: str) -> tuple[str | None, str | None]:
    row = next(p for p in result.packages if p.name == name)
    return row.current, row.upgraded


@pytest.fixture(scope="module")
def py311_env(tmp_path_factory, uv_bin, python_for) -> Path:
    root = tmp_path_factory.mktemp("smallest") / "analysis"
    subprocess.run(
        [uv_bin, "venv", "-q", "--python", str(python_for("3.11").path), str(root)],
        check=True,
        timeout=120,
    )
    subprocess.run(
        [
            uv_bin,
            "pip",
            "install",
            "-q",
            "--python",
            str(root / "bin" / "python"),
            "numpy==1.26.4",
            "pandas==2.0.3",
        ],
        check=True,
        timeout=600,
    )
    return root / "bin" / "python"


def test_python_313_moves_pandas_and_numpy_to_their_oldest_working_releases(
    py311_env, tmp_path, python_for
) -> None:
    python_for("3.13")
    wanted = frozenset(
        [
            *tags.cpython_tags(python_version=(3, 13), abis=["cp313"]),
            *tags.compatible_tags(python_version=(3, 13), interpreter="cp313"),
        ]
    )
    oldest_numpy = _oldest_with_wheel("numpy", "1.26.4", wanted)
    oldest_pandas = _oldest_with_wheel("pandas", "2.0.3", wanted)

    result = what_if(py311_env, ["python=3.13"], tmp_path / "report")

    assert result.upgraded.status == "pass", result.upgraded.message
    assert _row_versions(result, "numpy") == ("1.26.4", str(oldest_numpy))
    assert _row_versions(result, "pandas") == ("2.0.3", str(oldest_pandas))
    # Not the newest: the newest releases are later than what is proposed.
    assert _newest("numpy") > oldest_numpy
    assert _newest("pandas") > oldest_pandas
    # It says how it chose, in the terminal summary, compat.md and whatif.json.
    assert result.how.startswith("smallest change: 2 packages moved")
    assert f"numpy {oldest_numpy}, pandas {oldest_pandas}" in result.how
    assert "pass the probes" in result.how
    assert "how chosen: smallest change: 2 packages moved" in format_summary(result)
    assert "**How chosen**: smallest change" in (tmp_path / "report" / "compat.md").read_text()
    document = json.loads((tmp_path / "report" / "whatif.json").read_text())
    assert document["how"] == result.how
