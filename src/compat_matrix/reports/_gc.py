"""The cyclic garbage collector, paused while a report reads or renders thousands of cells.

Reading 10,000 cell files and rendering their reports makes millions of short-lived dicts,
lists and strings while the results read so far stay alive; each of the collector's passes
walks every live object again, which cost a 10,000-cell `report` about a tenth of its time
to find nothing: none of this builds reference cycles, reference counting frees it all.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """No automatic cyclic collection inside the block; as it was after (also on errors)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
