"""GrabCut hints on real photos: each hint kind moves the mask the way it should."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segmentation import HintError, cut_out


@pytest.fixture
def photo(shared_data) -> Image.Image:
    """A phone photo of one garment on a floor or bed."""
    path = sorted((shared_data / "phone-photos" / "images").glob("*.jpg"))[0]
    with Image.open(path) as im:
        return im.convert("RGB")


def test_no_hints_finds_a_garment_near_the_centre(photo):
    result = cut_out(photo, method="grabcut")
    assert result.status == "ok"
    assert result.mask.shape == (photo.height, photo.width)
    assert set(np.unique(result.mask)) <= {0, 255}
    x0, y0, x1, y1 = result.bbox
    assert x0 < photo.width / 2 < x1 and y0 < photo.height / 2 < y1
    assert result.cutout.mode == "RGB" and result.cutout.size[0] == result.cutout.size[1]


def test_rectangle_excludes_everything_outside(photo):
    w, h = photo.size
    rect = [w // 4, h // 4, 3 * w // 4, 3 * h // 4]
    result = cut_out(photo, hints={"rect": rect}, method="grabcut")
    outside = np.ones((h, w), bool)
    outside[rect[1] : rect[3], rect[0] : rect[2]] = False
    assert result.mask[outside].max() == 0
    assert result.mask[~outside].any()
    x0, y0, x1, y1 = result.bbox
    assert rect[0] <= x0 and rect[1] <= y0 and x1 <= rect[2] and y1 <= rect[3]


def test_foreground_stroke_adds_what_it_covers(photo):
    w, h = photo.size
    before = cut_out(photo, method="grabcut").mask
    # a stroke in a corner region the automatic cut leaves out
    stroke = [[int(w * 0.06), int(h * 0.06)], [int(w * 0.2), int(h * 0.06)]]
    assert before[stroke[0][1], stroke[0][0] : stroke[1][0]].max() == 0
    after = cut_out(photo, hints={"fg": [stroke]}, method="grabcut").mask
    covered = after[stroke[0][1], stroke[0][0] + 2 : stroke[1][0] - 2]
    assert (covered == 255).mean() > 0.9
    assert (after > 0).sum() > (before > 0).sum()


def test_background_stroke_removes_what_it_covers(photo):
    w, h = photo.size
    before = cut_out(photo, method="grabcut").mask
    ys, xs = np.nonzero(before)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    stroke = [[cx - w // 10, cy], [cx + w // 10, cy]]
    assert before[cy, cx] == 255
    after = cut_out(photo, hints={"bg": [stroke]}, method="grabcut").mask
    assert after[cy, cx - w // 12 : cx + w // 12].max() == 0
    assert (after > 0).sum() < (before > 0).sum()


def test_hints_work_with_auto_too(photo):
    w, h = photo.size
    rect = [w // 3, h // 3, 2 * w // 3, 2 * h // 3]
    result = cut_out(photo, hints={"rect": rect}, method="auto")
    assert result.mask[:, : rect[0]].max() == 0 and result.mask[: rect[1]].max() == 0


def test_rectangle_partly_outside_is_clipped(photo):
    w, h = photo.size
    x0, y0, x1, y1 = cut_out(photo, method="grabcut").bbox
    cut = (y0 + y1) // 2  # the rectangle runs off the photo on three sides and stops halfway down the garment
    result = cut_out(photo, hints={"rect": [-50, -40, w + 30, cut]}, method="grabcut")
    assert result.status == "ok"
    assert result.mask[cut:].max() == 0
    assert result.mask[:cut].any()


@pytest.mark.parametrize(
    "hints",
    [
        {"rect": [10_000, 10_000, 20_000, 20_000]},
        {"rect": [-100, -100, -10, -10]},
        {"rect": [5, 5, 5, 50]},
        {"rect": "everything"},
        {"fg": [[["a", "b"]]]},
        {"fg": [[]]},
        {"lasso": [[0, 0]]},
        ["not", "a", "mapping"],
    ],
)
def test_unusable_hints_are_refused_with_a_reason(photo, hints):
    with pytest.raises(HintError) as info:
        cut_out(photo, hints=hints, method="grabcut")
    assert isinstance(info.value, ValueError)
    assert str(info.value)


def test_uniform_photo_gives_an_empty_result():
    blank = Image.new("RGB", (300, 200), (180, 180, 180))
    for method in ("grabcut", "auto", "tiramisu"):
        result = cut_out(blank, method=method)
        assert result.status == "empty"
        assert result.bbox is None
        assert result.mask.shape == (200, 300) and result.mask.max() == 0
        assert result.cutout.size == (256, 256)


def test_tiny_probable_foreground_region_does_not_crash(photo):
    result = cut_out(photo, hints={"rect": [100, 100, 102, 102]}, method="grabcut")
    assert result.status in {"ok", "empty"}
    assert result.mask[:100].max() == 0


def test_unknown_method_is_refused(photo):
    with pytest.raises(ValueError, match="grabcut"):
        cut_out(photo, method="magic")


def test_without_hints_the_network_keeps_the_pixels_it_is_sure_of():
    from segmentation.grabcut import settled_by_prior

    prob = np.array([[0.95, 0.95, 0.5, 0.05, 0.05]], np.float32)
    coarse = np.array([[False, True, True, True, False]])  # GrabCut on a thumbnail: edges off by a pixel
    assert settled_by_prior(coarse, prob).tolist() == [[True, True, True, False, False]]
