"""A real Celery worker on Redis runs a full cleanup scan shared out in chunks (signatures, then photo checks)."""
# ruff: noqa: F811 - the broker fixture imported from tests/test_intake_worker.py is redefined as an argument
from __future__ import annotations

import time

import pytest
from django.core.files.storage import default_storage
from PIL import Image, ImageFilter

from catalog.cleanup import services
from catalog.cleanup.models import Finding, FindingKind, ScanChunk, ScanRun
from catalog.models import ProductImage
from tests import celery_worker

from .test_cleanup import add_product, embed_all, jpeg, photos  # noqa: F401
from .test_intake_worker import broker  # noqa: F401


@pytest.fixture
def catalogue_media(broker, db):
    """The shared media folder, cleaned of this test's product photos afterwards."""
    yield
    for image in ProductImage.objects.all():
        default_storage.delete(image.file.name)


@pytest.mark.celery_worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_full_scan_in_signature_and_photo_check_chunks(catalogue_media, photos, settings,
                                                                          tmp_path):
    # given real photos with a cropped and a blurred copy under new SKUs, embedded, none signed yet
    settings.MATCHING = {**settings.MATCHING, "AUTO_EMBED": False}
    settings.CLEANUP = {"AUTO_SCAN": False}
    originals = [*photos["Tshirts"][:4], *photos["Casual Shoes"][:2]]
    for n, path in enumerate(originals):
        add_product(f"ORIG-{n}", path)
    source = Image.open(originals[0]).convert("RGB")
    w, h = source.size
    add_product("CROP-0", jpeg(source.crop((18, 12, w - 14, h - 20)).resize((w, h))))
    add_product("BLUR-1", jpeg(Image.open(originals[1]).convert("RGB").filter(ImageFilter.GaussianBlur(6))))
    embed_all()

    # when a manager starts a full scan and a worker shares it out in chunks of three photos and one check
    log = tmp_path / "worker.log"
    chunks = {"STOCKMATCH_CLEANUP_SIGNATURE_CHUNK": "3", "STOCKMATCH_CLEANUP_PHOTO_CHECK_CHUNK": "1"}
    with celery_worker.running_worker(log, env=chunks):
        run = services.scan_run_start()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.state in ("done", "failed"):
                break
            time.sleep(1)

    # then the run went through the signature chunks and the photo checks, and found both mistakes
    output = log.read_text()
    assert run.state == "done", (run.state, run.error, output[-3000:])
    assert output.count("catalog.cleanup.compute_signatures[") >= 3
    assert "catalog.cleanup.check_photos[" in output
    assert run.counts["duplicates"]["photo_check_chunks"] >= 1 and not ScanChunk.objects.exists()
    clusters = [sorted(f.products.values_list("sku", flat=True)) for f in Finding.objects.filter(
        kind=FindingKind.DUPLICATE)]
    assert ["CROP-0", "ORIG-0"] in clusters
    assert "BLUR-1" in set(Finding.objects.filter(kind=FindingKind.BAD_PHOTO).values_list("products__sku", flat=True))
    assert ScanRun.objects.count() == 1
