"""The mirror's work: from one camera frame to recommendations per garment; shortlists for the fitting room.

``mirror_recommend`` finds the shopper (a face, or skin just above a garment), cuts out the garments in
front of them with the segmenter's garment classes (``segmentation.cut_out_garments`` on the body
region, no hints), and for each garment, largest first: matches it through ``matching.services.match_image``
(active products in stock only), predicts its gender and kind (``matching.classification``), and
completes the look (``looks.py``). It returns product ids; ``selectors`` decides what shoppers see.
"""
from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image

from catalog.imaging import encode_jpeg
from catalog.models import CategoryKind, Product, ProductStatus, Variant
from matching import conf as matching_conf
from matching import search
from matching.classification import Prediction, classify_vectors
from matching.preprocess import canonical_crop, working_copy
from matching.services import Candidate, candidates_for, embedding_model_active, match_image

from .colour import dominant_colour
from .looks import complete_the_look
from .models import MirrorKey, Shortlist, ShortlistItem, ShortlistStatus, new_pickup_code
from .people import body_region, faces_find, skin_above
from .selectors import mirror_setting, shortlist_code_taken

if TYPE_CHECKING:
    from collections.abc import Callable

    from matching.models import EmbeddingModel
    from segmentation import CutOut

HOLD_UP = "Hold the garment up to the mirror."
SHOPPABLE = {"in_stock": True, "status": ProductStatus.ACTIVE}


class MirrorStatus:
    OK = "ok"
    NO_PERSON = "no_person"
    NO_GARMENT = "no_garment"


@dataclass
class GarmentAnswer:
    kind: Prediction | None
    gender: Prediction | None
    region: tuple[float, float, float, float]  # x0, y0, x1, y1 as shares of the frame's width and height
    similar: list[int]  # product ids, best first
    complete_the_look: list[int]


@dataclass
class MirrorAnswer:
    status: str
    message: str
    garments: list[GarmentAnswer] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _cut_out_garments() -> Callable[..., list[CutOut]]:
    from segmentation import cut_out_garments

    return cut_out_garments


def person_seen(body: Image.Image, found: list[CutOut], garments: list[CutOut]) -> bool:
    """Whether someone wears or holds what the camera sees, when no face was found: the segmenter calls at least
    its version's ``person_min_share`` of the frame skin or hair (``CutOut.person_seen``). Without a network: skin
    shows just above a garment (a neck, a chin), which misses models cropped at the chin and takes some light
    collars for necks."""
    seen = found[0].person_seen if found else None
    if seen is not None:
        return seen
    return any(skin_above(body, cut.bbox) for cut in garments)


