"""Our segmentation classes and the mapping from the Clothing Co-Parsing (CCP) label set."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

# Skin and hair are classes of their own so that "the person minus skin and hair" is learned, not guessed;
# they, like the background, are never part of a garment mask.
CLASSES: tuple[str, ...] = ("background", "topwear", "bottomwear", "full-body", "footwear", "other", "skin", "hair")
BACKGROUND = 0
CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}
GARMENT_KINDS = ("topwear", "bottomwear", "full-body", "footwear")
NOT_GARMENT = frozenset({"background", "skin", "hair"})


def garment_channels(classes: list[str] | tuple[str, ...]) -> list[int]:
    """Indices of the classes that belong to a garment mask (everything worn: garments and 'other')."""
    return [i for i, name in enumerate(classes) if name not in NOT_GARMENT]


def garment_labels(labels: np.ndarray, classes: list[str] | tuple[str, ...] = CLASSES) -> np.ndarray:
    """Bool mask of the pixels whose class is worn (a class map -> the binary garment mask)."""
    table = np.zeros(max(256, len(classes)), bool)
    table[garment_channels(classes)] = True
    return table[labels]


def garment_probability(probs: np.ndarray, classes: list[str] | tuple[str, ...]) -> np.ndarray:
    """P(garment) per pixel from class probabilities (C x H x W), whatever classes the network predicts."""
    return probs[garment_channels(classes)].sum(axis=0)


def person_share(probs: np.ndarray, classes: list[str] | tuple[str, ...]) -> float:
    """Share of the pixels whose most likely class is skin or hair: how much of a person the network sees
    (0.0 for a network without those classes)."""
    person = [i for i, name in enumerate(classes) if name in ("skin", "hair")]
    if not person:
        return 0.0
    return float(np.isin(probs.argmax(axis=0), person).mean())

_CCP_KIND = {
    "topwear": "blazer blouse bra cape cardigan coat hoodie jacket jumper shirt sweater sweatshirt t-shirt top vest",
    "bottomwear": "jeans leggings pants shorts skirt tights",
    "full-body": "bodysuit dress romper suit swimwear",
    "footwear": "boots clogs flats heels loafers pumps sandals shoes sneakers wedges socks",
}
CCP_NAME_TO_KIND = {name: kind for kind, names in _CCP_KIND.items() for name in names.split()}


def ccp_lookup(label_list_csv: Path) -> np.ndarray:
    """Lookup table CCP label value -> our class index. Skin and hair are their own classes, everything else not
    in the masks (null) is background; worn items we do not sell as garments (bags, belts, jewellery, hats) are
    'other'."""
    table = np.zeros(256, dtype=np.uint8)
    with open(label_list_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            value = int(row["label_value"])
            name = row["name"].strip().lower()
            if name in ("skin", "hair"):
                table[value] = CLASS_INDEX[name]
                continue
            if row["in_masks"].strip() != "1":
                table[value] = BACKGROUND
                continue
            table[value] = CLASS_INDEX[CCP_NAME_TO_KIND.get(name, "other")]
    return table


def catalog_kind(master: str, sub: str, article: str = "") -> str | None:
    """Class for a catalogue product row (Fashion Product Images labels); None for things that are not worn."""
    master, sub, article = master.strip().lower(), sub.strip().lower(), article.strip().lower()
    if sub == "topwear":
        return "topwear"
    if sub == "bottomwear":
        return "bottomwear"
    if sub in {"dress", "loungewear and nightwear", "saree", "apparel set"}:
        return "full-body"
    if master == "footwear" or sub in {"socks", "shoes", "sandal", "flip flops"}:
        return "footwear"
    if master in {"accessories", "apparel"}:
        return "other"
    return None
