"""Celery tasks: take an id, re-fetch, call a service."""
from __future__ import annotations

from typing import TYPE_CHECKING

from celery import shared_task

if TYPE_CHECKING:
    from celery import Task

EMBEDDING_WAIT_SECONDS = 30
EMBEDDING_WAITS = 5


@shared_task(bind=True, name="catalog.cleanup.run_scan", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def run_cleanup_scan(self: Task, scan_run_id: int, waited: int = 0) -> str:
    """Run a queued ``ScanRun``. An incremental run whose new photos are not embedded yet (the embedding
    task was queued beside it) waits for them a few times first, so the label and look scans see them."""
    from .models import ScanRun, ScanState
    from .services import scan_run_execute

    run = ScanRun.objects.filter(pk=scan_run_id).first()
    if run is None or run.state != ScanState.QUEUED:
        return "nothing to do"
    if run.incremental and not self.request.is_eager and waited < EMBEDDING_WAITS:
        from catalog.models import ProductImage
        from matching.services import images_needing_embedding

        image_ids = list(ProductImage.objects.filter(product_id__in=run.product_ids).values_list("pk", flat=True))
        if images_needing_embedding(image_ids=image_ids):
            run_cleanup_scan.apply_async((scan_run_id, waited + 1), countdown=EMBEDDING_WAIT_SECONDS)
            return "waiting for embeddings"
    run = scan_run_execute(scan_run_id=scan_run_id)
    return run.state


@shared_task(name="catalog.cleanup.check_photos", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def check_scan_photos(chunk_id: int) -> str:
    """One chunk of a full scan's photo checks (several workers share a scan); the last one closes the run."""
    from .services import scan_chunk_execute

    return scan_chunk_execute(chunk_id=chunk_id)


@shared_task(name="catalog.cleanup.compute_signatures", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def compute_scan_signatures(scan_run_id: int, image_ids: list[int]) -> str:
    """One chunk of a large first scan's photo signatures; the last chunk queues the rest of the scan."""
    from .services import scan_signatures_execute

    return scan_signatures_execute(scan_run_id=scan_run_id, image_ids=image_ids)
