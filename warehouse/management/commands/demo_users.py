import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from warehouse.roles import CATALOG, WAREHOUSE

DEMO_USERS = (
    ("admin", "superuser: Django admin and everything else", None),
    ("catalogue", "catalogue manager: Django admin for the catalogue", CATALOG),
    ("worker", "warehouse worker: phone intake at /intake/", WAREHOUSE),
)


class Command(BaseCommand):
    help = "Create the demo users (admin, catalogue, worker) once and print their logins."

    def handle(self, *args, **options) -> None:
        password_file = settings.DATA_DIR / "demo-password.txt"
        password_file.parent.mkdir(parents=True, exist_ok=True)
        if password_file.exists():
            password = password_file.read_text().strip()
        else:
            password = secrets.token_urlsafe(9)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        User = get_user_model()
        for username, _role_text, group in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.is_staff = group != WAREHOUSE
                user.is_superuser = group is None
                user.save()
            if group:
                user.groups.add(Group.objects.get(name=group))
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password kept in {password_file}):"))
        for username, role_text, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<10} / {password}   {role_text}")
        self.stdout.write("Open http://127.0.0.1:8000/admin/ (catalogue) or http://127.0.0.1:8000/intake/ on a phone.")
