"""Make an iterator's next items in a background thread while the caller works on the current one.

The training views' cache draws and renders views in Python around NumPy, Pillow and OpenCV (perspective, casts,
blur: about half of its time) and runs them through the fronts in ONNX Runtime; both release the GIL in their heavy
parts, so the next batch can be drawn while this one runs (docs/matching.md, "Drawing the next batch of training
views during inference"). The order of the items, and so every random draw made while making them, is unchanged:
one thread makes them all, one after the other. (Catalogue ingestion spends 88 % of its time in the network, and
preparing ahead gained it nothing measurable, so it does not use this.)
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()
_POLL_S = 0.1


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items`` in their order, up to ``depth`` of them made ahead in a daemon thread.

    An exception raised while making an item is raised here, where that item would have come. A caller that stops
    early (``break``, an exception, the generator closed) stops the thread after the item it is making. The thread
    must not use the database: Django gives each thread its own connection."""
    if depth < 1:
        raise ValueError("read_ahead needs a depth of at least 1.")
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, who raises it
            put((_END, error))
            return
        put((_END, None))

    thread = threading.Thread(target=make, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
