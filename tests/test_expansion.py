"""Expansion follows GitHub Actions' `strategy.matrix` rules exactly; cell ids are readable.

The expected job lists are GitHub's own worked examples (github/docs,
data/reusables/actions/jobs/{using-matrix-strategy,matrix-exclude,matrix-include,
matrix-add-with-include,matrix-expand-with-include}.md), job order included.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compat_matrix.matrix.expand import cell_id, expand, expand_combinations
from compat_matrix.matrix.model import Matrix

SAFE_ID = re.compile(r"[A-Za-z0-9._+-]+")


def jobs(vectors, include=(), exclude=()):
    """Expanded jobs as lists of pairs, so key order is compared too."""
    return [list(job.items()) for job in expand_combinations(vectors, include, exclude)]


def pairs(*dicts):
    return [list(d.items()) for d in dicts]


# -- GitHub's documented examples -------------------------------------------------------------


def test_product_in_declaration_order_first_key_slowest():
    # using-matrix-strategy.md
    got = jobs({"version": ["10", "12", "14"], "os": ["ubuntu-latest", "windows-latest"]})
    assert got == pairs(
        {"version": "10", "os": "ubuntu-latest"},
        {"version": "10", "os": "windows-latest"},
        {"version": "12", "os": "ubuntu-latest"},
        {"version": "12", "os": "windows-latest"},
        {"version": "14", "os": "ubuntu-latest"},
        {"version": "14", "os": "windows-latest"},
    )


def test_exclude_matches_partially():
    # matrix-exclude.md: 12 combinations, minus 1 full match and 2 partial matches = 9 jobs.
    vectors = {
        "os": ["macos-latest", "windows-latest"],
        "version": ["12", "14", "16"],
        "environment": ["staging", "production"],
    }
    exclude = [
        {"os": "macos-latest", "version": "12", "environment": "production"},
        {"os": "windows-latest", "version": "16"},
    ]
    got = expand_combinations(vectors, [], exclude)
    assert got == [
        {"os": "macos-latest", "version": "12", "environment": "staging"},
        {"os": "macos-latest", "version": "14", "environment": "staging"},
        {"os": "macos-latest", "version": "14", "environment": "production"},
        {"os": "macos-latest", "version": "16", "environment": "staging"},
        {"os": "macos-latest", "version": "16", "environment": "production"},
        {"os": "windows-latest", "version": "12", "environment": "staging"},
        {"os": "windows-latest", "version": "12", "environment": "production"},
        {"os": "windows-latest", "version": "14", "environment": "staging"},
        {"os": "windows-latest", "version": "14", "environment": "production"},
    ]


def test_include_fruit_animal_example():
    # matrix-include.md: six jobs, in this order, with these keys in this order.
    vectors = {"fruit": ["apple", "pear"], "animal": ["cat", "dog"]}
    include = [
        {"color": "green"},
        {"color": "pink", "animal": "cat"},
        {"fruit": "apple", "shape": "circle"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    assert jobs(vectors, include) == pairs(
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    )


def test_include_perl_example_appends_entries_that_overwrite_originals():
    # matrix-include.md: five ubuntu jobs, then the two macos includes: seven jobs.
    perl = ["5.16", "5.20", "5.26", "5.30", "latest"]
    include = [{"os": "macos-latest", "perl": "5.26"}, {"os": "macos-latest", "perl": "latest"}]
    got = expand_combinations({"os": ["ubuntu-latest"], "perl": perl}, include, [])
    assert got == [
        *({"os": "ubuntu-latest", "perl": version} for version in perl),
        {"os": "macos-latest", "perl": "5.26"},
        {"os": "macos-latest", "perl": "latest"},
    ]


def test_include_adds_a_job_for_a_new_value():
    # matrix-add-with-include.md: 9 combinations plus {windows-latest, 17} = 10 jobs.
    vectors = {
        "os": ["macos-latest", "windows-latest", "ubuntu-latest"],
        "version": ["12", "14", "16"],
    }
    got = expand_combinations(vectors, [{"os": "windows-latest", "version": "17"}], [])
    assert len(got) == 10
    assert got[:9] == [{"os": o, "version": v} for o in vectors["os"] for v in vectors["version"]]
    assert got[9] == {"os": "windows-latest", "version": "17"}


def test_include_only_matrix_runs_one_job_per_entry():
    # matrix-add-with-include.md
    include = [
        {"site": "production", "datacenter": "site-a"},
        {"site": "staging", "datacenter": "site-b"},
    ]
    assert expand_combinations({}, include, []) == include


def test_include_extends_the_matching_original_combination():
    # matrix-expand-with-include.md: six jobs; windows-latest/16 also gets npm: 6.
    vectors = {"os": ["windows-latest", "ubuntu-latest"], "node": ["12", "14", "16"]}
    got = jobs(vectors, [{"os": "windows-latest", "node": "16", "npm": "6"}])
    assert got == pairs(
        {"os": "windows-latest", "node": "12"},
        {"os": "windows-latest", "node": "14"},
        {"os": "windows-latest", "node": "16", "npm": "6"},
        {"os": "ubuntu-latest", "node": "12"},
        {"os": "ubuntu-latest", "node": "14"},
        {"os": "ubuntu-latest", "node": "16"},
    )


# -- the rules, one at a time ------------------------------------------------------------------


def test_include_can_add_back_an_excluded_combination_at_the_end():
    vectors = {"python": ["3.11", "3.12"], "numpy": ["1.26.4", "2.2.6"]}
    exclude = [{"python": "3.12", "numpy": "1.26.4"}]
    include = [{"python": "3.12", "numpy": "1.26.4"}]
    got = expand_combinations(vectors, include, exclude)
    assert got == [
        {"python": "3.11", "numpy": "1.26.4"},
        {"python": "3.11", "numpy": "2.2.6"},
        {"python": "3.12", "numpy": "2.2.6"},
        {"python": "3.12", "numpy": "1.26.4"},
    ]


def test_exclude_runs_before_include_so_includes_skip_excluded_combinations():
    vectors = {"python": ["3.11", "3.12"]}
    got = expand_combinations(vectors, [{"torch": "2.5.1"}], [{"python": "3.12"}])
    assert got == [{"python": "3.11", "torch": "2.5.1"}]


def test_later_include_overwrites_added_values_never_original_ones():
    vectors = {"python": ["3.11", "3.12"]}
    include = [
        {"numpy": "2.0.2"},  # added to both
        {"python": "3.12", "numpy": "2.2.6"},  # overwrites the added numpy on 3.12 only
        {"python": "3.13", "numpy": "2.2.6"},  # would overwrite python: a new job
    ]
    assert expand_combinations(vectors, include, []) == [
        {"python": "3.11", "numpy": "2.0.2"},
        {"python": "3.12", "numpy": "2.2.6"},
        {"python": "3.13", "numpy": "2.2.6"},
    ]


def test_later_include_never_extends_an_appended_job():
    vectors = {"python": ["3.11"]}
    include = [{"python": "3.12"}, {"python": "3.12", "numpy": "2.2.6"}]
    assert expand_combinations(vectors, include, []) == [
        {"python": "3.11"},
        {"python": "3.12"},
        {"python": "3.12", "numpy": "2.2.6"},
    ]


def test_include_equal_to_an_original_combination_adds_no_job():
    vectors = {"python": ["3.11", "3.12"]}
    assert expand_combinations(vectors, [{"python": "3.12"}], []) == [
        {"python": "3.11"},
        {"python": "3.12"},
    ]


def test_github_semantics_not_act_for_includes_with_only_new_keys():
    # nektos/act TestReadWorkflow_Strategy appends {php-version: 5.4} as a job of its own;
    # GitHub adds it to every original combination (like {color: green} in matrix-include.md).
    vectors = {"datacenter": ["site-c", "site-d"], "node-version": ["14.x", "16.x"]}
    exclude = [{"datacenter": "site-d", "node-version": "14.x"}]
    include = [{"php-version": "5.4"}, {"datacenter": "site-a", "node-version": "10.x"}]
    assert expand_combinations(vectors, include, exclude) == [
        {"datacenter": "site-c", "node-version": "14.x", "php-version": "5.4"},
        {"datacenter": "site-c", "node-version": "16.x", "php-version": "5.4"},
        {"datacenter": "site-d", "node-version": "16.x", "php-version": "5.4"},
        {"datacenter": "site-a", "node-version": "10.x"},
    ]


def test_no_vectors_and_no_include_is_no_jobs():
    assert expand_combinations({}, [], []) == []


def test_expansion_does_not_mutate_its_inputs():
    include = [{"numpy": "2.0.2"}]
    vectors = {"python": ["3.11"]}
    expand_combinations(vectors, include, [])
    assert include == [{"numpy": "2.0.2"}]
    assert vectors == {"python": ["3.11"]}


# -- cell ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("axes", "expected"),
    [
        ({"python": "3.11"}, "py3.11"),
        ({"python": "3.13t"}, "py3.13t"),
        ({"python": "3.12.4"}, "py3.12.4"),
        ({"cuda": "12.4"}, "cu12.4"),
        ({"cuda": "none"}, "cpu"),
        ({"numpy": "2.0.2"}, "numpy2.0.2"),
        ({"torch": "2.4.0+cu121"}, "torch2.4.0+cu121"),
        ({"numpy": "==2.0.2"}, "numpy2.0.2"),
        ({"numpy": "==2.*"}, "numpy2.x"),
        ({"pandas": "~=2.2"}, "pandas_compat2.2"),
        ({"numpy": ">=2,<3"}, "numpy_ge2_lt3"),
        ({"numpy": ">2, <=3"}, "numpy_gt2_le3"),
        ({"numpy": "!=2.0.*"}, "numpy_ne2.0.x"),
        ({"numpy": "===2.0"}, "numpy_eq2.0"),
        ({"numpy": "none"}, "no-numpy"),
        ({"mypkg": "./mypkg"}, "mypkg_local"),
        ({"mypkg": "../src/mypkg"}, "mypkg_local"),
        ({"mypkg": "https://example.org/mypkg-1.0-py3-none-any.whl"}, "mypkg_url"),
        ({"mypkg": "git+https://github.com/o/mypkg@v1"}, "mypkg_url"),
        ({"fruit": "apple"}, "fruitapple"),
        ({"os": "ubuntu-24.04"}, "ubuntu-24.04"),
        ({"os": "ubuntu-24.04-arm", "python": "3.12"}, "ubuntu-24.04-arm-py3.12"),
        (
            {"python": "3.11", "numpy": "2.0.2", "pandas": "2.0.3"},
            "py3.11-numpy2.0.2-pandas2.0.3",
        ),
        ({"cuda": "none", "python": "3.12"}, "cpu-py3.12"),
    ],
)
def test_cell_id(axes, expected):
    assert cell_id(axes) == expected


@pytest.mark.parametrize(
    "value",
    ["2.0.2", ">=1 , <2", "~=2.2", "none", "./a b", "file:///x?y=1", "=== 2", "1.0!", "é"],
)
def test_cell_id_uses_only_safe_characters(value):
    assert SAFE_ID.fullmatch(cell_id({"python": "3.11", "my pkg": value}))


def test_cell_id_of_no_axes_is_still_a_usable_name():
    assert SAFE_ID.fullmatch(cell_id({}))


def _matrix(axes=None, include=(), exclude=()):
    return Matrix(
        path=Path("matrix.yml"), name="m", axes=axes or {}, include=include, exclude=exclude
    )


def test_expand_gives_cells_in_job_order_with_their_axes():
    matrix = _matrix(
        {"python": ["3.11", "3.12"], "numpy": ["1.26.4", "2.2.6"]},
        include=({"python": "3.12", "cuda": "12.4"},),
        exclude=({"python": "3.11", "numpy": "2.2.6"},),
    )
    cells = expand(matrix)
    assert [cell.id for cell in cells] == [
        "py3.11-numpy1.26.4",
        "py3.12-numpy1.26.4-cu12.4",
        "py3.12-numpy2.2.6-cu12.4",
    ]
    assert [cell.axes for cell in cells] == expand_combinations(
        matrix.axes, matrix.include, matrix.exclude
    )


def test_expand_disambiguates_clashing_ids_deterministically():
    matrix = _matrix({"mypkg": ["./a", "./b", "https://x.org/p.whl", "git+https://x.org/p"]})
    ids = [cell.id for cell in expand(matrix)]
    assert ids[0] == "mypkg_local"
    assert re.fullmatch(r"mypkg_local-[0-9a-f]{6}", ids[1])
    assert ids[2] == "mypkg_url"
    assert re.fullmatch(r"mypkg_url-[0-9a-f]{6}", ids[3])
    assert len(set(ids)) == len(ids)
    assert ids == [cell.id for cell in expand(matrix)]


def test_expand_ids_are_unique_even_for_identical_jobs():
    # Two identical include-only entries are two GitHub jobs; they still need two ids.
    entry = {"python": "3.12", "numpy": "2.2.6"}
    cells = expand(_matrix(include=(entry, dict(entry), dict(entry))))
    ids = [cell.id for cell in cells]
    assert ids[0] == "py3.12-numpy2.2.6"
    assert len(set(ids)) == 3
    assert all(SAFE_ID.fullmatch(i) for i in ids)


def test_expand_does_not_depend_on_disambiguation_of_unrelated_cells():
    # The id of a cell that does not clash is its plain readable id.
    matrix = _matrix({"numpy": ["==2.0.2", "2.0.2", "1.26.4"]})
    ids = [cell.id for cell in expand(matrix)]
    assert ids[0] == "numpy2.0.2"
    assert ids[1].startswith("numpy2.0.2-")
    assert ids[2] == "numpy1.26.4"
