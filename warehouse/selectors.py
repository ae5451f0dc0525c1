"""Reads for warehouse intake: what a worker may see, with live catalogue data beside stored results."""
from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, time, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, Prefetch, Q, QuerySet, When
from django.http import Http404
from django.utils import timezone

from catalog.models import ImageRole, Product, ProductImage, ProductStatus, Variant

from .conf import undo_window
from .models import PENDING_STATUSES, Arrival, Snapshot, SnapshotStatus
from .services.state import is_stale


def snapshot_queryset(*, user: AbstractBaseUser) -> QuerySet[Snapshot]:
    """Snapshots ``user`` may see: their own; everyone's with the ``view_snapshot`` permission (supervisors)."""
    qs = Snapshot.objects.select_related("product", "uploaded_by")
    return qs if user.has_perm("warehouse.view_snapshot") else qs.filter(uploaded_by=user)


def snapshot_get(*, user: AbstractBaseUser, snapshot_id: int) -> Snapshot:
    snapshot = snapshot_queryset(user=user).filter(pk=snapshot_id).first()
    if snapshot is None:
        raise Http404("No such photo.")
    return snapshot


def snapshot_list(
    *, user: AbstractBaseUser, statuses: Iterable[str] | None = None, since: datetime | None = None
) -> QuerySet[Snapshot]:
    """The items (group heads) ``user`` photographed, newest first, optionally by status and age."""
    qs = snapshot_queryset(user=user).filter(group_head__isnull=True)
    if statuses:
        qs = qs.filter(status__in=list(statuses))
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    return qs


def start_of_today() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def arrival_list(*, since: datetime | None = None, user: AbstractBaseUser | None = None) -> QuerySet[Arrival]:
    """Arrivals since ``since`` (default: today), everyone's or one ``user``'s, newest first."""
    qs = Arrival.objects.select_related("variant__product", "user", "snapshot").filter(
        created_at__gte=since or start_of_today()
    )
    return qs.filter(user=user) if user is not None else qs


