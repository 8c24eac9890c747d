"""compat.json: every cell result, unabridged, for machines (diffs, dashboards, baselines)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from compat_matrix.results import SCHEMA, CellResult

__all__ = ["render_json"]


def render_json(name: str, results: Sequence[CellResult]) -> str:
    """`{"schema": 1, "name": ..., "cells": [...]}`, cells in job order.

    Messages are kept exactly as captured (the contract promises the original message); ASCII
    escapes make any text, even a lone surrogate, safe to write as UTF-8.
    """
    document = {
        "schema": SCHEMA,
        "name": name,
        "cells": [result.to_dict() for result in results],
    }
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"
