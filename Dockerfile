# syntax=docker/dockerfile:1.7
#
# compat-matrix runner image: micromamba, uv, nox and compat-matrix, ready to run a matrix.
#
# Build, from the repository root (BuildKit, the default builder since Docker 23):
#   docker build -t compat-matrix .
#
# Run the matrix of the project in the current directory; the report lands in ./compat-report.
# `compat-probe` (the default command) is `nox -s probe` on the mounted checkout: matrix from
# $COMPAT_MATRIX (default ./matrix/default.yml), report to $COMPAT_REPORT_DIR (./compat-report).
#   docker run --rm -v "$PWD:/work" compat-matrix
#   docker run --rm -v "$PWD:/work" -e COMPAT_MATRIX=matrix/torch.yml compat-matrix
#   docker run --rm -v "$PWD:/work" compat-matrix compat-matrix audit --python /usr/local/bin/python3
#
# Self-hosted GPU runner (NVIDIA driver and NVIDIA Container Toolkit on the host): pass the GPUs
# in. The toolkit mounts the host's driver libraries; the image carries no driver and no CUDA
# toolkit, since each cell brings its own CUDA runtime (nvidia-* wheels or conda packages), which is
# what the matrix tests. Without --gpus, CUDA cells still install and import, and their GPU
# checks are skipped: the report marks them "GPU unverified", never pass or fail.
#   docker run --rm --gpus all -v "$PWD:/work" compat-matrix
#
# GitHub Actions `container:` job. GitHub runs container jobs as root unless the job says
# otherwise; `--user 1001` runs them as this image's user (uid 1001, the uid of the hosted
# runner's user, so files written to the workspace keep an owner the next steps can use).
# GitHub overrides the image's command and working directory, so call `compat-probe` in a step:
#   jobs:
#     probe:
#       runs-on: ubuntu-latest            # or [self-hosted, linux, gpu]
#       container:
#         image: ghcr.io/OWNER/compat-matrix:0.1.0
#         options: --user 1001            # on a GPU runner: --user 1001 --gpus all
#       steps:
#         - uses: actions/checkout@<full commit sha>  # vX
#         - run: compat-probe
#           env:
#             COMPAT_MATRIX: matrix/default.yml
#
# Every version is pinned: base images by tag and digest, tools by the ARGs below. Update a tag
# and its digest together (`docker buildx imagetools inspect IMAGE:TAG` prints the digest).

ARG PYTHON_IMAGE=python:3.12.7-slim-bookworm@sha256:032c52613401895aa3d418a4c563d2d05f993bc3ecc065c8f4e2280978acd249
ARG MICROMAMBA_IMAGE=mambaorg/micromamba:2.3.3@sha256:800e7ade3ffe29c9a9ac2026163131495f8197c3852e572c5835beb4e8a33cd6

# micromamba is one static binary: take it from the official image instead of running an
# installer script (the official image is multi-arch, so this also works on arm64).
FROM ${MICROMAMBA_IMAGE} AS micromamba

FROM ${PYTHON_IMAGE}

ARG UV_VERSION=0.13.8
ARG NOX_VERSION=2026.10.20
# Interpreters for matrix cells, besides the image's own 3.12 (uv-managed CPython builds;
# the pinned uv decides the patch release). micromamba cells get theirs from conda-forge.
ARG EXTRA_PYTHONS="3.9 3.10 3.11 3.13"
ARG USER_NAME=compat
ARG USER_ID=1001

LABEL org.opencontainers.image.title="compat-matrix" \
      org.opencontainers.image.description="CI matrix compatibility tester for the Python ML stack: micromamba, uv, nox and compat-matrix" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    UV_PYTHON_INSTALL_DIR=/opt/pythons \
    MAMBA_EXE=/usr/local/bin/micromamba \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# git: uv and pip need it for `git+https://` requirements and setuptools-scm projects.
# Debian replaces package versions with every security update, so an exact apt pin would
# break the build within weeks; the base image digest pins the distribution instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

COPY --from=micromamba /bin/micromamba /usr/local/bin/micromamba

# The tools first, in a layer of their own: it changes only when a pinned version does.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir "uv==${UV_VERSION}" "nox==${NOX_VERSION}" \
    && uv python install --no-bin ${EXTRA_PYTHONS} \
    && uv cache clean

# compat-matrix itself, from this checkout (see .dockerignore for what is left out). The
# noxfile and probes stay at /opt/compat-matrix: `compat-probe` runs nox -f on that noxfile.
COPY . /opt/compat-matrix
RUN /opt/venv/bin/python -m pip install --no-cache-dir /opt/compat-matrix \
    && micromamba --version \
    && compat-matrix --help > /dev/null

# `nox -s probe` for the checkout in the current directory. nox changes into the noxfile's
# directory before loading it, so every path is made absolute here, and the environments and
# caches go to the user's home: /opt stays read-only.
COPY --chmod=755 <<'EOF' /usr/local/bin/compat-probe
#!/bin/sh
set -eu
absolute() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/compat-matrix"
COMPAT_MATRIX="$(absolute "${COMPAT_MATRIX:-matrix/default.yml}")"
COMPAT_REPORT_DIR="$(absolute "${COMPAT_REPORT_DIR:-compat-report}")"
COMPAT_ENV_DIR="$(absolute "${COMPAT_ENV_DIR:-$cache/envs}")"
export COMPAT_MATRIX COMPAT_REPORT_DIR COMPAT_ENV_DIR
exec nox -f /opt/compat-matrix/noxfile.py --envdir "$cache/nox" -s probe "$@"
EOF

RUN useradd --uid "${USER_ID}" --create-home --shell /bin/bash "${USER_NAME}" \
    && mkdir /work \
    && chown "${USER_NAME}:${USER_NAME}" /work

USER ${USER_NAME}
WORKDIR /work
CMD ["compat-probe"]
