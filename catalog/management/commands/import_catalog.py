from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.importing import RowError, catalog_import, count_rows


class Command(BaseCommand):
    help = "Import a catalogue CSV (sku,image,category,gender,name[,price,size,stock,brand,colour]). Idempotent."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("csv", type=Path)
        parser.add_argument("--synthetic", action="store_true", help="Mark the imported rows as synthetic demo data.")
        parser.add_argument("--strict", action="store_true", help="Exit with an error when any row was bad.")

    def handle(self, *args, csv: Path, synthetic: bool, strict: bool, **options) -> None:
        if not csv.is_file():
            raise CommandError(f"{csv}: no such file")
        total = count_rows(csv)
        with tqdm(total=total, unit="row", desc="import", disable=options["verbosity"] == 0) as bar:
            try:
                report = catalog_import(csv_path=csv, is_synthetic=synthetic, on_row=lambda: bar.update(1))
            except RowError as exc:
                raise CommandError(str(exc)) from exc
        for line, reason in report.errors:
            self.stderr.write(f"line {line}: {reason}")
        self.stdout.write(report.summary())
        if strict and report.errors:
            raise CommandError(f"{len(report.errors)} bad rows")
