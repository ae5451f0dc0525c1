"""Evaluation CSVs (DESIGN §5 ``evaluate_matching`` format) from a pair file's held-out or validation split.

Catalogue: the shop photo of each pair of the split except every ``unknown_every``-th (left out: "not in the
catalogue"), plus optional distractor studio photos; queries: every worn photo of the split.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from .data import pair_split, read_pair_file


def write_pair_eval(*, pairs_csv: Path, out: Path, split: str = "holdout", unknown_every: int = 4,
                    distractors_csv: Path | None = None, distractor_limit: int | None = None,
                    pair_limit: int | None = None, unknown_photos_csv: Path | None = None) -> dict:
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    pairs = read_pair_file(pairs_csv)
    splits = pair_split(row["pair"] for row in pairs)
    chosen = [row for row in pairs if splits[row["pair"]] == split][:pair_limit]

    def rel(path: Path) -> str:
        return os.path.relpath(path.resolve(), out)

    catalogue, queries = [], []
    for n, row in enumerate(chosen):
        sku = f"PAIR-{row['pair']}"
        unknown = unknown_every > 0 and n % unknown_every == unknown_every - 1
        if not unknown:
            catalogue.append({"sku": sku, "image": rel(pairs_csv.parent / row["shop"]), "category": "Tops",
                              "gender": "women", "name": f"Top {row['pair']}"})
        queries.append({"image": rel(pairs_csv.parent / row["worn"]), "sku": "" if unknown else sku})
    if unknown_photos_csv:  # real photos of garments that are in no catalogue (any kind): more "not in catalogue"
        with open(unknown_photos_csv, newline="") as handle:
            queries.extend({"image": rel(unknown_photos_csv.parent / row["image"]), "sku": ""}
                           for row in csv.DictReader(handle))
    distractors: list[dict] = []
    if distractors_csv:
        with open(distractors_csv, newline="") as handle:
            distractors = list(csv.DictReader(handle))[:distractor_limit]
    for row in distractors:
        stem = Path(row["image"]).stem
        catalogue.append({"sku": f"CAT-{stem}", "image": rel(distractors_csv.parent / row["image"]),
                          "category": row.get("article_type") or row.get("sub_category") or "",
                          "gender": row.get("gender", ""), "name": f"{row.get('article_type', '')} {stem}".strip()})
    for name, rows, fields in (("catalog.csv", catalogue, ["sku", "image", "category", "gender", "name"]),
                               ("queries.csv", queries, ["image", "sku"])):
        with open(out / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    known = sum(1 for q in queries if q["sku"])
    return {"catalog": out / "catalog.csv", "queries": out / "queries.csv", "catalogue_images": len(catalogue),
            "distractors": len(distractors), "queries_in": known, "queries_out": len(queries) - known}
