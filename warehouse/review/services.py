"""Writes for the review queue: a catalogue manager accepts, reassigns, merges, completes or rejects an item.

Every decision is stored as a ``LabelledPair`` and noted in the snapshot's events. Stock only moves
through ``catalog.services.variant_adjust_stock`` (a reassigned arrival takes its pieces along). Each
function owns its transaction and locks the item, so two managers cannot decide the same item twice.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.imaging import ImageRejected
from catalog.models import Category, Gender, ImageRole, Product, ProductImage, ProductStatus
from catalog.services import product_image_add, variant_adjust_stock, variant_get_or_create
from warehouse.models import Arrival, Snapshot, SnapshotStatus

from .models import LabelledPair, ReviewDecision
from .selectors import corrected_mask, queue_reason

MAX_SIZES = 30


class ReviewError(Exception):
    """A decision that cannot be made; ``message`` is shown to the catalogue manager as is."""

    def __init__(self, message: str, code: str = "invalid", status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code


def _open_item(snapshot_id: int) -> Snapshot:
    """The item (group head), locked, refused when someone already decided it."""
    snapshot = Snapshot.objects.filter(pk=snapshot_id).only("pk", "group_head_id").first()
    if snapshot is None:
        raise ReviewError("No such item.", code="not_found", status_code=404)
    head = (
        Snapshot.objects.select_for_update(of=("self",)).select_related("product")
        .get(pk=snapshot.group_head_id or snapshot.pk)
    )
    if LabelledPair.objects.filter(snapshot=head).exists():
        raise ReviewError(f"Item {head.pk} was already reviewed.", code="already_reviewed", status_code=409)
    if head.status in (SnapshotStatus.RECEIVED, SnapshotStatus.PROCESSING):
        raise ReviewError(f"Item {head.pk} is still being matched.", code="busy", status_code=409)
    return head


def _draft_of(head: Snapshot) -> Product | None:
    product = head.product
    if head.status == SnapshotStatus.NEW and product is not None and product.status == ProductStatus.DRAFT:
        return product
    return None


def _target(product_id: int | None) -> Product:
    product = Product.objects.filter(pk=product_id).select_related("merged_into").first() if product_id else None
    if product is None:
        raise ReviewError("Choose an existing product.", code="product_required")
    if product.status == ProductStatus.MERGED and product.merged_into_id:
        product = product.merged_into
    if product.status != ProductStatus.ACTIVE:
        raise ReviewError(f"{product.sku} is {product.get_status_display().lower()}; choose an active product.",
                          code="product_inactive")
    return product


def _note(head: Snapshot, *, user: AbstractBaseUser, action: str, **note) -> None:
    event = {"from": head.status, "to": head.status, "at": timezone.now().isoformat(), "action": f"review {action}",
             "by": user.pk}
    event.update({key: value for key, value in note.items() if value not in (None, "")})
    head.events = [*head.events, event]
    head.save(update_fields=["events", "product", "updated_at"])


def _pair(head: Snapshot, *, decision: str, product: Product | None, user: AbstractBaseUser,
          worker_product: Product | None, note: str = "") -> LabelledPair:
    right = product.pk if product else None
    negatives = [c["product_id"] for c in head.candidates or [] if c.get("product_id") not in (None, right)]
    if worker_product is not None and worker_product.pk != right and worker_product.status == ProductStatus.ACTIVE:
        negatives.append(worker_product.pk)  # the worker's wrong choice is the hardest negative (drafts are not)
    return LabelledPair.objects.create(
        snapshot=head, decision=decision, product=product, worker_product=worker_product,
        negative_product_ids=list(dict.fromkeys(negatives)), mask=corrected_mask(head), reason=queue_reason(head),
        note=note[:2000], decided_by=user,
    )


def _move_pieces(arrivals: Iterable[Arrival], *, to: Product, user: AbstractBaseUser, reason: str) -> int:
    """Move booked arrivals (and their stock, size by size) to product ``to``; refuse if pieces already left."""
    moved = 0
    for arrival in arrivals:
        source = arrival.variant
        target = variant_get_or_create(product=to, size=source.size)
        try:
            with transaction.atomic():
                variant_adjust_stock(variant_id=source.pk, delta=-arrival.quantity, reason=reason, user=user)
        except IntegrityError as exc:
            raise ReviewError(
                f"{arrival.quantity} × {source} can no longer be moved: some pieces already left the stock.",
                code="stock_moved",
            ) from exc
        variant_adjust_stock(variant_id=target.pk, delta=arrival.quantity, reason=reason, user=user)
        Arrival.objects.filter(pk=arrival.pk).update(variant=target)
        moved += arrival.quantity
    return moved


def _open_arrivals(head: Snapshot) -> list[Arrival]:
    return list(head.arrivals.filter(undone_at__isnull=True).select_related("variant__product").order_by("id"))


def review_accept(*, snapshot: Snapshot, user: AbstractBaseUser, note: str = "") -> LabelledPair:
    """The worker's choice (or the matcher's best candidate, when the worker chose nothing) is right.

    For a worker's draft this accepts the draft as a new product as it is.
    """
    with transaction.atomic():
        head = _open_item(snapshot.pk)
        draft = _draft_of(head)
        if draft is not None:
            draft.status = ProductStatus.ACTIVE
            draft._change_reason = f"review: draft from item {head.pk} accepted"
            draft._history_user = user
            draft.save()
            _note(head, user=user, action="accept", product=draft.pk)
            return _pair(head, decision=ReviewDecision.ACCEPT, product=draft, user=user, worker_product=draft,
                         note=note)
        if head.status == SnapshotStatus.CONFIRMED and head.product is not None:
            product = head.product
        else:
            top = next((c for c in head.candidates or [] if c.get("product_id")), None)
            if top is None:
                raise ReviewError(f"Item {head.pk} has no candidate to accept; reassign or reject it.",
                                  code="nothing_to_accept")
            product = _target(top["product_id"])
        _note(head, user=user, action="accept", product=product.pk)
        return _pair(head, decision=ReviewDecision.ACCEPT, product=product, user=user, worker_product=head.product,
                     note=note)


def review_reassign(*, snapshot: Snapshot, product_id: int, user: AbstractBaseUser, note: str = "") -> LabelledPair:
    """The item is ``product_id``. Booked pieces move to it (same sizes); a worker's draft is merged into it."""
    with transaction.atomic():
        head = _open_item(snapshot.pk)
        target = _target(product_id)
        if _draft_of(head) is not None:
            return _merge_draft(head, target=target, user=user, note=note)
        worker_product = head.product
        moved = 0
        if head.status == SnapshotStatus.CONFIRMED and worker_product is not None and worker_product.pk != target.pk:
            moved = _move_pieces(_open_arrivals(head), to=target, user=user,
                                 reason=f"review: item {head.pk} is {target.sku}, not {worker_product.sku}")
            head.product = target
        _note(head, user=user, action="reassign", product=target.pk, moved=moved or None)
        return _pair(head, decision=ReviewDecision.REASSIGN, product=target, user=user, worker_product=worker_product,
                     note=note)


