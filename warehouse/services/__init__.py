"""Writes for warehouse intake, one job per module:

- ``snapshots``: uploads, another photo of the same item, fix the cut-out, discard, reopen;
- ``processing``: claim, segment and match, store the result or the failure, the stale sweep, retry;
- ``arrivals``: confirm the product (stock in), undo;
- ``drafts``: "not in catalogue" makes a draft product;
- ``state`` and ``errors``: status bookkeeping, row locks and the errors all of them raise.

Callers use the names re-exported here (``from warehouse import services``; ``services.snapshot_create``).
"""
from .arrivals import arrival_undo, clean_bin, clean_size, snapshot_confirm
from .drafts import draft_sku, guess_category_and_gender, snapshot_mark_new
from .errors import TRANSIENT_ERRORS, IntakeError, TransitionError
from .processing import (
    snapshot_fail,
    snapshot_process,
    snapshot_retry,
    snapshots_requeue_stale,
    snapshots_sweep_if_due,
)
from .snapshots import (
    clean_hints,
    clean_idempotency_key,
    snapshot_add_photo,
    snapshot_create,
    snapshot_discard,
    snapshot_fix,
    snapshot_reopen,
)
from .state import is_stale

__all__ = [
    "TRANSIENT_ERRORS",
    "IntakeError",
    "TransitionError",
    "arrival_undo",
    "clean_bin",
    "clean_hints",
    "clean_idempotency_key",
    "clean_size",
    "draft_sku",
    "guess_category_and_gender",
    "is_stale",
    "snapshot_add_photo",
    "snapshot_confirm",
    "snapshot_create",
    "snapshot_discard",
    "snapshot_fail",
    "snapshot_fix",
    "snapshot_mark_new",
    "snapshot_process",
    "snapshot_reopen",
    "snapshot_retry",
    "snapshots_requeue_stale",
    "snapshots_sweep_if_due",
]
