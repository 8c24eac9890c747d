"""What every reporter shows for a cell: its display kind, mark, short reason, and clean text.

A cell's *kind* refines its status for a reader: a `pass` whose GPU checks could not run is
"GPU unverified", a `pass` with findings that fail only if a file is loaded on its own is
"latent", a non-pass status the matrix declared in `expect:` is "expected" (pytest's
xfail), and a cell that missed its expectation is "unmet" whatever its status. Keeping this in
one place makes the table, the page and the terminal agree on every mark.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from compat_matrix.results import CellResult, ProbeResult

__all__ = [
    "KINDS",
    "KIND_ORDER",
    "SUMMARY_ORDER",
    "Kind",
    "clean_text",
    "count_kinds",
    "failing_probes",
    "first_line",
    "kind_of",
    "label",
    "latent_probes",
    "one_line",
    "short_reason",
]

# CSI (colours, cursor moves), OSC (titles, hyperlinks; ended by BEL or ST), other 2-byte escapes.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# Characters XML 1.0 cannot carry and terminals act on: C0 (but tab and newline), DEL, C1,
# lone surrogates (left by surrogateescape; they cannot be encoded as UTF-8), non-characters.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=4096)
def clean_text(text: str) -> str:
    """`text` without ANSI escape sequences or control characters (tab and newline stay)."""
    if text.isprintable():  # no escape, control character, surrogate or non-character
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", _ANSI.sub("", text))


@lru_cache(maxsize=4096)
def one_line(text: str, limit: int) -> str:
    """Clean `text`, fold all whitespace to single spaces and cut it to `limit` characters."""
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        flat = text  # clean already, and its only whitespace is single inner spaces
    else:
        flat = _SPACES.sub(" ", clean_text(text)).strip()
    if len(flat) > limit:
        return flat[: max(limit - 1, 0)].rstrip() + "…"
    return flat


@dataclass(frozen=True)
class Kind:
    """How one display kind looks in each output."""

    name: str
    symbol: str
    word: str
    meaning: str
    #: ANSI SGR parameters for the terminal.
    sgr: str


#: Display kinds, most urgent first: summaries list cells and footnotes in this order.
KIND_ORDER: tuple[str, ...] = (
    "unmet",
    "fail",
    "error",
    "conflict",
    "unsupported",
    "skip",
    "expected",
    "latent",
    "gpu-unverified",
    "pass",
)

#: Order of the per-kind counts in summaries: the good news first, then the trouble.
SUMMARY_ORDER: tuple[str, ...] = (
    "pass",
    "latent",
    "gpu-unverified",
    "fail",
    "error",
    "conflict",
    "unsupported",
    "skip",
    "expected",
    "unmet",
)

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("unmet", "❗", "unmet", "the result differs from the expectation", "1;7;31"),
        Kind("fail", "❌", "fail", "installed, but a probe found an incompatibility", "1;31"),
        Kind("error", "💥", "error", "infrastructure trouble, no verdict: retry", "1;35"),
        Kind("conflict", "⚠️", "conflict", "requirements cannot be satisfied together", "33"),
        Kind("unsupported", "⛔", "unsupported", "no distribution for this combination", "2"),
        Kind("skip", "⏭️", "skip", "could not be judged on this machine", "34"),
        Kind("expected", "🔹", "expected", "a non-pass result the matrix expects", "36"),
        Kind(
            "latent",
            "🔸",
            "pass (latent)",
            "passed; a file no import loads would fail if loaded on its own",
            "36",
        ),
        Kind(
            "gpu-unverified", "🟡", "GPU unverified", "passed, but GPU checks could not run", "33"
        ),
        Kind("pass", "✅", "pass", "installed and every probe passed", "32"),
    )
}


def kind_of(result: CellResult) -> str:
    """The display kind of `result` (a key of `KINDS`)."""
    expectation = result.expectation
    if expectation is not None and not expectation.met:
        return "unmet"
    if result.status == "pass":
        if result.latent:
            return "latent"
        return "gpu-unverified" if result.gpu_unverified else "pass"
    if expectation is not None:
        return "expected"
    return result.status


def label(result: CellResult) -> str:
    """The short words shown beside a cell's symbol: "fail", "expected unsupported", ..."""
    kind = kind_of(result)
    if kind == "expected":
        return f"expected {result.status}"
    if kind == "unmet" and result.expectation is not None:
        return f"{result.status} (expected {result.expectation.status})"
    if result.static_only:  # another platform's resolve and wheels, read here
        return f"{KINDS[kind].word} (static only)"
    return KINDS[kind].word


