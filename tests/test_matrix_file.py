"""Matrix files load into `Matrix`; every mistake is a `MatrixError` at the right line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat_matrix.errors import MatrixError
from compat_matrix.matrix.expand import expand
from compat_matrix.matrix.load import load_matrix, parse_matrix
from compat_matrix.matrix.model import PROBES, Expectation

DATA = Path(__file__).parent / "data" / "matrices"
MINIMAL = 'matrix:\n  python: ["3.12"]\n'


def load(tmp_path, text):
    path = tmp_path / "matrix.yml"
    path.write_text(text, encoding="utf-8")
    return load_matrix(path)


def err(tmp_path, text):
    """The error as `line:column: problem`, after checking that it names the file."""
    with pytest.raises(MatrixError) as info:
        load(tmp_path, text)
    prefix = f"{tmp_path / 'matrix.yml'}:"
    message = str(info.value)
    assert message.startswith(prefix)
    return message[len(prefix) :]


# -- a valid file ------------------------------------------------------------------------------


def test_design_example_loads_with_every_value():
    path = DATA / "design.yml"
    matrix = load_matrix(path)
    assert matrix.path == path
    assert matrix.name == "scientific-python"
    assert matrix.backend == "uv"
    assert matrix.timeout == 900.0
    assert matrix.packages == (str(DATA.resolve()),)
    assert matrix.axes == {
        "python": ["3.10", "3.11", "3.12", "3.13"],
        "numpy": ["1.26.4", "2.2.6"],
        "pandas": ["2.0.3", "~=2.2"],
    }
    assert list(matrix.axes) == ["python", "numpy", "pandas"]
    assert matrix.exclude == ({"python": "3.13", "numpy": "1.26.4"},)
    assert matrix.include == ({"python": "3.11", "torch": "2.13.0"},)
    assert matrix.imports == ("numpy", "pandas", "torch")
    assert matrix.expect == (
        Expectation(match={"python": "3.13", "numpy": "1.26.4"}, status="unsupported"),
    )
    assert matrix.only_binary is True
    assert matrix.probes == PROBES


def test_design_example_expands_to_its_cells():
    cells = expand(load_matrix(DATA / "design.yml"))
    assert len(cells) == 16 - 2
    assert cells[0].id == "py3.10-numpy1.26.4-pandas2.0.3"
    assert cells[4].id == "py3.11-numpy1.26.4-pandas2.0.3-torch2.13.0"
    assert cells[-1].id == "py3.13-numpy2.2.6-pandas_compat2.2"


def test_defaults(tmp_path):
    matrix = load(tmp_path, MINIMAL)
    assert matrix.name == "matrix"
    assert (matrix.backend, matrix.timeout, matrix.packages) == ("uv", 900.0, ())
    assert (matrix.imports, matrix.expect, matrix.only_binary) == (None, (), True)
    assert matrix.probes == PROBES


def test_every_option(tmp_path):
    (tmp_path / "pkg").mkdir()
    text = (
        "name: nightly\n"
        "backend: micromamba\n"
        "timeout: 1.5\n"
        'packages: ["./pkg", "requests>=2", "https://x.org/p.whl"]\n'
        "matrix:\n"
        "  python: ['3.12', 3.13t]\n"
        "  cuda: ['none', '12.4']\n"
        "  numpy: [2, '>=2,<3', none, ./pkg, 'git+https://github.com/numpy/numpy@v2.0.0']\n"
        "import: [numpy, numpy.linalg]\n"
        "only-binary: false\n"
        "probes: []\n"
        "expect:\n"
        "  - match: {cuda: '12.4'}\n"
        "    status: skip\n"
        "    reason: no GPU on CI\n"
    )
    matrix = load(tmp_path, text)
    assert matrix.name == "nightly"
    assert matrix.backend == "micromamba"
    assert matrix.timeout == 1.5
    assert matrix.packages == (
        str((tmp_path / "pkg").resolve()),
        "requests>=2",
        "https://x.org/p.whl",
    )
    assert matrix.axes == {
        "python": ["3.12", "3.13t"],
        "cuda": ["none", "12.4"],
        "numpy": ["2", ">=2,<3", "none", "./pkg", "git+https://github.com/numpy/numpy@v2.0.0"],
    }
    assert matrix.imports == ("numpy", "numpy.linalg")
    assert matrix.only_binary is False
    assert matrix.probes == ()
    assert matrix.expect == (Expectation({"cuda": "12.4"}, "skip", "no GPU on CI"),)


def test_include_only_matrix_is_valid(tmp_path):
    matrix = load(tmp_path, "matrix:\n  include:\n    - {python: '3.12', numpy: '2.2.6'}\n")
    assert matrix.axes == {}
    assert matrix.include == ({"python": "3.12", "numpy": "2.2.6"},)


def test_expect_may_match_keys_added_by_include(tmp_path):
    text = (
        MINIMAL
        + "  include: [{torch: '2.5.1'}]\nexpect:\n  - {match: {torch: '2.5.1'}, status: fail}\n"
    )
    assert load(tmp_path, text).expect[0].match == {"torch": "2.5.1"}


def test_every_known_probe_can_be_chosen_and_runs_in_probe_order(tmp_path):
    listed = ", ".join(reversed(PROBES))
    assert load(tmp_path, MINIMAL + f"probes: [{listed}]\n").probes == PROBES


def test_parse_matrix_resolves_paths_against_the_given_path(tmp_path):
    (tmp_path / "mypkg").mkdir()
    text = "packages: [.]\nmatrix:\n  mypkg: [./mypkg]\n"
    matrix = parse_matrix(text, tmp_path / "m.yml")
    assert matrix.packages == (str(tmp_path.resolve()),)
    assert matrix.axes == {"mypkg": ["./mypkg"]}
    assert matrix.name == "m"


# -- YAML-level problems -----------------------------------------------------------------------


def test_yaml_syntax_error_at_pyyamls_mark(tmp_path):
    assert err(tmp_path, "matrix:\n  python: 3.12: x\n") == (
        "2:15: mapping values are not allowed here"
    )


def test_unclosed_flow_list(tmp_path):
    assert err(tmp_path, "matrix:\n  python: ['3.12',\n") == (
        "3:1: expected the node content, but found '<stream end>'"
    )


def test_several_documents(tmp_path):
    assert err(tmp_path, MINIMAL + "---\n" + MINIMAL) == (
        "3:1: expected a single document in the stream, but found another document"
    )


def test_control_character(tmp_path):
    assert err(tmp_path, "matrix:\n  py\x07thon: ['3.12']\n") == (
        "2:5: unacceptable character #x0007: special characters are not allowed"
    )


def test_not_utf8(tmp_path):
    path = tmp_path / "matrix.yml"
    path.write_bytes(b"matrix:\n  python: ['3.12\xff']\n")
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    assert str(info.value) == f"{path}:2:17: the file is not valid UTF-8"


def test_missing_file(tmp_path):
    with pytest.raises(MatrixError) as info:
        load_matrix(tmp_path / "nope.yml")
    assert str(info.value).startswith(f"{tmp_path / 'nope.yml'}:1:1: cannot read the file")


def test_empty_file(tmp_path):
    assert err(tmp_path, "# nothing\n") == (
        "1:1: the file is empty; expected a mapping with `matrix:`"
    )


def test_top_level_must_be_a_mapping(tmp_path):
    assert err(tmp_path, "- python\n") == "1:1: expected a mapping at the top level, got a list"


def test_undefined_alias(tmp_path):
    assert (
        err(tmp_path, "matrix:\n  python: *versions\n") == "2:11: found undefined alias 'versions'"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "name: a\nname: b\n", '4:1: duplicate key "name" (first on line 3)'),
        (
            "matrix:\n  numpy: ['2.0.2']\n  numpy: ['2.2.6']\n",
            '3:3: matrix: duplicate key "numpy" (first on line 2)',
        ),
        (
            MINIMAL + "  include:\n    - {numpy: '2.0.2', numpy: '2.2.6'}\n",
            '4:24: matrix.include[0]: duplicate key "numpy" (first on line 4)',
        ),
    ],
)
def test_duplicate_keys(tmp_path, text, expected):
    assert err(tmp_path, text) == expected


def test_non_string_key(tmp_path):
    assert err(tmp_path, "matrix:\n  3.12: ['1']\n") == (
        "2:3: matrix: expected a string key, got the number 3.12"
    )


# -- top-level keys ----------------------------------------------------------------------------


def test_unknown_key_suggests_the_closest(tmp_path):
    assert err(tmp_path, MINIMAL + "timout: 60\n") == (
        '3:1: unknown key "timout" (did you mean "timeout"?); expected one of: name, backend, '
        "timeout, packages, labels, matrix, import, expect, only-binary, strict, probes, channels, "
        "pip, cuda-table, gpus, resolution, as-of, prerelease, index-url, extra-index-url"
    )


def test_unknown_key_without_a_close_match(tmp_path):
    assert err(tmp_path, MINIMAL + "zzz: 1\n").startswith(
        '3:1: unknown key "zzz"; expected one of:'
    )


def test_missing_matrix(tmp_path):
    assert err(tmp_path, "name: x\n") == '1:1: missing required key "matrix"'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("name: 3", "3:7: name: expected a string, got the number 3"),
        ("name: ''", "3:7: name: empty name; expected the matrix's name for reports"),
        (
            "backend: venvv",
            '3:10: backend: unknown backend "venvv" (did you mean "venv"?); '
            "expected one of: uv, venv, conda, micromamba",
        ),
        ("timeout: 0", "3:10: timeout: expected a positive number of seconds, got the number 0"),
        ("timeout: -5", "3:10: timeout: expected a positive number of seconds, got the number -5"),
        (
            "timeout: .inf",
            "3:10: timeout: expected a positive number of seconds, got the number .inf",
        ),
        (
            "timeout: true",
            "3:10: timeout: expected a positive number of seconds, got the boolean true",
        ),
        (
            "timeout: '60'",
            '3:10: timeout: expected a positive number of seconds, got the string "60"',
        ),
        ("only-binary: 'no'", '3:14: only-binary: expected true or false, got the string "no"'),
        ("strict: 1", "3:9: strict: expected true or false, got the number 1"),
        ("packages: requests", '3:11: packages: expected a list, got the string "requests"'),
        (
            "packages: ['./missing']",
            '3:12: packages[0]: local path "./missing" does not exist (relative to {dir})',
        ),
        (
            "packages: ['requests >= = 2']",
            '3:12: packages[0]: expected a requirement ("mypkg>=1.0"), a local path ("./") or a '
            'URL, got "requests >= = 2"',
        ),
        ("packages: [1]", "3:12: packages[0]: expected a string, got the number 1"),
        (
            "import: [numpy, numpy-linalg]",
            '3:17: import[1]: expected a dotted module name such as "numpy.linalg", '
            'got "numpy-linalg"',
        ),
        (
            "probes: [imports]",
            '3:10: probes[0]: unknown probe "imports" (did you mean "import"?); '
            f"expected one of: {', '.join(PROBES)}",
        ),
        ("probes: [import, import]", '3:18: probes[1]: probe "import" is listed twice'),
    ],
)
def test_top_level_values(tmp_path, line, expected):
    assert err(tmp_path, MINIMAL + line + "\n") == expected.format(dir=tmp_path)


def test_strict_is_off_unless_the_matrix_turns_it_on(tmp_path):
    assert load(tmp_path, MINIMAL).strict is False
    assert load(tmp_path, MINIMAL + "strict: true\n").strict is True


def test_only_binary_accepts_yaml_booleans(tmp_path):
    assert load(tmp_path, MINIMAL + "only-binary: no\n").only_binary is False
    assert load(tmp_path, MINIMAL + "only-binary: True\n").only_binary is True


# -- matrix: vectors ---------------------------------------------------------------------------


def test_unquoted_310_is_refused_with_the_fix(tmp_path):
    assert err(tmp_path, "matrix:\n  python: [3.9, 3.10]\n") == (
        '2:12: matrix.python[0]: expected a quoted version string, got the number 3.9: write "3.9"'
    )
    assert err(tmp_path, "matrix:\n  python: ['3.9', 3.10]\n") == (
        "2:19: matrix.python[1]: expected a quoted version string, got the number 3.1 "
        '(YAML reads 3.10 as 3.1): write "3.10"'
    )


def test_float_in_a_distribution_vector(tmp_path):
    assert err(tmp_path, "matrix:\n  numpy:\n    - '2.2.6'\n    - 1.20\n") == (
        "4:7: matrix.numpy[1]: expected a quoted version string, got the number 1.2 "
        '(YAML reads 1.20 as 1.2): write "1.20"'
    )


def test_int_that_yaml_reads_differently_is_refused(tmp_path):
    assert err(tmp_path, "matrix:\n  numpy: [012]\n") == (
        "2:11: matrix.numpy[0]: expected a quoted version string, got the number 10 "
        '(YAML reads 012 as 10): write "012"'
    )


def test_plain_int_becomes_a_string(tmp_path):
    assert load(tmp_path, "matrix:\n  numpy: [2, 10]\n").axes == {"numpy": ["2", "10"]}


@pytest.mark.parametrize(
    ("vector", "expected"),
    [
        ("[true]", "2:11: matrix.numpy[0]: expected a version string, got the boolean true"),
        ("[null]", "2:11: matrix.numpy[0]: expected a version string, got null"),
        ("[~]", "2:11: matrix.numpy[0]: expected a version string, got an empty value"),
        ("[[1]]", "2:11: matrix.numpy[0]: expected a version string, got a list"),
        ("[{a: 1}]", "2:11: matrix.numpy[0]: expected a version string, got a mapping"),
        ("[]", "2:10: matrix.numpy: empty list; expected at least one version"),
        ("'2.2.6'", '2:10: matrix.numpy: expected a list of versions, got the string "2.2.6"'),
        ("", "2:9: matrix.numpy: expected a list of versions, got an empty value"),
        ("['2.2.6', '2.2.6']", '2:20: matrix.numpy[1]: duplicate value "2.2.6"'),
        (
            "[latest]",
            '2:11: matrix.numpy[0]: expected a version ("2.0.2"), a specifier ("~=2.2", '
            '">=2,<3"), "none", a local path ("./pkg") or a URL, got "latest" (if "numpy" is '
            "not a distribution, list it in `labels:`)",
        ),
        (
            "[' 2.0']",
            '2:11: matrix.numpy[0]: expected a version ("2.0.2"), a specifier ("~=2.2", '
            '">=2,<3"), "none", a local path ("./pkg") or a URL, got " 2.0" (if "numpy" is '
            "not a distribution, list it in `labels:`)",
        ),
        (
            "['./not-here']",
            '2:11: matrix.numpy[0]: local path "./not-here" does not exist (relative to {dir})',
        ),
    ],
)
def test_distribution_vector_errors(tmp_path, vector, expected):
    assert err(tmp_path, f"matrix:\n  numpy: {vector}\n") == expected.format(dir=tmp_path)


@pytest.mark.parametrize("value", ["2.2.6", "1!2.0.post1", "~=2.2", ">=2,<3", "==2.*", "none"])
def test_distribution_values_accepted(tmp_path, value):
    assert load(tmp_path, f"matrix:\n  numpy: ['{value}']\n").axes == {"numpy": [value]}


@pytest.mark.parametrize(
    "value",
    ["https://x.org/a.whl", "http://x.org/a.tar.gz", "file:///tmp/a.whl", "git+https://x/a"],
)
def test_url_values_accepted(tmp_path, value):
    assert load(tmp_path, f"matrix:\n  mypkg: ['{value}']\n").axes == {"mypkg": [value]}


def test_local_path_value_is_kept_as_written(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "matrix.yml").write_text("matrix:\n  mypkg: ['../']\n")
    assert load_matrix(tmp_path / "sub" / "matrix.yml").axes == {"mypkg": ["../"]}


@pytest.mark.parametrize("value", ["3.12", "3.12.4", "3.13t", "3.13.1t", "3.10"])
def test_python_values_accepted(tmp_path, value):
    assert load(tmp_path, f"matrix:\n  python: ['{value}']\n").axes == {"python": [value]}


@pytest.mark.parametrize("value", ["3", "3.12.", "py3.12", "3.12-dev", ">=3.12", "none"])
def test_python_values_refused(tmp_path, value):
    assert err(tmp_path, f"matrix:\n  python: ['{value}']\n") == (
        '2:12: matrix.python[0]: expected a Python version such as "3.12", "3.12.4" or '
        f'"3.13t", got "{value}"'
    )


def test_cuda_values(tmp_path):
    assert load(tmp_path, "matrix:\n  cuda: ['none', '12.4']\n").axes == {"cuda": ["none", "12.4"]}
    assert err(tmp_path, "matrix:\n  cuda: ['12']\n") == (
        '2:10: matrix.cuda[0]: expected a CUDA version such as "12.4", or "none", got "12"'
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "my pkg",
            '2:3: matrix: "my pkg" is not a distribution name; expected "python", '
            '"cuda", "os", "gpu", "resolution", "as-of", "prerelease", a distribution name such '
            'as "numpy", or a key listed in `labels:`',
        ),
        ("As_Of", '2:3: matrix: "As_Of" is reserved; write "as-of"'),
        ("Python", '2:3: matrix: "Python" is reserved; write "python"'),
        ("CUDA", '2:3: matrix: "CUDA" is reserved; write "cuda"'),
    ],
)
def test_axis_key_errors(tmp_path, key, expected):
    assert err(tmp_path, f"matrix:\n  {key}: ['1.0']\n") == expected


def test_same_distribution_spelled_twice(tmp_path):
    assert err(tmp_path, "matrix:\n  scikit-learn: ['1.5']\n  Scikit_Learn: ['1.6']\n") == (
        '3:3: matrix: "Scikit_Learn" names the same distribution as "scikit-learn"; '
        'write "scikit-learn"'
    )


def test_misspelled_include_gets_a_suggestion(tmp_path):
    assert err(tmp_path, MINIMAL + "  includes:\n    - {python: '3.13'}\n") == (
        '4:7: matrix.includes[0]: expected a version string, got a mapping; did you mean "include"?'
    )


def test_empty_matrix(tmp_path):
    assert err(tmp_path, "matrix: {}\n") == (
        "1:9: matrix: no vectors and no include; expected at least one"
    )
    assert err(tmp_path, "matrix:\n") == "1:8: matrix: expected a mapping, got an empty value"


# -- matrix: include / exclude -----------------------------------------------------------------


def test_exclude_key_must_be_a_vector(tmp_path):
    text = "matrix:\n  python: ['3.12']\n  numpy: ['2.2.6']\n  exclude:\n    - {pyton: '3.12'}\n"
    assert err(tmp_path, text) == (
        '5:8: matrix.exclude[0]: "pyton" is not a matrix vector (did you mean "python"?); '
        "expected one of: python, numpy"
    )


def test_exclude_key_added_by_include_is_not_a_vector(tmp_path):
    text = MINIMAL + "  include: [{torch: '2.5.1'}]\n  exclude: [{torch: '2.5.1'}]\n"
    assert err(tmp_path, text) == (
        '4:14: matrix.exclude[0]: "torch" is not a matrix vector; expected one of: python'
    )


def test_include_and_exclude_values_are_validated(tmp_path):
    assert err(tmp_path, MINIMAL + "  include: [{python: 3.10}]\n") == (
        "3:22: matrix.include[0].python: expected a quoted version string, got the number 3.1 "
        '(YAML reads 3.10 as 3.1): write "3.10"'
    )
    assert err(tmp_path, MINIMAL + "  exclude: [{python: '3'}]\n") == (
        '3:22: matrix.exclude[0].python: expected a Python version such as "3.12", "3.12.4" '
        'or "3.13t", got "3"'
    )


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("include: [{}]", "3:13: matrix.include[0]: empty entry; expected axis: value pairs"),
        ("exclude: [{}]", "3:13: matrix.exclude[0]: empty entry; expected axis: value pairs"),
        ("include: ['3.12']", '3:13: matrix.include[0]: expected a mapping, got the string "3.12"'),
        ("include: {python: '3.13'}", "3:12: matrix.include: expected a list, got a mapping"),
        (
            "include: [{Python: '3.13'}]",
            '3:14: matrix.include[0]: "Python" is reserved; write "python"',
        ),
    ],
)
def test_include_exclude_shape(tmp_path, section, expected):
    assert err(tmp_path, MINIMAL + f"  {section}\n") == expected


def test_everything_excluded(tmp_path):
    assert err(tmp_path, "matrix:\n  python: ['3.12']\n  exclude: [{python: '3.12'}]\n") == (
        "2:3: matrix: every combination is excluded; no cells"
    )


# -- expect: -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "{match: {python: '3.12'}, status: fial}",
            '4:39: expect[0].status: unknown status "fial" (did you mean "fail"?); '
            "expected one of: pass, fail, unsupported, conflict, skip, error",
        ),
        ("{match: {python: '3.12'}}", '4:5: expect[0]: missing required key "status"'),
        ("{status: fail}", '4:5: expect[0]: missing required key "match"'),
        (
            "{match: {numpy: '2.2.6'}, status: fail}",
            '4:14: expect[0].match: "numpy" is not an axis of the matrix; expected one of: python',
        ),
        (
            "{match: {python: 3.10}, status: fail}",
            "4:22: expect[0].match.python: expected a quoted version string, got the number 3.1 "
            '(YAML reads 3.10 as 3.1): write "3.10"',
        ),
        (
            "{match: {python: '3.12'}, status: fail, reason: 1}",
            "4:53: expect[0].reason: expected a string, got the number 1",
        ),
        (
            "{match: {python: '3.12'}, status: fail, because: x}",
            '4:45: expect[0]: unknown key "because"; expected one of: match, status, reason',
        ),
        ("[python]", "4:5: expect[0]: expected a mapping, got a list"),
    ],
)
def test_expect_errors(tmp_path, entry, expected):
    assert err(tmp_path, MINIMAL + f"expect:\n  - {entry}\n") == expected


def test_error_message_format(tmp_path):
    with pytest.raises(MatrixError) as info:
        load(tmp_path, "matrix:\n  numpy: []\n")
    error = info.value
    assert (error.path, error.line, error.column) == (str(tmp_path / "matrix.yml"), 2, 10)
    assert error.problem == "matrix.numpy: empty list; expected at least one version"
    assert error.exit_status == 2


def test_no_other_exception_escapes_from_damaged_files():
    # Every prefix and every one-character deletion of a valid file either loads or is a
    # MatrixError: never a yaml, packaging or Python exception.
    lines = (DATA / "design.yml").read_text(encoding="utf-8").splitlines()
    text = "\n".join(line.split("#")[0].rstrip() for line in lines if line.split("#")[0].strip())
    damaged = [text[:end] for end in range(len(text))]
    damaged += [text[:i] + text[i + 1 :] for i in range(len(text))]
    outcomes = set()
    for variant in damaged:
        try:
            parse_matrix(variant, DATA / "design.yml")
        except MatrixError as error:
            assert error.line >= 1
            assert error.column >= 1
            outcomes.add("error")
        else:
            outcomes.add("ok")
    assert outcomes == {"ok", "error"}


def test_conda_keys_load_for_micromamba_and_are_refused_elsewhere(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "matrix:", "backend: micromamba\nchannels: [conda-forge, bioconda]\npip: [Rich]\nmatrix:"
    )
    matrix = parse_matrix(text, tmp_path / "m.yml")
    assert matrix.channels == ("conda-forge", "bioconda")
    assert matrix.pip == ("rich",)
    assert "applies only to `backend: conda` or `backend: micromamba`" in err(
        tmp_path, MINIMAL + "pip: [rich]\n"
    )
