"""The catalogue's invariants are enforced by the database itself."""
import pytest
from django.db import IntegrityError, transaction

from catalog.models import Product, Variant
from catalog.services import variant_adjust_stock
from tests import factories

pytestmark = pytest.mark.django_db


def test_negative_stock_is_refused_by_the_database():
    variant = factories.variant(stock=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.filter(pk=variant.pk).update(stock_quantity=-1)
    variant.refresh_from_db()
    assert variant.stock_quantity == 2


def test_stock_adjustment_cannot_go_below_zero():
    variant = factories.variant(stock=1)
    assert variant_adjust_stock(variant_id=variant.pk, delta=2).stock_quantity == 3
    with pytest.raises(IntegrityError), transaction.atomic():
        variant_adjust_stock(variant_id=variant.pk, delta=-4)
    variant.refresh_from_db()
    assert variant.stock_quantity == 3


def test_duplicate_sku_is_refused():
    factories.product(sku="ABC-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.product(sku="ABC-1")
    assert Product.objects.filter(sku="ABC-1").count() == 1


def test_duplicate_barcode_is_refused_but_empty_barcodes_are_many():
    product = factories.product()
    Variant.objects.create(product=product, size="S", barcode="4006381333931")
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.create(product=factories.product(), size="S", barcode="4006381333931")
    Variant.objects.create(product=product, size="M", barcode=None)
    Variant.objects.create(product=product, size="L", barcode="")
    Variant.objects.create(product=product, size="XL", barcode=None)
    assert product.variants.count() == 4


def test_same_size_twice_for_one_product_is_refused():
    product = factories.product()
    Variant.objects.create(product=product, size="M")
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.create(product=product, size="M")


def test_invalid_gender_status_and_price_are_refused():
    for bad in ({"gender": "robot"}, {"status": "lost"}, {"price": -1}):
        with pytest.raises(IntegrityError), transaction.atomic():
            factories.product(**bad)


def test_category_tree_and_kind():
    tee = factories.category("T-Shirt", "topwear", "Topwear")
    assert tee.parent.name == "Topwear" and str(tee) == "Topwear > T-Shirt"
    assert factories.category("T-Shirt", "topwear", "Topwear").pk == tee.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        type(tee).objects.create(name="Odd", slug="odd", kind="spaceship")
