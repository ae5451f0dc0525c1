"""Create a mirror device key from the command line and print the kiosk URL that installs it."""
from django.core.management.base import BaseCommand

from matching.mirror.services import mirror_key_create


class Command(BaseCommand):
    help = "Create a mirror device key (shown once) and print the kiosk URL to open on the mirror."

    def add_arguments(self, parser):
        parser.add_argument("name", help="e.g. 'Store 12 mirror 1'")
        parser.add_argument("--location", default="")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, name: str, location: str, base_url: str, **options):
        device, key = mirror_key_create(name=name, location=location)
        self.stdout.write(f"Mirror key {device.prefix} ({device.name}). Open once on the mirror:")
        self.stdout.write(f"  {base_url.rstrip('/')}/mirror/?key={key}")
