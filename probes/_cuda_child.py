"""The CUDA probe's children: one file, three modes, each a child process of ``cuda_probe.py``.

Usage (by ``cuda_probe.py`` only)::

    <env python> _cuda_child.py driver            # libcuda's version, then cuInit and devices
    <env python> _cuda_child.py libraries         # dlopen each {"path", "call"} line on stdin
    <env python> _cuda_child.py framework NAME    # import torch/jax/tensorflow/cupy, then a GPU op

Results go to a private copy of stdout as JSON lines (whatever the libraries print goes to
stderr); a line with ``"phase"`` ends a phase, which the parent times separately. This file's
folder is dropped from ``sys.path`` first (so nothing in probes/ shadows a framework's modules),
and on Linux the child dies with the probe, since it leads its own process group, out of the
harness's reach. Python 3.8 syntax, stdlib only.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))
if sys.path and (sys.path[0] in ("", ".") or os.path.realpath(sys.path[0]) == _HERE):
    del sys.path[0]

import ctypes  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Callable

if sys.platform.startswith("linux"):
    try:  # noqa: SIM105 - no contextlib import in a child
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:  # noqa: BLE001 - without it the child still works
        pass
_out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def emit(item: dict[str, Any]) -> None:
    _out.write(json.dumps(item, default=str) + "\n")
    _out.flush()


# -- the driver ------------------------------------------------------------------------------


def _mapped(fragment: str) -> str | None:
    try:
        with open("/proc/self/maps") as handle:
            for line in handle:
                parts = line.split(None, 5)
                if len(parts) == 6 and fragment in os.path.basename(parts[5].strip()):
                    return parts[5].strip()
    except OSError:
        pass
    return None


def driver() -> None:
    """libcuda's version (phase 0), then cuInit and the devices (phase 1)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        emit({"phase": "version", "found": False, "error": str(exc)})
        return
    info: dict[str, Any] = {"phase": "version", "found": True, "path": _mapped("libcuda.so")}

    def name_of(code: int) -> str:
        try:
            text = ctypes.c_char_p()
            if cuda.cuGetErrorName(code, ctypes.byref(text)) == 0 and text.value:
                return text.value.decode()
        except Exception:  # noqa: BLE001 - the number is still an answer
            pass
        return "CUDA error %d" % code

    try:
        value = ctypes.c_int(0)
        rc = cuda.cuDriverGetVersion(ctypes.byref(value))
        info["version_rc"] = rc
        info["version"] = value.value if rc == 0 else None
    except AttributeError as exc:
        info["error"] = "cuDriverGetVersion: %s" % exc
    emit(info)
    init: dict[str, Any] = {"phase": "init"}
    try:
        rc = cuda.cuInit(0)
    except AttributeError as exc:
        init["error"] = "cuInit: %s" % exc
    else:
        init["init_rc"] = rc
        if rc != 0:
            init["init_error"] = name_of(rc)
        else:
            count = ctypes.c_int(0)
            rc = cuda.cuDeviceGetCount(ctypes.byref(count))
            init["count"] = count.value if rc == 0 else 0
            devices = []
            for index in range(init["count"]):
                device = ctypes.c_int(0)
                if cuda.cuDeviceGet(ctypes.byref(device), index) != 0:
                    continue
                name = ctypes.create_string_buffer(256)
                cuda.cuDeviceGetName(name, 256, device)
                major, minor = ctypes.c_int(0), ctypes.c_int(0)
                cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device)
                cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)
                devices.append(
                    {
                        "name": name.value.decode("utf-8", "replace"),
                        "capability": "%d.%d" % (major.value, minor.value),
                    }
                )
            init["devices"] = devices
    emit(init)


# -- libraries -------------------------------------------------------------------------------


def _prop(lib: ctypes.CDLL, name: str) -> list[int]:
    fn = getattr(lib, name)
    parts = []
    for kind in (0, 1, 2):
        value = ctypes.c_int(0)
        rc = fn(kind, ctypes.byref(value))
        if rc != 0:
            raise RuntimeError("%s returned %d" % (name, rc))
        parts.append(value.value)
    return parts


