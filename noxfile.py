"""compat-matrix's nox sessions.

`nox -s probe` runs every cell of `$COMPAT_MATRIX` (default matrix/default.yml), in parallel, and
publishes the report to `$COMPAT_REPORT_DIR` (default compat-report/). Each cell is its own
session, `cell(<cell-id>)`, so `nox -l` lists them and `nox -s "cell(<cell-id>)"` runs one. The
sessions come from `compat_matrix.nox.register`, the same call a user's noxfile makes.
`lint`, `tests` and `bench` are the project's own checks; they run in the current environment.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
# Run the harness from this checkout whether or not it is installed.
sys.path.insert(0, str(ROOT / "src"))

import compat_matrix.nox  # noqa: E402

nox.needs_version = ">=2026.8.10"
nox.options.sessions = ["probe"]
nox.options.parallel = "auto"
nox.options.error_on_missing_interpreters = False

compat_matrix.nox.register("matrix/default.yml")


def tool(name: str) -> str:
    """A tool beside this interpreter (`.venv/bin/nox` run without an activated venv), else PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def probe_modules() -> list[str]:
    """mypy arguments for probes/ as the scripts see it: top-level modules (`import _probelib`),
    found on MYPYPATH=probes/, not the `compat_matrix.probes` package it ships as."""
    stems = sorted(p.stem for p in (ROOT / "probes").glob("*.py") if p.stem != "__init__")
    return [arg for stem in stems for arg in ("-m", stem)]


def unpinned_actions(paths: list[str]) -> list[str]:
    """`uses:` lines whose third-party action is not pinned by full SHA with a `# vX` comment."""
    uses = re.compile(r"^\s*(?:-\s+)?uses:\s*([^\s#]+)\s*(#.*)?$")
    pinned = re.compile(r"[^@\s]+@[0-9a-f]{40}")
    found_unpinned = []
    for path in paths:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            found = uses.match(line)
            if not found or found.group(1).startswith(("./", "docker://")):
                continue
            comment = found.group(2) or ""
            if not pinned.fullmatch(found.group(1)) or not re.search(r"#\s*v\d", comment):
                found_unpinned.append(f"{path}:{number}: {line.strip()}")
    return found_unpinned


#: Runtimes GitHub still runs: Node 24, and actions that run no Node of their own.
CURRENT_RUNTIMES = ("node24", "composite", "docker")


def action_runtime_problems(paths: list[str], table_path: Path) -> list[str]:
    """Pins whose action and version are not in the runtime table, whose SHA the table lists
    under another version, or whose version runs on a runtime GitHub no longer runs."""
    import yaml

    table = yaml.safe_load(table_path.read_text(encoding="utf-8")) or {}
    uses = re.compile(r"^\s*(?:-\s+)?uses:\s*([^\s#@]+)@([0-9a-f]{40})\s*#\s*(v[\w.-]+)")
    problems = []
    for path in paths:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            found = uses.match(line)
            if not found:
                continue
            action, sha, version = found.groups()
            where = f"{path}:{number}: {action}@{version}"
            entry = (table.get(action) or {}).get(version)
            if entry is None:
                problems.append(f"{where}: not in {table_path.name}; add it with its runtime")
            elif entry["sha"] != sha:
                problems.append(f"{where}: {table_path.name} has {entry['sha']} for {version}")
            elif entry["using"] not in CURRENT_RUNTIMES:
                problems.append(f"{where}: runs on {entry['using']}; pin a Node 24 major")
    return problems


@nox.session(python=False, default=False)
def lint(session: nox.Session) -> None:
    """ruff, mypy --strict on src/; zizmor, schemas, pinned SHAs on Node 24 majors; hadolint."""
    session.run(tool("ruff"), "check", ".")
    session.run(tool("ruff"), "format", "--check", ".")
    session.run(tool("mypy"), "--strict", "src")
    session.run(tool("mypy"), "--strict", *probe_modules(), env={"MYPYPATH": str(ROOT / "probes")})
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    action = str(ROOT / "action.yml")
    session.run(tool("zizmor"), "--offline", str(ROOT))
    schema = tool("check-jsonschema")
    session.run(schema, "--builtin-schema", "vendor.github-workflows", *workflows)
    session.run(schema, "--builtin-schema", "vendor.github-actions", action)
    unpinned = unpinned_actions([action, *workflows])
    if unpinned:
        session.error("actions not pinned by commit SHA (# vX comment):\n" + "\n".join(unpinned))
    outdated = action_runtime_problems(
        [action, *workflows], ROOT / ".github" / "action-runtimes.yml"
    )
    if outdated:
        session.error("pinned actions not on a Node 24 major:\n" + "\n".join(outdated))
    session.run(tool("hadolint"), str(ROOT / "Dockerfile"))


#: Test workers: more than the cores, since most tests wait on downloads and child processes.
TEST_WORKERS = os.environ.get("COMPAT_TEST_WORKERS", "4")


@nox.session(python=False, default=False)
def tests(session: nox.Session) -> None:
    """The test suite, end-to-end tests included (they build real environments from PyPI), on
    parallel workers: each module is one group (its environments built once), the accuracy
    suite's cells are spread, the longest groups start first (tests/conftest.py)."""
    parallel = ["-n", TEST_WORKERS, "--dist", "loadgroup", "--no-loadscope-reorder"]
    # Bytecode on, as on a user's machine or a GitHub runner (an empty value is unset for
    # Python): where the machine sets PYTHONDONTWRITEBYTECODE, each probe of a framework cell
    # would compile tensorflow or jax from source again.
    session.run(
        tool("pytest"),
        *parallel,
        *(session.posargs or ["-ra", "--durations=25"]),
        env={"PYTHONDONTWRITEBYTECODE": ""},
    )


@nox.session(python=False, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks against the baselines a user would otherwise use, measured in the same run.

    Every bench runs and prints its ratios, even after one missed a target (exit 1) or failed:
    the session fails at the end, naming them."""
    missed = []
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        try:
            session.run(sys.executable, str(script), *session.posargs)
        except nox.command.CommandFailed:
            missed.append(script.name)
    if missed:
        session.error("a target missed, or the bench failed: " + ", ".join(missed))
