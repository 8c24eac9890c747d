"""Benchmark: `compat-matrix report` on 10,000 realistic cell files, and `plan` on the same matrix.

Targets (issue 12): `report` merging 10,000 cells in under 2 s with under 300 MB peak memory;
`plan --github` of the 10,000-cell matrix in under 0.5 s. Each command runs as a user runs it: a
fresh `python -m compat_matrix` process, interpreter start included, bytecode written (as on a
user's machine or a GitHub runner; a first untimed run fills the cache). The best wall time of
`--repeat` runs (5) is the figure, their median beside it; CPU time (user + system) and peak
RSS of the best run are printed too, because wall time on a shared machine is noisy: the CPU
time includes the forked helpers', also where they end after the report has.

The cell files are shaped like the ones a real run writes (numpy x pandas on CPython 3.10-3.13,
measured from such a run): a passing cell carries seven probes, two of them imports with the
list of every shared object they loaded (about 18 KB as written); one cell in eight fails the
numpy ABI with a finding per extension module, a traceback and a fix (about 50 KB); some are
unsupported (no wheel) or errors. They are written in the harness's own format
(`write_cell_result`: each cell file with its summary), spread over 256 shard folders as a
GitHub fan-out leaves them.

Usage: python bench/bench_report.py [--cells-per-axis N] [--repeat N] [--keep DIR]
                                    [--against SRC]

`--against SRC` also times `report` from another checkout's `src` folder (the main branch's,
before a change), by turns with this one, and prints both.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from compat_matrix.matrix.expand import expand  # noqa: E402
from compat_matrix.matrix.load import load_matrix  # noqa: E402
from compat_matrix.results import (  # noqa: E402
    SUMMARY_SUFFIX,
    CellResult,
    ExpectationOutcome,
    ProbeResult,
    PythonInfo,
    cell_json,
    cell_summary,
)

REPORT_TARGET_S = 2.0
REPORT_TARGET_MB = 300.0
PLAN_TARGET_S = 0.5
SHARDS = 256
MB = 1_000_000
HOME = "/home/runner"
ENVS = f"{HOME}/work/project/.nox/compat-envs"
LIBS = [
    "_algos",
    "_bisect",
    "_blake2",
    "_bz2",
    "_contextvars",
    "_ctypes",
    "_datetime",
    "_decimal",
    "_hashlib",
    "_json",
    "_lzma",
    "_multiarray_umath",
    "_pickle",
    "_random",
    "_sha2",
    "_socket",
    "_ssl",
    "_struct",
    "array",
    "binascii",
    "math",
    "mmap",
    "select",
    "unicodedata",
    "zlib",
]
PANDAS_EXTENSIONS = [
    "algos",
    "arrays",
    "groupby",
    "hashing",
    "hashtable",
    "index",
    "internals",
    "interval",
    "join",
    "json",
    "lib",
    "missing",
    "ops",
    "parsers",
    "reduction",
    "reshape",
    "sparse",
    "testing",
    "tslib",
    "tslibs/conversion",
    "tslibs/fields",
    "tslibs/nattype",
    "tslibs/np_datetime",
    "tslibs/offsets",
    "tslibs/parsing",
    "tslibs/period",
    "tslibs/strptime",
    "tslibs/timedeltas",
    "tslibs/timestamps",
    "tslibs/timezones",
    "tslibs/tzconversion",
    "tslibs/vectorized",
    "window/aggregations",
]
FIX = {
    "requirements": ["numpy<2"],
    "summary": "pin numpy<2: pandas @PD@ was built against NumPy 1.x",
    "alternatives": [
        {"requirements": ["pandas>=2.2.2"], "summary": "upgrade pandas to a NumPy 2 build"}
    ],
}


def _matrix(root: Path, per_axis: int) -> Path:
    """4 pythons x numpy x pandas x 2 scipy x 2 cuda: 16 * per_axis**2 cells (10,000 at 25)."""
    versions = ", ".join(f'"1.{i}"' for i in range(per_axis))
    path = root / "big.yml"
    path.write_text(
        "name: report-bench\n"
        "matrix:\n"
        '  python: ["3.10", "3.11", "3.12", "3.13"]\n'
        f"  numpy: [{versions}]\n"
        f"  pandas: [{versions}]\n"
        '  scipy: ["1.13.1", "~=1.14"]\n'
        '  cuda: ["none", "12.4"]\n'
        "expect:\n"
        '  - {match: {python: "3.13", cuda: "12.4"}, status: fail, reason: "no cu124 wheels"}\n'
    )
    return path


def _loaded(py: str, count: int) -> list[str]:
    """What an import probe reports: every shared object the import loaded, as real paths."""
    tag = f"cpython-{py.replace('.', '')}-x86_64-linux-gnu"
    stdlib = [
        f"{HOME}/.pyenv/versions/{py}.4/lib/python{py}/lib-dynload/{n}.{tag}.so" for n in LIBS
    ]
    site = f"{ENVS}/@ID@/lib/python{py}/site-packages"
    own = [f"{site}/pandas/_libs/{n}.{tag}.so" for n in PANDAS_EXTENSIONS]
    numpy = [f"{site}/numpy/_core/{n}.{tag}.so" for n in ("_multiarray_umath", "_umath_linalg")]
    return (stdlib + numpy + own)[:count]


def _environment_probes(py: str, failing: bool) -> list[ProbeResult]:
    site = f"{ENVS}/@ID@/lib/python{py}/site-packages"
    findings = {"abi-numpy": 33} if failing else {}
    return [
        ProbeResult(
            "abi",
            "environment",
            "fail" if failing else "pass",
            "abi-numpy" if failing else None,
            "66 shared objects checked (63 extension modules)"
            + ("; 33 findings: 33 abi-numpy" if failing else ""),
            "",
            0.209928,
            {
                "files": 66,
                "extensions": 63,
                "sites": [site],
                "prefix": f"{ENVS}/@ID@",
                "executable": f"{ENVS}/@ID@/bin/python",
                "numpy": "@NP@",
                "findings": findings,
                "system_dirs": ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib"],
                "hwcaps": ["x86-64-v4", "x86-64-v3", "x86-64-v2"],
            },
        ),
        ProbeResult(
            "gpu-arch",
            "environment",
            "pass",
            None,
            "0 of 66 shared objects carry CUDA device code, in 0 distributions",
            "",
            0.03237,
            {"gpus": {}, "table": {}, "files": 66},
        ),
        ProbeResult(
            "native",
            "environment",
            "pass",
            None,
            "63 of 63 shared objects load with RTLD_NOW|RTLD_LOCAL",
            "",
            0.252893,
            {"files": 63, "loaded": 63, "batches": 2, "findings": {}, "sites": [site]},
        ),
    ]


def _tail_probes() -> list[ProbeResult]:
    return [
        ProbeResult(
            "cuda",
            "cuda",
            "pass",
            None,
            "no CUDA components in this environment",
            "",
            0.33841,
            {"driver": {"found": False, "error": "libcuda.so.1: cannot open shared object file"}},
        ),
        ProbeResult(
            "consistency",
            "environment",
            "pass",
            None,
            "5 distributions, 5 requirements satisfied, no file installed twice",
            "",
            0.280454,
        ),
    ]


def _template(kind: str, py: str) -> CellResult:
    """A cell of `kind` on Python `py` with placeholders for its id and versions."""
    axes = {"python": py, "numpy": "@NP@", "pandas": "@PD@", "scipy": "@SP@", "cuda": "@CU@"}
    resolved = {
        "numpy": "@NP@",
        "pandas": "@PD@",
        "scipy": "1.14.1",
        "python-dateutil": "2.9.0.post0",
        "pytz": "2025.2",
        "six": "1.17.0",
        "tzdata": "2025.2",
    }
    info = PythonInfo(f"{py}.4", "cpython", f"cpython-{py.replace('.', '')}-x86_64-linux-gnu")
    lock = "locks/@ID@.txt"
    if kind == "unsupported":
        return CellResult(
            "@ID@",
            axes,
            "unsupported",
            "no-distribution",
            "Because pandas==@PD@ has no usable wheels and you require pandas==@PD@, we can "
            "conclude that your requirements are unsatisfiable.",
            f"pandas @PD@ has no wheel for Python {py} on this platform; pandas 2.3.3 is the "
            "newest for it (verified: resolves)",
            durations={"build": 0.502, "probes": 0.0},
            fingerprint="5b27a3653f407386",
            lock=lock,
        )
    if kind == "error":
        return CellResult(
            "@ID@",
            axes,
            "error",
            "network",
            "could not reach the package index: timed out after 60 s",
            "",
            durations={"build": 60.0, "probes": 0.0},
            fingerprint="9a1c3653f407ff02",
        )
    imports = [
        ProbeResult(
            "import",
            "numpy",
            "pass",
            None,
            "",
            "",
            1.06922,
            {
                "import_s": 0.8429911089997404,
                "gil_enabled": True,
                "distribution": "numpy",
                "distribution_version": "@NP@",
                "version": "@NP@",
                "loaded": _loaded(py, 14),
            },
        )
    ]
    if kind == "pass":
        imports.append(
            ProbeResult(
                "import",
                "pandas",
                "pass",
                None,
                "",
                "",
                7.443196,
                {
                    "import_s": 7.171125146999657,
                    "gil_enabled": True,
                    "distribution": "pandas",
                    "distribution_version": "@PD@",
                    "version": "@PD@",
                    "loaded": _loaded(py, 60) + _loaded(py, 23),
                },
            )
        )
        return CellResult(
            "@ID@",
            axes,
            "pass",
            python=info,
            resolved=resolved,
            probes=[*_environment_probes(py, False), *imports, *_tail_probes()],
            durations={"build": 1.881, "probes": 11.06},
            fingerprint="e07a8122b3d318fd",
            lock=lock,
        )
    tag = f"cpython-{py.replace('.', '')}-x86_64-linux-gnu"
    site = f"{ENVS}/@ID@/lib/python{py}/site-packages"
    hint = "pin numpy<2: pandas @PD@ was built against NumPy 1.x (verified: resolves)"
    findings = [
        ProbeResult(
            "abi",
            f"pandas/_libs/{name}.{tag}.so",
            "fail",
            "abi-numpy",
            f"pandas/_libs/{name}.{tag}.so was compiled against NumPy 1.x headers and cannot run "
            "with numpy @NP@ (A module that was compiled using NumPy 1.x cannot be run in NumPy "
            "2.x; _ARRAY_API not found)",
            hint,
            0.007223,
            {
                "numpy_headers": 1,
                "numpy_installed": "@NP@",
                "owner": "pandas @PD@",
                "fix": FIX,
                "path": f"{site}/pandas/_libs/{name}.{tag}.so",
            },
        )
        for name in PANDAS_EXTENSIONS
    ]
    frames = "".join(
        f'  File "{site}/pandas/{m}/__init__.py", line {n}, in <module>\n    from pandas.{m} import x\n'
        for n, m in enumerate(("compat", "util", "core", "_libs", "io", "api"), 10)
    )
    message = "ValueError: numpy.dtype size changed, may indicate binary incompatibility. "
    message += "Expected 96 from C header, got 88 from PyObject"
    imports.append(
        ProbeResult(
            "import",
            "pandas",
            "fail",
            "abi-numpy",
            message,
            "pandas @PD@ was built against NumPy 1.x but NumPy @NP@ is installed: pin numpy<2, "
            "or upgrade pandas to a release built for NumPy 2 (pandas>=2.2.2)",
            1.399866,
            {
                "import_s": 1.1449381040001754,
                "distribution": "pandas",
                "distribution_version": "@PD@",
                "version": "@PD@",
                "exception": message,
                "traceback_tail": frames + message,
                "numpy_version": "@NP@",
                "evidence": "numpy.dtype size 96 in the C header, 88 at runtime",
                "failing_distribution": "pandas",
                "built_against_numpy": "1.x",
                "fix": FIX,
                "loaded": _loaded(py, 34),
            },
        )
    )
    return CellResult(
        "@ID@",
        axes,
        "fail",
        "abi-numpy",
        findings[7].message + " (loaded by import pandas) (+32 more findings)",
        hint,
        info,
        resolved,
        [*findings, *_environment_probes(py, True), *imports, *_tail_probes()],
        {"build": 1.284, "probes": 4.832},
        ExpectationOutcome("fail", True, "pandas @PD@ wheels are built against NumPy 1.x"),
        fingerprint="2fca5df8106dc599",
        lock=lock,
    )


def _kind(index: int) -> str:
    """About 75% pass, 12% fail, 10% unsupported, 3% error, spread through the matrix."""
    roll = (index * 7919) % 100
    return "fail" if roll < 12 else "unsupported" if roll < 22 else "error" if roll < 25 else "pass"


def write_cells(root: Path, matrix: Path) -> tuple[list[Path], int, int]:
    """The cell files as the report job finds them: one folder per shard artifact, each file in
    the harness's own format. Returns the shard folders, the cell count and the bytes written."""
    cells = expand(load_matrix(matrix))
    dirs = [root / "shards" / f"shard-{n:03d}" / "cells" for n in range(SHARDS)]
    for directory in dirs:
        directory.mkdir(parents=True)
    texts: dict[tuple[str, str], str] = {}
    written = 0
    for index, cell in enumerate(cells):
        key = (_kind(index), cell.axes["python"])
        if key not in texts:  # the harness's encoding (write_cell_result), made once per shape
            texts[key] = cell_json(_template(*key)) + "\n"
        text = texts[key]
        for placeholder, value in (
            ("@ID@", cell.id),
            ("@NP@", cell.axes["numpy"]),
            ("@PD@", cell.axes["pandas"]),
            ("@SP@", json.dumps(cell.axes["scipy"])[1:-1]),
            ("@CU@", cell.axes["cuda"]),
        ):
            text = text.replace(placeholder, value)
        data = text.encode("utf-8")
        (dirs[index % SHARDS] / f"{cell.id}.json").write_bytes(data)
        summary = cell_summary(text)  # as `write_cell_result` writes it beside the cell file
        if summary is not None:
            (dirs[index % SHARDS] / f"{cell.id}{SUMMARY_SUFFIX}").write_text(summary + "\n")
        written += len(data)
    return [d.parent for d in dirs], len(cells), written


def _env(src: Path = REPO / "src") -> dict[str, str]:
    """The user's environment: bytecode written and reused (no PYTHONDONTWRITEBYTECODE)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(src)
    return env


def measure(
    argv: list[str], repeat: int, src: Path = REPO / "src"
) -> tuple[float, float, float, str]:
    """Best wall seconds, the CPU seconds and peak RSS (MB) of that run, and its stdout."""
    best: tuple[float, float, float, str] | None = None
    for _ in range(repeat):
        with tempfile.TemporaryFile() as out:
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.PIPE, cwd=REPO, env=_env(src)
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            helpers = _helpers_cpu()
            proc.returncode = os.waitstatus_to_exitcode(status)
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            if proc.stderr:
                proc.stderr.close()
            if proc.returncode not in (0, 1, 3):
                raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{stderr}")
            out.seek(0)
            text = out.read().decode()
        cpu = usage.ru_utime + usage.ru_stime + helpers
        rss_mb = usage.ru_maxrss * 1024 / MB
        _WALLS.setdefault(tuple(argv), []).append(wall)
        if best is None or wall < best[0]:
            best = (wall, cpu, rss_mb, text)
    assert best is not None
    return best


#: Every wall time `measure` took of a command line (this tree's), for the medians printed.
_WALLS: dict[tuple[str, ...], list[float]] = {}


def _median(argv: list[str], repeat: int) -> float:
    """The median wall time of the last `repeat` runs of `argv`: beside the best, how much
    of it the host's drift decides."""
    return statistics.median(_WALLS[tuple(argv)][-repeat:])


