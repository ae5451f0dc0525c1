"""Try the manager screens as a new user would, on ``make demo`` data, in headless Chromium.

1. A warehouse worker (API, as the phone page does) photographs ``--snapshots`` demo snapshots: where the app
   says "in catalogue" the worker confirms its SKU, otherwise confirms the top candidate anyway (a hurried
   worker) or, for every fourth item, marks it new (a draft product). That fills the review queue.
2. The catalogue manager signs in to the admin and clears the review queue with the keyboard only: ``a``
   where the first candidate (or the worker's choice) is the right product, ``r`` + SKU + Enter to reassign,
   ``m`` + SKU + Enter to merge a draft into the right product. The right SKU comes from ``snapshots.csv``
   (the manager knows the garment in front of them).
3. The manager opens the cleanup findings, filters duplicates, ticks the planted cluster
   (DEMO-TOP-0001/0901/0902) and accepts it through the confirmation page; the merged SKUs must resolve
   to the keeper and the keeper's stock must be the sum.

Prints what happened at each step and saves screenshots under ``--out``.

Usage (a server on demo data, e.g. ``make demo`` or ``manage.py runserver``)::

    .venv/bin/python bench/admin_walkthrough.py --url http://127.0.0.1:8000 --password "$(cat var/demo-password.txt)"
"""
from __future__ import annotations

import argparse
import csv
import json
import time
import urllib.request
import uuid
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

REPO = Path(__file__).resolve().parent.parent
CLUSTER = {"DEMO-TOP-0001", "DEMO-TOP-0901", "DEMO-TOP-0902"}


def api(url: str, path: str, *, token: str | None = None, data: dict | None = None,
        files: dict[str, Path] | None = None) -> dict:
    headers = {"Authorization": f"Token {token}"} if token else {}
    body = None
    if files:
        boundary = uuid.uuid4().hex
        parts = []
        for name, file in files.items():
            head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file.name}\"\r\n"
                    "Content-Type: image/jpeg\r\n\r\n")
            parts.append(head.encode() + file.read_bytes() + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url + path, data=body, headers=headers, method="POST" if body else "GET")
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read() or b"{}")


def worker_fills_the_queue(url: str, password: str, snapshots: Path, count: int) -> dict[int, str]:
    token = api(url, "/api/v1/auth/token/", data={"username": "worker", "password": password})["token"]
    with open(snapshots / "snapshots.csv") as handle:
        rows = list(csv.DictReader(handle))[:count]
    truth: dict[int, str] = {}
    for n, row in enumerate(rows):
        snap = api(url, "/api/v1/intake/snapshots/", token=token, files={"photo": snapshots / row["image"]})
        for _ in range(120):
            snap = api(url, f"/api/v1/intake/snapshots/{snap['id']}/", token=token)
            if snap["status"] not in ("pending", "processing", "queued"):
                break
            time.sleep(1)
        truth[snap["id"]] = row["sku"]
        if snap.get("product"):
            print(f"  #{snap['id']} {row['image']}: already handled ({snap['status']})")
            continue
        decision = snap.get("decision") or {}
        candidates = snap.get("candidates") or []
        top = candidates[0] if candidates else None
        if decision.get("in_catalogue") or (top and n % 4 != 3):
            variant = top["sizes"][0]["variant_id"]
            api(url, f"/api/v1/intake/snapshots/{snap['id']}/confirm/", token=token,
                data={"variant_id": variant, "quantity": 1})
            verdict = "said in catalogue" if decision.get("in_catalogue") else "unsure, worker took the top one"
            right = "right" if top["sku"] == row["sku"] else f"WRONG (is {row['sku']})"
            print(f"  #{snap['id']} {row['image']}: {verdict}: {top['sku']} {top['score']:.2f} -> confirmed, {right}")
        else:
            api(url, f"/api/v1/intake/snapshots/{snap['id']}/new/", token=token, data={"size": "M"})
            print(f"  #{snap['id']} {row['image']}: marked new (draft); really {row['sku']}")
    return truth


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService("/usr/bin/chromedriver"), options=options)


def sign_in(driver: webdriver.Chrome, url: str, password: str, next_path: str) -> None:
    driver.get(f"{url}/admin/login/?next={next_path}")
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "id_username"))).send_keys("catalogue")
    driver.find_element(By.ID, "id_password").send_keys(password + Keys.ENTER)


