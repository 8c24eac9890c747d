"""Ground truth for the framework accuracy suite, taken without compat-matrix.

For each cell: a fresh ``python -m venv`` with the cell's CPython, ``pip install
--only-binary=:all:`` of the cell's pins (with this machine's pip configuration, as a user's pip
would), then one real operation in a fresh process from an empty directory (``operate.py``:
``jnp.ones(3).sum()``, ``tf.constant(1) + 1``, a scikit-learn fit, ``torch.ones(2) @
torch.ones(2)``, a pandas sum). The verdict is one of

- ``pass``: installed, and the operation returned the expected value;
- ``fail``: installed, but the import or the operation failed;
- ``unsupported``: pip found no distribution (``No matching distribution found``);
- ``conflict``: pip found the declared requirements unsatisfiable (``ResolutionImpossible``);
- ``error``: anything else (network, timeout): no verdict, rerun it.

Run it by hand (stdlib only, any Python 3.9+; downloads are large, pip's cache keeps them)::

    python3 tests/accuracy/ground_truth.py                    # every cell -> ground_truth.json
    python3 tests/accuracy/ground_truth.py --jobs 2 --resume  # keep cells already judged
    python3 tests/accuracy/ground_truth.py --only tensorflow  # one framework's cells
    python3 tests/accuracy/ground_truth.py --write-expect     # matrices' expect: from the JSON

Interpreters are CPython X.Y from ``$PYENV_ROOT/versions`` (default ``~/.pyenv/versions``), the
newest patch release of each. The cells are the 39 of issue 15 plus the must-fail pandas pair;
``test_accuracy.py`` checks that the suite's matrix files list exactly these cells.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPERATE = HERE / "operate.py"
OUTPUT = HERE / "ground_truth.json"
INSTALL_TIMEOUT_S = 2400
OPERATION_TIMEOUT_S = 900
JAX = {"0.4.30", "0.4.35", "0.6.2"}
NUMPY = ("1.26.4", "2.2.6")


def cells() -> list[dict[str, object]]:
    """Issue 15's 39 cells, then pandas 2.0.3 under both NumPys (the NumPy 2 one must fail).

    jax 0.4.30/0.4.35/0.6.2 x numpy 1.26.4/2.2.6 x Python 3.10-3.13 (24); scikit-learn
    1.3.2/1.5.2 x numpy on Python 3.11 (4); torch 2.13.0 CPU x numpy on Python 3.11, the only
    Python its local CPU wheel is built for (2); tensorflow-cpu 2.15.1/2.17.1/2.18.0 x Python
    3.9/3.11/3.12 with the numpy its own requirements pick (9).
    """
    out: list[dict[str, object]] = []
    for jax in sorted(JAX):
        for numpy in NUMPY:
            for python in ("3.10", "3.11", "3.12", "3.13"):
                out.append(_cell(python, "jax", {"jax": jax, "numpy": numpy}))
    for sklearn in ("1.3.2", "1.5.2"):
        for numpy in NUMPY:
            out.append(_cell("3.11", "scikit-learn", {"scikit-learn": sklearn, "numpy": numpy}))
    for numpy in NUMPY:
        out.append(_cell("3.11", "torch", {"torch": "2.13.0", "numpy": numpy}))
    for tf in ("2.15.1", "2.17.1", "2.18.0"):
        for python in ("3.9", "3.11", "3.12"):
            out.append(_cell(python, "tensorflow", {"tensorflow-cpu": tf}))
    for numpy in NUMPY:
        out.append(_cell("3.11", "pandas", {"pandas": "2.0.3", "numpy": numpy}))
    return out


def _cell(python: str, operation: str, pins: dict[str, str]) -> dict[str, object]:
    return {"python": python, "operation": operation, "pins": pins}


def cell_key(cell: dict[str, object]) -> str:
    pins = cell["pins"]
    assert isinstance(pins, dict)
    return "py{}-{}".format(cell["python"], "-".join(f"{k}{v}" for k, v in sorted(pins.items())))


def find_python(version: str) -> Path:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for path in root.glob(version + ".*"):
        match = re.fullmatch(re.escape(version) + r"\.(\d+)", path.name)
        if match and (path / "bin" / "python").exists():
            found.append((int(match.group(1)), path / "bin" / "python"))
    if not found:
        raise SystemExit(f"no CPython {version} under {root}")
    return max(found)[1]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHONNOUSERSITE="1", PIP_NO_INPUT="1")
    return env


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def scrub(text: str) -> str:
    """Machine paths out of a stored message: the scratch venv, the temp folder, the home."""
    text = re.sub(r"[^\s\"']*/tmp[^/\s]*/venv", "<venv>", text)
    text = re.sub(re.escape(tempfile.gettempdir()) + r"/[^\s\"']*", "<tmp>", text)
    return text.replace(str(Path.home()), "~")


def classify_pip(output: str) -> str:
    if "ResolutionImpossible" in output or "conflicting dependencies" in output:
        return "conflict"
    if "No matching distribution found" in output:
        return "unsupported"
    return "error"


def judge(cell: dict[str, object], scratch: Path) -> dict[str, object]:
    """Build the cell's venv with pip, run its operation, and return the verdict record."""
    started = time.monotonic()
    python = find_python(str(cell["python"]))
    pins = cell["pins"]
    assert isinstance(pins, dict)
    record: dict[str, object] = dict(cell)
    env = _clean_env()
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        venv = Path(tmp, "venv")
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True, timeout=300, env=env)
        vpython = str(venv / "bin" / "python")
        version = subprocess.run(
            [
                vpython,
                "-c",
                "import platform, pip; print(platform.python_version(), pip.__version__)",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env=env,
        ).stdout.split()
        record["python_version"], record["pip_version"] = version
        argv = [vpython, "-m", "pip", "install", "--only-binary=:all:"]
        argv += [f"{name}=={pin}" for name, pin in pins.items()]
        try:
            done = subprocess.run(
                argv,
                check=False,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                env=env,
            )
        except subprocess.TimeoutExpired:
            record.update(status="error", detail="pip install timed out")
            return _finish(record, started)
        if done.returncode != 0:
            output = done.stdout + done.stderr
            record.update(status=classify_pip(output), detail=_tail(output))
            return _finish(record, started)
        freeze = subprocess.run(
            [vpython, "-m", "pip", "freeze", "--all"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env=env,
        ).stdout
        record["installed"] = dict(
            line.split("==", 1) for line in freeze.splitlines() if "==" in line
        )
        workdir = Path(tmp, "run")
        workdir.mkdir()
        shutil.copy(OPERATE, workdir / OPERATE.name)
        try:
            ran = subprocess.run(
                [vpython, OPERATE.name, str(cell["operation"])],
                check=False,
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=OPERATION_TIMEOUT_S,
                env=env,
            )
        except subprocess.TimeoutExpired:
            record.update(status="fail", detail="operation timed out")
            return _finish(record, started)
        status = "pass" if ran.returncode == 0 else "fail"
        record.update(status=status, detail=_tail(ran.stdout + ran.stderr, 12))
    return _finish(record, started)


def _finish(record: dict[str, object], started: float) -> dict[str, object]:
    record["detail"] = scrub(str(record.get("detail", "")))
    record["duration_s"] = round(time.monotonic() - started, 1)
    return record


def write(path: Path, results: dict[str, dict[str, object]]) -> None:
    order = [cell_key(cell) for cell in cells()]
    document = {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "how": "fresh venv per cell, pip install --only-binary=:all: of the pins, "
        "then a real operation (tests/accuracy/operate.py)",
        "cells": [results[key] for key in order if key in results],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


REASONS = {
    "pass": "pip: installs, and {operation} runs",
    "fail": "pip: installs, but {operation} fails",
    "unsupported": "pip: no matching distribution",
    "conflict": "pip: ResolutionImpossible",
}


def write_expectations(results: dict[str, dict[str, object]]) -> None:
    """Rewrite the ``expect:`` block that ends each ``<operation>.yml`` from the verdicts."""
    for matrix in sorted(HERE.glob("*.yml")):
        text = matrix.read_text()
        head = text[: text.index("\nexpect:")] if "\nexpect:" in text else text.rstrip("\n")
        lines = [head]
        for cell in cells():
            record = results.get(cell_key(cell))
            if cell["operation"] != matrix.stem or record is None:
                continue
            pins = cell["pins"]
            assert isinstance(pins, dict)
            match = ", ".join(f'{k}: "{v}"' for k, v in [*pins.items(), ("python", cell["python"])])
            status = str(record["status"])
            reason = REASONS.get(status, status).format(operation=cell["operation"])
            lines.append(f'  - {{match: {{{match}}}, status: {status}, reason: "{reason}"}}')
        if len(lines) > 1:
            lines.insert(1, "expect:  # ground_truth.py --write-expect, from ground_truth.json")
        matrix.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--resume", action="store_true", help="keep cells with a verdict")
    parser.add_argument("--only", help="only the cells of this operation (jax, torch, ...)")
    parser.add_argument("--python", help="only cells of these Python versions (3.10,3.11)")
    parser.add_argument("--scratch", type=Path, default=None, help="where the venvs are built")
    parser.add_argument(
        "--write-expect", action="store_true", help="only rewrite the matrices' expect: blocks"
    )
    args = parser.parse_args(argv)
    results: dict[str, dict[str, object]] = {}
    if args.output.exists():
        results = {cell_key(c): c for c in json.loads(args.output.read_text())["cells"]}
    if args.write_expect:
        write_expectations(results)
        return 0
    todo = [
        cell
        for cell in cells()
        if (not args.only or args.only == cell["operation"])
        and (not args.python or cell["python"] in args.python.split(","))
        and not (
            args.resume and results.get(cell_key(cell), {}).get("status") not in (None, "error")
        )
    ]
    scratch = args.scratch or Path(tempfile.gettempdir())
    lock = threading.Lock()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(judge, cell, scratch): cell for cell in todo}
        for future in concurrent.futures.as_completed(futures):
            record = future.result()
            with lock:
                results[cell_key(record)] = record
                write(args.output, results)
            print(
                f"{record['status']:12} {cell_key(record)} ({record['duration_s']} s)", flush=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
