"""On a GPU runner: the static architecture verdict checked against what the device reports.

The gpu-arch probe reads which SASS/PTX each distribution carries; the cuda probe reports the
devices the driver sees (compute capability) and the architectures torch says it was built
for (`torch._C._cuda_getArchFlags()`, what `torch.cuda.get_arch_list()` returns). Here the two
meet: every distribution's coverage of the device actually present (a `cuda-arch` failure when
one has no kernel it can run, even if torch's own smoke test passed), and a `probe-disagreement`
error when torch's own architecture list contradicts what was read from its files (the static
reader would be wrong, and then no verdict of it can be trusted).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from compat_matrix.results import ProbeResult

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["device_agreement", "runs_on"]

_ARCH = re.compile(r"^(?:sm_|compute_)(\d+)([af]?)$")


def runs_on(arch: str, capability: tuple[int, int]) -> bool:
    """True when code for `arch` (sm_XY[a|f] / compute_XY[a|f]) runs on `capability`.

    The same rule as the gpu-arch probe's (probes never import the harness, so it is stated
    twice; tests check both against the same table).
    """
    m = _ARCH.match(arch)
    if m is None:
        return False
    number, suffix = int(m.group(1)), m.group(2)
    built = (number // 10, number % 10)
    if suffix == "a":
        return built == capability
    if arch.startswith("sm_") or suffix == "f":
        return built[0] == capability[0] and built[1] <= capability[1]
    return built <= capability


def _capability(text: object) -> tuple[int, int] | None:
    m = re.fullmatch(r"(\d+)\.(\d+)", str(text or ""))
    return (int(m.group(1)), int(m.group(2))) if m else None


def _devices(cuda: Sequence[ProbeResult]) -> list[tuple[str, tuple[int, int]]]:
    for result in cuda:
        if result.probe == "cuda" and result.target == "driver" and result.status == "pass":
            found = []
            for device in result.details.get("devices") or []:
                capability = _capability(dict(device).get("capability"))
                if capability is not None:
                    found.append((str(dict(device).get("name") or "GPU"), capability))
            return found
    return []


def _torch_arch_list(cuda_document: Mapping[str, Any]) -> set[str]:
    torch = dict((cuda_document.get("frameworks") or {}).get("torch") or {})
    flags = dict(torch.get("imported") or {}).get("arch_list") or ""
    items = flags.split() if isinstance(flags, str) else list(flags)
    return {str(item) for item in items if str(item).startswith(("sm_", "compute_"))}


def device_agreement(
    gpu_arch: Sequence[ProbeResult],
    cuda: Sequence[ProbeResult],
    cuda_document: Mapping[str, Any],
) -> list[ProbeResult]:
    """Findings comparing the static architectures with the device; [] without a device."""
    devices = _devices(cuda)
    carried = {
        r.target: (list(r.details.get("sass") or []), list(r.details.get("ptx") or []))
        for r in gpu_arch
        if r.probe == "gpu-arch" and r.target != "environment" and "sass" in r.details
    }
    if not devices or not carried:
        return []
    out: list[ProbeResult] = []
    for name, capability in devices:
        arch = f"sm_{capability[0]}{capability[1]}"
        for dist, (sass, ptx) in sorted(carried.items()):
            if any(runs_on(a, capability) for a in sass):
                continue
            if any(runs_on(a, capability) for a in ptx):
                continue
            out.append(
                ProbeResult(
                    "gpu-arch",
                    f"device:{dist}",
                    "fail",
                    "cuda-arch",
                    f"{dist} has no kernel for this runner's {name} ({arch}): it carries "
                    f"{' '.join(sass + ptx) or 'no device code'}",
                    f"install a build of {dist} compiled for {arch}",
                    details={"device": name, "capability": arch, "sass": sass, "ptx": ptx},
                )
            )
    torch_flags = _torch_arch_list(cuda_document)
    if torch_flags and "torch" in carried:
        sass, ptx = carried["torch"]
        static = {a.rstrip("af") for a in sass} | {a.rstrip("af") for a in ptx}
        said = {a.rstrip("af") for a in torch_flags}
        # torch lists compute_XY for PTX and sm_XY for SASS, as the files should carry them.
        missing = sorted(said - static)
        if missing:
            out.append(
                ProbeResult(
                    "gpu-arch",
                    "device:torch",
                    "error",
                    "probe-disagreement",
                    f"torch says it was built for {' '.join(sorted(torch_flags))}, but its files "
                    f"carry no {' '.join(missing)}: the static reading is incomplete",
                    "report it to compat-matrix with the cell's compat.json",
                    details={"arch_list": sorted(torch_flags), "static": sorted(static)},
                )
            )
    if not out:
        names = ", ".join(f"{n} (sm_{c[0]}{c[1]})" for n, c in devices)
        out.append(
            ProbeResult(
                "gpu-arch",
                "device",
                "pass",
                None,
                f"every CUDA distribution has a kernel for {names}; the static reading agrees "
                "with the device" + (" and torch's architecture list" if torch_flags else ""),
                details={"devices": [n for n, _ in devices]},
            )
        )
    return out
