"""Celery: a real broker when CELERY_BROKER_URL is set, in-process eager execution otherwise."""
from .env import env_int, env_str

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

# Run with `celery -A warehouse beat`: picks up snapshots whose worker died mid-task.
CELERY_BEAT_SCHEDULE = {
    "intake-sweep-stale-snapshots": {"task": "warehouse.sweep_stale_snapshots", "schedule": 300.0},
}

# Scheduled embedder retraining, off by default (matching.training.schedule; settings.MATCHING["RETRAIN"]).
_retrain_hours = env_int("STOCKMATCH_RETRAIN_EVERY_HOURS", 0)
if _retrain_hours > 0:
    CELERY_BEAT_SCHEDULE["matching-retrain-embedder"] = {
        "task": "matching.tasks.retrain_embedder", "schedule": _retrain_hours * 3600.0,
        "options": {"time_limit": 3 * 3600, "soft_time_limit": 3 * 3600 - 60},
    }
