"""What the demo catalogue contains: one deterministic ``ProductSpec`` per (seed, index).

Product ``i`` depends only on the seed and ``i``, so ``--products 12`` gives the first twelve products of
the default 240, and a re-run rebuilds exactly the same rows and image bytes.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from catalog.models import CategoryKind, Gender

from .garments import ALTERNATE_VIEWS, GarmentStyle, random_shape
from .patterns import RGB, Fabric


@dataclass(frozen=True)
class CategorySpec:
    garment: str
    code: str  # the SKU part: DEMO-TOP-0001
    parent: str
    name: str
    kind: str
    nouns: tuple[str, ...]
    prices: tuple[float, float]
    genders: tuple[str, ...]
    patterns: tuple[str, ...]


_ALL = (Gender.MEN, Gender.WOMEN, Gender.UNISEX, Gender.BOYS, Gender.GIRLS)
_WOMEN = (Gender.WOMEN, Gender.WOMEN, Gender.WOMEN, Gender.GIRLS)
CATEGORIES = {
    c.garment: c
    for c in (
        CategorySpec("tshirt", "TOP", "Topwear", "T-Shirt", CategoryKind.TOPWEAR, ("T-Shirt", "Tee", "Crew-Neck Tee"),
                     (9, 35), _ALL, ("solid", "solid", "stripes", "graphic", "graphic", "dots", "print")),
        CategorySpec("shirt", "TOP", "Topwear", "Shirt", CategoryKind.TOPWEAR, ("Shirt", "Oxford Shirt", "Poplin Shirt"),  # noqa: E501
                     (25, 70), _ALL, ("solid", "stripes", "checks", "checks", "dots", "print")),
        CategorySpec("sweater", "TOP", "Topwear", "Sweater", CategoryKind.TOPWEAR, ("Sweater", "Jumper", "Knit Sweater"),  # noqa: E501
                     (30, 90), _ALL, ("solid", "solid", "stripes", "checks", "print")),
        CategorySpec("trousers", "BTM", "Bottomwear", "Trousers", CategoryKind.BOTTOMWEAR,
                     ("Trousers", "Chinos", "Jeans"), (29, 95), _ALL, ("solid", "solid", "solid", "checks", "stripes", "print")),  # noqa: E501
        CategorySpec("skirt", "BTM", "Bottomwear", "Skirt", CategoryKind.BOTTOMWEAR, ("Skirt", "A-Line Skirt", "Midi Skirt"),  # noqa: E501
                     (22, 75), _WOMEN, ("solid", "checks", "dots", "stripes", "print")),
        CategorySpec("dress", "DRS", "Full body", "Dress", CategoryKind.FULL_BODY, ("Dress", "Midi Dress", "Shift Dress"),  # noqa: E501
                     (35, 140), _WOMEN, ("solid", "dots", "dots", "stripes", "print", "checks")),
        CategorySpec("jacket", "OUT", "Outerwear", "Jacket", CategoryKind.OUTERWEAR, ("Jacket", "Bomber", "Field Jacket"),  # noqa: E501
                     (55, 220), _ALL, ("solid", "solid", "solid", "checks", "print")),
        CategorySpec("shoe", "SHO", "Footwear", "Shoes", CategoryKind.FOOTWEAR, ("Sneakers", "Boots", "Loafers"),
                     (39, 160), _ALL, ("solid", "solid", "solid", "print", "checks")),
    )
}
# Order in which indices cycle through categories: any 12 consecutive products cover all eight.
CYCLE = ("tshirt", "trousers", "dress", "shoe", "shirt", "skirt", "jacket", "sweater", "tshirt", "trousers", "shoe",
         "dress")

COLOURS: dict[str, RGB] = {
    "Black": (28, 28, 30), "Charcoal": (62, 64, 68), "Grey": (150, 150, 152), "Ivory": (232, 226, 208),
    "White": (238, 238, 234), "Navy": (28, 40, 80), "Royal Blue": (40, 72, 182), "Sky Blue": (120, 176, 226),
    "Denim": (68, 96, 140), "Teal": (20, 120, 125), "Mint": (160, 220, 190), "Green": (40, 132, 70),
    "Forest": (30, 76, 46), "Olive": (110, 115, 52), "Khaki": (190, 170, 120), "Beige": (214, 194, 164),
    "Camel": (190, 145, 90), "Brown": (110, 70, 40), "Mustard": (215, 165, 40), "Yellow": (245, 212, 60),
    "Orange": (235, 120, 40), "Coral": (240, 112, 92), "Red": (190, 30, 40), "Burgundy": (112, 26, 42),
    "Pink": (236, 150, 172), "Lavender": (180, 160, 215), "Purple": (100, 56, 140),
}
SOLES: tuple[RGB, ...] = ((236, 236, 230), (236, 236, 230), (36, 36, 36), (178, 128, 78))
STITCH: RGB = (214, 140, 52)
BRANDS = ("Northwind", "Alder & Co", "Kestrel", "Marlow", "Oakhaven", "Tidewater", "Vireo", "Sable Street",
          "Fjordline", "Cobalt Lane", "Juniper", "Halcyon")
MARKS = ("SURF CLUB", "1987", "WILD", "ATHLETIC", "NYC", "OCEAN", "SUMMIT", "RETRO", "PLAY", "NO.7", "TOKYO", "LOVE")
PATTERN_WORDS = {"solid": "", "stripes": "Striped", "checks": "Checked", "dots": "Polka-Dot", "print": "Printed",
                 "graphic": "Graphic"}
FITS = ("Classic", "Relaxed", "Slim", "Everyday", "Essential", "Heritage", "Studio", "Weekend")
ADULT_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
WAIST_SIZES = ("28", "30", "32", "34", "36", "38")
KIDS_SIZES = ("4Y", "6Y", "8Y", "10Y", "12Y")
SHOE_SIZES = tuple(str(n) for n in range(36, 47))


@dataclass(frozen=True)
class VariantSpec:
    size: str
    barcode: str
    stock: int


@dataclass(frozen=True)
class ProductSpec:
    index: int
    sku: str
    name: str
    brand: str
    category: CategorySpec
    gender: str
    colour: str
    price: Decimal
    variants: tuple[VariantSpec, ...]
    style: GarmentStyle
    views: tuple[str, ...]  # the first is the primary image


def product_spec(*, seed: int, index: int) -> ProductSpec:
    rng = np.random.default_rng([seed, index])
    category = CATEGORIES[CYCLE[index % len(CYCLE)]]
    colour = str(rng.choice(list(COLOURS)))
    pattern = str(rng.choice(category.patterns))
    style = _style(category.garment, colour, pattern, rng)
    brand = str(rng.choice(BRANDS))
    noun = _noun(category, style, rng)
    words = [brand, str(rng.choice(FITS)), PATTERN_WORDS[pattern], colour, noun]
    gender = str(rng.choice(category.genders))
    low, high = category.prices
    alternates = [str(v) for v in rng.permutation(ALTERNATE_VIEWS[category.garment])[: int(rng.integers(1, 3))]]
    return ProductSpec(
        index=index, sku=f"DEMO-{category.code}-{index + 1:04d}", name=" ".join(w for w in words if w), brand=brand,
        category=category, gender=gender, colour=colour, price=Decimal(f"{int(rng.uniform(low, high)) + 0.99:.2f}"),
        variants=_variants(category, gender, index, rng), style=style, views=("front", *alternates),
    )


def _style(garment: str, colour: str, pattern: str, rng: np.random.Generator) -> GarmentStyle:
    base = _jitter(COLOURS[colour], rng)
    accent = _jitter(_contrasting(base, rng), rng)
    trim = base
    if garment == "shoe":
        trim = SOLES[int(rng.integers(len(SOLES)))]
    elif garment == "trousers":
        trim = STITCH if colour in ("Denim", "Navy", "Sky Blue", "Black") else _shade(base, 0.75)
    elif garment in ("sweater", "jacket") or rng.random() < 0.3:
        trim = accent if rng.random() < 0.4 else _shade(base, 0.8)
    period = {"stripes": rng.uniform(10, 40), "checks": rng.uniform(22, 52), "dots": rng.uniform(18, 40),
              "print": rng.uniform(12, 20) if garment == "shoe" else rng.uniform(5, 11)}.get(pattern, 0)
    angle = float(rng.choice([0.0, 90.0, 45.0] if pattern == "stripes" else [0.0, 45.0]))
    seed = int(rng.integers(2**31 - 1))
    fabric = Fabric(base=base, accent=accent, trim=trim, pattern=pattern, period=float(period), angle=angle, seed=seed)
    shape = random_shape(garment, rng)
    if "graphic" in shape:
        shape["graphic"] = float(pattern == "graphic")
    label = str(rng.choice(MARKS))
    return GarmentStyle(garment=garment, fabric=fabric, shape=shape, label=label, seed=seed)


def _contrasting(base: RGB, rng: np.random.Generator) -> RGB:
    luma = _luma(base)
    options = [c for c in COLOURS.values() if abs(_luma(c) - luma) > 70]
    return options[int(rng.integers(len(options)))]


def _jitter(rgb: RGB, rng: np.random.Generator, amount: int = 14) -> RGB:
    """The named colour, nudged per product so no two products share exactly the same dye."""
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)  # type: ignore[return-value]


def _luma(rgb: RGB) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _shade(rgb: RGB, factor: float) -> RGB:
    return tuple(int(c * factor) for c in rgb)  # type: ignore[return-value]


def _noun(category: CategorySpec, style: GarmentStyle, rng: np.random.Generator) -> str:
    if category.garment == "shoe":
        return category.nouns[int(style.shape["style"])]
    if category.garment == "skirt" and style.shape.get("pleats", 0) > 0.5:
        return "Pleated Skirt"
    if category.garment == "jacket" and style.shape.get("zip", 0) > 0.5:
        return "Zip Jacket"
    if category.garment == "trousers" and style.fabric.trim == STITCH:
        return "Jeans"
    if category.garment == "trousers":
        return str(rng.choice(category.nouns[:2]))
    return str(rng.choice(category.nouns))


def _variants(category: CategorySpec, gender: str, index: int, rng: np.random.Generator) -> tuple[VariantSpec, ...]:
    kids = gender in (Gender.BOYS, Gender.GIRLS)
    if category.garment == "shoe":
        scale = SHOE_SIZES
    elif kids:
        scale = KIDS_SIZES
    elif category.garment == "trousers":
        scale = WAIST_SIZES
    else:
        scale = ADULT_SIZES
    count = int(rng.integers(3, min(6, len(scale)) + 1))
    start = int(rng.integers(0, len(scale) - count + 1))
    return tuple(
        VariantSpec(
            size=size, barcode=ean13(f"29{index:07d}{k:03d}"),
            stock=0 if rng.random() < 0.25 else int(rng.integers(1, 31)),
        )
        for k, size in enumerate(scale[start : start + count])
    )


def ean13(digits: str) -> str:
    """Append the EAN-13 check digit; the 29 prefix is an in-store range no real product carries."""
    if len(digits) != 12 or not digits.isdigit():
        raise ValueError(f"EAN-13 needs 12 digits before the check digit, got {digits!r}")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)


def look_plans(specs: list[ProductSpec], seed: int) -> list[tuple[str, tuple[ProductSpec, ...]]]:
    """A few outfits (top + bottom + shoes, or dress + shoes, sometimes with a jacket) for complete-the-look."""
    by_garment: dict[str, list[ProductSpec]] = {}
    for spec in specs:
        by_garment.setdefault(spec.category.garment, []).append(spec)
    tops = by_garment.get("tshirt", []) + by_garment.get("shirt", []) + by_garment.get("sweater", [])
    bottoms = by_garment.get("trousers", []) + by_garment.get("skirt", [])
    dresses, shoes, jackets = (by_garment.get(g, []) for g in ("dress", "shoe", "jacket"))
    if not shoes or not ((tops and bottoms) or dresses):
        return []
    plans = []
    for i in range(max(3, len(specs) // 20)):
        rng = np.random.default_rng([seed, 1_000_000 + i])
        if dresses and (i % 3 == 2 or not (tops and bottoms)):
            items = [_pick(dresses, rng), _pick(shoes, rng)]
        else:
            items = [_pick(tops, rng), _pick(bottoms, rng), _pick(shoes, rng)]
        if jackets and rng.random() < 0.4:
            items.insert(1, _pick(jackets, rng))
        lead = items[0]
        plans.append((f"Demo look {i + 1:02d}: {lead.colour} {lead.category.name.lower()} outfit", tuple(items)))
    return plans


def _pick(options: list[ProductSpec], rng: np.random.Generator) -> ProductSpec:
    return options[int(rng.integers(len(options)))]
