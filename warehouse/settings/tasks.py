"""Celery: a real broker when CELERY_BROKER_URL is set, in-process eager execution otherwise."""
from .env import env_int, env_str
from .intake import STOCKMATCH_SNAPSHOT_SWEEP_SECONDS

_broker = env_str("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not _broker
CELERY_BROKER_URL = _broker or "memory://"
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", _broker or "cache+memory://")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is redelivered, not lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Fail fast when the broker is down: an upload keeps its photo and the sweep queues it later.
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECTION_TIMEOUT", 2)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    # Redis gives an unacknowledged message (its worker was killed) to another worker after this; no task
    # outlives the hard time limit, so a live one is never handed out twice. The intake sweep is faster.
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 60,
}

# Run with `celery -A warehouse beat`: takes over snapshots whose worker died (their lease ran out) and
# queues photos whose message was lost. Each worker also sweeps when it starts.
CELERY_BEAT_SCHEDULE = {
    "intake-sweep-stale-snapshots": {
        "task": "warehouse.sweep_stale_snapshots", "schedule": float(STOCKMATCH_SNAPSHOT_SWEEP_SECONDS),
    },
}

# Scheduled embedder retraining, off by default (matching.training.schedule; settings.MATCHING["RETRAIN"]).
_retrain_hours = env_int("STOCKMATCH_RETRAIN_EVERY_HOURS", 0)
if _retrain_hours > 0:
    CELERY_BEAT_SCHEDULE["matching-retrain-embedder"] = {
        "task": "matching.tasks.retrain_embedder", "schedule": _retrain_hours * 3600.0,
        "options": {"time_limit": 3 * 3600, "soft_time_limit": 3 * 3600 - 60},
    }

# Catalogue cleanup scans (every other knob and its default: catalog/cleanup/conf.py). A full scan shares its
# photo signatures and photo checks out to the workers in chunks of these sizes.
CLEANUP = {
    "SIGNATURE_CHUNK": env_int("STOCKMATCH_CLEANUP_SIGNATURE_CHUNK", 1000),
    "PHOTO_CHECK_CHUNK": env_int("STOCKMATCH_CLEANUP_PHOTO_CHECK_CHUNK", 2000),
}
