"""Every setting the warehouse app reads, with its default, in one place (all optional)."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def undo_window() -> timedelta:
    """How long the worker who booked an arrival can undo it."""
    return timedelta(minutes=float(getattr(settings, "STOCKMATCH_ARRIVAL_UNDO_MINUTES", 10)))


def stale_after() -> timedelta:
    return timedelta(minutes=float(getattr(settings, "STOCKMATCH_SNAPSHOT_STALE_MINUTES", 15)))


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
