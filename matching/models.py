"""Embedding model versions and the catalogue's image vectors.

Every vector carries the ``EmbeddingModel`` that made it; searches filter on one model, so versions
never mix. ``ProductEmbedding`` repeats a few product columns (kind, gender, status, stock) so filtered
searches need no join; database triggers (migration 0003) keep them in step with the catalogue, because
queryset ``update()`` calls such as ``variant_adjust_stock`` send no signals.
"""
from __future__ import annotations

from django.db import models
from django.db.models import F, Func, Q

from catalog.models import Category, CategoryKind, Gender, Product, ProductImage, ProductStatus

from .search import VectorField, hnsw_indexes


class ModelState(models.TextChoices):
    BUILDING = "building", "Building (embedding the catalogue)"
    READY = "ready", "Ready"
    RETIRED = "retired", "Retired"


class EmbeddingModel(models.Model):
    """One embedder version: weights checksum, preprocessing, calibrated thresholds and metrics."""

    name = models.CharField(max_length=100, unique=True, help_text="backbone@checksum, e.g. efficientnet-lite0@5793…")
    embedder = models.CharField(max_length=100, default="default", help_text="Key in settings.EMBEDDERS.")
    backbone = models.CharField(max_length=100)
    weights_checksum = models.CharField(max_length=64)
    dimension = models.PositiveIntegerField()
    weights = models.CharField(
        max_length=255, blank=True, editable=False,
        help_text="Weights file of a version trained on this installation; empty: the embedder's configured weights.",
    )
    preprocessing = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Evaluation and calibration figures.")
    thresholds = models.JSONField(
        default=dict, blank=True,
        help_text='{"alpha": a, "default": {"score": s, "margin": m}, "per_kind": {kind: {...}}}; "score" is on the '
                  "open-set score top - a * mean(ranks 2-10), a = 0 when absent",
    )
    active = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=ModelState.choices, default=ModelState.BUILDING)
    progress = models.JSONField(default=dict, blank=True, help_text="Re-embedding progress: done, total, updated.")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="embeddingmodel_one_active"),
            models.CheckConstraint(condition=Q(state__in=ModelState.values), name="embeddingmodel_state_valid"),
            models.CheckConstraint(condition=~Q(active=True) | Q(state=ModelState.READY), name="embeddingmodel_active_ready"),  # noqa: E501
        ]

    def __str__(self) -> str:
        flag = " (active)" if self.active else ""
        return f"{self.name}{flag}"

    def threshold_for(self, kind: str | None, *, default_score: float, default_margin: float) -> tuple[float, float]:
        """The calibrated (score, margin) for a category kind, else the model's default, else settings."""
        table = self.thresholds or {}
        entry = (table.get("per_kind") or {}).get(kind or "") or table.get("default") or {}
        return float(entry.get("score", default_score)), float(entry.get("margin", default_margin))

    @property
    def open_set_alpha(self) -> float:
        """The alpha its thresholds were fitted with (0: the plain top score, as tables before it was recorded)."""
        return float((self.thresholds or {}).get("alpha", 0.0))


class ProductEmbedding(models.Model):
    image = models.ForeignKey(ProductImage, on_delete=models.CASCADE, related_name="embeddings")
    model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="embeddings")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="embeddings", db_index=False)
    image_sha256 = models.CharField(max_length=64, help_text="The file the vector was computed from.")
    # Denormalised filter columns (kept in sync by triggers, see module docstring).
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+", db_index=False)
    category_kind = models.CharField(max_length=20, choices=CategoryKind.choices)
    gender = models.CharField(max_length=10, choices=Gender.choices)
    status = models.CharField(max_length=10, choices=ProductStatus.choices)
    in_stock = models.BooleanField(default=False)
    # Each model's vectors at their own dimension (search.INDEXED_DIMENSIONS: which sizes have HNSW graphs).
    vector = VectorField()
    dimensions = models.GeneratedField(
        expression=Func(F("vector"), function="vector_dims", output_field=models.SmallIntegerField()),
        output_field=models.SmallIntegerField(), db_persist=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model"], name="productembedding_one_per_image_and_model"),
        ]
        indexes = [
            *hnsw_indexes(),
            models.Index(fields=["model", "product"], name="productembedding_model_prod"),
            models.Index(fields=["model", "category_kind"], name="productembedding_model_kind"),
            models.Index(fields=["model", "category"], name="productembedding_model_cat"),
            models.Index(fields=["model", "gender"], name="productembedding_model_gender"),
        ]

    def __str__(self) -> str:
        return f"{self.model_id}:{self.image_id}"


class HeadAttribute(models.TextChoices):
    GENDER = "gender", "Gender"
    KIND = "kind", "Category kind"


class ClassifierHead(models.Model):
    """One trained gender or category-kind classifier on top of one embedding model version's vectors.

    A head only reads vectors of its ``embedding_model``; when another embedder becomes active, its heads
    are simply not looked up (classification falls back to kNN voting until ``train_heads`` runs again).
    """

    name = models.CharField(max_length=150, unique=True)
    attribute = models.CharField(max_length=10, choices=HeadAttribute.choices)
    embedding_model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="heads")
    architecture = models.CharField(max_length=50, help_text='"linear" or "mlp<hidden units>"')
    labels = models.JSONField(default=list, help_text="Class names in output order.")
    input_dimension = models.PositiveIntegerField()
    appearance = models.CharField(
        max_length=150, blank=True, default="",
        help_text="Version of the appearance embedder whose vector of the same views follows the embedding in "
                  "this head's input (docs/matching.md, Classification); blank: the embedding alone.",
    )
    weights_path = models.CharField(max_length=500, help_text="Relative to STOCKMATCH_TRAINED_DIR, or absolute.")
    weights_sha256 = models.CharField(max_length=64)
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out figures of this head and its baseline.")
    training = models.JSONField(default=dict, blank=True, help_text="Config, split and data sizes.")
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["embedding_model", "attribute"], condition=Q(active=True), name="classifierhead_one_active",
            ),
            models.CheckConstraint(
                condition=Q(attribute__in=HeadAttribute.values), name="classifierhead_attribute_valid"
            ),
        ]

    def __str__(self) -> str:
        flag = " (active)" if self.active else ""
        return f"{self.name}{flag}"
