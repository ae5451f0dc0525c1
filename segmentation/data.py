"""Training and validation data for the segmenter (never needed at run time).

Sources, each split train/val by a stable hash of the *source* item (photo or product), never by crop:
- CCP: street photos with per-pixel labels (59 classes -> ours, see ``classes.py``);
- catalogue photos on white: masked automatically (threshold against white + GrabCut), kept when a quality
  gate passes;
- composites: catalogue cut-outs pasted on real backgrounds (CCP background strips, borders of phone photos
  of floors and beds) with geometric and photometric augmentation;
- ``SegmentationExample`` rows (confirmed cut-outs, corrections) when the database has any.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from . import grabcut, postprocess
from .classes import BACKGROUND, CLASS_INDEX, CLASSES, catalog_kind, ccp_lookup

log = logging.getLogger(__name__)
STORE_LONG_SIDE = 224  # images are kept in memory at this size; training scales down from here


def split_of(key: str, val_percent: int = 20) -> str:
    digest = hashlib.sha1(key.encode()).digest()
    return "val" if int.from_bytes(digest[:4], "big") % 100 < val_percent else "train"


DEV_PERCENT = 12


def ccp_split_of(key: str) -> str:
    """"val" (20 %, held out: evaluation only), "dev" (about 10 %: choosing the best epoch) or "train".

    The held-out photos are exactly ``split_of``'s, so earlier versions were never trained on them either."""
    split = split_of(key)
    if split == "train" and split_of(f"{key}:dev", DEV_PERCENT) == "val":
        return "dev"
    return split


def resize_long(image: np.ndarray, long_side: int, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if abs(scale - 1) < 1e-6:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=interpolation if scale < 1 else cv2.INTER_LINEAR)


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im.draft("RGB", (STORE_LONG_SIDE * 2, STORE_LONG_SIDE * 2))
        return np.asarray(im.convert("RGB"))


@dataclass
class Example:
    """One source photo and its class map (uint8, values index ``CLASSES``), at storage size."""

    key: str
    source: str
    image: np.ndarray
    labels: np.ndarray
    split: str


# ---------------------------------------------------------------- CCP


def load_ccp(
    root: Path, long_side: int = STORE_LONG_SIDE, limit: int | None = None
) -> tuple[list[Example], list[np.ndarray]]:
    """CCP examples, plus background strips (beside the person, label 'null') for composites."""
    lookup = ccp_lookup(root / "label_list.csv")
    examples: list[Example] = []
    backgrounds: list[np.ndarray] = []
    for path in sorted((root / "images").glob("*.jpg"))[:limit]:
        label_path = root / "labels" / f"{path.stem}.png"
        if not label_path.exists():
            continue
        raw = np.asarray(Image.open(label_path))
        image = read_rgb(path)
        if image.shape[:2] != raw.shape[:2]:
            image = cv2.resize(image, (raw.shape[1], raw.shape[0]), interpolation=cv2.INTER_AREA)
        key = f"ccp:{path.stem}"
        split = ccp_split_of(key)
        if split == "train":
            backgrounds.extend(_ccp_background_strips(image, raw))
        examples.append(
            Example(
                key=key,
                source="ccp",
                image=resize_long(image, long_side),
                labels=resize_long(lookup[raw], long_side, cv2.INTER_NEAREST),
                split=split,
            )
        )
    return examples, backgrounds


def _ccp_background_strips(image: np.ndarray, raw: np.ndarray) -> list[np.ndarray]:
    """Left/right strips that hold no person (label 0 'null' only)."""
    h, w = raw.shape
    cols = np.flatnonzero((raw != 0).any(axis=0))
    if len(cols) == 0:
        return [resize_long(image, STORE_LONG_SIDE)]
    strips = []
    for x0, x1 in ((0, cols[0]), (cols[-1] + 1, w)):
        if x1 - x0 >= 0.2 * w:
            strips.append(resize_long(np.ascontiguousarray(image[:, x0:x1]), STORE_LONG_SIDE))
    return strips


# ---------------------------------------------------------------- catalogue photos on white


