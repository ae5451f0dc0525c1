"""Where an exported embedder network runs: ONNX Runtime or OpenVINO, behind one ``run(batch)``.

Both read the same ONNX file (exported once per weights checksum and checked against PyTorch). ONNX Runtime runs it in
float32 on every CPU. OpenVINO runs it in bfloat16 where the CPU computes bfloat16 natively (AVX-512 BF16, AMX) and
in float32 elsewhere: on the AVX-512 BF16 EPYC this project runs on, bfloat16 embeds catalogue views about twice as
fast as ONNX Runtime, and its vectors differ from float32 by a cosine of 0.9986 on average (docs/matching.md,
"OpenVINO in bfloat16").
"""
from __future__ import annotations

import logging
import os
import threading
from functools import cache
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnx", "openvino", "torch")


def resolve(runtime: str) -> str:
    """"auto" is OpenVINO where it runs bfloat16 natively (the faster of the two there), else ONNX Runtime (as fast as
    OpenVINO in float32 on the AVX2 CPUs measured, and exactly PyTorch's vectors)."""
    if runtime != "auto":
        return runtime
    return "openvino" if openvino_loads() and openvino_precision() == "bf16" else "onnx"


def openvino_loads() -> bool:
    """Whether OpenVINO and its CPU plugin load here."""
    try:
        openvino_precision()
    except (ImportError, RuntimeError):  # no OpenVINO, or its CPU plugin would not load here
        return False
    return True


class OnnxRunner:
    def __init__(self, path: Path, threads: int) -> None:
        self._session = onnx_session(path, threads)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._session.run(None, {"input": batch})


class OpenVinoRunner:
    """One compiled model, one inference request per calling thread (a request is not thread-safe; the compiled
    model is). The batch axis stays dynamic, as exported."""

    def __init__(self, path: Path, threads: int, *, precision: str | None = None) -> None:
        """``precision``: "f32", or None for the CPU's best (``openvino_precision``)."""
        core = openvino_core()
        self._compiled = core.compile_model(core.read_model(str(path)), "CPU", {
            "INFERENCE_PRECISION_HINT": precision or openvino_precision(), "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(threads),
        })
        self._local = threading.local()

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        result = request.infer({0: batch})
        return [np.array(result[output], dtype=np.float32) for output in self._compiled.outputs]


def precision(runtime: str) -> str:
    """The number format a resolved runtime computes in."""
    return openvino_precision() if runtime == "openvino" else "f32"


Runner = OnnxRunner | OpenVinoRunner


def runner(path: Path, *, runtime: str, threads: int, precision: str | None = None) -> Runner:
    """``precision`` is OpenVINO's ("f32"; None: the CPU's best); ONNX Runtime always computes float32."""
    if resolve(runtime) == "openvino":
        return OpenVinoRunner(path, threads, precision=precision)
    return OnnxRunner(path, threads)


def export_kept(tmp: Path, path: Path, *, error: float, tolerance: float, label: str) -> Path:
    """Move a freshly exported file into ``path`` when its outputs were within ``tolerance`` of PyTorch's (``error``);
    otherwise delete it and refuse."""
    if error > tolerance:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ONNX export of {label} differs from PyTorch by {error:.2e}")
    os.replace(tmp, path)
    logger.info("exported %s to %s (max difference %.1e)", label, path, error)
    return path


def onnx_session(path: Path, threads: int):  # noqa: ANN201
    """An ONNX Runtime CPU session of ``threads`` intra-op threads, every graph optimisation on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@cache
def openvino_core():  # noqa: ANN201
    import openvino

    return openvino.Core()


@cache
def openvino_precision() -> str:
    """"bf16" where OpenVINO's CPU plugin computes bfloat16 natively, else "f32" (emulated bfloat16 is slower)."""
    capabilities = openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "bf16" if "BF16" in capabilities else "f32"
