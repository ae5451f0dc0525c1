"""Bad and unusual inputs: never a crash; either a result or a clear refusal."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from catalog.imaging import load_image
from segmentation import SegmentationInputError, cut_out
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def garment_photo() -> Image.Image:
    """A synthetic 'garment': a textured dark shape on a lighter floor, sized like a phone photo."""
    rng = np.random.default_rng(3)
    floor = rng.normal(200, 8, size=(480, 360, 3)).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:480, 0:360]
    shirt = ((xx - 180) / 110) ** 2 + ((yy - 250) / 150) ** 2 < 1
    floor[shirt] = rng.normal((40, 60, 150), 10, size=(int(shirt.sum()), 3)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(floor)


def _check(result, width: int, height: int) -> None:
    assert result.mask.shape == (height, width)
    assert result.mask.dtype == np.uint8
    assert result.status in {"ok", "empty"}
    assert result.cutout.mode == "RGB"
    assert result.cutout.size == (256, 256)


def test_import_does_not_load_torch():
    # Plain imports (no lazy module __getattr__) bring OpenCV; torch loads only when a network is needed.
    code = "import sys, segmentation; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_synthetic_garment_is_found(garment_photo):
    result = cut_out(garment_photo, method="grabcut")
    _check(result, 360, 480)
    assert result.status == "ok"
    x0, y0, x1, y1 = result.bbox
    assert abs(x0 - 70) < 20 and abs(x1 - 290) < 20 and abs(y0 - 100) < 20 and abs(y1 - 400) < 20


def test_tiny_image():
    image = Image.new("RGB", (8, 8), (200, 200, 200))
    image.putpixel((4, 4), (10, 10, 10))
    for method in ("grabcut", "auto"):
        _check(cut_out(image, method=method), 8, 8)


def test_image_too_small_is_refused():
    with pytest.raises(SegmentationInputError, match="at least"):
        cut_out(Image.new("RGB", (2, 3)))


def test_huge_image_is_downscaled_early(garment_photo):
    big = garment_photo.resize((6120, 8160), Image.Resampling.NEAREST)  # 50 MP
    result = cut_out(big, method="grabcut")
    _check(result, 6120, 8160)
    assert result.status == "ok"
    x0, y0, x1, y1 = result.bbox
    assert abs(x0 / 17 - 70) < 25 and abs(y1 / 17 - 400) < 25


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16", "RGBA", "P", "LA", "1"])
def test_any_pil_mode(garment_photo, mode):
    if mode == "I;16":
        grey = np.asarray(garment_photo.convert("L"), dtype=np.uint16) * 257
        image = Image.fromarray(grey)
        assert image.mode == "I;16"
    else:
        image = garment_photo.convert(mode)
    _check(cut_out(image, method="grabcut"), 360, 480)


def test_alpha_png_roundtrip(garment_photo):
    rgba = garment_photo.convert("RGBA")
    alpha = np.full((480, 360), 255, np.uint8)
    alpha[:, :40] = 0
    rgba.putalpha(Image.fromarray(alpha))
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    loaded = load_image(buffer.getvalue())
    _check(cut_out(loaded.image, method="auto"), 360, 480)
    _check(cut_out(rgba, method="grabcut"), 360, 480)


def test_heic(garment_photo):
    import pillow_heif

    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    garment_photo.save(buffer, format="HEIF", quality=80)
    loaded = load_image(buffer.getvalue())
    result = cut_out(loaded.image, method="auto")
    _check(result, 360, 480)
    assert result.status == "ok"


def test_exif_orientation_is_honoured(garment_photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    buffer = io.BytesIO()
    garment_photo.save(buffer, format="JPEG", exif=exif.tobytes())
    raw = Image.open(io.BytesIO(buffer.getvalue()))
    assert raw.size == (360, 480)
    result = cut_out(raw, method="grabcut")
    _check(result, 480, 360)  # upright: width and height swapped
    x0, y0, x1, y1 = result.bbox
    assert x1 - x0 > y1 - y0  # the tall shape now lies on its side


@pytest.mark.parametrize(
    "array",
    [
        np.full((60, 80), 128, np.uint8),
        np.zeros((60, 80, 4), np.uint8),
        (np.random.default_rng(0).random((60, 80, 3)) * 65535).astype(np.uint16),
        np.random.default_rng(1).random((60, 80, 3)).astype(np.float32),
    ],
)
def test_arrays_of_other_kinds(array):
    _check(cut_out(array, method="grabcut"), 80, 60)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 10, 2), np.uint8), np.zeros((4, 4, 4, 4), np.uint8), np.zeros((10, 10, 3), np.int64), "photo.jpg"],
)
def test_unusable_inputs_are_refused_with_a_reason(bad):
    with pytest.raises(SegmentationInputError) as info:
        cut_out(bad)
    assert isinstance(info.value, ValueError) and str(info.value)


def test_nan_array_is_refused():
    with pytest.raises(SegmentationInputError, match="NaN"):
        cut_out(np.full((20, 20, 3), np.nan, np.float32))


def test_the_same_photo_gives_the_same_cut_out_every_time(shared_data):
    # GrabCut's k-means runs on OpenCV's per-thread RNG: each call must start it from the same seed
    photo = Image.open(sorted((shared_data / "phone-photos").rglob("*.jpg"))[0])
    masks = [np.asarray(cut_out(photo, method=method).mask) for method in ("auto", "grabcut", "auto", "grabcut")]
    assert (masks[0] == masks[2]).all() and (masks[1] == masks[3]).all()
