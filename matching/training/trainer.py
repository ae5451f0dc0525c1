"""``train_embedder``: InfoNCE metric learning on a cached frozen front (see ``network``).

1. Views: every photo of every group gets its runtime view plus ``views`` random variations (``views``) and,
   with ``served_views``, the two views the served embedder averages (``services.catalog_views`` /
   ``query_views``: the garment view through the active segmenter, and the context view); the frozen front
   turns them into feature maps (Lite0: 112x14x14), computed once with ONNX Runtime and cached on disk.
2. Training: each step takes a batch of groups, one query-side and one shop-side view of each, runs the tail,
   and minimises the symmetric InfoNCE loss with in-batch negatives (the batch's other products, mostly of the
   same kind: hard negatives). Checkpoints after every epoch make it resumable; a CPU time budget stops it.
3. The best epoch on the validation pairs (recall@1 against their shop photos among catalogue distractors,
   each photo as it is served: the mean of its two served views when they are cached) is written as the
   weights file with its sidecar (preprocessing, checksum, metrics, config).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from django.conf import settings
from PIL import Image
from torch.optim.lr_scheduler import LambdaLR
from tqdm import tqdm

from ..embedders.runtimes import Runner, runner
from ..preprocess import STUDIO_MASK_RULE, pad_square
from . import network
from .data import QUERY, Group
from .views import query_view, shop_view

logger = logging.getLogger(__name__)
INPUT_SIZE = network.BACKBONES[network.DEFAULT_BACKBONE].input_size
MEAN = STD = 0.5


class OnBackbone:
    """For a training config with ``backbone`` and ``split`` fields: the split defaults to the backbone's stride-32
    stage, and the input size is the backbone's."""

    backbone: str
    split: int | None

    def __post_init__(self) -> None:
        if self.split is None:
            self.split = network.backbone_named(self.backbone).split

    @property
    def input_size(self) -> int:
        return network.backbone_named(self.backbone).input_size


@dataclass
class TrainConfig(OnBackbone):
    out: Path
    work_dir: Path
    dimension: int = 256
    split: int | None = None  # first fine-tuned block; None: the backbone's stride-32 stage (network.BACKBONES)
    backbone: str = network.DEFAULT_BACKBONE
    views: int = 3  # random views per photo, besides the runtime view
    epochs: int = 8
    batch_size: int = 96
    lr_tail: float = 2e-4
    lr_head: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.05
    seed: int = 0
    time_budget_s: float = 3600.0
    threads: int = 2
    max_distractors: int = 600
    # From the second epoch on, batches are built from clusters of this many mutually confusable groups
    # (mined with the current weights each epoch); 1 = random batches (the shipped weights; 4 measured in
    # docs/matching.md: open-set AUROC up, recall@1 not).
    confusable_cluster: int = 1
    init_from: Path | None = None  # a trained weights file to start from (fine-tuning) instead of ImageNet
    # Also cache the garment and context views exactly as the served embedder makes them (the query's through
    # the active segmenter), train on them too, and validate on their mean, as matching scores a photo. Off by
    # default: tried on the shipped recipe, validation recall@1 rose (0.77) but held-out pairs fell (docs/matching.md).
    served_views: bool = False
    # Added to ``seed`` for this tail's projection, batch order and view draws, not for the view cache: the tails of
    # one ``train_tails`` run share a cache and differ by it (docs/matching.md, "Three tails of their own seeds").
    tail_seed: int = 0
    # Run the tail's forward pass in bfloat16 (autocast; the loss, the optimiser and the weights stay float32): a
    # training step 15-30 % faster on a CPU with AVX-512 BF16 (bench/tail_training_step.py --bf16); the hard-negative
    # mining and the validation embed in bfloat16 too (2.5 times faster).
    bf16: bool = False

    def fingerprint(self, groups: list[Group]) -> str:
        keys = "|".join(sorted(f"{g.key}:{len(g.photos)}" for g in groups))
        raw = f"{keys}/{self.views}/{self.split}/{self.seed}/{self.input_size}"
        if self.backbone != network.DEFAULT_BACKBONE:  # Lite0 caches keep their fingerprint
            raw += f"/{self.backbone}"
        if STUDIO_MASK_RULE != 1:  # caches made before the rule was recorded keep their fingerprint
            raw += f"/studio_mask:{STUDIO_MASK_RULE}"
        if self.served_views:
            raw += f"/served:{_segmenter_name()}"
        return hashlib.sha1(raw.encode()).hexdigest()[:12]


SERVED_NONE, SERVED_GARMENT, SERVED_CONTEXT = 0, 1, 2


@dataclass
class ViewCache:
    features: np.ndarray  # N x C x H x W float16
    group: np.ndarray  # N: index into the group list
    domain: np.ndarray  # N: 0 shop, 1 query
    runtime: np.ndarray  # N: the deterministic runtime view (mining confusable groups)
    photo: np.ndarray | None = None  # N: index of the photo the view came from (over all groups)
    served: np.ndarray | None = None  # N: SERVED_GARMENT / SERVED_CONTEXT for the served pair, else SERVED_NONE


