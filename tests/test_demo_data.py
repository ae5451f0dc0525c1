"""manage.py demo_data: a small synthetic catalogue, distinct photos per product, snapshots, idempotent re-runs."""
from __future__ import annotations

import csv
import importlib.util
import io
from hashlib import sha256
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from catalog.demo.photos import jpeg, snapshot_image, studio_image
from catalog.demo.spec import ean13, product_spec
from catalog.imaging import load_image
from catalog.models import Category, CategoryKind, ImageRole, Look, Product, ProductImage, Variant

pytestmark = pytest.mark.django_db


def run_demo(*, snapshots: int = 0, workers: int = 1, mistakes: bool = False) -> str:
    out = io.StringIO()
    call_command("demo_data", products=12, snapshots=snapshots, workers=workers, no_mistakes=not mistakes,
                 verbosity=0, stdout=out)
    return out.getvalue()


def decoded(image: ProductImage) -> np.ndarray:
    with image.file.open("rb") as handle:
        return np.asarray(load_image(handle.read()).image)


def garment_histogram(photo: np.ndarray) -> np.ndarray:
    """Colour histogram (8 levels per channel) of the pixels that differ from the backdrop at the border."""
    border = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]]).astype(int)
    garment = np.abs(photo.astype(int) - np.median(border, axis=0)).sum(-1) > 40
    levels = (photo[garment] // 32).astype(np.int64)
    counts = np.bincount(levels[:, 0] * 64 + levels[:, 1] * 8 + levels[:, 2], minlength=512).astype(float)
    return counts / counts.sum()


def test_small_run_builds_a_synthetic_catalogue():
    # when
    run_demo()

    # then
    products = list(Product.objects.select_related("category"))
    assert len(products) == 12
    assert all(p.is_synthetic and p.sku.startswith("DEMO-") for p in products)
    assert len({p.category_id for p in products}) >= 6
    assert {p.category.kind for p in products} >= {
        CategoryKind.TOPWEAR, CategoryKind.BOTTOMWEAR, CategoryKind.FULL_BODY, CategoryKind.OUTERWEAR,
        CategoryKind.FOOTWEAR,
    }
    assert Category.objects.filter(name="T-Shirt", parent__name="Topwear").exists()
    for product in products:
        images = list(product.images.all())
        assert len(images) >= 2
        assert [i.role for i in images].count(ImageRole.PRIMARY) == 1
        assert all(i.is_synthetic for i in images)
        assert len({i.sha256 for i in images}) == len(images)
        assert all(decoded(i).shape == (512, 512, 3) for i in images)
        assert product.variants.count() >= 3
    barcodes = list(Variant.objects.values_list("barcode", flat=True))
    assert len(set(barcodes)) == len(barcodes)
    assert all(b == ean13(b[:12]) for b in barcodes)
    stock = list(Variant.objects.values_list("stock_quantity", flat=True))
    assert 0 in stock and max(stock) > 0
    looks = list(Look.objects.prefetch_related("products__category"))
    assert len(looks) >= 3
    for look in looks:
        kinds = [p.category.kind for p in look.products.all()]
        assert CategoryKind.FOOTWEAR in kinds and len(kinds) >= 2


def test_snapshots_are_listed_in_a_csv_and_never_become_product_images(settings):
    # when
    run_demo(snapshots=3)

    # then
    folder = Path(settings.MEDIA_ROOT) / "demo" / "snapshots"
    with open(folder / "snapshots.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    product_shas = set(ProductImage.objects.values_list("sha256", flat=True))
    for row in rows:
        assert Product.objects.filter(sku=row["sku"]).exists()
        loaded = load_image((folder / row["image"]).read_bytes())
        assert sorted(loaded.image.size) == [768, 1024]
        assert loaded.sha256 not in product_shas


def test_a_second_run_creates_nothing_new(settings):
    # given
    run_demo(snapshots=3)
    counts = [m.objects.count() for m in (Category, Product, Variant, ProductImage, Look)]
    files = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())

    # when
    summary = run_demo(snapshots=3)

    # then
    assert [m.objects.count() for m in (Category, Product, Variant, ProductImage, Look)] == counts
    assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == files
    assert summary.startswith("0 products, 0 variants, 0 images, 0 looks created; 0 snapshots written")


def test_generation_is_deterministic_per_seed():
    spec = product_spec(seed=7, index=3)

    assert np.array_equal(studio_image(spec, "front"), studio_image(product_spec(seed=7, index=3), "front"))
    assert snapshot_image(spec, 7, 0) == snapshot_image(spec, 7, 0)
    other = product_spec(seed=8, index=3)
    assert other.sku == spec.sku
    assert not np.array_equal(studio_image(spec, "front"), studio_image(other, "front"))


def test_worker_processes_render_the_same_photos_as_this_process():
    # when
    run_demo(workers=2)

    # then
    for product in Product.objects.filter(sku__in=["DEMO-TOP-0001", "DEMO-SHO-0004"]):
        spec = product_spec(seed=7, index=int(product.sku[-4:]) - 1)
        expected = {sha256(jpeg(studio_image(spec, view), quality=90)).hexdigest() for view in spec.views}
        assert set(product.images.values_list("sha256", flat=True)) == expected


def test_products_look_different_and_views_of_one_product_look_alike():
    # given
    run_demo()
    photos = [(image.product_id, decoded(image)) for image in ProductImage.objects.order_by("product__sku", "id")]
    owners = np.array([owner for owner, _ in photos])
    histograms = np.array([garment_histogram(photo) for _, photo in photos])

    # when
    distance = 0.5 * np.abs(histograms[:, None] - histograms[None]).sum(-1)
    np.fill_diagonal(distance, np.inf)
    same = owners[:, None] == owners[None]
    np.fill_diagonal(same, False)

    # then: the nearest photo is (nearly always) another view of the same product
    nearest_is_same = owners[distance.argmin(axis=1)] == owners
    assert nearest_is_same.mean() >= 0.9
    assert distance[same].mean() * 3 < distance[~same & np.isfinite(distance)].mean()
    primaries = [i for i in range(len(photos)) if i == 0 or owners[i] != owners[i - 1]]
    assert distance[np.ix_(primaries, primaries)].min() > 0.15
    primary_pixels = [photos[i][1].astype(np.int16) for i in primaries]
    for a in range(len(primary_pixels)):
        for b in range(a + 1, len(primary_pixels)):
            assert np.abs(primary_pixels[a] - primary_pixels[b]).mean() > 8


@pytest.mark.skipif(
    importlib.util.find_spec("catalog.management.commands.import_catalog") is None, reason="import_catalog not present"
)
def test_csv_option_loads_a_real_catalogue_through_import_catalog(tmp_path, make_jpeg):
    # given
    (tmp_path / "shirt.jpg").write_bytes(make_jpeg(96, 96))
    (tmp_path / "catalogue.csv").write_text("sku,image,category,gender,name\nREAL-1,shirt.jpg,Shirts,men,Blue shirt\n")

    # when
    call_command("demo_data", csv=tmp_path / "catalogue.csv", verbosity=0, stdout=io.StringIO())

    # then
    product = Product.objects.get(sku="REAL-1")
    assert not product.is_synthetic
    assert product.images.count() == 1
    assert not Product.objects.filter(sku__startswith="DEMO-").exists()


@pytest.mark.django_db(transaction=True)
def test_planted_mistakes_give_the_cleanup_scan_a_duplicate_cluster_and_a_misfiled_product(settings):
    from catalog.cleanup.models import Finding, FindingKind
    from catalog.demo.mistakes import MISTAKES

    # when
    settings.CLEANUP = {"AUTO_SCAN": False}
    run_demo(mistakes=True)
    again = run_demo(mistakes=True)
    from catalog.cleanup.services import scan_run_execute, scan_run_start

    scan_run_execute(scan_run_id=scan_run_start().pk)

    # then: planted once (a re-run adds nothing), each an ordinary-looking synthetic product with one photo
    planted = Product.objects.filter(sku__regex=r"-(09|10)[0-9][0-9]$")
    assert planted.count() == len([m for m in MISTAKES if not m.copy or m.source < 12])
    assert again.startswith("0 products, 0 variants, 0 images")
    assert all(p.is_synthetic and p.images.count() == 1 for p in planted)
    shoe = Product.objects.get(sku="DEMO-SHO-1007")
    assert shoe.category.kind == CategoryKind.TOPWEAR  # filed under a topwear category
    clusters = [set(f.details["skus"]) for f in Finding.objects.filter(kind=FindingKind.DUPLICATE)]
    assert {"DEMO-TOP-0001", "DEMO-TOP-0901", "DEMO-TOP-0902"} in clusters
    copy = Product.objects.get(sku="DEMO-TOP-0901").images.get()
    assert copy.sha256 not in set(Product.objects.get(sku="DEMO-TOP-0001").images.values_list("sha256", flat=True))
    flagged = {f.summary.split(":")[0]: f.details for f in Finding.objects.filter(kind=FindingKind.BAD_PHOTO)}
    assert "DEMO-TOP-1005" in flagged and "DEMO-BTM-1006" in flagged
