"""Solve (and install) one conda environment with rattler, in a child of the harness.

Usage::

    python conda_worker.py solve|install < request.json > answer.json

The request: `{"channels", "specs", "platforms", "pkgs_dir", "repodata_cache", "prefix",
"expect", "strategy", "exclude_newer"}` (the last two: the matrix's `resolution` and `as-of`).
`solve` answers `{"ok": true, "records": [repodata record, ...]}`; `install` solves
again, checks that the answer is still the `expect`ed list of URLs (the lock the harness keyed
reuse on), and links it into `prefix`. A failure answers `{"ok": false, "error": <rattler
exception class>, "message": ...}`. Virtual packages are detected here, with
CONDA_OVERRIDE_CUDA (and the other CONDA_OVERRIDE_*) honoured.

This runs in its own process because py-rattler 0.28 was seen to crash at interpreter exit
after a finished install (5 of 50 runs): the answer is written and flushed, then the process
leaves with `os._exit`, skipping the teardown that crashed.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import sys
from typing import Any

import rattler
from rattler.platform import Platform


async def _solve(request: dict[str, Any]) -> list[rattler.RepoDataRecord]:
    overrides = rattler.VirtualPackageOverrides.from_env()
    virtual = rattler.VirtualPackage.detect(overrides)
    gateway = rattler.Gateway(cache_dir=request["repodata_cache"], show_progress=False)
    platforms = request.get("platforms") or [str(Platform.current()), "noarch"]
    newer = request.get("exclude_newer")
    return await rattler.solve(
        [rattler.Channel(c) for c in request["channels"]],
        request["specs"],
        gateway=gateway,
        platforms=platforms,
        virtual_packages=virtual,
        channel_priority=rattler.ChannelPriority.Strict,
        strategy=request.get("strategy") or "highest",
        exclude_newer=datetime.datetime.fromisoformat(newer.replace("Z", "+00:00"))
        if newer
        else None,
    )


async def _main(mode: str, request: dict[str, Any]) -> dict[str, Any]:
    records = await _solve(request)
    answer = [json.loads(record.to_json()) for record in records]
    if mode == "solve":
        return {"ok": True, "records": answer}
    urls = sorted(str(record.get("url")) for record in answer)
    if urls != sorted(request.get("expect") or urls):
        return {
            "ok": False,
            "error": "ChannelChanged",
            "message": "the channels answered differently between the solve and the install",
        }
    await rattler.install(
        records,
        request["prefix"],
        cache_dir=request["pkgs_dir"],
        show_progress=False,
        # py-rattler 0.28 passes these through unwrapped, so the inner spec is given.
        requested_specs=[rattler.MatchSpec(spec)._match_spec for spec in request["specs"]],
    )
    return {"ok": True, "records": answer}


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "solve"
    try:
        answer = asyncio.run(_main(mode, json.load(sys.stdin)))
    except Exception as exc:  # noqa: BLE001 - every failure is an answer the harness classifies
        answer = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
