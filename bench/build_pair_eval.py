"""Build ``evaluate_matching`` CSVs from real shop <-> worn pairs (``../shared/data/shop-worn-pairs``).

The pairs are split as training splits them (``matching.training.data.pair_split``: the last 12.5 % of pair
ids, p2100-p2399, are held out and never trained on; of the rest ~8 % are validation). Catalogue: the shop
photo of each pair of the split except every 4th (left out: "not in the catalogue", for the open-set AUROC),
plus every ``catalog-photos`` studio photo as a distractor; queries: the worn photos.

Usage: ``.venv/bin/python bench/build_pair_eval.py --split holdout --out var/pair-eval``; then
``manage.py evaluate_matching --catalog var/pair-eval/catalog.csv --queries var/pair-eval/queries.csv``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from matching.training.pair_eval import write_pair_eval  # noqa: E402  (no Django needed)

DATA = REPO.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=DATA / "shop-worn-pairs" / "pairs.csv")
    parser.add_argument("--distractors", type=Path, default=DATA / "catalog-photos" / "labels.csv")
    parser.add_argument("--split", choices=["holdout", "validation", "train"], default="holdout")
    parser.add_argument("--unknown-every", type=int, default=4, help="every n-th pair is left out of the catalogue")
    parser.add_argument("--distractor-limit", type=int, default=None)
    parser.add_argument("--unknown-photos", type=Path, default=None,
                        help="CSV with an image column (relative to it): more queries that are not in the catalogue, "
                             "e.g. var/classify/phone_train.csv (phone photos of every kind)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    made = write_pair_eval(pairs_csv=args.pairs, out=args.out, split=args.split, unknown_every=args.unknown_every,
                           distractors_csv=args.distractors, distractor_limit=args.distractor_limit,
                           unknown_photos_csv=args.unknown_photos)
    print(f"{args.split}: {made['catalogue_images']} catalogue images ({made['distractors']} distractors), "
          f"{made['queries_in'] + made['queries_out']} queries ({made['queries_in']} in catalogue, "
          f"{made['queries_out']} not) -> {args.out}")


if __name__ == "__main__":
    main()
