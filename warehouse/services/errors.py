"""Errors the intake services raise for the worker to act on."""
from __future__ import annotations

from django.db import InterfaceError, OperationalError

from ..models import Snapshot, SnapshotStatus

# Errors worth another try later: storage or network hiccups, a database that went away.
# A missing original is not one of them (handled before these are re-raised).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, OperationalError, InterfaceError)


class IntakeError(Exception):
    """A request the worker can act on; ``message`` is shown to them as is."""

    status_code = 400

    def __init__(self, message: str, code: str = "invalid", status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        if status_code is not None:
            self.status_code = status_code


class TransitionError(IntakeError):
    """The snapshot is not in a state that allows this (usually: someone or something got there first)."""

    status_code = 409

    def __init__(self, snapshot: Snapshot, target: str, action: str) -> None:
        label = SnapshotStatus(snapshot.status).label.lower()
        super().__init__(f"Cannot {action}: this photo is {label}.", code="invalid_state")
        self.target = target

