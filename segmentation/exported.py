"""The served segmenter network exported to ONNX and run on OpenVINO (or ONNX Runtime) instead of PyTorch.

Measured on an AVX2-only EPYC, one thread, the shipped ``lite0_unet-256`` on a 256 × 192 photo and its mirror image
(one batch of two): PyTorch 153 ms, ONNX Runtime 102 ms, OpenVINO in float32 67 ms (docs/segmentation.md, "The
segmenter on OpenVINO"). So "auto" (``STOCKMATCH_SEG_RUNTIME``) is OpenVINO wherever it loads, else ONNX Runtime;
"torch" serves the network as trained. OpenVINO runs it in float32 on every CPU: its masks are PyTorch's to 1e-5,
measured; bfloat16's were not.

The file is exported once per weights checksum, with dynamic batch, height and width (photos arrive in many shapes),
and kept only when its class probabilities match PyTorch's on a sample.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from . import conf

ONNX_OPSET = 17
# Largest difference of class probabilities from PyTorch's on the export's sample (float32 runtimes give ~1e-5)
PROBABILITY_TOLERANCE = 1e-3
RUNTIMES = ("auto", "openvino", "onnx", "torch")

_export_lock = threading.Lock()


def resolve(runtime: str) -> str:
    """"auto" is OpenVINO when it loads here (the fastest measured for this network, float32 included), else ONNX
    Runtime."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown segmenter runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime != "auto":
        return runtime
    from matching.embedders.runtimes import openvino_loads

    return "openvino" if openvino_loads() else "onnx"


def onnx_path(sha256: str) -> Path:
    return conf.trained_dir() / "onnx" / f"segmenter-{sha256[:16]}-opset{ONNX_OPSET}.onnx"


def export_checked(model, path: Path, *, stride: int, label: str) -> Path:  # noqa: ANN001
    """Export ``model`` (a batch of normalised photos → class logits) to ``path``, kept only when its softmax matches
    PyTorch's within ``PROBABILITY_TOLERANCE`` on a sample of two photos; idempotent and atomic."""
    import onnxruntime as ort
    import torch

    from matching.embedders.runtimes import export_kept

    with _export_lock:
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        shape = (2, 3, 8 * stride, 6 * stride)
        sample = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32))
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        axes = {0: "batch", 2: "height", 3: "width"}
        torch.onnx.export(model, (sample,), str(tmp), dynamo=False, opset_version=ONNX_OPSET, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": axes, "logits": axes})
        with torch.inference_mode():
            expected = torch.softmax(model(sample), dim=1).numpy()
        got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(None, {"input": sample.numpy()})[0]
        error = float(np.abs(_softmax(got) - expected).max())
        return export_kept(tmp, path, error=error, tolerance=PROBABILITY_TOLERANCE, label=f"segmenter {label}")


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class ExportedNet:
    """Called like the PyTorch module it was exported from: a float32 NCHW tensor in, class logits out."""

    def __init__(self, path: Path, *, runtime: str, threads: int) -> None:
        from matching.embedders.runtimes import runner

        self.path, self.runtime = path, runtime
        self._runner = runner(path, runtime=runtime, threads=threads, precision="f32")

    def __call__(self, batch):  # noqa: ANN001, ANN204
        import torch

        return torch.from_numpy(self._runner.run(np.ascontiguousarray(batch.numpy()))[0])
