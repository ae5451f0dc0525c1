"""New or changed catalogue photos are embedded after their transaction commits."""
from __future__ import annotations

import logging

from django.db.models.signals import post_save
from django.dispatch import receiver

from catalog.models import ProductImage

from . import conf

logger = logging.getLogger(__name__)


@receiver(post_save, sender=ProductImage, dispatch_uid="matching_embed_new_product_image")
def product_image_saved(sender, instance: ProductImage, raw: bool = False, **kwargs) -> None:  # noqa: ANN001
    if raw or not conf.auto_embed():
        return
    from .services import images_embed_after_commit

    images_embed_after_commit([instance.pk])
