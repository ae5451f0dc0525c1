"""The result type shared with the other apps (see docs/CONTRACTS.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

METHODS = ("auto", "grabcut", "tiramisu")


@dataclass
class CutOut:
    mask: np.ndarray  # uint8 HxW, 0/255, at the input image's resolution
    cutout: Image.Image  # RGB, segmentation.view.garment_view: the garment on grey, box + 4 % margin, padded square
    bbox: tuple[int, int, int, int] | None  # x0, y0, x1, y1 in input coordinates; None when empty
    method: str  # the method actually used ("grabcut", "tiramisu", "auto", "none")
    model_version: str | None  # SegmenterModel name/version when a network was used
    ms: float  # wall time
    status: str  # "ok" | "empty" (no garment found: cutout is the whole photo)
    kind: str | None = None  # garment kind for cut_out_garments
    confidence: float | None = None  # cut_out_garments: the network's mean probability of ``kind`` over the mask
    # cut_out_garments: share of the whole photo the network calls skin or hair (someone wears or holds it);
    # None without a network
    person_share: float | None = None
    # cut_out_garments: ``person_share`` reaches the serving network's own threshold (``person_min_share`` of its
    # version); None without a network
    person_seen: bool | None = None


class SegmentationInputError(ValueError):
    """An image segmentation cannot use, with the reason."""
