"""Splitting one garment mask into real garments by the network's kinds (``cut_out_garments``).

Per-pixel argmax alone gives speckle and slivers (a few "topwear" pixels on a dress, a strap between two
parts of one top), so the split is decided per kind, not per pixel:
1. the garment mask gains the pixels the network calls footwear (GrabCut and the clean-up drop shoes, small
   parts apart from the person); probabilities are smoothed a little, each mask pixel takes the most likely worn
   class (bags, belts and other accessories included, so they do not end up in a garment);
2. a kind's pixels are one garment (both shoes are one footwear cut-out, a top cut in two by a bag strap is one
   top); components much smaller than the kind's largest are dropped, and a kind must cover a minimum share of
   the photo and of everything worn, or it is no garment at all;
3. a full-body garment absorbs a top or bottom part that is small next to it or that the network is unsure of
   (the bodice and skirt of a dress), while a confident, sizeable top over a dress stays a garment of its own;
   without a full-body garment, stray full-body pixels go to the top or the bottom, whichever is more likely;
   a full-body region smaller than a confident top and a confident bottom on either side of it is such stray
   pixels too (the seam of a tucked-in shirt), not a dress;
4. a full-body garment standing above a bottom garment of its own is a long top (a coat over trousers) and
   joins the top.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import postprocess
from .classes import GARMENT_KINDS

MIN_PHOTO_SHARE = {"footwear": 0.003}  # of the photo; shoes on a full-length street photo are small
DEFAULT_MIN_PHOTO_SHARE = 0.012
MIN_WORN_SHARE = 0.04  # of all worn pixels
KEEP_RATIO = 0.2  # components smaller than this share of the kind's largest are slivers
SEPARATE_CONFIDENCE = 0.55  # a top/bottom over a full-body garment stays separate only when at least this sure
SEPARATE_AREA = 0.3  # ... and at least this large next to the full-body garment


@dataclass
class Garment:
    kind: str
    mask: np.ndarray  # bool, at the mask's (working) size
    confidence: float

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def split_garments(mask: np.ndarray, probs: np.ndarray, classes: list[str]) -> list[Garment]:
    """Real garments in ``mask`` (bool HxW) from class probabilities (C x H x W over ``classes``), largest first.
    Empty when the network knows none of the garment kinds or nothing passes the size rules."""
    kinds = [k for k in GARMENT_KINDS if k in classes]
    if not kinds or not mask.any():
        return []
    if "footwear" in classes:  # GrabCut and the component clean-up drop shoes: small parts apart from the person
        mask = mask | (probs.argmax(axis=0) == classes.index("footwear"))
    worn = kinds + (["other"] if "other" in classes else [])
    channels = np.stack([cv2.blur(probs[classes.index(k)], (3, 3)) for k in worn])
    assigned = channels.argmax(axis=0)
    prob = {k: probs[classes.index(k)] for k in kinds}
    regions = {k: _tidy(mask & (assigned == i)) for i, k in enumerate(kinds)}
    worn_pixels = int(mask.sum())

    def big_enough(kind: str, region: np.ndarray) -> bool:
        area = int(region.sum())
        return area >= MIN_PHOTO_SHARE.get(kind, DEFAULT_MIN_PHOTO_SHARE) * mask.size and area >= (
            MIN_WORN_SHARE * worn_pixels
        )

    merged: dict[str, list[str]] = {k: [k] for k in kinds}
    if "full-body" in regions and _squeezed(regions, prob, big_enough):
        regions["full-body"] = np.zeros_like(regions["full-body"])  # the stray pixels go to the halves below
    if "full-body" in regions and big_enough("full-body", regions["full-body"]):
        body = regions["full-body"]
        for part in ("topwear", "bottomwear"):
            region = regions.get(part)
            if region is None or not region.any():
                continue
            confident = float(prob[part][region].mean()) >= SEPARATE_CONFIDENCE
            sizeable = region.sum() >= SEPARATE_AREA * body.sum()
            if not (confident and sizeable and big_enough(part, region)):
                body = body | region
                regions[part] = np.zeros_like(region)
                merged["full-body"].append(part)
        regions["full-body"] = _tidy(body)
    elif "full-body" in regions:
        stray = regions.pop("full-body") | (mask & (assigned == kinds.index("full-body")))
        halves = [k for k in ("topwear", "bottomwear") if k in prob]
        if halves:
            pick = np.stack([prob[k] for k in halves]).argmax(axis=0)
            for i, k in enumerate(halves):
                regions[k] = _tidy(regions[k] | (stray & (pick == i)))
    if _long_top(regions, big_enough):
        regions["topwear"] = _tidy(regions["topwear"] | regions["full-body"])
        regions["full-body"] = np.zeros_like(regions["full-body"])
        merged["topwear"] = ["topwear", "full-body"]
    garments = []
    for kind, region in regions.items():
        if not region.any() or not big_enough(kind, region):
            continue
        together = sum(prob[k] for k in merged[kind])
        garments.append(Garment(kind, region, round(float(np.clip(together[region].mean(), 0, 1)), 4)))
    garments.sort(key=lambda g: -g.area)
    return garments


def _squeezed(regions: dict[str, np.ndarray], prob: dict[str, np.ndarray], big_enough) -> bool:  # noqa: ANN001
    """A "full-body" region smaller than both a confident top and a confident bottom beside it is the seam
    between them (a tucked-in shirt, a belt line), not a dress."""
    body = regions["full-body"]
    halves = {k: regions.get(k) for k in ("topwear", "bottomwear")}
    if not body.any() or any(h is None or not big_enough(k, h) for k, h in halves.items()):
        return False
    sure = all(float(prob[k][h].mean()) >= SEPARATE_CONFIDENCE for k, h in halves.items())
    return sure and body.sum() < min(int(h.sum()) for h in halves.values())


def _long_top(regions: dict[str, np.ndarray], big_enough) -> bool:  # noqa: ANN001
    """A "full-body" garment that stands above a bottom garment of its own is a long top (a coat, a long
    jacket or tunic over trousers or a skirt), not a dress: a dress is the bottom half itself."""
    body, bottom = regions.get("full-body"), regions.get("bottomwear")
    if body is None or bottom is None or "topwear" not in regions:
        return False
    if not (body.any() and bottom.any() and big_enough("full-body", body) and big_enough("bottomwear", bottom)):
        return False
    return float(np.nonzero(body)[0].mean()) < float(np.nonzero(bottom)[0].mean())


def _tidy(region: np.ndarray) -> np.ndarray:
    """One kind's pixels without specks and slivers, small holes filled."""
    if not region.any():
        return region
    return postprocess.clean(region, keep_ratio=KEEP_RATIO, hole_ratio=0.05)


def kinds_in_labels(labels: np.ndarray, classes: list[str] | tuple[str, ...], min_share: float = 0.003) -> list[str]:
    """The garment kinds a class map shows (each covering at least ``min_share`` of the photo): the truth
    that ``cut_out_garments`` is scored against."""
    counts = np.bincount(labels.ravel(), minlength=len(classes))
    return [k for k in GARMENT_KINDS if k in classes and counts[classes.index(k)] >= min_share * labels.size]
