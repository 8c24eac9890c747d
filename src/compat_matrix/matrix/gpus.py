"""GPU names a matrix may use in `gpus:` and the `gpu` axis, and the architecture each one is.

A matrix names the GPUs its users run (`gpus: [A100, H100, RTX 5090]`) or their architectures
(`sm_80`, `sm_90`, `sm_120`, or the compute capability `"9.0"`); the gpu-arch probe is given
`NAME=sm_XY` and judges each distribution's device code against that compute capability.
"""

from __future__ import annotations

import re

__all__ = ["GPU_ARCHITECTURES", "gpu_argument", "gpu_problem"]

#: Name -> SASS architecture (compute capability X.Y as sm_XY), from NVIDIA's CUDA GPU list.
GPU_ARCHITECTURES: dict[str, str] = {
    "K80": "sm_37",
    "P100": "sm_60",
    "V100": "sm_70",
    "T4": "sm_75",
    "RTX 2080": "sm_75",
    "A100": "sm_80",
    "A30": "sm_80",
    "A10": "sm_86",
    "A40": "sm_86",
    "RTX A6000": "sm_86",
    "RTX 3090": "sm_86",
    "Jetson Orin": "sm_87",
    "L4": "sm_89",
    "L40S": "sm_89",
    "RTX 4090": "sm_89",
    "RTX 6000 Ada": "sm_89",
    "H100": "sm_90",
    "H200": "sm_90",
    "GH200": "sm_90",
    "B200": "sm_100",
    "GB200": "sm_100",
    "B300": "sm_103",
    "RTX 5090": "sm_120",
    "RTX PRO 6000": "sm_120",
    "DGX Spark": "sm_121",
}
_BY_FOLDED = {name.casefold(): name for name in GPU_ARCHITECTURES}
_ARCH = re.compile(r"sm_[1-9][0-9]{1,2}[af]?")
_CC = re.compile(r"([1-9][0-9]?)\.([0-9])")


def gpu_argument(value: str) -> str | None:
    """The probe's `--gpu` argument for a matrix value (`NAME=sm_XY`), or None if unknown."""
    known = _BY_FOLDED.get(value.strip().casefold())
    if known is not None:
        return f"{known}={GPU_ARCHITECTURES[known]}"
    if _ARCH.fullmatch(value):
        return value
    m = _CC.fullmatch(value)
    if m:
        return f"{value}=sm_{m.group(1)}{m.group(2)}"
    return None


def gpu_problem(value: str) -> str | None:
    """Why `value` names no GPU, or None when it does."""
    if gpu_argument(value) is not None:
        return None
    names = ", ".join(sorted(GPU_ARCHITECTURES)[:8])
    return (
        f'expected an architecture such as "sm_90", a compute capability such as "9.0", '
        f"or a GPU name ({names}, ...), got {value!r}"
    )
