"""Score a segmentation method on a folder of photos and masks; prints one JSON object."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from segmentation.types import METHODS


class Command(BaseCommand):
    help = (
        "Evaluate segmentation: IMAGES/NAME.jpg|png against MASKS/NAME.png (255 = garment); with class maps "
        "(LABELS/NAME.png, or a labels/ folder beside MASKS) also per-class IoU and garments found. Read-only."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--images", required=True)
        parser.add_argument("--masks", required=True)
        parser.add_argument("--labels", default=None, help="class maps (default: labels/ beside --masks, if any)")
        parser.add_argument("--method", default="auto", choices=METHODS)
        parser.add_argument("--json", dest="json_out", default=None, help="also write the report here")

    def handle(self, *args, **opts) -> None:
        from segmentation.evaluation import evaluate_folder

        images, masks = Path(opts["images"]), Path(opts["masks"])
        for folder in (images, masks):
            if not folder.is_dir():
                raise CommandError(f"Not a folder: {folder}")
        labels = Path(opts["labels"]) if opts["labels"] else masks.parent / "labels"
        if opts["labels"] and not labels.is_dir():
            raise CommandError(f"Not a folder: {labels}")
        try:
            report = evaluate_folder(images, masks, opts["method"], labels if labels.is_dir() else None)
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        text = json.dumps(report)
        if opts["json_out"]:
            Path(opts["json_out"]).write_text(text + "\n")
        self.stdout.write(text)
