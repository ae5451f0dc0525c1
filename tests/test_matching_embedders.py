"""The embedding backbone: registry, preprocessing checked by ImageNet predictions, ONNX = PyTorch."""
from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from PIL import Image

from matching.embedders import EfficientNetLite0, TrainedEfficientNetLite0, get_embedder, reset_embedders
from matching.embedders.base import Preprocessing
from matching.embedders.runtimes import openvino_precision

# Article types of the catalogue photos and the ImageNet classes that name what they show.
EXPECTED_CLASSES = {
    "Sandals": {"sandal"}, "Flip Flops": {"sandal"}, "Sports Shoes": {"running shoe"},
    "Casual Shoes": {"running shoe", "loafer", "sandal", "clog"}, "Tshirts": {"jersey", "sweatshirt"},
    "Jeans": {"jean"}, "Backpacks": {"backpack"}, "Handbags": {"purse", "mailbag", "backpack", "wallet"},
    "Sunglasses": {"sunglasses", "sunglass"}, "Belts": {"buckle"},
    "Watches": {"analog clock", "digital watch", "stopwatch", "wall clock", "digital clock", "magnetic compass"},
}
PER_TYPE = 3


def catalogue_photos(shared_data, per_type: int = PER_TYPE) -> list[tuple[str, Image.Image]]:
    chosen: dict[str, list] = {}
    with open(shared_data / "catalog-photos" / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            kind = row["article_type"]
            if kind in EXPECTED_CLASSES and len(chosen.setdefault(kind, [])) < per_type:
                image = Image.open(shared_data / "catalog-photos" / row["image"]).convert("RGB")
                chosen[kind].append((kind, image))
    return [item for items in chosen.values() for item in items]


def top5_hit_rate(embedder, photos) -> float:
    from torchvision.models import ResNet50_Weights  # the ImageNet class names ship with torchvision

    names = [name.lower() for name in ResNet50_Weights.IMAGENET1K_V1.meta["categories"]]
    logits = embedder.imagenet_logits([image for _, image in photos])
    hits = [bool({names[i] for i in np.argsort(-row)[:5]} & EXPECTED_CLASSES[kind])
            for (kind, _), row in zip(photos, logits, strict=True)]
    return float(np.mean(hits))


@pytest.mark.slow
def test_imagenet_predictions_confirm_the_preprocessing(shared_data):
    # given real catalogue photos of items ImageNet has classes for
    embedder = get_embedder("efficientnet_lite0_torch")
    photos = catalogue_photos(shared_data)
    assert len(photos) == PER_TYPE * len(EXPECTED_CLASSES)
    # when classifying them with the shipped preprocessing (TF-Lite: mean = std = 0.5)
    shipped = top5_hit_rate(embedder, photos)
    # and with the usual torchvision ImageNet statistics instead
    imagenet_stats = dataclasses.replace(
        embedder.preprocessing, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    )
    other = get_embedder("efficientnet_lite0_torch")
    original = other.preprocessing
    try:
        other.preprocessing = imagenet_stats
        alternative = top5_hit_rate(other, photos)
    finally:
        other.preprocessing = original
    # then the shipped one names the right class in the top 5 for most photos, at least as often
    assert shipped >= 0.85, shipped
    assert shipped >= alternative


def test_preprocessing_travels_with_the_weights():
    embedder = get_embedder("default")  # the ImageNet fallback (the trained default: test_matching_training.py)
    assert embedder.preprocessing == Preprocessing(input_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert len(embedder.checksum) == 64
    assert embedder.checksum.startswith("57934424")
    # pooling and the studio mask rule change the vectors, so both name the version
    assert embedder.version == f"efficientnet-lite0-gem3+m2@{embedder.checksum[:12]}"
    assert get_embedder("efficientnet_lite0_avg").version == f"efficientnet-lite0+m2@{embedder.checksum[:12]}"
    assert get_embedder("default", studio_mask_rule=1).version == f"efficientnet-lite0-gem3@{embedder.checksum[:12]}"
    assert embedder.describe()["dimension"] == 1280 and embedder.describe()["pooling"] == "gem"


def test_onnx_runtime_matches_pytorch_and_vectors_are_unit_length(shared_data):
    photos = [image for _, image in catalogue_photos(shared_data, per_type=1)][:6]
    onnx = EfficientNetLite0(name="default-onnx", runtime="onnx", pooling="gem", gem_p=3.0)
    torch_ = get_embedder("efficientnet_lite0_torch")
    a, b = onnx.embed(photos), torch_.embed(photos)
    assert onnx.runtime == "onnx" and onnx.onnx_path().exists()  # exported once, cached by weights checksum
    assert a.shape == (6, 1280) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.abs(a - b).max() < 1e-4
    assert onnx.version == torch_.version  # same weights, same vectors: one model version


def test_openvino_serves_the_shipped_file_within_its_precision_of_onnx_runtime(shared_data, settings, tmp_path):
    # given the shipped matching embedder on both runtimes and real worn and shop photos
    settings.STOCKMATCH_TRAINED_DIR = tmp_path
    weights = str(settings.SHIPPED_EMBEDDER_WEIGHTS)
    onnx = TrainedEfficientNetLite0(name="t-onnx", weights=weights, runtime="onnx", threads=1)
    openvino = TrainedEfficientNetLite0(name="t-ov", weights=weights, runtime="openvino", threads=1)
    pairs = shared_data / "shop-worn-pairs"
    photos = [Image.open(pairs / side / f"p000{i}.jpg").convert("RGB") for i in range(4) for side in ("shop", "worn")]

    # when both embed them (a batch larger than one exercises the exported dynamic batch axis)
    a, b = onnx.embed(photos), openvino.embed(photos)

    # then OpenVINO gives unit vectors of the same version, equal to ONNX Runtime's in float32 and within bfloat16's
    # rounding where the CPU computes that natively
    assert openvino.version == onnx.version and openvino.describe()["precision"] == openvino_precision()
    assert b.shape == a.shape == (8, 768) and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > (0.99 if openvino_precision() == "bf16" else 0.99999)
    # and each worn photo stays nearer its own shop photo than the others, as with ONNX Runtime
    for vectors in (a, b):
        similarity = vectors[1::2] @ vectors[0::2].T
        assert (similarity.argmax(axis=1) == np.arange(4)).all()


def test_the_automatic_runtime_is_openvino_only_where_it_computes_bfloat16(settings):
    reset_embedders()  # another test may have left an instance made under its own settings
    served = get_embedder("trained")
    assert settings.EMBEDDERS["trained"]["OPTIONS"]["RUNTIME"] == "auto"
    assert served.runtime == ("openvino" if openvino_precision() == "bf16" else "onnx")
    with pytest.raises(ValueError, match="auto, onnx, openvino, torch"):
        EfficientNetLite0(name="odd", runtime="tensorrt")


def test_unknown_embedder_lists_the_valid_names():
    with pytest.raises(ImproperlyConfigured, match="default"):
        get_embedder("no-such-embedder")


def test_matching_and_appearance_vectors_come_from_one_pass_that_runs_their_common_front_once(shared_data, settings,
                                                                                                tmp_path):
    from collections import Counter

    import torch

    from matching.embedders import TrainedEfficientNetLite0, get_joint
    from matching.training.network import Front

    # given the shipped matching embedder (Lite0 and Lite1 tails) and appearance tails (Lite1 and Lite2), and real worn
    # photos
    settings.STOCKMATCH_TRAINED_DIR = tmp_path
    primary = TrainedEfficientNetLite0(name="m", weights=settings.SHIPPED_EMBEDDER_WEIGHTS, threads=1,
                                       context_view=True)
    companion = TrainedEfficientNetLite0(name="a", weights=str(settings.SHIPPED_ATTRIBUTES_WEIGHTS), threads=1)
    assert primary.front_keys & companion.front_keys == {("efficientnet-lite1", 15, 240)}
    photos = [Image.open(shared_data / "shop-worn-pairs" / "worn" / f"p000{i}.jpg").convert("RGB") for i in range(3)]
    groups = [[photo, photo.crop((20, 30, 170, 230))] for photo in photos]

    # when both vectors of the same views are made in one pass
    joint = get_joint(primary, companion)
    assert joint is not None and get_joint(primary, companion) is joint
    embedding, appearance = joint.embed_groups(groups)

    # then they are each embedder's own vectors (exported to ONNX once, checked against PyTorch)
    assert joint.onnx_path().exists()
    assert embedding.shape == (3, 768) and appearance.shape == (3, 768)
    assert np.abs(embedding - primary.embed_groups(groups)).max() < 1e-4
    assert np.abs(appearance - companion.embed_groups(groups)).max() < 1e-4
    # and the network behind them runs each ImageNet front once: Lite1's serves both files
    calls = Counter()
    net = joint.torch_net()
    for module in net.modules():
        if isinstance(module, Front):
            module.register_forward_hook(lambda front, inputs, output: calls.update([front.key]))
    with torch.inference_mode():
        net(torch.from_numpy(primary.preprocessing.tensor(groups[0])))
    assert calls == {("efficientnet-lite0", 11): 1, ("efficientnet-lite1", 15): 1, ("efficientnet-lite2", 15): 1}
    # an embedder with no front in common (the ImageNet backbone) is served apart
    assert get_joint(primary, get_embedder("default")) is None


def _rows_forwarded(runner_owner, monkeypatch) -> list[int]:
    """Rows of every batch ``runner_owner`` sends to its network, by wrapping its forward pass."""
    rows: list[int] = []
    forward = runner_owner._forward

    def counted(batch):
        rows.append(len(batch))
        return forward(batch)

    monkeypatch.setattr(runner_owner, "_forward", counted)
    return rows


def test_a_photo_with_no_garment_found_is_embedded_once_for_both_its_views(shared_data, settings, tmp_path,
                                                                            monkeypatch):
    from matching import services
    from matching.embedders import get_joint

    # given the shipped embedder (garment and context views) and a worn photo in which nothing was cut out
    settings.STOCKMATCH_TRAINED_DIR = tmp_path
    embedder = TrainedEfficientNetLite0(name="m", weights=settings.SHIPPED_EMBEDDER_WEIGHTS, threads=1,
                                        context_view=True)
    photo = Image.open(shared_data / "shop-worn-pairs" / "worn" / "p0001.jpg").convert("RGB")
    views = services._views_of(photo, services._whole_photo(photo, "auto"), context=True)
    assert views[0] is views[1]  # both views are the whole photo: one picture

    # when its vector is made
    rows = _rows_forwarded(embedder, monkeypatch)
    once = embedder.embed_groups([views])

    # then the network saw one view, and the vector is the one two identical views give
    assert rows == [1]
    twice = embedder.embed_groups([[views[0], views[0].copy()]])
    assert rows == [1, 2]
    assert np.abs(once - twice).max() < 1e-6
    # so does the mirror's one pass for matching and appearance
    companion = TrainedEfficientNetLite0(name="a", weights=str(settings.SHIPPED_ATTRIBUTES_WEIGHTS), threads=1)
    joint = get_joint(embedder, companion)
    joint_rows = _rows_forwarded(joint, monkeypatch)
    embedding, appearance = joint.embed_groups([views, [views[0], views[0].copy()]])
    assert joint_rows == [2]  # the picture once (it also stands in the second group) and its copy
    assert np.abs(embedding[0] - embedding[1]).max() < 1e-6 and np.abs(appearance[0] - appearance[1]).max() < 1e-6


def test_a_catalogue_photo_without_a_studio_background_is_one_picture_for_both_views(shared_data):
    from matching import services

    studio = Image.open(shared_data / "shop-worn-pairs" / "shop" / "p0001.jpg").convert("RGB")
    street = Image.open(sorted((shared_data / "ccp-masks" / "images").glob("*.jpg"))[0]).convert("RGB")
    garment, context = services.catalog_views(studio, context=True)
    assert garment is not context and garment.tobytes() != context.tobytes()
    garment, context = services.catalog_views(street, context=True)
    assert garment is context  # no plain white background to remove: the whole photo, once


@pytest.mark.django_db
def test_export_models_exports_every_served_network_once(settings, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    from segmentation.segmenter import reset_segmenter

    # given a fresh installation's folder for exported networks
    settings.STOCKMATCH_TRAINED_DIR = tmp_path
    settings.STOCKMATCH_SEG_TRAINED_DIR = tmp_path / "segmenter"
    reset_embedders()
    reset_segmenter()
    try:
        # when the command runs twice
        first, second = StringIO(), StringIO()
        call_command("export_models", stdout=first)
        exported = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.onnx")}
        call_command("export_models", stdout=second)
    finally:
        reset_embedders()
        reset_segmenter()

    # then the segmenter, matching, appearance and joint files exist, each named in the output, and the second run
    # kept them
    assert len(exported) == 4
    assert {path.name.split("-")[0] for path in exported} >= {"joint", "segmenter"}
    assert all(str(path) in first.getvalue() for path in exported)
    assert {path: path.stat().st_mtime_ns for path in exported} == exported
    assert first.getvalue() == second.getvalue()
