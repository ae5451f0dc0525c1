"""Cleanup rows, registered in the catalogue app (imported at the end of ``catalog.models``).

A ``Finding`` is identified by its ``key`` (what it is about: "duplicate:12-45", "wrong_label:gender:12")
and carries a ``fingerprint`` of the data it was computed from (files, labels). A dismissed finding stays
dismissed while a scan computes the same fingerprint, and opens again when that data changes.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from catalog.models import Product, ProductImage


class ImageSignature(models.Model):
    """What the photo scan measured on one file: hashes for duplicate search and quality measurements."""

    image = models.OneToOneField(ProductImage, on_delete=models.CASCADE, related_name="signature")
    sha256 = models.CharField("SHA-256", max_length=64, help_text="The file these values were computed from.")
    phash = models.BigIntegerField(null=True, blank=True, help_text="64-bit DCT perceptual hash (signed).")
    # The pHash cut into four 16-bit bands: two photos within 3 bits of each other share at least one band,
    # so near-duplicate candidates are found by equality on indexed bands, never by comparing all pairs.
    band0 = models.IntegerField(null=True, blank=True)
    band1 = models.IntegerField(null=True, blank=True)
    band2 = models.IntegerField(null=True, blank=True)
    band3 = models.IntegerField(null=True, blank=True)
    blockmean = models.BinaryField(null=True, blank=True, help_text="256-bit block-mean hash.")
    thumb = models.BinaryField(null=True, blank=True, help_text="8x8 RGB thumbnail (colour check of hash pairs).")
    sharpness = models.FloatField(null=True, blank=True, help_text="Variance of the Laplacian over the garment.")
    brightness = models.FloatField(null=True, blank=True)
    garment_share = models.FloatField(null=True, blank=True)
    edge_share = models.FloatField(null=True, blank=True)
    flags = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, help_text="Why the file could not be read (a processing failure).")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["band0"], name="imagesig_band0"),
            models.Index(fields=["band1"], name="imagesig_band1"),
            models.Index(fields=["band2"], name="imagesig_band2"),
            models.Index(fields=["band3"], name="imagesig_band3"),
        ]

    def __str__(self) -> str:
        return f"signature of image {self.image_id}"


class FindingKind(models.TextChoices):
    DUPLICATE = "duplicate", "Duplicate products"
    WRONG_LABEL = "wrong_label", "Wrong category or gender"
    BAD_PHOTO = "bad_photo", "Bad photo"
    GAP = "gap", "Gap"


class FindingState(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    DISMISSED = "dismissed", "Dismissed"


class Finding(models.Model):
    kind = models.CharField(max_length=12, choices=FindingKind.choices)
    key = models.CharField(max_length=255, unique=True, help_text="What the finding is about (kind and subjects).")
    state = models.CharField(max_length=10, choices=FindingState.choices, default=FindingState.OPEN)
    products = models.ManyToManyField(Product, related_name="cleanup_findings", blank=True)
    images = models.ManyToManyField(ProductImage, related_name="cleanup_findings", blank=True)
    summary = models.CharField(max_length=255, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, help_text="Hash of the data the finding was computed from.")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["state", "kind", "-confidence", "-id"]
        permissions = [("decide_finding", "Can accept or dismiss cleanup findings")]
        indexes = [models.Index(fields=["state", "kind"], name="finding_state_kind")]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=FindingKind.values), name="finding_kind_valid"),
            models.CheckConstraint(condition=Q(state__in=FindingState.values), name="finding_state_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary or self.key}"


class ScanState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ScanRun(models.Model):
    """One run of the cleanup scans, over the whole catalogue or a few products; progress is done/total."""

    incremental = models.BooleanField(default=False)
    product_ids = models.JSONField(default=list, blank=True, help_text="Incremental runs: the changed products.")
    state = models.CharField(max_length=10, choices=ScanState.choices, default=ScanState.QUEUED)
    step = models.CharField(max_length=40, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="Findings per kind, seconds per scan.")
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(state__in=ScanState.values), name="scanrun_state_valid")]

    def __str__(self) -> str:
        scope = f"{len(self.product_ids)} product(s)" if self.incremental else "whole catalogue"
        return f"Scan {self.pk} ({scope}, {self.state})"


class ScanChunk(models.Model):
    """A share of a full scan's photo checks, for one Celery worker; the last chunk done finishes the run.

    ``checks`` rows: [product_a, product_b, image_a, image_b, similarity]; ``evidence`` rows: [product_a,
    product_b, how, score, image_a, image_b] (what the chunk confirmed; the evidence found without photo
    checks travels in an extra chunk created done)."""

    run = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="chunks")
    checks = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(default=list, blank=True)
    done = models.BooleanField(default=False)
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Scan {self.run_id} chunk {self.pk} ({len(self.checks)} photo checks)"


class RecordState(models.TextChoices):
    APPLIED = "applied", "Applied"
    UNDONE = "undone", "Undone"


class MergeRecord(models.Model):
    """Everything a merge changed, so that undoing it restores the exact prior state."""

    keeper = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="merges_kept")
    merged = models.ManyToManyField(Product, related_name="merges_absorbed")
    changes = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=RecordState.choices, default=RecordState.APPLIED)
    finding = models.ForeignKey(Finding, null=True, blank=True, on_delete=models.SET_NULL, related_name="merges")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("undo_merge", "Can undo a product merge")]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=RecordState.values), name="mergerecord_state_valid"),
        ]

    def __str__(self) -> str:
        return f"Merge {self.pk} into {self.keeper.sku} ({self.state})"


class RelabelRecord(models.Model):
    """A category or gender change made by cleanup, with the old value to revert to."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="relabels")
    field = models.CharField(max_length=10, choices=[("category", "Category"), ("gender", "Gender")])
    old_value = models.CharField(max_length=100)
    new_value = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=RecordState.choices, default=RecordState.APPLIED)
    finding = models.ForeignKey(Finding, null=True, blank=True, on_delete=models.SET_NULL, related_name="relabels")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("revert_relabel", "Can revert a cleanup relabel")]
        constraints = [
            models.CheckConstraint(condition=Q(field__in=["category", "gender"]), name="relabelrecord_field_valid"),
            models.CheckConstraint(condition=Q(state__in=RecordState.values), name="relabelrecord_state_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku}: {self.field} {self.old_value} → {self.new_value}"
