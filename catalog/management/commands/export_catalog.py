from pathlib import Path

from django.core.management.base import BaseCommand

from catalog.importing import catalog_export


class Command(BaseCommand):
    help = "Export the catalogue as CSV (the import format) with its images in an images/ folder beside it."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("csv", type=Path, nargs="?", default=Path("var/export/catalog.csv"))
        parser.add_argument("--status", action="append", help="Only products with this status (repeatable).")

    def handle(self, *args, csv: Path, status: list[str] | None, **options) -> None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        rows = catalog_export(csv_path=csv, statuses=tuple(status) if status else None)
        self.stdout.write(f"wrote {rows} rows to {csv}")