@dataclass
class TrainResult:
    weights: Path
    metrics: dict
    history: list[dict] = field(default_factory=list)


def to_tensor(images: list[Image.Image], size: int = INPUT_SIZE) -> np.ndarray:
    batch = np.stack([
        np.asarray(pad_square(im.convert("RGB")).resize((size, size), Image.Resampling.BILINEAR))
        for im in images
    ]).astype(np.float32)
    return np.ascontiguousarray(((batch / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2))


def _open(path: str) -> Image.Image:
    from catalog.imaging import load_image  # upright RGB from any accepted format (HEIC snapshots included)

    with open(path, "rb") as handle:
        return load_image(handle.read()).image


def _segmenter_name() -> str:
    """The segmenter serving now (the served query views depend on it), for the view cache's fingerprint."""
    from segmentation.segmenter import get_segmenter

    segmenter = get_segmenter()
    return segmenter.spec.version if segmenter is not None else "grabcut"


def _served_views(image: Image.Image, domain: str) -> list[Image.Image]:
    """The garment and context views the served embedder averages for this photo (docs/matching.md)."""
    from .. import services

    if domain == QUERY:
        return services.query_views(image, segment="auto", context=True)
    return services.catalog_views(image, context=True)


def _views_of(
    group: Group, config: TrainConfig, rng: np.random.Generator
) -> Iterator[tuple[Image.Image, int, bool, int, int]]:
    """(image, domain, is_runtime, photo number in the group, served role) for every view of a group's photos."""
    single = len(group.photos) == 1
    for number, photo in enumerate(group.photos):
        try:
            image = _open(photo.path)
        except OSError as exc:
            logger.warning("skipping unreadable training photo %s: %s", photo.path, exc)
            continue
        domain = 1 if photo.domain == QUERY else 0
        if config.served_views:
            garment, *context = _served_views(image, photo.domain)
            yield garment, domain, False, number, SERVED_GARMENT
            for view in context:
                yield view, domain, False, number, SERVED_CONTEXT
        if photo.domain == QUERY:
            yield query_view(image), 1, True, number, SERVED_NONE
            for _ in range(config.views):
                yield query_view(image, rng), 1, False, number, SERVED_NONE
            continue
        yield shop_view(image), 0, True, number, SERVED_NONE
        for n in range(config.views):
            if single:  # one photo only: its phone-like variations play the query side
                yield (shop_view(image, rng, phone_like=n % 2 == 0 or config.views == 1), 1 if n % 2 == 0 else 0,
                       False, number, SERVED_NONE)
            else:
                yield shop_view(image, rng, phone_like=n % 3 == 0), 0, False, number, SERVED_NONE


def _front_session(front: network.Front, path: Path, threads: int, size: int = INPUT_SIZE) -> Runner:
    """The frozen front exported to ONNX once per work folder, run where the served embedders run
    (``settings.STOCKMATCH_EMBED_RUNTIME``): its cached features are what the tails train on."""
    if not path.exists():
        sample = torch.zeros(2, 3, size, size)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.onnx.export(front, (sample,), str(tmp), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["features"], dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}})
        os.replace(tmp, path)
    return runner(path, runtime=_fit_runtime(), threads=threads)


def _fit_runtime() -> str:
    return "onnx" if settings.STOCKMATCH_EMBED_RUNTIME == "torch" else settings.STOCKMATCH_EMBED_RUNTIME


def _cache_stem(groups: list[Group], config: TrainConfig) -> Path:
    return config.work_dir / f"views-{config.fingerprint(groups)}"


def _cache_load(stem: Path) -> ViewCache:
    data = np.load(stem.with_suffix(".npz"))
    feats = np.load(stem.with_suffix(".features.npy"), mmap_mode="r")
    return ViewCache(np.asarray(feats), data["group"], data["domain"], data["runtime"],
                     data["photo"] if "photo" in data else None, data["served"] if "served" in data else None)


def build_cache(groups: list[Group], config: TrainConfig, front: network.Front) -> ViewCache:
    """Front features of every view, cached under ``work_dir`` by a fingerprint of the groups and config."""
    return build_caches(groups, [(config, front)])[0]


