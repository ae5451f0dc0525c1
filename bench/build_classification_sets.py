"""Build the ``evaluate_classification`` CSVs (``image,gender,kind``) from the shared development photos.

    python bench/build_classification_sets.py [--data ../shared/data] [--out var/classify] [--test-share 0.3]

Writes, with image paths relative to each CSV:
- ``catalog_train.csv`` / ``catalog_test.csv``: ``catalog-photos`` split by a stable hash of the file name
  (the set has one photo per product, so no product is on both sides). Gender from ``gender``; kind
  from ``sub_category`` / ``article_type`` (jackets are outerwear; innerwear vests and bras topwear,
  briefs, trunks and boxers bottomwear; socks and shoe accessories accessories). Personal care
  (perfume, deodorant) is not a garment and is left out.
- ``phone_test.csv``: ``phone-photos`` as a cross-domain test. Kind from the 17 categories; gender only
  where the category implies it (dress, skirt, blouse: women, or girls when ``kids``), else empty.
- ``phone_train.csv`` / ``phone_holdout.csv``: the same photos split by a stable hash of the file name
  (``--phone-test-share``, half by default), and ``catalog_phone_train.csv`` = ``catalog_train`` +
  ``phone_train``: a catalogue whose intake has confirmed that many phone photos (camera examples for
  the heads), judged on ``phone_holdout``.
- ``ccp_train.csv`` (crops in ``ccp_garments/``): each garment of the ``ccp-masks`` street photos of the
  segmentation's training split (``segmentation.data.ccp_split_of``; never its held-out photos), cropped to
  its box in the 59-class label map: worn tops, outerwear (coat, jacket, blazer, cape), bottoms and dresses
  with their kind and no gender (the set does not say). ``catalog_phone_ccp_train.csv`` adds them to
  ``catalog_phone_train``: labelled camera photos of the kinds the catalogue hardly has.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

CATALOG_KIND_BY_SUB = {
    "Topwear": "topwear", "Bottomwear": "bottomwear", "Dress": "full-body", "Shoes": "footwear",
    "Sandal": "footwear", "Flip Flops": "footwear", "Loungewear and Nightwear": "bottomwear",
}
CATALOG_KIND_BY_TYPE = {
    "Jackets": "outerwear", "Innerwear Vests": "topwear", "Bra": "topwear", "Briefs": "bottomwear",
    "Trunk": "bottomwear", "Boxers": "bottomwear",
}
PHONE_KIND = {
    "T-Shirt": "topwear", "Longsleeve": "topwear", "Shirt": "topwear", "Polo": "topwear", "Undershirt": "topwear",
    "Top": "topwear", "Blouse": "topwear", "Hoodie": "topwear", "Pants": "bottomwear", "Shorts": "bottomwear",
    "Skirt": "bottomwear", "Dress": "full-body", "Body": "full-body", "Outwear": "outerwear",
    "Blazer": "outerwear", "Shoes": "footwear", "Hat": "accessory",
}
PHONE_WOMENSWEAR = {"Dress", "Skirt", "Blouse"}
CCP_KIND = {
    **{name: "topwear" for name in "blouse cardigan hoodie jumper shirt sweater sweatshirt t-shirt top vest".split()},
    **{name: "outerwear" for name in "blazer cape coat jacket".split()},
    **{name: "bottomwear" for name in "jeans leggings pants shorts skirt".split()},
    **{name: "full-body" for name in "dress romper".split()},
}
CCP_MIN_AREA = 0.04  # share of the photo a garment must cover to be cropped (smaller ones are slivers)
CCP_MARGIN = 0.08


def catalog_kind(row: dict) -> str:
    if row["master_category"] == "Personal Care":
        return ""
    return CATALOG_KIND_BY_TYPE.get(row["article_type"]) or CATALOG_KIND_BY_SUB.get(row["sub_category"]) or (
        "accessory" if row["master_category"] == "Accessories" else ""
    )


def phone_gender(row: dict) -> str:
    if row["category"] not in PHONE_WOMENSWEAR:
        return ""
    return "girls" if row["kids"].strip().lower() == "true" else "women"


def in_test(name: str, share: float) -> bool:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") / 2**32 < share


def ccp_garments(ccp: Path, out: Path) -> list[tuple[Path, str]]:
    """(crop path, kind) of every sizeable garment in the training split's CCP photos."""
    from segmentation.data import ccp_split_of

    names = {}
    with open(ccp / "label_list.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            names[int(row["label_value"])] = row["name"].strip().lower()
    out.mkdir(parents=True, exist_ok=True)
    crops = []
    for path in sorted((ccp / "images").glob("*.jpg")):
        if ccp_split_of(f"ccp:{path.stem}") != "train":
            continue
        labels = np.asarray(Image.open(ccp / "labels" / f"{path.stem}.png"))
        photo = Image.open(path).convert("RGB")
        by_kind: dict[str, np.ndarray] = {}
        for value in np.unique(labels):
            kind = CCP_KIND.get(names.get(int(value), ""))
            if kind:
                by_kind[kind] = by_kind.get(kind, np.zeros(labels.shape, bool)) | (labels == value)
        for kind, mask in sorted(by_kind.items()):
            if mask.mean() < CCP_MIN_AREA:
                continue
            ys, xs = np.nonzero(mask)
            h, w = mask.shape
            pad_y, pad_x = int(CCP_MARGIN * (ys.max() - ys.min())), int(CCP_MARGIN * (xs.max() - xs.min()))
            box = (max(0, xs.min() - pad_x), max(0, ys.min() - pad_y), min(w, xs.max() + pad_x + 1),
                   min(h, ys.max() + pad_y + 1))
            target = out / f"{path.stem}-{kind}.jpg"
            photo.crop(box).save(target, quality=92)
            crops.append((target, kind))
    return crops


def write(path: Path, rows: list[tuple[str, str, str]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "gender", "kind"])
        writer.writerows(rows)
    print(f"{path}: {len(rows)} rows; kinds {dict(Counter(r[2] for r in rows))}; "
          f"genders {dict(Counter(r[1] or '(empty)' for r in rows))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path,
        default=Path(os.environ.get("STOCKMATCH_SHARED_DATA") or REPO.parent / "shared" / "data"),
    )
    parser.add_argument("--out", type=Path, default=REPO / "var" / "classify")
    parser.add_argument("--test-share", type=float, default=0.3)
    parser.add_argument("--phone-test-share", type=float, default=0.5)
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    def relative(path: Path) -> str:
        return os.path.relpath(path.resolve(), out)

    catalog = args.data / "catalog-photos"
    train, test = [], []
    with open(catalog / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            kind = catalog_kind(row)
            if not kind:
                continue
            record = (relative(catalog / row["image"]), row["gender"].strip().lower(), kind)
            (test if in_test(row["image"], args.test_share) else train).append(record)
    write(out / "catalog_train.csv", train)
    write(out / "catalog_test.csv", test)

    phone = args.data / "phone-photos"
    with open(phone / "labels.csv", newline="") as handle:
        rows = [
            (relative(phone / row["image"]), phone_gender(row), PHONE_KIND[row["category"]])
            for row in csv.DictReader(handle) if row["category"] in PHONE_KIND
        ]
    write(out / "phone_test.csv", rows)
    # Camera-domain training: half the phone photos stand for confirmed intake items (what the heads learn
    # from in production); the other half is the test they never saw. By file name: the set records no
    # photographer, so one photographer's other photos can be on both sides (say so with any figure).
    phone_train = [row for row in rows if not in_test(Path(row[0]).name, args.phone_test_share)]
    write(out / "phone_train.csv", phone_train)
    write(out / "phone_holdout.csv", [row for row in rows if in_test(Path(row[0]).name, args.phone_test_share)])
    write(out / "catalog_phone_train.csv", train + phone_train)

    ccp = [(relative(path), "", kind) for path, kind in ccp_garments(args.data / "ccp-masks", out / "ccp_garments")]
    write(out / "ccp_train.csv", ccp)
    write(out / "catalog_phone_ccp_train.csv", train + phone_train + ccp)


if __name__ == "__main__":
    main()