def press(driver: webdriver.Chrome, keys: str) -> None:
    webdriver.ActionChains(driver).send_keys(keys).perform()


def manager_clears_the_queue(driver: webdriver.Chrome, url: str, truth: dict[int, str], out: Path) -> None:
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "review")))
    driver.save_screenshot(str(out / "review-queue.png"))
    cards = driver.find_elements(By.CSS_SELECTOR, "article.rq-card")
    print(f"  review queue: {len(cards)} item(s), total shown {driver.find_element(By.ID, 'rq-total').text}")
    for _ in range(len(cards)):
        current = driver.find_elements(By.CSS_SELECTOR, "article.rq-card.is-current")
        if not current:
            break
        card = current[0]
        snapshot_id = int(card.get_attribute("data-id"))
        right = truth.get(snapshot_id)
        chosen = card.find_elements(By.CSS_SELECTOR, ".rq-cand.is-choice")
        first = card.find_elements(By.CSS_SELECTOR, ".rq-cand")
        shown = (chosen or first)[0].get_attribute("data-sku") if (chosen or first) else None
        draft = card.get_attribute("data-draft") == "1"
        if right is None:
            press(driver, "j")
            continue
        if draft:
            press(driver, "m")
            action = f"merge draft into {right}"
        elif shown == right:
            press(driver, "a")
            action = f"accept {right}"
        else:
            press(driver, "r")
            action = f"reassign {shown} -> {right}"
        if not action.startswith("accept"):
            search = card.find_element(By.CSS_SELECTOR, ".rq-q")
            WebDriverWait(driver, 10).until(lambda d, s=search: d.switch_to.active_element == s)
            press(driver, right)
            WebDriverWait(driver, 20).until(lambda d, c=card: c.find_elements(By.CSS_SELECTOR, ".rq-results li"))
            press(driver, Keys.ENTER)
        WebDriverWait(driver, 60).until(lambda d, c=card: "is-done" in c.get_attribute("class"))
        print(f"  #{snapshot_id}: {action}: {card.find_element(By.CSS_SELECTOR, '.rq-msg').text}")
    driver.save_screenshot(str(out / "review-queue-done.png"))
    driver.get(f"{url}/admin/warehouse/reviewitem/")
    left = driver.find_element(By.ID, "rq-total").text
    print(f"  review queue after reload: {left} item(s) left")


def manager_merges_the_cluster(driver: webdriver.Chrome, url: str, out: Path) -> None:
    driver.get(f"{url}/admin/catalog/finding/?kind__exact=duplicate")
    rows = WebDriverWait(driver, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"))
    driver.save_screenshot(str(out / "duplicates.png"))
    target = None
    for row in rows:
        if all(sku in row.text for sku in CLUSTER):
            target = row
        print(f"  finding: {row.text.splitlines()[0][:110]}")
    if target is None:
        raise SystemExit("the planted duplicate cluster was not among the findings")
    if "Accepted" in target.text:
        print("  the planted cluster was merged on an earlier run")
        return
    target.find_element(By.CSS_SELECTOR, "input.action-select").click()
    Select(driver.find_element(By.NAME, "action")).select_by_value("accept")
    driver.find_element(By.NAME, "index").click()
    confirm = WebDriverWait(driver, 30).until(ec.element_to_be_clickable((By.ID, "accept-confirm")))
    driver.save_screenshot(str(out / "duplicates-confirm.png"))
    print(f"  confirmation page: {driver.find_element(By.ID, 'accept-plans').text}")
    confirm.click()
    messages = WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "ul.messagelist li"))
    print("  " + " | ".join(m.text for m in messages))
    driver.save_screenshot(str(out / "duplicates-merged.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--password", required=True, help="the demo password (var/demo-password.txt)")
    parser.add_argument("--snapshots", type=int, default=8)
    parser.add_argument("--snapshot-dir", type=Path, default=REPO / "var" / "media" / "demo" / "snapshots")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "walkthrough")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("worker:")
    truth = worker_fills_the_queue(args.url, args.password, args.snapshot_dir, args.snapshots)
    driver = browser()
    try:
        print("catalogue manager, review queue:")
        sign_in(driver, args.url, args.password, "/admin/warehouse/reviewitem/")
        manager_clears_the_queue(driver, args.url, truth, args.out)
        print("catalogue manager, duplicates:")
        manager_merges_the_cluster(driver, args.url, args.out)
    finally:
        driver.quit()
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
