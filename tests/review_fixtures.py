"""Builders for the review-queue tests: real catalogue photos, real phone photos, snapshots in each state.

Snapshots are made as processing would leave them (original, preview and cut-out files, candidates
with scores, the decision), without running the matcher, so each test controls the scores it needs.
"""
from __future__ import annotations

import io
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from catalog.imaging import encode_jpeg, load_image
from catalog.models import Product, ProductStatus
from tests.test_intake_fixtures import PASSWORD, catalogue_products, phone_photo
from warehouse.models import Arrival, Snapshot, SnapshotStatus
from warehouse.roles import CATALOG, WAREHOUSE


def make_user(username: str, role: str | None, *, staff: bool = True) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=staff)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def catalogue_manager(username: str = "cm") -> User:
    return make_user(username, CATALOG)


def warehouse_worker(username: str = "wk") -> User:
    return make_user(username, WAREHOUSE, staff=False)


def real_products(shared_data: Path, n: int, *, prefix: str = "CAT") -> list[Product]:
    """``n`` products with one real studio photo each and sizes S/M/L with 5 pieces each (not embedded)."""
    return catalogue_products(shared_data, n, prefix=prefix)


def _cutout_of(photo: bytes) -> bytes:
    image = load_image(photo).image
    w, h = image.size
    crop = image.crop((w // 6, h // 6, w - w // 6, h - h // 6))
    crop.thumbnail((384, 384))
    canvas = Image.new("RGB", (384, 384), (128, 128, 128))
    canvas.paste(crop, ((384 - crop.width) // 2, (384 - crop.height) // 2))
    return encode_jpeg(canvas, quality=88)


def make_snapshot(
    *, worker: User, shared_data: Path, status: str, scored: list[tuple[Product, float]], photo_index: int = 0,
    product: Product | None = None, threshold: float = 0.8, hints: dict | None = None, key: str | None = None,
) -> Snapshot:
    """A processed item: a real phone photo, its cut-out, ``scored`` candidates in rank order and the decision."""
    data = phone_photo(shared_data, photo_index)
    loaded = load_image(data)
    preview = loaded.image.copy()
    preview.thumbnail((1600, 1600))
    top_score = scored[0][1] if scored else 0.0
    in_catalogue = bool(scored) and top_score >= threshold
    snapshot = Snapshot(
        uploaded_by=worker, idempotency_key=key or f"review-{timezone.now().timestamp()}-{photo_index}-{status}",
        original_sha256=loaded.sha256, original_format=loaded.format, original_bytes=len(data),
        width=loaded.image.width, height=loaded.image.height, status=status, product=product,
        hints=hints or {}, model_version="test",
        candidates=[{"product_id": p.pk, "sku": p.sku, "name": p.name, "score": s, "rank": i}
                    for i, (p, s) in enumerate(scored, start=1)],
        decision={"in_catalogue": in_catalogue, "sku": scored[0][0].sku if in_catalogue else None,
                  "product_id": scored[0][0].pk if in_catalogue else None, "score": top_score,
                  "threshold": threshold, "label": "in catalogue" if in_catalogue else "probably not in catalogue"},
        events=[{"to": "received", "action": "upload", "by": worker.pk, "at": timezone.now().isoformat()}],
        error="GrabCut gave up" if status == SnapshotStatus.FAILED else "",
        processed_at=timezone.now(),
    )
    snapshot.original.save("photo.jpg", ContentFile(data), save=False)
    snapshot.preview.save("preview.jpg", ContentFile(encode_jpeg(preview, quality=85)), save=False)
    if status != SnapshotStatus.FAILED:
        snapshot.cutout.save("cutout.jpg", ContentFile(_cutout_of(data)), save=False)
        mask = io.BytesIO()
        Image.new("L", loaded.image.size, 255).save(mask, format="PNG")
        snapshot.mask.save("mask.png", ContentFile(mask.getvalue()), save=False)
    snapshot.save()
    return snapshot


def confirm(snapshot: Snapshot, product: Product, *, size: str = "M", quantity: int = 2) -> Arrival:
    """Book pieces the way intake does (through the intake service)."""
    from warehouse import services

    return services.snapshot_confirm(snapshot=snapshot, user=snapshot.uploaded_by, quantity=quantity,
                                     product=product, size=size)


def mark_new(snapshot: Snapshot, **fields) -> Product:
    from warehouse import services

    product = services.snapshot_mark_new(snapshot=snapshot, user=snapshot.uploaded_by, **fields)
    assert product.status == ProductStatus.DRAFT
    return product
