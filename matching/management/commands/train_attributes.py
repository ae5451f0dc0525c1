"""``manage.py train_attributes --labels CSV [--labels CSV ...]``: the heads' appearance tail (docs/matching.md).

Fine-tunes a tail of the ImageNet front on labelled photos (``image,gender,kind`` CSVs, the format of
``evaluate_classification``) to carry garment kind and gender; the heads then read its vector of the views beside
the matching embedding (``MATCHING["CLASSIFY_APPEARANCE"] = "attributes"``). The shipped file is reproduced by
the command recorded in its sidecar (``models/attributes/``).

``--join A.pt B.pt --input-size 240 --out C.pt`` puts trained files of different backbones side by side in one file
instead of training (the shipped file: a Lite1 tail and two Lite2 tails, served at the matching embedder's 240 px so
that the mirror runs the Lite1 part on the matching pass's front; docs/matching.md, "Lite1 and Lite2 tails side by
side" and "A second Lite2 tail beside them").
A joined file may itself be a member: its tails join the others, so a new tail joins the shipped file without the
member files it was made of.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from matching import conf
from matching.training import network
from matching.training.attributes import AttributeConfig, read_labelled_csv, train
from matching.training.trainer import sidecar_record_command


class Command(BaseCommand):
    help = "Fine-tune the appearance tail the classification heads read (garment kind and gender) on labelled photos."

    def add_arguments(self, parser) -> None:
        defaults = AttributeConfig(out=Path(), work_dir=Path())
        parser.add_argument("--labels", action="append", default=[], type=Path,
                            help="image,gender,kind CSV, image paths relative to it (repeatable; required to train)")
        parser.add_argument("--join", nargs="+", type=Path, default=None, metavar="WEIGHTS",
                            help="instead of training: put trained appearance files of different backbones side by "
                                 "side in one file at --out (a joined file brings each of its tails)")
        parser.add_argument("--input-size", type=int, default=None,
                            help="with --join: the size the joined file is served at, one of its parts' own (default: "
                                 "the largest). The matching embedder's size lets the mirror run the part of that "
                                 "size on the matching pass's front (docs/mirror.md)")
        parser.add_argument("--out", type=Path, default=None, help="weights file (default under the trained dir)")
        parser.add_argument("--work-dir", type=Path, default=None, help="view cache and checkpoints (resumable)")
        parser.add_argument("--dimension", type=int, default=defaults.dimension)
        parser.add_argument("--backbone", default=defaults.backbone, choices=sorted(network.BACKBONES),
                            help="ImageNet backbone whose tail is fine-tuned (its weights ship in a registry package)")
        parser.add_argument("--split", type=int, default=None,
                            help="first fine-tuned block (the blocks before it stay ImageNet's, cached; default: the "
                                 "backbone's stride-32 stage, Lite0's block 11 of 16)")
        parser.add_argument("--epochs", type=int, default=defaults.epochs)
        parser.add_argument("--views", type=int, default=defaults.views,
                            help="random variations per photo besides its two served views")
        parser.add_argument("--time-budget", type=float, default=60.0, help="minutes of wall time, caching included")
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--threads", type=int, default=None)
        parser.add_argument("--min-photos", type=int, default=100, help="refuse to train on fewer labelled photos")

    def handle(self, *args, **options) -> None:
        if options["join"]:
            self._join(options["join"], options)
            return
        if not options["labels"]:
            raise CommandError("--labels is required to train (or --join trained files).")
        photos = []
        for path in options["labels"]:
            if not path.exists():
                raise CommandError(f"{path} does not exist.")
            try:
                photos += read_labelled_csv(path)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        if len(photos) < options["min_photos"]:
            raise CommandError(f"Only {len(photos)} labelled photo(s); at least {options['min_photos']} are needed.")
        blocks = network.backbone_named(options["backbone"]).blocks
        if options["split"] is not None and not 1 <= options["split"] < blocks:
            raise CommandError(f"--split must be between 1 and {blocks - 1} (the first of {options['backbone']}'s "
                               f"{blocks} blocks to fine-tune).")
        if options["epochs"] < 1 or options["views"] < 0 or options["time_budget"] <= 0:
            raise CommandError("--epochs must be at least 1, --views not negative and --time-budget positive.")
        trained_dir = conf.trained_dir()
        config = AttributeConfig(
            out=options["out"] or trained_dir / "attributes" / f"{options['backbone']}-attr{options['dimension']}.pt",
            work_dir=options["work_dir"] or trained_dir / "attributes-work",
            dimension=options["dimension"], backbone=options["backbone"], split=options["split"],
            epochs=options["epochs"], views=options["views"],
            time_budget_s=options["time_budget"] * 60, seed=options["seed"],
            threads=options["threads"] or int(getattr(settings, "STOCKMATCH_TORCH_THREADS", 2)),
        )
        self.stdout.write(f"{len(photos)} labelled photos")
        result = train(photos, config, progress=self.stdout.write)
        sidecar_record_command(result.weights, "train_attributes")
        self.stdout.write(f"wrote {result.weights}: validation {json.dumps(result.metrics['validation'])}")

    def _join(self, members: list[Path], options: dict) -> None:
        from matching.training.trainer import side_by_side_with_sidecar

        if options["out"] is None:
            raise CommandError("--join needs --out (the joined file).")
        for path in members:
            if not path.exists():
                raise CommandError(f"{path} does not exist.")
        try:
            sidecar = side_by_side_with_sidecar(members, options["out"], input_size=options["input_size"])
        except (OSError, ValueError, KeyError) as error:
            raise CommandError(str(error)) from error
        sidecar_record_command(options["out"], "train_attributes")
        self.stdout.write(f"wrote {options['out']}: {sidecar['members']} tails of {len(sidecar['parts'])} backbones, "
                          f"{sidecar['dimension']}-d, served at {sidecar['preprocessing']['input_size']} px")
