from celery import shared_task

from .services import shortlists_purge


@shared_task(name="mirror.purge_shortlists")
def purge_shortlists() -> int:
    return shortlists_purge()