def review_merge_draft(*, snapshot: Snapshot, product_id: int, user: AbstractBaseUser, note: str = "") -> LabelledPair:
    """A worker's draft is an existing product after all: move its stock there and mark the draft merged."""
    with transaction.atomic():
        head = _open_item(snapshot.pk)
        if _draft_of(head) is None:
            raise ReviewError(f"Item {head.pk} has no draft product to merge.", code="not_a_draft")
        return _merge_draft(head, target=_target(product_id), user=user, note=note)


def _merge_draft(head: Snapshot, *, target: Product, user: AbstractBaseUser, note: str) -> LabelledPair:
    draft = head.product
    reason = f"review: draft {draft.sku} merged into {target.sku}"
    moved = _move_pieces(Arrival.objects.filter(variant__product=draft, undone_at__isnull=True)
                         .select_related("variant").order_by("id"), to=target, user=user, reason=reason)
    for variant in draft.variants.filter(stock_quantity__gt=0):  # stock that no arrival explains
        quantity = variant.stock_quantity
        variant_adjust_stock(variant_id=variant.pk, delta=-quantity, reason=reason, user=user)
        target_variant = variant_get_or_create(product=target, size=variant.size)
        variant_adjust_stock(variant_id=target_variant.pk, delta=quantity, reason=reason, user=user)
        moved += quantity
    draft.status = ProductStatus.MERGED
    draft.merged_into = target
    draft._change_reason = reason
    draft._history_user = user
    draft.save()
    head.product = target
    _note(head, user=user, action="merge draft", product=target.pk, draft=draft.pk, moved=moved or None)
    return _pair(head, decision=ReviewDecision.MERGE, product=target, user=user, worker_product=draft, note=note)


def clean_sizes(sizes: str | Sequence[str]) -> list[str]:
    """"S, M, L" or a list → distinct upper-case sizes (1–20 characters each)."""
    parts = sizes.split(",") if isinstance(sizes, str) else list(sizes)
    cleaned = list(dict.fromkeys(" ".join(str(part).split()).upper() for part in parts if str(part).strip()))
    if len(cleaned) > MAX_SIZES:
        raise ReviewError(f"At most {MAX_SIZES} sizes.", code="invalid_sizes")
    if any(len(size) > 20 for size in cleaned):
        raise ReviewError("A size has at most 20 characters.", code="invalid_sizes")
    return cleaned


