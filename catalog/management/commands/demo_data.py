import os
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.demo.build import default_snapshot_dir, demo_catalogue_build


class Command(BaseCommand):
    help = (
        "Create a synthetic demo catalogue (products, variants, studio photos, looks) and phone-like snapshots "
        "for match queries. Deterministic per --seed and idempotent. With --csv, import a real catalogue instead."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--products", type=int, default=240)
        parser.add_argument("--snapshots", type=int, default=40, help="Phone-like photos written for match queries.")
        parser.add_argument("--snapshot-dir", type=Path, default=None,
                            help="Where snapshots and snapshots.csv go (default: MEDIA_ROOT/demo/snapshots).")
        parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                            help="Processes rendering photos (1: render in this process).")
        parser.add_argument("--no-mistakes", action="store_true",
                            help="Leave out the planted catalogue mistakes (duplicates, wrong categories, bad photos)"
                                 " that give the cleanup screens something to find.")
        parser.add_argument("--csv", type=Path, default=None,
                            help="Load this real catalogue CSV through import_catalog instead of synthesising.")

    def handle(self, *args, seed: int, products: int, snapshots: int, snapshot_dir: Path | None, workers: int,
               csv: Path | None, **options) -> None:
        if csv is not None:
            call_command("import_catalog", str(csv), verbosity=options["verbosity"], stdout=self.stdout,
                         stderr=self.stderr)
            return
        if products < 1 or snapshots < 0:
            raise CommandError("--products must be at least 1 and --snapshots not negative")
        folder = snapshot_dir or default_snapshot_dir()
        with tqdm(total=products + snapshots, unit="item", desc="demo", disable=options["verbosity"] == 0) as bar:
            report = demo_catalogue_build(
                seed=seed, products=products, snapshots=snapshots, snapshot_dir=folder, workers=workers,
                progress=lambda: bar.update(1), mistakes=not options["no_mistakes"],
            )
        self.stdout.write(report.summary())
