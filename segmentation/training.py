"""Training the segmentation network: a plain function with a config dataclass.

Resumable: a checkpoint (weights, optimiser, step, elapsed time, best score) is written after every epoch,
and ``resume=True`` continues the latest run of the same name. The learning rate follows a cosine schedule
over whichever ends first, the planned epochs or ``max_minutes``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import data as seg_data
from .classes import BACKGROUND, CLASS_INDEX, CLASSES, garment_labels
from .data import Example, Product

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    arch: str = "tiramisu_light"
    epochs: int = 30
    max_minutes: float = 60.0
    size: int = 160  # working size (long side) the network sees at inference
    crop: int | None = None  # training crop; default 0.8 x size, a multiple of the network stride
    batch_size: int = 8
    steps_per_epoch: int = 100
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    threads: int = 1
    seed: int = 0
    data_dir: str | None = None
    work_dir: str = "var/segmentation"
    name: str | None = None  # run / version name; default arch-YYYYmmdd-HHMM
    resume: bool = False
    mix: dict = field(default_factory=lambda: {"ccp": 0.5, "composite": 0.4, "plain": 0.1})
    ccp_limit: int | None = None
    catalog_limit: int | None = None
    phone_limit: int | None = None
    val_composites: int = 60
    init_from: str | None = None  # weights file to start from (layers of matching shape; the head by class name)
    class_balance: bool = True  # weight the cross-entropy by inverse square-root class frequency
    # labelled photos showing a class are drawn this many times as often, e.g. {"full-body": 3.0}: dresses are
    # a tenth of the street photos and the kind the network confuses most
    favour: dict = field(default_factory=dict)
    # photos that choose the best epoch: "dev" (part of the training side) keeps the held-out "val" photos for
    # evaluation only; "val" is how versions before the dev split were chosen
    select_on: str = "dev"
    show_progress: bool = True


@dataclass
class TrainingData:
    train_photos: list[Example]
    val_photos: list[Example]
    products_train: list[Product]
    products_val: list[Product]
    backgrounds_train: list[np.ndarray]
    backgrounds_val: list[np.ndarray]

    def summary(self) -> dict:
        by_source: dict[str, int] = {}
        for ex in self.train_photos:
            by_source[ex.source] = by_source.get(ex.source, 0) + 1
        return {
            "train_photos": by_source,
            "val_photos": len(self.val_photos),
            "catalog_products": {"train": len(self.products_train), "val": len(self.products_val)},
            "backgrounds": {"train": len(self.backgrounds_train), "val": len(self.backgrounds_val)},
        }


def load_training_data(config: TrainConfig, extra: list[Example] | None = None) -> TrainingData:
    root = Path(config.data_dir) if config.data_dir else None
    photos: list[Example] = list(extra or [])
    products: list[Product] = []
    backgrounds_train: list[np.ndarray] = []
    backgrounds_val: list[np.ndarray] = []
    if root is not None and (root / "ccp-masks").exists():
        ccp, strips = seg_data.load_ccp(root / "ccp-masks", limit=config.ccp_limit)
        photos.extend(ccp)
        backgrounds_train.extend(strips)
    pasted = config.mix.get("composite", 0) + config.mix.get("plain", 0) > 0  # catalogue cut-outs needed at all
    if pasted and root is not None and (root / "catalog-photos").exists():
        products = seg_data.load_catalog(
            root / "catalog-photos", cache_dir=Path(config.work_dir) / "cache", limit=config.catalog_limit
        )
    if pasted and root is not None and (root / "phone-photos").exists():
        tr, va = seg_data.load_phone_backgrounds(
            root / "phone-photos", limit=config.phone_limit, cache_dir=Path(config.work_dir) / "cache"
        )
        backgrounds_train.extend(tr)
        backgrounds_val.extend(va)
    if not backgrounds_val and pasted:
        backgrounds_val = backgrounds_train[-max(1, len(backgrounds_train) // 5) :]
    train_photos = [p for p in photos if p.split == "train"]
    val_photos = [p for p in photos if p.split == config.select_on or (p.split == "val" and p.source != "ccp")]
    if not train_photos and not products:
        raise ValueError(f"No training data found under {root} (expected ccp-masks/, catalog-photos/ ...)")
    return TrainingData(
        train_photos=train_photos,
        val_photos=val_photos,
        products_train=[p for p in products if p.split == "train"],
        products_val=[p for p in products if p.split == "val"],
        backgrounds_train=backgrounds_train,
        backgrounds_val=backgrounds_val,
    )


def validation_set(config: TrainConfig, dataset: TrainingData) -> list[Example]:
    """Held-out photos at working size, plus a fixed set of composites from held-out products/backgrounds."""
    val = [
        Example(
            key=ex.key,
            source=ex.source,
            image=seg_data.resize_long(ex.image, config.size),
            labels=seg_data.resize_long(ex.labels, config.size, interpolation=0),
            split="val",
        )
        for ex in dataset.val_photos
    ]
    if dataset.products_val and dataset.backgrounds_val and config.val_composites:
        val.extend(
            seg_data.composite_photo_set(
                dataset.products_val, dataset.backgrounds_val, config.size, config.val_composites, seed=1234
            )
        )
    return val


def validation_fingerprint(val: list[Example]) -> str:
    digest = hashlib.sha256()
    for ex in val:
        digest.update(ex.key.encode())
        digest.update(ex.labels.tobytes())
    return digest.hexdigest()[:16]


def crop_size(config: TrainConfig, stride: int) -> int:
    crop = config.crop or int(config.size * 0.8)
    return max(stride, crop // stride * stride)


FAVOURED_MIN_SHARE = 0.01  # a photo "shows" a class when it covers at least this share of its pixels


def photo_draw_probabilities(photos: list[Example], favour: dict) -> np.ndarray | None:
    """How often each labelled photo is drawn: uniform (None) unless ``favour`` names classes, whose photos
    are drawn ``factor`` times as often (factors of several shown classes multiply)."""
    if not favour or not photos:
        return None
    weights = np.ones(len(photos))
    for i, ex in enumerate(photos):
        shares = np.bincount(ex.labels.ravel(), minlength=len(CLASSES))[: len(CLASSES)] / ex.labels.size
        for name, factor in favour.items():
            if shares[CLASS_INDEX[name]] >= FAVOURED_MIN_SHARE:
                weights[i] *= factor
    return weights / weights.sum()


def make_batch(
    config: TrainConfig,
    dataset: TrainingData,
    crop: int,
    rng: np.random.Generator,
    photo_probs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    kinds, weights = zip(*config.mix.items(), strict=True)
    probs = np.asarray(weights, float)
    available = {
        "ccp": bool(dataset.train_photos),
        "composite": bool(dataset.products_train and dataset.backgrounds_train),
        "plain": bool(dataset.products_train),
    }
    probs = probs * np.asarray([available.get(k, False) for k in kinds], float)
    probs /= probs.sum()
    images, labels = [], []
    for _ in range(config.batch_size):
        kind = kinds[int(rng.choice(len(kinds), p=probs))]
        if kind == "ccp":
            n = len(dataset.train_photos)
            ex = dataset.train_photos[int(rng.choice(n, p=photo_probs) if photo_probs is not None else rng.integers(n))]
            img, lab = seg_data.augment_photo(ex.image, ex.labels, config.size, crop, rng)
        else:
            if kind == "plain":
                tone = rng.uniform(200, 255)
                bg = np.clip(rng.normal(tone, 3, size=(crop, crop, 3)), 0, 255).astype(np.uint8)
            else:
                bg = dataset.backgrounds_train[int(rng.integers(len(dataset.backgrounds_train)))]
            img, lab = seg_data.composite(dataset.products_train, bg, crop, crop, rng)
        images.append(img)
        labels.append(lab)
    return np.stack(images), np.stack(labels).astype(np.int64)


def evaluate_model(
    model: torch.nn.Module, val: list[Example], stride: int, classes: list[str] | None = None
) -> dict:
    """Per-image garment IoU (garment = the most likely class is worn) and per-class IoU over the set.

    ``classes`` are the model's classes when they differ from ours (an older version): predictions are mapped
    to ours by name, classes it does not know count as background."""
    import torch
    from segmentation_models_pytorch import metrics as smp_metrics

    from .inference import predict_probs

    to_ours = np.asarray([CLASS_INDEX.get(name, BACKGROUND) for name in (classes or CLASSES)], np.int64)
    model.eval()
    ious: dict[str, list[float]] = {}
    tp_all, fp_all, fn_all, tn_all = [], [], [], []
    for ex in val:
        probs = predict_probs(model, ex.image, stride)
        pred = to_ours[probs.argmax(axis=0)]
        fg_pred, fg_true = garment_labels(pred), garment_labels(ex.labels)
        union = (fg_pred | fg_true).sum()
        iou = 1.0 if union == 0 else float((fg_pred & fg_true).sum() / union)
        ious.setdefault(ex.source, []).append(iou)
        tp, fp, fn, tn = smp_metrics.get_stats(
            torch.from_numpy(pred)[None].long(),
            torch.from_numpy(ex.labels.astype(np.int64))[None],
            mode="multiclass",
            num_classes=len(CLASSES),
        )
        tp_all.append(tp)
        fp_all.append(fp)
        fn_all.append(fn)
        tn_all.append(tn)
    model.train()
    result: dict = {f"val_iou_{src}": float(np.mean(v)) for src, v in ious.items()}
    all_ious = [v for vs in ious.values() for v in vs]
    result["val_iou"] = float(np.mean(all_ious)) if all_ious else 0.0
    if tp_all:
        tp, fp, fn, tn = (torch.cat(t) for t in (tp_all, fp_all, fn_all, tn_all))
        per_class = smp_metrics.iou_score(
            tp.sum(0, keepdim=True), fp.sum(0, keepdim=True), fn.sum(0, keepdim=True), tn.sum(0, keepdim=True)
        )
        result["class_iou"] = {name: round(float(v), 4) for name, v in zip(CLASSES, per_class[0], strict=True)}
    result["n_val"] = len(val)
    return result


@dataclass
class TrainResult:
    name: str
    arch: str
    weights_path: Path
    sha256: str
    metrics: dict
    data_summary: dict
    model_config: dict
    epochs_done: int
    steps_done: int
    minutes: float


def run_dir(config: TrainConfig) -> Path:
    return Path(config.work_dir) / "runs" / config.name


def latest_run_name(work_dir: Path, arch: str) -> str | None:
    runs = sorted((work_dir / "runs").glob(f"{arch}-*/last.pt"), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent.name if runs else None


def lr_at(config: TrainConfig, step: int, total_steps: int, elapsed_s: float) -> float:
    warmup = min(config.warmup_steps, max(1, total_steps // 10))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = max(step / max(1, total_steps), elapsed_s / max(1.0, config.max_minutes * 60))
    return config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def class_weights(dataset: TrainingData) -> np.ndarray:
    """Inverse square-root pixel frequency of each class in the labelled training photos, normalised to a mean
    of 1 over the classes seen and clipped to [0.25, 4]: full-body and footwear are a few percent of a street
    photo's pixels, background most of them. (Composites, mostly background, are left out of the count.)"""
    counts = np.zeros(len(CLASSES), np.float64)
    for ex in dataset.train_photos:
        counts += np.bincount(ex.labels.ravel(), minlength=len(CLASSES))[: len(CLASSES)]
    seen = counts > 0
    weights = np.ones(len(CLASSES))
    if seen.any():
        weights[seen] = 1.0 / np.sqrt(counts[seen] / counts.sum())
        weights[seen] /= weights[seen].mean()
    return np.clip(weights, 0.25, 4.0).astype(np.float32)


