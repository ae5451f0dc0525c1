"""``manage.py benchmark [--catalog-size N] [--json OUT.json]`` (DESIGN §5), in a throwaway database."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from matching import benchmarking, search, services
from matching.throwaway import throwaway_database
from segmentation import METHODS


class Command(BaseCommand):
    help = "Search, embedding, ingestion and end-to-end match timings on a throwaway synthetic catalogue."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--catalog-size", type=int, default=100_000)
        parser.add_argument("--json", type=Path)
        parser.add_argument("--queries", type=int, default=100, help="Search queries timed (each checked exactly).")
        parser.add_argument("--match-runs", type=int, default=20)
        parser.add_argument("--photos", type=int, default=256, help="Studio photos for embedding figures.")
        parser.add_argument("--data", type=Path, default=Path(settings.BASE_DIR).parent / "shared" / "data")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--segmentation-method", default="auto", choices=METHODS,
                            help="Segmentation method for the end-to-end match figures.")
        parser.add_argument("--dimension", type=int,
                            help="Size of the synthetic vectors (default: the active embedder's, as the catalogue "
                                 "stores them). Another size is searched under a stand-in model version, and the "
                                 "embedding and end-to-end figures (which need the real embedder) are skipped.")
        parser.add_argument("--search-only", action="store_true", help="Only the index build and search figures.")
        parser.add_argument("--m", type=int, help="HNSW m for this run (default: search.INDEXED_DIMENSIONS).")
        parser.add_argument("--ef-construction", type=int,
                            help="HNSW ef_construction for this run (default: search.INDEXED_DIMENSIONS).")
        parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 80, 120, 200],
                            help="hnsw.ef_search values of the unfiltered sweep.")

    def log(self, message: str) -> None:
        if self.verbosity >= 1:
            print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        size = options["catalog_size"]
        result: dict = {"catalog_size": size, "machine": benchmarking.machine()}
        with throwaway_database("bench"):
            model = services.embedding_model_active()
            dimension = options["dimension"] or model.dimension
            search_model = model if dimension == model.dimension else benchmarking.stand_in_model(dimension)
            result["dimension"] = dimension
            self.log(f"loading {size} synthetic {dimension}-d vectors and building the HNSW indexes")
            index_options = {key: options[key] for key in ("m", "ef_construction") if options[key]}
            result["build"] = benchmarking.synthetic_catalogue(
                size, model_id=search_model.pk, dimension=dimension, seed=options["seed"], progress=self.log,
                **index_options,
            )
            graph = search.INDEXED_DIMENSIONS.get(dimension)
            result["build"]["hnsw"] = ({"type": graph.type, "m": graph.m, "ef_construction": graph.ef_construction}
                                       | index_options if graph else "none: searched exactly")
            self.log(f"index built: {result['build']}; timing searches")
            common = {"model_id": search_model.pk, "dimension": dimension, "queries": options["queries"],
                      "seed": options["seed"]}
            result.update(benchmarking.search_figures(**common))
            result["ef_search_sweep"] = benchmarking.ef_search_sweep(**common, values=tuple(options["ef_search"]))
            result["model_versions"] = {"embedder": model.name, "search": search_model.name}
            if options["search_only"] or search_model != model:
                result["skipped"] = "embedding, segmentation and end-to-end figures (--search-only or --dimension)"
            else:
                self.log("segmentation")
                result.update(benchmarking.segment_figures(options["data"]))
                self.log("embedding and ingestion")
                result.update(benchmarking.embed_figures(
                    benchmarking.studio_photos(options["data"], options["photos"])))
                self.log("end-to-end match of a 12 MP JPEG")
                result.update(benchmarking.match_figures(benchmarking.phone_jpeg_12mp(options["data"]),
                                                         runs=options["match_runs"],
                                                         segment=options["segmentation_method"]))
        text = json.dumps(result, indent=2)
        if options["json"]:
            options["json"].parent.mkdir(parents=True, exist_ok=True)
            options["json"].write_text(text + "\n")
        self.stdout.write(text)
