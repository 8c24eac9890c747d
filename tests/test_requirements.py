from __future__ import annotations

from pathlib import Path

import pytest

from compat_matrix.build.requirements import requirement, requirements_for, value_kind


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("1.26.4", "version"),
        ("2", "version"),
        ("2.0.0rc1", "version"),
        ("~=2.2", "specifier"),
        (">=2,<3", "specifier"),
        ("==1.26.*", "specifier"),
        ("none", "none"),
        ("./pkg", "path"),
        ("../other", "path"),
        (".", "path"),
        ("https://example.org/pkg-1.0-py3-none-any.whl", "url"),
        ("git+https://github.com/o/r@v1", "url"),
        ("banana", "invalid"),
        ("", "invalid"),
    ],
)
def test_value_kinds(value: str, kind: str) -> None:
    assert value_kind(value) == kind


def test_requirement_strings(tmp_path: Path) -> None:
    assert requirement("numpy", "1.26.4", tmp_path) == "numpy==1.26.4"
    assert requirement("pandas", "~=2.2", tmp_path) == "pandas~=2.2"
    assert requirement("torch", "none", tmp_path) is None
    assert requirement("mypkg", "./pkg", tmp_path) == f"mypkg @ {(tmp_path / 'pkg').as_uri()}"
    assert requirement("x", "https://h/x.whl", tmp_path) == "x @ https://h/x.whl"
    with pytest.raises(ValueError, match="banana"):
        requirement("x", "banana", tmp_path)


def test_cell_requirements_skip_python_cuda_and_none_then_add_project(tmp_path: Path) -> None:
    reqs = requirements_for(
        {"python": "3.11", "cuda": "none", "numpy": "2.2.6", "torch": "none"},
        (".", "rich>=13"),
        tmp_path,
    )
    assert reqs == ["numpy==2.2.6", str(tmp_path.resolve()), "rich>=13"]
