"""Incremental cleanup scans: a saved or deleted catalogue photo queues a scan of its product.

``matching.signals`` is imported first so its receiver (embedding the new photo after commit) is
connected, and so runs, before this one: the scan then sees the photo's vector.
"""
from __future__ import annotations

from django.db.models.signals import post_delete, post_save

import matching.signals  # noqa: F401 - connection order, see the module docstring
from catalog.models import ProductImage

from . import tasks  # noqa: F401 - registers the Celery task in every process that loads the app


def product_image_changed(sender: type[ProductImage], instance: ProductImage, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    from .services import scan_after_commit

    scan_after_commit([instance.product_id])


post_save.connect(product_image_changed, sender=ProductImage, dispatch_uid="cleanup_scan_saved_product_image")
post_delete.connect(product_image_changed, sender=ProductImage, dispatch_uid="cleanup_scan_deleted_product_image")
