"""Settings of the Python process a running bridge changes, and why (each measured with
``bench/ingest_portals.py``; see bench/README.md). They are process-wide: a bridge applies them
when it has started and restores them when it stops (a test process starts many bridges)."""

from __future__ import annotations

import gc
from collections.abc import Callable

#: Net allocations of tracked objects between two young-generation passes of the collector
#: while a bridge runs, instead of Python's 700: a transaction's parsed events (~25 objects
#: each) then mostly die before a pass, instead of being walked and promoted by several
#: (85,000 events: 0.20-0.68 s in the collector before, 0.14 s).
GC_YOUNG_THRESHOLD = 20_000


def tune_for_serving() -> Callable[[], None]:
    """Apply the settings; returns what restores the previous ones."""
    # What start-up made (modules, config, caches) lives as long as the process: frozen, it
    # is left out of the collector's full passes, which otherwise walk it all (~50-100 ms
    # each, every few thousand events under load).
    gc.freeze()
    young = gc.get_threshold()[0]
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])

    def restore() -> None:
        gc.unfreeze()
        gc.set_threshold(young, *gc.get_threshold()[1:])

    return restore
