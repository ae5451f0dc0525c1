"""Reads for the review queue and the labelled pairs (the matcher's and segmenter's training data)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import BooleanField, Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from catalog.models import ImageRole, Product, ProductImage, ProductStatus, Variant
from warehouse.models import Snapshot, SnapshotStatus
from warehouse.selectors import training_pairs

from .models import LabelledPair


class QueueReason:
    DRAFT = "draft"
    NOT_IN_CATALOGUE = "not_in_catalogue"
    LOW_SCORE = "low_score"
    FAILED = "failed"


QUEUE_REASON_LABELS = {
    QueueReason.DRAFT: "worker's draft product",
    QueueReason.NOT_IN_CATALOGUE: "probably not in catalogue",
    QueueReason.LOW_SCORE: "confirmed without a sure match",
    QueueReason.FAILED: "failed",
}

# A confirmed item the match did not vouch for: the decision did not accept the product the worker chose (it
# said "probably not in the catalogue", say two products too close to call, or accepted another one), or the
# chosen product's score is under the threshold, or it was no candidate at all.
_CONFIRMED_UNSURE = RawSQL(
    """NOT (COALESCE((warehouse_snapshot.decision->>'in_catalogue')::boolean, false)
            AND (warehouse_snapshot.decision->>'product_id')::bigint IS NOT DISTINCT FROM warehouse_snapshot.product_id)
       OR NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements(CASE jsonb_typeof(warehouse_snapshot.candidates)
                                           WHEN 'array' THEN warehouse_snapshot.candidates ELSE '[]'::jsonb END) c
         WHERE (c->>'product_id')::bigint = warehouse_snapshot.product_id
           AND (c->>'score')::float8 >= COALESCE((warehouse_snapshot.decision->>'threshold')::float8, 0.8))""",
    [], output_field=BooleanField(),
)


def review_queue() -> QuerySet[Snapshot]:
    """Items (group heads) that need a catalogue manager, not reviewed yet, oldest first."""
    return (
        Snapshot.objects.filter(group_head__isnull=True, labelled_pair__isnull=True)
        .annotate(unsure=_CONFIRMED_UNSURE)
        .filter(
            Q(status=SnapshotStatus.FAILED)
            | Q(status=SnapshotStatus.NEW, product__status=ProductStatus.DRAFT)
            | Q(status=SnapshotStatus.MATCHED, decision__in_catalogue=False)
            | Q(status=SnapshotStatus.CONFIRMED, unsure=True)
        )
        .select_related("product", "uploaded_by")
        .order_by("created_at", "id")
    )


def queue_reason(snapshot: Snapshot) -> str:
    """Why ``snapshot`` is (or would be) in the queue; "" when it would not be."""
    if snapshot.status == SnapshotStatus.FAILED:
        return QueueReason.FAILED
    if snapshot.status == SnapshotStatus.NEW:
        return QueueReason.DRAFT
    if snapshot.status == SnapshotStatus.MATCHED and not (snapshot.decision or {}).get("in_catalogue", False):
        return QueueReason.NOT_IN_CATALOGUE
    if snapshot.status == SnapshotStatus.CONFIRMED:
        decision = snapshot.decision or {}
        vouched = bool(decision.get("in_catalogue")) and decision.get("product_id") == snapshot.product_id
        score = confirmed_score(snapshot)
        if not vouched or score is None or score < float(decision.get("threshold", 0.8)):
            return QueueReason.LOW_SCORE
    return ""


def confirmed_score(snapshot: Snapshot) -> float | None:
    """The match score of the product the worker chose (None when it was not among the candidates)."""
    for candidate in snapshot.candidates or []:
        if snapshot.product_id and candidate.get("product_id") == snapshot.product_id:
            return float(candidate.get("score") or 0.0)
    return None


def review_queue_stats(*, now: datetime | None = None) -> dict:
    """Size of the queue, its oldest item's age in hours, and the count per reason (dashboard)."""
    now = now or timezone.now()
    rows = list(review_queue().values_list("created_at", "status"))
    by_status: dict[str, int] = {}
    for _, status in rows:
        by_status[status] = by_status.get(status, 0) + 1
    ages = sorted((now - created).total_seconds() / 3600 for created, _ in rows)
    return {"size": len(rows), "oldest_hours": ages[-1] if ages else None, "ages_hours": ages, "by_status": by_status}


