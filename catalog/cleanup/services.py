"""Writes for catalogue cleanup: findings, scan runs, merges and relabels (each undoable exactly)."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog.models import Category, ImageRole, Look, Product, ProductImage, ProductStatus, Variant
from catalog.services import variant_adjust_stock

from . import scans
from .conf import cleanup_setting
from .models import (
    Finding,
    FindingKind,
    FindingState,
    MergeRecord,
    RecordState,
    RelabelRecord,
    ScanChunk,
    ScanRun,
    ScanState,
)

if TYPE_CHECKING:
    from datetime import datetime

logger = logging.getLogger(__name__)

SCAN_KINDS = ("photos", "duplicates", "labels", "gaps")


class CleanupError(ValueError):
    """A cleanup action that cannot be done as asked, with a reason a catalogue manager can act on."""


# -- findings ----------------------------------------------------------------------------------------

def findings_sync(*, kind: str, found: Sequence[scans.FindingData], product_ids: Iterable[int] | None = None) -> dict:
    """Store a scan's findings of ``kind``.

    New ones open; open ones are refreshed; accepted or dismissed ones stay as decided while their
    fingerprint is unchanged and open again when it changed. Open findings the scan no longer produces
    (within its scope: every one of ``kind``, or those touching ``product_ids``) are removed.
    """
    counts = {"opened": 0, "reopened": 0, "kept": 0, "removed": 0}
    keys = {f.key for f in found}
    with transaction.atomic():
        existing = {f.key: f for f in Finding.objects.select_for_update().filter(key__in=keys)}
        for data in found:
            finding = existing.get(data.key)
            if finding is None:
                finding = Finding.objects.create(
                    kind=data.kind, key=data.key, summary=data.summary[:255], confidence=data.confidence,
                    details=data.details, fingerprint=data.fingerprint,
                )
                counts["opened"] += 1
            elif finding.state != FindingState.OPEN and finding.fingerprint == data.fingerprint:
                counts["kept"] += 1
                continue
            else:
                if finding.state != FindingState.OPEN:
                    counts["reopened"] += 1
                    finding.decided_by, finding.decided_at = None, None
                finding.state, finding.summary, finding.confidence = (
                    FindingState.OPEN, data.summary[:255], data.confidence
                )
                finding.details, finding.fingerprint = data.details, data.fingerprint
                finding.save()
            finding.products.set(data.product_ids)
            finding.images.set(data.image_ids)
        stale = Finding.objects.filter(kind=kind, state=FindingState.OPEN).exclude(key__in=keys)
        if product_ids is not None:
            stale = stale.filter(products__in=list(product_ids)).distinct()
        counts["removed"] = stale.count()
        Finding.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
    return counts


def finding_dismiss(*, finding: Finding, user: AbstractBaseUser | None) -> Finding:
    """Not a mistake: it stays dismissed until the data it was computed from changes."""
    Finding.objects.filter(pk=finding.pk).update(state=FindingState.DISMISSED, decided_by=user,
                                                 decided_at=timezone.now())
    finding.refresh_from_db()
    return finding


def finding_accept(*, finding: Finding, user: AbstractBaseUser | None) -> Finding:
    """Apply the fix a finding proposes: merge the cluster, relabel, demote the photo, re-queue the gap."""
    with transaction.atomic():
        finding = Finding.objects.select_for_update().get(pk=finding.pk)
        if finding.state == FindingState.ACCEPTED:
            return finding
        details = finding.details or {}
        if finding.kind == FindingKind.DUPLICATE:
            products = list(finding.products.values_list("pk", flat=True))
            keeper = details.get("keeper") if details.get("keeper") in products else scans.keeper_for(products)
            products_merge(keeper_id=keeper, product_ids=[p for p in products if p != keeper], user=user,
                           finding=finding)
        elif finding.kind == FindingKind.WRONG_LABEL:
            product = finding.products.first()
            if product is None:
                raise CleanupError("The product of this finding no longer exists.")
            value = details.get("suggested_category_id") if details.get("field") == "category" else details.get(
                "suggested")
            product_relabel(product=product, field=details["field"], value=value, user=user, finding=finding)
        elif finding.kind == FindingKind.BAD_PHOTO:
            _photo_demote(finding)
        elif finding.kind == FindingKind.GAP and details.get("gap") in ("no_embedding", "failed"):
            image_ids = list(finding.images.values_list("pk", flat=True))
            if image_ids:
                from matching.services import images_embed_after_commit

                images_embed_after_commit(image_ids)
        finding.state, finding.decided_by, finding.decided_at = FindingState.ACCEPTED, user, timezone.now()
        finding.save(update_fields=["state", "decided_by", "decided_at", "updated_at"])
    return finding


def _photo_demote(finding: Finding) -> None:
    """A bad primary photo gives its place to the product's best other photo (recorded in the finding)."""
    image = finding.images.select_related("product").first()
    if image is None or image.role != ImageRole.PRIMARY:
        return
    replacement = (
        ProductImage.objects.filter(product_id=image.product_id).exclude(pk=image.pk)
        .exclude(role=ImageRole.SNAPSHOT).order_by("id")
    )
    better = next((i for i in replacement if not i.quality_flags), None) or replacement.first()
    if better is None:
        return
    finding.details = {**finding.details, "demoted": {"image": image.pk, "promoted": better.pk,
                                                      "promoted_role": better.role}}
    ProductImage.objects.filter(pk=image.pk).update(role=ImageRole.ALTERNATE)
    ProductImage.objects.filter(pk=better.pk).update(role=ImageRole.PRIMARY)
    finding.save(update_fields=["details"])


