"""Every process serves the active segmenter: an activation reaches a running second process without a restart;
the cut-out the worker sees is the embedder's view."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from segmentation import cut_out
from segmentation.classes import CLASSES
from segmentation.nets import build
from segmentation.segmenter import get_segmenter, reset_segmenter
from segmentation.versions import segmenter_register
from segmentation.weights import save_network
from tests.celery_worker import worker_env
from tests.conftest import REPO_ROOT

# A second Django process: prints the version it serves for every line it reads, until stdin closes.
SERVE = """
import sys, django
django.setup()
from segmentation.segmenter import get_segmenter
for _ in sys.stdin:
    segmenter = get_segmenter()
    print(segmenter.version if segmenter else "none", flush=True)
"""


def _tiny_weights(path, seed: int, long_side: int = 64) -> None:
    torch.manual_seed(seed)
    model = build("tiramisu_tiny", num_classes=len(CLASSES))
    save_network(model.state_dict(), arch="tiramisu_tiny", config=model.config.to_dict(), classes=list(CLASSES),
                 long_side=long_side, stride=model.config.stride, path=path)


def _register(tmp_path, name: str, seed: int):
    _tiny_weights(tmp_path / f"{name}.pt", seed)
    return segmenter_register(name=name, arch="tiramisu_tiny", weights_file=tmp_path / f"{name}.pt",
                              model_config={}, metrics={}, training_data={}, activate=True)


@pytest.mark.django_db(transaction=True)
def test_activating_a_version_reaches_a_running_second_process(settings, tmp_path):
    settings.STOCKMATCH_SEG_TRAINED_DIR = tmp_path / "trained"
    _register(tmp_path, "first", seed=1)
    env = {**worker_env(), "STOCKMATCH_SEG_VERSION_CHECK_SECONDS": "0", "DJANGO_SETTINGS_MODULE": "warehouse.settings"}
    process = subprocess.Popen([sys.executable, "-c", SERVE], cwd=REPO_ROOT, env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        def ask() -> str:
            process.stdin.write("?\n")
            process.stdin.flush()
            return process.stdout.readline().strip()

        assert ask() == "first"
        # when another version is activated here (the training command, the admin)
        _register(tmp_path, "second", seed=2)
        # then the running process serves it on its next request, without a restart
        assert ask() == "second"
        assert ask() == "second"
    finally:
        process.stdin.close()
        process.wait(timeout=60)


@pytest.mark.django_db
def test_a_process_checks_the_database_at_most_every_interval(settings, tmp_path):
    settings.STOCKMATCH_SEG_TRAINED_DIR = tmp_path / "trained"
    settings.STOCKMATCH_SEG_VERSION_CHECK_SECONDS = 3600
    reset_segmenter()
    _register(tmp_path, "first", seed=1)
    reset_segmenter()
    assert get_segmenter().version == "first"
    from segmentation.models import SegmenterModel

    # a change made behind this process's back (another process) is seen after the interval, not before
    SegmenterModel.objects.filter(name="first").update(active=False)
    assert get_segmenter().version == "first"
    settings.STOCKMATCH_SEG_VERSION_CHECK_SECONDS = 0
    assert get_segmenter().version != "first"
    reset_segmenter()


@pytest.mark.django_db
def test_the_cut_out_is_exactly_the_embedders_view(shared_data):
    from matching.services import _view_of

    reset_segmenter()
    with Image.open(shared_data / "ccp-masks" / "images" / "0410.jpg") as im:
        photo = im.convert("RGB")
    for hints in (None, {"rect": [100, 150, 450, 600]}):
        cut = cut_out(photo, hints=hints)
        assert cut.status == "ok"
        view = _view_of(photo, cut)
        assert view.size == cut.cutout.size == (256, 256)
        assert np.array_equal(np.asarray(view), np.asarray(cut.cutout))
    # and it is the garment on grey: what the mask left out is grey in the view
    assert (np.asarray(cut.cutout) == 128).all(axis=2).mean() > 0.2


def test_the_shipped_weights_load_with_their_checksum(tmp_path):
    from segmentation.versions import shipped_sidecar
    from segmentation.weights import WeightsError, load_network, sha256_file

    sidecar = shipped_sidecar()
    assert sidecar is not None, "models/segmenter/ should ship weights with a JSON sidecar"
    assert {"sha256", "input", "classes", "preprocessing", "metrics"} <= set(sidecar)
    path = REPO_ROOT / "models" / "segmenter" / sidecar["weights_file"]
    assert sha256_file(path) == sidecar["sha256"]
    model, meta = load_network(path, sidecar["sha256"])
    assert meta["classes"] == sidecar["classes"] and meta["input"] == sidecar["input"]
    # an altered copy is refused
    altered = tmp_path / "altered.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256"):
        load_network(altered, sidecar["sha256"])


@pytest.mark.django_db
def test_a_version_trained_at_a_larger_size_is_served_at_that_size(settings, tmp_path, shared_data):
    settings.STOCKMATCH_SEG_TRAINED_DIR = tmp_path / "trained"
    settings.STOCKMATCH_SEG_WORKING_SIZE = 128
    _tiny_weights(tmp_path / "large.pt", seed=1, long_side=192)
    segmenter_register(name="large", arch="tiramisu_tiny", weights_file=tmp_path / "large.pt", model_config={},
                       metrics={}, training_data={}, activate=True)
    reset_segmenter()
    try:
        net = get_segmenter()
        seen, predict = [], net.predict
        net.predict = lambda image: (seen.append(image.shape[:2]), predict(image))[1]
        photo = Image.open(next((shared_data / "ccp-masks" / "images").glob("*.jpg")))
        cut_out(photo, method="tiramisu")
        assert max(seen[0]) == 192  # the network sees the size it was trained at, not the 128 px setting
        seen.clear()
        cut_out(photo, method="grabcut")
        assert not seen
    finally:
        reset_segmenter()


@pytest.mark.django_db
def test_a_new_default_of_another_architecture_replaces_the_shipped_one_but_not_a_trained_one(settings, tmp_path):
    from segmentation.models import SegmenterModel
    from segmentation.versions import shipped_adopt, shipped_write

    settings.STOCKMATCH_SEG_SHIPPED_DIR = tmp_path / "shipped"
    settings.STOCKMATCH_SEG_TRAINED_DIR = tmp_path / "trained"
    _tiny_weights(tmp_path / "old.pt", seed=1)
    shipped_write(tmp_path / "old.pt", version="old-default", metrics={}, training_data={})
    SegmenterModel.objects.update(active=False)
    old = shipped_adopt()
    old.active = True
    old.save()
    # the next default is another network, in another file beside it
    torch.manual_seed(2)
    model = build("lite0_unet", num_classes=len(CLASSES))
    save_network(model.state_dict(), arch="lite0_unet", config=model.config.to_dict(), classes=list(CLASSES),
                 long_side=64, stride=32, path=tmp_path / "new.pt")
    shipped_write(tmp_path / "new.pt", version="new-default", metrics={}, training_data={})
    new = shipped_adopt()
    assert new.name == "new-default" and new.weights_path.endswith("lite0_unet.pt")
    assert SegmenterModel.objects.get(active=True) == new
    # an installation serving a version it trained keeps it
    trained = _register(tmp_path, "ours", seed=3)
    shipped_write(tmp_path / "old.pt", version="old-again", metrics={}, training_data={})
    shipped_adopt()
    assert SegmenterModel.objects.get(active=True) == trained


@pytest.mark.django_db
def test_the_person_threshold_travels_with_the_segmenter_version(settings, tmp_path, shared_data):
    from segmentation import cut_out_garments
    from segmentation.models import SegmenterModel
    from segmentation.versions import shipped_adopt, shipped_write

    settings.STOCKMATCH_SEG_SHIPPED_DIR = tmp_path / "shipped"
    settings.STOCKMATCH_SEG_TRAINED_DIR = tmp_path / "trained"
    SegmenterModel.objects.update(active=False)
    _tiny_weights(tmp_path / "net.pt", seed=1)
    photo = Image.open(next((shared_data / "ccp-masks" / "images").glob("*.jpg")))
    reset_segmenter()
    try:
        shipped_write(tmp_path / "net.pt", version="strict", metrics={}, training_data={}, person_min_share=1.01)
        assert shipped_adopt().config["person_min_share"] == 1.01
        strict = cut_out_garments(photo)
        assert strict[0].person_share is not None and all(cut.person_seen is False for cut in strict)
        row = SegmenterModel.objects.get(active=True)
        row.config = {**row.config, "person_min_share": 0.0}
        row.save()
        reset_segmenter()
        assert all(cut.person_seen is True for cut in cut_out_garments(photo))
        # a version that states nothing uses the setting
        row.config = {k: v for k, v in row.config.items() if k != "person_min_share"}
        row.save()
        settings.STOCKMATCH_SEG_PERSON_MIN_SHARE = 1.01
        reset_segmenter()
        assert all(cut.person_seen is False for cut in cut_out_garments(photo))
    finally:
        reset_segmenter()


@pytest.mark.django_db
def test_the_served_segmenter_runs_exported_and_agrees_with_pytorch(settings, tmp_path, shared_data):
    # given the shipped segmenter, a fresh folder for exported networks, and real street photos at working size
    settings.STOCKMATCH_SEG_TRAINED_DIR = tmp_path / "trained"
    photos = [np.asarray(Image.open(path).convert("RGB").resize((170, 256)))
              for path in sorted((shared_data / "ccp-masks" / "images").glob("*.jpg"))[:4]]
    probabilities = {}
    try:
        # when it is served on each runtime
        for runtime in ("torch", "onnx", "openvino", "auto"):
            settings.STOCKMATCH_SEG_RUNTIME = runtime
            reset_segmenter()
            segmenter = get_segmenter()
            assert segmenter.runtime == ("openvino" if runtime == "auto" else runtime)  # OpenVINO ships with us
            probabilities[runtime] = [segmenter.predict(photo) for photo in photos]
    finally:
        reset_segmenter()

    # then the network was exported once, and every runtime gives PyTorch's classes
    assert len(list((tmp_path / "trained" / "onnx").glob("segmenter-*.onnx"))) == 1
    for runtime in ("onnx", "openvino"):  # both in float32, on any CPU
        for got, expected in zip(probabilities[runtime], probabilities["torch"], strict=True):
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() < 1e-3


@pytest.mark.django_db
def test_a_segmenter_that_cannot_be_exported_is_served_on_pytorch(settings, tmp_path, caplog):
    # given a folder for exported networks that cannot be made (a file stands where it should be)
    (tmp_path / "trained").write_text("not a folder")
    settings.STOCKMATCH_SEG_TRAINED_DIR = tmp_path / "trained"
    settings.STOCKMATCH_SEG_RUNTIME = "auto"
    reset_segmenter()
    try:
        segmenter = get_segmenter()
        # then segmentation goes on, on PyTorch, and the log says why
        assert segmenter.runtime == "torch"
        assert segmenter.predict(np.full((128, 96, 3), 200, np.uint8)).shape[1:] == (128, 96)
        assert "stays on PyTorch" in caplog.text
    finally:
        reset_segmenter()