@dataclass(frozen=True)
class LabelledPairRow:
    """One labelled item: photos of a garment (storage names), the right product and the ones it is not."""

    snapshot_id: int
    query_photo: str
    query_photos: tuple[str, ...]
    cutout: str
    product_id: int | None
    negative_product_ids: tuple[int, ...]
    mask_path: str
    source: str  # "confirmation" (a worker booked it) or "review" (a catalogue manager decided)
    decided_at: datetime | None


def _photos(snapshot: Snapshot) -> tuple[str, ...]:
    group = sorted(snapshot.group_photos.all(), key=lambda photo: (photo.created_at, photo.pk))
    return tuple(photo.original.name for photo in [snapshot, *group] if photo.original)


def corrected_mask(snapshot: Snapshot) -> str:
    """The mask made with the worker's own rectangle or strokes (a correction), else ""."""
    return snapshot.mask.name if snapshot.hints and snapshot.mask else ""


def labelled_pairs(*, include_rejected: bool = False) -> list[LabelledPairRow]:
    """Every labelled item: review decisions, and worker confirmations nobody reviewed.

    A review supersedes the worker's confirmation of the same item. Rejections (no right product,
    only negatives) are left out unless ``include_rejected``.
    """
    rows: list[LabelledPairRow] = []
    reviewed = LabelledPair.objects.select_related("snapshot").prefetch_related("snapshot__group_photos")
    if not include_rejected:
        reviewed = reviewed.filter(product__isnull=False)
    for pair in reviewed.order_by("decided_at", "id"):
        photos = _photos(pair.snapshot)
        rows.append(LabelledPairRow(
            snapshot_id=pair.snapshot_id, query_photo=photos[0] if photos else "", query_photos=photos,
            cutout=pair.snapshot.cutout.name or "", product_id=pair.product_id,
            negative_product_ids=tuple(pair.negative_product_ids), mask_path=pair.mask, source="review",
            decided_at=pair.decided_at,
        ))
    for snapshot in training_pairs().filter(labelled_pair__isnull=True).order_by("decided_at", "id"):
        photos = _photos(snapshot)
        negatives = tuple(dict.fromkeys(
            c["product_id"] for c in snapshot.candidates or [] if c.get("product_id") not in (None, snapshot.product_id)
        ))
        rows.append(LabelledPairRow(
            snapshot_id=snapshot.pk, query_photo=photos[0] if photos else "", query_photos=photos,
            cutout=snapshot.cutout.name or "", product_id=snapshot.product_id, negative_product_ids=negatives,
            mask_path=corrected_mask(snapshot), source="confirmation", decided_at=snapshot.decided_at,
        ))
    return rows


@dataclass
class DraftOrigin:
    """Where a worker's draft product came from, and which of its labels the system guessed."""

    snapshot: Snapshot
    worker: object
    candidates: list[dict]
    guessed: list[str]  # "category" and/or "gender": taken from the candidates, not chosen by anyone


def draft_origin(product: Product) -> DraftOrigin | None:
    """The intake item a draft was made from ("not in catalogue"), if any."""
    from warehouse import services
    from warehouse.selectors import candidates_with_stock

    snapshot = (
        # the product FK (or the review's worker_product, after a merge) narrows it down before the JSON test
        Snapshot.objects.filter(Q(product=product) | Q(labelled_pair__worker_product=product))
        .filter(group_head__isnull=True, events__contains=[{"action": "mark new", "product": product.pk}])
        .select_related("uploaded_by").order_by("created_at").first()
    )
    if snapshot is None:
        return None
    event = next(e for e in snapshot.events if e.get("action") == "mark new" and e.get("product") == product.pk)
    if "guessed" in event:  # recorded by intake when it knows which labels the worker left empty
        guessed = list(event["guessed"])
    else:
        # Otherwise: a label is a guess when it is the candidates' majority and nobody has changed it since.
        category, gender = services.guess_category_and_gender(snapshot.candidates or [])
        first = product.history.order_by("history_date", "history_id").first()
        created = (first.category_id, first.gender) if first else (product.category_id, product.gender)
        guessed = []
        if category is not None and created[0] == category.pk == product.category_id:
            guessed.append("category")
        if gender is not None and created[1] == gender == product.gender:
            guessed.append("gender")
    return DraftOrigin(snapshot=snapshot, worker=snapshot.uploaded_by,
                       candidates=candidates_with_stock(snapshot, limit=5), guessed=guessed)