# -- merge -------------------------------------------------------------------------------------------

def _stamp(value: datetime) -> str:
    return value.isoformat()


@transaction.atomic
def products_merge(*, keeper_id: int, product_ids: Sequence[int], user: AbstractBaseUser | None = None,
                   finding: Finding | None = None) -> MergeRecord:
    """Merge ``product_ids`` into ``keeper_id``: photos, variants (stock summed per size), arrivals, looks,
    snapshots and earlier merges move to the keeper; the others become ``merged`` with ``merged_into`` set,
    so their SKUs still resolve. Every change is recorded for ``merge_undo``.
    """
    from warehouse.models import Arrival, Snapshot

    others = sorted({int(p) for p in product_ids} - {int(keeper_id)})
    if not others:
        raise CleanupError("Pick at least one product to merge into the one kept.")
    locked = {p.pk: p for p in Product.objects.select_for_update().filter(pk__in=[keeper_id, *others])}
    keeper = locked.get(int(keeper_id))
    if keeper is None or len(locked) != len(others) + 1:
        raise CleanupError("Some of these products no longer exist.")
    for product in locked.values():
        if product.status not in scans.SCANNED_STATUSES:
            raise CleanupError(f"{product.sku} is {product.get_status_display().lower()}; it cannot be merged.")
    changes: dict = {
        "keeper": {"id": keeper.pk, "updated_at": _stamp(keeper.updated_at)},
        "products": [], "repointed": [], "images": [], "variants_moved": [], "stock_moved": [], "arrivals": [],
        "looks": [], "snapshots": [],
    }
    keeper_shas = set(keeper.images.values_list("sha256", flat=True))
    keeper_has_primary = keeper.images.filter(role=ImageRole.PRIMARY).exists()
    keeper_variants = {v.size.lower(): v for v in Variant.objects.select_for_update().filter(product=keeper)}
    moved_images: list[int] = []
    for other in (locked[p] for p in others):
        changes["products"].append({"id": other.pk, "status": other.status, "merged_into": other.merged_into_id,
                                    "updated_at": _stamp(other.updated_at)})
        for earlier in Product.objects.filter(merged_into=other).exclude(pk__in=others).values_list("pk", flat=True):
            changes["repointed"].append({"id": earlier, "merged_into": other.pk})
        Product.objects.filter(merged_into=other).exclude(pk__in=others).update(merged_into=keeper)
        for image in ProductImage.objects.filter(product=other).order_by("id"):
            if image.sha256 in keeper_shas:
                continue  # the keeper has this very file; the row stays with the merged product
            role = image.role
            if role == ImageRole.PRIMARY:
                role = ImageRole.ALTERNATE if keeper_has_primary else ImageRole.PRIMARY
                keeper_has_primary = True
            changes["images"].append({"id": image.pk, "product": other.pk, "role": image.role})
            ProductImage.objects.filter(pk=image.pk).update(product=keeper, role=role)
            keeper_shas.add(image.sha256)
            moved_images.append(image.pk)
        for variant in Variant.objects.select_for_update().filter(product=other).order_by("id"):
            target = keeper_variants.get(variant.size.lower())
            if target is None:
                changes["variants_moved"].append({"id": variant.pk, "product": other.pk})
                Variant.objects.filter(pk=variant.pk).update(product=keeper)
                keeper_variants[variant.size.lower()] = variant
                continue
            arrivals = list(Arrival.objects.filter(variant=variant).values_list("pk", flat=True))
            changes["arrivals"] += [{"id": a, "variant": variant.pk} for a in arrivals]
            Arrival.objects.filter(pk__in=arrivals).update(variant=target)
            if variant.stock_quantity:
                quantity = variant.stock_quantity
                changes["stock_moved"].append({"from": variant.pk, "to": target.pk, "quantity": quantity})
                variant_adjust_stock(variant_id=variant.pk, delta=-quantity)
                variant_adjust_stock(variant_id=target.pk, delta=quantity)
        for look in Look.objects.filter(products=other):
            keeper_added = not look.products.filter(pk=keeper.pk).exists()
            changes["looks"].append({"id": look.pk, "product": other.pk, "keeper_added": keeper_added})
            look.products.remove(other)
            if keeper_added:
                look.products.add(keeper)
        for snapshot in Snapshot.objects.filter(product=other).values_list("pk", flat=True):
            changes["snapshots"].append({"id": snapshot, "product": other.pk})
        Snapshot.objects.filter(product=other).update(product=keeper)
    Product.objects.filter(pk__in=others).update(status=ProductStatus.MERGED, merged_into=keeper,
                                                 updated_at=timezone.now())
    _embeddings_follow(moved_images)
    record = MergeRecord.objects.create(keeper=keeper, changes=changes, finding=finding, created_by=user)
    record.merged.set(others)
    return record


