"""Photos as bytes: studio JPEGs per product view and phone snapshots, rendered in worker processes if asked.

Every function here is pure (seed and index in, bytes out), so a pool of processes renders exactly the
same bytes as the main process would; the database work stays in ``build``.
"""
from __future__ import annotations

import io
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
from PIL import Image

from .garments import render_garment
from .scenes import phone_snapshot, studio_photo
from .spec import ProductSpec, product_spec
from .workers import worker_init

STUDIO_SIZE = 512
SNAPSHOT_VIEWS = ("front", "front", "front", "angled", "back")

Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]


def jpeg(photo: np.ndarray, *, quality: int) -> bytes:
    """Baseline JPEG; Pillow's ``optimize`` pass costs more time than the few percent of bytes it saves here."""
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def studio_image(spec: ProductSpec, view: str) -> np.ndarray:
    """The catalogue photo of ``spec`` in ``view``: uint8 RGB, deterministic."""
    layer = render_garment(spec.style, view, size=STUDIO_SIZE)
    return studio_photo(layer, np.random.default_rng([spec.style.seed, spec.views.index(view)]))


def product_photos(job: tuple[int, int]) -> list[bytes]:
    """JPEGs of every view of product ``(seed, index)``, primary first."""
    seed, index = job
    spec = product_spec(seed=seed, index=index)
    return [jpeg(studio_image(spec, view), quality=90) for view in spec.views]


def snapshot_image(spec: ProductSpec, seed: int, number: int) -> bytes:
    """A phone photo of ``spec`` in a cluttered scene, JPEG-compressed like a phone upload."""
    rng = np.random.default_rng([seed, 2_000_000 + number])
    view = str(rng.choice([v for v in SNAPSHOT_VIEWS if v != "back" or spec.category.garment != "shoe"]))
    layer = render_garment(spec.style, view, size=STUDIO_SIZE)
    portrait = rng.random() < 0.7
    photo = phone_snapshot(layer, rng, size=(768, 1024) if portrait else (1024, 768))
    return jpeg(photo, quality=int(rng.integers(55, 86)))


def snapshot_photo(job: tuple[int, int, int]) -> bytes:
    seed, index, number = job
    return snapshot_image(product_spec(seed=seed, index=index), seed, number)


@contextmanager
def photo_mapper(workers: int) -> Iterator[Mapper]:
    """``map`` in this process, or an ordered map over ``workers`` spawned processes.

    Spawned (not forked) workers share no database connection, OpenCV thread pool or tqdm thread with us.
    A worker that cannot start raises ``BrokenProcessPool`` instead of being respawned forever.
    """
    if workers <= 1:
        yield map
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=worker_init) as pool:
        yield partial(pool.map, chunksize=2)