def review_complete_draft(
    *, snapshot: Snapshot, user: AbstractBaseUser, name: str, category_id: int, gender: str,
    sizes: str | Sequence[str] = (), sku: str = "", primary_image_id: int | None = None, use_cutout: bool = False,
    note: str = "",
) -> LabelledPair:
    """Turn a worker's draft into a catalogue product: name, category, gender, sizes and photos from the item."""
    name = " ".join((name or "").split())
    if not name or len(name) > 200:
        raise ReviewError("Give the product a name (at most 200 characters).", code="invalid_name")
    category = Category.objects.filter(pk=category_id).first() if category_id else None
    if category is None:
        raise ReviewError("Choose a category.", code="invalid_category")
    if gender not in Gender.values:
        raise ReviewError(f"Choose a gender: {', '.join(Gender.values)}.", code="invalid_gender")
    size_list = clean_sizes(sizes)
    sku = (sku or "").strip()
    if len(sku) > 64:
        raise ReviewError("A SKU has at most 64 characters.", code="invalid_sku")
    with transaction.atomic():
        head = _open_item(snapshot.pk)
        draft = _draft_of(head)
        if draft is None:
            raise ReviewError(f"Item {head.pk} has no draft product to complete.", code="not_a_draft")
        if sku and sku != draft.sku and Product.objects.filter(sku=sku).exists():
            raise ReviewError(f"SKU {sku} is already taken.", code="sku_taken", status_code=409)
        if primary_image_id and not draft.images.filter(pk=primary_image_id).exists():
            raise ReviewError("That photo is not one of this draft's.", code="invalid_image")
        draft.name, draft.category, draft.gender, draft.sku = name, category, gender, sku or draft.sku
        draft.status = ProductStatus.ACTIVE
        draft._change_reason = f"review: draft from item {head.pk} completed"
        draft._history_user = user
        draft.save()
        for size in size_list:
            variant_get_or_create(product=draft, size=size)
        if use_cutout and head.cutout:
            with head.cutout.open("rb") as handle:
                data = handle.read()
            try:
                image, _ = product_image_add(product=draft, data=data, filename=f"cutout-{head.pk}.jpg",
                                             role=ImageRole.PRIMARY)
            except ImageRejected as exc:
                raise ReviewError(f"The cut-out cannot be used: {exc.reason}", code="invalid_image") from exc
            primary_image_id = primary_image_id or image.pk
        if primary_image_id:
            draft.images.filter(role=ImageRole.PRIMARY).exclude(pk=primary_image_id).update(role=ImageRole.ALTERNATE)
            ProductImage.objects.filter(pk=primary_image_id).update(role=ImageRole.PRIMARY)
        _note(head, user=user, action="complete draft", product=draft.pk, sizes=",".join(size_list) or None)
        return _pair(head, decision=ReviewDecision.COMPLETE, product=draft, user=user, worker_product=draft, note=note)


def review_reject(*, snapshot: Snapshot, user: AbstractBaseUser, note: str = "") -> LabelledPair:
    """None of the candidates (nor the worker's choice) is this item. A worker's empty draft is retired."""
    with transaction.atomic():
        head = _open_item(snapshot.pk)
        draft = _draft_of(head)
        if draft is not None:
            if Arrival.objects.filter(variant__product=draft, undone_at__isnull=True).exists():
                raise ReviewError(f"Stock is booked on draft {draft.sku}: merge it into the right product instead.",
                                  code="has_arrivals")
            draft.status = ProductStatus.RETIRED
            draft._change_reason = f"review: draft from item {head.pk} rejected"
            draft._history_user = user
            draft.save()
        _note(head, user=user, action="reject")
        return _pair(head, decision=ReviewDecision.REJECT, product=None, user=user, worker_product=head.product,
                     note=note)


BULK_ACTIONS = {"accept": review_accept, "reject": review_reject}


def review_bulk(
    *, snapshot_ids: Sequence[int], action: str, user: AbstractBaseUser
) -> tuple[list[int], dict[int, str]]:
    """Accept or reject several items; each is its own decision. Returns (done ids, {id: why not})."""
    decide = BULK_ACTIONS.get(action)
    if decide is None:
        raise ReviewError(f"Unknown bulk action {action!r}; use one of {', '.join(BULK_ACTIONS)}.")
    done, failed = [], {}
    for snapshot_id in snapshot_ids:
        try:
            decide(snapshot=Snapshot(pk=snapshot_id), user=user)
            done.append(snapshot_id)
        except ReviewError as exc:
            failed[snapshot_id] = exc.message
    return done, failed
