"""evaluate_matching: the documented JSON, computed in a throwaway database that leaves live data alone."""
from __future__ import annotations

import csv
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from PIL import Image, ImageOps

from catalog.models import Product
from matching.models import EmbeddingModel, ProductEmbedding
from tests import factories

DOCUMENTED_KEYS = {"n_queries", "recall@1", "recall@5", "recall@10", "mrr", "open_set", "ingest_images_per_s",
                   "match_ms_p50", "match_ms_p95", "model_versions"}


def eval_set(shared_data, root) -> tuple:
    """Five catalogue SKUs (one with two views), three queries of them and two of unknown items."""
    with open(shared_data / "catalog-photos" / "labels.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["sub_category"] in {"Topwear", "Bottomwear", "Shoes"}][:7]
    (root / "cat").mkdir()
    (root / "q").mkdir()
    floor = Image.open(next((shared_data / "phone-photos" / "images").glob("*.jpg"))).convert("RGB")
    background = floor.crop((0, 0, floor.width, floor.height // 4)).resize((360, 480))
    with open(root / "catalog.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "image", "category", "gender", "name"])
        for n, row in enumerate(rows[:5]):
            Image.open(shared_data / "catalog-photos" / row["image"]).save(root / "cat" / f"{n}.jpg")
            writer.writerow([f"E-{n}", f"cat/{n}.jpg", row["article_type"], row["gender"], ""])
        ImageOps.mirror(Image.open(root / "cat" / "0.jpg")).save(root / "cat" / "0b.jpg")
        writer.writerow(["E-0", "cat/0b.jpg", "", "", ""])
    with open(root / "queries.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "sku"])
        for n, row in enumerate(rows[:3] + rows[5:7]):
            query = background.copy()
            query.paste(Image.open(shared_data / "catalog-photos" / row["image"]).resize((240, 240)), (60, 120))
            query.save(root / "q" / f"{n}.jpg")
            writer.writerow([f"q/{n}.jpg", f"E-{n}" if n < 3 else ""])
    return root / "catalog.csv", root / "queries.csv"


def database_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE 'eval\\_%%'")
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_evaluate_matching_prints_the_documented_json_and_leaves_live_data_alone(shared_data, tmp_path, capsys):
    # given a live catalogue with one product and its own model version
    live = factories.product(sku="LIVE-1")
    catalog_csv, queries_csv = eval_set(shared_data, tmp_path)
    # when evaluating
    out = tmp_path / "out" / "result.json"
    records = tmp_path / "out" / "records.csv"
    call_command("evaluate_matching", "--catalog", str(catalog_csv), "--queries", str(queries_csv),
                 "--json", str(out), "--no-segmentation", "--records", str(records), verbosity=1)
    # then one JSON object is printed and written, with the documented keys
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    throwaway = next(line.split()[-1] for line in captured.err.splitlines() if line.startswith("throwaway database"))
    assert printed == json.loads(out.read_text())
    assert DOCUMENTED_KEYS <= set(printed)
    assert printed["n_queries"] == 5 and printed["n_in_catalogue"] == 3 and printed["catalog_images"] == 6
    assert 0 <= printed["recall@1"] <= printed["recall@5"] <= printed["recall@10"] <= 1
    assert printed["recall@10"] == 1.0  # five products: every right answer is in the top ten
    assert 0 <= printed["open_set"] <= 1 and printed["match_ms_p50"] > 0
    assert printed["model_versions"]["embedder"].startswith("efficientnet-lite0")
    by_kind = printed["decisions_by_kind"]
    assert sum(row["queries"] for row in by_kind.values()) == 5
    assert sum(row["in_catalogue"] for row in by_kind.values()) == 3
    # and the live database is as it was: no evaluation products, vectors or versions, no database left over
    assert list(Product.objects.values_list("sku", flat=True)) == [live.sku]
    assert not ProductEmbedding.objects.exists() and not EmbeddingModel.objects.exists()
    assert throwaway.startswith("eval_") and throwaway not in database_names()
    # and --records wrote one row per query: the right SKU's rank agrees with its candidate list, best first
    with open(records, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    for row in rows:
        skus, scores = row["skus"].split(), [float(s) for s in row["scores"].split()]
        assert len(skus) == len(scores) == 5 and scores == sorted(scores, reverse=True)
        assert row["top_sku"] == skus[0] and float(row["top_score"]) == pytest.approx(scores[0])
        if row["sku"]:
            assert skus.index(row["sku"]) + 1 == int(row["rank"])
    # and --compare reads another run's records and counts, query by query, who alone put the right SKU first:
    # an earlier run whose record says every known query came second (its first places are this run's alone)
    earlier = tmp_path / "out" / "earlier.csv"

    def earlier_write(edited: list[dict]) -> None:
        with open(earlier, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(edited)

    earlier_write([{**row, "rank": "2" if row["sku"] else ""} for row in rows])
    call_command("evaluate_matching", "--catalog", str(catalog_csv), "--queries", str(queries_csv),
                 "--no-segmentation", "--compare", str(earlier), verbosity=0)
    paired = json.loads(capsys.readouterr().out)["paired"]
    first_here = sum(1 for row in rows if row["rank"] == "1")
    assert first_here and paired["this_only_first"] == first_here and paired["compared_only_first"] == 0
    assert 0 < paired["mcnemar_p"] <= 1
    # and a damaged records file is refused with its line before any work
    earlier_write([{**row, "top_score": "high" if n == 1 else row["top_score"]} for n, row in enumerate(rows)])
    with pytest.raises(CommandError, match="line 3"):
        call_command("evaluate_matching", "--catalog", str(catalog_csv), "--queries", str(queries_csv),
                     "--compare", str(earlier), verbosity=0)


def test_evaluate_matching_refuses_a_csv_without_the_columns(tmp_path):
    bad = tmp_path / "catalog.csv"
    bad.write_text("code,picture\nA,a.jpg\n")
    queries = tmp_path / "queries.csv"
    queries.write_text("image,sku\n")
    with pytest.raises(CommandError, match="sku"):
        call_command("evaluate_matching", "--catalog", str(bad), "--queries", str(queries))


def test_paired_first_counts_the_queries_only_one_version_puts_first():
    from matching.evaluation import QueryRecord, paired_first

    def record(image: str, sku: str | None, rank: int | None) -> QueryRecord:
        return QueryRecord(image=image, sku=sku, rank=rank, top_sku=None, top_score=0.0, margin=0.0, kind=None,
                           ms=0.0, accepted=False)

    # 9 queries only the active version gets first, 2 only the candidate, 5 both, 4 neither, 3 unknown items
    active = ([record(f"a{i}", "S", 1) for i in range(9)] + [record(f"c{i}", "S", 3) for i in range(2)]
              + [record(f"b{i}", "S", 1) for i in range(5)] + [record(f"n{i}", "S", None) for i in range(4)]
              + [record(f"u{i}", None, None) for i in range(3)])
    candidate = ([record(f"a{i}", "S", 2) for i in range(9)] + [record(f"c{i}", "S", 1) for i in range(2)]
                 + [record(f"b{i}", "S", 1) for i in range(5)] + [record(f"n{i}", "S", 7) for i in range(4)]
                 + [record(f"u{i}", None, None) for i in range(3)])
    split = paired_first(candidate, active)
    assert (split["candidate_only_first"], split["active_only_first"]) == (2, 9)
    assert split["mcnemar_p"] == pytest.approx(0.0654, abs=1e-4)  # 2 * P(X <= 2), X ~ Binomial(11, 1/2)
    assert paired_first(active, active) == {"candidate_only_first": 0, "active_only_first": 0, "mcnemar_p": 1.0}


def test_decisions_by_kind_count_the_wrong_answers_of_each_deciding_kind():
    from matching.evaluation import QueryRecord, decisions_by_kind

    def record(sku: str | None, top: str, kind: str | None, accepted: bool) -> QueryRecord:
        return QueryRecord(image="x", sku=sku, rank=1 if sku == top else None, top_sku=top, top_score=0.7, margin=0.1,
                           kind=kind, ms=1.0, accepted=accepted)

    table = decisions_by_kind([
        record("T1", "T1", "topwear", True),  # right
        record("T2", "T9", "topwear", True),  # another SKU: wrong
        record(None, "T3", "topwear", False),  # unknown, refused: right
        record(None, "B1", "bottomwear", True),  # unknown, accepted: wrong
        record("B2", "B2", "bottomwear", False),  # known, refused: no answer given
        record(None, "Z", None, False),  # nothing found
    ])
    assert table == {
        "": {"queries": 1, "in_catalogue": 0, "accepted": 0, "wrong": 0},
        "bottomwear": {"queries": 2, "in_catalogue": 1, "accepted": 1, "wrong": 1},
        "topwear": {"queries": 3, "in_catalogue": 2, "accepted": 2, "wrong": 1},
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_evaluation_catalogue_is_embedded_without_queueing_cleanup_scans(shared_data, tmp_path):
    from catalog.cleanup.models import ScanRun
    from catalog.services import product_image_add
    from matching import evaluation

    catalog_csv, _ = eval_set(shared_data, tmp_path)
    # when an evaluation imports its catalogue: every photo is embedded, and no incremental scan is queued
    ingest = evaluation.catalogue_import(catalog_csv)
    assert ingest["images"] == 6 and ingest["embedded"] == 6
    assert not ScanRun.objects.exists()
    # while a photo added the ordinary way still queues its product's scan
    product = Product.objects.get(sku="E-1")
    product_image_add(product=product, data=(tmp_path / "cat" / "0b.jpg").read_bytes(), filename="new.jpg",
                      role="alternate")
    assert list(ScanRun.objects.values_list("product_ids", flat=True)) == [[product.pk]]
