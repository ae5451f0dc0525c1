"""Camera-domain training examples for the classification heads: labelled intake photos.

Catalogue photos alone teach the heads what a studio photo of a top looks like, not a top crumpled on a
warehouse table or held up to a mirror (docs/matching.md, Classification: phone kind 0.65 from catalogue
photos, 0.85 once labelled phone photos join them). Every confirmed intake item is such a photo with a
known product, hence a known gender and kind. They come through the same pair providers the embedder's
trainer reads (``training.data.register_pair_provider``: confirmations and review decisions), so matching
never imports intake, and each is embedded exactly as ``match_image`` embeds a phone photo
(``services.query_views``), by the embedding version the heads are for.
"""
from __future__ import annotations

import logging

import numpy as np

from catalog.models import Product

from . import search, services
from .appearance import appearance_dimension, appearance_of
from .models import EmbeddingModel
from .training.data import QUERY, registered_providers

logger = logging.getLogger(__name__)

PRODUCT_KEY = "product:"


def labelled_intake_photos() -> list[tuple[str, str]]:
    """(photo path, product SKU) of each labelled intake item's front photo, oldest first."""
    photos = []
    for group in (group for provider in registered_providers().values() for group in provider()):
        if not group.key.startswith(PRODUCT_KEY):
            continue
        front = next((photo for photo in group.photos if photo.domain == QUERY), None)
        if front is not None:
            photos.append((front.path, group.key.removeprefix(PRODUCT_KEY)))
    return photos


def camera_examples(*, model: EmbeddingModel, max_rows: int, batch: int = 16,
                    appearance: bool = False) -> search.LabelledVectors:
    """The newest ``max_rows`` labelled intake photos as ``model``'s vectors, labelled by their product, with
    their appearance vectors of the same views when ``appearance`` (``appearance.appearance_of``).

    Products that do not teach (drafts: their labels are a worker's guess) and unreadable photos are left
    out.
    """
    from catalog.imaging import ImageRejected, load_image

    chosen = labelled_intake_photos()[-max_rows:] if max_rows > 0 else []
    labels = {
        sku: (pk, gender, kind)
        for sku, pk, gender, kind in Product.objects.filter(
            sku__in={sku for _, sku in chosen}, status__in=search.LABEL_STATUSES
        ).values_list("sku", "pk", "gender", "category__kind")
    }
    embedder = services.embedder_for(model)
    rows: list[tuple[int, str, str]] = []
    vectors: list[np.ndarray] = []
    looks: list[np.ndarray] = []
    pending: list[list] = []

    def flush() -> None:
        if pending:
            vectors.extend(embedder.embed_groups(pending))
            if appearance:
                looks.extend(appearance_of(pending))
            pending.clear()

    for path, sku in chosen:
        if sku not in labels:
            continue
        try:
            with open(path, "rb") as handle:
                image = load_image(handle.read()).image
        except (OSError, ImageRejected) as exc:
            logger.warning("camera example %s skipped: %s", path, exc)
            continue
        pending.append(services.query_views(image, segment="auto", context=embedder.context_view))
        rows.append(labels[sku])
        if len(pending) >= batch:
            flush()
    flush()
    return search.LabelledVectors(
        image_ids=np.zeros(len(rows), dtype=np.int64),
        product_ids=np.asarray([pk for pk, _, _ in rows], dtype=np.int64),
        genders=[gender for _, gender, _ in rows], kinds=[kind for _, _, kind in rows],
        vectors=np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, model.dimension), np.float32),
        appearance=(np.stack(looks).astype(np.float32) if looks else np.zeros((0, appearance_dimension()), np.float32))
        if appearance else None,
    )
