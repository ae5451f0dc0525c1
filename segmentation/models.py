"""Segmentation training examples and segmenter model versions."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ExampleSource(models.TextChoices):
    INTAKE = "intake", "Intake (confirmed cut-out)"
    CORRECTION = "correction", "Worker correction"
    CATALOG = "catalog", "Catalogue photo on plain background"
    COMPOSITE = "composite", "Composite"
    CCP = "ccp", "Clothing Co-Parsing"


class ExampleSplit(models.TextChoices):
    TRAIN = "train", "Train"
    VAL = "val", "Validation"


class SegmentationExample(models.Model):
    """A photo and its garment mask (PNG, 255 = garment) kept for training the segmenter."""

    image = models.ImageField(upload_to="segmentation/examples/images/")
    mask = models.ImageField(upload_to="segmentation/examples/masks/")
    source = models.CharField(max_length=20, choices=ExampleSource.choices)
    split = models.CharField(max_length=5, choices=ExampleSplit.choices, default=ExampleSplit.TRAIN)
    kind = models.CharField(max_length=20, blank=True, help_text="Garment kind of the mask when known.")
    origin = models.CharField(
        max_length=100, blank=True, help_text="Where it came from (e.g. snapshot:42); one example per origin."
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["split", "source"])]
        constraints = [
            models.CheckConstraint(condition=Q(source__in=ExampleSource.values), name="segexample_source_valid"),
            models.CheckConstraint(condition=Q(split__in=ExampleSplit.values), name="segexample_split_valid"),
            models.UniqueConstraint(fields=["origin"], condition=~Q(origin=""), name="segexample_unique_origin"),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.split} #{self.pk}"


class SegmenterModel(models.Model):
    """A trained segmenter version: its weights file (with checksum), configuration and validation metrics.

    At most one row is active; ``segmentation.segmenter`` serves the active one, or the weights shipped in
    ``models/segmenter/`` when no row is active."""

    name = models.CharField(max_length=120, unique=True, help_text="Version name, e.g. tiramisu_light-20261122-0100")
    architecture = models.CharField(max_length=50)
    config = models.JSONField(default=dict, help_text="Network config, classes, input size and preprocessing.")
    weights_path = models.CharField(max_length=500)
    weights_sha256 = models.CharField(max_length=64)
    metrics = models.JSONField(default=dict, blank=True)
    training_data = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="segmenter_one_active"),
        ]

    def __str__(self) -> str:
        return f"{self.name}{' (active)' if self.active else ''}"

    @property
    def val_iou(self) -> float | None:
        value = (self.metrics or {}).get("val_iou")
        return float(value) if value is not None else None
