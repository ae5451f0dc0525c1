"""Embedding backbones behind a small registry resolved from ``settings.EMBEDDERS``.

``get_embedder()`` returns the configured default; ``get_embedder("name")`` any other entry. Each
entry names a backend class (``BACKEND``, imported with ``import_string``) and its ``OPTIONS``, like
Django's ``STORAGES``. Instances are cached per name and load their weights lazily on first use.
"""
from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import Embedder, Preprocessing
from .efficientnet import EfficientNetLite0
from .joint import JointEmbedder, shares_a_front
from .trained import TrainedEfficientNetLite0

__all__ = [
    "EfficientNetLite0", "Embedder", "JointEmbedder", "Preprocessing", "TrainedEfficientNetLite0", "embedder_names",
    "get_embedder", "get_joint", "reset_embedders",
]

_instances: dict[str, Embedder] = {}
# keyed by the pair's ids; each entry keeps its pair alive, so an id is never reused while its entry stands
_joints: dict[tuple[int, int], tuple[Embedder, Embedder, JointEmbedder | None]] = {}
_lock = threading.Lock()


def embedder_names() -> list[str]:
    return sorted(getattr(settings, "EMBEDDERS", {}))


def get_embedder(name: str | None = None, *, weights: str | None = None, context_view: bool | None = None,
                 studio_mask_rule: int | None = None) -> Embedder:
    """The embedder registered under ``name`` (default: ``settings.EMBEDDER_NAME`` or "default").

    ``weights`` overrides the entry's weights file (a version trained on this installation); ``context_view``
    the entry's views and ``studio_mask_rule`` its studio mask (a version row made before they changed keeps
    being served as it was made)."""
    name = name or getattr(settings, "EMBEDDER_NAME", "default") or "default"
    key = f"{name}|{weights or ''}|{context_view}|{studio_mask_rule}"
    with _lock:
        if key in _instances:
            return _instances[key]
        config = getattr(settings, "EMBEDDERS", {}).get(name)
        if config is None:
            raise ImproperlyConfigured(
                f"Unknown embedder {name!r}; settings.EMBEDDERS defines: {', '.join(embedder_names()) or 'nothing'}."
            )
        try:
            backend = import_string(config["BACKEND"])
        except (ImportError, KeyError) as exc:
            raise ImproperlyConfigured(f"Embedder {name!r} has no importable BACKEND: {exc}") from exc
        options = {key.lower(): value for key, value in config.get("OPTIONS", {}).items()}
        if weights:
            options["weights"] = weights
        if context_view is not None:
            options["context_view"] = context_view
        if studio_mask_rule is not None:
            options["studio_mask_rule"] = studio_mask_rule
        instance = backend(name=name, **options)
        _instances[key] = instance
        return instance


def get_joint(primary: Embedder, companion: Embedder) -> JointEmbedder | None:
    """Both embedders' vectors of the same views in one pass, when they run a common front (``joint.shares_a_front``);
    None when they do not. One per pair of instances."""
    key = (id(primary), id(companion))
    with _lock:
        if key not in _joints:
            joint = JointEmbedder(primary, companion) if shares_a_front(primary, companion) else None
            _joints[key] = (primary, companion, joint)
        return _joints[key][2]


def reset_embedders() -> None:
    """Forget cached instances (settings changed in tests or a new model was activated)."""
    with _lock:
        _instances.clear()
        _joints.clear()
