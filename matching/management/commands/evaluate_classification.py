"""``manage.py evaluate_classification --train TRAIN.csv --test TEST.csv [--json OUT.json]`` (DESIGN §5)."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand
from django.test.utils import override_settings
from tqdm import tqdm

from matching import classification_evaluation
from matching.heads import HeadConfig
from matching.throwaway import throwaway_database


class Command(BaseCommand):
    help = ("Load TRAIN's photos as the catalogue of a throwaway database, classify TEST by kNN voting, train the "
            "gender and kind heads, classify TEST again; print accuracy, per-class recall and latency as JSON.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--train", type=Path, required=True, help="CSV: image,gender,kind")
        parser.add_argument("--test", type=Path, required=True, help="CSV: image,gender,kind (empty: not scored)")
        parser.add_argument("--json", type=Path, help="Also write the JSON object here.")
        parser.add_argument("--test-view", default="auto", choices=classification_evaluation.VIEWS,
                            help="How TEST photos are seen: catalogue view, query cut-out, or auto (white studio "
                                 "background: catalogue view, else cut-out).")
        parser.add_argument("--segmentation-method", default="auto", choices=["auto", "grabcut", "tiramisu"],
                            help="Segmentation for query cut-outs (default: auto).")
        parser.add_argument("--hidden", type=int, default=HeadConfig().hidden, help="Head hidden units (0: linear).")

    def handle(self, *args, **options) -> None:
        train, test = options["train"].resolve(), options["test"].resolve()
        classification_evaluation.read_labelled(train)
        classification_evaluation.read_labelled(test)
        quiet = options["verbosity"] < 1
        bars: dict[str, tqdm] = {}

        def progress(stage: str, n: int) -> None:
            bar = bars.setdefault(stage, tqdm(desc=stage, unit="img", disable=quiet, file=sys.stderr))
            bar.update(n - bar.n)

        # Heads trained here are throwaway too: their weights go to a temporary folder, not the trained dir.
        with (throwaway_database("eval") as database, tempfile.TemporaryDirectory(prefix="eval-heads-") as heads,
              override_settings(STOCKMATCH_HEADS_DIR=heads)):
            if not quiet:
                print(f"throwaway database {database}", file=sys.stderr)
            summary = classification_evaluation.evaluate(
                train, test, view=options["test_view"], segment=options["segmentation_method"],
                config=HeadConfig(hidden=options["hidden"]), progress=progress,
            )
        for bar in bars.values():
            bar.close()
        text = json.dumps(summary, indent=2)
        if options["json"]:
            options["json"].parent.mkdir(parents=True, exist_ok=True)
            options["json"].write_text(text + "\n")
        self.stdout.write(text)
