"""Arrivals: confirming the product of an item books its pieces into stock; undo takes them back exactly."""
from __future__ import annotations

import re
from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Product, ProductStatus, Variant
from catalog.services import variant_adjust_stock
from segmentation.examples import segmentation_example_from_snapshot

from .. import conf
from ..models import Arrival, ConfirmSource, Snapshot, SnapshotStatus
from .errors import IntakeError
from .snapshots import IDEMPOTENCY_KEY_RE
from .state import locked, locked_head, save_head, transition

# Sizes a worker may add to the catalogue by confirming: "M", "XXL", "42", "32/34", "EU 38.5", "ONE SIZE".
NEW_SIZE_RE = re.compile(r"^[A-Z0-9](?:[A-Z0-9 .,/-]{0,8}[A-Z0-9.])?$")


def clean_size(size: str) -> str:
    size = " ".join((size or "").split()).upper()
    if not size:
        raise IntakeError("Choose a size.", code="size_required")
    if len(size) > 20:
        raise IntakeError("A size has at most 20 characters.", code="invalid_size")
    return size


def clean_new_size(size: str) -> str:
    """A size to add to the catalogue: plain letters, digits and separators, so no "über😀" becomes a size."""
    size = clean_size(size)
    if not NEW_SIZE_RE.match(size):
        raise IntakeError(
            "A new size is at most 10 letters A–Z, digits, spaces and . , / - (e.g. M, XL, 42, 32/34, EU 38.5).",
            code="invalid_size",
        )
    return size


