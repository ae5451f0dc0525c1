"""Celery tasks: thin wrappers that take ids and call services."""
from __future__ import annotations

from celery import shared_task

from . import conf


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def embed_product_images(image_ids: list[int]) -> int:
    """Embed catalogue images into the active (and any building) model version, and cache their colours for the
    mirror's complete-the-look; skips finished work."""
    from .mirror.looks import photo_colours_cache
    from .services import images_embed, images_needing_embedding

    todo = images_needing_embedding(image_ids=image_ids)
    written = images_embed(image_ids=todo) if todo else 0
    photo_colours_cache(image_ids=image_ids)
    return written


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def build_embedding_model(model_id: int) -> str:
    """Re-embed the catalogue for a new model version a chunk at a time, then switch to it.

    Each run embeds at most ``MATCHING["BUILD_CHUNK"]`` images (well inside the task time limit) and
    queues the next run while images remain; the old version serves meanwhile.
    """
    from .models import EmbeddingModel
    from .services import embedding_model_build

    model = EmbeddingModel.objects.filter(pk=model_id).first()
    if model is None or model.active:
        return "nothing to do"
    model, remaining = embedding_model_build(model_id=model_id, limit=conf.build_chunk())
    if remaining:
        build_embedding_model.delay(model_id)
        return f"{remaining} image(s) to go"
    if model.active:  # switched: the old version's classification heads do not read the new vectors
        train_classification_heads.delay(model_id)
    return model.state


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def train_classification_heads(model_id: int) -> dict:
    """Gender and kind heads for a newly active version's vectors (kNN answers until they exist); each is
    activated only when it beats kNN on held-out products."""
    from .heads import heads_train
    from .models import EmbeddingModel

    model = EmbeddingModel.objects.filter(pk=model_id, active=True).first()
    if model is None:
        return {}
    return {report.attribute: report.skipped or ("active" if report.activated else "kept inactive")
            for report in heads_train(model=model)}


@shared_task(acks_late=False)
def retrain_embedder() -> dict:
    """Scheduled retraining (off unless configured): does nothing without enough new labelled data, and
    never promotes a candidate that is worse on the held-out pairs."""
    from .training.schedule import embedder_retrain_if_due

    return embedder_retrain_if_due()
