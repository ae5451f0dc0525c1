"""Matching services: model versions, catalogue embedding, and ``match_image`` (docs/CONTRACTS.md)."""
from __future__ import annotations

import io
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image

from catalog.imaging import LoadedImage, load_image
from catalog.models import Product, ProductImage
from segmentation import METHODS, CutOut, HintError, SegmentationInputError, cut_out, cut_out_garments
from segmentation import hints as hint_utils
from segmentation.hints import Hints
from segmentation.view import context_view, garment_view

from . import calibration, colour, conf, search
from .appearance import joint_with
from .embedders import Embedder, get_embedder
from .embedders.base import l2_normalise
from .embedders.efficientnet import file_sha256
from .embedders.trained import weights_file
from .models import EmbeddingModel, ModelState, ProductEmbedding
from .preprocess import STUDIO_MASK_RULE, canonical_crop, canonical_views, studio_mask, working_copy

logger = logging.getLogger(__name__)

NOT_IN_CATALOGUE = "likely not in catalogue"
DECISION_HELP = (  # the keys of ``decide``'s verdict, for the APIs that return it
    "in_catalogue, sku, product_id, score (the top product's), open_set_score (top - alpha x mean of ranks 2-10, "
    "what the threshold applies to), alpha, margin, threshold, margin_threshold, label"
)
SEGMENTATION_METHODS = METHODS


class MatchInputError(ValueError):
    """The caller asked for something that cannot be done (an unknown segmentation method, no photo)."""


# Exceptions meaning "the caller's input was wrong" (4xx), as opposed to a failure of the matcher.
MATCH_INPUT_ERRORS: tuple[type[Exception], ...] = (
    search.FilterError, MatchInputError, HintError, SegmentationInputError,
)


# -- model versions ----------------------------------------------------------------------------------

def embedding_model_for(*, embedder_name: str | None = None, weights: str | None = None) -> EmbeddingModel:
    """The version row for a configured embedder (created in state "building" on first sight).

    A trained embedder brings the thresholds calibrated on its validation pairs (``shipped_thresholds``), so a
    fresh installation's decision has a stated expected precision before any snapshot is confirmed.
    """
    embedder = get_embedder(embedder_name, weights=weights)
    calibrated = getattr(embedder, "shipped_calibration", None) or {}
    model, _ = EmbeddingModel.objects.get_or_create(
        name=embedder.version,
        defaults={
            "embedder": embedder.name, "backbone": embedder.backbone, "weights_checksum": embedder.checksum,
            "dimension": embedder.dimension, "preprocessing": embedder.preprocessing_record(),
            "weights": weights or "", "thresholds": calibrated.get("thresholds", {}),
            "metrics": {"calibration": calibrated["metrics"]} if calibrated.get("metrics") else {},
        },
    )
    return model


TRAINED_EMBEDDER = "trained"  # the settings.EMBEDDERS entry of the shipped weights and of versions trained here
SHIPPED_CALIBRATION_SOURCE = "validation pairs of "  # how a sidecar's calibration names its source


def shipped_calibration_refresh() -> list[str]:
    """Versions still on the thresholds their weights shipped with take the sidecar's again when it was
    recalibrated (a change in the match path, such as the colour re-ranking, changes what a score means); a
    version calibrated on this installation's own decisions (``calibrate_matching``) keeps its own. Returns the
    names of the versions refreshed. Runs after every ``migrate``."""
    refreshed = []
    for model in EmbeddingModel.objects.exclude(state=ModelState.RETIRED):
        current = (model.metrics or {}).get("calibration") or {}
        if current and not str(current.get("source", "")).startswith(SHIPPED_CALIBRATION_SOURCE):
            continue
        try:
            shipped = getattr(embedder_for(model), "shipped_calibration", None) or {}
        except Exception as exc:  # noqa: BLE001 - weights gone or changed: the version is served as it is
            logger.info("no shipped calibration for %s: %s", model.name, exc)
            continue
        metrics = shipped.get("metrics") or {}
        if not shipped.get("thresholds") or metrics.get("fitted_at") == current.get("fitted_at"):
            continue
        model.thresholds = shipped["thresholds"]
        model.metrics = {**(model.metrics or {}), "calibration": metrics}
        model.save(update_fields=["thresholds", "metrics"])
        refreshed.append(model.name)
        logger.info("%s: thresholds from its recalibrated sidecar (%s)", model.name, metrics.get("fitted_at"))
    return refreshed


