"""Build a retrieval evaluation set from the development photos in ../shared/data.

None of the development sets shows one garment twice, so pairs are made:

- catalogue (CATALOG.csv): studio photos from ``catalog-photos`` (apparel, footwear, bags), one SKU
  each; a quarter of the SKUs get a second view (mirrored, re-framed);
- in-catalogue queries (QUERIES.csv with a SKU): the same garment cut out of its studio photo (white
  background threshold), warped in perspective, relit, blurred, and pasted on a real background: the
  border regions of ``phone-photos`` (floors, beds, tables) or garment-free strips of ``ccp-masks``
  street photos, saved as a JPEG at phone-photo size;
- not-in-catalogue queries (empty SKU): garments of the same categories that are not in the
  catalogue, composited the same way.

Usage: ``.venv/bin/python bench/build_eval_set.py --out var/eval [--catalog-size 600 --queries 160
--unknown 80 --seed 7]``. Deterministic for a given seed.
"""
from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from matching.preprocess import studio_mask  # noqa: E402  (no Django needed)

DATA = REPO.parent / "shared" / "data"
CANVAS = (480, 640)  # width, height: phone-photo proportions at the development sets' size
KEEP_MASTER = {"Apparel", "Footwear"}
KEEP_SUB = {"Topwear", "Bottomwear", "Dress", "Shoes", "Sandal", "Flip Flops", "Bags", "Innerwear", "Loungewear and Nightwear"}  # noqa: E501