def review_cards(snapshots: Sequence[Snapshot], *, candidates: int = 5, now: datetime | None = None) -> list[dict]:
    """What the queue shows per item: reason, age, the worker's choice, and the top candidates with live stock.

    Products are loaded for the whole page at once (three queries), not per item.
    """
    now = now or timezone.now()
    wanted: set[int] = set()
    for snapshot in snapshots:
        wanted.update(c["product_id"] for c in (snapshot.candidates or [])[:candidates] if c.get("product_id"))
        if snapshot.product_id:
            wanted.add(snapshot.product_id)
    products = {
        product.pk: product
        for product in Product.objects.filter(pk__in=wanted).select_related("category").prefetch_related(
            Prefetch("variants", queryset=Variant.objects.order_by("id")),
            Prefetch("images", queryset=ProductImage.objects.order_by("role", "id")),
        )
    }
    cards = []
    for snapshot in snapshots:
        choice = products.get(snapshot.product_id) if snapshot.product_id else None
        rows = []
        for rank, candidate in enumerate((snapshot.candidates or [])[:candidates], start=1):
            product = products.get(candidate.get("product_id"))
            if product is not None:
                rows.append(_product_row(product, score=candidate.get("score"), rank=rank,
                                         is_choice=product.pk == snapshot.product_id))
        decision = snapshot.decision or {}
        reason = queue_reason(snapshot)
        cards.append({
            "snapshot": snapshot, "reason": reason, "reason_label": QUEUE_REASON_LABELS.get(reason, ""),
            "age_hours": (now - snapshot.created_at).total_seconds() / 3600, "worker": snapshot.uploaded_by,
            "choice": _product_row(choice, score=confirmed_score(snapshot)) if choice else None,
            "is_draft": snapshot.status == SnapshotStatus.NEW and choice is not None
            and choice.status == ProductStatus.DRAFT,
            # a threshold fitted on the open-set score (alpha > 0) is not on the scale of the scores shown
            "candidates": rows, "threshold": None if decision.get("alpha") else decision.get("threshold"),
            "error": snapshot.error,
        })
    return cards


def _product_row(product: Product, *, score: float | None, rank: int | None = None, is_choice: bool = False) -> dict:
    images = list(product.images.all())
    catalogue_images = [image for image in images if image.role != ImageRole.SNAPSHOT]
    sizes = [(variant.size, variant.stock_quantity) for variant in product.variants.all()]
    return {
        "product_id": product.pk, "sku": product.sku, "name": product.name, "status": product.status,
        "category": str(product.category), "gender": product.gender, "score": score, "rank": rank,
        "image": (catalogue_images or images or [None])[0], "sizes": sizes, "stock": sum(q for _, q in sizes),
        "is_choice": is_choice,
    }


def review_product_search(*, query: str, limit: int = 20) -> list[Product]:
    """Active products by SKU, name or barcode; an exact SKU or barcode comes first."""
    query = " ".join((query or "").split())
    if not query:
        return []
    exact = Q(sku__iexact=query) | Q(variants__barcode=query)
    matches = (
        Product.objects.filter(status=ProductStatus.ACTIVE)
        .filter(exact | Q(sku__icontains=query) | Q(name__icontains=query))
        .annotate(exact=Exists(Product.objects.filter(pk=OuterRef("pk")).filter(exact)))
        .select_related("category")
        .prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("id")),
                          Prefetch("images", queryset=ProductImage.objects.order_by("role", "id")))
        .distinct()
        .order_by("-exact", "sku")
    )
    return list(matches[:limit])


def product_rows(products: Sequence[Product], *, scores: dict[int, float] | None = None) -> list[dict]:
    scores = scores or {}
    return [_product_row(product, score=scores.get(product.pk)) for product in products]