def _call(lib: ctypes.CDLL, name: str) -> tuple[list[int], int | None]:
    if name == "cudaRuntimeGetVersion":
        value = ctypes.c_int(0)
        rc = lib.cudaRuntimeGetVersion(ctypes.byref(value))
        if rc != 0:
            known = {
                35: "cudaErrorInsufficientDriver",
                34: "cudaErrorStubLibrary",
                100: "cudaErrorNoDevice",
            }
            raise RuntimeError("cudaRuntimeGetVersion returned %d (%s)" % (rc, known.get(rc, "?")))
        return [value.value // 1000, (value.value % 1000) // 10], value.value
    if name in ("nvrtcVersion", "nvJitLinkVersion"):
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        rc = getattr(lib, name)(ctypes.byref(major), ctypes.byref(minor))
        if rc != 0:
            raise RuntimeError("%s returned %d" % (name, rc))
        return [major.value, minor.value], None
    if name == "ncclGetVersion":
        value = ctypes.c_int(0)
        rc = lib.ncclGetVersion(ctypes.byref(value))
        if rc != 0:
            raise RuntimeError("ncclGetVersion returned %d" % rc)
        code = value.value
        base = 10000 if code >= 20900 else 1000
        return [code // base, (code % base) // 100, code % 100], code
    return _prop(lib, name), None


def libraries() -> None:
    """dlopen each library (one JSON line per path on stdin) and ask it its version.

    A "start" line before each load lets the parent blame a crash on the right file.
    """
    mode = os.RTLD_NOW | getattr(os, "RTLD_LOCAL", 0)
    for raw in sys.stdin:
        item = json.loads(raw)
        emit({"start": item["path"]})
        result: dict[str, Any] = {"path": item["path"]}
        try:
            handle = ctypes.CDLL(item["path"], mode=mode)
            version, code = _call(handle, item["call"])
            result["version"] = version
            if code is not None:
                result["code"] = code
        except Exception as exc:  # noqa: BLE001 - reported per library
            result["error"] = "%s: %s" % (type(exc).__name__, exc)
        emit(result)
    emit({"phase": "done"})


# -- frameworks ------------------------------------------------------------------------------

_LOADED_PREFIXES = (
    "libcudart",
    "libcudnn",
    "libcublas",
    "libnccl",
    "libcuda.so",
    "libnvrtc",
    "libnvJitLink",
    "libcufft",
    "libcusparse",
    "libcusolver",
)


def _text(exc: BaseException) -> str:
    return "%s: %s" % (type(exc).__name__, exc)


def _loaded() -> list[str]:
    found: dict[str, None] = {}
    try:
        with open("/proc/self/maps") as handle:
            for line in handle:
                parts = line.split(None, 5)
                if len(parts) < 6:
                    continue
                path = parts[5].strip()
                base = os.path.basename(path)
                for key in _LOADED_PREFIXES:
                    if base.startswith(key):
                        found.setdefault(path, None)
    except OSError:
        pass
    return sorted(found)


def _guard(info: dict[str, Any], key: str, fn: Callable[[], object]) -> None:
    try:
        info[key] = fn()
    except Exception as exc:  # noqa: BLE001 - one failed question must not hide the rest
        info[key + "_error"] = _text(exc)


def framework(name: str) -> None:
    """Import one framework (phase "imported"), then touch the device (phase "device").

    Each step is guarded so one failure does not hide the rest.
    """
    import traceback

    info: dict[str, Any] = {"phase": "imported"}
    modules: dict[str, Any] = {}
    try:
        if name == "torch":
            torch = modules["torch"] = importlib.import_module("torch")
            info["version"] = torch.__version__
            info["cuda"] = getattr(torch.version, "cuda", None)
            info["hip"] = getattr(torch.version, "hip", None)
            _guard(info, "cudnn_available", lambda: bool(torch.backends.cudnn.is_available()))
            if info.get("cudnn_available"):
                _guard(info, "cudnn_compiled", lambda: list(torch._C._cudnn.getCompileVersion()))
                _guard(info, "cudnn_runtime", lambda: list(torch._C._cudnn.getRuntimeVersion()))
                _guard(info, "cudnn_check", lambda: torch.backends.cudnn.version())  # noqa: PLW0108 - looked up inside the guard
            if info.get("cuda"):
                _guard(info, "arch_list", lambda: torch._C._cuda_getArchFlags())  # noqa: PLW0108 - looked up inside the guard
                _guard(info, "nccl", lambda: list(torch.cuda.nccl.version()))
        elif name == "jax":
            jax = modules["jax"] = importlib.import_module("jax")
            jaxlib = importlib.import_module("jaxlib")
            info["version"] = jax.__version__
            info["jaxlib"] = getattr(jaxlib, "__version__", None)
        elif name == "tensorflow":
            tf = modules["tensorflow"] = importlib.import_module("tensorflow")
            info["version"] = tf.__version__
            _guard(info, "build", lambda: dict(tf.sysconfig.get_build_info()))
        elif name == "cupy":
            cupy = modules["cupy"] = importlib.import_module("cupy")
            info["version"] = cupy.__version__
            _guard(info, "runtime", lambda: cupy.cuda.runtime.runtimeGetVersion())  # noqa: PLW0108 - looked up inside the guard
            _guard(info, "driver", lambda: cupy.cuda.runtime.driverGetVersion())  # noqa: PLW0108 - looked up inside the guard
    except BaseException as exc:  # noqa: BLE001 - every failure is the report
        info["import_error"] = _text(exc)
        info["traceback"] = traceback.format_exc()[-4000:]
        info["loaded"] = _loaded()
        emit(info)
        sys.exit(0)
    info["loaded"] = _loaded()
    emit(info)
    device: dict[str, Any] = {"phase": "device"}
    step = None
    try:
        if name == "torch":
            torch = modules["torch"]
            device["available"] = bool(torch.cuda.is_available())
            if device["available"]:
                device["count"] = torch.cuda.device_count()
                device["name"] = torch.cuda.get_device_name(0)
                device["capability"] = "%d.%d" % torch.cuda.get_device_capability(0)
                step = "tensor"
                x = torch.arange(8.0, device="cuda")
                assert float((x * 2).sum()) == 56.0, "wrong result on the device"  # noqa: S101
                step = "matmul (cuBLAS)"
                a = torch.ones(64, 64, device="cuda")
                assert float((a @ a)[0, 0]) == 64.0, "wrong matmul result"  # noqa: S101
                if info.get("cudnn_available"):
                    step = "conv2d (cuDNN)"
                    w = torch.ones(1, 1, 3, 3, device="cuda")
                    y = torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4, device="cuda"), w)
                    assert float(y[0, 0, 0, 0]) == 9.0, "wrong conv2d result"  # noqa: S101
                torch.cuda.synchronize()
                device["ops"] = "ok"
        elif name == "jax":
            jax = modules["jax"]
            devices = jax.devices()
            device["backend"] = jax.default_backend()
            device["devices"] = [str(d) for d in devices]
            gpus = [d for d in devices if d.platform in ("gpu", "cuda")]
            device["available"] = bool(gpus)
            if gpus:
                device["name"] = getattr(gpus[0], "device_kind", str(gpus[0]))
                x = jax.device_put(jax.numpy.arange(8.0), gpus[0])
                assert float((x * 2).sum()) == 56.0, "wrong result on the device"  # noqa: S101
                device["ops"] = "ok"
        elif name == "tensorflow":
            tf = modules["tensorflow"]
            gpus = tf.config.list_physical_devices("GPU")
            device["devices"] = [d.name for d in gpus]
            device["available"] = bool(gpus)
            if gpus:
                with tf.device("/GPU:0"):
                    x = tf.range(8.0)
                    assert float(tf.reduce_sum(x * 2)) == 56.0, "wrong result on the device"  # noqa: S101
                device["ops"] = "ok"
        elif name == "cupy":
            cupy = modules["cupy"]
            device["count"] = cupy.cuda.runtime.getDeviceCount()
            device["available"] = device["count"] > 0
            if device["available"]:
                props = cupy.cuda.runtime.getDeviceProperties(0)
                device["name"] = props["name"]
                if isinstance(device["name"], bytes):
                    device["name"] = device["name"].decode("utf-8", "replace")
                x = cupy.arange(8, dtype=cupy.float32)
                assert float((x * 2).sum()) == 56.0, "wrong result on the device"  # noqa: S101
                device["ops"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - every failure is the report
        device["error"] = _text(exc)
        device["traceback"] = traceback.format_exc()[-3000:]
        if step:
            device["step"] = step
    device["loaded"] = _loaded()
    emit(device)


if __name__ == "__main__":
    if sys.argv[1:2] == ["driver"]:
        driver()
    elif sys.argv[1:2] == ["libraries"]:
        libraries()
    elif sys.argv[1:2] == ["framework"] and len(sys.argv) == 3:
        framework(sys.argv[2])
    else:
        sys.exit("usage: _cuda_child.py driver | libraries | framework NAME")