def shipped_embedder_adopt() -> EmbeddingModel | None:
    """After an upgrade replaced the shipped embedder file (``settings.SHIPPED_EMBEDDER_WEIGHTS``): versions made
    from an earlier shipped file keep loading it (their rows now name it; it stays in ``models/embedder/``), and
    an installation whose active version was shipped switches to the new default in the background (the
    catalogue is re-embedded while the old version serves, as *Activate* does). A version trained on this
    installation, or the ImageNet fallback, stays active. Returns the version being switched to, or None.
    Runs after every ``migrate``."""
    shipped = Path(settings.SHIPPED_EMBEDDER_WEIGHTS)
    if getattr(settings, "EMBEDDER_NAME", "default") != TRAINED_EMBEDDER or not shipped.exists():
        return None
    current = file_sha256(str(shipped))
    earlier = {file_sha256(str(path)): path for path in sorted(shipped.parent.glob("*.pt")) if path != shipped}
    base = Path(settings.BASE_DIR)
    for model in EmbeddingModel.objects.filter(embedder=TRAINED_EMBEDDER, weights=""):
        if model.weights_checksum != current and model.weights_checksum in earlier:
            path = earlier[model.weights_checksum]
            model.weights = str(path.relative_to(base) if path.is_relative_to(base) else path)
            model.save(update_fields=["weights"])
            logger.info("%s keeps its shipped weights file %s", model.name, model.weights)
    active = EmbeddingModel.objects.filter(active=True).first()
    if active is None or active.embedder != TRAINED_EMBEDDER or active.weights_checksum == current:
        return None
    weights = weights_file(active.weights) if active.weights else shipped
    if weights.parent.resolve() != shipped.parent.resolve():
        return None  # trained on this installation: promotion decides, not an upgrade
    target = embedding_model_for()
    if target.state == ModelState.BUILDING and target.progress:  # rows start "building"; a started build has progress
        return target
    logger.info("switching from %s to the new shipped embedder %s", active.name, target.name)
    return embedding_model_activate(embedder_name=TRAINED_EMBEDDER)


def embedding_model_active() -> EmbeddingModel:
    """The version searches use. A fresh installation activates the configured default at once."""
    model = EmbeddingModel.objects.filter(active=True).first()
    if model is not None:
        return model
    with transaction.atomic():
        model = embedding_model_for()
        locked = EmbeddingModel.objects.select_for_update().get(pk=model.pk)
        if not EmbeddingModel.objects.filter(active=True).exists():
            locked.active, locked.state, locked.activated_at = True, ModelState.READY, timezone.now()
            locked.save(update_fields=["active", "state", "activated_at"])
        return EmbeddingModel.objects.get(active=True)


def embedder_for(model: EmbeddingModel) -> Embedder:
    recipe = model.preprocessing or {}
    embedder = get_embedder(model.embedder, weights=model.weights or None,
                            context_view=bool(recipe.get("context_view", False)),
                            studio_mask_rule=int(recipe.get("studio_mask", 1)))  # rows made before rule 2: 1
    if embedder.version != model.name:
        raise RuntimeError(
            f"Embedder {model.embedder!r} now loads {embedder.version}, but model {model.name} needs its own "
            f"weights. Restore them or activate the new version (admin → Embedding models)."
        )
    return embedder


def models_to_embed_into() -> list[EmbeddingModel]:
    """The active version and any version being built: new catalogue photos go into both."""
    active = embedding_model_active()
    building = list(EmbeddingModel.objects.filter(state=ModelState.BUILDING).exclude(pk=active.pk))
    return [active, *building]


