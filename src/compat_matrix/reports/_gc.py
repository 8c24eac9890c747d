"""The cyclic garbage collector, paused while a report reads or renders thousands of cells.

Reading 10,000 cell files and rendering their reports makes millions of short-lived dicts,
lists and strings while the results read so far stay alive; each of the collector's passes
walks every live object again, which cost a 10,000-cell `report` about a tenth of its time
to find nothing: none of this builds reference cycles, reference counting frees it all.

Nor is what the block leaves alive (the results) walked after it: the first allocation
after the collector is back would start a pass over every object made meanwhile (0.1-0.3 s
at 10,000 cells), so they go straight to the oldest generation instead (`gc.freeze` then
`gc.unfreeze`: two list splices, nothing walked), as if they had survived those passes.
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
            _age_survivors()
            gc.enable()


def _age_survivors() -> None:
    """Move every tracked object to the oldest generation and reset the young one's count,
    without a pass; not where someone froze objects on purpose (unfreezing would undo it)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
