"""Garment segmentation: GrabCut, the Tiramisu network and both together.

The public names are imported lazily so that ``import segmentation`` stays light (no torch, no OpenCV)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .hints import HintError
    from .services import cut_out, cut_out_garments
    from .types import CutOut, SegmentationInputError

__all__ = ["CutOut", "HintError", "SegmentationInputError", "cut_out", "cut_out_garments"]


def __getattr__(name: str):
    if name in ("cut_out", "cut_out_garments"):
        from . import services

        return getattr(services, name)
    if name in ("CutOut", "SegmentationInputError"):
        from . import types

        return getattr(types, name)
    if name == "HintError":
        from .hints import HintError

        return HintError
    raise AttributeError(f"module 'segmentation' has no attribute {name!r}")