def white_background_mask(image: np.ndarray, iterations: int = 3) -> tuple[np.ndarray | None, str]:
    """Mask a product photographed on white; (mask or None, reason). Threshold first, GrabCut from it,
    then a quality gate: sensible area, agreement between both, little of the photo border covered."""
    h, w = image.shape[:2]
    distance = 255 - image.min(axis=2).astype(np.int16)
    rough = distance > 18
    rough = postprocess.clean(rough, keep_ratio=0.2, hole_ratio=0.5)
    area = rough.mean()
    if area < 0.03:
        return None, "too little differs from white"
    if area > 0.9:
        return None, "background is not white"
    labels = np.full((h, w), grabcut.GC_PR_BGD, np.uint8)
    labels[rough] = grabcut.GC_PR_FGD
    core = cv2.erode(rough.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    labels[core & (distance > 40)] = grabcut.GC_FGD
    far = cv2.dilate(rough.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    labels[far & (distance < 8)] = grabcut.GC_BGD
    refined = postprocess.clean(grabcut.run(image, labels, iterations), keep_ratio=0.2, hole_ratio=0.5)
    inter = (refined & rough).sum()
    union = (refined | rough).sum()
    if union == 0 or inter / union < 0.8:
        return None, "threshold and GrabCut disagree"
    border = np.concatenate([refined[0], refined[-1], refined[:, 0], refined[:, -1]])
    if border.mean() > 0.35:
        return None, "garment runs off the photo"
    if not 0.03 <= refined.mean() <= 0.9:
        return None, "implausible area"
    if skin_fraction(image, refined) > 0.1:
        return None, "shows a person (skin would be labelled as garment)"
    return refined, "ok"


def skin_fraction(image: np.ndarray, mask: np.ndarray) -> float:
    """Share of masked pixels with skin colour (YCrCb box, Chai & Ngan 1999)."""
    ycrcb = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2]
    skin = (y > 60) & (cr >= 138) & (cr <= 173) & (cb >= 77) & (cb <= 127)
    return float((skin & mask).sum() / max(1, mask.sum()))


@dataclass
class Product:
    key: str
    image: np.ndarray  # RGB, cropped to the garment
    mask: np.ndarray  # bool, same size
    cls: int
    split: str


def load_catalog(root: Path, cache_dir: Path | None = None, limit: int | None = None) -> list[Product]:
    """Auto-masked catalogue photos that pass the quality gate; masks cached by file name and size."""
    rows = list(csv.DictReader(open(root / "labels.csv", newline="")))[:limit]
    cache: dict[str, np.ndarray] = {}
    cache_path = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1("|".join(r["image"] for r in rows).encode()).hexdigest()[:12]
        cache_path = cache_dir / f"catalog_masks_{digest}.npz"
        if cache_path.exists():
            with np.load(cache_path) as data:
                cache = {k: data[k] for k in data.files}
    products: list[Product] = []
    changed = False
    rejected = 0
    for row in rows:
        kind = catalog_kind(row.get("master_category", ""), row.get("sub_category", ""), row.get("article_type", ""))
        if kind is None:
            continue
        path = root / row["image"]
        if not path.exists():
            continue
        image = read_rgb(path)
        name = Path(row["image"]).stem
        if name in cache:
            packed = cache[name]
            mask = (
                None
                if packed.size == 0
                else np.unpackbits(packed)[: image.shape[0] * image.shape[1]].reshape(image.shape[:2]).astype(bool)
            )
        else:
            mask, _ = white_background_mask(image)
            cache[name] = np.packbits(mask) if mask is not None else np.zeros(0, np.uint8)
            changed = True
        if mask is None:
            rejected += 1
            continue
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        products.append(
            Product(
                key=f"catalog:{name}",
                image=np.ascontiguousarray(image[y0:y1, x0:x1]),
                mask=np.ascontiguousarray(mask[y0:y1, x0:x1]),
                cls=CLASS_INDEX[kind],
                split=split_of(f"catalog:{name}"),
            )
        )
    if changed and cache_path is not None:
        np.savez_compressed(cache_path, **cache)
    log.info("catalogue: %d products kept, %d rejected by the quality gate", len(products), rejected)
    return products


# ---------------------------------------------------------------- phone-photo backgrounds


def load_phone_backgrounds(
    root: Path, limit: int | None = None, cache_dir: Path | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Border strips of phone photos (floors, beds) that hold no part of the garment: (train, val), split by
    photo. The garment is found with GrabCut from the centre prior; a strip touching it is dropped."""
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    paths = sorted((root / "images").glob("*.jpg"))[:limit]
    cache: dict[str, list[int]] = {}
    cache_path = cache_dir / "phone_strips.json" if cache_dir is not None else None
    if cache_path is not None and cache_path.exists():
        cache = json.loads(cache_path.read_text())
    changed = False
    for path in paths:
        image = resize_long(read_rgb(path), 320)
        h, w = image.shape[:2]
        bh, bw = max(8, int(h * 0.16)), max(8, int(w * 0.16))
        boxes = [(0, bh, 0, w), (h - bh, h, 0, w), (0, h, 0, bw), (0, h, w - bw, w)]
        if path.stem not in cache:
            cache[path.stem] = _clear_strips(image, boxes)
            changed = True
        target = val if split_of(f"phone:{path.stem}") == "val" else train
        for i in cache[path.stem]:
            y0, y1, x0, x1 = boxes[i]
            target.append(np.ascontiguousarray(image[y0:y1, x0:x1]))
    if changed and cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cache))
    return train, val


def _clear_strips(image: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> list[int]:
    small = resize_long(image, 96)
    scale = small.shape[0] / image.shape[0]
    garment = grabcut.run(small, grabcut.centre_prior(*small.shape[:2]), 2)
    garment = cv2.dilate(garment.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    keep = []
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        region = garment[
            int(y0 * scale) : max(int(y0 * scale) + 1, int(y1 * scale)),
            int(x0 * scale) : max(int(x0 * scale) + 1, int(x1 * scale)),
        ]
        if region.mean() < 0.01 and _uniform_across(image[y0:y1, x0:x1], horizontal=(y1 - y0) < (x1 - x0)):
            keep.append(i)
    return keep


def _uniform_across(strip: np.ndarray, horizontal: bool) -> bool:
    """Floor or bed all the way in: the outer and inner thirds of the strip look alike (mean and spread)."""
    axis_len = strip.shape[0] if horizontal else strip.shape[1]
    third = max(1, axis_len // 3)
    outer = strip[:third] if horizontal else strip[:, :third]
    inner = strip[-third:] if horizontal else strip[:, -third:]
    # for bottom and right strips "outer" is the far side; the test is symmetric, so it does not matter
    a = outer.reshape(-1, 3).astype(np.float32)
    b = inner.reshape(-1, 3).astype(np.float32)
    mean_gap = float(np.linalg.norm(a.mean(0) - b.mean(0)))
    spread_ratio = float((b.std(0).mean() + 4) / (a.std(0).mean() + 4))
    return mean_gap < 18 and 0.6 < spread_ratio < 1.6


# ---------------------------------------------------------------- augmentation and compositing


def _colour_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    img = image.astype(np.float32)
    img = img * rng.uniform(1 - 0.3 * strength, 1 + 0.3 * strength)  # brightness
    mean = img.mean()
    img = (img - mean) * rng.uniform(1 - 0.3 * strength, 1 + 0.3 * strength) + mean  # contrast
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(1 - 0.4 * strength, 1 + 0.3 * strength)  # saturation
    img = img * rng.uniform(1 - 0.08 * strength, 1 + 0.08 * strength, size=3)  # white balance
    return np.clip(img, 0, 255).astype(np.uint8)


def _random_crop_resized(image: np.ndarray, out_h: int, out_w: int, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    scale = rng.uniform(0.5, 1.0)
    fit = min(h / out_h, w / out_w)  # keep the output's aspect ratio
    ch, cw = max(4, min(h, int(out_h * fit * scale))), max(4, min(w, int(out_w * fit * scale)))
    y = rng.integers(0, h - ch + 1)
    x = rng.integers(0, w - cw + 1)
    crop = image[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (out_w, out_h), interpolation=cv2.INTER_LINEAR)


def _finish(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera effects: lighting gradient, blur, noise, JPEG."""
    h, w = image.shape[:2]
    img = image.astype(np.float32)
    if rng.random() < 0.5:
        gx, gy = rng.uniform(-0.25, 0.25, size=2)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img *= (1 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5))[..., None]
    if rng.random() < 0.3:
        img += rng.normal(0, rng.uniform(2, 7), size=img.shape).astype(np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 90))])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return out


