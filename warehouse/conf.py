"""Every setting the warehouse app reads, with its default, in one place (all optional)."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def undo_window() -> timedelta:
    """How long the worker who booked an arrival can undo it."""
    return timedelta(minutes=float(getattr(settings, "STOCKMATCH_ARRIVAL_UNDO_MINUTES", 10)))


def stale_after() -> timedelta:
    """A photo still ``received`` (never started: the broker was down, the message lost) after this is queued again."""
    return timedelta(minutes=float(getattr(settings, "STOCKMATCH_SNAPSHOT_STALE_MINUTES", 2)))


def lease_duration() -> timedelta:
    """How long a processing claim lives without being renewed; a worker renews it every third of that."""
    return timedelta(seconds=max(float(getattr(settings, "STOCKMATCH_SNAPSHOT_LEASE_SECONDS", 20)), 3.0))


def sweep_interval() -> float:
    """Seconds between sweeps for dead runs and lost messages (Celery beat, and requests in in-process mode)."""
    return float(getattr(settings, "STOCKMATCH_SNAPSHOT_SWEEP_SECONDS", 30))


def max_attempts() -> int:
    return int(getattr(settings, "STOCKMATCH_SNAPSHOT_MAX_ATTEMPTS", 5))


def max_arrival_quantity() -> int:
    return int(getattr(settings, "STOCKMATCH_ARRIVAL_MAX_QUANTITY", 10_000))


def match_k() -> int:
    """Candidates kept per snapshot."""
    return int(getattr(settings, "STOCKMATCH_INTAKE_CANDIDATES", 10))


def soft_time_limit() -> int:
    return int(getattr(settings, "STOCKMATCH_SNAPSHOT_SOFT_TIME_LIMIT", 120))


def hard_time_limit() -> int:
    return int(getattr(settings, "STOCKMATCH_SNAPSHOT_TIME_LIMIT", soft_time_limit() + 30))


def min_image_side() -> int:
    """Photos narrower than this (in pixels, either side) cannot show a garment: refused at upload."""
    return int(getattr(settings, "STOCKMATCH_MIN_IMAGE_SIDE", 64))


def max_image_aspect() -> float:
    """Long side over short side above this (a strip, not a photo): refused at upload."""
    return float(getattr(settings, "STOCKMATCH_MAX_IMAGE_ASPECT", 6))
