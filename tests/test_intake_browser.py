"""A worker on a phone-sized headless Chromium signs in, photographs an item, sees candidates and books it."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from catalog.models import Variant
from tests.conftest import REPO_ROOT
from warehouse.models import Arrival, Snapshot, SnapshotStatus

from .test_intake_fixtures import (
    PASSWORD,
    build_catalogue,
    make_worker,
    phone_photo_paths,
)

ARTIFACTS = REPO_ROOT / "test-artifacts"
VIEWPORT = (390, 844)
DESKTOP = (1400, 1000)


def chromium(profile: Path, *, phone: bool = True) -> webdriver.Chrome:
    """Headless Chromium: a phone (the intake pages) or a desktop window (the admin)."""
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    size = VIEWPORT if phone else DESKTOP
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"):
        options.add_argument(flag)
    if phone:
        options.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": VIEWPORT[0], "height": VIEWPORT[1], "pixelRatio": 2.0, "touch": True},
            "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/126.0 Mobile Safari/537.36",
        })
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))


@pytest.fixture
def browser(tmp_path, request) -> Iterator[webdriver.Chrome]:
    """A phone, unless the test module sets ``BROWSER_PHONE = False``; keeps a screenshot when the test fails."""
    driver = chromium(tmp_path / "chromium-profile", phone=getattr(request.module, "BROWSER_PHONE", True))
    driver.set_page_load_timeout(60)
    failures_before = request.session.testsfailed
    yield driver
    if request.session.testsfailed > failures_before:  # the test's call phase failed: keep what it saw
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))
        (ARTIFACTS / f"{request.node.name}.html").write_text(driver.page_source)
    driver.quit()


def wait(driver: webdriver.Chrome, seconds: float = 90) -> WebDriverWait:
    return WebDriverWait(driver, seconds)


def sign_in(driver: webdriver.Chrome, base_url: str, username: str) -> None:
    """Open intake, get sent to the login page, sign in, and land on the capture page."""
    driver.get(f"{base_url}/intake/")
    wait(driver).until(ec.presence_of_element_located((By.ID, "id_username"))).send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(ec.visibility_of_element_located((By.ID, "take-photo")))


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_photographs_an_item_and_books_it_on_a_phone(browser, live_server, shared_data):
    # given a catalogue and a warehouse worker
    catalogue = build_catalogue(shared_data, n=4)
    make_worker("ana")
    # when they open intake and sign in, they land on the capture page with a big photo button
    sign_in(browser, live_server.url, "ana")
    take = browser.find_element(By.ID, "take-photo")
    assert take.size["height"] >= 48 and take.size["width"] >= VIEWPORT[0] * 0.8
    # when they take a photo (the camera hands the page a file)
    browser.find_element(By.ID, "photo").send_keys(str(phone_photo_paths(shared_data, 1)[0]))
    # then the page uploads it, opens the item and shows candidates beside the cut-out
    first = wait(browser).until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#cands .cand")))
    assert "/intake/s/" in browser.current_url
    assert browser.find_element(By.ID, "img-cutout").get_attribute("src")
    assert first.size["height"] >= 48
    product_id = int(first.get_attribute("data-product"))
    # when they tap the first candidate, pick size M, quantity 3, bin A-1 and confirm
    first.click()
    wait(browser).until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#sizes button[data-size=M]"))).click()
    browser.find_element(By.ID, "qty-plus").click()
    browser.find_element(By.ID, "qty-plus").click()
    browser.find_element(By.ID, "bin").send_keys("a-1")
    browser.find_element(By.ID, "sheet-submit").click()
    # then the arrival is booked and shown with an undo button
    booked = wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#arrivals li")))
    assert "3 ×" in booked.text and "A-1" in booked.text
    assert booked.find_element(By.TAG_NAME, "button").text == "Undo"
    arrival = Arrival.objects.get()
    assert (arrival.quantity, arrival.bin_location, arrival.variant.size) == (3, "A-1", "M")
    assert arrival.snapshot.status == SnapshotStatus.CONFIRMED and arrival.snapshot.product_id == product_id
    assert Variant.objects.get(product_id=product_id, size="M").stock_quantity == 8
    assert product_id in {product.pk for product in catalogue}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_file_that_is_not_a_photo_is_explained_on_the_phone(browser, live_server, tmp_path):
    make_worker("ana")
    sign_in(browser, live_server.url, "ana")
    note = tmp_path / "delivery-note.jpg"
    note.write_bytes(b"%PDF-1.7 a delivery note, not a photo")
    browser.find_element(By.ID, "photo").send_keys(str(note))
    state = wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#queue .q-state.bad")))
    assert "not a photo Stockmatch can read" in state.text
    assert browser.find_element(By.CSS_SELECTOR, "#queue .q-remove").is_displayed()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_photo_taken_without_signal_survives_a_reload_and_uploads_later(browser, live_server, shared_data):
    make_worker("ana")
    sign_in(browser, live_server.url, "ana")
    # given the upload endpoint cannot be reached (the pages still load)
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/v1/intake/snapshots/*"]})
    # when a photo is taken, and the page is reloaded before the connection comes back
    browser.find_element(By.ID, "photo").send_keys(str(phone_photo_paths(shared_data, 3)[2]))
    waiting = wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#queue .q-state")))
    wait(browser).until(lambda _: "trying again" in waiting.text or "Waiting" in waiting.text)
    assert Snapshot.objects.count() == 0
    browser.refresh()
    # then the photo is still on the phone
    wait(browser).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#queue li")))
    # and once the server is reachable it is uploaded with its key, once, and leaves the queue
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    wait(browser).until(ec.invisibility_of_element_located((By.CSS_SELECTOR, "#queue li")))
    snapshot = Snapshot.objects.get()
    assert len(snapshot.idempotency_key) == 36 and snapshot.status in {SnapshotStatus.MATCHED, SnapshotStatus.RECEIVED}
