"""The Celery app, configured from Django settings (``CELERY_*``)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warehouse.settings")

app = Celery("stockmatch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="stockmatch.ping")
def ping(value: int = 1) -> dict:
    """A tiny round trip that touches the database, used by health checks and the worker test."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT %s + 1", [value])
        (result,) = cursor.fetchone()
    return {"value": result, "pid": os.getpid()}