def arrival_can_undo(arrival: Arrival, *, user: AbstractBaseUser, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return arrival.undone_at is None and arrival.user_id == user.pk and now - arrival.created_at <= undo_window()


def arrival_undo_deadline(arrival: Arrival) -> datetime:
    return arrival.created_at + undo_window()


# A photo still waiting for a worker after this long gets a retry button (the broker may be down).
RECEIVED_RETRY_AFTER = timedelta(minutes=1)


def snapshot_actions(snapshot: Snapshot, *, user: AbstractBaseUser) -> dict[str, bool]:
    """What the worker can do next with this item; the pages show only these buttons."""
    status = snapshot.status
    own = snapshot.uploaded_by_id == user.pk or user.is_superuser
    open_ = status in (SnapshotStatus.MATCHED, SnapshotStatus.FAILED)
    return {
        "confirm": own and (open_ or status == SnapshotStatus.CONFIRMED),
        "mark_new": own and open_,
        "fix": own and status in (SnapshotStatus.MATCHED, SnapshotStatus.FAILED, SnapshotStatus.RECEIVED),
        "add_photo": own and status not in (SnapshotStatus.CONFIRMED, SnapshotStatus.NEW, SnapshotStatus.DISCARDED),
        "retry": own and (
            status == SnapshotStatus.FAILED
            or (status == SnapshotStatus.RECEIVED and snapshot.updated_at < timezone.now() - RECEIVED_RETRY_AFTER)
            or (status == SnapshotStatus.PROCESSING and is_stale(snapshot))
        ),
        "discard": own and snapshot.can_become(SnapshotStatus.DISCARDED),
        "reopen": own and status in (SnapshotStatus.NEW, SnapshotStatus.DISCARDED),
    }


def candidates_with_stock(snapshot: Snapshot, *, limit: int | None = None) -> list[dict]:
    """The stored candidates in rank order, with each product's current photo, sizes and stock.

    Scores come from the match; names, sizes and stock are read now, since they change.
    """
    stored = [c for c in (snapshot.candidates or []) if c.get("product_id")][:limit]
    products = _with_photos_and_sizes(Product.objects.filter(pk__in=[c["product_id"] for c in stored]))
    by_id = {product.pk: product for product in products}
    rows = []
    for rank, candidate in enumerate(stored, start=1):
        product = by_id.get(candidate["product_id"])
        if product is None:
            continue  # deleted since the match
        row = product_row(product)
        row.update(rank=candidate.get("rank", rank), score=candidate.get("score"))
        row["image_url"] = row["image_url"] or candidate.get("image_url") or ""
        rows.append(row)
    return rows


def _with_photos_and_sizes(products: QuerySet[Product]) -> QuerySet[Product]:
    return products.select_related("category").prefetch_related(
        Prefetch("variants", queryset=Variant.objects.order_by("id")),
        Prefetch("images", queryset=ProductImage.objects.exclude(role=ImageRole.SNAPSHOT).order_by("role", "id")),
    )


def product_row(product: Product) -> dict:
    """What the phone shows of a product (loaded by ``_with_photos_and_sizes``): photo, names, sizes with stock."""
    image = product.primary_image
    return {
        "product_id": product.pk,
        "sku": product.sku,
        "name": product.name,
        "image_url": image.file.url if image else "",
        "category": str(product.category),
        "category_kind": product.category.kind,
        "gender": product.gender,
        "status": product.status,
        "sizes": [{"variant_id": v.pk, "size": v.size, "stock": v.stock_quantity} for v in product.variants.all()],
    }


def product_search(*, query: str, limit: int = 20) -> list[dict]:
    """Products a worker can book, found by SKU, name or barcode, for when recognition failed.

    Exact SKU or barcode first, then SKUs that start with the query, then names that contain it.
    """
    query = " ".join(query.split())
    if len(query) < 2:
        return []
    exact = Q(sku__iexact=query) | Q(variants__barcode=query)
    found = (
        Product.objects.filter(status__in=[ProductStatus.ACTIVE, ProductStatus.DRAFT])
        .filter(exact | Q(sku__istartswith=query) | Q(name__icontains=query))
        .annotate(rank=Case(When(exact, then=0), When(sku__istartswith=query, then=1), default=2))
        .order_by("rank", "sku")
        .values_list("pk", flat=True)
        .distinct()
    )
    ids = list(dict.fromkeys(found[: limit * 5]))[:limit]  # a product matched through several variants repeats
    by_id = _with_photos_and_sizes(Product.objects.filter(pk__in=ids)).in_bulk()
    return [product_row(by_id[pk]) for pk in ids]


def snapshots_waiting(*, user: AbstractBaseUser) -> QuerySet[Snapshot]:
    """Items still with the machine, failed, or matched but not decided: the worker's to-do list."""
    return snapshot_list(
        user=user, statuses=[*PENDING_STATUSES, SnapshotStatus.FAILED, SnapshotStatus.MATCHED],
        since=start_of_today() - timedelta(days=2),
    )


def snapshot_lease_left(*, snapshot_id: int) -> float | None:
    """Seconds left on the claim of the run processing this item, or ``None`` when no live run holds it."""
    expires = (
        Snapshot.objects.filter(pk=snapshot_id, status=SnapshotStatus.PROCESSING)
        .values_list("lease_expires_at", flat=True)
        .first()
    )
    left = (expires - timezone.now()).total_seconds() if expires else 0.0
    return left if left > 0 else None


def snapshot_leases_left(*, limit: int = 20) -> list[float]:
    """Seconds until each claim held now runs out (soonest first): when a dead worker's items become free."""
    now = timezone.now()
    ends = (
        Snapshot.objects.filter(status=SnapshotStatus.PROCESSING, lease_expires_at__gt=now)
        .order_by("lease_expires_at")
        .values_list("lease_expires_at", flat=True)[:limit]
    )
    return sorted({math.ceil((end - now).total_seconds()) for end in ends})


def training_pairs() -> QuerySet[Snapshot]:
    """Confirmed snapshot ↔ product pairs (with their group photos): training signal for the matcher."""
    return Snapshot.objects.filter(
        status=SnapshotStatus.CONFIRMED, group_head__isnull=True, product__isnull=False
    ).select_related("product").prefetch_related("group_photos")


def training_groups() -> list:
    """Labelled intake items as embedder training groups (``matching.training.data.Group``).

    Read through ``warehouse.review.selectors.labelled_pairs`` (review decisions, and worker confirmations
    nobody reviewed): the snapshot's photos are the query side of the right product's group (its catalogue
    photos join it by key); rejected candidates are its hard negatives.
    """
    from django.core.files.storage import default_storage

    from catalog.models import Product
    from matching.training.data import QUERY, Group, Photo

    from .review.selectors import labelled_pairs

    rows = labelled_pairs()
    ids = {row.product_id for row in rows} | {pid for row in rows for pid in row.negative_product_ids}
    skus = dict(Product.objects.filter(pk__in=ids).values_list("id", "sku"))
    groups = []
    for row in rows:
        photos = [Photo(default_storage.path(name), QUERY, mask_path=row.mask_path or "")
                  for name in row.query_photos if name]
        if not photos or row.product_id not in skus:
            continue
        groups.append(Group(key=f"product:{skus[row.product_id]}", source=row.source, photos=photos,
                            negatives=[f"product:{skus[pid]}" for pid in row.negative_product_ids if pid in skus]))
    return groups
def match_outcomes(*, model_version: str) -> list[dict]:
    """What the matcher proposed and what the worker decided, for snapshots matched by ``model_version``.

    ``product_id`` is the confirmed product, or None for "not in catalogue". Read by matching's
    calibration through ``MATCHING["CALIBRATION_SOURCE"]``.
    """
    rows = Snapshot.objects.filter(
        status__in=[SnapshotStatus.CONFIRMED, SnapshotStatus.NEW], model_version=model_version, group_head__isnull=True
    ).values("status", "candidates", "product_id")
    return [
        {"candidates": row["candidates"] or [],
         "product_id": row["product_id"] if row["status"] == SnapshotStatus.CONFIRMED else None}
        for row in rows
    ]
