"""Warehouse intake: phone snapshots of arriving garments and the stock arrivals they become.

A ``Snapshot`` keeps the worker's original photo exactly as uploaded (stored before any processing),
what segmentation and matching made of it, and the worker's decision. Its ``status`` only moves along
``SNAPSHOT_TRANSITIONS`` (checked in ``warehouse.services``), and every move is appended to ``events``,
so each state can be explained and, where it makes sense, reversed (an arrival undone, a discarded
photo restored). A confirmed snapshot keeps its ``product``: the snapshot ↔ product pair is the
training signal for the matcher.

Several photos of one item (front, back, label) form a group: the first photo is the group's head,
the others point at it with ``group_head`` and are matched together with it as one query.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q


class SnapshotStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    MATCHED = "matched", "Matched"
    FAILED = "failed", "Failed"
    CONFIRMED = "confirmed", "Confirmed"
    NEW = "new", "Not in catalogue"
    DISCARDED = "discarded", "Discarded"


S = SnapshotStatus
SNAPSHOT_TRANSITIONS: dict[str, frozenset[str]] = {
    S.RECEIVED: frozenset({S.PROCESSING, S.FAILED, S.DISCARDED}),
    # back to RECEIVED: a transient error, a stale run picked up again, or new hints / photos arrived
    S.PROCESSING: frozenset({S.MATCHED, S.FAILED, S.RECEIVED, S.DISCARDED}),
    S.MATCHED: frozenset({S.RECEIVED, S.CONFIRMED, S.NEW, S.DISCARDED}),
    S.FAILED: frozenset({S.RECEIVED, S.CONFIRMED, S.NEW, S.DISCARDED}),
    S.CONFIRMED: frozenset({S.CONFIRMED, S.MATCHED}),  # another size of the same item; every arrival undone
    S.NEW: frozenset({S.MATCHED}),  # "not in catalogue" taken back
    S.DISCARDED: frozenset({S.RECEIVED}),  # restored
}
# Statuses in which a snapshot still waits for the machine.
PENDING_STATUSES = frozenset({S.RECEIVED, S.PROCESSING})
# Statuses in which the worker has decided; processing never overwrites them.
DECIDED_STATUSES = frozenset({S.CONFIRMED, S.NEW, S.DISCARDED})


class PhotoRole(models.TextChoices):
    FRONT = "front", "Front"
    BACK = "back", "Back"
    LABEL = "label", "Label"
    DETAIL = "detail", "Detail"


class ConfirmSource(models.TextChoices):
    """How the worker found the product they confirmed (kept in the snapshot's events)."""

    CANDIDATES = "candidates", "One of the matcher's candidates"
    SEARCH = "search", "Searched by SKU, name or barcode (recognition failed)"


def _snapshot_path(kind: str, instance: Snapshot, filename: str) -> str:
    dot = filename.rfind(".")
    suffix = filename[dot:].lower() if dot != -1 else ".jpg"
    day = (instance.created_at or _now()).strftime("%Y/%m/%d")
    return f"snapshots/{day}/{kind}/{uuid.uuid4().hex}{suffix}"


def _now() -> datetime:
    from django.utils import timezone

    return timezone.now()


def snapshot_original_path(instance: Snapshot, filename: str) -> str:
    return _snapshot_path("original", instance, filename)


def snapshot_preview_path(instance: Snapshot, filename: str) -> str:
    return _snapshot_path("preview", instance, filename)


def snapshot_cutout_path(instance: Snapshot, filename: str) -> str:
    return _snapshot_path("cutout", instance, filename)


def snapshot_mask_path(instance: Snapshot, filename: str) -> str:
    return _snapshot_path("mask", instance, filename)


class Snapshot(models.Model):
    """One phone photo of an arriving item and everything the system and the worker made of it."""

    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="snapshots")
    idempotency_key = models.CharField(max_length=100, help_text="Client-chosen; the same key is the same upload.")
    status = models.CharField(max_length=12, choices=SnapshotStatus.choices, default=SnapshotStatus.RECEIVED)
    group_head = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="group_photos",
        help_text="The item's first photo; other photos of the same item (back, label) point at it.",
    )
    photo_role = models.CharField(max_length=10, choices=PhotoRole.choices, default=PhotoRole.FRONT)

    original = models.FileField(upload_to=snapshot_original_path, max_length=255, help_text="Bytes as uploaded.")
    original_sha256 = models.CharField("SHA-256", max_length=64)
    original_format = models.CharField(max_length=10)
    original_bytes = models.PositiveIntegerField()
    width = models.PositiveIntegerField(help_text="Upright width (EXIF orientation applied); hints use it.")
    height = models.PositiveIntegerField()
    preview = models.FileField(upload_to=snapshot_preview_path, max_length=255, blank=True, help_text="Upright JPEG")
    cutout = models.FileField(upload_to=snapshot_cutout_path, max_length=255, blank=True)
    mask = models.FileField(upload_to=snapshot_mask_path, max_length=255, blank=True)

    hints = models.JSONField(default=dict, blank=True, help_text="Segmentation hints: rect, fg and bg strokes.")
    candidates = models.JSONField(default=list, blank=True, help_text="Ranked products with scores.")
    decision = models.JSONField(default=dict, blank=True, help_text="The matcher's verdict.")
    timings = models.JSONField(default=dict, blank=True, help_text="Milliseconds per stage.")
    model_version = models.CharField(max_length=100, blank=True)
    segmenter_version = models.CharField(max_length=120, blank=True, help_text="Segmenter version that made the mask.")
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Processing runs started.")
    events = models.JSONField(default=list, blank=True, help_text="Every status change: from, to, at, by, note.")

    product = models.ForeignKey(
        "catalog.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="snapshots",
        help_text="The confirmed product (or the draft made for it): the training pair.",
    )
    processing_started_at = models.DateTimeField(
        null=True, blank=True, help_text="Start of the current (or last) run; a run's writes must still match it."
    )
    lease_expires_at = models.DateTimeField(
        null=True, blank=True,
        help_text="The running worker renews this while it works; once passed, its run is dead and may be taken over.",
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["uploaded_by", "idempotency_key"], name="snapshot_unique_key_per_user"),
            models.CheckConstraint(condition=Q(status__in=SnapshotStatus.values), name="snapshot_status_valid"),
            models.CheckConstraint(condition=Q(photo_role__in=PhotoRole.values), name="snapshot_photo_role_valid"),
            models.CheckConstraint(condition=~Q(group_head=models.F("id")), name="snapshot_not_own_group_head"),
            models.CheckConstraint(condition=~Q(idempotency_key=""), name="snapshot_key_not_empty"),
        ]
        indexes = [
            models.Index(fields=["uploaded_by", "status", "-created_at"]),
            models.Index(fields=["status", "lease_expires_at"], name="snapshot_status_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"Snapshot {self.pk} ({self.status})"

    @property
    def is_group_head(self) -> bool:
        return self.group_head_id is None

    def lease_expired(self, now: datetime) -> bool:
        """Processing, but its worker stopped renewing the claim (it died): another run may take over."""
        return self.status == SnapshotStatus.PROCESSING and (
            self.lease_expires_at is None or self.lease_expires_at <= now
        )

    def can_become(self, status: str) -> bool:
        return status in SNAPSHOT_TRANSITIONS.get(self.status, frozenset())


class Arrival(models.Model):
    """Stock that arrived: ``quantity`` of ``variant`` put in ``bin_location``. Undone, never deleted."""

    variant = models.ForeignKey("catalog.Variant", on_delete=models.PROTECT, related_name="arrivals")
    quantity = models.PositiveIntegerField()
    bin_location = models.CharField(max_length=50, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="arrivals")
    snapshot = models.ForeignKey(Snapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="arrivals")
    idempotency_key = models.CharField(
        max_length=100, blank=True, help_text="Client-chosen; a resent confirm is one arrival."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="arrival_quantity_positive"),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"], condition=~Q(idempotency_key=""), name="arrival_unique_key_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"+{self.quantity} {self.variant} @ {self.bin_location or '—'}"

from .review.models import LabelledPair, ReviewDecision, ReviewItem  # noqa: E402,F401 - registered in this app
