"""Where should the mirror's person test draw its line for the active segmenter? The share of a frame the
segmenter calls skin or hair (``CutOut.person_share``) on mirror frames with a person (worn photos of held-out
VITON pairs) and without (their flat shop photos), and how many of each fall on the wrong side of candidate
thresholds.

    [STOCKMATCH_SEGMENTER_DIR=models/segmenter/reference] python bench/person_share.py [--worn 300] [--shop 150]

A throwaway database, so the segmenter served is the shipped one (``models/segmenter/``, or
``STOCKMATCH_SEGMENTER_DIR``). Prints one
JSON object; ``suggested`` is the highest shop share rounded up to the next 0.001: no flat garment is taken for a
person, and as many worn frames as that allows are.
"""
from __future__ import annotations

import argparse
import math

import numpy as np
from mirror_common import PAIRS_DIR, emit, held_out_pairs, mirror_frame, setup_django

CANDIDATES = (0.001, 0.002, 0.003, 0.005, 0.008, 0.012, 0.0185)


def shares(paths: list) -> list[float]:
    from segmentation import cut_out_garments

    return [float(cut_out_garments(mirror_frame(path))[0].person_share or 0.0) for path in paths]


def run(*, worn: int, shop: int) -> dict:
    from matching.throwaway import throwaway_database
    from segmentation.segmenter import get_segmenter

    rows = held_out_pairs(max(worn, shop))
    with throwaway_database("personshare"):
        version = get_segmenter().version
        worn_shares = np.asarray(shares([PAIRS_DIR / row["worn"] for row in rows[:worn]]))
        shop_shares = np.asarray(shares([PAIRS_DIR / row["shop"] for row in rows[:shop]]))
    suggested = math.floor(float(shop_shares.max()) * 1000 + 1) / 1000
    return {
        "segmenter": version,
        "worn_frames": int(worn_shares.size),
        "shop_frames": int(shop_shares.size),
        "worn_quantiles": {q: round(float(np.quantile(worn_shares, q)), 4) for q in (0.0, 0.02, 0.05, 0.5)},
        "shop_quantiles": {q: round(float(np.quantile(shop_shares, q)), 4) for q in (0.5, 0.95, 0.99, 1.0)},
        "at_threshold": {
            str(t): {"worn_missed": int((worn_shares < t).sum()), "shop_taken": int((shop_shares >= t).sum())}
            for t in CANDIDATES
        },
        "suggested": round(suggested, 4),
        "suggested_worn_missed": int((worn_shares < suggested).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worn", type=int, default=300)
    parser.add_argument("--shop", type=int, default=150)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    setup_django()
    emit(run(worn=args.worn, shop=args.shop), args.json)


if __name__ == "__main__":
    main()