def _embeddings_follow(image_ids: list[int]) -> None:
    if image_ids:
        from matching import search

        search.embeddings_follow_images(image_ids=image_ids)


@transaction.atomic
def merge_undo(*, record: MergeRecord, user: AbstractBaseUser | None = None) -> MergeRecord:
    """Put everything a merge moved back where it was. Refused when stock that came from a merged product
    has left the keeper since (undoing would make it negative), or when the products changed status."""
    from warehouse.models import Arrival, Snapshot

    record = MergeRecord.objects.select_for_update().get(pk=record.pk)
    if record.state != RecordState.APPLIED:
        raise CleanupError("This merge was already undone.")
    changes = record.changes
    keeper_id = changes["keeper"]["id"]
    merged_ids = [p["id"] for p in changes["products"]]
    current = dict(Product.objects.select_for_update().filter(pk__in=merged_ids).values_list("pk", "merged_into"))
    if any(current.get(p) != keeper_id for p in merged_ids):
        raise CleanupError("Some merged products were changed since; undo by hand.")
    for entry in changes["snapshots"]:
        Snapshot.objects.filter(pk=entry["id"], product_id=keeper_id).update(product_id=entry["product"])
    for entry in changes["looks"]:
        look = Look.objects.filter(pk=entry["id"]).first()
        if look is not None:
            look.products.add(entry["product"])
            if entry["keeper_added"]:
                look.products.remove(keeper_id)
    for entry in changes["arrivals"]:
        Arrival.objects.filter(pk=entry["id"]).update(variant_id=entry["variant"])
    for entry in reversed(changes["stock_moved"]):
        try:
            with transaction.atomic():
                variant_adjust_stock(variant_id=entry["to"], delta=-entry["quantity"])
        except IntegrityError as exc:
            raise CleanupError(
                "Stock that came with the merged products has left the warehouse since; undo refused."
            ) from exc
        variant_adjust_stock(variant_id=entry["from"], delta=entry["quantity"])
    for entry in changes["variants_moved"]:
        Variant.objects.filter(pk=entry["id"]).update(product_id=entry["product"])
    image_ids = []
    for entry in changes["images"]:
        ProductImage.objects.filter(pk=entry["id"]).update(product_id=entry["product"], role=entry["role"])
        image_ids.append(entry["id"])
    for entry in changes["repointed"]:
        Product.objects.filter(pk=entry["id"], merged_into_id=keeper_id).update(merged_into_id=entry["merged_into"])
    for entry in changes["products"]:
        Product.objects.filter(pk=entry["id"]).update(
            status=entry["status"], merged_into_id=entry["merged_into"], updated_at=parse_datetime(entry["updated_at"])
        )
    Product.objects.filter(pk=keeper_id).update(updated_at=parse_datetime(changes["keeper"]["updated_at"]))
    _embeddings_follow(image_ids)
    record.state, record.undone_by, record.undone_at = RecordState.UNDONE, user, timezone.now()
    record.save(update_fields=["state", "undone_by", "undone_at"])
    if record.finding_id:
        Finding.objects.filter(pk=record.finding_id, state=FindingState.ACCEPTED).update(
            state=FindingState.OPEN, decided_by=None, decided_at=None)
    return record


