"""Models loaded when a process starts, so that the first shopper or worker waits no longer than the next.

A cold process loads the segmenter, the embedders' runtimes, the face detector and the classification heads on its
first request: the first mirror capture after a server restart took 5.3 s against 0.23-0.32 s for the next ones
(docs/mirror.md). ``warm_up`` does that work before the first request, on a synthetic frame, through the same calls
a request makes. It never raises: a process that cannot warm up (no database yet, a model file missing) starts
anyway and loads lazily as before.

Which parts a process warms (``parts_to_warm``): a web process imports its views, and warms the mirror while a mirror
device key is valid and intake matching when tasks run in-process (no broker); a Celery worker process warms intake
matching.
``STOCKMATCH_WARM_UP=0`` turns it off.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

INTAKE, MIRROR, URLS = "intake", "mirror", "urls"


def synthetic_frame(size: tuple[int, int] = (720, 1280)) -> Image.Image:
    """A portrait camera frame: a plain wall and a garment-shaped block, enough for every stage to run."""
    frame = Image.new("RGB", size, (214, 210, 200))
    width, height = size
    draw = ImageDraw.Draw(frame)
    draw.polygon([(width * 0.3, height * 0.3), (width * 0.7, height * 0.3), (width * 0.78, height * 0.72),
                  (width * 0.22, height * 0.72)], fill=(38, 64, 120))
    return frame


def _warm_urls(frame: Image.Image) -> None:
    """Import every view and API module: Django loads the URLconf on a server's first request (runserver's system
    checks load it at start, gunicorn's workers do not)."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the property imports them


def _warm_intake(frame: Image.Image) -> None:
    from .services import match_image

    match_image(frame, segment="auto")


def _warm_mirror(frame: Image.Image) -> None:
    from segmentation import cut_out_garments

    from .classification import classify_vectors
    from .mirror.people import faces_find
    from .mirror.services import SHOPPABLE
    from .services import embedding_model_active, match_image

    faces_find(frame)
    cut_out_garments(frame)
    result = match_image(frame, segment=False, filters=SHOPPABLE, k=8, appearance=True)
    classify_vectors(result.vectors, model=embedding_model_active(), views=result.views, appearance=result.appearance)


WARMERS: dict[str, Callable[[Image.Image], None]] = {URLS: _warm_urls, INTAKE: _warm_intake, MIRROR: _warm_mirror}


def warm_up(parts: Iterable[str]) -> dict[str, float]:
    """Run each part once on a synthetic frame; seconds per part that warmed (a failed part is logged, not raised)."""
    frame = synthetic_frame()
    seconds: dict[str, float] = {}
    for part in parts:
        tick = time.perf_counter()
        try:
            WARMERS[part](frame)
        except Exception as exc:  # noqa: BLE001 - best effort: the process serves anyway and loads on first use
            log.warning("warm-up of %s failed, its models load on first use: %s", part, exc)
            continue
        seconds[part] = round(time.perf_counter() - tick, 2)
    if seconds:
        log.info("warmed up %s", ", ".join(f"{part} in {value:.1f} s" for part, value in seconds.items()))
    return seconds


def parts_to_warm(process: str) -> list[str]:
    """What a "web" or "worker" process serves; nothing when ``STOCKMATCH_WARM_UP`` is off."""
    if not getattr(settings, "STOCKMATCH_WARM_UP", True):
        return []
    if process == "worker":
        return [INTAKE]
    parts = [URLS] + ([INTAKE] if settings.CELERY_TASK_ALWAYS_EAGER else [])
    if _mirror_in_use():
        parts.append(MIRROR)
    return parts


def _mirror_in_use() -> bool:
    from django.db import DatabaseError

    from .mirror.models import MirrorKey

    try:
        return MirrorKey.objects.filter(revoked=False).exists()
    except DatabaseError as exc:  # not migrated yet: nothing to warm for
        log.warning("mirror keys unavailable (%s)", exc)
        return False


def warm_up_process(process: str) -> dict[str, float]:
    """Warm what a starting "web" or "worker" process serves, then close the database connections it opened (the
    thread that starts a process serves no request)."""
    from django.db import connections

    try:
        return warm_up(parts_to_warm(process))
    finally:
        connections.close_all()
