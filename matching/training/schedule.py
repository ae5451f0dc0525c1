"""Scheduled retraining: train a candidate when enough new labelled data arrived, promote it only if better.

Off by default: ``STOCKMATCH_RETRAIN_EVERY_HOURS`` adds the Celery beat entry (or run
``manage.py train_embedder --promote`` from cron). New data is counted as labelled groups from this
installation (confirmed snapshots, review decisions) beyond those the active version was trained with.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .. import conf, services
from . import data

logger = logging.getLogger(__name__)


def labelled_groups_from_installation() -> int:
    return sum(1 for group in data.training_groups(use_database=True) if group.source != "catalogue")


def embedder_retrain_if_due() -> dict:
    """Train and judge a candidate when at least ``MIN_NEW_GROUPS`` new labelled groups exist; else nothing."""
    conf_ = conf.retrain()
    active = services.embedding_model_active()
    seen = int(((active.metrics or {}).get("training") or {}).get("installation_groups", 0))
    now = labelled_groups_from_installation()
    if now - seen < int(conf_["MIN_NEW_GROUPS"]):
        return {"trained": False, "reason": f"{now - seen} new labelled group(s); {conf_['MIN_NEW_GROUPS']} needed"}
    from .promotion import embedder_promote, embedder_register
    from .trainer import TrainConfig, train

    pair_files = [Path(p) for p in conf_["PAIR_FILES"]]
    groups = data.training_groups(pair_files=pair_files, photo_csvs=[Path(p) for p in conf_["PHOTO_CSVS"]])
    validation = data.training_groups(pair_files=pair_files, use_database=False, splits=("validation",))
    trained_dir = conf.trained_dir()
    config = TrainConfig(out=trained_dir / "embedder" / "scheduled.pt", work_dir=trained_dir / "embedder-work",
                         time_budget_s=float(conf_["TIME_BUDGET_MINUTES"]) * 60)
    result = train(groups, validation, config)
    model = embedder_register(weights=result.weights)
    model.metrics = {**model.metrics, "training": {**model.metrics.get("training", {}), "installation_groups": now}}
    model.save(update_fields=["metrics"])
    verdict = embedder_promote(model=model, pair_files=pair_files) if pair_files else {
        "promoted": False, "reason": "no pair file configured to judge on"}
    return {"trained": True, "model": model.name, **verdict}