def clean_quantity(quantity: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise IntakeError("The quantity must be a whole number of at least 1.", code="invalid_quantity")
    if quantity > conf.max_arrival_quantity():
        raise IntakeError(f"At most {conf.max_arrival_quantity()} pieces in one arrival.", code="invalid_quantity")
    return quantity


def clean_bin(bin_location: str) -> str:
    value = " ".join((bin_location or "").split()).upper()
    if len(value) > 50:
        raise IntakeError("A bin name has at most 50 characters.", code="invalid_bin")
    return value


def _usable_product(product: Product) -> Product:
    if product.status == ProductStatus.MERGED and product.merged_into_id:
        from catalog.cleanup.selectors import product_follow_merges

        product = product_follow_merges(product=product)
    if product.status not in (ProductStatus.ACTIVE, ProductStatus.DRAFT):
        state = product.get_status_display().lower()
        raise IntakeError(f"{product.sku} is {state}; pick another.", code="product_gone")
    return product


def variant_for(*, product: Product, size: str) -> Variant:
    """The product's variant of ``size``; a size it does not have yet is created if it looks like a size."""
    size = clean_size(size)
    variant = Variant.objects.filter(product=product, size__iexact=size).first()
    if variant is not None:
        return variant
    size = clean_new_size(size)
    try:
        with transaction.atomic():
            return Variant.objects.create(product=product, size=size, stock_quantity=0)
    except IntegrityError:
        return Variant.objects.get(product=product, size=size)


def arrival_create(*, variant: Variant, quantity: int, bin_location: str, user: AbstractBaseUser,
                    snapshot: Snapshot | None, idempotency_key: str = "") -> Arrival:
    quantity = clean_quantity(quantity)
    arrival = Arrival.objects.create(
        variant=variant, quantity=quantity, bin_location=clean_bin(bin_location), user=user, snapshot=snapshot,
        idempotency_key=idempotency_key,
    )
    variant_adjust_stock(variant_id=variant.pk, delta=quantity)
    return arrival


def snapshot_confirm(
    *, snapshot: Snapshot, user: AbstractBaseUser, quantity: int, variant: Variant | None = None,
    product: Product | None = None, size: str = "", bin_location: str = "", idempotency_key: str = "",
    add_another: bool = False, source: str = ConfirmSource.CANDIDATES,
) -> Arrival:
    """Book ``quantity`` pieces of the confirmed product (``variant``, or ``product`` + ``size``) as arrived.

    The snapshot keeps the product as its confirmed match. An item books one arrival: confirming it
    again returns that arrival when the request is the same (a resend, a double tap; with or without
    an ``idempotency_key``) and is refused otherwise, unless the worker asks to book another size of
    it (``add_another``). A different product needs the earlier arrivals undone first. ``source`` says
    how the worker found the product (one of the candidates, or a search); it goes into the events.
    """
    if source not in ConfirmSource.values:
        raise IntakeError(f"Unknown source {source!r}; use one of {', '.join(ConfirmSource.values)}.")
    if variant is None and product is None:
        raise IntakeError("Pick the product and size.", code="product_required")
    key = (idempotency_key or "").strip()
    if key and not IDEMPOTENCY_KEY_RE.match(key):
        raise IntakeError("The idempotency key must be 8–100 letters, digits or . _ : -.", code="invalid_key")
    try:
        return _confirm(snapshot=snapshot, user=user, quantity=quantity, variant=variant, product=product,
                        size=size, bin_location=bin_location, key=key, add_another=add_another, source=source)
    except IntegrityError:
        existing = _existing_arrival(user=user, key=key, snapshot=snapshot)
        if existing is None:
            raise
        return existing


def _existing_arrival(*, user: AbstractBaseUser, key: str, snapshot: Snapshot) -> Arrival | None:
    if not key:
        return None
    existing = Arrival.objects.filter(user=user, idempotency_key=key).first()
    if existing is not None and existing.snapshot_id != (snapshot.group_head_id or snapshot.pk):
        raise IntakeError("This idempotency key was already used for another item.", code="key_reused", status_code=409)
    return existing


def _confirm(*, snapshot: Snapshot, user: AbstractBaseUser, quantity: int, variant: Variant | None,
             product: Product | None, size: str, bin_location: str, key: str, add_another: bool,
             source: str) -> Arrival:
    existing = _existing_arrival(user=user, key=key, snapshot=snapshot)
    if existing is not None:
        return existing
    with transaction.atomic():
        head = locked_head(snapshot)
        if head.uploaded_by_id != user.pk and not user.is_superuser:
            raise IntakeError("Only the person who took the photo can confirm it.", code="not_yours")
        if variant is not None:
            variant = Variant.objects.select_related("product").get(pk=variant.pk)
            chosen = _usable_product(variant.product)
            if chosen.pk != variant.product_id:
                variant = variant_for(product=chosen, size=variant.size)
        else:
            chosen = _usable_product(product)
            variant = variant_for(product=chosen, size=size)
        if head.status == SnapshotStatus.CONFIRMED and head.product_id != chosen.pk:
            raise IntakeError(
                f"This item is already confirmed as {head.product.sku}. Undo that arrival to choose another product.",
                code="already_confirmed",
            )
        booked = list(head.arrivals.filter(undone_at__isnull=True).select_related("variant").order_by("created_at"))
        if booked and not add_another:
            return _same_booking(booked, variant=variant, quantity=quantity, bin_location=clean_bin(bin_location))
        rank = next((c.get("rank") for c in head.candidates if c.get("product_id") == chosen.pk), None)
        transition(head, SnapshotStatus.CONFIRMED, by=user, action="confirm", product=chosen.pk, rank=rank,
                   size=variant.size, quantity=quantity, source=source if source != ConfirmSource.CANDIDATES else None,
                   another=add_another or None)
        head.product = chosen
        head.decided_at = timezone.now()
        save_head(head, "product", "decided_at")
        transaction.on_commit(partial(segmentation_example_from_snapshot, snapshot_id=head.pk), robust=True)
        return arrival_create(variant=variant, quantity=quantity, bin_location=bin_location, user=user,
                               snapshot=head, idempotency_key=key)


def _same_booking(booked: list[Arrival], *, variant: Variant, quantity: int, bin_location: str) -> Arrival:
    """The arrival this confirm repeats (a resend or a double tap), else refuse booking the item twice."""
    for arrival in booked:
        if (arrival.variant_id, arrival.quantity, arrival.bin_location) == (variant.pk, quantity, bin_location):
            return arrival
    first = booked[0]
    raise IntakeError(
        f"This item is already booked ({first.quantity} × {first.variant.size}). To book another size of it as "
        "well, use “Another size” (add_another); to change the booking, undo it first.",
        code="already_booked", status_code=409,
    )


def arrival_undo(*, arrival: Arrival, user: AbstractBaseUser) -> Arrival:
    """Take back an arrival within the undo window (its author only), restoring the stock exactly."""
    with transaction.atomic():
        arrival = Arrival.objects.select_for_update().select_related("variant__product").get(pk=arrival.pk)
        if arrival.user_id != user.pk:
            raise IntakeError("Only the person who booked this arrival can undo it.", code="not_yours")
        if arrival.undone_at is not None:
            raise IntakeError("This arrival was already undone.", code="already_undone")
        if timezone.now() - arrival.created_at > conf.undo_window():
            minutes = int(conf.undo_window().total_seconds() // 60)
            raise IntakeError(
                f"Arrivals can be undone for {minutes} minutes only. Ask the stock team to correct it.",
                code="undo_expired",
            )
        try:
            variant_adjust_stock(variant_id=arrival.variant_id, delta=-arrival.quantity)
        except IntegrityError as exc:
            raise IntakeError(
                f"Cannot undo: some of these {arrival.variant} pieces already left the stock.", code="stock_moved"
            ) from exc
        arrival.undone_at = timezone.now()
        arrival.save(update_fields=["undone_at"])
        if arrival.snapshot_id:
            head = locked(arrival.snapshot_id)
            still_booked = head.arrivals.filter(undone_at__isnull=True).exists()
            if head.status == SnapshotStatus.CONFIRMED and not still_booked:
                transition(head, SnapshotStatus.MATCHED, by=user, action="undo arrival", arrival=arrival.pk)
                head.product = None
                head.decided_at = None
                save_head(head, "product", "decided_at")
        return arrival

