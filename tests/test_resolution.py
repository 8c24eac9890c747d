"""How versions are picked: `resolution`, `as-of`, `prerelease` and the matrix's own indexes.

The loader and id tests are cheap. The slow tests run real uv resolutions against PyPI (tiny
packages only: packaging, pyparsing, requests' pure-Python tree, pytest; numpy is resolved, never
downloaded) and build real environments for the end-to-end cells.
"""

from __future__ import annotations

import datetime
import functools
import http.server
import json
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _wheels import write_wheel
from packaging.version import Version

from compat_matrix.build.backends import EnvRequest, package_index, resolve, used_indexes
from compat_matrix.errors import MatrixError
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix
from compat_matrix.matrix.model import Cell, Selection
from compat_matrix.reports.html import render_html
from compat_matrix.reports.junit import render_junit
from compat_matrix.reports.markdown import render_markdown
from compat_matrix.results import CellResult
from compat_matrix.run.cell import RunSettings, run_cell

NIGHTLY = "https://pypi.anaconda.org/scientific-python-nightly-wheels/simple"


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "matrix.yml"
    path.write_text(text, encoding="utf-8")
    return load_matrix(path)


def err(tmp_path: Path, text: str) -> str:
    """The error as `line:column: problem`, after checking that it names the file."""
    with pytest.raises(MatrixError) as info:
        load(tmp_path, text)
    prefix = f"{tmp_path / 'matrix.yml'}:"
    assert str(info.value).startswith(prefix)
    return str(info.value)[len(prefix) :]


# -- the matrix file ---------------------------------------------------------------------------


def test_top_level_keys_load_and_axes_override_them(tmp_path: Path) -> None:
    matrix = load(
        tmp_path,
        "resolution: lowest-direct\n"
        "as-of: 2024-06-01\n"  # unquoted: YAML reads a timestamp, the loader keeps the day
        "prerelease: allow\n"
        "index-url: https://pypi.org/simple\n"
        f"extra-index-url: {NIGHTLY}\n"
        "matrix:\n"
        '  python: ["3.12"]\n'
        "  resolution: [highest, lowest]\n"
        "  include:\n"
        '    - {resolution: lowest, as-of: "2023-01-15", prerelease: disallow}\n',
    )
    assert matrix.selection == Selection("lowest-direct", "2024-06-01", "allow")
    assert matrix.index_url == "https://pypi.org/simple"
    assert matrix.extra_index_urls == (NIGHTLY,)
    highest, lowest = expand(matrix)
    assert matrix.selection_for(highest) == Selection("highest", "2024-06-01", "allow")
    assert matrix.selection_for(lowest) == Selection("lowest", "2023-01-15", "disallow")
    assert highest.packages == {} == lowest.packages  # reserved axes install nothing


