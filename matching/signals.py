"""New or changed catalogue photos are embedded after their transaction commits; after ``migrate`` the shipped
weights' recalibrated thresholds reach the versions still using them."""
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


def shipped_embedder_after_migrate(sender, **kwargs) -> None:  # noqa: ANN001
    """An upgrade that replaced the shipped weights moves the installation onto them (in the background); one that
    recalibrated them brings their thresholds."""
    from django.db import connections

    from .models import EmbeddingModel
    from .services import shipped_calibration_refresh, shipped_embedder_adopt

    using = kwargs.get("using", "default")
    # not after "migrate matching zero"
    if EmbeddingModel._meta.db_table in connections[using].introspection.table_names():
        shipped_embedder_adopt()
        shipped_calibration_refresh()