def catalogue_rows() -> list[dict]:
    with open(DATA / "catalog-photos" / "labels.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["master_category"] in KEEP_MASTER or r["sub_category"] in KEEP_SUB]  # noqa: E501
    return [r for r in rows if r["sub_category"] in KEEP_SUB]


def backgrounds(rng: random.Random, count: int) -> list[Image.Image]:
    """Real surfaces: border strips of phone photos and garment-free strips of street photos."""
    phone = sorted((DATA / "phone-photos" / "images").glob("*.jpg"))
    ccp = sorted((DATA / "ccp-masks" / "images").glob("*.jpg"))
    out: list[Image.Image] = []
    while len(out) < count:
        if rng.random() < 0.6:
            image = ImageOps.exif_transpose(Image.open(rng.choice(phone))).convert("RGB")
            w, h = image.size
            side = rng.choice(["top", "bottom", "left", "right"])
            box = {"top": (0, 0, w, h // 4), "bottom": (0, 3 * h // 4, w, h),
                   "left": (0, 0, w // 4, h), "right": (3 * w // 4, 0, w, h)}[side]
        else:
            path = rng.choice(ccp)
            image = Image.open(path).convert("RGB")
            mask = np.asarray(Image.open(DATA / "ccp-masks" / "masks" / (path.stem + ".png")).convert("L"))
            w, h = image.size
            columns = (mask > 0).mean(axis=0)
            free = [x for x in range(0, w - w // 5, 8) if columns[x : x + w // 5].max() < 0.02]
            if not free:
                continue
            x = rng.choice(free)
            box = (x, 0, x + w // 5, h)
        strip = image.crop(box)
        if strip.width < 40 or strip.height < 40:
            continue
        out.append(strip.resize(CANVAS, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.5))))
    return out


def garment_layer(path: Path, rng: random.Random) -> tuple[Image.Image, np.ndarray]:
    """The garment cut out of its studio photo (RGB + 0/255 mask), relit, warped, at paste size."""
    photo = Image.open(path).convert("RGB")
    mask = studio_mask(photo)
    if mask is None:
        mask = np.full((photo.height, photo.width), 255, np.uint8)
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    photo, mask = photo.crop(box), mask[box[1] : box[3], box[0] : box[2]]
    photo = ImageEnhance.Brightness(photo).enhance(rng.uniform(0.7, 1.2))
    photo = ImageEnhance.Contrast(photo).enhance(rng.uniform(0.8, 1.15))
    photo = ImageEnhance.Color(photo).enhance(rng.uniform(0.8, 1.2))
    warm = np.asarray(photo, dtype=np.float32) * np.array([rng.uniform(0.93, 1.07), 1.0, rng.uniform(0.93, 1.07)])
    array = warm.clip(0, 255).astype(np.uint8)
    target = rng.uniform(0.45, 0.8) * CANVAS[1]
    scale = min(target / array.shape[0], 0.9 * CANVAS[0] / array.shape[1])
    size = (max(8, int(array.shape[1] * scale)), max(8, int(array.shape[0] * scale)))
    array = cv2.resize(array, size, interpolation=cv2.INTER_CUBIC)
    mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    w, h = size
    jitter = 0.08
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[x + rng.uniform(-jitter, jitter) * w, y + rng.uniform(-jitter, jitter) * h] for x, y in src])
    dst -= dst.min(axis=0)
    out_size = (int(dst[:, 0].max()) + 1, int(dst[:, 1].max()) + 1)
    matrix = cv2.getPerspectiveTransform(src, dst)
    array = cv2.warpPerspective(array, matrix, out_size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(mask, matrix, out_size, flags=cv2.INTER_NEAREST)
    angle = rng.uniform(-12, 12)
    layer = Image.fromarray(array).rotate(angle, expand=True, resample=Image.Resampling.BILINEAR)
    mask_image = Image.fromarray(mask).rotate(angle, expand=True, resample=Image.Resampling.NEAREST)
    return layer, np.asarray(mask_image)


def composite(path: Path, background: Image.Image, rng: random.Random) -> Image.Image:
    layer, mask = garment_layer(path, rng)
    canvas = background.copy()
    scale = min(1.0, 0.95 * CANVAS[0] / layer.width, 0.95 * CANVAS[1] / layer.height)
    if scale < 1.0:
        size = (int(layer.width * scale), int(layer.height * scale))
        layer = layer.resize(size, Image.Resampling.BILINEAR)
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    x = rng.randint(0, max(0, CANVAS[0] - layer.width))
    y = rng.randint(0, max(0, CANVAS[1] - layer.height))
    soft = Image.fromarray(mask).filter(ImageFilter.GaussianBlur(1.2))
    shadow = Image.new("RGB", layer.size, (0, 0, 0))
    canvas.paste(shadow, (x + 6, y + 8), soft.point(lambda v: v * 0.35))
    canvas.paste(layer, (x, y), soft)
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))
    noisy = np.asarray(canvas, dtype=np.float32) + np.random.default_rng(rng.randint(0, 1 << 30)).normal(0, 3, (CANVAS[1], CANVAS[0], 3))  # noqa: E501
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def second_view(photo: Image.Image, rng: random.Random) -> Image.Image:
    mirrored = ImageOps.mirror(photo)
    w, h = mirrored.size
    crop = rng.uniform(0.0, 0.08)
    box = (int(w * crop), int(h * crop), int(w * (1 - crop / 2)), int(h * (1 - crop / 2)))
    return mirrored.crop(box).resize((w, h), Image.Resampling.BICUBIC)


def build(out: Path, *, catalog_size: int, queries: int, unknown: int, seed: int) -> None:
    rng = random.Random(seed)
    rows = catalogue_rows()
    rng.shuffle(rows)
    if len(rows) < catalog_size + unknown:
        raise SystemExit(f"only {len(rows)} usable catalogue photos")
    catalogue, outsiders = rows[:catalog_size], rows[catalog_size : catalog_size + unknown]
    (out / "catalog").mkdir(parents=True, exist_ok=True)
    (out / "queries").mkdir(parents=True, exist_ok=True)
    with open(out / "catalog.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "image", "category", "gender", "name"])
        for row in catalogue:
            sku = "EV-" + Path(row["image"]).stem
            source = DATA / "catalog-photos" / row["image"]
            name = f"{row['colour']} {row['article_type']}".strip()
            target = out / "catalog" / f"{sku}.jpg"
            Image.open(source).convert("RGB").save(target, quality=95)
            writer.writerow([sku, f"catalog/{sku}.jpg", row["article_type"], row["gender"], name])
            if rng.random() < 0.25:
                view = second_view(Image.open(source).convert("RGB"), rng)
                view.save(out / "catalog" / f"{sku}-b.jpg", quality=95)
                writer.writerow([sku, f"catalog/{sku}-b.jpg", row["article_type"], row["gender"], name])
    asked = rng.sample(catalogue, queries)
    plates = backgrounds(rng, queries + unknown)
    with open(out / "queries.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "sku"])
        for n, (row, known) in enumerate([(r, True) for r in asked] + [(r, False) for r in outsiders]):
            image = composite(DATA / "catalog-photos" / row["image"], plates[n], rng)
            name = f"queries/q{n:04d}.jpg"
            image.save(out / name, quality=rng.randint(75, 92))
            writer.writerow([name, "EV-" + Path(row["image"]).stem if known else ""])
    print(f"{out}: {len(catalogue)} SKUs, {queries} in-catalogue and {unknown} unknown queries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "var" / "eval")
    parser.add_argument("--catalog-size", type=int, default=600)
    parser.add_argument("--queries", type=int, default=160)
    parser.add_argument("--unknown", type=int, default=80)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    build(args.out, catalog_size=args.catalog_size, queries=args.queries, unknown=args.unknown, seed=args.seed)


if __name__ == "__main__":
    main()
