"""``manage.py benchmark`` at a vector size other than the active embedder's."""
from __future__ import annotations

import json

import pytest
from django.core.management import call_command


@pytest.mark.django_db(transaction=True)
def test_search_benchmark_at_another_size(tmp_path):
    # given the shipped 768-d embedder active, when benchmarking the search with 1280-d vectors
    out = tmp_path / "bench.json"
    call_command("benchmark", "--catalog-size", "400", "--queries", "5", "--search-only", "--dimension", "1280",
                 "--ef-search", "40", "--json", str(out), verbosity=0, stdout=open(tmp_path / "stdout", "w"))
    result = json.loads(out.read_text())
    # then a stand-in version's 1280-d rows are searched (400 rows are scanned, not walked: the planner's
    # choice of graph is tested in test_matching_search), and nothing of another size is in the way
    assert result["dimension"] == 1280 and result["model_versions"]["search"] == "synthetic-1280d"
    plans = result["search_plan"] + result["filtered_search_plan"]
    assert not [name for name in plans if any(size in name for size in ("256", "512", "768"))]
    assert result["search_recall@10"] >= 0.9 and result["filtered_search_recall@10"] == 1.0
    assert result["search_rows_min"] == 10
    assert set(result["ef_search_sweep"]) == {"40"} and "match_ms_p50" not in result
    # and the figures say which machine they were measured on
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu_capability"]
    assert isinstance(result["machine"]["native_bfloat16"], bool)
