"""A catalogue manager clears review-queue items in headless Chromium with the keyboard alone."""
# ruff: noqa: F811 - the browser fixture imported from tests/test_intake_browser.py is redefined as an argument
from __future__ import annotations

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec

from catalog.models import Variant
from tests.review_fixtures import catalogue_manager, confirm, make_snapshot, real_products, warehouse_worker
from tests.test_intake_browser import browser, wait  # noqa: F401 - browser is a fixture
from tests.test_intake_fixtures import PASSWORD
from warehouse.models import Arrival, SnapshotStatus
from warehouse.review.models import LabelledPair, ReviewDecision

BROWSER_PHONE = False  # the admin, on a desktop window


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
    third = make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.MATCHED,
                          scored=[(products[2], 0.7), (products[3], 0.69)], photo_index=2)

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
    # and on the last item the digit 2 picks the second candidate
    last = browser.find_element(By.ID, f"item-{third.pk}")
    wait(browser).until(lambda _: "is-current" in last.get_attribute("class"))
    press(browser, "2")
    wait(browser).until(lambda _: "is-done" in last.get_attribute("class"))
    assert LabelledPair.objects.get(snapshot=third).product_id == products[3].pk
    assert browser.find_element(By.ID, "rq-total").text == "0"
