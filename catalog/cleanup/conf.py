"""Cleanup thresholds: ``settings.CLEANUP`` overrides any of these (measured values in docs/cleanup.md)."""
from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # bad photos
    "MIN_SIDE": 128,  # px: a shorter side is "small"
    # Variance of the Laplacian of the contrast-stretched grey photo at <= 256 px, over the garment:
    # sharp studio photos measure 840 and up, Gaussian-blurred ones (sigma 1.5-3) under 230.
    "BLUR_VARIANCE": 250.0,
    "DARK_P99": 110,  # even the brightest 1% of the photo is darker than this
    "DARK_MEAN": 45,
    "BRIGHT_P05": 225,  # even the darkest 5% is lighter than this (washed out)
    "MIN_GARMENT_SHARE": 0.02,  # less of the frame than this is garment: nothing found
    "CUT_OFF_EDGE_SHARE": 0.6,  # the garment covers this much of one edge while another edge is clear
    "SEGMENT_PHOTOS": True,  # non-studio photos: ask the segmentation network for the garment mask
    # duplicates
    "PHASH_MAX_DISTANCE": 10,  # bits of 64
    "THUMB_MAX_DIFFERENCE": 2.5,  # mean abs difference of 8x8 RGB thumbnails (re-encoded/resized copies < 1.3)
    # Cropped copies: a photo's nearest other product (known duplicates counted as one) is checked on the
    # photos (ORB) when it is at least the floor alike and either picks the photo back as its own nearest or
    # beats the next product by the margin. Per embedder backbone, from the crops of bench/cleanup_quality.py
    # at 300 and 2,000 products (docs/cleanup.md, "Photo checks"): crops measure 0.73+ with the ImageNet
    # embedder, 0.81+ with the trained 256-d one, whose space also spreads look-alikes further apart.
    "VISUAL_NEIGHBOURS": 10,  # nearest images read per image (enough to see the next product)
    "VISUAL_GATE_BY_BACKBONE": {
        "efficientnet-lite0": (0.7, 0.005),
        "efficientnet-lite0-ft256": (0.78, 0.03),
        "efficientnet-lite0-ft256x2": (0.70, 0.02),  # two tails: their mean similarity is lower (docs/cleanup.md)
        # three tails: the two tails and a third (stop 27), and the seeded three tails shipped since (stop 29),
        # which share the backbone name; bench/cleanup_quality.py keeps every crop with either (docs/cleanup.md)
        "efficientnet-lite0-ft256x3": (0.70, 0.02),
        # six tails of two backbones projected to 768-d (stop 32): the three tails' gate keeps every crop of
        # bench/cleanup_quality.py (docs/cleanup.md)
        "efficientnet-lite0+lite1-ft256x6p768": (0.70, 0.02),
    },
    "VISUAL_FLOOR": 0.7,  # (floor, margin) for other embedders
    "VISUAL_MARGIN": 0.0,
    "VISUAL_SURE": 0.97,  # product pairs this alike are duplicates without a photo-level check
    "ORB_FEATURE_SIZE": 224,  # px, longer side; 192 loses crops (inliers fall under ORB_MIN_INLIERS)
    "ORB_FEATURE_COUNT": 400,
    "ORB_MIN_INLIERS": 30,  # cropped copies: 49 and up at 224 px; the same model and pose in another shirt: 35-85
    "ORB_MAX_COLOUR_DIFFERENCE": 12.0,  # after alignment: cropped copies <= 7, other shirts 13-26
    # A full scan's photo checks go to Celery in chunks of this many (several workers share them).
    "PHOTO_CHECK_CHUNK": 2000,
    # A full scan with more photos than this to sign (decode, hash, measure) shares them out in chunks of this
    # size first: 100k photos take far longer than one task's time limit. ~50-100 ms per photo here.
    "SIGNATURE_CHUNK": 1000,
    # wrong labels
    "LABEL_NEIGHBOURS": 10,
    "KIND_MIN_CONFIDENCE": 0.6,
    "GENDER_MIN_CONFIDENCE": 0.7,
    "LABEL_MIN_VOTERS": 4,
    # incremental scans after catalogue changes
    "AUTO_SCAN": True,
}


def cleanup_setting(name: str) -> Any:
    return getattr(settings, "CLEANUP", {}).get(name, DEFAULTS[name])


def visual_gate(backbone: str) -> tuple[float, float]:
    """(floor, margin) of the visual candidates worth a photo check, for vectors of this embedder backbone."""
    gate = (cleanup_setting("VISUAL_GATE_BY_BACKBONE") or {}).get(backbone.split("@")[0])
    floor, margin = gate if gate else (cleanup_setting("VISUAL_FLOOR"), cleanup_setting("VISUAL_MARGIN"))
    return float(floor), float(margin)
