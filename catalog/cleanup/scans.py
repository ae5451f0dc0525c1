"""The cleanup scans: plain functions over the catalogue that return ``FindingData``.

Each takes ``product_ids`` (an incremental scan of changed products) or ``None`` (the whole catalogue);
``services.findings_sync`` stores what they return. Only active and draft products are scanned: merged
and retired ones are out of the catalogue's way already.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING

import numpy as np
from django.db.models import Count, F, Q, Sum
from PIL import Image

from catalog.imaging import load_image
from catalog.models import Product, ProductImage, ProductStatus

from . import duplicates
from .conf import cleanup_setting, visual_gate
from .models import FindingKind, ImageSignature
from .photos import photo_signature

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from matching.neighbours import NeighbourTable
    from matching.search import ImageNeighbour

logger = logging.getLogger(__name__)

SCANNED_STATUSES = (ProductStatus.ACTIVE, ProductStatus.DRAFT)
MAX_HOPS = 3  # an incremental duplicate scan follows new pairs this far to rebuild the whole cluster


@dataclass
class FindingData:
    kind: str
    key: str
    summary: str
    fingerprint: str
    details: dict
    product_ids: list[int]
    image_ids: list[int] = field(default_factory=list)
    confidence: float | None = None


def fingerprint_of(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def scanned_products(product_ids: Iterable[int] | None = None) -> QuerySet[Product]:
    qs = Product.objects.filter(status__in=SCANNED_STATUSES)
    return qs if product_ids is None else qs.filter(pk__in=list(product_ids))


def scanned_images(product_ids: Iterable[int] | None = None) -> QuerySet[ProductImage]:
    qs = ProductImage.objects.filter(product__status__in=SCANNED_STATUSES)
    return qs if product_ids is None else qs.filter(product_id__in=list(product_ids))


def open_image(image_id: int, *, max_side: int | None = None) -> Image.Image | None:
    image = ProductImage.objects.filter(pk=image_id).first()
    if image is None:
        return None
    try:
        with image.file.open("rb") as handle:
            return load_image(handle.read(), max_side=max_side).image
    except (OSError, ValueError) as exc:
        logger.warning("cleanup: cannot read product image %s: %s", image_id, exc)
        return None


# -- signatures --------------------------------------------------------------------------------------

def images_needing_signature(*, product_ids: Iterable[int] | None = None) -> list[int]:
    """Images with no signature, or one computed from another file."""
    qs = scanned_images(product_ids).filter(Q(signature__isnull=True) | ~Q(signature__sha256=F("sha256")))
    return list(qs.order_by("id").values_list("id", flat=True))


def signatures_compute(*, image_ids: Sequence[int], progress: Callable[[int], None] | None = None) -> int:
    """Decode each photo once, store its hashes, measurements and flags; flags also go on the image."""
    done = 0
    for image in ProductImage.objects.filter(pk__in=list(image_ids)).order_by("id"):
        values: dict = {"sha256": image.sha256, "error": "", "flags": []}
        try:
            with image.file.open("rb") as handle:
                picture = load_image(handle.read()).image
            signature = photo_signature(picture)
        except (OSError, ValueError) as exc:  # missing or unreadable file: a "failed to process" gap
            values.update(phash=None, band0=None, band1=None, band2=None, band3=None, blockmean=None, thumb=None,
                          sharpness=None, brightness=None, garment_share=None, edge_share=None,
                          error=str(exc)[:500] or exc.__class__.__name__)
        else:
            bands = duplicates.bands_of(signature.phash)
            values.update(
                phash=signature.phash, band0=bands[0], band1=bands[1], band2=bands[2], band3=bands[3],
                blockmean=signature.blockmean, thumb=signature.thumb, sharpness=signature.sharpness,
                brightness=signature.brightness, garment_share=signature.garment_share,
                edge_share=signature.edge_share, flags=signature.flags,
            )
        ImageSignature.objects.update_or_create(image=image, defaults=values)
        if image.quality_flags != values["flags"]:
            ProductImage.objects.filter(pk=image.pk).update(quality_flags=values["flags"])
        done += 1
        if progress:
            progress(done)
    return done


# -- duplicates --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Evidence:
    product_a: int
    product_b: int
    how: str  # file | photo | cropped | look
    score: float
    image_a: int | None = None
    image_b: int | None = None


EVIDENCE_CONFIDENCE = {"file": 1.0, "photo": 0.99, "cropped": 0.95}


def pairs_by_file(*, product_ids: Iterable[int] | None = None) -> list[Evidence]:
    """The same file (SHA-256) under different products."""
    images = scanned_images()
    if product_ids is not None:
        images = images.filter(sha256__in=scanned_images(product_ids).values("sha256"))
    by_sha: dict[str, list[tuple[int, int]]] = defaultdict(list)
    shared = (
        scanned_images().values("sha256").annotate(products=Count("product", distinct=True)).filter(products__gt=1)
    )
    rows = images.filter(sha256__in=shared.values("sha256")).values_list("sha256", "product_id", "id").order_by("id")
    for sha, product_id, image_id in rows:
        by_sha[sha].append((product_id, image_id))
    out = []
    for members in by_sha.values():
        first_product, first_image = members[0]
        for product_id, image_id in members[1:]:
            if product_id != first_product:
                out.append(Evidence(first_product, product_id, "file", 1.0, first_image, image_id))
    return out


def _signature_rows(qs: QuerySet[ImageSignature]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes]]:
    rows = list(qs.values_list("image_id", "image__product_id", "phash", "thumb"))
    image_ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    product_ids = np.asarray([r[1] for r in rows], dtype=np.int64)
    hashes = duplicates.as_unsigned([r[2] for r in rows])
    thumbs = [bytes(r[3]) if r[3] is not None else b"" for r in rows]
    return image_ids, product_ids, hashes, thumbs


def hash_pairs(image_ids: np.ndarray, product_ids: np.ndarray, hashes: np.ndarray, thumbs: list[bytes], *,
               touching: set[int] | None = None) -> tuple[list[Evidence], dict]:
    """Near-identical photos among the given signature rows (vectorised banding, then the thumbnail check)."""
    candidates, skipped = duplicates.candidate_pairs(hashes)
    stats = {"hash_candidates": int(len(candidates)), "hash_buckets_skipped": skipped}
    if not len(candidates):
        return [], stats
    i, j = candidates[:, 0], candidates[:, 1]
    keep = (product_ids[i] != product_ids[j]) & (duplicates.hamming(hashes[i], hashes[j])
                                                   <= int(cleanup_setting("PHASH_MAX_DISTANCE")))
    if touching is not None:
        scope = np.asarray(sorted(touching), dtype=np.int64)
        keep &= np.isin(product_ids[i], scope) | np.isin(product_ids[j], scope)
    i, j = i[keep], j[keep]
    stats["hash_close"] = int(len(i))
    limit = float(cleanup_setting("THUMB_MAX_DIFFERENCE"))
    out = []
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        difference = duplicates.thumb_distance(thumbs[a], thumbs[b])
        if difference <= limit:
            out.append(Evidence(int(product_ids[a]), int(product_ids[b]), "photo", round(1 - difference / 255, 4),
                                int(image_ids[a]), int(image_ids[b])))
    return out, stats


def pairs_by_hash(*, product_ids: Iterable[int] | None = None) -> tuple[list[Evidence], dict]:
    signatures = ImageSignature.objects.filter(image__product__status__in=SCANNED_STATUSES, phash__isnull=False)
    if product_ids is None:
        return hash_pairs(*_signature_rows(signatures))
    scope = set(product_ids)
    own = list(signatures.filter(image__product_id__in=scope).values_list("band0", "band1", "band2", "band3"))
    if not own:
        return [], {}
    bands = [sorted({row[b] for row in own}) for b in range(4)]
    near = signatures.filter(Q(image__product_id__in=scope) | Q(band0__in=bands[0]) | Q(band1__in=bands[1])
                             | Q(band2__in=bands[2]) | Q(band3__in=bands[3]))
    return hash_pairs(*_signature_rows(near), touching=scope)


@dataclass(frozen=True)
class PhotoCheck:
    """A visual candidate to confirm on the photos: one photo and its nearest other product's photo (the
    lower image id first, each with its product)."""

    product_a: int
    product_b: int
    image_a: int
    image_b: int
    similarity: float


def catalogue_neighbours(*, model_id: int) -> NeighbourTable:
    """Every searchable image's nearest images of other products, exact, in one pass (``matching.neighbours``):
    the duplicate candidates and the label vote of a full scan both read it."""
    from matching import search
    from matching.models import EmbeddingModel
    from matching.neighbours import neighbour_table

    model = EmbeddingModel.objects.get(pk=model_id)
    data = search.embeddings_searchable(model_id=model_id, dimension=model.dimension)
    k = max(int(cleanup_setting("VISUAL_NEIGHBOURS")), int(cleanup_setting("LABEL_NEIGHBOURS")))
    return neighbour_table(data.image_ids, data.product_ids, data.vectors, k=k)


def look_candidates(neighbours: Iterable[ImageNeighbour], *, known: set[tuple[int, int]], floor: float,
                    margin: float, sure: float) -> tuple[list[Evidence], list[PhotoCheck]]:
    """Which visual neighbours are worth a photo check, without checking every near pair.

    Per image, only its nearest other product counts (products already known to be duplicates of each
    other count as one, so a third copy is not hidden behind the second). It is checked when at least
    ``floor`` alike and either mutual (that product's photo has this product nearest) or ahead of the next
    product by ``margin``: a cropped copy stands out from the catalogue's look-alikes. Pairs alike beyond
    ``sure`` need no check. ``neighbours`` come image by image, best first (``search.image_neighbours``).
    """
    union = duplicates.UnionFind()
    for a, b in known:
        union.union(a, b)
    group = union.find
    nearest: dict[int, tuple[ImageNeighbour, float]] = {}  # image → its nearest other product, the next one's sim
    for image_id, rows in groupby(neighbours, key=lambda n: n.image_id):
        firsts: list[ImageNeighbour] = []
        for n in rows:
            if group(n.neighbour_product_id) == group(n.product_id) or (
                    firsts and group(n.neighbour_product_id) == group(firsts[0].neighbour_product_id)):
                continue
            firsts.append(n)
            if len(firsts) == 2:
                break
        if firsts:
            nearest[image_id] = (firsts[0], firsts[1].similarity if len(firsts) > 1 else -1.0)
    looks: dict[tuple[int, int], float] = {}
    checks: dict[tuple[int, int], PhotoCheck] = {}
    for n, following in nearest.values():
        if n.similarity < floor:
            continue
        pair = (min(n.product_id, n.neighbour_product_id), max(n.product_id, n.neighbour_product_id))
        if pair in known:
            continue
        if n.similarity >= sure:
            looks[pair] = max(looks.get(pair, -1.0), n.similarity)
            continue
        back = nearest.get(n.neighbour_image_id)
        mutual = back is not None and group(back[0].neighbour_product_id) == group(n.product_id)
        if not mutual and n.similarity - following < margin:
            continue
        key = (min(n.image_id, n.neighbour_image_id), max(n.image_id, n.neighbour_image_id))
        if key not in checks or checks[key].similarity < n.similarity:
            a, b = (n.product_id, n.neighbour_product_id) if n.image_id < n.neighbour_image_id else (
                n.neighbour_product_id, n.product_id)
            checks[key] = PhotoCheck(a, b, key[0], key[1], round(n.similarity, 4))
    sure_pairs = [Evidence(a, b, "look", round(s, 4)) for (a, b), s in sorted(looks.items())]
    return sure_pairs, [c for c in checks.values() if (min(c.product_a, c.product_b),
                                                         max(c.product_a, c.product_b)) not in looks]


def photo_checks_run(checks: Sequence[PhotoCheck], *, cache: duplicates.FeatureCache,
                     progress: Callable[[int], None] | None = None) -> list[Evidence]:
    """Confirm visual candidates on the photos (ORB keypoints on one scale + shift, then colours); a product
    pair is confirmed once. Checks are taken in connected groups so the feature cache computes each photo once."""
    min_inliers = int(cleanup_setting("ORB_MIN_INLIERS"))
    max_colour = float(cleanup_setting("ORB_MAX_COLOUR_DIFFERENCE"))
    out, confirmed = [], set()
    for done, check in enumerate(duplicates.in_connected_order(checks, key=lambda c: (c.image_a, c.image_b)), 1):
        pair = (min(check.product_a, check.product_b), max(check.product_a, check.product_b))
        if pair not in confirmed:
            features_a, features_b = cache.get(check.image_a), cache.get(check.image_b)
            if features_a is not None and features_b is not None:
                match = duplicates.content_match(features_a, features_b)
                if match.same_photo(min_inliers=min_inliers, max_colour_difference=max_colour):
                    confirmed.add(pair)
                    out.append(Evidence(pair[0], pair[1], "cropped", check.similarity, check.image_a, check.image_b))
        if progress:
            progress(done)
    return out


def visual_candidates(*, model_id: int, neighbours: Sequence[ImageNeighbour],
                      known: set[tuple[int, int]]) -> tuple[list[Evidence], list[PhotoCheck]]:
    """``look_candidates`` with the gate of the model's embedder (``conf.visual_gate``)."""
    from matching.models import EmbeddingModel

    backbone = EmbeddingModel.objects.filter(pk=model_id).values_list("backbone", flat=True).first() or ""
    floor, margin = visual_gate(backbone)
    return look_candidates(neighbours, known=known, floor=floor, margin=margin,
                           sure=float(cleanup_setting("VISUAL_SURE")))


def pairs_by_look(*, model_id: int, product_ids: Iterable[int] | None = None, known: set[tuple[int, int]],
                  cache: duplicates.FeatureCache) -> list[Evidence]:
    """Visually near-identical products among the index's nearest neighbours of ``product_ids`` (or all),
    confirmed on the photos unless the two products are alike beyond ``VISUAL_SURE``."""
    from matching import search

    neighbours = search.image_neighbours(model_id=model_id, k=int(cleanup_setting("VISUAL_NEIGHBOURS")),
                                         product_ids=product_ids)
    sure_pairs, checks = visual_candidates(model_id=model_id, neighbours=neighbours, known=known)
    return sure_pairs + photo_checks_run(checks, cache=cache)


def keeper_for(product_ids: Sequence[int]) -> int:
    """The product a cluster merges into: active before draft, then most photos, most stock, oldest."""
    rows = Product.objects.filter(pk__in=list(product_ids)).annotate(
        n_images=Count("images", distinct=True),
    ).values_list("pk", "status", "n_images")
    stock = dict(Product.objects.filter(pk__in=list(product_ids)).annotate(s=Sum("variants__stock_quantity"))
                 .values_list("pk", "s"))
    ranked = sorted(rows, key=lambda r: (r[1] != ProductStatus.ACTIVE, -r[2], -(stock.get(r[0]) or 0), r[0]))
    return ranked[0][0]


def feature_cache() -> duplicates.FeatureCache:
    """Photo features for the checks, decoded no larger than they are computed (JPEG draft decoding)."""
    size = int(cleanup_setting("ORB_FEATURE_SIZE"))
    return duplicates.FeatureCache(lambda image_id: open_image(image_id, max_side=size), feature_size=size,
                                   feature_count=int(cleanup_setting("ORB_FEATURE_COUNT")))


def catalogue_duplicate_evidence(*, model_id: int | None, neighbours: Sequence[ImageNeighbour] | None = None,
                                 stats: dict | None = None) -> tuple[list[Evidence], list[PhotoCheck]]:
    """A full scan's duplicate evidence that needs no photo (same file, near-identical photos, products alike
    beyond ``VISUAL_SURE``) and the visual candidates still to check on the photos (``photo_checks_run``).

    ``neighbours``: the catalogue-wide nearest images (``catalogue_neighbours``)."""
    stats = stats if stats is not None else {}
    evidence = pairs_by_file()
    found, hash_stats = pairs_by_hash()
    evidence += found
    stats.update(hash_stats)
    if model_id is None:
        return evidence, []
    if neighbours is None:
        neighbours = catalogue_neighbours(model_id=model_id).neighbours()
    known = {(min(e.product_a, e.product_b), max(e.product_a, e.product_b)) for e in evidence}
    sure_pairs, checks = visual_candidates(model_id=model_id, neighbours=neighbours, known=known)
    stats.update(visual_sure_pairs=len(sure_pairs), photo_checks=len(checks))
    return evidence + sure_pairs, checks


def duplicate_findings(*, model_id: int | None, product_ids: Iterable[int] | None = None,
                       stats: dict | None = None,
                       neighbours: Sequence[ImageNeighbour] | None = None) -> list[FindingData]:
    """Clusters of products that are the same item (union-find over file, photo and look evidence), photo
    checks run here. An incremental scan follows new pairs ``MAX_HOPS`` far to rebuild whole clusters."""
    stats = stats if stats is not None else {}
    cache = feature_cache()
    if product_ids is None:
        evidence, checks = catalogue_duplicate_evidence(model_id=model_id, neighbours=neighbours, stats=stats)
        return duplicate_clusters(evidence + photo_checks_run(checks, cache=cache))
    evidence: list[Evidence] = []
    seen: set[int] = set()
    frontier = {int(p) for p in product_ids}
    for _ in range(MAX_HOPS):
        frontier -= seen
        if not frontier:
            break
        seen |= frontier
        round_evidence = pairs_by_file(product_ids=frontier) + pairs_by_hash(product_ids=frontier)[0]
        if model_id is not None:
            known = {(min(e.product_a, e.product_b), max(e.product_a, e.product_b))
                     for e in evidence + round_evidence}
            round_evidence += pairs_by_look(model_id=model_id, product_ids=frontier, known=known, cache=cache)
        evidence += round_evidence
        frontier = {p for e in round_evidence for p in (e.product_a, e.product_b)}
    return duplicate_clusters(evidence)


def duplicate_clusters(evidence: Sequence[Evidence]) -> list[FindingData]:
    """One finding per cluster of products joined by any evidence (union-find)."""
    clusters = duplicates.clusters_of((e.product_a, e.product_b) for e in evidence)
    if not clusters:
        return []
    products = {p.pk: p for p in Product.objects.filter(pk__in={p for c in clusters for p in c})}
    shas: dict[int, list[str]] = defaultdict(list)
    for product_id, sha in ProductImage.objects.filter(product_id__in=list(products)).values_list("product_id",
                                                                                                   "sha256"):
        shas[product_id].append(sha)
    by_cluster: dict[int, list[Evidence]] = defaultdict(list)
    member_of = {p: n for n, cluster in enumerate(clusters) for p in cluster}
    for e in evidence:
        by_cluster[member_of[e.product_a]].append(e)
    out = []
    for n, cluster in enumerate(clusters):
        cluster = [p for p in cluster if p in products]
        if len(cluster) < 2:
            continue
        keeper = keeper_for(cluster)
        pairs = by_cluster[n]
        confidence = max(EVIDENCE_CONFIDENCE.get(e.how, e.score) for e in pairs)
        skus = [products[p].sku for p in cluster]
        out.append(FindingData(
            kind=FindingKind.DUPLICATE, key="duplicate:" + "-".join(map(str, cluster)),
            summary=f"{len(cluster)} products look like one: {', '.join(skus[:4])}{'…' if len(skus) > 4 else ''}",
            fingerprint=fingerprint_of([(p, sorted(shas[p])) for p in cluster]),
            details={
                "skus": skus, "keeper": keeper, "keeper_sku": products[keeper].sku,
                "pairs": [{"a": products[e.product_a].sku, "b": products[e.product_b].sku, "evidence": e.how,
                           "score": e.score, "images": [e.image_a, e.image_b]} for e in pairs],
            },
            product_ids=cluster,
            image_ids=sorted({i for e in pairs for i in (e.image_a, e.image_b) if i}),
            confidence=round(confidence, 4),
        ))
    return out


# -- wrong labels ------------------------------------------------------------------------------------

# Jackets and sweaters look alike and neither label is wrong for the other: one group for the vote.
KIND_GROUP = {"outerwear": "topwear"}
# Gender is voted on the sex axis: a boys' shirt among men's shirts is not mislabelled.
SEX = {"men": "men", "boys": "men", "women": "women", "girls": "women"}
KIDS = {"men": "boys", "women": "girls"}


def label_findings(*, model_id: int, product_ids: Iterable[int] | None = None,
                   neighbours: Sequence[ImageNeighbour] | None = None) -> list[FindingData]:
    """Products whose category kind or gender disagrees with their nearest neighbours' (similarity-weighted
    vote over the ``LABEL_NEIGHBOURS`` most similar other products). ``neighbours`` as in ``duplicate_findings``,
    at least ``LABEL_NEIGHBOURS`` per image."""
    from matching import search

    k = int(cleanup_setting("LABEL_NEIGHBOURS"))
    if neighbours is None:
        neighbours = search.image_neighbours(model_id=model_id, k=k, product_ids=product_ids)
    best: dict[int, dict[int, float]] = defaultdict(dict)
    for n in neighbours:
        row = best[n.product_id]
        row[n.neighbour_product_id] = max(row.get(n.neighbour_product_id, -1.0), n.similarity)
    ids = set(best) | {q for row in best.values() for q in row}
    info = {
        row["pk"]: row for row in Product.objects.filter(pk__in=ids).values(
            "pk", "sku", "gender", "category_id", "category__name", "category__kind")
    }
    shas: dict[int, list[str]] = defaultdict(list)
    for product_id, sha in ProductImage.objects.filter(product_id__in=list(best)).values_list("product_id", "sha256"):
        shas[product_id].append(sha)
    min_voters = int(cleanup_setting("LABEL_MIN_VOTERS"))
    opinions = head_opinions(model_id=model_id, product_ids=product_ids)
    out = []
    for product_id, row in best.items():
        me = info.get(product_id)
        if me is None:
            continue
        voters = [(info[q], max(s, 0.0)) for q, s in sorted(row.items(), key=lambda item: -item[1])[:k] if q in info]
        if len(voters) < min_voters:
            continue
        kind, kind_conf = _vote([(KIND_GROUP.get(v["category__kind"], v["category__kind"]), w) for v, w in voters],
                                opinion=opinions.get("kind", {}).get(product_id))
        own_kind = KIND_GROUP.get(me["category__kind"], me["category__kind"])
        if kind and kind != own_kind and kind_conf >= float(cleanup_setting("KIND_MIN_CONFIDENCE")):
            category, _ = _vote([((v["category_id"], v["category__name"], v["category__kind"]), w) for v, w in voters
                                 if KIND_GROUP.get(v["category__kind"], v["category__kind"]) == kind])
            out.append(_label_finding(me, "category", me["category__name"], category[1], kind_conf, shas,
                                      extra={"current_kind": me["category__kind"], "suggested_kind": category[2],
                                             "suggested_category_id": category[0]}))
        own_sex = SEX.get(me["gender"])
        if own_sex is None:
            continue  # unisex: any neighbours fit
        gendered = [(SEX[v["gender"]], w) for v, w in voters if v["gender"] in SEX]
        if len(gendered) < min_voters:
            continue
        sex, sex_conf = _vote(gendered, opinion=opinions.get("gender", {}).get(product_id))
        if sex and sex != own_sex and sex_conf >= float(cleanup_setting("GENDER_MIN_CONFIDENCE")):
            suggested = KIDS[sex] if me["gender"] in KIDS.values() else sex
            out.append(_label_finding(me, "gender", me["gender"], suggested, sex_conf, shas, extra={}))
    return out


def _vote(weighted: list[tuple[object, float]], *, opinion: dict[str, float] | None = None) -> tuple[object, float]:
    """The neighbours' winning label and its share of the vote; with a head's ``opinion`` (probabilities on
    the same labels) the two distributions count equally."""
    totals: dict[object, float] = defaultdict(float)
    for label, weight in weighted:
        totals[label] += weight
    total = sum(totals.values())
    if not totals or total <= 0:
        return None, 0.0
    shares = {label: value / total for label, value in totals.items()}
    if opinion:
        shares = {label: (shares.get(label, 0.0) + opinion.get(label, 0.0)) / 2 for label in {*shares, *opinion}}
    label = max(shares, key=lambda key: (shares[key], str(key)))
    return label, shares[label]


def head_opinions(*, model_id: int, product_ids: Iterable[int] | None = None) -> dict[str, dict[int, dict[str, float]]]:
    """Per attribute whose classification head is active for this embedder: each product's mean class
    probabilities on the vote's labels (kind groups; men/women). A full scan cross-fits heads with the active
    head's settings (``heads.cross_fitted_probabilities``), so no product's own label judges it; an
    incremental scan asks the active head, trained before the change (with its products' appearance vectors when
    the head reads them)."""
    from matching.appearance import appearance_version, catalogue_appearance
    from matching.classification import active_head, head_rows, head_with_weights
    from matching.heads import HeadConfig, cross_fitted_probabilities
    from matching.models import EmbeddingModel
    from matching.search import embeddings_labelled

    model = EmbeddingModel.objects.filter(pk=model_id).first()
    if model is None:
        return {}
    heads = {attribute: active_head(model=model, attribute=attribute) for attribute in ("gender", "kind")}
    heads = {attribute: head for attribute, head in heads.items() if head is not None}
    if not heads:
        return {}
    # a full scan cross-fits over the whole catalogue; an incremental one reads only its products' vectors
    data = embeddings_labelled(model_id=model.pk, dimension=model.dimension,
                               product_ids=None if product_ids is None else list(product_ids))
    axis = {"gender": lambda label: SEX.get(label), "kind": lambda label: KIND_GROUP.get(label, label)}
    if product_ids is None:  # a full scan's cross-fitting folds go by SKU, the same in any database
        sku_of = dict(Product.objects.values_list("pk", "sku"))
        skus = [sku_of[int(p)] for p in data.product_ids]
    out: dict[str, dict[int, dict[str, float]]] = {}
    for attribute, head in heads.items():
        labels = data.genders if attribute == "gender" else data.kinds
        if product_ids is None:
            classes = list(head.labels)
            fields = set(HeadConfig.__dataclass_fields__)
            config = HeadConfig(**{k: v for k, v in head.training.get("config", {}).items() if k in fields})
            probabilities = cross_fitted_probabilities(data.vectors, list(labels), skus, classes=classes, config=config)
        else:
            found = head_with_weights(model=model, attribute=attribute)
            if found is None or not len(data.vectors):
                continue
            head_row, weights = found
            looks, readable = None, np.ones(len(data.vectors), bool)
            if head_row.appearance and head_row.appearance == appearance_version():
                from matching.services import embedder_for

                looks, readable = catalogue_appearance(data.image_ids, context=embedder_for(model).context_view)
            rows = head_rows(head_row, weights, data.vectors, looks)
            if rows is None:
                continue
            classes = list(weights.labels)
            probabilities = weights.probabilities(rows)
            probabilities[~readable] = np.nan
        sums: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for product_id, row in zip(data.product_ids, probabilities, strict=True):
            if np.isnan(row).any():
                continue
            for label, p in zip(classes, row, strict=True):
                on_axis = axis[attribute](label)
                if on_axis is not None:
                    sums[int(product_id)][on_axis] += float(p)
        opinion = {}
        for product_id, by_label in sums.items():
            total = sum(by_label.values())
            if total > 0:
                opinion[product_id] = {label: value / total for label, value in by_label.items()}
        out[attribute] = opinion
    return out


def _label_finding(me: dict, field_name: str, current: str, suggested: str, confidence: float,
                   shas: dict[int, list[str]], *, extra: dict) -> FindingData:
    return FindingData(
        kind=FindingKind.WRONG_LABEL, key=f"wrong_label:{field_name}:{me['pk']}",
        summary=f"{me['sku']}: {field_name} {current} → {suggested}?",
        fingerprint=fingerprint_of(me["pk"], field_name, current, sorted(shas[me["pk"]])),
        details={"sku": me["sku"], "field": field_name, "current": current, "suggested": suggested,
                 "confidence": round(confidence, 4), **extra},
        product_ids=[me["pk"]], confidence=round(confidence, 4),
    )


# -- bad photos and gaps -------------------------------------------------------------------------------

def photo_findings(*, product_ids: Iterable[int] | None = None) -> list[FindingData]:
    rows = (
        ImageSignature.objects.filter(image__product__status__in=SCANNED_STATUSES).exclude(flags=[])
        .values_list("image_id", "image__product_id", "image__product__sku", "sha256", "flags")
    )
    if product_ids is not None:
        rows = rows.filter(image__product_id__in=list(product_ids))
    return [
        FindingData(
            kind=FindingKind.BAD_PHOTO, key=f"bad_photo:{image_id}", summary=f"{sku}: {', '.join(flags)}",
            fingerprint=fingerprint_of(image_id, sha, sorted(flags)),
            details={"sku": sku, "image": image_id, "flags": flags}, product_ids=[product_id], image_ids=[image_id],
        )
        for image_id, product_id, sku, sha, flags in rows
    ]


def gap_findings(*, model_id: int | None, product_ids: Iterable[int] | None = None) -> list[FindingData]:
    """Products without photos, photos without a vector from the active model, photos that cannot be read."""
    out = []
    for pk, sku in scanned_products(product_ids).filter(images__isnull=True).values_list("pk", "sku"):
        out.append(FindingData(kind=FindingKind.GAP, key=f"gap:no_images:{pk}", summary=f"{sku}: no photos",
                               fingerprint=fingerprint_of(pk, "no images"),
                               details={"sku": sku, "gap": "no_images"}, product_ids=[pk]))
    images = scanned_images(product_ids)
    failed = images.filter(signature__isnull=False).exclude(signature__error="")
    for image_id, pk, sku, sha, error in failed.values_list("id", "product_id", "product__sku", "sha256",
                                                            "signature__error"):
        out.append(FindingData(kind=FindingKind.GAP, key=f"gap:failed:{image_id}", summary=f"{sku}: unreadable photo",
                               fingerprint=fingerprint_of(image_id, sha, "failed"),
                               details={"sku": sku, "gap": "failed", "image": image_id, "error": error},
                               product_ids=[pk], image_ids=[image_id]))
    if model_id is not None:
        missing = images.exclude(embeddings__model_id=model_id).filter(Q(signature__isnull=True)
                                                                       | Q(signature__error=""))
        for image_id, pk, sku, sha in missing.values_list("id", "product_id", "product__sku", "sha256"):
            out.append(FindingData(
                kind=FindingKind.GAP, key=f"gap:no_embedding:{image_id}", summary=f"{sku}: photo not searchable yet",
                fingerprint=fingerprint_of(image_id, sha, model_id, "no embedding"),
                details={"sku": sku, "gap": "no_embedding", "image": image_id, "model": model_id},
                product_ids=[pk], image_ids=[image_id],
            ))
    return out
