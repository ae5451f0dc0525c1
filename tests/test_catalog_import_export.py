"""import_catalog / export_catalog with real files: good rows, bad rows, re-import, round trip."""
import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image

from catalog.models import Product, ProductImage, Variant
from tests.conftest import jpeg_bytes

pytestmark = pytest.mark.django_db


def write_catalog(folder: Path, rows: list[dict], header: str) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    path = folder / "catalog.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header.split(","))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def catalog_dir(tmp_path, shared_data):
    folder = tmp_path / "cat"
    (folder / "images").mkdir(parents=True)
    real = sorted((shared_data / "catalog-photos" / "images").glob("*.jpg"))[:3]
    for i, source in enumerate(real):
        (folder / "images" / f"real{i}.jpg").write_bytes(source.read_bytes())
    (folder / "images" / "red.jpg").write_bytes(jpeg_bytes(120, 160, (200, 20, 20)))
    (folder / "images" / "notes.jpg").write_bytes(b"this is a text file pretending to be a photo")
    (folder / "images" / "cut.jpg").write_bytes(jpeg_bytes(300, 300)[:700])
    return folder


HEADER = "sku,image,category,gender,name,price,size,stock,brand,colour"


def good_and_bad_rows():
    return [
        {"sku": "TS-1", "image": "images/real0.jpg", "category": "Tshirts", "gender": "Men", "name": "Tee",
         "price": "19.90", "size": "M", "stock": "3", "brand": "Acme", "colour": "Blue"},
        {"sku": "TS-1", "image": "images/real1.jpg", "category": "Tshirts", "gender": "Men", "name": "Tee",
         "price": "19.90", "size": "L", "stock": "0", "brand": "Acme", "colour": "Blue"},
        {"sku": "JN-1", "image": "images/real2.jpg", "category": "Jeans", "gender": "women", "name": "Jeans",
         "price": "", "size": "", "stock": "", "brand": "", "colour": ""},
        {"sku": "DR-1", "image": "images/red.jpg", "category": "dress", "gender": "", "name": "Red dress",
         "price": "49", "size": "S", "stock": "1", "brand": "", "colour": "Red"},
        # bad rows: line 6 onwards
        {"sku": "", "image": "images/red.jpg", "category": "top", "gender": "", "name": "No SKU"},
        {"sku": "BAD-1", "image": "images/notes.jpg", "category": "top", "gender": "", "name": "Text file"},
        {"sku": "BAD-2", "image": "images/cut.jpg", "category": "top", "gender": "", "name": "Truncated"},
        {"sku": "BAD-3", "image": "images/missing.jpg", "category": "top", "gender": "", "name": "Missing"},
        {"sku": "BAD-4", "image": "images/red.jpg", "category": "spaceship", "gender": "", "name": "Odd"},
        {"sku": "BAD-5", "image": "images/red.jpg", "category": "top", "gender": "robot", "name": "Odd"},
        {"sku": "BAD-6", "image": "images/red.jpg", "category": "top", "gender": "", "name": "x", "stock": "-2",
         "size": "M"},
    ]


def run_import(path: Path) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_catalog", str(path), stdout=out, stderr=err, verbosity=0)
    return out.getvalue(), err.getvalue()


def test_import_good_rows_and_report_bad_ones_by_line(catalog_dir):
    path = write_catalog(catalog_dir, good_and_bad_rows(), HEADER)
    out, err = run_import(path)

    assert set(Product.objects.values_list("sku", flat=True)) == {"TS-1", "JN-1", "DR-1"}
    tee = Product.objects.get(sku="TS-1")
    assert tee.category.kind == "topwear" and tee.gender == "men" and str(tee.price) == "19.90"
    assert tee.images.count() == 2 and tee.images.filter(role="primary").count() == 1
    assert dict(tee.variants.values_list("size", "stock_quantity")) == {"M": 3, "L": 0}
    assert Product.objects.get(sku="JN-1").category.kind == "bottomwear"
    assert Product.objects.get(sku="DR-1").category.kind == "full-body"

    lines = err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [f"line {n}" for n in range(6, 13)]
    assert "sku is empty" in lines[0]
    assert "not a photo" in lines[1]
    assert "damaged" in lines[2]
    assert "image not found" in lines[3]
    assert "unknown category" in lines[4]
    assert "unknown gender" in lines[5]
    assert "zero or more" in lines[6]
    assert "7 bad rows" in out
    assert not Product.objects.filter(sku__startswith="BAD").exists()


def test_reimport_creates_nothing_new(catalog_dir):
    path = write_catalog(catalog_dir, good_and_bad_rows(), HEADER)
    run_import(path)
    counts = (Product.objects.count(), ProductImage.objects.count(), Variant.objects.count())
    out, _ = run_import(path)
    assert (Product.objects.count(), ProductImage.objects.count(), Variant.objects.count()) == counts
    assert "0 products created, 0 updated, 0 images added, 0 variants created, 0 variants updated" in out


def test_missing_required_column_is_a_clear_error(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("name,category\nTee,top\n")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="missing column"):
        run_import(path)


def test_export_round_trip(catalog_dir, tmp_path):
    path = write_catalog(catalog_dir, good_and_bad_rows()[:4], HEADER)
    run_import(path)
    before = snapshot_catalog()

    export_path = tmp_path / "out" / "catalog.csv"
    call_command("export_catalog", str(export_path), stdout=io.StringIO())
    rows = list(csv.DictReader(open(export_path)))
    assert {r["sku"] for r in rows} == {"TS-1", "JN-1", "DR-1"}
    assert all((export_path.parent / r["image"]).is_file() for r in rows)
    Image.open(export_path.parent / rows[0]["image"]).verify()

    Product.objects.all().delete()
    run_import(export_path)
    assert snapshot_catalog() == before


def snapshot_catalog():
    return {
        p.sku: (
            p.name, p.category.name, p.gender, str(p.price), p.brand, p.colour,
            sorted(p.images.values_list("sha256", "role")),
            sorted(p.variants.values_list("size", "stock_quantity")),
        )
        for p in Product.objects.select_related("category")
    }