def _adopt_orphans() -> None:
    """Make this process the parent of the report's forked helpers once the report has ended
    (Linux's child subreaper), so that their CPU time counts: a helper, let go, ends by itself
    a moment after the report (reports/_parallel.py)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


_PR_SET_CHILD_SUBREAPER = 36


def _helpers_cpu() -> float:
    """CPU seconds of the helpers the last command left (`_adopt_orphans`), once they end."""
    cpu = 0.0
    while True:
        try:
            _, _, usage = os.wait4(-1, 0)
        except ChildProcessError:
            return cpu
        cpu += usage.ru_utime + usage.ru_stime


def measure_against(
    argv: list[str], repeat: int, other: Path
) -> tuple[tuple[float, float, float, str], tuple[float, float, float, str]]:
    """`measure` of this tree's harness and of `other`'s (a `src` folder), run by turns in
    the same minutes: on a shared machine only runs side by side compare."""
    ours, theirs = measure(argv, 1), measure(argv, 1, other)
    for _ in range(repeat - 1):
        theirs = min(theirs, measure(argv, 1, other))
        ours = min(ours, measure(argv, 1))
    return ours, theirs


def _parse_floor(shard_dirs: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds to read and `json.loads` every cell file once."""
    files = [path for folder in shard_dirs for path in sorted((folder / "cells").iterdir())]
    started, cpu = time.perf_counter(), time.process_time()
    for path in files:
        json.loads(path.read_bytes())
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells-per-axis", type=int, default=25, help="default: 10,000 cells")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep the generated files here")
    parser.add_argument(
        "--against", type=Path, help="another checkout's src folder: time its report by turns"
    )
    args = parser.parse_args()
    _adopt_orphans()

    root = Path(tempfile.mkdtemp(prefix="compat-bench-report-"))
    try:
        matrix = _matrix(root, args.cells_per_axis)
        shard_dirs, count, size = write_cells(root, matrix)
        cli = [sys.executable, "-m", "compat_matrix"]
        plan_argv = [*cli, "plan", str(matrix), "--github", "--gpu-label", "gpu"]
        measure(plan_argv, 1)  # bytecode for the harness, as a user's second run has it
        plan_s, plan_cpu, plan_mb, plan_out = measure(plan_argv, args.repeat)
        planned = sum(entry["count"] for entry in json.loads(plan_out)["include"])
        out = root / "report"
        report_argv = [*cli, "report", *map(str, shard_dirs), "-o", str(out)]
        report_argv += ["--matrix", str(matrix)]
        report_s, report_cpu, report_mb, _ = measure(report_argv, args.repeat)
        # The nightly run compares with last night's compat.json (here: this one, unchanged).
        baseline = root / "baseline.json"
        shutil.copyfile(out / "compat.json", baseline)
        nightly_argv = [*report_argv, "--baseline", str(baseline)]
        nightly_s, nightly_cpu, nightly_mb, _ = measure(nightly_argv, args.repeat)
        rows = [
            ("plan --github", plan_s, plan_cpu, f"{plan_mb:.0f} MB", f"< {PLAN_TARGET_S} s",
             plan_s / PLAN_TARGET_S, planned == count),
            ("report", report_s, report_cpu, f"{report_mb:.0f} MB", f"< {REPORT_TARGET_S:.0f} s",
             report_s / REPORT_TARGET_S, True),
            ("report peak memory", report_mb, None, "", f"< {REPORT_TARGET_MB:.0f} MB",
             report_mb / REPORT_TARGET_MB, True),
            ("report --baseline", nightly_s, nightly_cpu, f"{nightly_mb:.0f} MB",
             f"< {REPORT_TARGET_S:.0f} s", nightly_s / REPORT_TARGET_S, True),
            ("  its peak memory", nightly_mb, None, "", f"< {REPORT_TARGET_MB:.0f} MB",
             nightly_mb / REPORT_TARGET_MB, True),
        ]  # fmt: skip
        medians = {
            "plan --github": _median(plan_argv, args.repeat),
            "report": _median(report_argv, args.repeat),
            "report --baseline": _median(nightly_argv, args.repeat),
        }
        print(
            f"compat-matrix report benchmark: {count} cells ({size / MB:.0f} MB of cell files "
            f"in {SHARDS} shard folders), best of {args.repeat} (and their median); wall time "
            "on a shared machine is noisy, CPU time is steadier"
        )
        print(
            f"  {'':<20} {'measured':>10} {'median':>8} {'cpu':>8} {'peak':>8}  {'target':<9} ratio"
        )
        ok = True
        for name, value, cpu, peak, target, ratio, valid in rows:
            unit = "MB" if cpu is None else "s"
            cpu_text = "" if cpu is None else f"{cpu:.2f} s"
            median = f"{medians[name]:.2f} s" if name in medians else ""
            met = ratio < 1 and valid
            ok = ok and met
            print(
                f"  {name:<20} {value:>7.2f} {unit:<2} {median:>8} {cpu_text:>8} {peak:>8}  "
                f"{target:<9} {ratio:.2f}x of target  {'ok' if met else 'MISSED'}"
            )
        # Floors, for scale: a bare interpreter, and reading + parsing every cell file once
        # (stdlib json, in this process), which no report of these files can go below.
        bare_s, bare_cpu, _, _ = measure([sys.executable, "-c", "pass"], args.repeat)
        parse_s, parse_cpu = _parse_floor(shard_dirs)
        print(
            f"  floors: interpreter start {bare_s:.2f} s ({bare_cpu:.2f} s cpu); reading and "
            f"parsing the cell files {parse_s:.2f} s ({parse_cpu:.2f} s cpu)"
        )
        compat_json = (out / "compat.json").stat().st_size
        print(f"  compat.json {compat_json / MB:.0f} MB, compat.html "
              f"{(out / 'compat.html').stat().st_size / MB:.1f} MB")  # fmt: skip
        if args.against:
            _print_against(report_argv, nightly_argv, args.repeat, args.against.resolve())
        if args.keep:
            shutil.copytree(root, args.keep, dirs_exist_ok=True)
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _print_against(
    report_argv: list[str], nightly_argv: list[str], repeat: int, other: Path
) -> None:
    """`report` and `report --baseline` of this tree and of `other`, by turns."""
    measure(report_argv, 1, other)  # its bytecode
    print(f"  by turns with {other} (best of {repeat} each):")
    for name, argv in (("report", report_argv), ("report --baseline", nightly_argv)):
        ours, theirs = measure_against(argv, repeat, other)
        for who, (wall, cpu, peak, _) in (("this tree", ours), ("against", theirs)):
            print(f"  {name:<20} {who:<10} {wall:>6.2f} s wall {cpu:>6.2f} s cpu {peak:>5.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
