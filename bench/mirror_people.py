"""Which detector tells "someone is at the mirror"? OpenCV haar face cascades and the HOG people detector on
real photos with people (worn VITON photos, CCP street photos) and without (flat shop photos, phone photos of
garments, studio catalogue photos, some of which show models).

    python bench/mirror_people.py [--n 60] [--json OUT.json]

For each set: how many photos each detector fires on, and its median ms (grey image at 320 px, as
``matching/mirror/people.py`` runs it). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
from mirror_common import SHARED, emit

SETS = {
    "worn (person)": "shop-worn-pairs/worn/p21*.jpg",
    "ccp street (person)": "ccp-masks/images/*.jpg",
    "shop flat (no person)": "shop-worn-pairs/shop/p21*.jpg",
    "phone garment (no person)": "phone-photos/images/*.jpg",
    "catalogue studio (some models)": "catalog-photos/images/*.jpg",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    cascades = {name: cv2.CascadeClassifier(cv2.data.haarcascades + f"haarcascade_{name}.xml")
                for name in ("frontalface_alt2", "frontalface_default", "profileface")}
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    result = {}
    for label, pattern in SETS.items():
        paths = sorted(SHARED.glob(pattern))[: args.n]
        hits = {name: 0 for name in [*cascades, "hog_weight>0.8"]}
        times: dict[str, list[float]] = {name: [] for name in hits}
        for path in paths:
            image = cv2.imread(str(path))
            h, w = image.shape[:2]
            scale = 320 / max(h, w)
            small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
            side = max(12, int(0.07 * min(grey.shape)))
            for name, cascade in cascades.items():
                started = time.perf_counter()
                found = cascade.detectMultiScale(grey, scaleFactor=1.15, minNeighbors=4, minSize=(side, side))
                times[name].append((time.perf_counter() - started) * 1000)
                hits[name] += len(found) > 0
            started = time.perf_counter()
            boxes, weights = hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
            times["hog_weight>0.8"].append((time.perf_counter() - started) * 1000)
            hits["hog_weight>0.8"] += bool(len(boxes)) and bool((np.asarray(weights).ravel() > 0.8).any())
        result[label] = {
            "n": len(paths),
            **{name: {"fires": hits[name], "ms_p50": round(statistics.median(times[name]), 1)} for name in hits},
        }
    emit(result, args.json)


if __name__ == "__main__":
    main()
