"""Hostile and broken matrix files: bounded, located, exit 2, no traceback, nothing smuggled.

A matrix file may come from a pull request on a shared runner. Every case here was a hole once:
a file that expands to 2^30 cells, a "billion laughs" of aliases, nesting 1,000 deep, a 1 MB
value echoed into a message, a URL with a newline that became an installer option line. The
fuzz test at the end mutates real matrix files (seeded, so a failure reproduces) and demands
the same contract of every mutant: a `Matrix` or a located `MatrixError`, within two seconds.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compat_matrix.errors import MatrixError
from compat_matrix.matrix.cuda_table import parse_cuda_table
from compat_matrix.matrix.load import DEFAULT_LIMITS, Limits, load_matrix, parse_matrix

REPO = Path(__file__).resolve().parents[1]


def _error(tmp_path: Path, text: str, limits: Limits = DEFAULT_LIMITS) -> MatrixError:
    path = tmp_path / "compat.yml"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(MatrixError) as info:
        load_matrix(path, limits)
    assert time.monotonic() - started < 2.0
    return info.value


def _axes(count: int, values: int = 2) -> str:
    body = "".join(
        f"  p{i}: [{', '.join(repr(str(v)) for v in range(values))}]\n" for i in range(count)
    )
    return "matrix:\n" + body


def test_two_to_the_thirty_cells_is_refused_before_expanding(tmp_path: Path) -> None:
    error = _error(tmp_path, _axes(30))
    assert (error.line, error.column) == (2, 3)
    assert "expands to 1,073,741,824 cells; the limit is 10,000" in error.problem
    assert "--max-cells" in error.problem


def test_the_cell_limit_is_raised_on_request(tmp_path: Path) -> None:
    path = tmp_path / "compat.yml"
    path.write_text(_axes(14), encoding="utf-8")  # 16,384 cells
    with pytest.raises(MatrixError, match="16,384 cells"):
        load_matrix(path)
    started = time.monotonic()
    matrix = load_matrix(path, Limits(max_cells=20_000))
    assert len(matrix.axes) == 14
    assert time.monotonic() - started < 2.0


def test_includes_count_towards_the_cell_limit(tmp_path: Path) -> None:
    includes = "".join(f"    - {{extra: '{i}'}}\n" for i in range(200))
    text = "labels: [extra]\n" + _axes(13) + "  include:\n" + includes
    assert "expands to 8,392 cells" in _error(tmp_path, text, Limits(max_cells=8_300)).problem


@pytest.mark.parametrize(
    ("what", "text", "problem"),
    [
        (
            "a vector of 1,001 values",
            _axes(1, 1_001),
            "1,001 values; the limit is 1,000 per vector",
        ),
        (
            "257 includes",
            "labels: [x]\nmatrix:\n  include:\n"
            + "".join(f"    - {{x: '{i}'}}\n" for i in range(257)),
            "257 entries; the limit is 256",
        ),
        ("nesting 17 deep", "matrix:\n  a: " + "[" * 17 + "]" * 17 + "\n", "nested more than 16"),
        ("nesting 30,000 deep", "matrix:\n  a: " + "[" * 30_000 + "]" * 30_000, "nest"),
        (
            "a billion laughs",
            "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
            "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nlabels: [f]\nmatrix:\n  f: [*e]\n",
            "expands to more than 20,000 values",
        ),
        ("a node that contains itself", "matrix: &m\n  a: *m\n", "nested more than 16"),
        (
            "a value of 5,000 characters",
            "name: " + "n" * 5_000 + "\nmatrix: {}\n",
            "5,000 characters",
        ),
        (
            "100,000 values",
            "matrix:\n  numpy: [" + ",".join(["'1'"] * 100_000) + "]\n",
            "more than 20,000 values",
        ),
    ],
)
def test_a_file_too_large_to_judge_is_a_located_error(tmp_path, what, text, problem) -> None:
    assert problem in _error(tmp_path, text).problem


def test_a_file_over_the_size_limit_is_not_read_whole(tmp_path: Path) -> None:
    text = "name: big\n" + "# padding\n" * 120_000 + "matrix: {numpy: ['1']}\n"
    error = _error(tmp_path, text)
    assert (error.line, error.column) == (1, 1)
    assert "larger than 1,048,576 bytes" in error.problem


def test_messages_quote_values_with_a_length_limit(tmp_path: Path) -> None:
    error = _error(tmp_path, "matrix:\n  numpy: ['" + "x" * 3_000 + "']\n")
    assert len(str(error)) < 600
    assert "3,000 characters" in error.problem


def test_a_matrix_that_is_not_yaml_is_not_echoed(tmp_path: Path) -> None:
    passwd = "".join(f"user{i}:x:{i}:{i}:User {i}:/home/u{i}:/bin/sh\n" for i in range(200))
    error = _error(tmp_path, passwd)
    assert len(str(error)) < 400
    assert "user150" not in str(error)


@pytest.mark.parametrize(
    "value",
    [
        "file:///tmp/foo.whl\n--index-url http://127.0.0.1:8765/simple/",
        "https://example.org/foo.whl --index-url=http://127.0.0.1:8765/simple/",
        "./pkg\r--extra-index-url x",
    ],
)
def test_no_value_can_become_an_installer_option_line(tmp_path: Path, value) -> None:
    (tmp_path / "pkg").mkdir()
    quoted = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    axis = _error(tmp_path, f'matrix:\n  foo: ["{quoted}"]\n')
    assert (axis.line, axis.column) == (2, 9)
    packages = _error(tmp_path, f'packages: ["{quoted}"]\nmatrix:\n  numpy: ["2.2.6"]\n')
    assert (packages.line, packages.column) == (1, 12)


def test_option_like_channels_are_refused(tmp_path: Path) -> None:
    text = "backend: micromamba\nchannels: [--override-channels]\nmatrix:\n  numpy: ['2.2.6']\n"
    error = _error(tmp_path, text)
    assert (error.line, error.column) == (2, 12)
    assert "option-like" in error.problem


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ('cuda:\n  "12": {pypi: ["--index-url http://127.0.0.1:8765/simple/"]}\n', "2:17"),
        ('cuda:\n  "12": {pypi: ["nvidia-cuda-runtime-cu12\\n--index-url x"]}\n', "2:17"),
        ("cuda:\n  \"12\": {conda: ['--override-channels']}\n", "2:18"),
        (
            "frameworks:\n  numpy:\n    pypi:\n      cuda: {index: '--index-url http://x'}\n",
            "4:21",
        ),
        ("frameworks:\n  pytorch:\n    conda:\n      cuda: {index: 'https://x'}\n", "4:21"),
    ],
)
def test_the_cuda_table_cannot_redirect_installs(table: str, where: str) -> None:
    with pytest.raises(MatrixError) as info:
        parse_cuda_table(table, "my-cuda.yml")
    assert str(info.value).startswith(f"my-cuda.yml:{where}:")


def test_a_cuda_table_nested_a_thousand_deep_is_a_located_error() -> None:
    with pytest.raises(MatrixError, match="nest"):
        parse_cuda_table("cuda: " + "[" * 1_000 + "]" * 1_000, "deep.yml")


def test_the_command_line_says_it_in_one_line_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "compat.yml"
    path.write_text(_axes(30), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "expand", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert f"{path}:2:3:" in proc.stderr


# -- fuzz ----------------------------------------------------------------------------------------

_TOKENS = [
    "[",
    "]",
    "{",
    "}",
    ":",
    ": ",
    "- ",
    ",",
    "&a ",
    "*a",
    "!!python/object:os.system ",
    "\t",
    "\x00",
    "\x07",
    "'",
    '"',
    "\\",
    "#",
    "\n",
    "\n  ",
    "3.10",
    "~",
    "null",
    "yes",
    "no",
    "matrix:",
    "include:",
    "exclude:",
    "python:",
    "labels:",
    "os:",
    "cuda:",
    "expect:",
    "---\n",
    "..\n",
    "\ufeff",
    "é",
    "%YAML 1.1\n",
    "<<: *a\n",
    "? ",
    "|\n",
    ">\n",
    "x" * 300,
]


def _mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 6)):
        where = rng.randrange(len(text) + 1)
        choice = rng.random()
        if choice < 0.35:
            text = text[:where] + rng.choice(_TOKENS) + text[where:]
        elif choice < 0.6:
            text = text[:where] + text[where + rng.randint(1, 12) :]
        elif choice < 0.8:
            lines = text.splitlines(keepends=True)
            if lines:
                line = rng.choice(lines)
                text = text + line * rng.randint(1, 40)
        else:
            start = rng.randrange(len(text) + 1)
            text = text[:where] + text[start : start + rng.randint(1, 40)] + text[where:]
    return text


def _seeds() -> list[str]:
    seeds = [p.read_text(encoding="utf-8") for p in sorted((REPO / "matrix").glob("*.yml"))]
    seeds.append(
        "labels: [fruit, animal, color]\nmatrix:\n  fruit: [apple, pear]\n  animal: [cat, dog]\n"
        "  include:\n    - color: green\n    - fruit: banana\n  exclude:\n    - {fruit: pear}\n"
    )
    return seeds


def test_fuzzed_matrix_files_give_a_matrix_or_a_located_error(tmp_path: Path) -> None:
    rng = random.Random(20261207)  # noqa: S311 - seeded so a failing case reproduces
    seeds = _seeds()
    path = tmp_path / "compat.yml"
    slowest = 0.0
    for case in range(3_000):
        text = _mutate(rng.choice(seeds), rng)
        started = time.monotonic()
        try:
            parse_matrix(text, path)
        except MatrixError as exc:
            assert exc.line >= 1 and exc.column >= 1, (case, text)
            assert exc.problem and "\n" not in str(exc), (case, text)
            assert len(str(exc)) < 1_000, (case, text)
        except Exception as exc:  # any other exception is the bug this test hunts
            pytest.fail(f"case {case}: {type(exc).__name__}: {exc}\n--- file ---\n{text}")
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 2.0


def test_max_cells_is_one_option_of_every_command(tmp_path: Path) -> None:
    path = tmp_path / "compat.yml"
    path.write_text(_axes(14), encoding="utf-8")  # 16,384 cells

    def expand(*extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "compat_matrix", "expand", str(path), *extra],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, **(env or {})},
        )

    assert expand().returncode == 2
    assert expand("--max-cells", "20000").stdout.count("\n") == 16_384
    assert expand(env={"COMPAT_MAX_CELLS": "16384"}).returncode == 0
    bad = expand(env={"COMPAT_MAX_CELLS": "lots"})
    assert bad.returncode == 2
    assert "COMPAT_MAX_CELLS" in bad.stderr