def build_caches(groups: list[Group], runs: list[tuple[TrainConfig, network.Front]]) -> list[ViewCache]:
    """``build_cache`` for several backbones at once: each view is drawn and rendered once and run through every
    front still missing its cache, at that front's input size. The runs must draw the same views (seed, views,
    served views); each cache is then what its own ``build_cache`` would have written."""
    draws = {(config.seed, config.views, config.served_views) for config, _ in runs}
    if len(draws) > 1:
        raise ValueError("Caches built together must draw the same views (seed, views, served views).")
    stems = [_cache_stem(groups, config) for config, _ in runs]
    missing = [i for i, stem in enumerate(stems) if not stem.with_suffix(".npz").exists()]
    if missing:
        sessions = []
        for i in missing:
            config, front = runs[i]
            config.work_dir.mkdir(parents=True, exist_ok=True)
            front_name = "front" if config.backbone == network.DEFAULT_BACKBONE else f"front-{config.backbone}"
            sessions.append(_front_session(front, config.work_dir / f"{front_name}-split{config.split}.onnx",
                                           config.threads, config.input_size))
        _views_write(groups, runs[missing[0]][0], [stems[i] for i in missing], sessions,
                     [runs[i][0].input_size for i in missing])
    return [_cache_load(stem) for stem in stems]


def _views_write(groups: list[Group], config: TrainConfig, stems: list[Path], sessions: list[Runner],
                 sizes: list[int]) -> None:
    rng = np.random.default_rng(config.seed)
    chunks: list[list[np.ndarray]] = [[] for _ in sessions]
    group_ids, domains, runtime, photos, served = [], [], [], [], []
    pending: list[Image.Image] = []
    photo_base = 0

    def flush() -> None:
        if pending:
            for chunk, session, size in zip(chunks, sessions, sizes, strict=True):
                chunk.append(session.run(to_tensor(pending, size))[0].astype(np.float16))
            pending.clear()

    for index, group in enumerate(tqdm(groups, desc="views", unit="group", mininterval=10)):
        for image, domain, is_runtime, number, role in _views_of(group, config, rng):
            pending.append(image)
            group_ids.append(index)
            domains.append(domain)
            runtime.append(is_runtime)
            photos.append(photo_base + number)
            served.append(role)
            if len(pending) >= 64:
                flush()
        photo_base += len(group.photos)
    flush()
    arrays = {"group": np.asarray(group_ids), "domain": np.asarray(domains), "runtime": np.asarray(runtime),
              "photo": np.asarray(photos), "served": np.asarray(served, dtype=np.int8)}
    for stem, chunk in zip(stems, chunks, strict=True):
        np.save(stem.with_suffix(".features.npy"), np.concatenate(chunk))
        np.savez(stem.with_suffix(".npz"), **arrays)


