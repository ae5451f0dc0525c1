"""``train_attributes``: a tail of the ImageNet front fine-tuned to tell garment kind and gender apart.

The heads read the matching embedding and, beside it, an appearance vector of the same views
(``matching/appearance.py``). The ImageNet backbone's vector knows objects; this tail is trained on labelled
photos to carry what the heads need: flat dresses against tops, jackets against shirts, the same garment on a
studio background and on a warehouse floor. Its weights file has the trained embedder's format (one tail and
its projection over the ImageNet front, ``network``), so ``TrainedEfficientNetLite0`` serves it as an
appearance embedder; the two cosine classifiers it was trained with are kept in the file for the record but
never served: the heads, trained per installation on its own catalogue, decide.

1. Views: each labelled photo's two served views (``services.catalog_views`` for a studio photo,
   ``services.query_views`` through the active segmenter for any other: the views the heads will read), and
   ``views`` random variations of them (flips, crops, light casts, blur; a studio photo also as a phone might
   show it, ``views.shop_view(phone_like=True)``). The frozen front's features are cached on disk.
2. Training: every epoch one random view of every training photo; cross-entropy of the kind and the gender
   (weighted count^-power; a photo without a gender teaches the kind only) on the L2-normalised projection.
3. The epoch with the best mean of kind and gender accuracy on the validation photos (a stable hash of the
   image path, each photo scored as served: the normalised mean of its two served views) is written out.
"""
from __future__ import annotations

import csv
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from tqdm import tqdm

from . import network
from .trainer import (
    OnBackbone,
    _embed,
    _freeze_batchnorm,
    _front_session,
    _open,
    _segmenter_name,
    epoch_steps,
    tail_file_write,
    to_tensor,
    warmup_cosine,
)
from .views import colour_cast, degrade, shop_view

logger = logging.getLogger(__name__)

KINDS = ("topwear", "bottomwear", "full-body", "footwear", "outerwear", "accessory")
GENDERS = ("men", "women", "unisex", "boys", "girls")
PURPOSE = "attributes"


@dataclass(frozen=True)
class LabelledPhoto:
    path: str
    kind: str
    gender: str  # "" when unknown: the photo teaches the kind only


@dataclass
class AttributeConfig(OnBackbone):
    out: Path
    work_dir: Path
    dimension: int = 256
    backbone: str = network.DEFAULT_BACKBONE
    split: int | None = None  # first fine-tuned block; None: the backbone's stride-32 stage (network.BACKBONES)
    views: int = 4  # random variations per photo, besides its two served views
    epochs: int = 30
    batch_size: int = 64
    lr_tail: float = 3e-4
    lr_head: float = 3e-3
    weight_decay: float = 1e-4
    scale: float = 16.0  # cosine classifier's logit scale
    class_weight_power: float = 0.5
    val_percent: int = 10
    seed: int = 0
    time_budget_s: float = 3600.0
    threads: int = 2

    def recipe(self) -> str:
        """What a checkpoint is a checkpoint of, besides the views: a run with another loss, optimiser or size starts
        afresh instead of resuming this one (more epochs of the same recipe resume)."""
        raw = (f"{self.dimension}/{self.batch_size}/{self.lr_tail}/{self.lr_head}/{self.weight_decay}/{self.scale}/"
               f"{self.class_weight_power}/{self.val_percent}")
        return hashlib.sha1(raw.encode()).hexdigest()[:10]

    def fingerprint(self, photos: list[LabelledPhoto]) -> str:
        keys = "|".join(sorted(p.path for p in photos))
        raw = f"{keys}/{self.views}/{self.split}/{self.seed}/{self.input_size}/{_segmenter_name()}"
        if self.backbone != network.DEFAULT_BACKBONE:  # Lite0 caches keep their fingerprint
            raw += f"/{self.backbone}"
        return hashlib.sha1(raw.encode()).hexdigest()[:12]


@dataclass
class AttributeResult:
    weights: Path
    metrics: dict
    history: list[dict] = field(default_factory=list)


