"""compat.json: every cell result, unabridged, for machines (diffs, dashboards, baselines)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from compat_matrix.reports.metadata_truth import MetadataFinding
from compat_matrix.results import SCHEMA, CellResult

__all__ = ["render_json"]


def render_json(
    name: str,
    results: Sequence[CellResult],
    *,
    metadata: Sequence[MetadataFinding] | None = None,
) -> str:
    """`{"schema": 1, "name": ..., "cells": [...]}`, cells in job order.

    `metadata`, when the metadata check ran, is a top-level `"metadata": [finding, ...]` list.

    Messages are kept exactly as captured (the contract promises the original message); ASCII
    escapes make any text, even a lone surrogate, safe to write as UTF-8.
    """
    # One cell per line: the C encoder (which `indent` turns off) keeps 10,000 cells fast,
    # and a line per cell still diffs and greps well.
    top: dict[str, object] = {"schema": SCHEMA, "name": name}
    if metadata is not None:
        top["metadata"] = [finding.to_dict() for finding in metadata]
    head = json.dumps(top, ensure_ascii=True)[:-1]
    cells = ",\n".join(json.dumps(result.to_dict(), ensure_ascii=True) for result in results)
    return f'{head}, "cells": [\n{cells}\n]}}\n' if cells else f'{head}, "cells": []}}\n'