def init_from_weights(model: torch.nn.Module, path: Path) -> dict:
    """Start from another version: every tensor of matching name and shape is copied; the classifier's rows are
    copied by class name, and classes the source lacks (skin, hair) start from its background row."""
    import torch

    from .weights import load_network

    source, meta = load_network(Path(path))
    src_state = source.state_dict()
    src_classes = list(meta.get("classes", []))
    own = model.state_dict()
    copied = 0
    with torch.no_grad():
        for key, tensor in own.items():
            if key.startswith("head.") and key in src_state and src_classes:
                for i, name in enumerate(CLASSES):
                    j = src_classes.index(name) if name in src_classes else src_classes.index("background")
                    tensor[i] = src_state[key][j]
                copied += 1
            elif key in src_state and src_state[key].shape == tensor.shape:
                tensor.copy_(src_state[key])
                copied += 1
    model.load_state_dict(own)
    return {"init_from": str(path), "tensors_copied": copied, "tensors": len(own)}


def train(
    config: TrainConfig,
    *,
    extra_examples: list[Example] | None = None,
    baseline_weights: Path | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    import segmentation_models_pytorch as smp
    import torch
    from tqdm import tqdm

    from .nets import build_for_config, config_for

    torch.set_num_threads(max(1, config.threads))
    if config.resume and config.name is None:
        config.name = latest_run_name(Path(config.work_dir), config.arch)
    if config.name is None:
        config.name = f"{config.arch}-{time.strftime('%Y%m%d-%H%M%S')}"
    directory = run_dir(config)
    directory.mkdir(parents=True, exist_ok=True)

    dataset = load_training_data(config, extra_examples)
    val = validation_set(config, dataset)
    net_config = config_for(config.arch, num_classes=len(CLASSES))
    model = build_for_config(net_config)
    if config.init_from:
        init_info = init_from_weights(model, Path(config.init_from))
    elif hasattr(model, "load_imagenet_encoder"):
        model.load_imagenet_encoder()
        init_info = {"init_from": "imagenet encoder"}
    else:
        init_info = {}
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    dice = smp.losses.DiceLoss(mode="multiclass", from_logits=True)
    weights = class_weights(dataset) if config.class_balance else np.ones(len(CLASSES), np.float32)
    log.info("class weights: %s", dict(zip(CLASSES, weights.round(3).tolist(), strict=True)))
    ce = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(weights))
    state = {"epoch": 0, "step": 0, "elapsed": 0.0, "best": -1.0, "history": []}
    last_path, best_path = directory / "last.pt", directory / "best.pt"
    if config.resume and last_path.exists():
        checkpoint = torch.load(last_path, map_location="cpu", weights_only=False)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state = checkpoint["state"]
        log.info("resumed %s at epoch %d, step %d", config.name, state["epoch"], state["step"])

    crop = crop_size(config, net_config.stride)
    total_steps = config.epochs * config.steps_per_epoch
    started = time.monotonic() - state["elapsed"]
    rng = np.random.default_rng([config.seed, state["step"]])
    photo_probs = photo_draw_probabilities(dataset.train_photos, config.favour)
    budget_s = config.max_minutes * 60
    model.train()
    while state["epoch"] < config.epochs and time.monotonic() - started < budget_s:
        losses = []
        bar = tqdm(
            range(config.steps_per_epoch),
            desc=f"epoch {state['epoch'] + 1}/{config.epochs}",
            disable=not config.show_progress,
            leave=False,
        )
        for _ in bar:
            if time.monotonic() - started >= budget_s:
                break
            images, labels = make_batch(config, dataset, crop, rng, photo_probs)
            x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0).sub_(0.5).div_(0.5)
            x = x.contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(labels)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(config, state["step"], total_steps, time.monotonic() - started)
            logits = model(x)
            loss = ce(logits, y) + dice(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state["step"] += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        state["epoch"] += 1
        state["elapsed"] = time.monotonic() - started
        metrics = evaluate_model(model, val, net_config.stride) if val else {"val_iou": 0.0}
        metrics["train_loss"] = float(np.mean(losses)) if losses else None
        record = {"epoch": state["epoch"], "step": state["step"], "minutes": round(state["elapsed"] / 60, 2), **metrics}
        state["history"].append(record)
        if metrics["val_iou"] > state["best"]:
            state["best"] = metrics["val_iou"]
            torch.save({"model": model.state_dict(), "metrics": record}, best_path)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state}, last_path)
        (directory / "history.json").write_text(json.dumps(state["history"], indent=1))
        log.info("epoch %d: %s", state["epoch"], json.dumps(record))
        if config.show_progress:
            tqdm.write(
                f"epoch {state['epoch']}: loss {record['train_loss']:.4f} val_iou {metrics['val_iou']:.4f} "
                f"({record['minutes']} min)"
            )
        if on_epoch is not None:
            on_epoch(state["epoch"], record)

    best = torch.load(best_path, map_location="cpu", weights_only=False) if best_path.exists() else None
    if best is None:  # no epoch finished: keep what we have
        best = {"model": model.state_dict(), "metrics": {"val_iou": 0.0}}
    from .weights import save_network

    weights_path = directory / f"{config.name}.pt"
    sha = save_network(
        best["model"],
        arch=config.arch,
        config=net_config.to_dict(),
        classes=list(CLASSES),
        long_side=config.size,
        stride=net_config.stride,
        path=weights_path,
    )
    model_config = {
        "arch": config.arch,
        "config": net_config.to_dict(),
        "classes": list(CLASSES),
        "input": {"long_side": config.size, "stride": net_config.stride, "mean": [0.5] * 3, "std": [0.5] * 3},
    }
    metrics = dict(best["metrics"])
    metrics["val_fingerprint"] = validation_fingerprint(val)
    metrics["class_weights"] = dict(zip(CLASSES, weights.round(4).tolist(), strict=True))
    metrics.update(init_info)
    if baseline_weights is not None and val:
        metrics.update(_baseline_metrics(Path(baseline_weights), val))
    return TrainResult(
        name=config.name,
        arch=config.arch,
        weights_path=weights_path,
        sha256=sha,
        metrics=metrics,
        data_summary={
            **dataset.summary(),
            "train_config": {k: v for k, v in asdict(config).items() if k != "show_progress"},
        },
        model_config=model_config,
        epochs_done=state["epoch"],
        steps_done=state["step"],
        minutes=state["elapsed"] / 60,
    )


def _baseline_metrics(path: Path, val: list[Example]) -> dict:
    """The currently active weights scored on this run's validation set (for the activation decision)."""
    from .weights import WeightsError, load_network

    try:
        model, meta = load_network(path)
    except WeightsError as exc:
        log.warning("baseline not scored: %s", exc)
        return {}
    size = int(meta.get("input", {}).get("long_side", 160))
    resized = [
        Example(
            ex.key, ex.source, seg_data.resize_long(ex.image, size), seg_data.resize_long(ex.labels, size, 0), "val"
        )
        for ex in val
    ]
    scores = evaluate_model(
        model, resized, int(meta.get("input", {}).get("stride", model.config.stride)), meta.get("classes")
    )
    return {"baseline_val_iou": scores["val_iou"]}
