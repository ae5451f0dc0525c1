"""Fixtures and builders shared by the intake tests (imported by tests/test_intake_*.py; holds no tests)."""
from __future__ import annotations

import csv
import io
import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from PIL import Image
from rest_framework.test import APIClient

from catalog.models import Product
from catalog.services import (
    category_for_text,
    gender_for_text,
    kind_for_text,
    product_create,
    product_image_add,
)
from tests import factories
from warehouse.roles import WAREHOUSE

SNAPSHOTS_URL = "/api/v1/intake/snapshots/"
PASSWORD = "intake-test-pw-4821"
CATALOGUE_SIZE = 12


def make_worker(username: str = "worker") -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    user.groups.add(Group.objects.get(name=WAREHOUSE))
    return user


@pytest.fixture
def worker(db) -> User:
    return make_worker()


@pytest.fixture
def api(worker) -> APIClient:
    client = APIClient()
    client.force_login(worker)
    return client


def phone_photo_paths(shared_data: Path, n: int) -> list[Path]:
    with open(shared_data / "phone-photos" / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    return [shared_data / "phone-photos" / row["image"] for row in rows[:n]]


def phone_photo(shared_data: Path, index: int = 0) -> bytes:
    return phone_photo_paths(shared_data, index + 1)[index].read_bytes()


def catalogue_rows(shared_data: Path, n: int) -> list[dict]:
    """The first ``n`` apparel and footwear rows of the shared catalogue photos whose category we know."""
    with open(shared_data / "catalog-photos" / "labels.csv") as handle:
        known = (row for row in csv.DictReader(handle) if kind_for_text(row["article_type"]) is not None)
        return list(itertools.islice(known, n))


def build_catalogue(shared_data: Path, n: int = CATALOGUE_SIZE) -> list[Product]:
    """Real products with one studio photo each and sizes S/M/L (5 in stock), embedded for matching."""
    from matching.services import catalog_embed, embedding_model_active

    products = catalogue_products(shared_data, n)
    catalog_embed(model=embedding_model_active())
    return products


def catalogue_products(shared_data: Path, n: int, *, prefix: str = "CAT") -> list[Product]:
    """Real products with one studio photo each and sizes S/M/L (5 in stock), not embedded yet."""
    products = []
    for i, row in enumerate(catalogue_rows(shared_data, n)):
        product = product_create(
            sku=f"{prefix}-{i:03d}", name=f"{row['colour']} {row['article_type']}",
            category=category_for_text(row["article_type"]), gender=gender_for_text(row["gender"]) or "unisex",
        )
        product_image_add(product=product, data=(shared_data / "catalog-photos" / row["image"]).read_bytes(),
                          filename=Path(row["image"]).name, role="primary")
        for size in ("S", "M", "L"):
            factories.variant(product_obj=product, size=size, stock=5)
        products.append(product)
    return products


@pytest.fixture
def catalogue(db, shared_data) -> list[Product]:
    return build_catalogue(shared_data)


def on_table(product: Product, *, size: tuple[int, int] = (900, 1200)) -> bytes:
    """A phone-like photo of a catalogue item: its studio photo, turned slightly, on a grey table top."""
    rng = np.random.default_rng(product.pk)
    table = np.clip(rng.normal(180, 6, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    background = Image.fromarray(table)
    with product.images.first().file.open("rb") as handle:
        garment = Image.open(io.BytesIO(handle.read())).convert("RGB").resize((700, 700))
    garment = garment.rotate(3, fillcolor=(255, 255, 255))
    background.paste(garment, ((size[0] - 700) // 2, (size[1] - 700) // 2))
    buffer = io.BytesIO()
    background.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


@pytest.fixture
def upload(api, django_capture_on_commit_callbacks) -> Callable:
    """POST a photo to the snapshots endpoint (or ``url``), running the queued processing in process.

    The response is built before the test transaction's on-commit callbacks run, so the item as it is
    after processing is attached as ``response.item``.
    """

    def post(data: bytes, *, key: str | None = None, url: str = SNAPSHOTS_URL, name: str = "photo.jpg",
             client: APIClient | None = None, process: bool = True, **fields):
        payload = {"photo": _named(data, name), **fields}
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        if not process:
            return (client or api).post(url, payload, format="multipart", **headers)
        with django_capture_on_commit_callbacks(execute=True):
            response = (client or api).post(url, payload, format="multipart", **headers)
        if response.status_code == 202:
            response.item = (client or api).get(f"{SNAPSHOTS_URL}{response.json()['id']}/").json()
        return response

    return post


def run_at_once(action: Callable[[], object], n: int) -> list:
    """Call ``action`` in ``n`` threads released together (a race), each on its own database connection."""
    barrier, results = threading.Barrier(n), []

    def run() -> None:
        try:
            barrier.wait()
            results.append(action())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle
