"""Copy a trained segmenter into models/segmenter/ (committed with the code) with its JSON sidecar."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from segmentation import conf


class Command(BaseCommand):
    help = "Ship a SegmenterModel version (or a weights file) as the default weights of a fresh install."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--segmenter", dest="version_name", default=None, help="SegmenterModel name")
        parser.add_argument("--weights", default=None, help="or a weights .pt written by train_segmenter")
        parser.add_argument("--name", default=None, help="version name recorded for a --weights file")
        parser.add_argument("--metrics", default=None, help="JSON file with metrics to record (e.g. evaluations)")
        parser.add_argument(
            "--person-min-share", type=float, default=None,
            help="skin + hair share from which a person is seen with this network (bench/person_share.py)",
        )

    def handle(self, *args, **opts) -> None:
        from segmentation.models import SegmenterModel
        from segmentation.versions import shipped_write
        from segmentation.weights import resolve_path

        if opts["version_name"]:
            row = SegmenterModel.objects.filter(name=opts["version_name"]).first()
            if row is None:
                raise CommandError(f"No SegmenterModel named {opts['version_name']!r}")
            source, name, metrics, training = resolve_path(row.weights_path), row.name, row.metrics, row.training_data
        elif opts["weights"]:
            source = Path(opts["weights"])
            name, metrics, training = opts["name"] or source.stem, {}, {}
        else:
            raise CommandError("Pass --segmenter NAME or --weights FILE")
        if opts["metrics"]:
            metrics = {**metrics, **json.loads(Path(opts["metrics"]).read_text())}
        sidecar = shipped_write(
            source, version=name, metrics=metrics, training_data=training, person_min_share=opts["person_min_share"]
        )
        self.stdout.write(
            json.dumps({"shipped": sidecar["version"], "sha256": sidecar["sha256"], "dir": str(conf.shipped_dir())})
        )