def read_labelled_csv(path: Path) -> list[LabelledPhoto]:
    """``image,gender,kind`` rows (``evaluate_classification``'s format), image paths relative to the CSV; rows
    without a known kind are skipped, an unknown gender is read as none."""
    photos = []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"image", "gender", "kind"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected image,gender,kind.")
        for row in reader:
            kind, gender = row["kind"].strip().lower(), row["gender"].strip().lower()
            if kind not in KINDS:
                continue
            photos.append(LabelledPhoto(str((path.parent / row["image"]).resolve()), kind,
                                        gender if gender in GENDERS else ""))
    return photos


def is_validation(photo: LabelledPhoto, percent: int) -> bool:
    return int(hashlib.sha256(Path(photo.path).name.encode()).hexdigest()[:8], 16) % 100 < percent


def served_views(image: Image.Image) -> tuple[list[Image.Image], bool]:
    """The two views the heads read of this photo (as ``evaluate_classification`` and the mirror make them),
    and whether it is a studio photo."""
    from .. import services
    from ..preprocess import is_studio_photo

    if is_studio_photo(image):
        return services.catalog_views(image, context=True), True
    return services.query_views(image, segment="auto", context=True), False


def varied(view: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A served view as another shot of the same garment might give it: mirrored, reframed, lit and blurred
    differently."""
    if rng.random() < 0.5:
        view = ImageOps.mirror(view)
    w, h = view.size
    scale = float(rng.uniform(0.75, 1.0))
    cw, ch = max(8, int(w * scale)), max(8, int(h * scale))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    view = view.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.8:
        view = colour_cast(view, rng, strength=1.0)
    return degrade(view, rng) if rng.random() < 0.6 else view


def _views_of(image: Image.Image, config: AttributeConfig,
              rng: np.random.Generator) -> tuple[list[tuple[Image.Image, bool]], bool]:
    """(view, is served) for one photo: its two served views, then ``config.views`` variations; and whether it is
    a studio photo."""
    served, studio = served_views(image)
    out = [(view, True) for view in served]
    for n in range(config.views):
        if studio and n % 2 == 0:
            out.append((shop_view(image, rng, phone_like=True), False))
        else:
            out.append((varied(served[n % len(served)], rng), False))
    return out, studio


@dataclass
class AttributeCache:
    features: np.ndarray  # N x C x H x W float16
    photo: np.ndarray  # N: index into the photo list
    served: np.ndarray  # N: one of the photo's two served views
    studio: np.ndarray  # per photo: a studio photo


def build_cache(photos: list[LabelledPhoto], config: AttributeConfig, front: network.Front,
                say: Callable[[str], None]) -> AttributeCache:
    """Front features of every view, cached under ``work_dir`` by a fingerprint of the photos and config."""
    config.work_dir.mkdir(parents=True, exist_ok=True)
    stem = config.work_dir / f"attribute-views-{config.fingerprint(photos)}"
    if stem.with_suffix(".npz").exists():
        data = np.load(stem.with_suffix(".npz"))
        features = np.load(stem.with_suffix(".features.npy"))
        return AttributeCache(features, data["photo"], data["served"], data["studio"])
    session = _front_session(front, config.work_dir / f"front-{config.backbone}-split{config.split}.onnx",
                              config.threads, size=config.input_size)
    rng = np.random.default_rng(config.seed)
    chunks, photo_of, served, studio = [], [], [], np.zeros(len(photos), dtype=bool)
    pending: list[Image.Image] = []

    def flush() -> None:
        if pending:
            chunks.append(session.run(to_tensor(pending, config.input_size))[0].astype(np.float16))
            pending.clear()

    unreadable = 0
    for index, photo in enumerate(tqdm(photos, desc="views", unit="photo", mininterval=10)):
        try:
            views, studio[index] = _views_of(_open(photo.path), config, rng)
        except (OSError, ValueError) as exc:
            logger.warning("skipping training photo %s: %s", photo.path, exc)
            unreadable += 1
            continue
        for view, is_served in views:
            pending.append(view)
            photo_of.append(index)
            served.append(is_served)
        if len(pending) >= 64:
            flush()
    flush()
    if unreadable:
        say(f"{unreadable} photo(s) skipped (unreadable)")
    cache = AttributeCache(np.concatenate(chunks), np.asarray(photo_of), np.asarray(served), studio)
    np.save(stem.with_suffix(".features.npy"), cache.features)
    np.savez(stem.with_suffix(".npz"), photo=cache.photo, served=cache.served, studio=cache.studio)
    return cache


class CosineClassifier(torch.nn.Module):
    def __init__(self, dimension: int, classes: int, scale: float) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(classes, dimension) * 0.01)
        self.scale = scale

    def forward(self, unit: torch.Tensor) -> torch.Tensor:
        return self.scale * unit @ F.normalize(self.weight, dim=1).T


def class_weights(labels: np.ndarray, classes: int, power: float) -> torch.Tensor:
    counts = np.bincount(labels[labels >= 0], minlength=classes).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    weights *= (counts > 0).sum() / max(weights.sum(), 1e-12)
    return torch.tensor(weights, dtype=torch.float32)


def accuracy_report(predicted: np.ndarray, true: np.ndarray, names: tuple[str, ...]) -> dict:
    scored = true >= 0
    if not scored.any():
        return {"n": 0}
    recall = {names[c]: round(float((predicted[scored & (true == c)] == c).mean()), 4)
              for c in range(len(names)) if (scored & (true == c)).any()}
    return {"n": int(scored.sum()), "accuracy": round(float((predicted[scored] == true[scored]).mean()), 4),
            "recall": recall}


def train(photos: list[LabelledPhoto], config: AttributeConfig,
          progress: Callable[[str], None] | None = None) -> AttributeResult:
    """Train, checkpoint each epoch (resumable), and write the best tail to ``config.out`` (+ ``.json``)."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    say = progress or logger.info
    started = time.monotonic()
    front, tail = network.build(split=config.split, dimension=config.dimension, backbone=config.backbone)
    cache = build_cache(photos, config, front, say)
    say(f"cached {len(cache.photo)} views of {len(photos)} photos in {time.monotonic() - started:.0f} s")

    kind_of = np.asarray([KINDS.index(p.kind) for p in photos])
    gender_of = np.asarray([GENDERS.index(p.gender) if p.gender else -1 for p in photos])
    validation = np.asarray([is_validation(p, config.val_percent) for p in photos])
    views_by_photo: dict[int, list[int]] = {}
    for row, photo in enumerate(cache.photo):
        views_by_photo.setdefault(int(photo), []).append(row)
    train_photos = np.asarray([p for p in views_by_photo if not validation[p]])
    val_photos = np.asarray([p for p in views_by_photo if validation[p]])
    val_rows = np.nonzero(cache.served & validation[cache.photo])[0]
    say(f"{len(train_photos)} training photos, {len(val_photos)} validation photos"
        f" ({Counter(photos[p].kind for p in train_photos)})")

    kind_head = CosineClassifier(config.dimension, len(KINDS), config.scale)
    gender_head = CosineClassifier(config.dimension, len(GENDERS), config.scale)
    kind_weights = class_weights(kind_of[train_photos], len(KINDS), config.class_weight_power)
    gender_weights = class_weights(gender_of[train_photos], len(GENDERS), config.class_weight_power)

    def validate() -> dict:
        if not len(val_rows):
            return {}
        unit = _embed(tail, cache.features[val_rows])
        order = cache.photo[val_rows]
        scored = np.unique(order)
        vectors = np.stack([unit[order == p].mean(axis=0) for p in scored])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        with torch.inference_mode():
            v = torch.from_numpy(vectors)
            kinds = kind_head(v).argmax(1).numpy()
            genders = gender_head(v).argmax(1).numpy()
        camera = ~cache.studio[scored]
        return {
            "kind": accuracy_report(kinds, kind_of[scored], KINDS),
            "gender": accuracy_report(genders, gender_of[scored], GENDERS),
            "camera_kind": accuracy_report(kinds[camera], kind_of[scored][camera], KINDS),
        }

    def score(metrics: dict) -> float:
        return 0.5 * (metrics.get("kind", {}).get("accuracy", 0.0) + metrics.get("gender", {}).get("accuracy", 0.0))

    head_params = list(tail.projection.parameters()) + list(kind_head.parameters()) + list(gender_head.parameters())
    head_ids = {id(p) for p in head_params}
    optimiser = torch.optim.AdamW([
        {"params": [p for p in tail.parameters() if id(p) not in head_ids], "lr": config.lr_tail},
        {"params": head_params, "lr": config.lr_head},
    ], weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(train_photos) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    schedule = warmup_cosine(optimiser, total_steps, warmup=30)
    checkpoint = config.work_dir / f"attribute-checkpoint-{config.fingerprint(photos)}-{config.recipe()}.pt"
    state: dict = {"epoch": 0, "best": -1.0, "history": [], "best_tail": None}
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        tail.load_state_dict(saved["tail"])
        kind_head.load_state_dict(saved["kind_head"])
        gender_head.load_state_dict(saved["gender_head"])
        optimiser.load_state_dict(saved["optimiser"])
        schedule.load_state_dict(saved["schedule"])
        state = saved["state"]
        say(f"resumed at epoch {state['epoch']}")
    rng = np.random.default_rng(config.seed + state["epoch"])
    for epoch in range(state["epoch"], config.epochs):
        tail.train()
        _freeze_batchnorm(tail)
        order = rng.permutation(train_photos)

        def step_loss(step: int, order: np.ndarray = order) -> torch.Tensor:  # this epoch's order
            batch = order[step * config.batch_size:(step + 1) * config.batch_size]
            rows = np.asarray([int(rng.choice(views_by_photo[int(p)])) for p in batch])
            feats = torch.from_numpy(np.asarray(cache.features[rows], dtype=np.float32))
            unit = F.normalize(tail(feats), dim=1)
            kinds = torch.from_numpy(kind_of[batch])
            genders = torch.from_numpy(gender_of[batch])
            loss = F.cross_entropy(kind_head(unit), kinds, weight=kind_weights)
            if (genders >= 0).any():
                loss = loss + F.cross_entropy(gender_head(unit), genders, weight=gender_weights, ignore_index=-1)
            return loss

        loss, budget_hit = epoch_steps(steps_per_epoch, step_loss, optimiser=optimiser, schedule=schedule,
                                       desc=f"epoch {epoch + 1}", started=started, budget_s=config.time_budget_s)
        metrics = {"epoch": epoch + 1, "loss": round(loss, 4), **validate()}
        state["history"].append(metrics)
        say(f"epoch {epoch + 1}: loss {metrics['loss']}, validation kind "
            f"{metrics.get('kind', {}).get('accuracy')}, gender {metrics.get('gender', {}).get('accuracy')}, "
            f"camera kind {metrics.get('camera_kind', {}).get('accuracy')}")
        if score(metrics) > state["best"]:
            state["best"] = score(metrics)
            state["best_tail"] = network.tail_state(tail)
            state["best_heads"] = {"kind": kind_head.weight.detach().clone(),
                                   "gender": gender_head.weight.detach().clone()}
            state["best_metrics"] = metrics
        state["epoch"] = epoch + 1
        torch.save({"tail": tail.state_dict(), "kind_head": kind_head.state_dict(),
                    "gender_head": gender_head.state_dict(), "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(), "state": state}, checkpoint)
        if budget_hit:
            say("time budget reached")
            break
    return _write(config, state, tail, kind_head, gender_head, photos, started)


def _write(config: AttributeConfig, state: dict, tail: network.Tail, kind_head: CosineClassifier,
           gender_head: CosineClassifier, photos: list[LabelledPhoto], started: float) -> AttributeResult:
    heads = state.get("best_heads") or {"kind": kind_head.weight.detach(), "gender": gender_head.weight.detach()}
    metrics = {
        "validation": state.get("best_metrics", {}), "history": state["history"],
        "wall_seconds": round(time.monotonic() - started, 1), "photos": len(photos),
        "kinds": dict(Counter(p.kind for p in photos)),
    }
    tail_file_write(config.out, state["best_tail"] or network.tail_state(tail), split=config.split,
                    dimension=config.dimension, metrics=metrics, config=asdict(config), backbone=config.backbone,
                    meta={"purpose": PURPOSE, "kinds": list(KINDS), "genders": list(GENDERS)},
                    extra={"classifiers": {name: weight.to(torch.float16) for name, weight in heads.items()}})
    return AttributeResult(weights=config.out, metrics=metrics, history=state["history"])
