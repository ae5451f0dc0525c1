"""The embedder interface: lazy, lock-guarded ``load()`` and a batched ``embed()``."""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from ..preprocess import STUDIO_MASK_RULE


@dataclass(frozen=True)
class Preprocessing:
    """How the weights expect their input; travels with the weights checksum (timm's default_cfg)."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def to_dict(self) -> dict:
        return asdict(self)

    def tensor(self, images: Sequence[Image.Image]) -> np.ndarray:
        """N×3×S×S float32: each image squashed to S×S (catalogue photos are squashed squares too)."""
        size = self.input_size
        batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
        for i, image in enumerate(images):
            batch[i] = np.asarray(_resized(image, size), dtype=np.uint8)
        array = batch.astype(np.float32) * (1.0 / 255.0)
        array -= np.asarray(self.mean, dtype=np.float32)
        array /= np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(array.transpose(0, 3, 1, 2))


def _resized(image: Image.Image, size: int) -> Image.Image:
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size == (size, size):
        return image
    # reducing_gap: cheap box reduction first, so a 12 MP photo costs milliseconds, not a full filter pass.
    return image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def distinct_views(groups: Sequence[Sequence[Image.Image]]) -> tuple[list[Image.Image], np.ndarray]:
    """The views to embed, each picture once, and for every view of ``groups`` (laid out group after group) its row
    among them. A picture given twice is the same object: a photo with no garment found has one picture for its
    garment and context views (``preprocess.canonical_views``, ``services._views_of``)."""
    distinct: list[Image.Image] = []
    rows: dict[int, int] = {}
    layout = []
    for view in (view for group in groups for view in group):
        if id(view) not in rows:
            rows[id(view)] = len(distinct)
            distinct.append(view)
        layout.append(rows[id(view)])
    return distinct, np.asarray(layout, dtype=np.intp)


def group_means(vectors: np.ndarray, groups: Sequence[Sequence]) -> np.ndarray:
    """One unit vector per group from the vectors of its members, laid out group after group."""
    out = np.zeros((len(groups), vectors.shape[1]), dtype=np.float32)
    start = 0
    for n, group in enumerate(groups):
        out[n] = vectors[start : start + len(group)].mean(axis=0)
        start += len(group)
    return l2_normalise(out)


class Embedder:
    """Turns photos into L2-normalised vectors. Subclasses implement ``_load`` and ``_forward``.

    ``version`` names the weights (backbone + checksum): vectors from different versions are never
    compared. The runtime (PyTorch, ONNX Runtime, OpenVINO) is not part of it: the first two give the same vectors, and
    OpenVINO's bfloat16 ones are within a cosine of 0.99 of them (``runtimes``).
    """

    backbone: str = ""
    dimension: int = 0
    preprocessing: Preprocessing

    def __init__(self, *, name: str, batch_size: int = 32, context_view: bool = False,
                 studio_mask_rule: int | None = None, **options) -> None:
        self.name = name
        self.batch_size = int(batch_size)
        # Each photo is embedded as the mean of its garment view and its context view (both sides alike):
        # it changes the vectors, so it is part of the version ("+ctx").
        self.context_view = bool(context_view)
        # How a studio photo's garment is cut from its white background (``preprocess.studio_mask``): a version
        # row made with an earlier rule keeps being served with it.
        self.studio_mask_rule = int(studio_mask_rule) if studio_mask_rule is not None else STUDIO_MASK_RULE
        self.options = options
        self._loaded = False
        self._load_lock = threading.Lock()

    @property
    def checksum(self) -> str:
        raise NotImplementedError

    @property
    def views_tag(self) -> str:
        return "+ctx" if self.context_view else ""

    @property
    def mask_tag(self) -> str:
        """"+m2" for a studio mask rule after the first: it changes catalogue vectors, so it names a new version."""
        return "" if self.studio_mask_rule == 1 else f"+m{self.studio_mask_rule}"

    @property
    def version(self) -> str:
        return f"{self.backbone}{self.views_tag}{self.mask_tag}@{self.checksum[:12]}"

    def load(self) -> None:
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """N×D float32, unit length, in input order; batched by ``batch_size``."""
        self.load()
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            parts.append(self._forward(self.preprocessing.tensor(chunk)))
        return l2_normalise(np.concatenate(parts, axis=0))

    def embed_groups(self, groups: Sequence[Sequence[Image.Image]]) -> np.ndarray:
        """One unit vector per group of views of one photo: the normalised mean of the views' vectors (a picture
        given twice is embedded once, ``distinct_views``)."""
        views, layout = distinct_views(groups)
        return group_means(self.embed(views)[layout], groups)

    def preprocessing_record(self) -> dict:
        """What a version row stores of the input recipe: the weights' preprocessing and the views."""
        return {**self.preprocessing.to_dict(), "context_view": self.context_view,
                "studio_mask": self.studio_mask_rule}

    def describe(self) -> dict:
        return {
            "backbone": self.backbone, "checksum": self.checksum, "dimension": self.dimension,
            "preprocessing": self.preprocessing_record(), "runtime": getattr(self, "runtime", ""),
        }

    def _load(self) -> None:
        raise NotImplementedError

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError
