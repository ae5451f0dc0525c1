"""Scoring masks against ground truth: foreground IoU and boundary F1, over a folder of photos."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif")


def iou(pred: np.ndarray, true: np.ndarray) -> float:
    pred, true = pred > 0, true > 0
    union = np.logical_or(pred, true).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, true).sum() / union)


def _boundary(mask: np.ndarray) -> np.ndarray:
    m = (mask > 0).astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8))) > 0


def boundary_f1(pred: np.ndarray, true: np.ndarray, tolerance: float = 0.0075) -> float:
    """Boundary F-measure (Perazzi et al. 2016, DAVIS): contour pixels matched within ``tolerance`` x diagonal."""
    bp, bt = _boundary(pred), _boundary(true)
    if not bp.any() and not bt.any():
        return 1.0
    if not bp.any() or not bt.any():
        return 0.0
    radius = max(1, round(tolerance * float(np.hypot(*pred.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    near_t = cv2.dilate(bt.astype(np.uint8), kernel) > 0
    near_p = cv2.dilate(bp.astype(np.uint8), kernel) > 0
    precision = (bp & near_t).sum() / bp.sum()
    recall = (bt & near_p).sum() / bt.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def pairs(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    found = []
    for path in sorted(Path(images_dir).iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            mask = Path(masks_dir) / f"{path.stem}.png"
            if mask.exists():
                found.append((path, mask))
    return found


def read_photo(path: Path) -> Image.Image:
    from catalog.imaging import to_rgb

    with Image.open(path) as im:
        im.load()
        return to_rgb(ImageOps.exif_transpose(im) or im)


def read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as im:
        mask = np.asarray(im.convert("L")) >= 128
    if (mask.shape[1], mask.shape[0]) != size:
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return mask


def read_labels(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A class map (PNG, values index ``classes.CLASSES``) at the photo's size."""
    with Image.open(path) as im:
        labels = np.asarray(im.convert("L"))
    if (labels.shape[1], labels.shape[0]) != size:
        labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    return labels


class _GarmentScore:
    """Per-class IoU of ``cut_out_garments``' kinds (intersections and unions summed over the set) and the
    garments it found against the kinds each class map shows."""

    def __init__(self) -> None:
        from .classes import GARMENT_KINDS

        self.kinds = GARMENT_KINDS
        self.inter = dict.fromkeys(GARMENT_KINDS, 0)
        self.union = dict.fromkeys(GARMENT_KINDS, 0)
        self.counts = {k: {"truth": 0, "found": 0, "matched": 0} for k in GARMENT_KINDS}
        self.unknown = 0  # cut-outs without a kind (no network, or nothing passed the rules)
        self.photos = 0
        self.exact = 0

    def add(self, labels: np.ndarray, garments: list) -> None:
        from .classes import CLASS_INDEX, CLASSES
        from .garments import kinds_in_labels

        truth = set(kinds_in_labels(labels, CLASSES))
        found = [g.kind for g in garments if g.status == "ok"]
        self.unknown += sum(1 for k in found if k is None)
        for kind in self.kinds:
            true = labels == CLASS_INDEX[kind]
            pred = np.zeros(labels.shape, bool)
            for g in garments:
                if g.status == "ok" and g.kind == kind:
                    pred |= g.mask > 0
            self.inter[kind] += int((true & pred).sum())
            self.union[kind] += int((true | pred).sum())
            n_found = found.count(kind)
            self.counts[kind]["truth"] += int(kind in truth)
            self.counts[kind]["found"] += n_found
            self.counts[kind]["matched"] += int(kind in truth and n_found > 0)
        self.photos += 1
        self.exact += int(sorted(found, key=str) == sorted(truth))

    def report(self) -> tuple[dict, dict]:
        per_class = {k: round(self.inter[k] / self.union[k], 4) if self.union[k] else None for k in self.kinds}
        totals = {key: sum(c[key] for c in self.counts.values()) for key in ("truth", "found", "matched")}
        garments = {
            **totals,
            "found_without_kind": self.unknown,
            "photos": self.photos,
            "photos_exact": round(self.exact / max(1, self.photos), 4),
            "per_kind": self.counts,
        }
        return per_class, garments


def evaluate_folder(images_dir: Path, masks_dir: Path, method: str = "auto", labels_dir: Path | None = None) -> dict:
    """The ``evaluate_segmentation`` report. Timings are per ``cut_out`` call; the network is loaded before
    timing starts. With class maps (``labels_dir``/NAME.png) it also scores ``cut_out_garments``:
    ``per_class_iou`` per garment kind and ``garments`` found against the kinds each map shows."""
    from .services import _network, cut_out, cut_out_garments

    found = pairs(images_dir, masks_dir)
    if not found:
        raise FileNotFoundError(f"No image/mask pairs: {images_dir}/NAME.jpg|png with {masks_dir}/NAME.png")
    if method in ("auto", "tiramisu"):
        _network()
    ious, f1s, times = [], [], []
    version = None
    garments = _GarmentScore() if labels_dir is not None else None
    for image_path, mask_path in found:
        photo = read_photo(image_path)
        truth = read_mask(mask_path, photo.size)
        started = time.perf_counter()
        result = cut_out(photo, method=method)
        times.append((time.perf_counter() - started) * 1000)
        version = version or result.model_version
        ious.append(iou(result.mask, truth))
        f1s.append(boundary_f1(result.mask, truth))
        label_path = Path(labels_dir) / f"{image_path.stem}.png" if labels_dir is not None else None
        if garments is not None and label_path.exists():
            garments.add(read_labels(label_path, photo.size), cut_out_garments(photo, method=method))
    per_class, counts = garments.report() if garments is not None and garments.photos else (None, None)
    return {
        "n_images": len(found),
        "miou": round(float(np.mean(ious)), 4),
        "boundary_f1": round(float(np.mean(f1s)), 4),
        "ms_per_image_p50": round(float(np.percentile(times, 50)), 1),
        "method": method,
        "model_version": version,
        "per_class_iou": per_class,
        "garments": counts,
    }
