"""Labelled groups for metric learning, from every source through one function (``training_groups``).

A group is one product: the photos that show it, each tagged with its domain: ``shop`` (a catalogue photo)
or ``query`` (a worn, phone or snapshot photo). Sources:

- pair files in the ``shop-worn-pairs`` format (``pair,shop,worn``, paths relative to the CSV);
- providers registered by other apps with ``register_pair_provider`` (the warehouse app registers confirmed
  snapshots and review decisions), so matching never imports the apps above it;
- catalogue products in the database with several photos, and single-photo products (synthetic views).

Pair files are split by pair: the pair ids are sorted and the last ``HOLDOUT_FRACTION`` of them are held out
for evaluation and never trained on (for ``shop-worn-pairs``: p2100-p2399); of the rest, a stable hash puts
about ``VALIDATION_PERCENT`` % into validation, used to pick the checkpoint.
"""
from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

HOLDOUT_FRACTION = 0.125
VALIDATION_PERCENT = 8
SHOP, QUERY = "shop", "query"


@dataclass(frozen=True)
class Photo:
    path: str  # file path (absolute) or storage name
    domain: str  # SHOP or QUERY
    mask_path: str = ""  # a corrected garment mask, when a person drew one


@dataclass
class Group:
    key: str  # stable identity: "pairs:p0001", "product:SKU", ...
    source: str  # "pairs", "confirmed", "review", "catalogue"
    photos: list[Photo] = field(default_factory=list)
    negatives: list[str] = field(default_factory=list)  # keys of groups known to be wrong for the query
    kind: str = ""

    @property
    def shop(self) -> list[Photo]:
        return [p for p in self.photos if p.domain == SHOP]

    @property
    def query(self) -> list[Photo]:
        return [p for p in self.photos if p.domain == QUERY]


PairProvider = Callable[[], Iterable[Group]]
_providers: dict[str, PairProvider] = {}


def register_pair_provider(name: str, provider: PairProvider) -> None:
    """Let an app contribute labelled groups (e.g. confirmed snapshot <-> product pairs) without matching
    importing it. Registering the same name again replaces the provider."""
    _providers[name] = provider


def registered_providers() -> dict[str, PairProvider]:
    return dict(_providers)


def stable_percent(key: str) -> int:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 100


def read_pair_file(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"pair", "shop", "worn"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path} lacks column(s) {', '.join(sorted(missing))}; expected pair,shop,worn.")
        return [row for row in reader if row.get("pair")]


def pair_split(pair_ids: Iterable[str]) -> dict[str, str]:
    """pair id -> "train" | "validation" | "holdout" (see the module docstring)."""
    ordered = sorted(set(pair_ids))
    n_holdout = math.ceil(len(ordered) * HOLDOUT_FRACTION)
    holdout = set(ordered[len(ordered) - n_holdout:]) if n_holdout else set()
    return {
        pid: "holdout" if pid in holdout else ("validation" if stable_percent(pid) < VALIDATION_PERCENT else "train")
        for pid in ordered
    }


def pair_groups(path: Path, *, splits: Iterable[str] = ("train",)) -> list[Group]:
    rows = read_pair_file(path)
    split = pair_split(row["pair"] for row in rows)
    wanted = set(splits)
    root = path.parent
    groups = []
    for row in rows:
        if split[row["pair"]] not in wanted:
            continue
        groups.append(Group(
            key=f"pairs:{path.parent.name}:{row['pair']}", source="pairs", kind="topwear",
            photos=[Photo(str(root / row["shop"]), SHOP), Photo(str(root / row["worn"]), QUERY)],
        ))
    return groups


def catalogue_groups(*, limit: int | None = None) -> list[Group]:
    """Active catalogue products with their photos (several photos: real positives; one: synthetic views)."""
    from catalog.models import Product, ProductStatus

    products = (
        Product.objects.filter(status=ProductStatus.ACTIVE).select_related("category")
        .prefetch_related("images").order_by("id")
    )
    groups = []
    for product in products[:limit] if limit else products:
        photos = [Photo(image.file.path, SHOP) for image in product.images.all() if image.file]
        if photos:
            groups.append(Group(key=f"product:{product.sku}", source="catalogue", photos=photos,
                                kind=product.category.kind))
    return groups


def image_folder_groups(csv_path: Path, *, column: str = "image", limit: int | None = None) -> list[Group]:
    """One single-photo group per row of an image CSV (e.g. catalogue photos): trained by synthetic views."""
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get(column)]
    rows = rows[:limit] if limit else rows
    return [
        Group(key=f"photo:{csv_path.parent.name}:{row[column]}", source="catalogue",
              photos=[Photo(str(csv_path.parent / row[column]), SHOP)])
        for row in rows
    ]


def training_groups(
    *, pair_files: Iterable[Path] = (), photo_csvs: Iterable[Path] = (), use_database: bool = True,
    splits: Iterable[str] = ("train",), photo_limit: int | None = None,
) -> list[Group]:
    """Every labelled group the trainer sees, from every source (the one selector the dataset reads)."""
    groups: list[Group] = []
    for path in pair_files:
        groups.extend(pair_groups(Path(path), splits=splits))
    for path in photo_csvs:
        groups.extend(image_folder_groups(Path(path), limit=photo_limit))
    if use_database:
        groups.extend(catalogue_groups())
        for provider in _providers.values():
            groups.extend(provider())
    merged: dict[str, Group] = {}
    for group in groups:  # a product confirmed by snapshots and present in the catalogue is one group
        if group.key in merged:
            merged[group.key].photos.extend(group.photos)
            merged[group.key].negatives.extend(group.negatives)
        else:
            merged[group.key] = group
    return list(merged.values())