# -- relabel -----------------------------------------------------------------------------------------

@transaction.atomic
def product_relabel(*, product: Product, field: str, value: int | str | None, user: AbstractBaseUser | None = None,
                    finding: Finding | None = None) -> RelabelRecord:
    """Set a product's category (an id) or gender, recording the old value for ``relabel_revert``."""
    product = Product.objects.select_for_update().select_related("category").get(pk=product.pk)
    if field == "category":
        category = Category.objects.filter(pk=value).first()
        if category is None:
            raise CleanupError("The suggested category no longer exists.")
        old, new = str(product.category_id), str(category.pk)
        product.category = category
    elif field == "gender":
        from catalog.models import Gender

        if value not in Gender.values:
            raise CleanupError(f"Unknown gender {value!r}.")
        old, new = product.gender, str(value)
        product.gender = value
    else:
        raise CleanupError(f"Cannot relabel {field!r}; only category and gender.")
    product.save(update_fields=[field, "updated_at"])
    return RelabelRecord.objects.create(product=product, field=field, old_value=old, new_value=new, finding=finding,
                                        created_by=user)


@transaction.atomic
def relabel_revert(*, record: RelabelRecord, user: AbstractBaseUser | None = None) -> RelabelRecord:
    record = RelabelRecord.objects.select_for_update().get(pk=record.pk)
    if record.state != RecordState.APPLIED:
        raise CleanupError("This relabel was already reverted.")
    product = Product.objects.select_for_update().get(pk=record.product_id)
    current = str(product.category_id) if record.field == "category" else product.gender
    if current != record.new_value:
        raise CleanupError(f"{product.sku}'s {record.field} changed again since; revert by hand.")
    if record.field == "category":
        product.category_id = int(record.old_value)
    else:
        product.gender = record.old_value
    product.save(update_fields=[record.field, "updated_at"])
    record.state, record.undone_by, record.undone_at = RecordState.UNDONE, user, timezone.now()
    record.save(update_fields=["state", "undone_by", "undone_at"])
    if record.finding_id:
        Finding.objects.filter(pk=record.finding_id, state=FindingState.ACCEPTED).update(
            state=FindingState.OPEN, decided_by=None, decided_at=None)
    return record


# -- scan runs ---------------------------------------------------------------------------------------

def scan_run_start(*, product_ids: Iterable[int] | None = None, user: AbstractBaseUser | None = None) -> ScanRun:
    """Queue a scan of the whole catalogue (or of ``product_ids``) for a Celery worker."""
    ids = sorted({int(p) for p in product_ids}) if product_ids is not None else []
    run = ScanRun.objects.create(incremental=product_ids is not None, product_ids=ids, requested_by=user)
    from .tasks import run_cleanup_scan

    transaction.on_commit(lambda: run_cleanup_scan.delay(run.pk))
    return run


def _progress(run_id: int, **fields) -> None:
    ScanRun.objects.filter(pk=run_id).update(**fields)


def _failed(run_id: int, exc: Exception, **fields) -> None:
    _progress(run_id, state=ScanState.FAILED, error=f"{exc.__class__.__name__}: {exc}"[:2000],
              finished_at=timezone.now(), **fields)


