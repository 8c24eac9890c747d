"""Run `compat-matrix run` twice with its report folder on a small tmpfs, inside a mount namespace.

`python _small_disk.py full|read-only REPORT OUT FIRST_CELLS` (under `unshare --mount`): mounts
a tmpfs on REPORT, runs the cells FIRST_CELLS selects (they must pass), then fills the tmpfs
(`full`) or remounts it read-only (`read-only`) and runs every cell with `--resume`.
`env-full ENVS OUT -` mounts a full tmpfs on the environment folder ENVS and runs once. Writes both
runs' exit status and output to OUT/runs.json and copies REPORT's cells/ to OUT/cells, since
the tmpfs goes away with the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, timeout=30)


def _run(*args: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "compat_matrix", "run", "m.yml", "-j", "2", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def _fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def main() -> int:
    trouble, report_text, out_text, first_cells = sys.argv[1:5]
    report, out = Path(report_text), Path(out_text)
    report.mkdir(parents=True, exist_ok=True)
    _mount("--make-rprivate", "/")
    _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(report))
    if trouble == "env-full":  # REPORT is the environment folder here: full from the start
        _fill(report)
        out.mkdir(parents=True, exist_ok=True)
        (out / "runs.json").write_text(json.dumps([_run()], indent=2))
        return 0
    runs = [_run("--cells", first_cells)]
    if trouble == "full":
        _fill(report)
    else:
        _mount("-o", "remount,ro", str(report))
    runs.append(_run("--resume"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs.json").write_text(json.dumps(runs, indent=2))
    if (report / "cells").is_dir():
        shutil.copytree(report / "cells", out / "cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