@transaction.atomic
def embedding_model_activate(*, embedder_name: str, weights: str | None = None) -> EmbeddingModel:
    """Start switching to ``embedder_name`` (with ``weights``): embed the catalogue in the background, then switch.

    The current version keeps serving until every image has a vector from the new one.
    """
    model = embedding_model_for(embedder_name=embedder_name, weights=weights)
    if model.active:
        return model
    model.state = ModelState.BUILDING
    model.progress = {"done": 0, "total": ProductImage.objects.count(), "updated": timezone.now().isoformat()}
    model.save(update_fields=["state", "progress"])
    from .tasks import build_embedding_model

    transaction.on_commit(lambda: build_embedding_model.delay(model.pk))
    return model


@transaction.atomic
def embedding_model_switch(*, model_id: int) -> EmbeddingModel:
    """Make ``model_id`` the active version in one transaction; the old one is retired."""
    model = EmbeddingModel.objects.select_for_update().get(pk=model_id)
    EmbeddingModel.objects.filter(active=True).exclude(pk=model.pk).update(active=False, state=ModelState.RETIRED)
    model.active, model.state, model.activated_at = True, ModelState.READY, timezone.now()
    model.save(update_fields=["active", "state", "activated_at"])
    return model


def embedding_model_build(
    *, model_id: int, limit: int | None = None, progress: Callable[[int, int], None] | None = None
) -> tuple[EmbeddingModel, int]:
    """Embed up to ``limit`` catalogue images missing from ``model_id`` (resumable), and switch to it when
    none are left. Returns the model and how many images still wait (the task re-queues itself then).

    Images whose file cannot be read are skipped and counted in ``progress["unreadable"]``; the old
    version has no vector for them either, so they do not hold the switch back.
    """
    model = EmbeddingModel.objects.get(pk=model_id)
    if model.state == ModelState.RETIRED and not model.active:
        model.state = ModelState.BUILDING
        model.save(update_fields=["state"])
    missing = catalog_missing_ids(model=model)
    total_images = ProductImage.objects.count()
    batch = missing[:limit] if limit else missing

    def report(done: int, total: int) -> None:
        EmbeddingModel.objects.filter(pk=model_id).update(progress={
            "done": total_images - len(missing) + done, "total": total_images, "updated": timezone.now().isoformat(),
        })
        if progress:
            progress(done, total)

    catalog_embed(model=model, image_ids=batch, progress=report)
    remaining = catalog_missing_ids(model=model)
    unreadable = sorted(set(remaining) & set(batch))
    waiting = len(set(remaining) - set(unreadable))
    if waiting:
        return EmbeddingModel.objects.get(pk=model_id), waiting
    EmbeddingModel.objects.filter(pk=model_id).update(progress={
        "done": total_images - len(unreadable), "total": total_images, "unreadable": len(unreadable),
        "updated": timezone.now().isoformat(),
    })
    return embedding_model_switch(model_id=model_id), 0


# -- catalogue embedding ---------------------------------------------------------------------------

def catalog_missing_ids(*, model: EmbeddingModel) -> list[int]:
    """Images with no vector for ``model``, or whose file changed since it was computed."""
    done = ProductEmbedding.objects.filter(model=model).values_list("image_id", "image_sha256")
    done_map = dict(done)
    return [
        image_id for image_id, sha in ProductImage.objects.values_list("id", "sha256").order_by("id")
        if done_map.get(image_id) != sha
    ]


def catalog_view(image: Image.Image, *, rule: int = STUDIO_MASK_RULE) -> Image.Image:
    """What the embedder sees of a catalogue photo: studio background removed when it is plain white (``rule``:
    the embedder's ``studio_mask_rule``)."""
    return canonical_crop(image, studio_mask(image, rule=rule))


def catalog_views(image: Image.Image, *, context: bool, rule: int = STUDIO_MASK_RULE) -> list[Image.Image]:
    """The catalogue photo's views for one vector: ``catalog_view``, and its context view when the embedder
    takes one (the same pair as a query's, docs/matching.md "Two views")."""
    return canonical_views(image, studio_mask(image, rule=rule), context=context)


