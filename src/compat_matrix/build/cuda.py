"""The CUDA axis applied to one cell: from its `cuda:` value to what each backend installs.

The table itself (`matrix.cuda_table`) is data; this module picks the entries for a cell's axes
(framework builds, runtime wheels, conda specs and CONDA_OVERRIDE_CUDA) and, after the build,
reads back which CUDA versions the cell really got.

A cell needs a GPU exactly when its `cuda` axis is set and not `none`; on a runner without a
driver such a cell still solves (`CONDA_OVERRIDE_CUDA`) and installs, and its GPU checks are
skipped ("GPU unverified").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name

from compat_matrix.build.requirements import NOT_PACKAGES, Variant, value_kind, via_pip
from compat_matrix.matrix.cuda_table import (
    CudaTable,
    Installer,
    fill,
    lookup_keys,
    variables,
)

__all__ = ["CudaPlan", "cuda_resolved", "needs_gpu", "plan_cell"]


def needs_gpu(axes: Mapping[str, str]) -> bool:
    """Whether a cell needs a GPU to be verified: its `cuda` axis is set and not `none`."""
    return axes.get("cuda", "none") != "none"


# -- the plan for one cell -----------------------------------------------------------------------


@dataclass(frozen=True)
class CudaPlan:
    """What the `cuda` axis changes in one cell (nothing when the matrix has no `cuda` axis)."""

    cuda: str | None = None
    #: Environment variables for the installer (CONDA_OVERRIDE_CUDA in conda cells).
    env: dict[str, str] = field(default_factory=dict)
    #: Added to the conda solve (micromamba cells).
    conda_specs: tuple[str, ...] = ()
    #: Added to the pip/uv install (the runtime wheels; frameworks' extra requirements).
    pip_requirements: tuple[str, ...] = ()
    #: Extra package indexes a framework's builds come from.
    index_urls: tuple[str, ...] = ()
    #: The build each CUDA-aware axis distribution takes, by axis name.
    variants: dict[str, Variant] = field(default_factory=dict)
    #: Why no build exists for this combination: the cell is `unsupported`.
    unsupported: str = ""
    #: The table cannot answer (no entry for this CUDA version): the cell is an `error`.
    problem: str = ""

    @property
    def needs_gpu(self) -> bool:
        return self.cuda is not None and self.cuda != "none"


def plan_cell(
    table: CudaTable,
    axes: Mapping[str, str],
    *,
    conda: bool,
    pip: Collection[str] = (),
) -> CudaPlan:
    """Apply the table to a cell's axes: micromamba cells when `conda`, else uv/venv cells.

    In a micromamba cell, distributions named in `pip` (or given as paths/URLs) take their
    PyPI entry, the others their conda entry; the version's PyPI runtime wheels are left to
    the frameworks that pip installs (conda's `cuda-version` already pins the toolkit).
    """
    cuda = axes.get("cuda")
    if cuda is None:
        return CudaPlan()
    entry = table.version_entry(cuda)
    if entry is None:
        return CudaPlan(
            cuda=cuda,
            problem=(
                f"the CUDA table has no entry for cuda {cuda!r} (nor for CUDA "
                f"{cuda.split('.', 1)[0]}): add one in a `cuda-table:` file"
            ),
        )
    values = variables(cuda)
    conda_specs = [fill(spec, values) for spec in entry.conda] if conda else []
    pip_requirements = [] if conda else [fill(req, values) for req in entry.pypi]
    index_urls: list[str] = []
    variants: dict[str, Variant] = {}
    unsupported: list[str] = []
    for name, value in axes.items():
        if name in NOT_PACKAGES or value_kind(value) == "none":
            continue
        installer: Installer = "pypi" if not conda or via_pip(name, value, pip) else "conda"
        entries = table.framework(name, installer)
        if entries is None:
            continue
        chosen = next((entries[key] for key in lookup_keys(cuda) if key in entries), None)
        what = "conda-forge" if installer == "conda" else "PyPI"
        if chosen is None:
            build = "CPU" if cuda == "none" else f"CUDA {cuda}"
            unsupported.append(f"the CUDA table lists no {what} {build} build of {name}")
            continue
        if chosen.unsupported:
            unsupported.append(f"{name} with cuda {cuda}: {fill(chosen.unsupported, values)}")
            continue
        variants[name] = Variant(
            name=fill(chosen.name, values) if chosen.name else None,
            extras=tuple(fill(extra, values) for extra in chosen.extras),
            build=fill(chosen.build, values) if chosen.build else None,
        )
        specs = [fill(spec, values) for spec in chosen.specs]
        (conda_specs if installer == "conda" else pip_requirements).extend(specs)
        if chosen.index and installer == "pypi":
            index_urls.append(fill(chosen.index, values))
    return CudaPlan(
        cuda=cuda,
        env={"CONDA_OVERRIDE_CUDA": "" if cuda == "none" else cuda} if conda else {},
        conda_specs=tuple(dict.fromkeys(conda_specs)),
        pip_requirements=tuple(dict.fromkeys(pip_requirements)),
        index_urls=tuple(dict.fromkeys(index_urls)),
        variants=variants,
        unsupported="; ".join(unsupported),
    )


# -- resolved CUDA versions ----------------------------------------------------------------------

#: `cuda.*` key -> the nvidia-* wheels and conda packages that carry that component.
_COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "cuda.runtime",
        (
            "nvidia-cuda-runtime-cu11",
            "nvidia-cuda-runtime-cu12",
            "nvidia-cuda-runtime",
            "cuda-cudart",
            "cudatoolkit",
        ),
    ),
    ("cuda.cudnn", ("nvidia-cudnn-cu11", "nvidia-cudnn-cu12", "nvidia-cudnn-cu13", "cudnn")),
)


def cuda_resolved(
    resolved: Mapping[str, str],
    *,
    conda_records: Mapping[str, tuple[str, str]] | None = None,
    cuda_document: Mapping[str, Any] | None = None,
    builds: Collection[str] = (),
) -> dict[str, str]:
    """`cuda.*` entries for a cell's `resolved`: the CUDA versions it really got.

    `cuda.driver` and one entry per CUDA library family (`cuda.runtime` for cudart) from the
    cuda probe's document when it ran; otherwise the runtime and cuDNN from the installed
    nvidia-* wheels or conda packages. `conda_records` ({name: (version, build)}) also give
    `cuda.version` (conda's cuda-version) and `cuda.build.<name>` for the conda packages in
    `builds` (the frameworks whose build the table chose).
    """
    out: dict[str, str] = {}
    document = cuda_document or {}
    driver = document.get("driver")
    if isinstance(driver, Mapping) and driver.get("cuda"):
        out["cuda.driver"] = str(driver["cuda"])
    families: dict[str, set[str]] = {}
    for library in document.get("libraries") or ():
        if isinstance(library, Mapping) and library.get("family") and library.get("version"):
            families.setdefault(str(library["family"]), set()).add(str(library["version"]))
    for family, versions in sorted(families.items()):
        key = "cuda.runtime" if family == "cudart" else f"cuda.{family}"
        out[key] = ", ".join(sorted(versions))
    wheels = {str(canonicalize_name(name)): version for name, version in resolved.items()}
    records = {name: version for name, (version, _) in (conda_records or {}).items()}
    if "cuda-version" in records:
        out["cuda.version"] = records["cuda-version"]
    for key, names in _COMPONENTS:
        found = [source[name] for source in (wheels, records) for name in names if name in source]
        if found and key not in out:
            out[key] = ", ".join(dict.fromkeys(found))
    for name in builds:
        if conda_records and name in conda_records:
            out[f"cuda.build.{name}"] = conda_records[name][1]
    return out
