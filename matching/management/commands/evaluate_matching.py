"""``manage.py evaluate_matching --catalog CATALOG.csv --queries QUERIES.csv [--json OUT.json]`` (DESIGN §5)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand
from tqdm import tqdm

from matching import evaluation, services
from matching.throwaway import throwaway_database
from segmentation import METHODS


class Command(BaseCommand):
    help = "Import a catalogue into a throwaway database, match query photos against it, print retrieval metrics."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--catalog", type=Path, required=True, help="CSV: sku,image,category,gender,name")
        parser.add_argument("--queries", type=Path, required=True, help="CSV: image,sku (empty sku: not in catalogue)")
        parser.add_argument("--json", type=Path, help="Also write the JSON object here.")
        parser.add_argument("--no-segmentation", action="store_true", help="Match whole photos (no cut-out).")
        parser.add_argument("--segmentation-method", default="auto", choices=METHODS,
                            help="Segmentation method for the query photos (default: auto).")
        parser.add_argument("--single-garment", action="store_true",
                            help="One cut-out per photo instead of every garment found.")
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument("--records", type=Path,
                            help="Also write one CSV row per query: rank of the right SKU, top score, margin, "
                                 "decision and every candidate's score.")
        parser.add_argument("--compare", type=Path, metavar="RECORDS",
                            help="Another run's --records on the same queries: add 'paired', the queries only this "
                                 "run or only that one puts right first, with the exact McNemar p.")

    def handle(self, *args, **options) -> None:
        catalog, queries = options["catalog"].resolve(), options["queries"].resolve()
        evaluation.read_csv(catalog, ["sku", "image"])
        evaluation.read_csv(queries, ["image", "sku"])
        earlier = evaluation.records_read(options["compare"]) if options["compare"] else None
        segment = False if options["no_segmentation"] else options["segmentation_method"]
        quiet = options["verbosity"] < 1
        thresholds = evaluation.live_thresholds()
        with throwaway_database("eval") as database:
            if not quiet:
                print(f"throwaway database {database}", file=sys.stderr)
            evaluation.thresholds_apply(thresholds)
            with tqdm(desc="catalogue", unit="img", disable=quiet, file=sys.stderr) as bar:
                ingest = evaluation.catalogue_import(catalog, progress=lambda n: bar.update(n - bar.n))
            with tqdm(desc="queries", unit="q", disable=quiet, file=sys.stderr) as bar:
                records = evaluation.run_queries(
                    queries, segment=segment, garments=not options["single_garment"], k=options["k"],
                    progress=lambda n: bar.update(n - bar.n),
                )
            summary = evaluation.summarise(records, ingest=ingest, model=services.embedding_model_active(),
                                           segment=segment)
        if earlier is not None:
            paired = evaluation.paired_first(records, earlier)
            summary["paired"] = {"this_only_first": paired["candidate_only_first"],
                                 "compared_only_first": paired["active_only_first"], "mcnemar_p": paired["mcnemar_p"],
                                 "compared_records": str(options["compare"])}
        if options["records"]:
            evaluation.records_write(records, options["records"])
        text = json.dumps(summary, indent=2)
        if options["json"]:
            options["json"].parent.mkdir(parents=True, exist_ok=True)
            options["json"].write_text(text + "\n")
        self.stdout.write(text)
