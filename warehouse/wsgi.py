import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warehouse.settings")
application = get_wsgi_application()


def _warm_up() -> None:
    """Load the models before this process takes its first request (matching/warmup.py)."""
    from matching.warmup import warm_up_process

    warm_up_process("web")


_warm_up()
