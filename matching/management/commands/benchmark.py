"""``manage.py benchmark [--catalog-size N] [--json OUT.json]`` (DESIGN §5), in a throwaway database."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from matching import benchmarking, services
from matching.throwaway import throwaway_database
from segmentation import METHODS


class Command(BaseCommand):
    help = "Search, embedding, ingestion and end-to-end match timings on a throwaway synthetic catalogue."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--catalog-size", type=int, default=100_000)
        parser.add_argument("--json", type=Path)
        parser.add_argument("--queries", type=int, default=100, help="Search queries timed (each checked exactly).")
        parser.add_argument("--match-runs", type=int, default=20)
        parser.add_argument("--photos", type=int, default=128, help="Studio photos for the embedding figures.")
        parser.add_argument("--data", type=Path, default=Path(settings.BASE_DIR).parent / "shared" / "data")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--segmentation-method", default="auto", choices=METHODS,
                            help="Segmentation method for the end-to-end match figures.")

    def log(self, message: str) -> None:
        if self.verbosity >= 1:
            print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        size = options["catalog_size"]
        result: dict = {"catalog_size": size}
        with throwaway_database("bench"):
            model = services.embedding_model_active()
            self.log(f"loading {size} synthetic vectors and building the HNSW index")
            result["build"] = benchmarking.synthetic_catalogue(size, model_id=model.pk, seed=options["seed"],
                                                               progress=self.log)
            self.log(f"index built: {result['build']}; timing searches")
            result.update(benchmarking.search_figures(model_id=model.pk, queries=options["queries"],
                                                      seed=options["seed"]))
            result["ef_search_sweep"] = benchmarking.ef_search_sweep(model_id=model.pk, queries=options["queries"],
                                                                     seed=options["seed"])
            self.log("segmentation")
            result.update(benchmarking.segment_figures(options["data"]))
            self.log("embedding and ingestion")
            result.update(benchmarking.embed_figures(benchmarking.studio_photos(options["data"], options["photos"])))
            self.log("end-to-end match of a 12 MP JPEG")
            result.update(benchmarking.match_figures(benchmarking.phone_jpeg_12mp(options["data"]),
                                                     runs=options["match_runs"],
                                                     segment=options["segmentation_method"]))
            result["model_versions"] = {"embedder": model.name}
        text = json.dumps(result, indent=2)
        if options["json"]:
            options["json"].parent.mkdir(parents=True, exist_ok=True)
            options["json"].write_text(text + "\n")
        self.stdout.write(text)
