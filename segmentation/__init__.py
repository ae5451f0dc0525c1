"""Garment segmentation: GrabCut, the Tiramisu network and both together (contract in docs/CONTRACTS.md)."""

from __future__ import annotations

from .hints import HintError
from .services import cut_out, cut_out_garments
from .types import METHODS, CutOut, SegmentationInputError

__all__ = ["METHODS", "CutOut", "HintError", "SegmentationInputError", "cut_out", "cut_out_garments"]
