"""Varied, hostile cell results for checking that reporters' fast writers match references."""

from __future__ import annotations

import random

from compat_matrix.results import CellResult, ExpectationOutcome, ProbeResult, PythonInfo

TEXTS = [
    "",
    "plain",
    "a & b",
    "<script>alert('x')</script>",
    "q \"uote\" 's'",
    "tab\there",
    "line1\nline2\r\nline3\rend",
    "\x1b[31mred\x1b[0m \x07bell \x00nul \x9b1m \x1b]0;title\x07",
    "  spaced  out  ",
    "émoji ✅ — ü 🚀",
    "]]> &amp; &#10; &lt;",
    "x" * 300,
    "\ud800 lone surrogate",
    "\ufffe non-character",
    "\t\n ",
    "> greater",
]
STATUSES = ["pass", "fail", "error", "unsupported", "conflict", "skip"]
SECONDS = [0.0, 0.1234, 1e-5, 12.5, float("nan"), -1.0, float("inf")]


def varied_results(seed: int, count: int, *, grid: bool = True) -> list[CellResult]:
    """`count` cells mixing every status, kind and hostile text; `grid=False` gives cells a
    reporter cannot lay out as a grid (same axes twice), so it falls back to a list."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets

    def text() -> str:
        return rng.choice(TEXTS)

    results = []
    for index in range(count):
        status = rng.choice(STATUSES)
        axes = {"python": rng.choice(["3.10", "3.11", "3.12"]), "pkg": str(index if grid else 0)}
        if rng.random() < 0.2:
            axes[text() or "extra"] = text()
        probes = [
            ProbeResult(
                text() or "import",
                text(),
                rng.choice(["pass", "fail", "skip", "error", status]),
                rng.choice([None, "no-gpu", text()]),
                text() if rng.random() < 0.8 else "z" * 70_000,
                text(),
                rng.choice(SECONDS),
            )
            for _ in range(rng.choice([0, 0, 1, 2, 3]))
        ]
        expectation = None
        if rng.random() < 0.3:
            expectation = ExpectationOutcome(rng.choice(STATUSES), rng.random() < 0.5, text())
        results.append(
            CellResult(
                id=f"cell{index}-{text()}" if rng.random() < 0.5 else f"cell{index % 7}",
                axes=axes,
                status=status,
                category=rng.choice([None, "abi-numpy", text()]),
                message=text() if rng.random() < 0.9 else "m" * 70_000,
                hint=text(),
                python=rng.choice(
                    [
                        None,
                        PythonInfo("3.12.1", "cpython", "cp312"),
                        PythonInfo(text(), text(), text()),
                    ]
                ),
                resolved={text() or "dist": text() for _ in range(rng.randrange(3))},
                probes=probes,
                durations=rng.choice(
                    [{}, {"build": 1.5, "probes": 0.25}, {text() or "step": float("nan")}]
                ),
                expectation=expectation,
                gpu_unverified=rng.random() < 0.2,
            )
        )
    return results


#: Page layouts a reporter must get right: grid, swapped grid, list, single cell, none.
SAMPLES = {
    "grid": varied_results(1, 60),
    "list": varied_results(2, 40, grid=False),
    "few": varied_results(3, 3),
    "more": varied_results(4, 120),
    "empty": [],
}
