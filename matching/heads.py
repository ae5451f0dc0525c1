"""Training the gender and category-kind heads on catalogue vectors, and promoting them only when better.

The training vectors are the catalogue's labelled photos and camera-domain examples: labelled intake photos
(``camera_examples``), which teach what a garment looks like on a table or worn, as the mirror and intake
classify it. The labelled vectors of one embedding version are split by product (a stable hash, so the
same products are held out every time and no head is judged on photos of a product it trained on). A
new head is trained on the training part and scored on the held-out part beside the baseline: the
active head of that version and attribute, or, when there is none, kNN voting over the training part
(exact cosine, the same vote as ``classification.knn_vote``). It becomes active only when it beats the
baseline on accuracy (ties broken by mean per-class recall). Every trained head is kept as a version row
with its weights file and figures, active or not.

A head reads the embedding followed, when an appearance embedder is configured, by that embedder's vector of
the same views (``appearance``: the ImageNet backbone keeps the garment kind the matching embedder trained
away); the head records the appearance version it was trained with.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import search
from .appearance import appearance_version, catalogue_appearance, head_input
from .classification import ATTRIBUTES, LABELS, LoadedHead, head_rows, head_with_weights, heads_dir, knn_vote
from .models import ClassifierHead, EmbeddingModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    hidden: int = 256  # 0: a linear (softmax regression) head
    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.2
    class_weight_power: float = 0.5  # loss weight per class ∝ count^-power (0: none, 1: fully balanced)
    val_share: float = 0.2
    seed: int = 0
    knn_k: int = 15
    max_rows: int = 100_000
    camera_rows: int = 5_000  # newest labelled intake photos trained on beside the catalogue (0: none)
    appearance: bool = True  # read the configured appearance embedder's vector beside the embedding


@dataclass
class HeadReport:
    attribute: str
    head: ClassifierHead | None
    metrics: dict = field(default_factory=dict)  # the new head on the held-out split
    baseline: dict = field(default_factory=dict)  # the active head, or kNN, on the same split
    baseline_source: str = ""
    beats_baseline: bool = False
    activated: bool = False
    skipped: str = ""  # why no head was trained

    def to_dict(self) -> dict:
        return {
            "attribute": self.attribute, "head": self.head.name if self.head else None, "metrics": self.metrics,
            "baseline": self.baseline, "baseline_source": self.baseline_source,
            "beats_baseline": self.beats_baseline, "activated": self.activated, "skipped": self.skipped,
        }


def _unit_hash(text: str) -> float:
    """A stable number in [0, 1) for ``text`` (the same split in every run and process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") / 2**32


def held_out(product_ids: np.ndarray, share: float) -> np.ndarray:
    """Boolean mask of the rows whose product falls in the held-out split (stable across runs). A small
    catalogue whose hashes all miss the share (32 products with ids 430-461 do at 0.2) still holds out its
    lowest-hashed ``share`` of products, at least one, so it is never left without a split."""
    buckets = {int(p): _unit_hash(f"product:{int(p)}") for p in set(np.asarray(product_ids).tolist())}
    chosen = {p for p, b in buckets.items() if b < share}
    if not chosen and share > 0 and len(buckets) >= 2:
        chosen = set(sorted(buckets, key=buckets.get)[: max(1, round(share * len(buckets)))])
    return np.asarray([int(p) in chosen for p in product_ids], dtype=bool)


def scores(true: list[str], predicted: list[str | None]) -> dict:
    """Accuracy, recall per class present in ``true``, and their mean."""
    true_a, pred_a = np.asarray(true, dtype=object), np.asarray(predicted, dtype=object)
    recall = {label: round(float((pred_a[true_a == label] == label).mean()), 4) for label in sorted(set(true))}
    return {
        "n": len(true), "accuracy": round(float((true_a == pred_a).mean()), 4) if len(true) else None,
        "mean_recall": round(float(np.mean(list(recall.values()))), 4) if recall else None, "recall": recall,
    }


def knn_predict(
    train_vectors: np.ndarray, train_products: np.ndarray, train_labels: dict[str, list[str]],
    queries: np.ndarray, *, k: int, chunk: int = 256,
) -> dict[str, list[str | None]]:
    """Exact kNN voting (best image per product, like ``search.nearest_labelled``) for held-out vectors."""
    train = _unit(train_vectors)
    out: dict[str, list[str | None]] = {attribute: [] for attribute in ATTRIBUTES}
    for start in range(0, len(queries), chunk):
        similarities = _unit(queries[start : start + chunk]) @ train.T
        for row in similarities:
            order = np.argsort(-row, kind="stable")
            hits, seen = [], set()
            for index in order:
                product = int(train_products[index])
                if product in seen:
                    continue
                seen.add(product)
                hits.append(search.LabelledHit(product, train_labels["gender"][index], train_labels["kind"][index],
                                               float(row[index])))
                if len(hits) == k:
                    break
            vote = knn_vote(hits)
            for attribute in ATTRIBUTES:
                out[attribute].append(vote[attribute].label if vote[attribute] else None)
    return out


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def head_fit(vectors: np.ndarray, labels: list[str], *, classes: list[str], config: HeadConfig) -> LoadedHead:
    """Train one head with PyTorch (Adam, class-weighted cross-entropy); return it as NumPy weights."""
    import torch

    torch.set_num_threads(int(getattr(settings, "STOCKMATCH_TORCH_THREADS", 2)))
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    x = np.asarray(vectors, dtype=np.float32)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-3  # unit vectors: a few components carry most of the variance
    index = {label: n for n, label in enumerate(classes)}
    y = torch.as_tensor([index[label] for label in labels], dtype=torch.long)
    inputs = torch.from_numpy((x - mean) / scale)
    counts = torch.bincount(y, minlength=len(classes)).clamp(min=1).float()
    weights = counts.pow(-config.class_weight_power)
    weights = weights / (weights * counts).sum() * counts.sum()
    dimension = x.shape[1]
    if config.hidden:
        net = torch.nn.Sequential(
            torch.nn.Linear(dimension, config.hidden), torch.nn.ReLU(), torch.nn.Dropout(config.dropout),
            torch.nn.Linear(config.hidden, len(classes)),
        )
    else:
        net = torch.nn.Sequential(torch.nn.Dropout(config.dropout), torch.nn.Linear(dimension, len(classes)))
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    net.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimiser.zero_grad()
            loss_fn(net(inputs[batch]), y[batch]).backward()
            optimiser.step()
    linears = [module for module in net if isinstance(module, torch.nn.Linear)]
    layers = tuple(
        (module.weight.detach().numpy().T.copy(), module.bias.detach().numpy().copy()) for module in linears
    )
    return LoadedHead(labels=tuple(classes), mean=mean, scale=scale.astype(np.float32), layers=layers)


def _joined(catalogue: search.LabelledVectors, camera: search.LabelledVectors) -> search.LabelledVectors:
    both = catalogue.appearance is not None and camera.appearance is not None
    return search.LabelledVectors(
        image_ids=np.concatenate([catalogue.image_ids, camera.image_ids]),
        product_ids=np.concatenate([catalogue.product_ids, camera.product_ids]),
        genders=[*catalogue.genders, *camera.genders], kinds=[*catalogue.kinds, *camera.kinds],
        vectors=np.concatenate([catalogue.vectors, camera.vectors.astype(np.float32)]),
        appearance=np.concatenate([catalogue.appearance, camera.appearance.astype(np.float32)]) if both else None,
    )


def _with_catalogue_appearance(data: search.LabelledVectors, *, context: bool) -> search.LabelledVectors:
    """The catalogue rows with their photos' appearance vectors; a photo whose file cannot be read is left out."""
    vectors, readable = catalogue_appearance(data.image_ids, context=context)
    return search.LabelledVectors(
        image_ids=data.image_ids[readable], product_ids=data.product_ids[readable],
        genders=[g for g, ok in zip(data.genders, readable, strict=True) if ok],
        kinds=[k for k, ok in zip(data.kinds, readable, strict=True) if ok],
        vectors=data.vectors[readable], appearance=vectors[readable],
    )


def heads_train(
    *, model: EmbeddingModel, config: HeadConfig | None = None, attributes: tuple[str, ...] = ATTRIBUTES,
    force: bool = False, camera: search.LabelledVectors | None = None,
) -> list[HeadReport]:
    """Train a head per attribute for ``model``'s vectors; activate each one that beats its baseline
    (or every one with ``force``).

    The training data is the catalogue's labelled vectors plus camera-domain examples: ``camera``, or by
    default the newest ``config.camera_rows`` labelled intake photos (``camera_examples``). Both are split
    by product, so the held-out score that decides promotion covers camera photos too (``val_camera``).
    With ``config.appearance`` and an appearance embedder configured, each row's appearance vector follows
    its embedding (a given ``camera`` must then carry its own ``appearance``).
    """
    from .services import embedder_for

    config = config or HeadConfig()
    version = appearance_version() if config.appearance else ""
    data = search.embeddings_labelled(model_id=model.pk, dimension=model.dimension, max_rows=config.max_rows)
    if version:
        data = _with_catalogue_appearance(data, context=embedder_for(model).context_view)
    if camera is None:
        from .camera_examples import camera_examples

        camera = camera_examples(model=model, max_rows=config.camera_rows, appearance=bool(version))
    if version and camera.appearance is None:
        raise ValueError("The camera examples carry no appearance vectors, but the heads read them.")
    is_camera = np.concatenate([np.zeros(len(data.kinds), bool), np.ones(len(camera.kinds), bool)])
    data = _joined(data, camera)
    features = head_input(data.vectors, data.appearance if version else None)
    val = held_out(data.product_ids, config.val_share)
    train = ~val
    labels = {"gender": data.genders, "kind": data.kinds}
    reports = []
    knn_by_rows: dict[bytes, dict[str, list[str | None]]] = {}  # one vote per split: usually both attributes'
    for attribute in attributes:
        if attribute not in LABELS:
            raise ValueError(f"Unknown attribute {attribute!r}; use {', '.join(ATTRIBUTES)}.")
        y = np.asarray(labels[attribute], dtype=object)
        known = np.isin(y, LABELS[attribute])  # a camera photo may carry no gender
        fit_rows, val_rows = train & known, val & known
        classes = [label for label in LABELS[attribute] if label in set(y[fit_rows])]
        if len(classes) < 2 or not (val_rows.any() or force):
            reports.append(HeadReport(attribute=attribute, head=None, skipped=(
                f"needs at least two {attribute} classes in training and a held-out split "
                f"({len(classes)} classes, {int(fit_rows.sum())} training and {int(val_rows.sum())} held-out vectors)"
            )))
            continue
        new = head_fit(features[fit_rows], list(y[fit_rows]), classes=classes, config=config)
        true = list(y[val_rows])
        predicted = [p.label for p in new.predict(features[val_rows])]
        metrics = scores(true, predicted)
        camera_val = is_camera[val_rows]
        if camera_val.any():
            metrics["camera"] = scores([t for t, cam in zip(true, camera_val, strict=True) if cam],
                                       [p for p, cam in zip(predicted, camera_val, strict=True) if cam])
        current = head_with_weights(model=model, attribute=attribute)
        current_input = head_rows(*current, data.vectors, data.appearance) if current else None
        if not val_rows.any():  # forced, nothing held out: nothing to compare
            baseline_source, baseline = "none (no held-out products)", scores([], [])
        elif current_input is not None:
            baseline_source = f"head {current[0].name}"
            baseline = scores(true, [p.label for p in current[1].predict(current_input[val_rows])])
        else:
            split = fit_rows.tobytes() + val_rows.tobytes()
            if split not in knn_by_rows:
                knn_by_rows[split] = knn_predict(
                    data.vectors[fit_rows], data.product_ids[fit_rows],
                    {a: list(np.asarray(labels[a], dtype=object)[fit_rows]) for a in ATTRIBUTES},
                    data.vectors[val_rows], k=config.knn_k,
                )
            baseline_source, baseline = "knn", scores(true, knn_by_rows[split][attribute])
        beats = bool(val_rows.any()) and (
            (metrics["accuracy"], metrics["mean_recall"]) > (baseline["accuracy"], baseline["mean_recall"])
        )
        training = {
            "config": asdict(config), "n_train": int(fit_rows.sum()), "n_val": int(val_rows.sum()),
            "class_counts": {label: int((y[fit_rows] == label).sum()) for label in classes},
            "n_camera_train": int((is_camera & fit_rows).sum()), "n_camera_val": int((is_camera & val_rows).sum()),
            "split": f"sha256(product id) < {config.val_share}", "appearance": version,
        }
        head = head_store(model=model, attribute=attribute, weights=new, config=config, appearance=version,
                          metrics={"val": metrics, "baseline": {"source": baseline_source, **baseline}},
                          training=training, activate=beats or force)
        reports.append(HeadReport(attribute=attribute, head=head, metrics=metrics, baseline=baseline,
                                  baseline_source=baseline_source, beats_baseline=beats, activated=head.active))
        logger.info("%s head %s: val accuracy %s vs %s %s -> %s", attribute, head.name, metrics["accuracy"],
                    baseline_source, baseline["accuracy"], "active" if head.active else "kept inactive")
    return reports


def stratified_folds(products: Sequence, labels: list[str], *, folds: int) -> np.ndarray:
    """Each row's fold: within each label, the products (any stable key: a SKU, an id) ordered by a stable hash
    are dealt out in turn, so every fold holds its share of every class (a product's rows share its fold). Folds
    by the hash alone could leave a small catalogue's fold without most of one class."""
    label_of: dict[str, str] = {}
    for product, label in zip(products, labels, strict=True):
        label_of.setdefault(str(product), label)
    by_label: dict[str, list[str]] = {}
    for product, label in label_of.items():
        by_label.setdefault(str(label), []).append(product)
    fold_of_product, dealt = {}, 0
    for label in sorted(by_label):
        for product in sorted(by_label[label], key=lambda p: (_unit_hash(f"fold:{p}"), p)):
            fold_of_product[product] = dealt % folds
            dealt += 1
    return np.asarray([fold_of_product[str(p)] for p in products], dtype=np.int64)


def cross_fitted_probabilities(
    vectors: np.ndarray, labels: list[str], products: Sequence, *, classes: list[str], config: HeadConfig,
    folds: int = 3, max_rows_per_fit: int = 2_000_000,
) -> np.ndarray:
    """Each row's class probabilities (columns in ``classes`` order) from a head trained on the other folds
    (split by product: ``products`` holds each row's SKU, so that the folds, and what they judge, are the same
    for the same catalogue in any database whatever its ids): a product's own label, right or wrong, never
    teaches the head that judges it. The epochs shrink on a large catalogue so that a fit sees at most
    ``max_rows_per_fit`` rows."""
    fold_of = stratified_folds(products, labels, folds=folds)
    out = np.zeros((len(labels), len(classes)), dtype=np.float32)
    known = np.asarray([label in classes for label in labels])
    y = np.asarray(labels, dtype=object)
    for fold in range(folds):
        test = fold_of == fold
        train = ~test & known
        present = [c for c in classes if c in set(y[train])]
        if not test.any() or len(present) < 2:
            out[test] = np.nan
            continue
        epochs = max(3, min(config.epochs, max_rows_per_fit // max(1, int(train.sum()))))
        head = head_fit(vectors[train], list(y[train]), classes=present, config=replace(config, epochs=epochs))
        probabilities = head.probabilities(vectors[test])
        for column, label in enumerate(present):
            out[test, classes.index(label)] = probabilities[:, column]
    return out


def head_store(
    *, model: EmbeddingModel, attribute: str, weights: LoadedHead, config: HeadConfig, metrics: dict,
    training: dict, activate: bool, appearance: str = "",
) -> ClassifierHead:
    """Write the weights file under ``STOCKMATCH_TRAINED_DIR/heads/`` and record the version row."""
    stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
    filename = f"{attribute}-{model.pk}-{stamp}.npz"
    sha = weights.save(heads_dir() / filename)
    architecture = f"mlp{config.hidden}" if config.hidden else "linear"
    with transaction.atomic():
        if activate:
            ClassifierHead.objects.filter(embedding_model=model, attribute=attribute, active=True).update(active=False)
        return ClassifierHead.objects.create(
            name=f"{attribute}-{architecture}-{model.name}-{sha[:10]}-{stamp[-8:]}", attribute=attribute,
            embedding_model=model, architecture=architecture, labels=list(weights.labels),
            input_dimension=weights.input_dimension, appearance=appearance, weights_path=filename,
            weights_sha256=sha, metrics=metrics,
            training=training, active=activate, activated_at=timezone.now() if activate else None,
        )


@transaction.atomic
def head_activate(*, head_id: int) -> ClassifierHead:
    """Make ``head_id`` the active head of its embedding version and attribute (a manual override)."""
    head = ClassifierHead.objects.select_for_update().get(pk=head_id)
    ClassifierHead.objects.filter(embedding_model_id=head.embedding_model_id, attribute=head.attribute,
                                  active=True).exclude(pk=head.pk).update(active=False)
    head.active, head.activated_at = True, timezone.now()
    head.save(update_fields=["active", "activated_at"])
    return head


@transaction.atomic
def head_deactivate(*, head_id: int) -> ClassifierHead:
    """Stop using ``head_id``: its attribute falls back to kNN voting until another head is active."""
    ClassifierHead.objects.filter(pk=head_id).update(active=False)
    return ClassifierHead.objects.get(pk=head_id)


def heads_follow_appearance() -> bool:
    """After an upgrade changed the appearance embedder (``MATCHING["CLASSIFY_APPEARANCE"]`` or its shipped
    weights), the active version's heads can no longer make their input and kNN answers: they are deactivated
    (admin can activate them again once their appearance is configured again) and new heads are trained
    (``tasks.train_classification_heads``, after commit; each promoted over kNN only when better). Returns whether
    that happened. Runs after every ``migrate``."""
    model = EmbeddingModel.objects.filter(active=True).first()
    heads = ClassifierHead.objects.filter(embedding_model=model, active=True).exclude(appearance="")
    if model is None or not heads.exists():
        return False  # nothing to follow: the appearance embedder is not even loaded
    version = appearance_version()
    stale = heads.exclude(appearance=version)
    if not version or not stale.exists():
        return False
    from .tasks import train_classification_heads

    logger.info("the appearance embedder is now %s: retraining the heads of %s", version, model.name)
    stale.update(active=False)
    transaction.on_commit(lambda: train_classification_heads.delay(model.pk))
    return True
