""""Not in catalogue": a draft product for the catalogue team, made from the item's photos."""
from __future__ import annotations

import secrets
from collections import Counter
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.imaging import encode_jpeg, load_image
from catalog.models import Category, ImageRole, Product, ProductStatus
from catalog.services import (
    category_for_text,
    category_get_or_create,
    gender_for_text,
    product_create,
    product_image_add,
)

from ..models import Snapshot, SnapshotStatus
from .arrivals import arrival_create, clean_bin, clean_new_size, clean_quantity, variant_for
from .errors import IntakeError, TransitionError
from .snapshots import SUFFIX
from .state import locked_head, save_head, transition

if TYPE_CHECKING:
    from datetime import date

BROWSER_FORMATS = {"JPEG", "MPO", "PNG", "WEBP"}


def draft_sku(now: date | None = None) -> str:
    return f"NEW-{(now or timezone.localdate()):%Y%m%d}-{secrets.token_hex(2).upper()}"


def guess_category_and_gender(candidates: list[dict], *, top: int = 5) -> tuple[Category | None, str | None]:
    """The most common category and gender among the top candidates (ties go to the better ranked)."""
    ids = [c["product_id"] for c in candidates[:top] if c.get("product_id")]
    rows = {row["pk"]: row for row in Product.objects.filter(pk__in=ids).values("pk", "category_id", "gender")}
    ranked = [rows[i] for i in ids if i in rows]
    if not ranked:
        return None, None
    category_id = Counter(row["category_id"] for row in ranked).most_common(1)[0][0]
    gender = Counter(row["gender"] for row in ranked).most_common(1)[0][0]
    return Category.objects.get(pk=category_id), gender


def _catalogue_bytes(snapshot: Snapshot) -> tuple[bytes, str]:
    """The photo for the catalogue team: the original when browsers show it, else an upright JPEG."""
    with snapshot.original.open("rb") as handle:
        data = handle.read()
    if snapshot.original_format in BROWSER_FORMATS:
        return data, f"snapshot-{snapshot.pk}{SUFFIX[snapshot.original_format]}"
    return encode_jpeg(load_image(data).image, quality=92), f"snapshot-{snapshot.pk}.jpg"


def snapshot_mark_new(
    *, snapshot: Snapshot, user: AbstractBaseUser, name: str = "", category: str = "", gender: str = "",
    size: str = "", quantity: int | None = None, bin_location: str = "",
) -> Product:
    """"Not in catalogue": a draft product for the catalogue team, made from the item's photos.

    Category and gender are the worker's words when given, else the majority of the top candidates.
    With a ``quantity`` (and ``size``) the pieces are booked as arrived on the draft at once. Nothing
    is left behind when it is refused: the booking is checked before any photo is copied, and copied
    photos are deleted again if the transaction fails.
    """
    if quantity is not None:
        quantity = clean_quantity(quantity)
        size = clean_new_size(size or "ONE SIZE")
        bin_location = clean_bin(bin_location)
    copied: list[str] = []
    try:
        return _mark_new(snapshot=snapshot, user=user, name=name, category=category, gender=gender, size=size,
                         quantity=quantity, bin_location=bin_location, copied=copied)
    except BaseException:
        for file_name in copied:
            default_storage.delete(file_name)
        raise


def _mark_new(*, snapshot: Snapshot, user: AbstractBaseUser, name: str, category: str, gender: str, size: str,
              quantity: int | None, bin_location: str, copied: list[str]) -> Product:
    with transaction.atomic():
        head = locked_head(snapshot)
        if head.uploaded_by_id != user.pk and not user.is_superuser:
            raise IntakeError("Only the person who took the photo can decide about it.", code="not_yours")
        if not head.can_become(SnapshotStatus.NEW):
            raise TransitionError(head, SnapshotStatus.NEW, "mark as not in catalogue")
        guessed_category, guessed_gender = guess_category_and_gender(head.candidates)
        chosen_category = category_for_text(category) if category else None
        if category and chosen_category is None:
            raise IntakeError(f"Unknown category {category!r}.", code="invalid_category")
        chosen_category = chosen_category or guessed_category or category_get_or_create(
            name="Unsorted intake", kind="topwear", parent_name=None
        )
        chosen_gender = (gender_for_text(gender) if gender else None) or guessed_gender or "unisex"
        today = timezone.localdate()
        name = name.strip()[:200] or f"New {chosen_category.name} (intake #{head.pk})"
        for _ in range(20):
            try:
                with transaction.atomic():
                    product = product_create(
                        sku=draft_sku(today), name=name,
                        category=chosen_category, gender=chosen_gender, status=ProductStatus.DRAFT,
                    )
                break
            except IntegrityError:
                continue
        else:  # pragma: no cover - 20 collisions among 65,536 codes a day
            raise IntakeError("Could not find a free draft SKU; try again.", code="sku_exhausted")
        for photo in [head, *head.group_photos.order_by("created_at", "id")]:
            data, filename = _catalogue_bytes(photo)
            image, created = product_image_add(product=product, data=data, filename=filename, role=ImageRole.SNAPSHOT)
            if created:
                copied.append(image.file.name)
        transition(head, SnapshotStatus.NEW, by=user, action="mark new", product=product.pk, sku=product.sku)
        head.product = product
        head.decided_at = timezone.now()
        save_head(head, "product", "decided_at")
        if quantity:
            variant = variant_for(product=product, size=size)
            arrival_create(variant=variant, quantity=quantity, bin_location=bin_location, user=user, snapshot=head)
        return product
