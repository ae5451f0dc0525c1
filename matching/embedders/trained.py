"""A fine-tuned EfficientNet-Lite (``manage.py train_embedder``; Lite0 unless the file names a larger one): ImageNet
front, trained tail and projection.

The weights file holds only what training changed (the tail blocks, the head convolution, the projection; or
several such tails, an ensemble) and names its split and dimension; the front comes from the ImageNet package.
Runtime, ONNX export and its check against PyTorch are the ImageNet embedder's; the version is the trained file's
checksum.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .base import Preprocessing
from .efficientnet import EfficientNetLite0, file_sha256

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..training.network import EmbedderNet


def weights_file(weights: str | Path) -> Path:
    """A trained weights path as a version row or setting stores it: relative paths are under the project."""
    path = Path(weights)
    if path.is_absolute():
        return path
    from django.conf import settings

    return Path(settings.BASE_DIR) / path


class TrainedEfficientNetLite0(EfficientNetLite0):
    def __init__(self, *, name: str, weights: str, **options) -> None:
        super().__init__(name=name, weights=weights, pooling="gem", **options)
        self.weights_path = str(weights_file(weights))
        meta = self._file_meta = self._meta()
        self.dimension = int(meta.get("dimension", 256))
        members = int(meta.get("members", 1))
        # An ensemble of tails (network.ensemble_write) names its members' size and count: ...-ft256x2.
        # A tail trained for the heads' garment kind and gender (``train_attributes``) says so: ...-attr256.
        tag = "attr" if meta.get("purpose") == "attributes" else "ft"
        base = meta.get("backbone", "efficientnet-lite0")  # files from before backbones were recorded are Lite0
        self.backbone = (f"{base}-{tag}{meta['member_dimension']}x{members}" if members > 1
                         else f"{base}-{tag}{self.dimension}")
        if members > 1 and self.dimension != int(meta["member_dimension"]) * members:  # projected (mixed_write)
            self.backbone += f"p{self.dimension}"
        pre = meta.get("preprocessing") or {}
        if options.get("studio_mask_rule") is None:
            self.studio_mask_rule = int(pre.get("studio_mask", 1))  # files trained before the rule was recorded: 1
        self.preprocessing = Preprocessing(
            input_size=int(pre.get("input_size", 224)), mean=tuple(pre.get("mean", (0.5,) * 3)),
            std=tuple(pre.get("std", (0.5,) * 3)),
        )

    def _meta(self) -> dict:
        """Split, dimension and preprocessing, as the weights file itself records them."""
        import torch

        return dict(torch.load(self.weights_path, map_location="cpu", weights_only=True).get("meta", {}))

    @property
    def front_keys(self) -> set[tuple]:
        """The ImageNet fronts its network runs (``network.front_keys``): what ``JointEmbedder`` can share."""
        from ..training.network import front_keys

        return front_keys(self._file_meta, self.preprocessing.input_size)

    def _sidecar(self) -> dict:
        sidecar = Path(self.weights_path).with_suffix(".json")
        return json.loads(sidecar.read_text()) if sidecar.exists() else {}

    @property
    def checksum(self) -> str:
        return file_sha256(self.weights_path)

    @property
    def pooling_tag(self) -> str:
        return ""

    @property
    def metrics(self) -> dict:
        return self._sidecar().get("metrics", {})

    @property
    def shipped_calibration(self) -> dict:
        """``{"thresholds", "metrics"}`` fitted on the validation pairs when the weights were made, or {}."""
        return self._sidecar().get("calibration", {})

    def verify(self) -> None:
        """Refuse weights whose checksum differs from the one their sidecar records."""
        expected = self._sidecar().get("sha256")
        if expected and expected != self.checksum:
            raise RuntimeError(f"{self.weights_path}: checksum {self.checksum[:12]} does not match its sidecar "
                               f"({expected[:12]}); the file is damaged or was replaced.")

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        return features  # the trained network pools and projects itself

    def torch_net(self) -> EmbedderNet:
        if self._net is None:
            import torch

            from ..training.network import load_trained

            self.verify()
            torch.set_num_threads(self.threads)
            net, _ = load_trained(self.weights_path)
            self._net = net
        return self._net

    def imagenet_logits(self, images: list[Image.Image]) -> np.ndarray:
        raise NotImplementedError("A fine-tuned embedder has no ImageNet classifier.")

