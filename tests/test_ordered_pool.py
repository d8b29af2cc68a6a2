"""The ordered pool: results handed on in input order whatever finishes first; errors stop it."""

from __future__ import annotations

import threading

import pytest

from pipeline.ordered_pool import run_ordered


def test_a_later_item_finishing_first_is_still_written_after_the_earlier_one():
    second_done = threading.Event()

    def process(i: int) -> int:
        if i == 0:
            assert second_done.wait(60), "item 1 never ran beside item 0"
        if i == 1:
            second_done.set()
        return i * 10

    written: list[int] = []
    run_ordered(range(50), process, written.append, concurrency=2)
    assert written == [i * 10 for i in range(50)]


def test_an_error_stops_the_pool_after_the_items_before_it():
    def process(i: int) -> int:
        if i == 3:
            raise ValueError("item 3 is broken")
        return i

    for concurrency in (1, 4):
        written: list[int] = []
        with pytest.raises(ValueError, match="item 3 is broken"):
            run_ordered(range(100), process, written.append, concurrency=concurrency)
        assert written == [0, 1, 2]


def test_concurrency_below_one_is_refused():
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        run_ordered([], str, print, 0)


def _frozen(_item) -> int:
    import gc
    return gc.get_freeze_count()


def test_a_forked_process_leaves_what_it_inherited_out_of_its_collections():
    """Collecting the parent's objects in a child writes to (so copies) the pages they share."""
    from pipeline.ordered_pool import map_in_processes
    results = [frozen for _, frozen in map_in_processes(range(4), _frozen, 2, window=1)]
    assert len(results) == 4 and all(n > 1000 for n in results), results
