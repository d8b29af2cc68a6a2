"""The import loop without Python's cyclic garbage collector (see `no_cycle_collection`)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_GC_LOCK = threading.Lock()
_GC_HOLDERS = 0  # import loops running now in this process
_GC_WAS_ENABLED = True  # as the first of them found it


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Python's cyclic garbage collector off for the import loop, back as it was after.

    Why: the loop allocates a few dicts per record (lookups, edits, bodies) and
    keeps none in cycles, so refcounting frees all of them; the collector's
    passes over every live object (the process's modules included) were ~8% of
    the embedded import's CPU and find nothing. Import loops running in threads
    of one process share the setting: the first to enter turns it off, the last
    to leave back on (stream processes each have their own).
    """
    global _GC_HOLDERS, _GC_WAS_ENABLED
    with _GC_LOCK:
        if _GC_HOLDERS == 0:
            _GC_WAS_ENABLED = gc.isenabled()
            gc.disable()
        _GC_HOLDERS += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_HOLDERS -= 1
            if _GC_HOLDERS == 0 and _GC_WAS_ENABLED:
                gc.enable()
