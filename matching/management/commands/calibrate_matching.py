"""``manage.py calibrate_matching [--model VERSION]``: fit the "in catalogue" threshold(s) of a model version.

Uses confirmed intake snapshots matched by that version when there are enough of them; otherwise an
evaluation set (``--catalog``/``--queries``, default ``var/eval`` from ``bench/build_eval_set.py``) run
in a throwaway database. Stores thresholds and expected precision/recall on the ``EmbeddingModel``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from matching import calibration, conf, evaluation, services
from matching.models import EmbeddingModel
from matching.throwaway import throwaway_database
from segmentation import METHODS

MIN_SNAPSHOT_PAIRS = 40


class Command(BaseCommand):
    help = "Fit and store the decision threshold(s) of an embedding model version."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        default = Path(settings.BASE_DIR) / "var" / "eval"
        parser.add_argument("--model", help="EmbeddingModel name (default: the active one).")
        parser.add_argument("--catalog", type=Path, default=default / "catalog.csv")
        parser.add_argument("--queries", type=Path, default=default / "queries.csv")
        parser.add_argument("--target-precision", type=float, default=None,
                            help="precision to reach (default MATCHING['TARGET_PRECISION'])")
        parser.add_argument("--confidence", type=float, default=None,
                            help="confidence to show it with (default MATCHING['PRECISION_CONFIDENCE'])")
        parser.add_argument("--no-segmentation", action="store_true")
        parser.add_argument("--segmentation-method", default="auto", choices=METHODS)
        parser.add_argument("--source", choices=["auto", "snapshots", "evaluation"], default="auto")

    def handle(self, *args, **options) -> None:
        model = self._model(options["model"])
        alpha = conf.open_set_alpha()
        pairs = calibration.pairs_from_snapshots(model, alpha=alpha) if options["source"] != "evaluation" else []
        source = f"{len(pairs)} intake snapshots"
        if options["source"] == "snapshots" and not pairs:
            raise CommandError(f"No decided snapshots were matched by {model.name}.")
        if options["source"] == "evaluation" or (options["source"] == "auto" and len(pairs) < MIN_SNAPSHOT_PAIRS):
            pairs, source = self._evaluation_pairs(model, options, alpha), f"evaluation set {options['queries']}"
        thresholds, metrics = calibration.calibrate(pairs, alpha=alpha, target_precision=options["target_precision"],
                                                    confidence=options["confidence"])
        model = EmbeddingModel.objects.get(pk=model.pk)
        calibration.model_calibration_store(model=model, thresholds=thresholds, metrics=metrics, source=source)
        self.stdout.write(json.dumps({"model": model.name, "source": source, "thresholds": thresholds,
                                      "metrics": metrics}, indent=2))

    def _model(self, name: str | None) -> EmbeddingModel:
        if not name:
            return services.embedding_model_active()
        model = EmbeddingModel.objects.filter(name=name).first()
        if model is None:
            known = ", ".join(EmbeddingModel.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"No embedding model {name!r}; known: {known}.")
        return model

    def _evaluation_pairs(self, model: EmbeddingModel, options, alpha: float) -> list[calibration.Pair]:  # noqa: ANN001
        catalog, queries = options["catalog"].resolve(), options["queries"].resolve()
        evaluation.read_csv(catalog, ["sku", "image"])
        evaluation.read_csv(queries, ["image", "sku"])
        quiet = options["verbosity"] < 1
        with throwaway_database("calib"):
            stand_in = services.embedding_model_for(embedder_name=model.embedder)
            services.embedding_model_switch(model_id=stand_in.pk)
            evaluation.catalogue_import(catalog)
            with tqdm(desc="queries", unit="q", disable=quiet, file=sys.stderr) as bar:
                segment = False if options["no_segmentation"] else options["segmentation_method"]
                records = evaluation.run_queries(queries, segment=segment, progress=lambda n: bar.update(n - bar.n))
        return calibration.pairs_from_records(records, alpha=alpha)
