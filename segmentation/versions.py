"""Segmenter versions: registering trained weights, the shipped weights, and choosing the active one."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from . import conf
from .models import SegmenterModel
from .segmenter import reset_segmenter
from .weights import load_network, save_network, sha256_file, shipped_sidecar

log = logging.getLogger(__name__)


def _stored_path(path: Path) -> str:
    """Paths under the project are stored relative to it, so a clone elsewhere still finds them."""
    base = Path(settings.BASE_DIR).resolve()
    try:
        return str(Path(path).resolve().relative_to(base))
    except ValueError:
        return str(Path(path).resolve())


def shipped_register(model=SegmenterModel) -> SegmenterModel | None:  # noqa: ANN001
    """Register the shipped weights as a version (idempotent, keyed by checksum); active when none is.

    ``model`` lets the data migration pass its historical model class."""
    sidecar = shipped_sidecar()
    if sidecar is None or not Path(sidecar["weights_path"]).exists():
        return None
    with transaction.atomic():
        row = model.objects.filter(weights_sha256=sidecar["sha256"]).first()
        if row is None:
            name = sidecar["version"]
            if model.objects.filter(name=name).exists():
                name = f"{name}-{sidecar['sha256'][:8]}"
            row = model.objects.create(
                name=name,
                architecture=sidecar["arch"],
                config={k: sidecar.get(k) for k in ("config", "classes", "input", "person_min_share")},
                weights_path=_stored_path(Path(sidecar["weights_path"])),
                weights_sha256=sidecar["sha256"],
                metrics=sidecar.get("metrics", {}),
                training_data=sidecar.get("training_data", {}),
                active=not model.objects.filter(active=True).exists(),
            )
    return row


def shipped_adopt(model=SegmenterModel) -> SegmenterModel | None:  # noqa: ANN001
    """After the shipped weights were replaced: register them, and move an installation whose active version
    was a shipped file onto them (the same file no longer holds the weights its checksum records; a file of
    another architecture beside it is the previous default). A version trained on the installation (kept in the
    trained-models folder) stays active. ``model`` as in ``shipped_register``."""
    shipped = shipped_register(model)
    if shipped is None:
        return None
    active = model.objects.filter(active=True).exclude(pk=shipped.pk).first()
    if active is not None and Path(active.weights_path).parent == Path(shipped.weights_path).parent:
        active.active = False
        active.save(update_fields=["active"])
        shipped.active = True
        shipped.save(update_fields=["active"])
    return shipped


def segmenter_register(
    *, name: str, arch: str, weights_file: Path, model_config: dict, metrics: dict, training_data: dict, activate: bool
) -> SegmenterModel:
    """Copy trained weights into the trained-models folder and record the version; make it active when asked.

    The caller decides ``activate`` (better than the active version on the same validation set, or forced)."""
    target_dir = conf.trained_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{name}.pt"
    if Path(weights_file).resolve() != target.resolve():
        shutil.copyfile(weights_file, target)
    sha = sha256_file(target)
    with transaction.atomic():
        if activate:
            SegmenterModel.objects.filter(active=True).update(active=False)
        row, _ = SegmenterModel.objects.update_or_create(
            name=name,
            defaults={
                "architecture": arch,
                "config": model_config,
                "weights_path": _stored_path(target),
                "weights_sha256": sha,
                "metrics": metrics,
                "training_data": training_data,
                "active": activate,
            },
        )
    transaction.on_commit(reset_segmenter)
    return row


def active_version() -> SegmenterModel | None:
    return SegmenterModel.objects.filter(active=True).first()


def shipped_write(
    weights_file: Path, *, version: str, metrics: dict, training_data: dict, person_min_share: float | None = None
) -> dict:
    """Write ``models/segmenter/<arch>.pt`` and its sidecar (arch, config, classes, input, sha256, metrics, and
    the skin + hair share from which the mirror sees a person with this network)."""
    network, meta = load_network(Path(weights_file))
    target_dir = conf.shipped_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    for old in target_dir.glob("*.json"):  # one shipped version at a time
        old.unlink()
    target = target_dir / f"{meta['arch']}.pt"
    if Path(weights_file).resolve() != target.resolve():
        # written again by this code: only the tensors the network uses, in the storage its family asks for
        save_network(network.state_dict(), arch=meta["arch"], config=meta["config"], classes=meta["classes"],
                     long_side=int(meta["input"]["long_side"]), stride=int(meta["input"]["stride"]), path=target)
    sidecar = {
        "version": version,
        "arch": meta["arch"],
        "weights_file": target.name,
        "sha256": sha256_file(target),
        "config": meta["config"],
        "classes": meta["classes"],
        "input": meta["input"],
        "preprocessing": "RGB uint8 -> (x/255 - mean) / std; long side resized to input.long_side, "
        "reflect-padded to a multiple of input.stride; softmax over classes",
        "metrics": metrics,
        "training_data": training_data,
        **({"person_min_share": person_min_share} if person_min_share is not None else {}),
    }
    (target_dir / f"{meta['arch']}.json").write_text(json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
    return sidecar


def segmenter_activate(*, model_id: int) -> SegmenterModel:
    """Serve version ``model_id`` from now on (the only way to switch; the admin never edits weights paths)."""
    with transaction.atomic():
        row = SegmenterModel.objects.select_for_update().get(pk=model_id)
        if not row.active:
            SegmenterModel.objects.filter(active=True).update(active=False)
            row.active = True
            row.save(update_fields=["active"])
    from .segmenter import reset_segmenter

    transaction.on_commit(reset_segmenter)
    return row
