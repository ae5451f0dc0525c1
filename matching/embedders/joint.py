"""The matching embedder and the appearance embedder over the same views in one pass.

A mirror frame's garments are embedded for matching and then, view for view, by the appearance embedder the
classification heads read (``matching.appearance``). The shipped files both run EfficientNet-Lite1's ImageNet
blocks 0-14 at 240 pixels before their trained tails, and those blocks are about four fifths of a Lite1 pass
(docs/mirror.md, "One front for matching and appearance"). ``JointEmbedder`` serves ``network.JointNet`` over
both files, which runs such a shared front once, exported to ONNX and checked against PyTorch like each embedder.
Its vectors are each embedder's own: the same views, preprocessing and normalisation.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .base import distinct_views, group_means, l2_normalise
from .efficientnet import ONNX_OPSET, onnx_dir, onnx_export_checked
from .runtimes import runner
from .trained import TrainedEfficientNetLite0


def shares_a_front(primary: object, companion: object) -> bool:
    """Whether one pass can serve both: two trained files on the same preprocessing whose networks run a common
    ImageNet front at the same input size."""
    if not (isinstance(primary, TrainedEfficientNetLite0) and isinstance(companion, TrainedEfficientNetLite0)):
        return False
    if primary.preprocessing != companion.preprocessing or primary.runtime != companion.runtime:
        return False
    return bool(primary.front_keys & companion.front_keys)


class JointEmbedder:
    """``embed_groups(groups)`` → (the primary's vectors, the companion's vectors), one unit vector per group each."""

    def __init__(self, primary: TrainedEfficientNetLite0, companion: TrainedEfficientNetLite0) -> None:
        self.primary, self.companion = primary, companion
        self._runner = None
        self._net = None
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return f"{self.primary.version}|{self.companion.version}"

    def onnx_path(self) -> Path:
        return onnx_dir() / f"joint-{self.primary.checksum[:16]}-{self.companion.checksum[:16]}-opset{ONNX_OPSET}.onnx"

    def torch_net(self):  # noqa: ANN201
        if self._net is None:
            from ..training.network import JointNet

            self._net = JointNet(self.primary.torch_net(), self.companion.torch_net()).eval()
        return self._net

    def _torch_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            return [output.numpy() for output in self.torch_net()(torch.from_numpy(batch))]

    def export_onnx(self) -> Path:
        path = self.onnx_path()
        if path.exists():
            return path
        return onnx_export_checked(
            self.torch_net(), path, size=self.primary.preprocessing.input_size, outputs=["embedding", "appearance"],
            reference=lambda batch: [self.primary.torch_features(batch), self.companion.torch_features(batch)],
            label=self.version,
        )

    def _forward(self, batch: np.ndarray) -> list[np.ndarray]:
        if self.primary.runtime == "torch":
            return self._torch_outputs(batch)
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    self._runner = runner(self.export_onnx(), runtime=self.primary.runtime,
                                          threads=self.primary.threads)
        return self._runner.run(batch)

    def embed_groups(self, groups: Sequence[Sequence[Image.Image]]) -> tuple[np.ndarray, np.ndarray]:
        views, layout = distinct_views(groups)
        size = self.primary.batch_size
        parts = [self._forward(self.primary.preprocessing.tensor(views[start : start + size]))
                 for start in range(0, len(views), size)]
        if not parts:
            return (np.zeros((len(groups), self.primary.dimension), np.float32),
                    np.zeros((len(groups), self.companion.dimension), np.float32))
        embedding = l2_normalise(np.concatenate([part[0] for part in parts]))[layout]
        appearance = l2_normalise(np.concatenate([part[1] for part in parts]))[layout]
        return group_means(embedding, groups), group_means(appearance, groups)
