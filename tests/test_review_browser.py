"""A catalogue manager clears review-queue items in headless Chromium with the keyboard alone."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from catalog.models import Variant
from tests.conftest import REPO_ROOT
from tests.review_fixtures import catalogue_manager, confirm, make_snapshot, real_products, warehouse_worker
from tests.test_intake_fixtures import PASSWORD
from warehouse.models import Arrival, SnapshotStatus
from warehouse.review.models import LabelledPair, ReviewDecision

ARTIFACTS = REPO_ROOT / "test-artifacts"


def chromium(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))


@pytest.fixture
def browser(tmp_path, request) -> Iterator[webdriver.Chrome]:
    driver = chromium(tmp_path / "chromium-profile")
    driver.set_page_load_timeout(60)
    failures_before = request.session.testsfailed
    yield driver
    if request.session.testsfailed > failures_before:
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))
        (ARTIFACTS / f"{request.node.name}.html").write_text(driver.page_source)
    driver.quit()


def wait(driver: webdriver.Chrome, seconds: float = 60) -> WebDriverWait:
    return WebDriverWait(driver, seconds)


def press(driver: webdriver.Chrome, keys: str) -> None:
    """Type into whatever has the focus, as a person at the keyboard would."""
    webdriver.ActionChains(driver).send_keys(keys).perform()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_keyboard_only_accept_and_reassign(browser, live_server, shared_data, settings):
    settings.MATCHING = {**settings.MATCHING, "AUTO_EMBED": False}  # no embedding needed to review
    # given two items in the queue: one the matcher was unsure of, one confirmed under the threshold
    products = real_products(shared_data, 4)
    worker = warehouse_worker()
    catalogue_manager("carla")
    unsure = make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.MATCHED,
                           scored=[(products[0], 0.72), (products[1], 0.6)])
    booked = make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.MATCHED,
                           scored=[(products[1], 0.7), (products[2], 0.65)], photo_index=1)
    confirm(booked, products[1], size="M", quantity=2)

    # when the catalogue manager signs in to the admin and opens the review queue
    browser.get(f"{live_server.url}/admin/login/?next=/admin/warehouse/reviewitem/")
    wait(browser).until(ec.presence_of_element_located((By.ID, "id_username"))).send_keys("carla")
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD + Keys.ENTER)
    first = wait(browser).until(ec.visibility_of_element_located((By.ID, f"item-{unsure.pk}")))
    assert browser.find_element(By.ID, f"item-{booked.pk}").is_displayed()
    photo = first.find_element(By.CSS_SELECTOR, ".rq-query img")
    wait(browser).until(lambda _: photo.get_property("complete") and photo.get_property("naturalWidth") > 0)
    assert "is-current" in first.get_attribute("class")  # the oldest item has the focus

    # then "a" accepts the focused item (the best candidate: the worker had not chosen)
    press(browser, "a")
    wait(browser).until(lambda _: "is-done" in first.get_attribute("class"))
    pair = LabelledPair.objects.get(snapshot=unsure)
    assert (pair.decision, pair.product_id) == (ReviewDecision.ACCEPT, products[0].pk)

    # and the focus moved on; "r" opens the search, typing a SKU and Enter reassigns to it
    second = browser.find_element(By.ID, f"item-{booked.pk}")
    wait(browser).until(lambda _: "is-current" in second.get_attribute("class"))
    press(browser, "r")
    search = second.find_element(By.CSS_SELECTOR, ".rq-q")
    wait(browser).until(lambda driver: driver.switch_to.active_element == search)
    press(browser, products[3].sku + Keys.ENTER)
    wait(browser).until(lambda _: "is-done" in second.get_attribute("class"))
    assert f"reassigned ({products[3].sku})" in second.find_element(By.CSS_SELECTOR, ".rq-msg").text
    pair = LabelledPair.objects.get(snapshot=booked)
    assert (pair.decision, pair.product_id, pair.worker_product_id) == (ReviewDecision.REASSIGN, products[3].pk,
                                                                        products[1].pk)
    assert Arrival.objects.get(snapshot=booked).variant.product_id == products[3].pk
    assert Variant.objects.get(product=products[3], size="M").stock_quantity == 7
    assert Variant.objects.get(product=products[1], size="M").stock_quantity == 5
    assert browser.find_element(By.ID, "rq-total").text == "0"
