"""New or changed catalogue photos are embedded after their transaction commits; after ``migrate`` the shipped
weights' recalibrated thresholds reach the versions still using them, and heads whose appearance embedder changed
are retrained."""
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
    recalibrated them brings their thresholds; one that changed the appearance embedder retrains the heads."""
    from django.db import connections

    from .heads import heads_follow_appearance
    from .models import ClassifierHead, EmbeddingModel
    from .services import shipped_calibration_refresh, shipped_embedder_adopt

    tables = connections[kwargs.get("using", "default")].introspection.table_names()
    # not after "migrate matching zero"
    if EmbeddingModel._meta.db_table in tables:
        shipped_embedder_adopt()
        shipped_calibration_refresh()
        if ClassifierHead._meta.db_table in tables:
            heads_follow_appearance()
