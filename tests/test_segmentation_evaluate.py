"""evaluate_segmentation prints the documented JSON and never writes; the benchmark helper for matching."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from segmentation.benchmark import segment_ms_p50
from segmentation.data import split_of
from segmentation.evaluation import boundary_f1, iou
from segmentation.models import SegmentationExample, SegmenterModel

KEYS = {"n_images", "miou", "boundary_f1", "ms_per_image_p50", "method", "model_version", "per_class_iou", "garments"}


@pytest.fixture
def eval_folder(shared_data, tmp_path):
    """Four held-out CCP photos with their garment masks, as DIR/NAME.jpg <-> MASKS/NAME.png."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    ccp = shared_data / "ccp-masks"
    held_out = [p for p in sorted((ccp / "images").glob("*.jpg")) if split_of(f"ccp:{p.stem}") == "val"][:4]
    for path in held_out:
        shutil.copy(path, images / path.name)
        shutil.copy(ccp / "masks" / f"{path.stem}.png", masks / f"{path.stem}.png")
    return images, masks


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["grabcut", "auto"])
def test_prints_one_json_object(eval_folder, tmp_path, method):
    images, masks = eval_folder
    before = (SegmenterModel.objects.count(), SegmentationExample.objects.count())
    out = io.StringIO()
    report_path = tmp_path / "report.json"
    call_command(
        "evaluate_segmentation",
        images=str(images),
        masks=str(masks),
        method=method,
        json_out=str(report_path),
        stdout=out,
    )
    report = json.loads(out.getvalue())
    assert set(report) == KEYS
    assert report == json.loads(report_path.read_text())
    assert report["n_images"] == 4
    assert report["method"] == method
    assert 0.2 < report["miou"] <= 1 and 0 < report["boundary_f1"] <= 1
    assert report["ms_per_image_p50"] > 0
    if method == "grabcut":
        assert report["model_version"] is None
    assert report["per_class_iou"] is None and report["garments"] is None  # no class maps in this folder
    assert (SegmenterModel.objects.count(), SegmentationExample.objects.count()) == before


@pytest.mark.django_db
def test_class_maps_add_per_class_iou_and_garment_counts(shared_data, tmp_path):
    out = io.StringIO()
    call_command("make_segmentation_evalset", source="ccp", out=str(tmp_path / "ccp"), data=str(shared_data),
                 stdout=out)
    written = json.loads(out.getvalue())["written"]
    assert written == len(list((tmp_path / "ccp" / "labels").glob("*.png"))) > 50
    # keep four photos to score
    for path in sorted((tmp_path / "ccp" / "images").glob("*.jpg"))[4:]:
        path.unlink()
    out = io.StringIO()
    call_command("evaluate_segmentation", images=str(tmp_path / "ccp" / "images"),
                 masks=str(tmp_path / "ccp" / "masks"), method="auto", stdout=out)
    report = json.loads(out.getvalue())
    assert set(report) == KEYS and report["n_images"] == 4
    assert set(report["per_class_iou"]) == {"topwear", "bottomwear", "full-body", "footwear"}
    scored = [v for v in report["per_class_iou"].values() if v is not None]
    assert scored and all(0 <= v <= 1 for v in scored) and max(scored) > 0.2
    garments = report["garments"]
    assert garments["photos"] == 4 and garments["truth"] >= 4  # every CCP photo shows at least one garment
    assert 0 < garments["matched"] <= min(garments["truth"], garments["found"])
    assert sum(k["truth"] for k in garments["per_kind"].values()) == garments["truth"]


def test_metrics_on_known_masks():
    a = np.zeros((40, 40), np.uint8)
    a[10:30, 10:30] = 255
    b = np.zeros_like(a)
    b[10:30, 20:40] = 255
    assert iou(a, a) == 1.0 and iou(a, b) == pytest.approx(200 / 600)
    assert boundary_f1(a, a) == 1.0 and boundary_f1(a, np.zeros_like(a)) == 0.0
    assert 0 < boundary_f1(a, b) < 1


def test_segment_ms_p50_per_method(shared_data):
    paths = sorted((shared_data / "phone-photos" / "images").glob("*.jpg"))[:2]
    images = [Image.open(p).convert("RGB") for p in paths]
    figures = segment_ms_p50(images, ["grabcut", "auto"])
    assert set(figures) == {"grabcut", "auto"}
    assert all(isinstance(v, float) and v > 0 for v in figures.values())
    assert set(segment_ms_p50(paths[:1], ["grabcut"])) == {"grabcut"}