def mirror_recommend(*, image: Image.Image) -> MirrorAnswer:
    """Recommendations for the garment(s) in one upright RGB camera frame."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    picture, _ = working_copy(image, matching_conf.working_size())
    width, height = picture.size

    tick = time.perf_counter()
    faces = faces_find(picture)
    region = body_region(faces[0], width, height) if faces else (0, 0, width, height)
    timings["people"] = _ms(tick)

    tick = time.perf_counter()
    body = picture.crop(region)
    found_cuts = _cut_out_garments()(body)
    cuts = [cut for cut in found_cuts if cut.status == "ok" and cut.bbox is not None]
    if faces:  # the face is no garment: keep what lies below its centre
        face_y = faces[0].centre[1] - region[1]
        cuts = [cut for cut in cuts if (cut.bbox[1] + cut.bbox[3]) / 2 > face_y]
    min_share = float(mirror_setting("MIN_GARMENT_SHARE", 0.03)) * body.width * body.height
    cuts = [cut for cut in cuts if np.count_nonzero(cut.mask) >= min_share]
    person = bool(faces) or person_seen(body, found_cuts, cuts)
    timings["segment"] = _ms(tick)
    if not person:
        return MirrorAnswer(MirrorStatus.NO_PERSON, HOLD_UP, timings=_total(timings, started))
    if not cuts:
        return MirrorAnswer(MirrorStatus.NO_GARMENT, HOLD_UP, timings=_total(timings, started))
    cuts = cuts[: int(mirror_setting("MAX_GARMENTS", 3))]

    tick = time.perf_counter()
    k = int(mirror_setting("SIMILAR", 8))
    results = [match_image(canonical_crop(body, np.asarray(cut.mask)), segment=False, filters=SHOPPABLE, k=k,
                           appearance=True) for cut in cuts]
    timings["match"] = _ms(tick)

    tick = time.perf_counter()
    model = embedding_model_active()
    vectors = np.stack([result.vectors[0] for result in results])
    appearance = (np.stack([result.appearance[0] for result in results])
                  if all(result.appearance is not None for result in results) else None)
    attributes = classify_vectors(vectors, model=model, views=[result.views[0] for result in results],
                                  appearance=appearance)
    timings["classify"] = _ms(tick)

    tick = time.perf_counter()
    found: list[_Found] = []
    for n, (cut, result, attrs) in enumerate(zip(cuts, results, attributes, strict=True)):
        kind_prediction = kind_fused(attrs.kind, cut.kind)
        candidates = similar_of_kind(result.candidates, vectors[n], kind=kind_prediction, model=model, k=k)
        found.append(_Found(kind_prediction, attrs.gender, candidates, np.asarray(cut.mask) > 0, cut.bbox))
    garments = []
    for garment in _same_kind_merged(found, k=k):
        anchors = [candidate.product_id for candidate in garment.candidates]
        top = garment.candidates[0] if garment.candidates else None
        kind = garment.kind.label if garment.kind else (top.category_kind if top else None)
        gender = garment.gender.label if garment.gender else (top.gender if top else None)
        look = complete_the_look(
            anchors=anchors, kind=kind, gender=gender, colour=dominant_colour(body, garment.mask.astype(np.uint8)),
            limit=int(mirror_setting("COMPLETE_THE_LOOK", 6)),
        )
        x0, y0, x1, y1 = garment.bbox
        garments.append(GarmentAnswer(
            kind=garment.kind, gender=garment.gender,
            region=(round((x0 + region[0]) / width, 3), round((y0 + region[1]) / height, 3),
                    round((x1 + region[0]) / width, 3), round((y1 + region[1]) / height, 3)),
            similar=anchors, complete_the_look=look,
        ))
    timings["complete_the_look"] = _ms(tick)
    return MirrorAnswer(MirrorStatus.OK, "", garments, _total(timings, started))


@dataclass
class _Found:
    kind: Prediction | None
    gender: Prediction | None
    candidates: list[Candidate]
    mask: np.ndarray  # bool, body-region coordinates
    bbox: tuple[int, int, int, int]


def _same_kind_merged(found: list[_Found], *, k: int) -> list[_Found]:
    """Garments of the same kind are one garment to the shopper (the segmenter sometimes splits a top in two,
    or a jacket's sides): one answer per kind, lists merged by each product's best score, regions united. When
    the merged kind is sure enough to filter by (``similar_of_kind``), a hesitant part's look-alikes of other
    kinds are dropped: a sure top's look-alikes are tops."""
    threshold = _kind_filter_confidence()
    merged: list[_Found] = []
    for garment in found:
        same = next((m for m in merged if garment.kind and m.kind and m.kind.label == garment.kind.label), None)
        if same is None:
            merged.append(garment)
            continue
        best: dict[int, Candidate] = {c.product_id: c for c in same.candidates}
        for candidate in garment.candidates:
            if candidate.product_id not in best or candidate.score > best[candidate.product_id].score:
                best[candidate.product_id] = candidate
        same.kind = max(same.kind, garment.kind, key=lambda p: p.confidence)
        ranked = sorted(best.values(), key=lambda c: (-c.score, c.product_id))
        if same.kind.confidence >= threshold:
            ranked = [c for c in ranked if c.category_kind == same.kind.label]
        same.candidates = ranked[:k]
        same.mask = same.mask | garment.mask
        same.bbox = (min(same.bbox[0], garment.bbox[0]), min(same.bbox[1], garment.bbox[1]),
                     max(same.bbox[2], garment.bbox[2]), max(same.bbox[3], garment.bbox[3]))
    return merged


def _kind_filter_confidence() -> float:
    """How sure a garment's kind must be before its look-alikes are kept to that kind."""
    return float(mirror_setting("KIND_FILTER_CONFIDENCE", 0.6))


def similar_of_kind(
    candidates: list[Candidate], vector: np.ndarray, *, kind: Prediction | None, model: EmbeddingModel, k: int,
) -> list[Candidate]:
    """Similar products of the garment's kind once the kind is clear: a top's look-alikes are tops. Cross-domain
    similarity alone sometimes ranks a flat photo of shorts above the right top; when the kind is known with
    ``KIND_FILTER_CONFIDENCE`` and some candidates are of another kind, the search is repeated for that kind
    (the query vector is reused; nothing is embedded twice)."""
    threshold = _kind_filter_confidence()
    if kind is None or kind.confidence < threshold or all(c.category_kind == kind.label for c in candidates):
        return candidates
    hits = search.nearest_products(vector, model_id=model.pk, k=k, filters={**SHOPPABLE, "category_kind": kind.label})
    return candidates_for(hits)


def kind_fused(classified: Prediction | None, segmented: str | None) -> Prediction | None:
    """The garment's kind from both witnesses: the classifier (catalogue neighbours or a head, on the
    embedding) and the segmenter's garment class (trained on photos of people wearing clothes, the mirror's
    own domain). Each is read as a distribution (its label at its confidence, the rest shared evenly; the
    segmenter at ``SEGMENTER_KIND_RELIABILITY``) and the product is normalised: a confident classifier
    still overrules the segmenter, a hesitant one does not."""
    if segmented is None or segmented not in CategoryKind.values:
        return classified
    kinds = list(CategoryKind.values)
    reliability = float(mirror_setting("SEGMENTER_KIND_RELIABILITY", 0.85))
    segmenter = {kind: reliability if kind == segmented else (1 - reliability) / (len(kinds) - 1) for kind in kinds}
    if classified is None or classified.label not in segmenter:
        return Prediction(label=segmented, confidence=round(reliability, 4), source="segmenter")
    c = min(max(classified.confidence, 1e-4), 1 - 1e-4)
    classifier = {kind: c if kind == classified.label else (1 - c) / (len(kinds) - 1) for kind in kinds}
    joint = {kind: segmenter[kind] * classifier[kind] for kind in kinds}
    best = max(joint, key=joint.get)
    source = classified.source if best == classified.label else "segmenter"
    return Prediction(label=best, confidence=round(joint[best] / sum(joint.values()), 4), source=source)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


def _total(timings: dict[str, float], started: float) -> dict[str, float]:
    timings["total"] = _ms(started)
    return timings


def mirror_frame_store(*, image: Image.Image) -> str | None:
    """Keep a frame for debugging a kiosk, only when ``MIRROR["KEEP_FRAMES"]`` asks for it; its storage path."""
    if not mirror_setting("KEEP_FRAMES", False):
        return None
    name = f"mirror-frames/{timezone.now():%Y/%m/%d}/{uuid.uuid4().hex}.jpg"
    return default_storage.save(name, ContentFile(encode_jpeg(image, quality=85)))


# -- shortlists ------------------------------------------------------------------------------------------

class ShortlistError(ValueError):
    """A shortlist that cannot be sent, with the reason for the shopper."""


@transaction.atomic
def shortlist_send(*, device: MirrorKey | None, items: list[dict]) -> Shortlist:
    """Send the shopper's picks (``[{"sku", "size"}]``) to the fitting room under a short pickup code."""
    limit = int(mirror_setting("SHORTLIST_MAX_ITEMS", 12))
    if not items:
        raise ShortlistError("The shortlist is empty.")
    if len(items) > limit:
        raise ShortlistError(f"A shortlist holds at most {limit} items.")
    products = Product.objects.filter(sku__in={item["sku"] for item in items}, status=ProductStatus.ACTIVE).in_bulk(
        field_name="sku"
    )
    sizes = set(Variant.objects.filter(product__in=products.values()).values_list("product__sku", "size"))
    picks: list[tuple[Product, str]] = []
    for item in items:
        if item["sku"] not in products:
            raise ShortlistError(f"Product {item['sku']} is not available.")
        if (item["sku"], item["size"]) not in sizes:
            raise ShortlistError(f"Product {item['sku']} does not come in size {item['size']}.")
        if (products[item["sku"]], item["size"]) not in picks:
            picks.append((products[item["sku"]], item["size"]))
    code = new_pickup_code()
    for _ in range(20):
        if not shortlist_code_taken(code):
            break
        code = new_pickup_code()
    minutes = int(mirror_setting("SHORTLIST_MINUTES", 30))
    shortlist = Shortlist.objects.create(
        code=code, device=device, status=ShortlistStatus.SENT, expires_at=timezone.now() + dt.timedelta(minutes=minutes)
    )
    ShortlistItem.objects.bulk_create(ShortlistItem(shortlist=shortlist, product=p, size=s) for p, s in picks)
    return shortlist


def shortlist_mark_done(*, shortlist_id: int) -> Shortlist:
    shortlist = Shortlist.objects.get(pk=shortlist_id)
    if shortlist.status != ShortlistStatus.DONE:
        shortlist.status, shortlist.handled_at = ShortlistStatus.DONE, timezone.now()
        shortlist.save(update_fields=["status", "handled_at"])
    return shortlist


def shortlists_purge(*, older_than_hours: int = 24) -> int:
    (
        """Delete shortlists that expired more than ``older_than_hours`` ago """
        """(they are hidden from the moment they expire)."""
    )
    cutoff = timezone.now() - dt.timedelta(hours=older_than_hours)
    deleted, _ = Shortlist.objects.filter(expires_at__lt=cutoff).delete()
    return deleted


def mirror_keys_revoke(*, key_ids: list[str]) -> int:
    """Revoke device keys; the next request with any of them gets 401."""
    return MirrorKey.objects.filter(pk__in=key_ids, revoked=False).update(revoked=True)


def mirror_key_create(*, name: str, location: str = "") -> tuple[MirrorKey, str]:
    """A new device key; the plain key is returned once and never stored."""
    return MirrorKey.objects.create_key(name=name[:50], location=location)