def scan_run_execute(*, scan_run_id: int, kinds: Sequence[str] = SCAN_KINDS, inline: bool = False) -> ScanRun:
    """Run the scans of one ``ScanRun``: signatures first (progress per photo), then duplicates, labels, bad
    photos and gaps from what is stored.

    A full scan's photo checks (ORB on the visual duplicate candidates, the slow part at scale) are queued
    as ``ScanChunk`` tasks after everything else is done; the last chunk clusters the duplicates and marks
    the run done (``scan_chunk_execute``). Progress counts each photo check. ``inline``: run the chunks
    here instead (a throwaway database, whose ids mean nothing to the workers)."""
    from matching.services import embedding_model_active

    run = ScanRun.objects.get(pk=scan_run_id)
    if run.state in (ScanState.DONE, ScanState.FAILED):
        return run
    scope = run.product_ids if run.incremental else None
    todo = scans.images_needing_signature(product_ids=scope)
    if not inline and len(todo) > int(cleanup_setting("SIGNATURE_CHUNK")):
        return _signatures_share_out(run=run, image_ids=todo)
    total = len(todo) + len(kinds)
    _progress(run.pk, state=ScanState.RUNNING, started_at=timezone.now(), total=total, done=0, step="photos")
    counts: dict = {}
    seconds: dict[str, float] = {}
    chunks: list[int] = []
    try:
        started = time.perf_counter()
        every = max(1, len(todo) // 100)
        scans.signatures_compute(image_ids=todo, progress=lambda n: n % every == 0 and _progress(run.pk, done=n))
        seconds["signatures"] = round(time.perf_counter() - started, 2)
        model_id = embedding_model_active().pk
        done = len(todo)
        table = None
        if scope is None and {"duplicates", "labels"} & set(kinds):
            # one exact catalogue-wide neighbour pass serves both (an index walk per image would cost minutes)
            _progress(run.pk, step="neighbours")
            started = time.perf_counter()
            table = scans.catalogue_neighbours(model_id=model_id)
            seconds["neighbours"] = round(time.perf_counter() - started, 2)
        for kind in kinds:
            _progress(run.pk, step=kind, done=done)
            started = time.perf_counter()
            stats: dict = {}
            if kind == "duplicates" and scope is None:
                evidence, checks = scans.catalogue_duplicate_evidence(
                    model_id=model_id, neighbours=table.neighbours() if table else None, stats=stats)
                chunks = _chunks_create(run=run, evidence=evidence, checks=checks)
                if chunks:  # found and synced by the last chunk
                    total += len(checks)
                    seconds[kind] = round(time.perf_counter() - started, 2)
                    counts[kind] = stats
                    done += 1
                    continue
                found = scans.duplicate_clusters(evidence)
                finding_kind = FindingKind.DUPLICATE
            elif kind == "duplicates":
                found = scans.duplicate_findings(model_id=model_id, product_ids=scope, stats=stats)
                finding_kind = FindingKind.DUPLICATE
            elif kind == "labels":
                found = scans.label_findings(
                    model_id=model_id, product_ids=scope,
                    neighbours=table.neighbours(k=int(cleanup_setting("LABEL_NEIGHBOURS"))) if table else None,
                )
                finding_kind = FindingKind.WRONG_LABEL
            elif kind == "photos":
                found = scans.photo_findings(product_ids=scope)
                finding_kind = FindingKind.BAD_PHOTO
            elif kind == "gaps":
                found = scans.gap_findings(model_id=model_id, product_ids=scope)
                finding_kind = FindingKind.GAP
            else:
                raise CleanupError(f"Unknown scan {kind!r}; use {', '.join(SCAN_KINDS)}.")
            stale_scope = scope
            if scope is not None and kind == "duplicates":
                # a cluster rebuilt around a changed product replaces older clusters of its members
                stale_scope = sorted(set(scope) | {p for f in found for p in f.product_ids})
            synced = findings_sync(kind=finding_kind, found=found, product_ids=stale_scope)
            seconds[kind] = round(time.perf_counter() - started, 2)
            counts[kind] = {"found": len(found), **synced, **stats}
            done += 1
    except Exception as exc:
        _failed(run.pk, exc, counts={**counts, "seconds": seconds})
        raise
    if chunks:
        _progress(run.pk, step=PHOTO_CHECKS_STEP, done=done, total=total, counts={**counts, "seconds": seconds})
        from .tasks import check_scan_photos

        for chunk_id in chunks:
            if inline:
                scan_chunk_execute(chunk_id=chunk_id)
            else:
                check_scan_photos.delay(chunk_id)
        return ScanRun.objects.get(pk=run.pk)
    _progress(run.pk, state=ScanState.DONE, done=total, step="", finished_at=timezone.now(),
              counts={**counts, "seconds": seconds})
    return ScanRun.objects.get(pk=run.pk)


PHOTO_CHECKS_STEP = "photo checks"
SIGNATURES_STEP = "signatures"


def _signatures_share_out(*, run: ScanRun, image_ids: Sequence[int]) -> ScanRun:
    """Too many photos to decode within one task's time limit (a first scan of a large catalogue): queue them
    in chunks for the workers; the last chunk done queues the run again for the rest of the scan."""
    from .tasks import compute_scan_signatures

    size = max(1, int(cleanup_setting("SIGNATURE_CHUNK")))
    _progress(run.pk, state=ScanState.RUNNING, started_at=run.started_at or timezone.now(), total=len(image_ids),
              done=0, step=SIGNATURES_STEP)
    for start in range(0, len(image_ids), size):
        compute_scan_signatures.delay(run.pk, list(image_ids[start : start + size]))
    return ScanRun.objects.get(pk=run.pk)


def scan_signatures_execute(*, scan_run_id: int, image_ids: Sequence[int]) -> str:
    """One chunk of a first scan's signatures. A redelivered chunk skips the photos already done; the chunk
    that brings the count to the total (only one can claim it) hands the run back to ``run_cleanup_scan``,
    which computes whatever is still missing itself, so a chunk counted twice costs time, never a photo."""
    run = ScanRun.objects.filter(pk=scan_run_id, state=ScanState.RUNNING, step=SIGNATURES_STEP).first()
    if run is None:
        return "nothing to do"
    todo = set(scans.images_needing_signature(product_ids=run.product_ids if run.incremental else None))
    try:
        scans.signatures_compute(image_ids=[i for i in image_ids if i in todo])
    except Exception as exc:
        _failed(run.pk, exc)
        raise
    ScanRun.objects.filter(pk=run.pk).update(done=F("done") + len(image_ids))
    if not ScanRun.objects.filter(pk=run.pk, state=ScanState.RUNNING, step=SIGNATURES_STEP,
                                  done__gte=F("total")).update(state=ScanState.QUEUED, step=""):
        return "computed"
    from .tasks import run_cleanup_scan

    run_cleanup_scan.delay(run.pk)
    return "computed, scan queued"


def _evidence_row(e: scans.Evidence) -> list:
    return [e.product_a, e.product_b, e.how, e.score, e.image_a, e.image_b]


def _chunks_create(*, run: ScanRun, evidence: Sequence[scans.Evidence],
                   checks: Sequence[scans.PhotoCheck]) -> list[int]:
    """Store a full scan's photo checks in chunks (connected checks together, so a worker decodes each photo
    once) beside the evidence already found; nothing when there is nothing to check."""
    if not checks:
        return []
    from .duplicates import in_connected_order

    size = max(1, int(cleanup_setting("PHOTO_CHECK_CHUNK")))
    ordered = in_connected_order(checks, key=lambda c: (c.image_a, c.image_b))
    ScanChunk.objects.filter(run=run).delete()  # a re-run after a crash starts over
    ScanChunk.objects.create(run=run, evidence=[_evidence_row(e) for e in evidence], done=True)
    created = ScanChunk.objects.bulk_create([
        ScanChunk(run=run, checks=[[c.product_a, c.product_b, c.image_a, c.image_b, c.similarity]
                                   for c in ordered[start : start + size]])
        for start in range(0, len(ordered), size)
    ])
    return [chunk.pk for chunk in created]


def scan_chunk_execute(*, chunk_id: int) -> str:
    """Run one chunk of a scan's photo checks; the last chunk to finish clusters the duplicates and closes
    the run (only one can claim that step)."""
    chunk = ScanChunk.objects.select_related("run").filter(pk=chunk_id).first()
    if chunk is None or chunk.done or chunk.run.state != ScanState.RUNNING:
        return "nothing to do"
    run_id = chunk.run_id
    started = time.perf_counter()
    reported = 0

    def progress(n: int) -> None:
        nonlocal reported
        if n - reported >= 100:
            ScanRun.objects.filter(pk=run_id).update(done=F("done") + (n - reported))
            reported = n

    try:
        checks = [scans.PhotoCheck(*row) for row in chunk.checks]
        confirmed = scans.photo_checks_run(checks, cache=scans.feature_cache(), progress=progress)
        ScanChunk.objects.filter(pk=chunk.pk).update(evidence=[_evidence_row(e) for e in confirmed], done=True,
                                                     seconds=round(time.perf_counter() - started, 2))
        ScanRun.objects.filter(pk=run_id).update(done=F("done") + (len(checks) - reported))
        if ScanChunk.objects.filter(run_id=run_id, done=False).exists():
            return "checked"
        if not ScanRun.objects.filter(pk=run_id, state=ScanState.RUNNING, step=PHOTO_CHECKS_STEP).update(
                step="duplicates"):
            return "checked"  # another chunk is finishing the run
        _duplicates_finish(run_id)
    except Exception as exc:
        _failed(run_id, exc)
        raise
    return "finished"


def _duplicates_finish(run_id: int) -> None:
    started = time.perf_counter()
    chunks = list(ScanChunk.objects.filter(run_id=run_id))
    evidence = [scans.Evidence(*row) for chunk in chunks for row in chunk.evidence]
    found = scans.duplicate_clusters(evidence)
    synced = findings_sync(kind=FindingKind.DUPLICATE, found=found)
    run = ScanRun.objects.get(pk=run_id)
    counts = dict(run.counts)
    seconds = dict(counts.get("seconds", {}))
    first = min(chunk.created_at for chunk in chunks)
    seconds["photo_checks"] = round((timezone.now() - first).total_seconds(), 2)  # wall clock, all workers
    seconds["photo_checks_cpu"] = round(sum(chunk.seconds or 0.0 for chunk in chunks), 2)
    seconds["duplicates"] = round(seconds.get("duplicates", 0.0) + time.perf_counter() - started, 2)
    counts["duplicates"] = {**counts.get("duplicates", {}), "found": len(found), **synced,
                            "photo_check_chunks": len(chunks) - 1,
                            "cropped": sum(e.how == "cropped" for e in evidence)}
    ScanChunk.objects.filter(run_id=run_id).delete()
    _progress(run_id, state=ScanState.DONE, done=run.total, step="", finished_at=timezone.now(),
              counts={**counts, "seconds": seconds})


_pending = threading.local()


def scan_after_commit(product_ids: Iterable[int]) -> None:
    """Queue one incremental scan for the products changed in the current transaction (after it commits)."""
    if not cleanup_setting("AUTO_SCAN"):
        return
    pending: set[int] = getattr(_pending, "ids", None) or set()
    pending.update(int(p) for p in product_ids)
    _pending.ids = pending
    transaction.on_commit(_flush_pending)


def _flush_pending() -> None:
    ids = sorted(getattr(_pending, "ids", None) or ())
    _pending.ids = set()
    if not ids:
        return
    try:
        # Ids left over from a rolled-back transaction may name products that never came to be.
        ids = sorted(Product.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if ids:
            scan_run_start(product_ids=ids)
    except Exception:  # noqa: BLE001 - a saved photo stays saved; the next full scan catches up
        logger.exception("queueing a cleanup scan for products %s failed", ids)


def products_touching(*, image_ids: Iterable[int]) -> list[int]:
    return sorted(set(ProductImage.objects.filter(pk__in=list(image_ids)).values_list("product_id", flat=True)))


__all__ = [
    "CleanupError", "finding_accept", "finding_dismiss", "findings_sync", "merge_undo", "product_relabel",
    "products_merge", "relabel_revert", "scan_after_commit", "scan_chunk_execute", "scan_run_execute",
    "scan_run_start", "scan_signatures_execute",
]
