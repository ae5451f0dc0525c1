"""Shared by the mirror benchmarks: Django setup, a throwaway catalogue of real photos, mirror-like frames."""
from __future__ import annotations

import csv
import os
import sys
from decimal import Decimal
from pathlib import Path

from intake_latency import percentile  # noqa: F401 - one percentile rule for every bench script

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("STOCKMATCH_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
PAIRS_DIR = SHARED / "shop-worn-pairs"
HELD_OUT_FROM = 2100  # the lead trains embedders on pairs below this number


def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warehouse.settings")
    import django

    django.setup()


def held_out_pairs(limit: int | None = None) -> list[dict]:
    with open(PAIRS_DIR / "pairs.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["pair"].lstrip("p")) >= HELD_OUT_FROM]
    return rows[:limit] if limit else rows


def build_catalogue(pairs: list[dict], *, others: int) -> dict[str, str]:
    """Shop photos of ``pairs`` as women's tops in stock, plus ``others`` studio photos of bottoms, shoes and
    dresses (so complete-the-look has something to offer), all embedded. Returns pair -> SKU."""
    from django.conf import settings
    from django.test.utils import override_settings

    from catalog.models import Variant
    from catalog.services import category_for_text, gender_for_text, product_create, product_image_add
    from matching.services import catalog_embed, embedding_model_active

    skus: dict[str, str] = {}
    with override_settings(MATCHING={**settings.MATCHING, "AUTO_EMBED": False}):  # one batched embedding below
        top = category_for_text("top")
        for row in pairs:
            sku = f"SHOP-{row['pair']}"
            product = product_create(sku=sku, name=f"Top {row['pair']}", category=top, gender="women",
                                     price=Decimal("29.90"))
            product_image_add(product=product, data=(PAIRS_DIR / row["shop"]).read_bytes(), filename="shop.jpg",
                              role="primary")
            Variant.objects.create(product=product, size="M", stock_quantity=3)
            skus[row["pair"]] = sku
        with open(SHARED / "catalog-photos" / "labels.csv", newline="") as handle:
            wanted = {"Bottomwear", "Shoes", "Dress", "Flip Flops", "Sandal"}
            rows = [r for r in csv.DictReader(handle) if r["sub_category"] in wanted][:others]
        for n, row in enumerate(rows):
            category = category_for_text(row["article_type"]) or category_for_text(row["sub_category"])
            if category is None:
                continue
            product = product_create(sku=f"STUDIO-{n}", name=f"{row['colour']} {row['article_type']}",
                                     category=category, gender=gender_for_text(row["gender"]) or "unisex",
                                     price=Decimal("39.90"))
            product_image_add(product=product, data=(SHARED / "catalog-photos" / row["image"]).read_bytes(),
                              filename="studio.jpg", role="primary")
            Variant.objects.create(product=product, size="M", stock_quantity=2)
    catalog_embed(model=embedding_model_active())
    return skus


def mirror_frame(path: Path, size: tuple[int, int] = (1080, 1920)):
    """A portrait 1080p camera frame: the photo scaled to the frame's width, the rest filled by its edges."""
    import cv2
    import numpy as np
    from PIL import Image

    photo = Image.open(path).convert("RGB")
    width = size[0]
    height = round(photo.height * width / photo.width)
    scaled = np.asarray(photo.resize((width, min(height, size[1])), Image.Resampling.BICUBIC))
    pad = size[1] - scaled.shape[0]
    framed = cv2.copyMakeBorder(scaled, pad // 2, pad - pad // 2, 0, 0, cv2.BORDER_REPLICATE)
    return Image.fromarray(framed)


def emit(result: dict, json_path: str = "") -> None:
    """Print the figures as one JSON object, and write them to ``json_path`` when given."""
    import json

    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        with open(json_path, "w") as handle:
            handle.write(text + "\n")
