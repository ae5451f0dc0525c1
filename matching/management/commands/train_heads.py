"""``manage.py train_heads [--model NAME] [--attribute gender|kind] [--camera-rows N] [--no-appearance] [--force]
[--json OUT.json]``."""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from matching import services
from matching.classification import ATTRIBUTES
from matching.heads import HeadConfig, heads_train
from matching.models import EmbeddingModel


class Command(BaseCommand):
    help = ("Train the gender and category-kind heads on the catalogue vectors of an embedding version and on "
            "labelled intake photos (camera examples); each is activated only when it beats the active head "
            "(or kNN voting) on held-out products.")

    def add_arguments(self, parser) -> None:
        defaults = HeadConfig()
        parser.add_argument("--model", help="Embedding model version name (default: the active one).")
        parser.add_argument("--attribute", action="append", choices=ATTRIBUTES,
                            help="Train only this head (repeatable; default: both).")
        parser.add_argument("--hidden", type=int, default=defaults.hidden, help="Hidden units; 0 for a linear head.")
        parser.add_argument("--epochs", type=int, default=defaults.epochs)
        parser.add_argument("--val-share", type=float, default=defaults.val_share,
                            help="Share of products held out to judge the new head against the current one.")
        parser.add_argument("--camera-rows", type=int, default=defaults.camera_rows,
                            help="Newest labelled intake photos trained on beside the catalogue (0: catalogue only).")
        parser.add_argument("--no-appearance", action="store_true",
                            help="Heads read the embedding alone, not also the appearance embedder's vector "
                                 "(MATCHING['CLASSIFY_APPEARANCE']).")
        parser.add_argument("--force", action="store_true", help="Activate the new heads even when not better.")
        parser.add_argument("--json", type=Path, help="Also write the report here.")

    def handle(self, *args, **options) -> None:
        if options["model"]:
            model = EmbeddingModel.objects.filter(name=options["model"]).first()
            if model is None:
                names = ", ".join(EmbeddingModel.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No embedding model {options['model']!r}; known: {names}.")
        else:
            model = services.embedding_model_active()
        if not 0 < options["val_share"] < 1:
            raise CommandError("--val-share must be between 0 and 1.")
        if options["camera_rows"] < 0:
            raise CommandError("--camera-rows must not be negative.")
        config = HeadConfig(hidden=options["hidden"], epochs=options["epochs"], val_share=options["val_share"],
                            camera_rows=options["camera_rows"], appearance=not options["no_appearance"])
        reports = heads_train(model=model, config=config, attributes=tuple(options["attribute"] or ATTRIBUTES),
                              force=options["force"])
        text = json.dumps({"embedding_model": model.name, "heads": [r.to_dict() for r in reports]}, indent=2)
        if options["json"]:
            options["json"].parent.mkdir(parents=True, exist_ok=True)
            options["json"].write_text(text + "\n")
        self.stdout.write(text)
