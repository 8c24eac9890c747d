"""compat.html in a real browser: headless Chromium lays it out and runs its one script.

Runs where Chromium (or Google Chrome, which GitHub's Ubuntu runners carry) is installed
(`apt-get install chromium`); elsewhere it says so and skips, unless `COMPAT_REQUIRE_BROWSER` is
set, as CI sets it: there a missing browser fails the run instead of skipping it silently. The page's script is allowed by hash only, so these tests also
prove the Content-Security-Policy lets it run and nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from compat_matrix.reports import write_reports
from compat_matrix.results import CellResult, ProbeResult

CHROMIUM = next(
    filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-extensions",
    "--no-first-run",
    "--window-size=1200,900",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None and not os.environ.get("COMPAT_REQUIRE_BROWSER"),
        reason="Chromium is not installed (apt-get install chromium)",
    ),
]


def _report(tmp_path: Path) -> Path:
    results = [
        CellResult(
            "py3.12-torch2.4.1",
            {"python": "3.12", "torch": "2.4.1"},
            "fail",
            "undefined-symbol",
            "libtorch_cuda.so: undefined symbol: cudaGetDriverEntryPointByVersion",
            "use torch 2.5",
            probes=[
                ProbeResult("import", "torch", "fail", "undefined-symbol", "undefined symbol"),
            ],
        ),
        CellResult("py3.12-torch2.5.0", {"python": "3.12", "torch": "2.5.0"}, "pass"),
        CellResult("py3.13-torch2.5.0", {"python": "3.13", "torch": "2.5.0"}, "pass"),
    ]
    return write_reports(tmp_path, "browser", results).html


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None, "COMPAT_REQUIRE_BROWSER is set but no Chromium or Chrome found"
    return subprocess.run(
        [CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=120, check=True
    )


def test_a_screenshot_of_the_page(tmp_path: Path) -> None:
    page = _report(tmp_path)
    shot = tmp_path / "compat.png"
    _chromium(f"--screenshot={shot}", page.as_uri())
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000  # a painted page, not a blank one


def test_following_a_grid_link_opens_the_cells_details(tmp_path: Path) -> None:
    page = _report(tmp_path)
    opened = _chromium("--dump-dom", page.as_uri() + "#cell-py3.12-torch2.4.1").stdout
    assert re.search(r'<details class="cell k-fail" id="cell-py3.12-torch2.4.1" open="">', opened)
    closed = _chromium("--dump-dom", page.as_uri()).stdout
    assert 'id="cell-py3.12-torch2.4.1" open' not in closed
    # The script ran (the policy allowed it): it showed the search box.
    assert re.search(r'<input type="search" id="search"[^>]*>', opened)
    assert not re.search(r'<input type="search" id="search"[^>]*hidden', opened)
