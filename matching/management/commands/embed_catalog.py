"""``manage.py embed_catalog [--model VERSION]``: embed every catalogue image missing for a model version.

Idempotent and resumable: only images without an up-to-date vector are embedded, in batches.
"""
from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from matching import services
from matching.models import EmbeddingModel


class Command(BaseCommand):
    help = "Embed catalogue images that have no vector yet for the active (or given) model version."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--model", help="EmbeddingModel name (default: the active one).")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--switch", action="store_true", help="Activate the model once every image is embedded.")

    def handle(self, *args, **options) -> None:
        if options["model"]:
            model = EmbeddingModel.objects.filter(name=options["model"]).first()
            if model is None:
                known = ", ".join(EmbeddingModel.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No embedding model {options['model']!r}; known: {known}.")
        else:
            model = services.embedding_model_active()
        with tqdm(desc=model.name, unit="img", disable=options["verbosity"] < 1, file=sys.stderr) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            done = services.catalog_embed(model=model, batch_size=options["batch_size"], progress=progress)
        if options["switch"] and not model.active and not services.catalog_missing_ids(model=model):
            services.embedding_model_switch(model_id=model.pk)
        self.stdout.write(f"{model.name}: embedded {done} image(s).")