def _views_of(image: Image.Image, cut: CutOut, *, context: bool) -> list[Image.Image]:
    """A query photo's views for one vector: the cut-out (``_view_of``) and, with context, the garment in its
    photo (``segmentation.view.context_view``: the cut-out's box grown, nothing masked). With no garment found both
    are the whole photo: one picture, given twice (embedded once, ``embedders.base.distinct_views``)."""
    view, mask = _view_of(image, cut), _cut_mask(cut)
    if not context:
        return [view]
    return [view, view if mask is None else context_view(image, mask)]


def open_catalog_image(image: ProductImage) -> Image.Image:
    with image.file.open("rb") as handle:
        return load_image(handle.read()).image


def images_embed(*, image_ids: Sequence[int], models: Iterable[EmbeddingModel] | None = None) -> int:
    """Embed ``image_ids`` into each model (default: active + building ones). Returns vectors written."""
    models = list(models) if models is not None else models_to_embed_into()
    images = list(ProductImage.objects.filter(pk__in=list(image_ids)).order_by("id"))
    if not images or not models:
        return 0
    embedders = [embedder_for(model) for model in models]
    context = any(embedder.context_view for embedder in embedders)
    rules = sorted({embedder.studio_mask_rule for embedder in embedders})
    views: dict[int, list[list[Image.Image]]] = {rule: [] for rule in rules}  # each photo's views per mask rule
    kept = []
    for image in images:
        try:
            opened = open_catalog_image(image)
            seen = {rule: catalog_views(opened, context=context, rule=rule) for rule in rules}
        except (OSError, ValueError) as exc:  # missing or unreadable file: skip it, others still go in
            logger.warning("cannot embed product image %s: %s", image.pk, exc)
            continue
        for rule in rules:
            views[rule].append(seen[rule])
        kept.append(image.pk)
        _colour_store(image.pk, colour.catalog_signature(opened))
    written = 0
    for model, embedder in zip(models, embedders, strict=True):
        groups = views[embedder.studio_mask_rule]
        vectors = embedder.embed_groups([group if embedder.context_view else group[:1] for group in groups])
        written += search.embeddings_upsert(model_id=model.pk, image_ids=kept, vectors=vectors)
    return written


def _colour_store(image_id: int, signature: np.ndarray) -> None:
    # update(), not save(): a derived measurement, not a catalogue edit for the photo's history
    ProductImage.objects.filter(pk=image_id).update(colour=colour.encode(signature))


def _colour_signatures(product_ids: Iterable[int]) -> dict[int, list[np.ndarray]]:
    """Each product's photos' colour signatures; a photo stored before signatures existed is measured now, once."""
    signatures: dict[int, list[np.ndarray]] = defaultdict(list)
    for image in ProductImage.objects.filter(product_id__in=list(product_ids)).only("id", "product_id", "colour",
                                                                                  "file"):
        signature = colour.decode(image.colour)
        if signature is None:
            try:
                signature = colour.catalog_signature(open_catalog_image(image))
            except (OSError, ValueError) as exc:
                logger.warning("cannot measure the colour of product image %s: %s", image.pk, exc)
                continue
            _colour_store(image.pk, signature)
        signatures[image.product_id].append(signature)
    return signatures


def colour_rerank(
    hits: Sequence[search.ProductHit], queries: Sequence[np.ndarray], k: int
) -> list[search.ProductHit]:
    """The first ``k`` of ``hits`` after the colour re-ranking (``matching.colour``): each score lowered by how
    far its product's closest photo is in colour from the query garment (``colour.query_signatures``)."""
    if not queries or not hits or not _colour_on():
        return list(hits)[:k]
    chroma, lightness = conf.colour_weights()
    signatures = _colour_signatures({hit.product_id for hit in hits})
    adjusted = [
        replace(hit, score=hit.score + colour.penalty(queries, signatures.get(hit.product_id, ()), chroma=chroma,
                                                      lightness=lightness))
        for hit in hits
    ]
    return sorted(adjusted, key=lambda hit: (-hit.score, hit.product_id))[:k]


