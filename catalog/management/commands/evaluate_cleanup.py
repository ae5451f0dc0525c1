"""``manage.py evaluate_cleanup --catalog CATALOG.csv [--json OUT.json] [--heads]`` (DESIGN §5)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand
from tqdm import tqdm

from catalog.cleanup.evaluation import cleanup_evaluate
from matching.evaluation import read_csv
from matching.throwaway import throwaway_database


class Command(BaseCommand):
    help = "Load a catalogue into a throwaway database, run every cleanup scan, print the findings as JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--catalog", type=Path, required=True, help="CSV: sku,image,category,gender,name")
        parser.add_argument("--json", type=Path, help="Also write the JSON object here.")
        parser.add_argument("--heads", action="store_true",
                            help="Train and activate gender and kind heads on the loaded catalogue first (as "
                                 "`train_heads --force`), so the label scan asks them beside the neighbours.")

    def handle(self, *args, **options) -> None:
        catalog = options["catalog"].resolve()
        read_csv(catalog, ["sku", "image"])  # a missing file or column fails before any database work
        quiet = options["verbosity"] < 1
        with throwaway_database("cleanup") as database:
            if not quiet:
                print(f"throwaway database {database}", file=sys.stderr)
            with tqdm(desc="catalogue", unit="img", disable=quiet, file=sys.stderr) as bar:
                report = cleanup_evaluate(catalog, progress=lambda n: bar.update(n - bar.n),
                                          heads=options["heads"])
        text = json.dumps(report, indent=2)
        if options["json"]:
            options["json"].parent.mkdir(parents=True, exist_ok=True)
            options["json"].write_text(text + "\n")
        self.stdout.write(text)
