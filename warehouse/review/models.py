"""Review decisions stored as labelled pairs (query snapshot ↔ right product), and the queue's admin entry.

Imported by ``warehouse.models`` so that Django registers them in the ``warehouse`` app.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from warehouse.models import Snapshot


class ReviewDecision(models.TextChoices):
    ACCEPT = "accept", "Accepted"
    REASSIGN = "reassign", "Reassigned"
    MERGE = "merge", "Draft merged into a product"
    COMPLETE = "complete", "Draft completed"
    REJECT = "reject", "Rejected"


class LabelledPair(models.Model):
    """A catalogue manager's verdict on one item (a group head snapshot): the training data of the matcher.

    ``product`` is the right product (empty for a rejection), ``negative_product_ids`` the candidates it
    is not, ``mask`` a corrected segmentation mask when there is one. The worker's own confirmations are
    labelled pairs too; ``warehouse.review.selectors.labelled_pairs()`` reads both.
    """

    snapshot = models.OneToOneField(Snapshot, on_delete=models.CASCADE, related_name="labelled_pair")
    decision = models.CharField(max_length=10, choices=ReviewDecision.choices)
    product = models.ForeignKey(
        "catalog.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="labelled_pairs",
    )
    worker_product = models.ForeignKey(
        "catalog.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="What the worker had chosen (confirmed product or draft) when the item was reviewed.",
    )
    negative_product_ids = models.JSONField(default=list, blank=True, help_text="Products this item is not.")
    mask = models.CharField(max_length=255, blank=True, help_text="Storage name of a corrected garment mask.")
    reason = models.CharField(max_length=20, blank=True, help_text="Why the item was in the queue.")
    note = models.TextField(blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(decision__in=ReviewDecision.values), name="labelledpair_decision_valid"),
            models.CheckConstraint(
                condition=Q(decision="reject") | Q(product__isnull=False), name="labelledpair_product_unless_rejected",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.snapshot_id} → {self.product_id or '—'} ({self.decision})"


class ReviewItem(Snapshot):
    """The review queue's entry in the admin (a proxy: the rows are snapshots)."""

    class Meta:
        proxy = True
        verbose_name = "review queue item"
        verbose_name_plural = "review queue"