def test_extra_index_url_takes_a_list(tmp_path: Path) -> None:
    matrix = load(
        tmp_path,
        f'extra-index-url:\n  - {NIGHTLY}\n  - "http://127.0.0.1:8080/simple/"\n'
        'matrix:\n  python: ["3.12"]\n',
    )
    assert matrix.extra_index_urls == (NIGHTLY, "http://127.0.0.1:8080/simple/")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "resolution: newest\n",
            '1:13: resolution: unknown resolution "newest" (did you mean "lowest"?); expected '
            "one of: highest, lowest-direct, lowest",
        ),
        (
            "resolution: lowest_direct\n",
            '1:13: resolution: unknown resolution "lowest_direct" (did you mean '
            '"lowest-direct"?); expected one of: highest, lowest-direct, lowest',
        ),
        (
            "prerelease: yes-please\n",
            '1:13: prerelease: unknown prerelease "yes-please"; expected one of: allow, '
            "if-necessary, disallow",
        ),
        (
            "prerelease: true\n",
            "1:13: prerelease: expected a string, got the boolean true",
        ),
        (
            "as-of: 2023-02-30\n",
            "1:8: as-of: expected a date such as 2024-06-01 (YYYY-MM-DD: the day to install as "
            'of), got "2023-02-30", which is not a day of the calendar',
        ),
        (
            'as-of: "15.01.2023"\n',
            "1:8: as-of: expected a date such as 2024-06-01 (YYYY-MM-DD: the day to install as "
            'of), got "15.01.2023"',
        ),
        (
            "as-of: 2023\n",
            "1:8: as-of: expected a date such as 2024-06-01, got the number 2023",
        ),
        (
            "as-of: 2999-01-01\n",
            "1:8: as-of: expected a date such as 2024-06-01 (YYYY-MM-DD: the day to install as "
            'of), got "2999-01-01", which is in the future',
        ),
    ],
)
def test_bad_selection_values_name_line_column_and_what_was_expected(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert err(tmp_path, text + 'matrix:\n  python: ["3.12"]\n') == expected


def test_bad_axis_values_are_located_in_the_vector_and_in_include(tmp_path: Path) -> None:
    assert err(tmp_path, "matrix:\n  resolution: [highest, lowset]\n") == (
        '2:25: matrix.resolution[1]: unknown resolution "lowset" (did you mean "lowest"?); '
        "expected one of: highest, lowest-direct, lowest"
    )
    assert err(tmp_path, "matrix:\n  as-of: [2024-06-01, 2024-13-01]\n") == (
        "2:23: matrix.as-of[1]: expected a date such as 2024-06-01 (YYYY-MM-DD: the day to "
        'install as of), got "2024-13-01", which is not a day of the calendar'
    )
    text = 'matrix:\n  python: ["3.12"]\n  include:\n    - {prerelease: sometimes}\n'
    assert err(tmp_path, text).startswith(
        '4:20: matrix.include[0].prerelease: unknown prerelease "sometimes"'
    )


@pytest.mark.parametrize(
    ("value", "column", "why"),
    [
        ('"--index-url=https://evil.example/simple"', 12, "got "),
        ('"https://pypi.org/simple --trusted-host evil.example"', 12, "(white space"),
        ('"https://pypi.org/simple\\n--pre"', 12, "(white space or a control code)"),
        ('"file:///srv/wheels"', 12, "got "),
        ('"ftp://example.org/simple"', 12, "got "),
        ('"https://"', 12, "got "),
    ],
)
def test_hostile_index_urls_are_refused(tmp_path: Path, value: str, column: int, why: str) -> None:
    problem = err(tmp_path, f'index-url: {value}\nmatrix:\n  python: ["3.12"]\n')
    assert problem.startswith(
        f"1:{column}: index-url: expected an http(s) index URL such as https://pypi.org/simple, "
    )
    assert why in problem


def test_index_credentials_and_repeats_are_refused(tmp_path: Path) -> None:
    text = (
        'extra-index-url:\n  - "https://me:s3cret@example.org/simple"\nmatrix: {python: ["3.12"]}\n'
    )
    problem = err(tmp_path, text)
    assert problem.startswith('2:5: extra-index-url[0]: credentials in "https://example.org/…"')
    assert "s3cret" not in problem
    twice = f"extra-index-url: [{NIGHTLY}, {NIGHTLY}]\nmatrix: {{python: ['3.12']}}\n"
    assert (
        err(tmp_path, twice)
        == f'1:{21 + len(NIGHTLY)}: extra-index-url[1]: "{NIGHTLY}" is listed twice'
    )


def test_a_backend_that_cannot_honour_the_selection_is_a_matrix_error(tmp_path: Path) -> None:
    assert err(
        tmp_path, "backend: venv\nmatrix:\n  python: ['3.12']\n  resolution: [highest, lowest]\n"
    ) == (
        "4:25: matrix.resolution[1]: resolution: lowest needs `backend: uv` or `backend: conda` "
        "(pip has no --resolution, --exclude-newer nor if-necessary/disallow pre-release modes)"
    )
    assert err(
        tmp_path, "backend: micromamba\nas-of: 2024-06-01\nmatrix:\n  python: ['3.12']\n"
    ) == (
        "2:8: as-of: as-of: 2024-06-01 needs `backend: uv` or `backend: conda` "
        "(micromamba's solver has no such option)"
    )
    conda_pip = "backend: conda\npip: [six]\nresolution: lowest\nmatrix:\n  python: ['3.12']\n"
    assert "(its pip step cannot pick versions that way)" in err(tmp_path, conda_pip)
    # what each backend can do loads: pip's --pre, rattler's strategy and exclude_newer
    assert load(tmp_path, "backend: venv\nprerelease: allow\nmatrix: {python: ['3.12']}\n")
    conda = load(
        tmp_path,
        "backend: conda\nresolution: lowest\nas-of: 2024-06-01\nmatrix: {python: ['3.12']}\n",
    )
    assert conda.selection == Selection("lowest", "2024-06-01")


def test_a_bad_value_exits_2_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "matrix.yml"
    path.write_text('resolution: lowest\nmatrix:\n  python: ["3.12"]\n  resolution: [fast]\n')
    done = _cli("expand", str(path))
    assert done.returncode == 2
    assert f"{path}:4:16: matrix.resolution[0]: unknown resolution" in done.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compat_matrix", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_expand_json_and_plan_github_carry_the_selection(tmp_path: Path) -> None:
    path = tmp_path / "matrix.yml"
    path.write_text(
        'as-of: 2024-06-01\nmatrix:\n  python: ["3.12"]\n  resolution: [highest, lowest-direct]\n'
    )
    expanded = _cli("expand", str(path), "--json")
    assert expanded.returncode == 0, expanded.stderr
    assert json.loads(expanded.stdout)[1] == {
        "id": "py3.12-lowest-direct",
        "axes": {"python": "3.12", "resolution": "lowest-direct"},
        "selection": {"resolution": "lowest-direct", "as-of": "2024-06-01", "prerelease": None},
    }
    # a CI job runs the same file with --cells: the top-level keys travel with it, the axes in
    # the ids
    plan = _cli("plan", str(path), "--github", "--cells", "*-lowest-direct")
    assert plan.returncode == 0, plan.stderr
    (job,) = json.loads(plan.stdout)["include"]
    assert job["cells"] == "py3.12-lowest-direct"


# -- cell ids and reports ----------------------------------------------------------------------


def test_cell_ids_show_the_selection_axes_readably_and_uniquely(tmp_path: Path) -> None:
    matrix = load(
        tmp_path,
        "matrix:\n"
        '  python: ["3.12"]\n'
        '  numpy: ["~=1.26"]\n'
        "  resolution: [highest, lowest-direct, lowest]\n"
        "  include:\n"
        '    - {python: "3.13", as-of: 2024-06-01}\n'
        '    - {python: "3.13", prerelease: allow}\n',
    )
    ids = [cell.id for cell in expand(matrix)]
    assert ids == [
        "py3.12-numpy_compat1.26-highest",
        "py3.12-numpy_compat1.26-lowest-direct",
        "py3.12-numpy_compat1.26-lowest",
        "py3.13-asof2024-06-01",
        "py3.13-pre-allow",
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9._+-]+", i) for i in ids)
    assert len(set(ids)) == len(ids)


def _result(**kwargs: object) -> CellResult:
    return CellResult(
        id="py3.11-packaging_ge21-lowest-direct",
        axes={"python": "3.11", "packaging": ">=21", "resolution": "lowest-direct"},
        status="pass",
        resolved={"packaging": "21.0"},
        **kwargs,  # type: ignore[arg-type]
    )


def test_every_report_format_shows_how_versions_were_picked(tmp_path: Path) -> None:
    result = _result(
        resolution="lowest-direct",
        as_of="2023-01-15",
        prerelease="allow",
        indexes=[f"--extra-index-url {NIGHTLY}"],
    )
    data = result.to_dict()
    assert data["axes"]["resolution"] == "lowest-direct"
    assert (data["resolution"], data["as-of"], data["prerelease"]) == (
        "lowest-direct",
        "2023-01-15",
        "allow",
    )
    assert CellResult.from_dict(json.loads(json.dumps(data))) == result
    markdown = render_markdown("t", [result])
    assert "**Version selection besides the default**" in markdown
    assert (
        "`resolution: lowest-direct` · `as-of: 2023-01-15` · `prerelease: allow`: "
        "`py3.11-packaging_ge21-lowest-direct`" in markdown
    )
    assert NIGHTLY in markdown
    html = render_html("t", [result])
    assert "<code>as-of: 2023-01-15</code>" in html
    junit = render_junit("t", [result])
    assert '<property name="axis.resolution" value="lowest-direct"' in junit
    assert '<property name="as-of" value="2023-01-15"' in junit
    assert '<property name="prerelease" value="allow"' in junit
    # the default selection adds nothing to a report
    plain = _result()
    assert plain.selection == []
    assert "Version selection" not in render_markdown("t", [plain])


# -- the installer's arguments and the reported indexes ----------------------------------------


def test_the_selection_becomes_installer_options_and_never_an_option_position() -> None:
    request = EnvRequest(
        None, ("packaging>=21",), resolution="lowest", as_of="2023-01-15", prerelease="allow"
    )
    assert request.selection_args("uv") == [
        "--resolution=lowest",
        "--exclude-newer=2023-01-16T00:00:00Z",  # the whole of that day, in UTC
        "--prerelease=allow",
    ]
    assert request.selection_args("pip") == ["--pre"]
    assert EnvRequest(None, ()).selection_args("uv") == []


def test_matrix_indexes_are_reported_and_an_overridden_variable_says_so() -> None:
    request = EnvRequest(None, (), index_url="https://mirror.example/simple", index_urls=(NIGHTLY,))
    env = {
        "UV_INDEX_URL": "https://other.example/simple",
        "UV_EXTRA_INDEX_URL": "https://extra.example/simple",
    }
    assert used_indexes("uv", request, env) == [
        "--default-index https://mirror.example/simple (matrix)",
        f"--extra-index-url {NIGHTLY}",
        "--index-strategy unsafe-best-match",
        "--index-url https://other.example/simple ($UV_INDEX_URL, not used: the command line's "
        "--index-url wins)",
        "--extra-index-url https://extra.example/simple ($UV_EXTRA_INDEX_URL, not used: the "
        "command line's --extra-index-url wins)",
    ]
    pip_env = {"PIP_EXTRA_INDEX_URL": "https://extra.example/simple"}
    assert used_indexes("venv", request, pip_env) == [
        "--index-url https://mirror.example/simple (matrix)",
        f"--extra-index-url {NIGHTLY}",
        "--extra-index-url https://extra.example/simple ($PIP_EXTRA_INDEX_URL)",  # pip adds it
    ]


def test_installer_variables_that_pick_versions_are_reported() -> None:
    env = {"UV_RESOLUTION": "lowest", "UV_EXCLUDE_NEWER": "2024-01-01"}
    assert used_indexes("uv", EnvRequest(None, ()), env) == [
        "--resolution lowest ($UV_RESOLUTION)",
        "--exclude-newer 2024-01-01 ($UV_EXCLUDE_NEWER)",
    ]
    matrix_says = EnvRequest(None, (), resolution="lowest-direct")
    assert used_indexes("uv", matrix_says, env) == [
        "--resolution lowest ($UV_RESOLUTION, not used: the command line's --resolution wins)",
        "--exclude-newer 2024-01-01 ($UV_EXCLUDE_NEWER)",
    ]


def test_hints_look_versions_up_on_the_matrix_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_INDEX_URL", "https://other.example/simple")
    index = package_index([NIGHTLY], "https://mirror.example/simple")
    assert index.urls == ("https://mirror.example/simple", NIGHTLY)
    assert package_index([NIGHTLY]).urls == ("https://other.example/simple", NIGHTLY)


# -- real resolutions from PyPI ----------------------------------------------------------------


def _resolved(python_for, requirements: list[str], **selection: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    request = EnvRequest(python_for("3.11"), tuple(requirements), **selection)  # type: ignore[arg-type]
    answer = resolve(requirements, request, timeout=300)
    assert answer.ok, answer
    return answer.pins


def _uploaded(name: str, version: str) -> datetime.datetime:
    """When `version`'s last file reached PyPI (the simple index's JSON form, PEP 691/700)."""
    request = urllib.request.Request(
        f"https://pypi.org/simple/{name}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - fixed https URL
        files = json.load(response)["files"]
    times = [
        datetime.datetime.fromisoformat(f["upload-time"].replace("Z", "+00:00"))
        for f in files
        if f["filename"].startswith(f"{name}-{version}-")
        or f["filename"] == f"{name}-{version}.tar.gz"
    ]
    assert times, f"no files of {name} {version}"
    return max(times)


@pytest.mark.slow
def test_as_of_resolves_what_an_install_on_that_day_got(python_for, uv_bin) -> None:  # type: ignore[no-untyped-def]
    then = _resolved(python_for, ["numpy"], as_of="2023-01-15")
    today = _resolved(python_for, ["numpy"])
    assert then["numpy"] == "1.24.1"  # 1.24.2 came out on 2023-02-05
    assert Version(then["numpy"]) < Version(today["numpy"])
    assert _uploaded("numpy", then["numpy"]) < datetime.datetime(
        2023, 1, 16, tzinfo=datetime.timezone.utc
    )


@pytest.mark.slow
def test_lowest_moves_the_transitive_dependencies_lowest_direct_does_not(
    python_for, uv_bin
) -> None:  # type: ignore[no-untyped-def]
    direct = _resolved(python_for, ["requests>=2.28"], resolution="lowest-direct")
    everything = _resolved(python_for, ["requests>=2.28"], resolution="lowest")
    assert direct["requests"] == everything["requests"] == "2.28.0"
    # requests 2.28.0 asks for urllib3>=1.21.1,<1.27: lowest takes the floor, lowest-direct
    # the newest that fits
    assert everything["urllib3"] == "1.21.1"
    assert Version(direct["urllib3"]) > Version("1.26")


@pytest.mark.slow
def test_prerelease_allow_takes_a_pre_release_and_disallow_does_not(python_for, uv_bin) -> None:  # type: ignore[no-untyped-def]
    # On 2024-01-10 pytest's newest upload was 8.0.0rc1 (final 8.0.0: 2024-01-27); as-of keeps
    # the test true whatever PyPI holds today.
    allow = _resolved(python_for, ["pytest"], as_of="2024-01-10", prerelease="allow")
    disallow = _resolved(python_for, ["pytest"], as_of="2024-01-10", prerelease="disallow")
    assert allow["pytest"] == "8.0.0rc1"
    assert Version(allow["pytest"]).is_prerelease
    assert disallow["pytest"] == "7.4.4"


def _settings(tmp_path: Path) -> RunSettings:
    return RunSettings(report_dir=tmp_path / "report", env_root=tmp_path / "envs")


@pytest.mark.slow
def test_real_cells_resolve_by_their_selection_and_report_it(  # type: ignore[no-untyped-def]
    tmp_path: Path, interpreters, python_for, uv_bin
) -> None:
    python_for("3.11")
    matrix = load(
        tmp_path,
        "probes: [import]\n"
        "matrix:\n"
        '  python: ["3.11"]\n'
        '  packaging: [">=21"]\n'
        "  resolution: [highest, lowest-direct]\n"
        "  include:\n"
        '    - {python: "3.11", packaging: ">=21", resolution: highest, as-of: 2023-01-15}\n',
    )
    cells = expand(matrix)
    assert [c.id for c in cells] == [
        "py3.11-packaging_ge21-highest-asof2023-01-15",
        "py3.11-packaging_ge21-lowest-direct",
    ]
    as_of, lowest = (run_cell(matrix, cell, _settings(tmp_path), interpreters) for cell in cells)
    assert lowest.status == "pass", lowest
    assert lowest.resolved["packaging"] == "21.0"
    assert lowest.resolution == "lowest-direct"
    assert as_of.status == "pass", as_of
    assert as_of.resolved["packaging"] == "23.0"  # 23.1 came out on 2023-04-12
    assert (as_of.resolution, as_of.as_of) == ("highest", "2023-01-15")
    lock = (tmp_path / "report" / "locks" / f"{cells[1].id}.txt").read_text()
    assert "packaging==21.0" in lock
    saved = json.loads((tmp_path / "report" / "cells" / f"{cells[0].id}.json").read_text())
    assert saved["as-of"] == "2023-01-15"


# -- an index from the matrix ------------------------------------------------------------------


@pytest.fixture
def local_index(tmp_path: Path) -> Iterator[str]:
    """A PEP 503 simple index on 127.0.0.1 serving one tiny wheel: a stand-in for the nightly
    wheels index, which a test cannot reach reliably (nor control)."""
    root = tmp_path / "index"
    wheels = [
        write_wheel(root / "files", "nightlypkg", version, f"VERSION = {version!r}\n")
        for version in ("1.0.0", "2.0.0rc1")  # a release and tonight's pre-release
    ]
    page = root / "simple" / "nightlypkg"
    page.mkdir(parents=True)
    (root / "simple" / "index.html").write_text('<a href="nightlypkg/">nightlypkg</a>\n')
    links = "".join(f'<a href="../../files/{w.name}">{w.name}</a>\n' for w in wheels)
    (page / "index.html").write_text(links)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "key"),
    [("uv", "extra-index-url"), ("venv", "extra-index-url"), ("uv", "index-url")],
)
def test_an_index_from_the_matrix_is_used_and_reported(  # type: ignore[no-untyped-def]
    tmp_path: Path, local_index: str, interpreters, python_for, uv_bin, monkeypatch, backend, key
) -> None:
    python_for("3.11")
    for variable in ("UV_EXTRA_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_PRE"):
        monkeypatch.delenv(variable, raising=False)
    if key == "index-url":  # a variable pointing nowhere: the matrix's index-url must win,
        monkeypatch.setenv("UV_INDEX_URL", "http://127.0.0.1:9/nowhere/")  # and the report say so
    else:
        monkeypatch.delenv("UV_INDEX_URL", raising=False)
    matrix = load(
        tmp_path,
        f"backend: {backend}\n"
        f"{key}: {local_index}\n"
        "probes: [import]\n"
        'matrix:\n  python: ["3.11"]\n  nightlypkg: [">=1"]\n  prerelease: [allow]\n',
    )
    (cell,) = expand(matrix)
    assert cell.id == "py3.11-nightlypkg_ge1-pre-allow"
    result = run_cell(matrix, cell, _settings(tmp_path), interpreters)
    assert result.status == "pass", result
    assert result.resolved["nightlypkg"] == "2.0.0rc1"  # only there, and a pre-release
    assert result.prerelease == "allow"
    if key == "index-url":
        assert result.indexes[0] == f"--default-index {local_index} (matrix)"
        assert (
            "--index-url http://127.0.0.1:9/nowhere/ ($UV_INDEX_URL, not used: the command "
            "line's --index-url wins)" in result.indexes
        )
    else:
        assert f"--extra-index-url {local_index}" in result.indexes
    markdown = render_markdown("t", [result])
    assert local_index in markdown
    assert "`prerelease: allow`" in markdown


@pytest.mark.slow
def test_without_prerelease_allow_the_release_is_taken(  # type: ignore[no-untyped-def]
    tmp_path: Path, local_index: str, interpreters, python_for, uv_bin
) -> None:
    python_for("3.11")
    matrix = load(
        tmp_path,
        f"extra-index-url: {local_index}\n"
        "probes: [import]\n"
        'matrix:\n  python: ["3.11"]\n  nightlypkg: [">=1"]\n',
    )
    (cell,) = expand(matrix)
    result = run_cell(matrix, cell, _settings(tmp_path), interpreters)
    assert result.status == "pass", result
    assert result.resolved["nightlypkg"] == "1.0.0"
    assert result.prerelease is None


def test_the_selection_axes_install_nothing() -> None:
    cell = Cell(
        "c", {"python": "3.12", "resolution": "lowest", "as-of": "2024-06-01", "six": "1.16.0"}
    )
    assert cell.packages == {"six": "1.16.0"}


@pytest.mark.slow
def test_a_cell_for_another_platform_resolves_by_its_selection_too(  # type: ignore[no-untyped-def]
    tmp_path: Path, interpreters, uv_bin
) -> None:
    if sys.platform == "darwin":
        pytest.skip("the cell must be for another platform than this machine's")
    matrix = load(
        tmp_path,
        "resolution: lowest-direct\n"
        'matrix:\n  os: ["macos-15"]\n  python: ["3.11"]\n  packaging: [">=21"]\n',
    )
    (cell,) = expand(matrix)
    result = run_cell(matrix, cell, _settings(tmp_path), interpreters)
    assert result.static_only, result
    assert result.resolved["packaging"] == "21.0"
    assert result.resolution == "lowest-direct"


@pytest.mark.slow
def test_a_conda_solve_follows_the_resolution_strategy_and_as_of(  # type: ignore[no-untyped-def]
    tmp_path: Path, channel, conda_cache
) -> None:
    """rattler's own `strategy` and `exclude_newer`, on the local test channel (six 1.16.0 and
    1.17.0)."""
    pytest.importorskip("rattler", reason="py-rattler, the conda engine, needs Python 3.10+")
    from compat_matrix.build.conda import CondaBackend

    backend = CondaBackend(cache=conda_cache)
    picked = {}
    for resolution in ("highest", "lowest"):
        request = EnvRequest(
            None,
            (),
            conda_specs=("python=3.11", "six"),
            channels=(channel.url,),
            resolution=resolution,
        )
        solved = backend.solve(tmp_path / resolution, request, timeout=300)
        assert solved.failure is None, solved
        picked[resolution] = solved.records["six"][0]
    assert picked == {"highest": "1.17.0", "lowest": "1.16.0"}
    # The test channel's packages are stamped 2023-11-14 and were written to disk since: as of
    # today they are all there, as of the day before that stamp nothing is.
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    for as_of, solves in ((today, True), ("2023-11-13", False)):
        request = EnvRequest(
            None, (), conda_specs=("python=3.11", "six"), channels=(channel.url,), as_of=as_of
        )
        solved = backend.solve(tmp_path / as_of, request, timeout=300)
        assert (solved.failure is None) is solves, (as_of, solved)


def test_the_example_matrices_expand_with_their_selection() -> None:
    examples = Path(__file__).resolve().parents[1] / "matrix"
    prereleases = load_matrix(examples / "prereleases.yml")
    assert prereleases.extra_index_urls == (NIGHTLY,)
    cells = expand(prereleases)
    assert [c.id for c in cells][:2] == [
        "py3.12-numpy_ge2.0-pandas_ge2.2-pre-disallow",
        "py3.12-numpy_ge2.0-pandas_ge2.2-pre-allow",
    ]
    assert prereleases.selection_for(cells[1]).prerelease == "allow"
    as_of = load_matrix(examples / "as-of.yml")
    assert {as_of.selection_for(c).as_of for c in expand(as_of)} == {"2023-01-15", "2024-06-01"}
