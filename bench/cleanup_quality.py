"""Precision and recall of ``manage.py evaluate_cleanup`` per kind of injected mistake.

Builds a catalogue from ``../shared/data/catalog-photos`` (one studio photo per SKU, labels from
labels.csv) and injects known mistakes:

- duplicates under new SKUs: re-encoded (JPEG quality 35-60), resized (45-75%), cropped (75-90% of the
  frame, rescaled) copies of catalogue photos;
- wrong labels: men ↔ women swapped; a category moved to another kind (a T-shirt labelled Jeans, a shoe
  labelled Tshirts, trousers labelled Casual Shoes);
- bad photos: Gaussian-blurred (sigma 1.5-3), darkened (20-40% brightness) and tiny (40-100 px) photos.

Then runs ``evaluate_cleanup`` on it (a throwaway database) and prints one JSON object with the
precision and recall per kind. Duplicates are scored on SKU pairs (every pair inside a reported cluster).

Usage: ``nice -n 10 .venv/bin/python bench/cleanup_quality.py --out /tmp/cleanup-eval [--products 300]``.
The source photos are never duplicates of each other by construction (see ../shared/data/README.md), so a
reported pair or label outside the injected ones counts against precision even if the source set itself
is to blame.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import random
import subprocess
import sys
from itertools import combinations
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter

REPO = Path(__file__).resolve().parent.parent
DATA = next((parent / "shared" / "data" / "catalog-photos" for parent in REPO.parents
             if (parent / "shared" / "data" / "catalog-photos").is_dir()),
            REPO.parent / "shared" / "data" / "catalog-photos")
KINDS = {
    "topwear": {"Tshirts", "Shirts", "Tops", "Sweatshirts", "Sweaters", "Kurtas", "Jackets"},
    "bottomwear": {"Jeans", "Trousers", "Shorts", "Track Pants"},
    "footwear": {"Casual Shoes", "Sports Shoes", "Formal Shoes", "Heels", "Flats", "Sandals", "Flip Flops"},
    "accessory": {"Handbags", "Watches", "Belts", "Backpacks", "Wallets"},
}
MIN_SIDE = 128  # catalog.cleanup.conf DEFAULTS["MIN_SIDE"]
WRONG_CATEGORY = {"topwear": "Jeans", "bottomwear": "Casual Shoes", "footwear": "Tshirts", "accessory": "Tshirts"}


def jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def build(out: Path, *, products: int, per_kind: int, seed: int) -> dict:
    rng = random.Random(seed)
    with open(DATA / "labels.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if any(r["article_type"] in types for types in KINDS.values())]
    rng.shuffle(rows)
    need = products + 3 * per_kind  # degraded photos use photos that are not otherwise in the catalogue
    rows = rows[:need]
    base, spare = rows[:products], rows[products:]
    (out / "img").mkdir(parents=True, exist_ok=True)
    catalogue: list[list[str]] = []
    truth: dict = {"duplicates": {"reencoded": [], "resized": [], "cropped": []}, "gender": [], "category": [],
                   "blurred": [], "dark": [], "small": []}
    for n, row in enumerate(base):
        sku = f"P{n:04d}"
        name = f"img/{sku}.jpg"
        (out / name).write_bytes((DATA / row["image"]).read_bytes())
        catalogue.append([sku, name, row["article_type"], row["gender"], row["article_type"]])
    # wrong labels (on catalogue products that get no copies, so a copy does not outvote its original)
    order = list(range(products))
    rng.shuffle(order)
    gender_pool = [i for i in order if catalogue[i][3] in ("Men", "Women")]
    flipped = gender_pool[:per_kind]
    for i in flipped:
        catalogue[i][3] = "Women" if catalogue[i][3] == "Men" else "Men"
        truth["gender"].append(catalogue[i][0])
    moved = [i for i in order if i not in flipped][:per_kind]
    for i in moved:
        kind = next(k for k, types in KINDS.items() if catalogue[i][2] in types)
        catalogue[i][2] = WRONG_CATEGORY[kind]
        truth["category"].append(catalogue[i][0])
    untouched = [i for i in order if i not in flipped and i not in moved]
    copies = untouched[: 3 * per_kind]
    for m, i in enumerate(copies):
        sku, name, category, gender, title = catalogue[i]
        source = Image.open(out / name).convert("RGB")
        how = ("reencoded", "resized", "cropped")[m % 3]
        if how == "reencoded":
            data = jpeg(source, rng.randint(35, 60))
        elif how == "resized":
            f = rng.uniform(0.45, 0.75)
            data = jpeg(
                source.resize((round(source.width * f), round(source.height * f)), Image.Resampling.BICUBIC), 85
            )
        else:
            f = rng.uniform(0.75, 0.9)
            w, h = round(source.width * f), round(source.height * f)
            x, y = rng.randint(0, source.width - w), rng.randint(0, source.height - h)
            data = jpeg(source.crop((x, y, x + w, y + h)).resize(source.size, Image.Resampling.BICUBIC), 88)
        copy_sku = f"D{m:04d}"
        copy_name = f"img/{copy_sku}.jpg"
        (out / copy_name).write_bytes(data)
        catalogue.append([copy_sku, copy_name, category, gender, title])
        truth["duplicates"][how].append([sku, copy_sku])
    for m, row in enumerate(spare):
        how = ("blurred", "dark", "small")[m % 3]
        source = Image.open(DATA / row["image"]).convert("RGB")
        if how == "blurred":
            degraded = source.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 3.0)))
        elif how == "dark":
            degraded = ImageEnhance.Brightness(source).enhance(rng.uniform(0.2, 0.4))
        else:
            side = rng.randint(40, 100)
            degraded = source.resize((side, side), Image.Resampling.LANCZOS)
        sku = f"B{m:04d}"
        name = f"img/{sku}.jpg"
        (out / name).write_bytes(jpeg(degraded, 90))
        catalogue.append([sku, name, row["article_type"], row["gender"], row["article_type"]])
        truth[how].append(sku)
    # "small" is a property of the file: resized duplicates below the threshold are small photos too.
    truth["small"] = sorted({sku for sku, name, *_ in catalogue if min(Image.open(out / name).size) < MIN_SIDE})
    with open(out / "catalog.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "image", "category", "gender", "name"])
        writer.writerows(catalogue)
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def score(report: dict, truth: dict) -> dict:
    predicted_pairs = {tuple(sorted(p)) for cluster in report["duplicates"] for p in combinations(cluster, 2)}
    true_pairs = {tuple(sorted(p)): how for how, pairs in truth["duplicates"].items() for p in pairs}
    figures: dict = {"duplicates": {
        "reported_pairs": len(predicted_pairs), "true_pairs": len(true_pairs),
        "precision": ratio(len(predicted_pairs & set(true_pairs)), len(predicted_pairs)),
        "recall": ratio(len(predicted_pairs & set(true_pairs)), len(true_pairs)),
        "false_pairs": sorted(predicted_pairs - set(true_pairs))[:20],
    }}
    for how in truth["duplicates"]:
        wanted = {p for p, kind in true_pairs.items() if kind == how}
        figures["duplicates"][f"recall_{how}"] = ratio(len(predicted_pairs & wanted), len(wanted))
    for field in ("gender", "category"):
        reported = {w["sku"] for w in report["wrong_labels"] if w["field"] == field}
        wanted = set(truth[field])
        figures[f"wrong_{field}"] = {"reported": len(reported), "injected": len(wanted),
                                     "precision": ratio(len(reported & wanted), len(reported)),
                                     "recall": ratio(len(reported & wanted), len(wanted))}
    for flag in ("blurred", "dark", "small"):
        reported = {b["sku"] for b in report["bad_photos"] if flag in b["flags"]}
        wanted = set(truth[flag])
        figures[f"bad_photo_{flag}"] = {"reported": len(reported), "injected": len(wanted),
                                        "precision": ratio(len(reported & wanted), len(reported)),
                                        "recall": ratio(len(reported & wanted), len(wanted))}
    other = {}
    for b in report["bad_photos"]:
        for flag in b["flags"]:
            if flag not in ("blurred", "dark", "small"):
                other[flag] = other.get(flag, 0) + 1
    figures["other_photo_flags"] = other
    figures["scan_seconds"] = report["scan_seconds"]
    figures["scan_seconds_by_step"] = report.get("scan_seconds_by_step")
    figures["catalogue"] = {"products": report.get("products"), "images": report.get("images")}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/cleanup-eval"))
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--per-kind", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--heads", action="store_true", help="evaluate_cleanup --heads: the label scan asks heads too.")
    parser.add_argument("--report", type=Path, help="Score an existing evaluate_cleanup JSON instead of running it.")
    args = parser.parse_args()
    truth = build(args.out, products=args.products, per_kind=args.per_kind, seed=args.seed)
    if args.report is None:
        args.report = args.out / "report.json"
        subprocess.run([sys.executable, str(REPO / "manage.py"), "evaluate_cleanup", "--catalog",
                        str(args.out / "catalog.csv"), "--json", str(args.report),
                        *(["--heads"] if args.heads else [])], check=True, cwd=REPO,
                       stdout=subprocess.DEVNULL)
    print(json.dumps(score(json.loads(args.report.read_text()), truth), indent=2))


if __name__ == "__main__":
    main()
