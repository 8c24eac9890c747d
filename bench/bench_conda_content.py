"""Benchmark: the consistency probe's check of conda files by content, on a torch environment.

In a conda environment the probe compares each conda-meta record's `paths_data` (sha256, size)
with the files on disk. It hashes only what can differ: a file whose size changed is changed
without hashing, a file no newer than its record is conda's; the rest are hashed. This prints
that check's time against hashing every file, on the torch CPU environment of bench_elf.py.

conda-forge is not reachable where this was written, so the conda environment is that torch
environment hard-link-copied (mtimes kept) with a conda-meta record per distribution written
from its RECORD (sha256 and size per file), as conda writes them after linking a package.

Usage: python bench/bench_conda_content.py [--workdir DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import base64
import csv
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from bench_elf import _default_workdir, torch_cpu_site  # noqa: E402


def _probe() -> ModuleType:
    sys.path.insert(0, str(REPO / "probes"))
    spec = importlib.util.spec_from_file_location(
        "consistency_probe", REPO / "probes" / "consistency_probe.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def conda_like(env: Path, target: Path) -> Path:
    """`env` hard-linked into `target`, with one conda-meta record per distribution."""
    if (target / "conda-meta").is_dir():
        return target
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["cp", "-al", str(env), str(target)], check=True, timeout=600)
    (target / "conda-meta").mkdir()
    for record in sorted(target.glob("lib/python3.*/site-packages/*.dist-info/RECORD")):
        site = record.parent.parent
        name, version = record.parent.name[: -len(".dist-info")].rsplit("-", 1)
        paths = []
        with record.open(newline="") as handle:
            for row in csv.reader(handle):
                if len(row) < 3 or not row[1].startswith("sha256="):
                    continue
                digest = base64.urlsafe_b64decode(row[1][7:] + "==").hex()
                rel = (site / row[0]).resolve().relative_to(target.resolve()).as_posix()
                paths.append(
                    {
                        "_path": rel,
                        "path_type": "hardlink",
                        "sha256": digest,
                        "size_in_bytes": int(row[2]),
                    }
                )
        document = {
            "name": name.lower().replace("_", "-"),
            "version": version,
            "build": "bench_0",
            "channel": "https://conda.anaconda.org/conda-forge/linux-64",
            "files": [p["_path"] for p in paths],
            "paths_data": {"paths_version": 1, "paths": paths},
        }
        out = target / "conda-meta" / f"{document['name']}-{version}-bench_0.json"
        out.write_text(json.dumps(document))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    workdir = args.workdir or _default_workdir()
    python, _site = torch_cpu_site(workdir)
    prefix = conda_like(Path(python).parents[1], workdir / "torch-conda-py311")
    probe = _probe()
    records = probe.lib.conda_records(str(prefix))
    files = sum(len(r["paths_data"]["paths"]) for r in records)
    size = sum(p["size_in_bytes"] for r in records for p in r["paths_data"]["paths"])

    def best(hash_all: bool) -> tuple[float, int]:
        times, hashed = [], 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            changed, hashed = probe.changed_conda_files(str(prefix), records, hash_all=hash_all)
            times.append(time.perf_counter() - started)
            assert not changed, changed
        return min(times), hashed

    quick, quick_hashed = best(False)
    full, full_hashed = best(True)
    print(
        f"torch conda-style environment: {len(records)} records, {files} files, {size / 2**20:.0f} MiB"
    )
    print(f"  size/mtime first: {quick * 1000:8.1f} ms ({quick_hashed} files hashed)")
    print(f"  hash everything:  {full * 1000:8.1f} ms ({full_hashed} files hashed)")
    print(f"  ratio: {full / quick:.0f}x faster")


if __name__ == "__main__":
    main()
