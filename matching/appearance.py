"""Appearance features for the classification heads: a second embedder's vector of the same views.

The matching embedder is trained to tell one top from another across domains, and in doing so it forgets
part of what kind of garment it sees (docs/matching.md, Classification). The ImageNet backbone keeps it. A
head may therefore read the embedding followed by the appearance embedder's vector of the very views the
embedding was made of (``MATCHING["CLASSIFY_APPEARANCE"]``, the ImageNet "default" embedder). A head records
the appearance embedder's version it was trained with (``ClassifierHead.appearance``) and is only used with
vectors of that version.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from PIL import Image

from catalog.models import ProductImage

from . import conf
from .embedders import JointEmbedder, get_embedder, get_joint
from .embedders.base import Embedder

logger = logging.getLogger(__name__)

ViewGroups = Sequence[Sequence[Image.Image]]  # the views of each photo, as embedded for matching


def appearance_embedder() -> Embedder | None:
    """The configured appearance embedder, or None when heads read the embedding alone."""
    name = conf.classify_appearance()
    return get_embedder(name) if name else None


def _configured_embedder() -> Embedder:
    embedder = appearance_embedder()
    if embedder is None:
        raise RuntimeError("No appearance embedder is configured (MATCHING['CLASSIFY_APPEARANCE']).")
    return embedder


def joint_with(embedder: Embedder) -> JointEmbedder | None:
    """The matching ``embedder`` and the configured appearance embedder in one pass over the same views, or None when
    no appearance embedder is configured or the two share no front (``embedders.joint``)."""
    companion = appearance_embedder()
    return get_joint(embedder, companion) if companion is not None else None


def appearance_version() -> str:
    """Version of the configured appearance embedder ("" when none)."""
    embedder = appearance_embedder()
    return embedder.version if embedder is not None else ""


def appearance_dimension() -> int:
    embedder = appearance_embedder()
    return embedder.dimension if embedder is not None else 0


def appearance_of(groups: ViewGroups) -> np.ndarray:
    """One appearance vector per photo (the normalised mean of its views' vectors)."""
    return _configured_embedder().embed_groups([list(group) for group in groups])


def catalogue_appearance(image_ids: Sequence[int], *, context: bool,
                         batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Appearance vectors of catalogue photos, seen as the catalogue is embedded (``services.catalog_views``;
    ``context``: with the context view, as the matching embedder takes it).

    Returns ``(vectors, readable)``: row n belongs to ``image_ids[n]``; ``readable[n]`` is False for a photo
    whose file is missing or unreadable (its row is zeros)."""
    from .services import catalog_views, open_catalog_image

    embedder = _configured_embedder()
    out = np.zeros((len(image_ids), embedder.dimension), dtype=np.float32)
    readable = np.zeros(len(image_ids), dtype=bool)
    images = ProductImage.objects.in_bulk([int(i) for i in image_ids])
    pending: list[tuple[int, list[Image.Image]]] = []

    def flush() -> None:
        if pending:
            vectors = embedder.embed_groups([views for _, views in pending])
            for (row, _), vector in zip(pending, vectors, strict=True):
                out[row] = vector
                readable[row] = True
            pending.clear()

    for row, image_id in enumerate(image_ids):
        image = images.get(int(image_id))
        if image is None:
            continue
        try:
            pending.append((row, catalog_views(open_catalog_image(image), context=context,
                                               rule=embedder.studio_mask_rule)))
        except (OSError, ValueError) as exc:
            logger.warning("no appearance vector for product image %s: %s", image_id, exc)
            continue
        if len(pending) >= batch:
            flush()
    flush()
    return out, readable


def head_input(vectors: np.ndarray, appearance: np.ndarray | None) -> np.ndarray:
    """A head's input rows: the embedding, followed by the appearance vector when the head reads one."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if appearance is None:
        return vectors
    return np.concatenate([vectors, np.asarray(appearance, dtype=np.float32)], axis=1)
