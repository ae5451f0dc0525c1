"""The Celery app, configured from Django settings (``CELERY_*``)."""
import os
import threading

from celery import Celery
from celery.signals import worker_process_init, worker_ready

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


@worker_process_init.connect
def warm_up_pool_process(**kwargs: object) -> None:
    """A prefork pool process loads its models beside its first task rather than inside it. In a thread: the pool
    gives a starting process a few seconds (``worker_proc_alive_timeout``) before it counts it as failed."""
    _warm_up_in_background()


@worker_ready.connect
def warm_up_solo_worker(sender: object = None, **kwargs: object) -> None:
    """A solo or threads pool runs tasks in the worker's own process (a prefork parent runs none)."""
    if type(getattr(sender, "pool", None)).__module__ != "celery.concurrency.prefork":
        _warm_up_in_background()


def _warm_up_in_background() -> None:
    from matching.warmup import warm_up_process

    threading.Thread(target=warm_up_process, args=("worker",), name="warm-up", daemon=True).start()
