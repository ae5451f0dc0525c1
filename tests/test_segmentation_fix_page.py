"""The fix editor on a small phone: the current cut-out over the photo, buttons that never cover it, and a box
alone that re-cuts the garment inside it."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_browser.py are redefined as arguments
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from warehouse import services
from warehouse.models import Snapshot, SnapshotStatus

from .test_intake_browser import browser, sign_in, wait  # noqa: F401
from .test_intake_fixtures import make_worker, phone_photo_paths

SMALL_PHONE = (360, 640)


def _overlaps(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and a["y"] < b["y"] + b["height"] and (
        b["y"] < a["y"] + a["height"]
    )


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_fix_editor_shows_the_cut_out_and_a_box_recuts_inside_it(browser, live_server, shared_data):
    # given a worker's photo, processed: it has a cut-out mask
    ana = make_worker("ana")
    snapshot, _ = services.snapshot_create(uploaded_by=ana, photo=phone_photo_paths(shared_data, 8)[7].read_bytes())
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.MATCHED and snapshot.mask
    with snapshot.mask.open("rb") as fh:
        mask = np.asarray(Image.open(io.BytesIO(fh.read()))) > 127
    # when the worker opens the fix editor on a small phone
    sign_in(browser, live_server.url, "ana")
    browser.get(f"{live_server.url}/intake/s/{snapshot.pk}/fix/")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": SMALL_PHONE[0], "height": SMALL_PHONE[1], "deviceScaleFactor": 2, "mobile": True,
    })
    wait(browser).until(lambda d: d.execute_script("return window.innerHeight") == SMALL_PHONE[1])
    wait(browser).until(lambda d: d.find_element(By.ID, "fix-canvas").get_attribute("data-overlay") == "shown")

    # then the current cut-out is shown over the photo: what it leaves out is dimmed, the garment is not
    ys, xs = np.nonzero(mask)
    inside = (float(np.median(xs)) / mask.shape[1], float(np.median(ys)) / mask.shape[0])
    assert mask[int(inside[1] * mask.shape[0]), int(inside[0] * mask.shape[1])]
    outside_ys, outside_xs = np.nonzero(~mask)
    outside = (outside_xs[0] / mask.shape[1], outside_ys[0] / mask.shape[0])
    alpha = """
        const c = document.getElementById('fix-canvas');
        const [fx, fy] = arguments;
        return c.getContext('2d').getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data[3];
    """
    assert browser.execute_script(alpha, *inside) == 0
    assert browser.execute_script(alpha, *outside) > 0

    # and the photo fits on the screen with every button, none of which covers it
    wait(browser).until(lambda d: d.find_element(By.ID, "fix-run").rect["y"] + 40 <= SMALL_PHONE[1])
    photo = browser.find_element(By.ID, "fix-photo").rect
    assert photo["height"] >= 160
    for button in browser.find_elements(By.CSS_SELECTOR, ".btn"):
        assert button.is_displayed() and not _overlaps(button.rect, photo), button.text
        assert button.rect["y"] + button.rect["height"] <= SMALL_PHONE[1], button.text

    # when they draw a box around the middle of the photo alone and match again
    canvas = browser.find_element(By.ID, "fix-canvas")
    w, h = canvas.rect["width"], canvas.rect["height"]
    ActionChains(browser).move_to_element_with_offset(
        canvas, int(-0.3 * w), int(-0.3 * h)
    ).click_and_hold().move_by_offset(
        int(0.3 * w), int(0.3 * h)
    ).move_by_offset(int(0.3 * w), int(0.3 * h)).release().perform()
    browser.find_element(By.ID, "fix-run").click()
    wait(browser).until(lambda d: d.current_url.rstrip("/").endswith(f"/intake/s/{snapshot.pk}"))

    # then the box is the frame: the new cut-out lies inside it
    snapshot.refresh_from_db()
    x0, y0, x1, y1 = snapshot.hints["rect"]
    assert x0 == pytest.approx(0.2 * snapshot.width, abs=0.05 * snapshot.width)
    assert y1 == pytest.approx(0.8 * snapshot.height, abs=0.05 * snapshot.height)
    wait(browser).until(lambda _: Snapshot.objects.get(pk=snapshot.pk).status == SnapshotStatus.MATCHED)
    snapshot.refresh_from_db()
    with snapshot.mask.open("rb") as fh:
        recut = np.asarray(Image.open(io.BytesIO(fh.read()))) > 127
    ys, xs = np.nonzero(recut)
    sx, sy = recut.shape[1] / snapshot.width, recut.shape[0] / snapshot.height
    assert recut.any() and xs.min() >= x0 * sx - 2 and xs.max() <= x1 * sx + 2
    assert ys.min() >= y0 * sy - 2 and ys.max() <= y1 * sy + 2
