"""Mirror devices, fitting-room shortlists and the colour cache used by complete-the-look.

Nothing here holds personal data: a shortlist is a set of (product, size) pairs, a short pickup code and
an expiry time, made by a device, never by a person.
"""
from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from rest_framework_api_key.models import AbstractAPIKey

from catalog.models import Product, ProductImage

PICKUP_ALPHABET = "ACDEFHJKLMNPRTUVWXY3479"  # no 0/O, 1/I, 2/Z, 5/S, 6/G, 8/B: easy to read out loud


class MirrorKey(AbstractAPIKey):
    """One mirror device's API key (hashed at rest; the key itself is shown once, when created)."""

    location = models.CharField(max_length=100, blank=True, help_text="Where the mirror hangs, e.g. store 12, floor 1.")

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "mirror device key"
        verbose_name_plural = "mirror device keys"


class ShortlistStatus(models.TextChoices):
    SENT = "sent", "Sent to the fitting room"
    DONE = "done", "Handled"


def new_pickup_code() -> str:
    return "".join(secrets.choice(PICKUP_ALPHABET) for _ in range(4))


class Shortlist(models.Model):
    """Items a shopper picked at a mirror, sent to the fitting room to be brought to them."""

    code = models.CharField(max_length=8, help_text="Shown on the mirror and the fitting-room list.")
    device = models.ForeignKey(MirrorKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="shortlists")
    status = models.CharField(max_length=8, choices=ShortlistStatus.choices, default=ShortlistStatus.SENT)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ShortlistStatus.values), name="shortlist_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Shortlist {self.code}"


class ShortlistItem(models.Model):
    shortlist = models.ForeignKey(Shortlist, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    size = models.CharField(max_length=20)

    class Meta:
        ordering = ["shortlist", "id"]
        constraints = [
            models.UniqueConstraint(fields=["shortlist", "product", "size"], name="shortlistitem_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} / {self.size}"


class ImageColour(models.Model):
    """The dominant colour of a catalogue photo's garment (HSV), cached per file for colour harmony."""

    image = models.OneToOneField(ProductImage, on_delete=models.CASCADE, primary_key=True, related_name="+")
    sha256 = models.CharField(max_length=64, help_text="The file the colour was computed from.")
    hue = models.FloatField(null=True, blank=True, help_text="Degrees 0-360; empty for neutrals (black, white, grey).")
    saturation = models.FloatField()
    value = models.FloatField()

    def __str__(self) -> str:
        return f"{self.image_id}: {self.hue if self.hue is not None else 'neutral'}"