def served_embeddings(tail: network.Tail, cache: ViewCache, rows: np.ndarray,
                      bf16: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One vector per photo among ``rows`` (views of SERVED_GARMENT / SERVED_CONTEXT): the normalised mean of
    its served views, as ``Embedder.embed_groups`` scores a photo; returns (vectors, the photos' groups)."""
    embedded = _embed(tail, cache.features[rows], bf16=bf16)
    photo_of = cache.photo[rows]
    photos = np.unique(photo_of)
    vectors = np.stack([embedded[photo_of == p].mean(axis=0) for p in photos]) if len(photos) else embedded[:0]
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    groups = np.asarray([cache.group[rows[photo_of == p][0]] for p in photos])
    return vectors, groups


def _freeze_batchnorm(module: torch.nn.Module) -> None:
    for child in module.modules():
        if isinstance(child, torch.nn.BatchNorm2d):
            child.eval()


def _embed(tail: network.Tail, features: np.ndarray, batch: int = 256, bf16: bool = False) -> np.ndarray:
    """The tail's unit vectors for cached front maps. ``bf16``: under bfloat16 autocast, as the run trains; 2.5 times
    faster on this CPU and within 3e-4 of float32's cosine (docs/matching.md, "Mining and validation in bfloat16")."""
    tail.eval()
    out = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(features), batch):
            chunk = torch.from_numpy(np.asarray(features[start:start + batch], dtype=np.float32))
            out.append(F.normalize(tail(chunk).float(), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, tail.projection.out_features), np.float32)


def confusable_groups(tail: network.Tail, cache: ViewCache, groups: list[int], k: int,
                      bf16: bool = False) -> dict[int, list[int]]:
    """Each group's ``k`` most confusable other groups under the current weights: the shop-side runtime views
    nearest to its query-side runtime view (its shop view when it has no query photo)."""
    rt = cache.runtime.astype(bool)
    wanted = np.isin(cache.group, groups)
    shop_rows, query_rows = {}, {}
    for row in np.nonzero(rt & wanted)[0]:
        target = query_rows if cache.domain[row] == 1 else shop_rows
        target.setdefault(int(cache.group[row]), int(row))
    shop_groups = np.asarray(sorted(shop_rows))
    if len(shop_groups) < 2:
        return {}
    gallery = _embed(tail, cache.features[[shop_rows[g] for g in shop_groups]], bf16=bf16)
    askers = [g for g in groups if g in query_rows or g in shop_rows]
    queries = _embed(tail, cache.features[[query_rows.get(g, shop_rows.get(g)) for g in askers]], bf16=bf16)
    sims = queries @ gallery.T
    sims[np.asarray(askers)[:, None] == shop_groups[None, :]] = -2.0
    nearest = np.argsort(-sims, axis=1)[:, :k]
    return {g: [int(shop_groups[j]) for j in row] for g, row in zip(askers, nearest, strict=True)}


def confusable_order(rng: np.random.Generator, groups: list[int], neighbours: dict[int, list[int]],
                     cluster: int) -> list[int]:
    """Every group once, in runs of ``cluster`` groups that the current weights confuse (a seed group and its
    nearest unused neighbours), the runs in random order: the batch's negatives are the hard ones."""
    remaining = set(groups)
    order: list[int] = []
    for seed in rng.permutation(groups):
        seed = int(seed)
        if seed not in remaining:
            continue
        remaining.discard(seed)
        order.append(seed)
        added = 0
        for other in neighbours.get(seed, []):
            if added >= cluster - 1:
                break
            if other in remaining:
                remaining.discard(other)
                order.append(other)
                added += 1
    return order


def retrieval_scores(queries: np.ndarray, query_groups: np.ndarray, gallery: np.ndarray,
                     gallery_groups: np.ndarray) -> dict:
    """recall@1/5/10 and MRR of each query's group among the gallery (best image per group)."""
    sims = queries @ gallery.T
    ranks = []
    for row, group in zip(sims, query_groups, strict=True):
        best: dict[int, float] = {}
        for score, g in zip(row, gallery_groups, strict=True):
            if score > best.get(int(g), -2.0):
                best[int(g)] = float(score)
        target = best.get(int(group))
        ranks.append(None if target is None else 1 + sum(1 for s in best.values() if s > target))
    found = [r for r in ranks if r is not None]
    n = max(1, len(ranks))
    return {f"recall@{k}": round(sum(1 for r in found if r <= k) / n, 4) for k in (1, 5, 10)} | {
        "mrr": round(sum(1.0 / r for r in found) / n, 4), "n_queries": len(ranks)}


class WarmupCosine:
    """Linear warm-up over ``warmup`` steps, then cosine decay to zero at ``total_steps``. An object, not a closure,
    so that ``LambdaLR.state_dict`` keeps ``total_steps`` when a run shortens its schedule to fit its time budget."""

    def __init__(self, total_steps: int, warmup: int) -> None:
        self.total_steps, self.warmup = int(total_steps), int(warmup)

    def __call__(self, step: int) -> float:
        total = self.total_steps
        return min(1.0, (step + 1) / self.warmup) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def warmup_cosine(optimiser: torch.optim.Optimizer, total_steps: int, *, warmup: int) -> LambdaLR:
    """Linear warm-up over ``warmup`` steps, then cosine decay to zero at ``total_steps``."""
    return LambdaLR(optimiser, WarmupCosine(total_steps, warmup))


def epochs_that_fit(planned: int, done: int, epoch_seconds: float, left_seconds: float) -> int:
    """How many epochs a run plans once ``done`` epochs took ``epoch_seconds`` each and ``left_seconds`` of its
    budget remain: never more than ``planned``, never fewer than ``done`` + 1 (the budget guard stops that one)."""
    fit = done + int(max(0.0, left_seconds) // max(epoch_seconds, 1e-6))
    return max(done + 1, min(planned, fit))


def optimise(loss: torch.Tensor, optimiser: torch.optim.Optimizer, schedule: LambdaLR) -> float:
    """One optimisation step on ``loss``; returns its value."""
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    schedule.step()
    return float(loss.detach())


def epoch_steps(
    steps: int, step_loss: Callable[[int], torch.Tensor], *, optimiser: torch.optim.Optimizer, schedule: LambdaLR,
    desc: str, started: float, budget_s: float,
) -> tuple[float, bool]:
    """One epoch: up to ``steps`` optimisation steps on ``step_loss(step)``, stopped early once ``budget_s`` seconds
    have passed since ``started``. Returns the epoch's mean loss and whether the time budget ran out."""
    losses = []
    for step in tqdm(range(steps), desc=desc, mininterval=30):
        losses.append(optimise(step_loss(step), optimiser, schedule))
        if time.monotonic() - started > budget_s:
            return float(np.mean(losses)), True
    return float(np.mean(losses)), False


def train(
    groups: list[Group], validation: list[Group], config: TrainConfig,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train, checkpoint each epoch, and write the best weights to ``config.out`` (+ ``.json`` sidecar)."""
    torch.manual_seed(config.seed + config.tail_seed)
    torch.set_num_threads(config.threads)
    say = progress or logger.info
    front, tail = network.build(split=config.split, dimension=config.dimension, backbone=config.backbone)
    if config.init_from:
        network.tail_load(tail, config.init_from, split=config.split, dimension=config.dimension,
                          backbone=config.backbone)
        say(f"starting from {config.init_from}")
    all_groups = groups + validation
    started = time.monotonic()
    cache = build_cache(all_groups, config, front)
    n_train = len(groups)
    say(f"cached {len(cache.group)} views of {len(all_groups)} groups in {time.monotonic() - started:.0f} s")

    by_group: dict[int, dict[int, list[int]]] = {}
    for i, (g, d) in enumerate(zip(cache.group, cache.domain, strict=True)):
        by_group.setdefault(int(g), {0: [], 1: []})[int(d)].append(i)
    trainable = [g for g in range(n_train) if by_group.get(g, {}).get(0) and by_group.get(g, {}).get(1)]
    multi_shop = [g for g in range(n_train) if len(by_group.get(g, {}).get(0, [])) > 1]
    eligible = sorted(set(trainable) | set(multi_shop))
    say(f"{len(eligible)} trainable groups")
    index_of = {group.key: i for i, group in enumerate(all_groups[:n_train])}
    eligible_set = set(eligible)
    hard_negatives = {  # review rejections and candidates a worker passed over: put them in the same batch
        g: [index_of[key] for key in all_groups[g].negatives if index_of.get(key) in eligible_set]
        for g in eligible if all_groups[g].negatives
    }

    # validation: validation pairs' worn photos vs their shop photos among catalogue distractors, each photo
    # as served (the mean of its two served views) when those are cached, else its runtime view
    val_ids = set(range(n_train, len(all_groups)))
    distractor_groups = [g for g in range(n_train) if all_groups[g].source == "catalogue"][: config.max_distractors]
    per_photo = cache.served is not None and bool((cache.served > 0).any())
    chosen = cache.served > 0 if per_photo else cache.runtime.astype(bool)
    val_queries = np.nonzero(chosen & (cache.domain == 1) & np.isin(cache.group, list(val_ids)))[0]
    gallery_idx = np.nonzero(chosen & (cache.domain == 0) & np.isin(cache.group, list(val_ids) + distractor_groups))[0]

    def validate() -> dict:
        if not len(val_queries):
            return {}
        if per_photo:
            q, q_groups = served_embeddings(tail, cache, val_queries, bf16=config.bf16)
            g, g_groups = served_embeddings(tail, cache, gallery_idx, bf16=config.bf16)
            return retrieval_scores(q, q_groups, g, g_groups)
        q = _embed(tail, cache.features[val_queries], bf16=config.bf16)
        g = _embed(tail, cache.features[gallery_idx], bf16=config.bf16)
        return retrieval_scores(q, cache.group[val_queries], g, cache.group[gallery_idx])

    head_params = list(tail.projection.parameters())
    head_ids = {id(p) for p in head_params}
    tail_params = [p for p in tail.parameters() if id(p) not in head_ids]
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / config.temperature)))
    optimiser = torch.optim.AdamW([
        {"params": tail_params, "lr": config.lr_tail},
        {"params": head_params + [logit_scale], "lr": config.lr_head},
    ], weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(eligible) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    schedule = warmup_cosine(optimiser, total_steps, warmup=20)
    variant = f"{config.dimension}-c{config.confusable_cluster}" + ("-bf16" if config.bf16 else "")
    if config.tail_seed:
        variant += f"-s{config.tail_seed}"
    if config.init_from:
        variant += "-from-" + hashlib.sha1(str(config.init_from).encode()).hexdigest()[:8]
    checkpoint = config.work_dir / f"checkpoint-{config.fingerprint(all_groups)}-{variant}.pt"
    state = {"epoch": 0, "best": -1.0, "history": [], "best_tail": None}
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        tail.load_state_dict(saved["tail"])
        optimiser.load_state_dict(saved["optimiser"])
        schedule.load_state_dict(saved["schedule"])
        logit_scale.data.fill_(saved["logit_scale"])
        state = saved["state"]
        say(f"resumed at epoch {state['epoch']}")
    elif not state["history"]:
        state["history"].append({"epoch": 0, **validate()})
        say(f"epoch 0 ({'start weights' if config.init_from else 'ImageNet front, random projection'}):"
            f" {state['history'][-1]}")
    rng = np.random.default_rng(config.seed + state["epoch"] + 1000 * config.tail_seed)

    state.setdefault("epochs", config.epochs)  # planned; shortened below when the budget will not hold it
    while state["epoch"] < state["epochs"]:
        epoch, epoch_started = state["epoch"], time.monotonic()
        tail.train()
        _freeze_batchnorm(tail)
        if config.confusable_cluster > 1 and epoch > 0:
            neighbours = confusable_groups(tail, cache, eligible, k=4 * config.confusable_cluster, bf16=config.bf16)
            order = confusable_order(rng, eligible, neighbours, config.confusable_cluster)
            tail.train()
            _freeze_batchnorm(tail)
        else:
            order = rng.permutation(eligible)

        def step_loss(step: int, order: np.ndarray | list[int] = order) -> torch.Tensor:  # this epoch's order
            batch = list(order[step * config.batch_size:(step + 1) * config.batch_size])
            present = set(batch)
            for g in list(batch):
                for negative in hard_negatives.get(int(g), [])[:2]:
                    if negative not in present:
                        batch.append(negative)
                        present.add(negative)
            anchors, positives = [], []
            for g in batch:
                views = by_group[int(g)]
                if views[1]:
                    anchors.append(int(rng.choice(views[1])))
                    positives.append(int(rng.choice(views[0])))
                else:
                    a, b = rng.choice(views[0], size=2, replace=False)
                    anchors.append(int(a))
                    positives.append(int(b))
            idx = anchors + positives
            feats = torch.from_numpy(np.asarray(cache.features[np.asarray(idx)], dtype=np.float32))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                out = tail(feats)
            out = F.normalize(out.float(), dim=1)
            q, s = out[: len(batch)], out[len(batch):]
            logits = logit_scale.exp().clamp(max=100.0) * (q @ s.T)
            labels = torch.arange(len(batch))
            return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))

        loss, budget_hit = epoch_steps(steps_per_epoch, step_loss, optimiser=optimiser, schedule=schedule,
                                       desc=f"epoch {epoch + 1}", started=started, budget_s=config.time_budget_s)
        metrics = {"epoch": epoch + 1, "loss": round(loss, 4), **validate()}
        state["history"].append(metrics)
        say(f"epoch {epoch + 1}: {metrics}")
        if metrics.get("recall@1", 0.0) + 0.1 * metrics.get("recall@10", 0.0) > state["best"]:
            state["best"] = metrics.get("recall@1", 0.0) + 0.1 * metrics.get("recall@10", 0.0)
            state["best_tail"] = network.tail_state(tail)
            state["best_metrics"] = metrics
        state["epoch"] = epoch + 1
        # When the budget will not hold the planned epochs, end the cosine schedule at the last epoch that fits
        # instead of stopping with the learning rate still high (only ever shortened).
        fit = epochs_that_fit(state["epochs"], state["epoch"], time.monotonic() - epoch_started,
                              config.time_budget_s - (time.monotonic() - started))
        if fit < state["epochs"] and not budget_hit:
            say(f"{fit} of {state['epochs']} epochs fit the time budget: the schedule ends there")
            state["epochs"] = fit
            for factor in schedule.lr_lambdas:
                factor.total_steps = steps_per_epoch * fit
        torch.save({"tail": tail.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                    "logit_scale": float(logit_scale.detach()), "state": state}, checkpoint)
        if budget_hit:
            say("time budget reached")
            break

    metrics = {
        "validation": state.get("best_metrics", {}), "history": state["history"],
        "wall_seconds": round(time.monotonic() - started, 1), "groups": len(groups),
        "validation_groups": len(validation),
    }
    tail_file_write(config.out, state["best_tail"] or network.tail_state(tail), split=config.split,
                    dimension=config.dimension, metrics=metrics, config=asdict(config), backbone=config.backbone)
    return TrainResult(weights=config.out, metrics=metrics, history=state["history"])


def tail_file_write(out: Path, tail: dict, *, split: int, dimension: int, metrics: dict, config: dict,
                    meta: dict | None = None, extra: dict | None = None,
                    backbone: str = network.DEFAULT_BACKBONE) -> dict:
    """A trained tail's weights file (what ``TrainedEfficientNetLite0`` serves: ``meta`` + ``tail`` [+ ``extra``
    entries]) and its sidecar (meta, checksum, ``metrics``, ``config``); returns the sidecar."""
    from segmentation.weights import sha256_file

    meta = {
        "split": split, "dimension": dimension, "backbone": backbone,
        "preprocessing": {"input_size": network.BACKBONES[backbone].input_size, "mean": [MEAN] * 3, "std": [STD] * 3,
                          "interpolation": "bilinear",
                          "studio_mask": STUDIO_MASK_RULE},
        "gem_p": 3.0, **(meta or {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save({"meta": meta, "tail": tail, **(extra or {})}, tmp)
    os.replace(tmp, out)
    sidecar = {**meta, "sha256": sha256_file(out), "metrics": metrics,
               "config": {k: str(v) if isinstance(v, Path) else v for k, v in config.items()}}
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=2))
    return sidecar


def sidecar_record_command(weights: Path, command: str) -> None:
    """The command line that wrote ``weights``, in its sidecar (what reproduces it); only when ``manage.py command``
    is what runs, not when called from code or tests."""
    if sys.argv[1:2] != [command]:
        return
    sidecar_path = Path(weights).with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["command"] = "python manage.py " + shlex.join(sys.argv[1:])
    sidecar_path.write_text(json.dumps(sidecar, indent=2))


def train_tails(
    groups: list[Group], validation: list[Group], config: TrainConfig, clusters: list[int],
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Several tails on one cached front, then one ensemble file at ``config.out`` (docs/matching.md, "Two tails").

    Tail ``i`` batches by ``clusters[i]`` (``confusable_cluster``: 1 random, 4 clusters of confusable products),
    is seeded ``seed + i`` (``tail_seed``: its projection, batch order and view draws; one seed for all made tails
    that began alike and joined worse, docs/matching.md) and gets an equal share of what is left of
    ``config.time_budget_s`` when it starts; the view cache is built once, within the budget. Each tail is its own
    resumable run in ``config.work_dir``."""
    say = progress or logger.info
    started = time.monotonic()
    front, _ = network.build(split=config.split, dimension=config.dimension, backbone=config.backbone)
    build_cache(groups + validation, config, front)
    members, history = [], []
    for i, cluster in enumerate(clusters):
        left = config.time_budget_s - (time.monotonic() - started)
        member = replace(config, confusable_cluster=cluster, time_budget_s=left / (len(clusters) - i), tail_seed=i,
                         out=config.work_dir / f"tail{i + 1}-c{cluster}-s{i}-{config.dimension}.pt")
        say(f"tail {i + 1} of {len(clusters)} (confusable cluster {cluster}): {member.time_budget_s / 60:.1f} min")
        result = train(groups, validation, member, progress=say)
        members.append(result.weights)
        history.append(result.metrics)
    sidecar = ensemble_write_with_sidecar(members, config.out,
                                          metrics={"wall_seconds": round(time.monotonic() - started, 1)})
    return TrainResult(weights=config.out, metrics=sidecar["metrics"], history=history)


@dataclass(frozen=True)
class Part:
    """One backbone's share of a joined model: its tails (one confusable-cluster size each), their epochs, and the
    first fine-tuned block (None: the backbone's stride-32 stage)."""
    backbone: str
    clusters: tuple[int, ...]
    epochs: int
    split: int | None = None

    def planned_cost(self, *, bf16: bool = False) -> float:
        """Training work in Lite0 tail-epochs (the measured cost of the part's tail step relative to Lite0's, in
        the precision it trains in)."""
        return len(self.clusters) * self.epochs * network.tail_cost(self.backbone, self.split, bf16=bf16)


JOIN_RESERVE_S = 180.0  # the projection's fit on 2,500 catalogue photos: 2.5 min measured (docs/matching.md)


def train_parts(
    groups: list[Group], validation: list[Group], config: TrainConfig, parts: list[Part], *,
    joined_dimension: int, photos: list[Path], progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Tails on several backbones, then joined and projected to ``joined_dimension`` on ``photos`` (``mixed_fit``),
    all within ``config.time_budget_s`` (docs/matching.md, "Two backbones in one command").

    The parts' view caches are built first, together (``build_caches``: each view rendered once). Each part then
    trains as ``train_tails`` does, in its own folder of ``config.work_dir`` (resumable), on what is left of the budget
    (less the join's reserve) in proportion to its planned cost among the parts still to train."""
    say = progress or logger.info
    started = time.monotonic()
    budget = config.time_budget_s - JOIN_RESERVE_S
    members, history = [], []
    runs = []
    for part in parts:
        work_dir = config.work_dir / part.backbone
        runs.append(replace(config, backbone=part.backbone, split=part.split, epochs=part.epochs, work_dir=work_dir,
                            out=work_dir / f"tails-{'-'.join(map(str, part.clusters))}.pt"))
    # the parts draw the same views: each is rendered once for every front (20 % less cache time on a sample)
    build_caches(groups + validation, [(run, network.build(split=run.split, dimension=run.dimension,
                                                           backbone=run.backbone)[0]) for run in runs])
    say(f"cached the views of {len(parts)} backbones in {(time.monotonic() - started) / 60:.1f} min")
    costs = [part.planned_cost(bf16=config.bf16) for part in parts]
    for i, (part, run) in enumerate(zip(parts, runs, strict=True)):
        left = budget - (time.monotonic() - started)
        share = left * costs[i] / sum(costs[i:])
        member = replace(run, time_budget_s=share)
        say(f"part {i + 1} of {len(parts)}: {part.backbone}, {len(part.clusters)} tail(s) of {part.epochs} epochs, "
            f"{share / 60:.1f} min")
        if len(part.clusters) == 1:
            result = train(groups, validation, replace(member, confusable_cluster=part.clusters[0]), progress=say)
        else:
            result = train_tails(groups, validation, member, list(part.clusters), progress=say)
        members.append(result.weights)
        history.append(result.metrics)
    sidecar = mixed_fit(members, photos, config.out, dimension=joined_dimension, threads=config.threads,
                        progress=say, metrics={"wall_seconds": round(time.monotonic() - started, 1)})
    return TrainResult(weights=config.out, metrics=sidecar["metrics"], history=history)


def member_records(members: list[Path]) -> list[dict]:
    """What an ensemble's sidecar keeps of each file it joins: name, checksum, and the file's own record (its
    validation, config and command; an ensemble's: its members' records)."""
    from segmentation.weights import sha256_file

    records = []
    for path in members:
        sidecar = Path(path).with_suffix(".json")
        member = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        record = {"file": Path(path).name, "sha256": sha256_file(path)}
        if "members" in member.get("metrics", {}):
            record["members"] = member["metrics"]["members"]
            if member.get("command"):
                record["command"] = member["command"]
        else:
            record.update({"validation": member.get("metrics", {}).get("validation"),
                           "config": member.get("config"), "command": member.get("command")})
        records.append(record)
    return records


def ensemble_write_with_sidecar(members: list[Path], out: Path, *, metrics: dict | None = None,
                                studio_mask: int | None = None) -> dict:
    """``network.ensemble_write`` plus the sidecar the embedder reads: checksum, each member's own record (an
    ensemble member's: its members' records), and ``metrics`` of the run that made it."""
    meta = network.ensemble_write(members, out, studio_mask=studio_mask)
    return _joined_sidecar_write(out, meta, members, metrics or {})


def side_by_side_with_sidecar(members: list[Path], out: Path, *, input_size: int | None = None) -> dict:
    """``network.mixed_write`` with no projection: the tails of different backbones side by side, each part's vector
    weighted equally (how ``train_attributes --join`` joins appearance tails; the heads standardise every coordinate,
    so no rotation is fitted), served at ``input_size``; plus the sidecar."""
    meta = network.mixed_write(members, out, input_size=input_size)
    return _joined_sidecar_write(out, meta, members, {})


def _joined_sidecar_write(out: Path, meta: dict, members: list[Path], metrics: dict) -> dict:
    """The sidecar of a file joining ``members``: its meta, checksum, the members' records and ``metrics``."""
    from segmentation.weights import sha256_file

    sidecar = {**meta, "sha256": sha256_file(out), "metrics": {"members": member_records(members), **metrics}}
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=2))
    return sidecar


def mixed_fit(members: list[Path], photos: list[Path], out: Path, *, dimension: int, threads: int = 2,
              progress: Callable[[str], None] | None = None, metrics: dict | None = None) -> dict:
    """Join trained files of different backbones (``network.mixed_write``) and fit the projection that keeps the
    stored dimension: the leading right singular vectors of the joined vectors of ``photos`` (catalogue photos,
    served as the catalogue serves them; no pair and no label is read), then a fixed rotation. Writes ``out`` and
    its sidecar."""
    from .. import services
    from ..embedders import TrainedEfficientNetLite0

    say = progress or logger.info
    joined = out.with_suffix(".joined.pt")
    width = network.mixed_write(members, joined)["dimension"]
    if dimension > width:
        joined.unlink(missing_ok=True)
        raise ValueError(f"The joined tails give {width} dimensions; a projection to {dimension} needs at least as "
                         f"many (a smaller --dimension, or more tails).")
    embedder = TrainedEfficientNetLite0(name="mixed-fit", weights=str(joined), runtime=_fit_runtime(), threads=threads,
                                        context_view=True)
    vectors = []
    for start in tqdm(range(0, len(photos), 64), desc="fit photos", unit="batch", mininterval=10):
        groups = []
        for path in photos[start:start + 64]:
            try:
                image = _open(str(path))
            except OSError as exc:
                logger.warning("skipping unreadable photo %s: %s", path, exc)
                continue
            groups.append(services.catalog_views(image, context=True, rule=embedder.studio_mask_rule))
        if groups:
            vectors.append(embedder.embed_groups(groups))
    matrix = np.concatenate(vectors)
    if len(matrix) < dimension:
        raise ValueError(f"Fitting a {dimension}-d projection needs at least {dimension} photos; {len(matrix)} read.")
    _, singular, rows = np.linalg.svd(matrix.astype(np.float64), full_matrices=False)
    kept = float((singular[:dimension] ** 2).sum() / (singular ** 2).sum())
    say(f"projection {matrix.shape[1]} -> {dimension} on {len(matrix)} photos keeps {kept:.4f} of the energy")
    # A fixed random rotation after the leading directions keeps every cosine but spreads the variance evenly over
    # the stored coordinates, as the tails' own vectors spread it: the heads standardise each coordinate, and on
    # a small catalogue the near-empty trailing directions of a bare singular basis would drown the signal.
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((dimension, dimension)))
    projection = torch.from_numpy((rows[:dimension].T @ rotation).astype(np.float32))
    meta = network.mixed_write(members, out, projection=projection)
    joined.unlink(missing_ok=True)
    return _joined_sidecar_write(out, meta, members,
                                 {"projection": {"photos": len(matrix), "energy_kept": round(kept, 4)},
                                  **(metrics or {})})
