"""The runtime segmenter: one object owns the network, loaded lazily under a lock.

Resolution order: the active ``SegmenterModel`` row (file present, checksum matching), else the weights
shipped in ``models/segmenter/``. When neither loads, ``get_segmenter()`` returns None and callers fall back
to GrabCut alone."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db import DatabaseError

from . import conf
from .weights import WeightsError, load_network, resolve_path, sha256_file, shipped_sidecar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmenterSpec:
    version: str
    weights_path: Path
    sha256: str | None
    # skin + hair share from which a person is seen, measured for this network (bench/person_share.py); None:
    # the setting's default
    person_min_share: float | None = None


class Segmenter:
    """A Tiramisu network ready for prediction at working size."""

    def __init__(self, spec: SegmenterSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._model = None
        self.meta: dict = {}

    @property
    def version(self) -> str:
        return self.spec.version

    def load(self) -> Segmenter:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import torch

                    torch.set_num_threads(max(1, conf.torch_threads()))
                    model, meta = load_network(self.spec.weights_path, self.spec.sha256)
                    self.meta = meta
                    self._model = self._served(model)
        return self

    def _served(self, model):  # noqa: ANN001, ANN202
        """The network as it runs here: exported (``exported.py``) unless the runtime is "torch"; PyTorch when the
        export fails, so segmentation never stops for it."""
        from . import exported

        runtime = exported.resolve(conf.runtime())
        if runtime == "torch":
            return model
        sha256 = self.spec.sha256 or sha256_file(self.spec.weights_path)
        try:
            path = exported.export_checked(model, exported.onnx_path(sha256), stride=int(self.meta["input"]["stride"]),
                                           label=self.version)
            return exported.ExportedNet(path, runtime=runtime, threads=conf.torch_threads())
        except (OSError, RuntimeError, ImportError) as exc:
            log.error("segmenter %s stays on PyTorch: %s", self.version, exc)
            return model

    @property
    def runtime(self) -> str:
        self.load()
        return getattr(self._model, "runtime", "torch")

    @property
    def onnx_path(self) -> Path | None:
        """The exported file served, None on PyTorch."""
        self.load()
        return getattr(self._model, "path", None)

    @property
    def classes(self) -> list[str]:
        self.load()
        return list(self.meta.get("classes", []))

    @property
    def person_min_share(self) -> float:
        return self.spec.person_min_share if self.spec.person_min_share is not None else conf.person_min_share()

    @property
    def long_side(self) -> int:
        self.load()
        return int(self.meta.get("input", {}).get("long_side", conf.working_size()))

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities (C x H x W float32) for an RGB uint8 image at working size."""
        import torch

        from .inference import predict_probs

        self.load()
        with torch.inference_mode():
            return predict_probs(self._model, image, int(self.meta["input"]["stride"]), flip=conf.flip_tta())


_lock = threading.Lock()
_state: dict = {}  # "segmenter", "token" (what the database said was active), "checked" (monotonic seconds)
_UNKNOWN = object()


def _active_spec() -> SegmenterSpec | None | object:
    """The active version's spec, None when no row is active, ``_UNKNOWN`` when the database cannot say."""
    try:
        from .models import SegmenterModel  # not at module level: segmentation/__init__ loads before the app registry

        fields = ("name", "weights_path", "weights_sha256", "config")
        row = SegmenterModel.objects.filter(active=True).only(*fields).first()
    except DatabaseError as exc:  # no database (or not migrated): shipped weights still work
        log.warning("segmenter versions unavailable (%s)", exc)
        return _UNKNOWN
    if row is None:
        return None
    return SegmenterSpec(
        version=row.name,
        weights_path=resolve_path(row.weights_path),
        sha256=row.weights_sha256,
        person_min_share=(row.config or {}).get("person_min_share"),
    )


def _shipped_spec() -> SegmenterSpec | None:
    sidecar = shipped_sidecar()
    if sidecar is None:
        return None
    return SegmenterSpec(
        version=sidecar["version"],
        weights_path=Path(sidecar["weights_path"]),
        sha256=sidecar["sha256"],
        person_min_share=sidecar.get("person_min_share"),
    )


def _load_first(*specs: SegmenterSpec | None) -> Segmenter | None:
    for spec in specs:
        if spec is None:
            continue
        try:
            return Segmenter(spec).load()
        except WeightsError as exc:
            log.error("segmenter %s unusable: %s", spec.version, exc)
    return None


def get_segmenter() -> Segmenter | None:
    """The segmenter serving now (loaded): the active version, else the shipped weights; None when neither
    loads (a missing or altered file is logged and skipped, so intake falls back to GrabCut).

    Every process (web, Celery) asks the database which version is active at most every
    ``STOCKMATCH_SEG_VERSION_CHECK_SECONDS`` (one indexed query) and loads the new one when it changed, so an
    activation reaches running processes without a restart."""
    with _lock:
        now = time.monotonic()
        if "segmenter" in _state and now - _state["checked"] < conf.version_check_seconds():
            return _state["segmenter"]
        active = _active_spec()
        _state["checked"] = now
        if active is _UNKNOWN:
            if "segmenter" not in _state:  # no database yet: serve the shipped weights, ask again next time
                _state.update(segmenter=_load_first(_shipped_spec()), token=_UNKNOWN)
            return _state["segmenter"]
        token = None if active is None else (active.version, active.sha256)
        if "segmenter" in _state and _state["token"] == token:
            return _state["segmenter"]
        segmenter = _load_first(active, _shipped_spec())
        if "segmenter" in _state and segmenter is not None:
            log.info("segmenter version changed: now serving %s", segmenter.version)
        _state.update(segmenter=segmenter, token=token)
        return segmenter


def reset_segmenter() -> None:
    """Forget the loaded segmenter (after activating another version in this process)."""
    with _lock:
        _state.clear()
