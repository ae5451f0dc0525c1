"""A short real training run: the loss falls, the version is saved, loads back identically, and is
activated only when it beats the active version on the same validation set (or when forced)."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import torch
from django.core.management import call_command

from segmentation import conf
from segmentation.classes import CLASSES
from segmentation.inference import predict_probs
from segmentation.models import SegmenterModel
from segmentation.nets import build
from segmentation.segmenter import Segmenter, SegmenterSpec, get_segmenter, reset_segmenter
from segmentation.versions import segmenter_register
from segmentation.weights import load_network, resolve_path, save_network

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def seg_dirs(settings, tmp_path):
    settings.STOCKMATCH_SEG_WORK_DIR = tmp_path / "work"
    settings.STOCKMATCH_SEG_TRAINED_DIR = tmp_path / "trained"
    settings.STOCKMATCH_SEG_SHIPPED_DIR = tmp_path / "shipped"  # none: the test controls the baseline
    reset_segmenter()
    yield tmp_path
    reset_segmenter()


def _train(shared_data, **extra) -> dict:
    out = io.StringIO()
    options = {
        "arch": "tiramisu_tiny",
        "epochs": 3,
        "steps_per_epoch": 15,
        "batch_size": 6,
        "size": 64,
        "lr": 0.01,
        "limit": 24,
        "val_composites": 8,
        "data": str(shared_data),
        "no_progress": True,
        "stdout": out,
    }
    call_command("train_segmenter", **(options | extra))
    return json.loads(out.getvalue().strip().splitlines()[-1])


def _always_background(path) -> None:
    """A deliberately useless version: predicts background everywhere."""
    model = build("tiramisu_tiny", num_classes=len(CLASSES))
    torch.nn.init.zeros_(model.head.weight)
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([10.0] + [0.0] * (len(CLASSES) - 1)))
    save_network(
        model.state_dict(),
        arch="tiramisu_tiny",
        config=model.config.to_dict(),
        classes=list(CLASSES),
        long_side=64,
        stride=model.config.stride,
        path=path,
    )


def test_short_training_run(shared_data, seg_dirs):
    # given: an active version that finds nothing
    weak_file = seg_dirs / "weak.pt"
    _always_background(weak_file)
    weak = segmenter_register(
        name="always-background",
        arch="tiramisu_tiny",
        weights_file=weak_file,
        model_config={},
        metrics={},
        training_data={},
        activate=True,
    )

    # when: a short run on real photos
    summary = _train(shared_data, name="tiny-run")

    # then: the loss fell, the run beat the useless version and became active
    history = json.loads((seg_dirs / "work" / "runs" / "tiny-run" / "history.json").read_text())
    assert len(history) == 3
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert summary["baseline_version"] == weak.name and summary["baseline_val_iou"] == 0.0
    assert summary["val_iou"] > 0 and summary["active"] is True
    row = SegmenterModel.objects.get(name="tiny-run")
    assert row.active and not SegmenterModel.objects.get(pk=weak.pk).active
    assert row.metrics["val_iou"] == summary["val_iou"] or abs(row.metrics["val_iou"] - summary["val_iou"]) < 1e-4
    assert row.training_data["train_photos"]["ccp"] > 0

    # the saved version loads back (checksum verified) and predicts what the trained network did (served exported, on
    # OpenVINO in float32: PyTorch's probabilities to float precision)
    segmenter = get_segmenter()
    assert segmenter.version == "tiny-run"
    checkpoint = torch.load(seg_dirs / "work" / "runs" / "tiny-run" / "best.pt", weights_only=False)
    trained, _ = load_network(resolve_path(row.weights_path))
    trained.load_state_dict(checkpoint["model"])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(64, 48, 3), dtype=np.uint8)
    expected = predict_probs(trained, image, trained.config.stride, flip=conf.flip_tta())
    assert np.abs(segmenter.predict(image) - expected).max() < 1e-4
    reloaded = Segmenter(SegmenterSpec("again", resolve_path(row.weights_path), row.weights_sha256)).load()
    assert np.array_equal(reloaded.predict(image), segmenter.predict(image))

    # when: an identical copy is trained "again" (resumed, nothing left to do): not better, so not activated
    shutil.copytree(seg_dirs / "work" / "runs" / "tiny-run", seg_dirs / "work" / "runs" / "tiny-copy")
    same = _train(shared_data, name="tiny-copy", resume=True)
    assert same["baseline_version"] == "tiny-run"
    assert same["val_iou"] == same["baseline_val_iou"]
    assert same["active"] is False
    assert SegmenterModel.objects.get(active=True).name == "tiny-run"

    # unless forced
    forced = _train(shared_data, name="tiny-copy", resume=True, activate=True)
    assert forced["active"] is True
    assert SegmenterModel.objects.get(active=True).name == "tiny-copy"


def test_favoured_classes_are_drawn_more_often(shared_data):
    from segmentation.classes import CLASS_INDEX
    from segmentation.data import load_ccp
    from segmentation.training import FAVOURED_MIN_SHARE, photo_draw_probabilities

    photos, _ = load_ccp(shared_data / "ccp-masks", limit=60)
    full_body = CLASS_INDEX["full-body"]
    dresses = np.asarray([(ex.labels == full_body).mean() >= FAVOURED_MIN_SHARE for ex in photos])
    assert 0 < dresses.sum() < len(photos)  # real street photos: some dresses, mostly not
    assert photo_draw_probabilities(photos, {}) is None
    probs = photo_draw_probabilities(photos, {"full-body": 3.0})
    assert probs.sum() == pytest.approx(1.0)
    assert np.allclose(probs[dresses] / probs[~dresses][0], 3.0) and np.allclose(probs[~dresses], probs[~dresses][0])
