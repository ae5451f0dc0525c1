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
    # Nearest images per image checked for cropped copies: a crop is its original's nearest neighbour (either
    # way) 114 times in 120, within 3 in 117, within 5 in 118 (EfficientNet-Lite0 GeM, catalogue photos).
    "VISUAL_NEIGHBOURS": 3,
    "VISUAL_FLOOR": 0.7,  # cosine similarity below which neighbours are not checked (crops: 0.73 and up)
    "VISUAL_SURE": 0.97,  # product pairs this alike are duplicates without a photo-level check
    "ORB_MIN_INLIERS": 30,  # cropped copies: 64 and up; the same model and pose in another shirt: 35-85
    "ORB_MAX_COLOUR_DIFFERENCE": 12.0,  # at 128 px after alignment: cropped copies <= 5, other shirts 13-26
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