def _colour_on() -> bool:
    return any(weight > 0 for weight in conf.colour_weights())


def _nearest(image: Image.Image, cut: CutOut, vector: np.ndarray, *, model: EmbeddingModel, k: int,
             filters: search.SearchFilters) -> list[search.ProductHit]:
    """One photo's (or garment's) products: the vector search, re-ranked by the garment's colour when that is
    on (the query's signatures are only measured then)."""
    if not _colour_on():
        return search.nearest_products(vector, model_id=model.pk, k=k, filters=filters)
    hits = search.nearest_products(vector, model_id=model.pk, k=max(k, conf.colour_depth()), filters=filters)
    return colour_rerank(hits, colour.query_signatures(image, _cut_mask(cut)), k)


def catalog_embed(
    *, model: EmbeddingModel, batch_size: int | None = None, image_ids: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed every image missing for ``model`` (or just ``image_ids``) in batches; safe to interrupt and rerun."""
    batch_size = batch_size or conf.embed_batch_size()
    missing = list(image_ids) if image_ids is not None else catalog_missing_ids(model=model)
    total, done = len(missing), 0
    for start in range(0, total, batch_size):
        chunk = missing[start : start + batch_size]
        images_embed(image_ids=chunk, models=[model])
        done += len(chunk)
        if progress:
            progress(done, total)
    return done


_pending = threading.local()


def images_embed_after_commit(image_ids: Iterable[int]) -> None:
    """Queue images for embedding once the current transaction commits, batched per transaction.

    Every call registers a callback; the first one to run takes everything pending, so an import that
    adds 500 photos in one transaction sends a few batch tasks, not 500 single ones.
    """
    pending: set[int] = getattr(_pending, "ids", None) or set()
    pending.update(int(i) for i in image_ids)
    _pending.ids = pending
    transaction.on_commit(_flush_pending)


def _flush_pending() -> None:
    ids = sorted(getattr(_pending, "ids", None) or ())
    _pending.ids = set()
    if not ids:
        return
    from .tasks import embed_product_images

    batch = conf.embed_batch_size()
    for start in range(0, len(ids), batch):
        try:
            embed_product_images.delay(ids[start : start + batch])
        except Exception:  # noqa: BLE001 - a saved photo stays saved; `manage.py embed_catalog` catches up
            logger.exception("embedding product images %s failed", ids[start : start + batch])


def images_needing_embedding(*, image_ids: Sequence[int]) -> list[int]:
    """Those of ``image_ids`` lacking an up-to-date vector in some target model version."""
    models = models_to_embed_into()
    images = dict(ProductImage.objects.filter(pk__in=list(image_ids)).values_list("id", "sha256"))
    done = set(
        ProductEmbedding.objects.filter(model__in=models, image_id__in=list(images))
        .values_list("model_id", "image_id", "image_sha256")
    )
    return sorted(i for i, sha in images.items() if any((m.pk, i, sha) not in done for m in models))


# -- matching ----------------------------------------------------------------------------------------

@dataclass
class Candidate:
    product_id: int
    sku: str
    name: str
    score: float
    image_id: int
    image_url: str
    category_kind: str
    gender: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MatchResult:
    """What ``match_image`` found: ranked candidates, the verdict, and how it got there."""

    candidates: list[Candidate]
    decision: dict[str, Any]  # in_catalogue, sku, product_id, score, margin, threshold, margin_threshold, label
    timings: dict[str, float]  # ms: decode, segment, embed, search, total
    cutouts: list[CutOut] = field(default_factory=list)
    model_version: str = ""
    vectors: np.ndarray | None = None  # the query vectors (one per photo), e.g. for classify_vectors
    views: list[list[Image.Image]] = field(default_factory=list)  # what each vector was made of (classify_vectors)
    # the appearance vectors of the same views (classify_vectors), when asked for and made in the embedding's pass
    appearance: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the match API's response; masks and cut-out images are left out)."""
        return {
            "candidates": [candidate.to_dict() for candidate in self.candidates],
            "decision": dict(self.decision),
            "timings": dict(self.timings),
            "model_version": self.model_version,
            "cutouts": [
                {"method": cut.method, "status": cut.status, "bbox": list(cut.bbox) if cut.bbox else None,
                 "model_version": cut.model_version, "kind": cut.kind, "ms": round(float(cut.ms), 1)}
                for cut in self.cutouts
            ],
        }


Photo = Image.Image | np.ndarray | bytes | LoadedImage


def _working(photo: Photo, long_side: int) -> tuple[Image.Image, float, tuple[int, int]]:
    """The photo as an RGB working copy (long side at most ``long_side``), its scale, and the full photo's size.

    Bytes are decoded straight at reduced size (``load_image(max_side=...)``), so a 12 MP JPEG is never
    held at full resolution.
    """
    if isinstance(photo, bytes | bytearray | io.IOBase):
        photo = load_image(photo, max_side=long_side)
    if isinstance(photo, LoadedImage):
        copy, _ = working_copy(photo.image, long_side)
        return copy, copy.width / photo.size[0], photo.size
    if isinstance(photo, np.ndarray):
        photo = Image.fromarray(photo.astype(np.uint8))
    if not isinstance(photo, Image.Image):
        raise TypeError(f"match_image takes PIL images, RGB arrays, bytes or loaded images, not {type(photo).__name__}")
    copy, scale = working_copy(photo, long_side)
    return copy, scale, photo.size


def _working_hints(
    hints: Mapping | None, working: Image.Image, scale: float, full_size: tuple[int, int]
) -> Hints | None:
    """Hints checked against the full photo and rescaled to the working copy, both by ``segmentation.hints``."""
    if not hints:
        return None
    return hint_utils.scaled(hint_utils.parse(hints, *full_size), scale, working.width, working.height)


def _whole_photo(image: Image.Image, method: str) -> CutOut:
    """No segmentation (switched off, or the segmenter failed): the whole photo stands for the garment."""
    return CutOut(
        mask=np.zeros((image.height, image.width), np.uint8), cutout=canonical_crop(image, None), bbox=None,
        method=method, model_version=None, ms=0.0, status="empty",
    )


def _view_of(image: Image.Image, cut: CutOut) -> Image.Image:
    """The embedder's view: the same picture as ``cut.cutout`` (``segmentation.view.garment_view``)."""
    return garment_view(image, _cut_mask(cut))


def _cut_mask(cut: CutOut) -> np.ndarray | None:
    """The cut-out's mask, or None when segmentation found nothing (the views then show the whole photo)."""
    return np.asarray(cut.mask) if cut.status == "ok" and cut.mask is not None else None


def _method(segment: bool | str) -> str | None:
    """The segmentation method ``segment`` asks for, or None for the whole photo."""
    if not segment:
        return None
    method = segment if isinstance(segment, str) else "auto"
    if method not in SEGMENTATION_METHODS:
        raise MatchInputError(f"Unknown segmentation method {method!r}; use one of {', '.join(SEGMENTATION_METHODS)}.")
    return method


def _cut(image: Image.Image, hints: Hints | None, method: str | None) -> CutOut:
    if method is None:
        return _whole_photo(image, "none")
    try:
        return cut_out(image, hints=hints, method=method)
    except MATCH_INPUT_ERRORS:
        raise  # the caller's hints or photo are wrong: say so
    except Exception:  # noqa: BLE001 - a broken segmenter degrades matching to the whole photo, not to nothing
        logger.exception("segmentation failed; matching the whole photo")
        return _whole_photo(image, "failed")


def match_image(
    images: Photo | Sequence[Photo], *, hints: Mapping | None = None, filters: dict | None = None, k: int = 10,
    segment: bool | str = True, appearance: bool = False,
) -> MatchResult:
    """Find the catalogue products shown in ``images`` (several photos of one item make one query).

    Each photo is cut out (``segmentation.cut_out``; the whole photo when ``segment`` is False) and
    embedded; several photos are combined by max-fusion (each photo searched, each product keeps its best
    score), which beat averaging the vectors (``bench/measure_fusion.py``; ``MATCHING["FUSION"] = "mean"``
    switches). ``segment`` may also name a segmentation method. ``hints`` are in the first photo's full
    resolution coordinates. The decision says "in catalogue" only when the best score clears the active
    model's calibrated threshold for its category kind and beats the next product by the margin. ``appearance``
    asks for the classification heads' appearance vectors too, made in the same pass where the two embedders share
    their front (``MatchResult.appearance``; None where they do not).
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    parsed_filters = search.SearchFilters.from_dict(filters)
    photos = list(images) if isinstance(images, list | tuple) else [images]
    if not photos:
        raise MatchInputError("match_image needs at least one photo.")
    method = _method(segment)

    tick = time.perf_counter()
    working = [_working(photo, conf.working_size()) for photo in photos]
    first_hints = _working_hints(hints, *working[0])
    timings["decode"] = _ms(tick)

    tick = time.perf_counter()
    cutouts = [_cut(img, first_hints if i == 0 else None, method) for i, (img, _, _) in enumerate(working)]
    timings["segment"] = _ms(tick)

    model = embedding_model_active()
    embedder = embedder_for(model)
    tick = time.perf_counter()
    views = [_views_of(img, cut, context=embedder.context_view)
             for (img, _, _), cut in zip(working, cutouts, strict=True)]
    joint = joint_with(embedder) if appearance else None
    vectors, looks = joint.embed_groups(views) if joint is not None else (embedder.embed_groups(views), None)
    timings["embed"] = _ms(tick)

    tick = time.perf_counter()
    depth = calibration.decision_depth(k)
    if len(vectors) > 1 and conf.fusion() == "mean":
        mean = l2_normalise(vectors.mean(axis=0))
        hits = _nearest(working[0][0], cutouts[0], mean, model=model, k=depth, filters=parsed_filters)
    else:
        each = [
            _nearest(img, cut, v, model=model, k=depth, filters=parsed_filters)
            for (img, _, _), cut, v in zip(working, cutouts, vectors, strict=True)
        ]
        hits = _max_fusion(each, depth)
    candidates = candidates_for(hits)
    timings["search"] = _ms(tick)

    decision = decide(candidates, model=model, kind=parsed_filters.category_kind)
    timings["total"] = _ms(started)
    return MatchResult(candidates=candidates[:k], decision=decision, timings=timings, cutouts=cutouts,
                       model_version=model.name, vectors=vectors, views=views, appearance=looks)


def query_view(image: Photo, *, segment: bool | str = "auto") -> Image.Image:
    """What the worker sees of a phone or camera photo: the garment cut out, as ``match_image`` does it."""
    working, _, _ = _working(image, conf.working_size())
    return _view_of(working, _cut(working, None, _method(segment)))


def query_views(image: Photo, *, segment: bool | str = "auto", context: bool) -> list[Image.Image]:
    """What the embedder sees of a phone or camera photo, as ``match_image`` embeds it (one vector)."""
    working, _, _ = _working(image, conf.working_size())
    return _views_of(working, _cut(working, None, _method(segment)), context=context)


def match_garments(
    image: Photo, *, filters: dict | None = None, k: int = 10, segment: bool | str = True
) -> MatchResult:
    """Match every garment in one photo (a person in a top and trousers) and merge the lists by score.

    ``segment`` as in ``match_image`` (False, True for "auto", or a segmentation method name).
    """
    started = time.perf_counter()
    method = _method(segment)
    if method is None:
        return match_image(image, filters=filters, k=k, segment=False)
    parsed_filters = search.SearchFilters.from_dict(filters)
    picture, _, _ = _working(image, conf.working_size())
    tick = time.perf_counter()
    garments = [cut for cut in cut_out_garments(picture, method=method) if cut.status == "ok"]
    segment_ms = _ms(tick)
    if not garments:
        return match_image(picture, filters=filters, k=k, segment=segment)
    model = embedding_model_active()
    embedder = embedder_for(model)
    tick = time.perf_counter()
    vectors = embedder.embed_groups([_views_of(picture, cut, context=embedder.context_view) for cut in garments])
    embed_ms = _ms(tick)
    tick = time.perf_counter()
    depth = calibration.decision_depth(k)
    candidates = candidates_for(_max_fusion([
        _nearest(picture, cut, v, model=model, k=depth, filters=parsed_filters)
        for cut, v in zip(garments, vectors, strict=True)
    ], depth))
    search_ms = _ms(tick)
    decision = decide(candidates, model=model, kind=parsed_filters.category_kind)
    timings = {"decode": 0.0, "segment": segment_ms, "embed": embed_ms, "search": search_ms, "total": _ms(started)}
    return MatchResult(candidates=candidates[:k], decision=decision, timings=timings, cutouts=garments,
                       model_version=model.name)


def _max_fusion(lists: Sequence[Sequence[search.ProductHit]], k: int) -> list[search.ProductHit]:
    """Merge ranked lists: each product keeps its best score over all lists."""
    best: dict[int, search.ProductHit] = {}
    for hits in lists:
        for hit in hits:
            if hit.product_id not in best or hit.score > best[hit.product_id].score:
                best[hit.product_id] = hit
    return sorted(best.values(), key=lambda hit: (-hit.score, hit.product_id))[:k]


def candidates_for(hits: Sequence[search.ProductHit]) -> list[Candidate]:
    products = Product.objects.select_related("category").in_bulk([hit.product_id for hit in hits])
    images = ProductImage.objects.in_bulk([hit.image_id for hit in hits])
    candidates = []
    for hit in hits:
        product, image = products.get(hit.product_id), images.get(hit.image_id)
        if product is None:
            continue  # deleted between search and lookup
        candidates.append(Candidate(
            product_id=product.pk, sku=product.sku, name=product.name, score=round(hit.score, 6),
            image_id=hit.image_id, image_url=image.file.url if image and image.file else "",
            category_kind=product.category.kind, gender=product.gender,
        ))
    return candidates


def decide(candidates: Sequence[Candidate], *, model: EmbeddingModel, kind: str | None = None) -> dict:
    """The verdict for a ranked candidate list (best first, ideally ``calibration.CROWD`` long) under ``model``'s
    calibrated thresholds: its open-set score must reach the threshold for the kind, and the top product must
    beat the next by the margin. ``score`` stays the top product's own similarity."""
    defaults = {"default_score": conf.default_threshold(), "default_margin": conf.default_margin()}
    alpha = model.open_set_alpha
    if not candidates:
        threshold, margin_needed = model.threshold_for(kind, **defaults)
        return {"in_catalogue": False, "sku": None, "product_id": None, "score": 0.0, "open_set_score": 0.0,
                "alpha": alpha, "margin": 0.0, "threshold": threshold, "margin_threshold": margin_needed,
                "label": NOT_IN_CATALOGUE}
    top = candidates[0]
    threshold, margin_needed = model.threshold_for(kind or top.category_kind, **defaults)
    scores = [candidate.score for candidate in candidates]
    open_set = calibration.open_set_score(scores, alpha)
    margin = top.score - (scores[1] if len(scores) > 1 else 0.0)
    accepted = open_set >= threshold and margin >= margin_needed
    return {
        "in_catalogue": accepted, "sku": top.sku if accepted else None,
        "product_id": top.product_id if accepted else None, "score": round(top.score, 6),
        "open_set_score": round(open_set, 6), "alpha": alpha,
        "margin": round(margin, 6), "threshold": threshold, "margin_threshold": margin_needed,
        "label": f"in catalogue: SKU {top.sku}" if accepted else NOT_IN_CATALOGUE,
    }


def similar_products(*, product_id: int, k: int = 10) -> list[Candidate]:
    model = embedding_model_active()
    return candidates_for(search.similar_products(product_id, model_id=model.pk, k=k))


def duplicate_pairs(*, min_similarity: float = 0.95) -> list[tuple[int, int, float]]:
    """Product pairs that look alike enough to be the same item (catalogue cleanup)."""
    return search.similar_pairs(model_id=embedding_model_active().pk, min_similarity=min_similarity)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
