"""Gender and category kind of a garment from its embedding vector (the mirror's "what is this?").

``classify_vectors`` uses the active trained head of the vectors' own embedding model version for each
attribute (``manage.py train_heads``, ``matching/heads.py``); an attribute without one is predicted by
similarity-weighted voting of the nearest catalogue products (``search.nearest_labelled``). Heads of
another embedding version are never used: their inputs would mean something else.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from catalog.models import CategoryKind, Gender

from . import conf, search
from .appearance import ViewGroups, appearance_of, appearance_version, head_input
from .models import ClassifierHead, EmbeddingModel, HeadAttribute

ATTRIBUTES = (HeadAttribute.GENDER.value, HeadAttribute.KIND.value)
LABELS = {"gender": tuple(Gender.values), "kind": tuple(CategoryKind.values)}
logger = logging.getLogger(__name__)

SOURCE_HEAD = "head"
SOURCE_KNN = "knn"


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float  # the head's softmax probability, or the winning share of the kNN vote weight
    source: str  # "head" | "knn"


@dataclass(frozen=True)
class Attributes:
    gender: Prediction | None
    kind: Prediction | None


def classify_vectors(
    vectors: np.ndarray, *, model: EmbeddingModel, use_heads: bool = True, views: ViewGroups | None = None,
    appearance: np.ndarray | None = None,
) -> list[Attributes]:
    """One ``Attributes`` per row of ``vectors`` (N × ``model.dimension``, as ``model``'s embedder made them).

    A head that also reads appearance (``ClassifierHead.appearance``) needs each photo's appearance vector:
    ``appearance`` (N rows, made by that version), or ``views`` (the views each vector was made of) to make
    them; without either, or when the configured appearance embedder is another version, that attribute is
    voted by kNN. An attribute is ``None`` when neither a head nor any labelled catalogue vector of ``model``
    exists. ``use_heads=False`` asks kNN voting even when heads are active (the evaluation's baseline).
    """
    array = as_matrix(vectors, dimension=model.dimension)
    predictions: dict[str, list[Prediction | None]] = {}
    for attribute in ATTRIBUTES if use_heads else ():
        found = head_with_weights(model=model, attribute=attribute)
        if found is None:
            continue
        head, weights = found
        if head.appearance and appearance is None and views is not None and appearance_version() == head.appearance:
            appearance = appearance_of(views)
        rows = head_rows(head, weights, array, appearance)
        if rows is not None:
            predictions[attribute] = weights.predict(rows)
    missing = [attribute for attribute in ATTRIBUTES if attribute not in predictions]
    if missing and len(array):
        k = conf.classify_knn_k()
        votes = [knn_vote(search.nearest_labelled(row, model_id=model.pk, k=k)) for row in array]
        for attribute in missing:
            predictions[attribute] = [vote[attribute] for vote in votes]
    return [
        Attributes(gender=predictions.get("gender", [None] * len(array))[n],
                   kind=predictions.get("kind", [None] * len(array))[n])
        for n in range(len(array))
    ]


def head_rows(head: ClassifierHead, weights: LoadedHead, vectors: np.ndarray,
              appearance: np.ndarray | None) -> np.ndarray | None:
    """The rows ``head`` reads: the embedding, then the appearance vector when the head reads one. None when
    they cannot be made: no appearance vectors, an appearance embedder of another version than the head's, or
    a width the weights do not take."""
    if head.appearance and (appearance is None or head.appearance != appearance_version()):
        return None
    rows = head_input(vectors, appearance if head.appearance else None)
    return rows if weights.input_dimension == rows.shape[1] else None


def as_matrix(vectors: np.ndarray | Sequence, *, dimension: int) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or (len(array) and array.shape[1] != dimension):
        raise ValueError(f"Expected N×{dimension} vectors for this embedding model, got shape {array.shape}.")
    return array


# -- kNN voting ----------------------------------------------------------------------------------------

def knn_vote(hits: Sequence[search.LabelledHit], *, temperature: float | None = None) -> dict[str, Prediction | None]:
    """Similarity-weighted vote of neighbours: weight ``exp((score - best) / temperature)``.

    The softmax-style weight lets a clearly closer neighbour outvote several distant ones while near-ties
    count about equally; confidence is the winner's share of the total weight.
    """
    if not hits:
        return {attribute: None for attribute in ATTRIBUTES}
    temperature = float(temperature or conf.classify_knn_temperature())
    scores = np.asarray([hit.score for hit in hits], dtype=np.float64)
    weights = np.exp((scores - scores.max()) / temperature)
    result: dict[str, Prediction | None] = {}
    for attribute, labels in (("gender", [h.gender for h in hits]), ("kind", [h.category_kind for h in hits])):
        totals: dict[str, float] = {}
        for label, weight in zip(labels, weights, strict=True):
            totals[label] = totals.get(label, 0.0) + float(weight)
        winner = max(totals, key=lambda label: (totals[label], label))
        result[attribute] = Prediction(label=winner, confidence=round(totals[winner] / float(weights.sum()), 4),
                                       source=SOURCE_KNN)
    return result


# -- trained heads ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadedHead:
    """A head's weights in memory: standardise, (Linear → ReLU)*, Linear, softmax. Inference is NumPy."""

    labels: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (weight in×out, bias)

    @property
    def input_dimension(self) -> int:
        return int(self.mean.shape[0])

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        x = (np.asarray(vectors, dtype=np.float32) - self.mean) / self.scale
        for n, (weight, bias) in enumerate(self.layers):
            x = x @ weight + bias
            if n < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        x = x - x.max(axis=1, keepdims=True)
        np.exp(x, out=x)
        return x / x.sum(axis=1, keepdims=True)

    def predict(self, vectors: np.ndarray) -> list[Prediction]:
        probabilities = self.probabilities(vectors)
        best = probabilities.argmax(axis=1)
        return [
            Prediction(label=self.labels[i], confidence=round(float(p[i]), 4), source=SOURCE_HEAD)
            for i, p in zip(best, probabilities, strict=True)
        ]

    def save(self, path: Path) -> str:
        """Write the weights as a plain ``.npz`` (no pickles) and return its sha256."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"labels": np.asarray(self.labels, dtype=str), "mean": self.mean, "scale": self.scale}
        for n, (weight, bias) in enumerate(self.layers):
            arrays[f"w{n}"], arrays[f"b{n}"] = weight, bias
        partial = path.with_suffix(".partial.npz")
        np.savez(partial, **arrays)
        partial.replace(path)
        return hashlib.sha256(path.read_bytes()).hexdigest()

    @classmethod
    def load(cls, path: Path, *, sha256: str | None = None) -> LoadedHead:
        data = path.read_bytes()
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"Head weights {path} do not match their recorded checksum.")
        with np.load(path, allow_pickle=False) as arrays:
            layers, n = [], 0
            while f"w{n}" in arrays:
                layers.append((arrays[f"w{n}"].astype(np.float32), arrays[f"b{n}"].astype(np.float32)))
                n += 1
            return cls(labels=tuple(str(label) for label in arrays["labels"]), mean=arrays["mean"].astype(np.float32),
                       scale=arrays["scale"].astype(np.float32), layers=tuple(layers))


def heads_dir() -> Path:
    """``STOCKMATCH_HEADS_DIR`` when set (evaluations point it at a temporary folder), else trained dir/heads."""
    explicit = getattr(settings, "STOCKMATCH_HEADS_DIR", None)
    if explicit:
        return Path(explicit)
    return conf.trained_dir() / "heads"


def head_weights_path(head: ClassifierHead) -> Path:
    path = Path(head.weights_path)
    return path if path.is_absolute() else heads_dir() / path


_cache: dict[tuple[int, str], LoadedHead] = {}
_cache_lock = threading.Lock()


def active_head(*, model: EmbeddingModel, attribute: str) -> ClassifierHead | None:
    return ClassifierHead.objects.filter(embedding_model=model, attribute=attribute, active=True).first()


def loaded_head(*, model: EmbeddingModel, attribute: str) -> LoadedHead | None:
    """The active head's weights for ``model`` and ``attribute`` (cached per row and checksum), or None."""
    found = head_with_weights(model=model, attribute=attribute)
    return found[1] if found else None


def head_with_weights(*, model: EmbeddingModel, attribute: str) -> tuple[ClassifierHead, LoadedHead] | None:
    """The active head row and its weights (cached per row and checksum), or None (none, or unreadable)."""
    head = active_head(model=model, attribute=attribute)
    if head is None:
        return None
    key = (head.pk, head.weights_sha256)
    with _cache_lock:
        if key not in _cache:
            try:
                _cache[key] = LoadedHead.load(head_weights_path(head), sha256=head.weights_sha256)
            except (OSError, ValueError, KeyError):  # missing or altered file: kNN answers meanwhile
                logger.exception("classifier head %s cannot be loaded; using kNN voting", head.name)
                return None
        return head, _cache[key]
