"""Train a segmentation network and record it as a SegmenterModel version."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from segmentation import conf
from segmentation.classes import CLASSES
from segmentation.models import SegmentationExample
from segmentation.nets import ARCHITECTURES


def _named_numbers(text: str, option: str, form: str) -> dict[str, float]:
    """``a=1,b=2.5`` -> {"a": 1.0, "b": 2.5}; a malformed list is a CommandError naming ``option``."""
    try:
        return {name.strip(): float(value) for name, value in (part.split("=") for part in text.split(","))}
    except ValueError as exc:
        raise CommandError(f"{option}: expected {form},... ({exc})") from exc


class Command(BaseCommand):
    help = "Train the segmenter (resumable); the new version becomes active only when it beats the active one."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--arch", default="tiramisu_light", help=f"one of: {', '.join(sorted(ARCHITECTURES))}")
        parser.add_argument("--epochs", type=int, default=30)
        parser.add_argument("--max-minutes", type=float, default=60.0)
        parser.add_argument("--steps-per-epoch", type=int, default=100)
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--size", type=int, default=conf.working_size(), help="working size (long side, px)")
        parser.add_argument("--crop", type=int, default=None, help="training crop (default 0.8 x size)")
        parser.add_argument("--lr", type=float, default=2e-3)
        parser.add_argument("--threads", type=int, default=1, help="torch threads (1 leaves a core free)")
        parser.add_argument("--data", default=None, help="folder with ccp-masks/, catalog-photos/, phone-photos/")
        parser.add_argument("--name", default=None, help="run/version name (default arch-date-time)")
        parser.add_argument("--resume", action="store_true", help="continue the latest run of --arch (or --name)")
        parser.add_argument("--activate", action="store_true", help="activate even when not better")
        parser.add_argument("--limit", type=int, default=None, help="use at most N photos per source (quick runs)")
        parser.add_argument("--catalog-limit", type=int, default=None, help="use at most N catalogue photos")
        parser.add_argument("--phone-limit", type=int, default=None, help="use at most N phone photos (backgrounds)")
        parser.add_argument("--val-composites", type=int, default=60)
        parser.add_argument(
            "--init-from", default=None, help="weights file to start from (e.g. models/segmenter/lite0_unet.pt)"
        )
        parser.add_argument("--no-class-balance", action="store_true", help="plain (unweighted) cross-entropy")
        parser.add_argument(
            "--mix", default=None, help="batch mix, e.g. ccp=0.6,composite=0.3,plain=0.1 (default 0.5/0.4/0.1)"
        )
        parser.add_argument(
            "--favour", default=None, help="draw labelled photos showing a class N times as often, e.g. full-body=3"
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts) -> None:
        from segmentation.data import examples_from_rows
        from segmentation.nets import UnknownArchitecture, config_for
        from segmentation.training import TrainConfig, train
        from segmentation.versions import active_version, segmenter_register, shipped_register
        from segmentation.weights import resolve_path

        try:
            config_for(opts["arch"])
        except UnknownArchitecture as exc:
            raise CommandError(str(exc)) from exc
        data_dir = opts["data"] or conf.default_data_dir()
        if data_dir is None or not Path(data_dir).exists():
            raise CommandError("No training data: pass --data DIR (with ccp-masks/, catalog-photos/, phone-photos/).")
        config = TrainConfig(
            arch=opts["arch"],
            epochs=opts["epochs"],
            max_minutes=opts["max_minutes"],
            steps_per_epoch=opts["steps_per_epoch"],
            batch_size=opts["batch_size"],
            size=opts["size"],
            crop=opts["crop"],
            lr=opts["lr"],
            threads=opts["threads"],
            data_dir=str(data_dir),
            work_dir=str(conf.work_dir()),
            name=opts["name"],
            resume=opts["resume"],
            ccp_limit=opts["limit"],
            catalog_limit=opts["catalog_limit"] or opts["limit"],
            phone_limit=opts["phone_limit"] or opts["limit"],
            val_composites=opts["val_composites"],
            init_from=opts["init_from"],
            class_balance=not opts["no_class_balance"],
            show_progress=not opts["no_progress"],
        )
        if opts["mix"]:
            config.mix = _named_numbers(opts["mix"], "--mix", "name=share")
            if not set(config.mix) <= {"ccp", "composite", "plain"} or sum(config.mix.values()) <= 0:
                raise CommandError("--mix: names are ccp, composite, plain with positive shares")
        if opts["favour"]:
            config.favour = _named_numbers(opts["favour"], "--favour", "class=factor")
            if not set(config.favour) <= set(CLASSES) or min(config.favour.values()) <= 0:
                raise CommandError(f"--favour: classes are {', '.join(CLASSES)} with positive factors")
        if opts["init_from"] and not Path(opts["init_from"]).exists():
            raise CommandError(f"--init-from: no such file {opts['init_from']}")
        shipped_register()
        current = active_version()
        baseline = resolve_path(current.weights_path) if current is not None else None
        extra = examples_from_rows(SegmentationExample.objects.all())
        result = train(config, extra_examples=extra, baseline_weights=baseline)
        metrics = result.metrics
        baseline_iou = metrics.get("baseline_val_iou")
        better = baseline_iou is None or metrics["val_iou"] > baseline_iou
        activate = bool(opts["activate"] or better)
        row = segmenter_register(
            name=result.name,
            arch=result.arch,
            weights_file=result.weights_path,
            model_config=result.model_config,
            metrics=metrics
            | {"epochs": result.epochs_done, "steps": result.steps_done, "minutes": round(result.minutes, 1)},
            training_data=result.data_summary,
            activate=activate,
        )
        summary = {
            "version": row.name,
            "active": row.active,
            "val_iou": round(metrics["val_iou"], 4),
            "baseline_version": current.name if current else None,
            "baseline_val_iou": None if baseline_iou is None else round(baseline_iou, 4),
            "epochs": result.epochs_done,
            "steps": result.steps_done,
            "minutes": round(result.minutes, 1),
            "weights": row.weights_path,
            "sha256": row.weights_sha256,
        }
        self.stdout.write(json.dumps(summary))