def count_kinds(results: Iterable[CellResult]) -> Counter[str]:
    return Counter(kind_of(result) for result in results)


def failing_probes(result: CellResult) -> list[ProbeResult]:
    """Probes that failed or errored: the evidence behind a `fail` or `error` cell."""
    return [probe for probe in result.probes if probe.status in ("fail", "error")]


def latent_probes(result: CellResult) -> list[ProbeResult]:
    """Findings on files the cell's imports never load (or load fine): shown, not failed."""
    return [probe for probe in result.probes if probe.status == "latent"]


def short_reason(result: CellResult, limit: int = 160) -> str:
    """One line saying why a cell is not a plain pass (empty for a plain pass)."""
    kind = kind_of(result)
    if kind == "pass":
        return ""
    parts: list[str] = []
    expectation = result.expectation
    if expectation is not None and kind == "unmet":
        parts.append(f"expected {expectation.status}, got {result.status}")
    elif expectation is not None and kind == "expected":
        parts.append(f"expected {result.status}")
    if kind == "latent":
        found = latent_probes(result)
        parts.append(
            f"{found[0].category}: {first_line(found[0].message)}" if found else "latent findings"
        )
    elif kind == "gpu-unverified":
        skipped = [p for p in result.probes if p.status == "skip" and p.category == "no-gpu"]
        parts.append(f"GPU checks skipped: {skipped[0].message}" if skipped else "GPU unverified")
    elif result.status != "pass":
        parts.append(_status_detail(result))
    if expectation is not None and expectation.reason:
        parts.append(expectation.reason)
    return one_line("; ".join(part for part in parts if part), limit)


def _status_detail(result: CellResult) -> str:
    message = first_line(result.message)
    category = result.category
    if not message:
        probes: Sequence[ProbeResult] = failing_probes(result) or [
            p for p in result.probes if p.status != "pass"
        ]
        if probes:
            probe = probes[0]
            category = category or probe.category
            message = f"{probe.probe} {probe.target}: {first_line(probe.message)}".rstrip(": ")
    if category and message:
        return f"{category}: {message}"
    return category or message


def first_line(text: str) -> str:
    for line in clean_text(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def distribution_of(probe: ProbeResult) -> str:
    """The distribution a finding is in: the probe's `owner` ("pandas 2.0.3"), else the first
    folder of its target ("pandas/_libs/lib.so"), else the target."""
    owner = probe.details.get("owner") if isinstance(probe.details, dict) else None
    return _distribution(owner if isinstance(owner, str) else "", probe.target)


@lru_cache(maxsize=4096)
def _distribution(owner: str, target: str) -> str:
    """`distribution_of` for an owner text; cached, as every renderer asks it of every
    finding, and a distribution's findings repeat from cell to cell."""
    if owner.strip():
        return owner.split(maxsplit=1)[0]
    return target.split("/", 1)[0]


def finding_groups(probes: Sequence[ProbeResult]) -> list[list[ProbeResult]]:
    """Probe results in order, findings of one probe, status and kind in one distribution
    together (at the place of the first); a pass is always a group of its own."""
    groups: list[list[ProbeResult]] = []
    by_key: dict[tuple[str, str, str, str], list[ProbeResult]] = {}
    for probe in probes:
        if probe.status == "pass":
            groups.append([probe])
            continue
        key = (probe.probe, probe.status, probe.category or "", distribution_of(probe))
        group = by_key.get(key)
        if group is None:
            group = by_key[key] = []
            groups.append(group)
        group.append(probe)
    return groups
