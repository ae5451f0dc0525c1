"""Preparing the next batch during inference (the training views' cache): the items come in their order, an error
comes where its item would have, and a caller that stops early stops the thread."""
from __future__ import annotations

import threading
import time

import pytest

from matching.training.readahead import read_ahead


def test_items_come_in_their_order_and_are_made_ahead_in_another_thread():
    makers = []

    def numbers():
        for n in range(50):
            makers.append(threading.current_thread().name)
            yield n

    assert list(read_ahead(numbers(), depth=3)) == list(range(50))
    assert set(makers) == {"read-ahead"}


def test_an_error_while_making_an_item_is_raised_where_the_item_would_have_come():
    def broken():
        yield 1
        yield 2
        raise OSError("truncated JPEG")

    seen = []
    with pytest.raises(OSError, match="truncated JPEG"):
        for item in read_ahead(broken()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_caller_that_stops_early_stops_the_thread():
    made = []

    def endless():
        n = 0
        while True:
            made.append(n)
            yield n
            n += 1

    items = read_ahead(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    time.sleep(0.5)
    count = len(made)
    time.sleep(0.3)
    assert len(made) == count <= 3 + 2 + 1  # what was taken, the queue's depth, and the one being made
    assert not [thread for thread in threading.enumerate() if thread.name == "read-ahead"]

