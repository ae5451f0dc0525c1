"""Photo validation: every way a phone or a CSV can hand us a bad file gets a clear reason."""
import io

import numpy as np
import pytest
from PIL import Image

from catalog.imaging import ImageRejected, load_image
from tests.conftest import jpeg_bytes


def test_accepts_jpeg_and_reports_sha256():
    data = jpeg_bytes(80, 60)
    loaded = load_image(data)
    assert loaded.image.mode == "RGB" and loaded.image.size == (80, 60)
    assert len(loaded.sha256) == 64 and loaded.format == "JPEG"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"%PDF-1.4 not a photo at all", "not_an_image"),
        (jpeg_bytes(200, 200)[:600], "corrupt"),
    ],
)
def test_rejects_bad_files_with_a_reason(data, code):
    with pytest.raises(ImageRejected) as info:
        load_image(data)
    assert info.value.code == code
    assert info.value.reason


def test_rejects_files_over_the_byte_limit(settings):
    settings.STOCKMATCH_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(ImageRejected) as info:
        load_image(jpeg_bytes(400, 400) + b"\0" * 2000)
    assert info.value.code == "too_large"


def test_rejects_decompression_bombs(settings):
    settings.STOCKMATCH_MAX_IMAGE_PIXELS = 1_000_000
    buffer = io.BytesIO()
    Image.new("L", (4000, 4000)).save(buffer, format="PNG")  # tiny file, 16 MP
    with pytest.raises(ImageRejected) as info:
        load_image(buffer.getvalue())
    assert info.value.code == "too_many_pixels"


def test_applies_exif_rotation():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    Image.new("RGB", (120, 40), (10, 200, 10)).save(buffer, format="JPEG", exif=exif)
    assert load_image(buffer.getvalue()).image.size == (40, 120)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P", "I;16"])
def test_converts_every_mode_to_rgb(mode):
    array = (np.arange(64 * 48) % 251).reshape(48, 64)
    image = Image.fromarray(array.astype(np.uint16 if mode == "I;16" else np.uint8))
    image = image if mode == "I;16" else image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF" if mode in {"CMYK", "I;16"} else "PNG")
    loaded = load_image(buffer.getvalue())
    assert loaded.image.mode == "RGB" and loaded.image.size == (64, 48)


def test_reads_heic():
    import pillow_heif  # noqa: F401 - registers the HEIF writer

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 30, 200)).save(buffer, format="HEIF", quality=90)
    loaded = load_image(buffer.getvalue())
    assert loaded.image.size == (64, 48) and loaded.format in {"HEIF", "HEIC"}