def _warp_garment(product: Product, target_long: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scale, rotate and perspective-warp a cut-out; returns (RGB, alpha float 0..1) on a tight canvas."""
    img, mask = product.image, product.mask.astype(np.float32)
    if rng.random() < 0.5:
        img, mask = img[:, ::-1], mask[:, ::-1]
    h, w = mask.shape
    scale = target_long / max(h, w)
    aspect = rng.uniform(0.85, 1.18)  # catalogue photos are squashed by their source: undo some of it
    sx, sy = scale * aspect, scale / aspect
    angle = np.deg2rad(rng.normal(0, 12))
    cos, sin = np.cos(angle), np.sin(angle)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    centred = (src - [w / 2, h / 2]) * [sx, sy]
    rotated = centred @ np.float32([[cos, sin], [-sin, cos]])
    jitter = rng.normal(0, 0.05 * target_long, size=(4, 2))
    dst = (rotated + jitter).astype(np.float32)
    dst -= dst.min(axis=0)
    out_w, out_h = int(np.ceil(dst[:, 0].max())) + 1, int(np.ceil(dst[:, 1].max())) + 1
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(np.ascontiguousarray(img), matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(np.ascontiguousarray(mask), matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)
    return warped, np.clip(alpha, 0, 1)


# Garments the warehouse receives most; the catalogue sample is mostly shoes and accessories (photos of
# models wearing tops fail the skin gate), so composites draw a class first, then a product of that class.
CLASS_WEIGHTS = {"topwear": 0.35, "bottomwear": 0.25, "footwear": 0.2, "full-body": 0.05, "other": 0.15}


def _pick_products(products: list[Product], n: int, rng: np.random.Generator) -> list[Product]:
    by_class: dict[int, list[Product]] = {}
    for product in products:
        by_class.setdefault(product.cls, []).append(product)
    classes = sorted(by_class)
    weights = np.asarray([CLASS_WEIGHTS.get(CLASSES[c], 0.1) for c in classes], float)
    picked = []
    for _ in range(n):
        cls = classes[int(rng.choice(len(classes), p=weights / weights.sum()))]
        pool = by_class[cls]
        picked.append(pool[int(rng.integers(len(pool)))])
    return picked


def composite(
    products: list[Product], background: np.ndarray, out_h: int, out_w: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One or two catalogue cut-outs pasted on a background, with a soft shadow. Returns (RGB, labels)."""
    canvas = _colour_jitter(_random_crop_resized(background, out_h, out_w, rng), rng).astype(np.float32)
    labels = np.zeros((out_h, out_w), np.uint8)
    n = 1 if rng.random() < 0.75 or len(products) < 2 else 2
    for item in _pick_products(products, n, rng):
        size = max(out_h, out_w) * (rng.uniform(0.4, 0.95) if n == 1 else rng.uniform(0.3, 0.6))
        garment, alpha = _warp_garment(item, size, rng)
        garment = _colour_jitter(garment, rng, 0.7).astype(np.float32)
        gh, gw = alpha.shape
        x = int(rng.integers(-gw // 6, max(1, out_w - gw + gw // 6)))
        y = int(rng.integers(-gh // 6, max(1, out_h - gh + gh // 6)))
        full_alpha = np.zeros((out_h, out_w), np.float32)
        full_rgb = np.zeros((out_h, out_w, 3), np.float32)
        sx0, sy0 = max(0, -x), max(0, -y)
        dx0, dy0 = max(0, x), max(0, y)
        cw, ch = min(gw - sx0, out_w - dx0), min(gh - sy0, out_h - dy0)
        if cw <= 0 or ch <= 0:
            continue
        full_alpha[dy0 : dy0 + ch, dx0 : dx0 + cw] = alpha[sy0 : sy0 + ch, sx0 : sx0 + cw]
        full_rgb[dy0 : dy0 + ch, dx0 : dx0 + cw] = garment[sy0 : sy0 + ch, sx0 : sx0 + cw]
        if rng.random() < 0.6:  # soft shadow, offset down-right
            shift = np.float32([[1, 0, rng.uniform(-0.04, 0.06) * out_w], [0, 1, rng.uniform(0, 0.06) * out_h]])
            shadow = cv2.warpAffine(full_alpha, shift, (out_w, out_h))
            k = int(max(out_h, out_w) * 0.06) | 1
            shadow = cv2.GaussianBlur(shadow, (k, k), 0)
            canvas *= (1 - rng.uniform(0.2, 0.5) * shadow)[..., None]
        edge = cv2.GaussianBlur(full_alpha, (3, 3), 0)[..., None]
        canvas = canvas * (1 - edge) + full_rgb * edge
        labels[full_alpha > 0.5] = item.cls
    return _finish(np.clip(canvas, 0, 255).astype(np.uint8), rng), labels


def augment_photo(
    image: np.ndarray, labels: np.ndarray, long_side: float, crop: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A labelled photo at a random scale around ``long_side``, flipped, rotated a little, randomly cropped
    (reflect-padded, as at inference) to ``crop`` x ``crop``, with photometric jitter."""
    scale = long_side * rng.uniform(0.8, 1.2) / max(image.shape[:2])
    angle = rng.normal(0, 6)
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    out_w, out_h = max(1, round(w * scale)), max(1, round(h * scale))
    matrix[0, 2] += (out_w - w) / 2
    matrix[1, 2] += (out_h - h) / 2
    img = cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    lab = cv2.warpAffine(labels, matrix, (out_w, out_h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)
    if rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    img, lab = random_crop(img, lab, crop, rng)
    return _finish(_colour_jitter(img, rng), rng), lab


def random_crop(
    image: np.ndarray, labels: np.ndarray, crop: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    h, w = labels.shape
    ph, pw = max(0, crop - h), max(0, crop - w)
    if ph or pw:
        pads = (ph // 2, ph - ph // 2, pw // 2, pw - pw // 2)
        image = cv2.copyMakeBorder(np.ascontiguousarray(image), *pads, cv2.BORDER_REFLECT_101)
        labels = cv2.copyMakeBorder(np.ascontiguousarray(labels), *pads, cv2.BORDER_REFLECT_101)
        h, w = labels.shape
    y = int(rng.integers(0, h - crop + 1))
    x = int(rng.integers(0, w - crop + 1))
    return np.ascontiguousarray(image[y : y + crop, x : x + crop]), np.ascontiguousarray(
        labels[y : y + crop, x : x + crop]
    )


def composite_photo_set(
    products: list[Product], backgrounds: list[np.ndarray], long_side: int, n: int, seed: int
) -> list[Example]:
    """A fixed set of composites at working size (validation, evaluation folders)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        portrait = rng.random() < 0.6
        h, w = (long_side, long_side * 3 // 4) if portrait else (long_side * 3 // 4, long_side)
        bg = backgrounds[int(rng.integers(len(backgrounds)))]
        image, labels = composite(products, bg, h, w, rng)
        out.append(Example(key=f"composite:{seed}:{i}", source="composite", image=image, labels=labels, split="val"))
    return out


def examples_from_rows(rows: Iterable) -> list[Example]:
    """``SegmentationExample`` rows -> examples; binary masks count as class 'other' unless a kind is set."""
    out = []
    for row in rows:
        try:
            with row.image.open("rb") as fh:
                image = np.asarray(Image.open(fh).convert("RGB"))
            with row.mask.open("rb") as fh:
                mask = np.asarray(Image.open(fh).convert("L")) >= 128
        except (OSError, ValueError) as exc:
            log.warning("skipping segmentation example %s: %s", row.pk, exc)
            continue
        if mask.shape != image.shape[:2]:
            mask = (
                cv2.resize(mask.astype(np.uint8), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
            )
        cls = CLASS_INDEX.get(row.kind or "other", CLASS_INDEX["other"])
        labels = np.where(mask, cls, BACKGROUND).astype(np.uint8)
        out.append(
            Example(
                key=f"example:{row.pk}",
                source=row.source,
                image=resize_long(image, STORE_LONG_SIDE),
                labels=resize_long(labels, STORE_LONG_SIDE, cv2.INTER_NEAREST),
                split=row.split,
            )
        )
    return out
