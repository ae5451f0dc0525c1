"""Duplicate search without comparing all pairs: hash bands, pair verification, clusters.

Near-identical photos (re-encoded, resized) are found by locality-sensitive hashing on the 64-bit pHash:
it is cut into four 16-bit bands and only photos sharing a band are compared (two hashes within 3 bits
always share one; most within 10 do). The comparison itself is vectorised, so 100k photos cost a few
sorts, not 5·10⁹ Python comparisons. A hash pair is confirmed by the 8x8 colour thumbnail, because on
white studio backgrounds the grey-level hashes of two different garments with the same outline collide.

Cropped copies change the hashes completely; they are found among each photo's nearest neighbours in
the embedding index and confirmed by local features: ORB keypoints whose matches agree on one
scale-and-shift transform (RANSAC), and whose colours agree where the two photos overlap.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image

BANDS = 4
BAND_BITS = 16
T = TypeVar("T")
MAX_BUCKET = 5000  # a band value shared by more photos than this says nothing (e.g. blank frames); skipped


def bands_of(phash: int) -> list[int]:
    unsigned = phash & 0xFFFFFFFFFFFFFFFF
    return [(unsigned >> (BAND_BITS * b)) & 0xFFFF for b in range(BANDS)]


def as_unsigned(hashes: Iterable[int]) -> np.ndarray:
    return np.asarray([h & 0xFFFFFFFFFFFFFFFF for h in hashes], dtype=np.uint64)


def candidate_pairs(hashes: np.ndarray) -> tuple[np.ndarray, int]:
    """Index pairs (i < j) of ``hashes`` (uint64) sharing at least one 16-bit band, and how many
    oversized buckets were skipped."""
    n = len(hashes)
    chunks: list[np.ndarray] = []
    skipped = 0
    for band in range(BANDS):
        values = ((hashes >> np.uint64(BAND_BITS * band)) & np.uint64(0xFFFF)).astype(np.int64)
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        sizes = np.diff(np.r_[starts, n])
        for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
            if size > MAX_BUCKET:
                skipped += 1
                continue
            members = order[start : start + size]
            i, j = np.triu_indices(int(size), 1)
            chunks.append(np.stack([members[i], members[j]], axis=1))
    if not chunks:
        return np.empty((0, 2), dtype=np.int64), skipped
    pairs = np.concatenate(chunks)
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0), skipped


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def thumb_distance(a: bytes | None, b: bytes | None) -> float:
    """Mean absolute difference of two 8x8 RGB thumbnails (0-255); infinite when one is missing."""
    if not a or not b or len(a) != len(b):
        return float("inf")
    return float(np.abs(np.frombuffer(a, np.uint8).astype(np.int16) - np.frombuffer(b, np.uint8)).mean())


def thumb_of(image: Image.Image) -> bytes:
    return np.asarray(image.convert("RGB").resize((8, 8), Image.Resampling.BOX), dtype=np.uint8).tobytes()


# -- local feature verification ---------------------------------------------------------------------

FEATURE_SIZE = 224  # px, longer side (the scan takes CLEANUP["ORB_FEATURE_SIZE"])
FEATURE_COUNT = 400  # ORB keypoints kept (CLEANUP["ORB_FEATURE_COUNT"])


@dataclass
class Features:
    points: np.ndarray
    descriptors: np.ndarray | None
    rgb: np.ndarray  # at half the keypoints' scale


def features_of(image: Image.Image, *, size: int = FEATURE_SIZE, count: int = FEATURE_COUNT) -> Features:
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    scale = size / max(rgb.shape[:2])
    rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    orb = cv2.ORB_create(nfeatures=count, fastThreshold=10)
    keypoints, descriptors = orb.detectAndCompute(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), None)
    # The colour check runs at half size: a cache of a few thousand images stays small.
    small = cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    return Features(np.float32([kp.pt for kp in keypoints]).reshape(-1, 2), descriptors, small)


@dataclass(frozen=True)
class ContentMatch:
    inliers: int
    colour_difference: float

    def same_photo(self, *, min_inliers: int = 30, max_colour_difference: float = 12.0) -> bool:
        return self.inliers >= min_inliers and self.colour_difference <= max_colour_difference


def content_match(a: Features, b: Features) -> ContentMatch:
    """Whether ``b`` shows ``a``'s photo cropped, scaled or re-encoded: ORB matches consistent with one
    scale + shift (no rotation), then the colour difference where the aligned photos overlap."""
    none = ContentMatch(0, float("inf"))
    if a.descriptors is None or b.descriptors is None or len(a.descriptors) < 8 or len(b.descriptors) < 8:
        return none
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    good = [m[0] for m in matcher.knnMatch(a.descriptors, b.descriptors, k=2)
            if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < 6:
        return none
    src = a.points[[m.queryIdx for m in good]]
    dst = b.points[[m.trainIdx for m in good]]
    transform, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    if transform is None:
        return none
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    angle = abs(float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0]))))
    if not 0.6 < scale < 1.7 or angle > 5:
        return none
    height, width = b.rgb.shape[:2]
    half = transform.copy()
    half[:, 2] /= 2  # keypoints are at full feature size, colours at half
    warped = cv2.warpAffine(a.rgb.astype(np.float32), half, (width, height), flags=cv2.INTER_LINEAR,
                            borderValue=(-1, -1, -1))
    valid = warped[..., 0] >= 0
    content = valid & ((b.rgb.min(axis=2) < 232) | (warped.min(axis=2) < 232))  # ignore shared white background
    if content.sum() < 12:
        return ContentMatch(int(inliers.sum()), float("inf"))
    diff = np.abs(cv2.GaussianBlur(warped, (3, 3), 0)[content]
                  - cv2.GaussianBlur(b.rgb.astype(np.float32), (3, 3), 0)[content]).mean()
    return ContentMatch(int(inliers.sum()), float(diff))


class FeatureCache:
    """Features per image id, computed on first use from a loader; a bounded LRU (one scan's working set).

    ``misses`` counts computations: with checks taken in connected order (``in_connected_order``) it equals
    the number of distinct photos checked unless a connected group outgrows the cache."""

    def __init__(self, load: Callable[[int], Image.Image | None], size: int = 2048, *, feature_size: int = FEATURE_SIZE,
                 feature_count: int = FEATURE_COUNT) -> None:
        self._load, self._size = load, size
        self._feature_size, self._feature_count = feature_size, feature_count
        self._items: OrderedDict[int, Features | None] = OrderedDict()
        self.misses = 0

    def get(self, image_id: int) -> Features | None:
        if image_id in self._items:
            self._items.move_to_end(image_id)
            return self._items[image_id]
        self.misses += 1
        image = self._load(image_id)
        features = features_of(image, size=self._feature_size, count=self._feature_count) if image is not None else None
        self._items[image_id] = features
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return features


# -- clusters -----------------------------------------------------------------------------------------

class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        root = self.parent.setdefault(item, item)
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for item in self.parent:
            out.setdefault(self.find(item), []).append(item)
        return [sorted(members) for members in out.values() if len(members) > 1]


def in_connected_order(items: Iterable[T], *, key: Callable[[T], tuple[int, int]]) -> list[T]:
    """``items`` (edges between two ids) grouped by connected component, each group in id order: a cache of
    per-id work then sees each id's edges close together instead of scattered over the whole list."""
    items = list(items)
    union = UnionFind()
    for item in items:
        union.union(*key(item))
    return sorted(items, key=lambda item: (union.find(key(item)[0]), key(item)))


def clusters_of(pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    union = UnionFind()
    for a, b in pairs:
        union.union(a, b)
    return sorted(union.groups())
