"""Complete the look: products that go with the garment at the mirror.

In this order, until enough are found: (1) curated looks (``catalog.Look``) that contain one of the best
matches; (2) products that share looks or arrival batches (same worker, same day) with any of the
matches; (3) rules of complementary kinds (a top wants a bottom, shoes, a jacket...), same gender or
unisex, the best colour harmony with the garment first. Every stage only offers active products with
stock, and never the garment's own kind.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import reduce
from operator import or_

import numpy as np
from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from PIL import Image

from catalog.models import CategoryKind, Gender, ImageRole, Look, Product, ProductImage, ProductStatus, Variant
from matching.preprocess import studio_mask

from .colour import Colour, dominant_colour, harmony
from .models import ImageColour

logger = logging.getLogger(__name__)

K = CategoryKind
COMPLEMENTS: dict[str, tuple[str, ...]] = {
    K.TOPWEAR: (K.BOTTOMWEAR, K.FOOTWEAR, K.OUTERWEAR, K.ACCESSORY),
    K.BOTTOMWEAR: (K.TOPWEAR, K.FOOTWEAR, K.OUTERWEAR, K.ACCESSORY),
    K.FULL_BODY: (K.FOOTWEAR, K.OUTERWEAR, K.ACCESSORY),
    K.OUTERWEAR: (K.TOPWEAR, K.BOTTOMWEAR, K.FOOTWEAR),
    K.FOOTWEAR: (K.BOTTOMWEAR, K.FULL_BODY, K.TOPWEAR, K.ACCESSORY),
    K.ACCESSORY: (K.TOPWEAR, K.FULL_BODY, K.BOTTOMWEAR),
}
RULE_POOL = 24  # newest in-stock products per complementary kind ranked by colour


def compatible_genders(gender: str | None) -> list[str]:
    if not gender or gender == Gender.UNISEX:
        return list(Gender.values)
    return [gender, Gender.UNISEX]


def shoppable_products(*, exclude_kind: str | None = None) -> QuerySet[Product]:
    """Active products with at least one size in stock (optionally not of ``exclude_kind``)."""
    in_stock = Variant.objects.filter(product=OuterRef("pk"), stock_quantity__gt=0)
    queryset = Product.objects.filter(status=ProductStatus.ACTIVE).filter(Exists(in_stock))
    return queryset.exclude(category__kind=exclude_kind) if exclude_kind else queryset


def complete_the_look(
    *, anchors: Sequence[int], kind: str | None, gender: str | None, colour: Colour | None, limit: int,
) -> list[int]:
    """Product ids that complete the look of a garment whose best catalogue matches are ``anchors``."""
    if limit <= 0:
        return []
    anchors = list(dict.fromkeys(anchors))
    chosen: list[int] = []
    for stage in (_curated, _co_occurring):
        ids = stage(anchors)
        allowed = set(shoppable_products(exclude_kind=kind).filter(pk__in=ids).values_list("pk", flat=True))
        for product_id in ids:
            if product_id in allowed and product_id not in chosen and product_id not in anchors:
                chosen.append(product_id)
                if len(chosen) >= limit:
                    return chosen
    for product_id in _by_rules(kind=kind, gender=gender, colour=colour, exclude=[*anchors, *chosen]):
        chosen.append(product_id)
        if len(chosen) >= limit:
            break
    return chosen


def _curated(anchors: Sequence[int]) -> list[int]:
    """Members of active looks that contain one of the three best matches, best match's looks first."""
    through = Look.products.through
    rank = {product_id: n for n, product_id in enumerate(anchors[:3])}
    look_rank: dict[int, int] = {}
    for look_id, anchor_id in through.objects.filter(look__is_active=True, product_id__in=list(rank)).values_list(
        "look_id", "product_id"
    ):
        look_rank[look_id] = min(look_rank.get(look_id, 99), rank[anchor_id])
    members: dict[int, list[int]] = defaultdict(list)
    for look_id, product_id in through.objects.filter(look_id__in=list(look_rank)).values_list("look_id", "product_id"):
        members[look_id].append(product_id)
    ordered = sorted(look_rank, key=lambda look_id: (look_rank[look_id], look_id))
    return [product_id for look_id in ordered for product_id in sorted(members[look_id])]


def _co_occurring(anchors: Sequence[int]) -> list[int]:
    """Products sharing looks (weight 2) or arrival batches (weight 1) with any match, most shared first."""
    from warehouse.models import Arrival

    if not anchors:
        return []
    through = Look.products.through
    scores: dict[int, float] = defaultdict(float)
    shared_looks = through.objects.filter(look__is_active=True, product_id__in=anchors).values("look_id")
    for row in (through.objects.filter(look_id__in=shared_looks).exclude(product_id__in=anchors)
                .values("product_id").annotate(n=Count("look_id", distinct=True))):
        scores[row["product_id"]] += 2.0 * row["n"]
    batches = list(
        Arrival.objects.filter(variant__product_id__in=anchors, undone_at__isnull=True)
        .annotate(day=TruncDate("created_at")).values_list("user_id", "day").distinct()[:50]
    )
    if batches:
        same_batch = reduce(or_, (Q(user_id=user_id, created_at__date=day) for user_id, day in batches))
        for row in (Arrival.objects.filter(same_batch, undone_at__isnull=True)
                    .exclude(variant__product_id__in=anchors).values("variant__product_id").annotate(n=Count("id"))):
            scores[row["variant__product_id"]] += float(row["n"])
    return sorted(scores, key=lambda product_id: (-scores[product_id], product_id))


def _by_rules(*, kind: str | None, gender: str | None, colour: Colour | None, exclude: Sequence[int]) -> list[int]:
    """Round-robin over the complementary kinds, each kind's products by colour harmony (newest on ties)."""
    kinds = COMPLEMENTS.get(kind or "", tuple(K.values))
    rows = (
        shoppable_products(exclude_kind=kind).filter(category__kind__in=kinds, gender__in=compatible_genders(gender))
        .exclude(pk__in=list(exclude)).order_by("-created_at", "-pk").values_list("pk", "category__kind")
        [: RULE_POOL * len(kinds) * 4]
    )
    by_kind: dict[str, list[int]] = defaultdict(list)
    for product_id, product_kind in rows:
        if len(by_kind[product_kind]) < RULE_POOL:
            by_kind[product_kind].append(product_id)
    colours = product_colours(product_ids=[pid for ids in by_kind.values() for pid in ids])
    # each kind's products by harmony with the garment; sorted() is stable, so the newest first on ties
    pools = [sorted(by_kind[complement], key=lambda pid: -harmony(colour, colours.get(pid)))
             for complement in kinds if by_kind.get(complement)]
    ordered: list[int] = []
    for n in range(max((len(pool) for pool in pools), default=0)):
        ordered.extend(pool[n] for pool in pools if n < len(pool))
    return ordered


def product_colours(*, product_ids: Sequence[int]) -> dict[int, Colour]:
    """Dominant colour of each product's primary photo, from the cache; at most ``COLOUR_BUDGET`` new ones
    are computed per call (the rest count as neutral until a later request computes them)."""
    images: dict[int, ProductImage] = {}
    for image in ProductImage.objects.filter(product_id__in=list(product_ids)).only(
        "id", "product_id", "role", "sha256", "file"
    ):
        current = images.get(image.product_id)
        if current is None or (image.role == ImageRole.PRIMARY and current.role != ImageRole.PRIMARY):
            images[image.product_id] = image
    cached = _cached_colours(images.values())
    budget = int(getattr(settings, "MIRROR", {}).get("COLOUR_BUDGET", 48))
    result: dict[int, Colour] = {}
    fresh: list[ImageColour] = []
    for product_id, image in images.items():
        row = cached.get(image.pk)
        if row is None:
            if budget <= 0:
                continue
            budget -= 1
            row = _colour_row(image)
            if row is None:
                continue
            fresh.append(row)
        result[product_id] = Colour(row.hue, row.saturation, row.value)
    _colour_rows_store(fresh)
    return result


def photo_colours_cache(*, image_ids: Sequence[int]) -> int:
    """Measure and cache the colour of each of these catalogue photos that has none for its current file, so that
    the first shopper to see them as complete-the-look candidates does not wait for it (run as photos are embedded).
    Returns how many were measured."""
    images = list(ProductImage.objects.filter(pk__in=list(image_ids)).only("id", "sha256", "file"))
    cached = _cached_colours(images)
    fresh = [row for row in (_colour_row(image) for image in images if image.pk not in cached) if row is not None]
    _colour_rows_store(fresh)
    return len(fresh)


def _cached_colours(images: Iterable[ProductImage]) -> dict[int, ImageColour]:
    """The cached colours (by image id) that were measured on each photo's current file."""
    images = list(images)
    sha = {image.pk: image.sha256 for image in images}
    return {row.image_id: row for row in ImageColour.objects.filter(image_id__in=list(sha))
            if row.sha256 == sha[row.image_id]}


def _colour_row(image: ProductImage) -> ImageColour | None:
    colour = photo_colour(image)
    if colour is None:
        return None
    return ImageColour(image_id=image.pk, sha256=image.sha256, hue=colour.hue, saturation=colour.saturation,
                       value=colour.value)


def _colour_rows_store(rows: list[ImageColour]) -> None:
    if rows:
        ImageColour.objects.bulk_create(rows, update_conflicts=True, unique_fields=["image"],
                                        update_fields=["sha256", "hue", "saturation", "value"])


def photo_colour(image: ProductImage) -> Colour | None:
    """The garment's colour in a catalogue photo (white studio background left out), or None if unreadable."""
    try:
        with image.file.open("rb") as handle:
            picture = Image.open(handle)
            picture.draft("RGB", (256, 256))  # JPEG: decode at reduced size, cheaply
            picture = picture.convert("RGB")
    except (OSError, ValueError) as exc:
        logger.warning("cannot read product image %s for its colour: %s", image.pk, exc)
        return None
    mask = studio_mask(picture)
    return dominant_colour(picture, None if mask is None else np.asarray(mask))
