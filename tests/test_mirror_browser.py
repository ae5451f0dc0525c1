"""The kiosk page in headless Chromium: a fake camera shows a real photo of a shopper wearing a top; the page
captures it by itself once the picture is still, shows recommendations, and sends a shortlist."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from matching.mirror.models import MirrorKey, Shortlist
from tests.conftest import REPO_ROOT

from .mirror_fixtures import PAIRS, build_shop, worn_photo

ARTIFACTS = REPO_ROOT / "test-artifacts"
PORTRAIT = (540, 960)


def write_y4m(photo: Path, target: Path, size: tuple[int, int] = (720, 960), frames: int = 20) -> Path:
    """A still video (YUV4MPEG2, 4:2:0) of a real photo, for Chromium's fake camera."""
    rgb = np.asarray(Image.open(photo).convert("RGB").resize(size, Image.Resampling.BICUBIC))
    planes = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes()
    with open(target, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{size[0]} H{size[1]} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            handle.write(b"FRAME\n" + planes)
    return target


def kiosk_browser(profile: Path, camera: Path | None) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
             "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", f"--window-size={PORTRAIT[0]},{PORTRAIT[1]}"]
    if camera is not None:
        flags += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={camera}"]
    for flag in flags:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))


@pytest.fixture
def open_kiosk(tmp_path, request) -> Iterator:
    drivers: list[webdriver.Chrome] = []
    failures_before = request.session.testsfailed

    def start(camera: Path | None) -> webdriver.Chrome:
        driver = kiosk_browser(tmp_path / f"profile-{len(drivers)}", camera)
        driver.set_page_load_timeout(60)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        if request.session.testsfailed > failures_before:
            ARTIFACTS.mkdir(exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))
            (ARTIFACTS / f"{request.node.name}.html").write_text(driver.page_source)
        driver.quit()


def wait(driver: webdriver.Chrome, seconds: float = 120) -> WebDriverWait:
    return WebDriverWait(driver, seconds)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_kiosk_shows_recommendations_for_a_shopper_at_the_camera_and_sends_a_shortlist(
    open_kiosk, live_server, shared_data, tmp_path
):
    # given a shop, a mirror device key and a camera that sees a shopper wearing one of the tops
    build_shop(shared_data)
    _, key = MirrorKey.objects.create_key(name="kiosk")
    camera = write_y4m(worn_photo(shared_data, PAIRS[0]), tmp_path / "shopper.y4m")
    browser = open_kiosk(camera)
    # when the mirror opens its kiosk page once with its key
    browser.get(f"{live_server.url}/mirror/?key={key}")
    # then the key leaves the address bar and stays in the page's storage
    wait(browser, 30).until(lambda d: "key=" not in d.current_url)
    assert browser.execute_script("return localStorage.getItem('stockmatch.mirror.key')") == key
    # and with the picture held still the page captures by itself and shows large cards with sizes and prices
    wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".garment .similar .card")))
    skus = [card.get_attribute("data-sku") for card in browser.find_elements(By.CSS_SELECTOR, ".similar .card")]
    assert "TOP-2100" in skus
    first = browser.find_element(By.CSS_SELECTOR, ".similar .card")
    assert first.size["width"] >= 250 and first.find_element(By.CSS_SELECTOR, ".price").text
    look = browser.find_elements(By.CSS_SELECTOR, ".look .card")
    assert look and "Spring sale" in browser.find_element(By.CSS_SELECTOR, ".look").text
    assert browser.find_element(By.ID, "preview").get_property("videoWidth") > 0
    # when the shopper taps size M on the top and sends the list
    browser.find_element(By.CSS_SELECTOR, '.similar .card[data-sku="TOP-2100"] .size[data-size="M"]').click()
    wait(browser, 10).until(ec.visibility_of_element_located((By.CSS_SELECTOR, '#shortlist li[data-sku="TOP-2100"]')))
    browser.find_element(By.ID, "send").click()
    # then the page shows the pickup code, and the fitting room has the list
    code = wait(browser, 30).until(ec.visibility_of_element_located((By.ID, "pickup-code"))).text
    shortlist = Shortlist.objects.get(code=code)
    assert [(i.product.sku, i.size) for i in shortlist.items.all()] == [("TOP-2100", "M")]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_without_a_camera_the_kiosk_takes_a_photo_file_and_explains_an_empty_frame(open_kiosk, live_server, tmp_path):
    _, key = MirrorKey.objects.create_key(name="kiosk")
    browser = open_kiosk(None)
    browser.get(f"{live_server.url}/mirror/?key={key}")
    upload = wait(browser, 60).until(ec.visibility_of_element_located((By.ID, "upload")))
    assert "photo" in upload.text.lower()
    wall = tmp_path / "wall.jpg"
    Image.new("RGB", (720, 960), (214, 208, 200)).save(wall)
    browser.find_element(By.ID, "file").send_keys(str(wall))
    wait(browser, 60).until(ec.text_to_be_present_in_element((By.ID, "status"), "Hold the garment up to the mirror"))
    assert not browser.find_elements(By.CSS_SELECTOR, ".card")
