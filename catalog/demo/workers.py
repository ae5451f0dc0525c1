"""Start-up of a photo-rendering worker process. Imports no models: Django is not set up yet when it loads."""
from __future__ import annotations


def worker_init() -> None:
    import cv2
    import django

    cv2.setNumThreads(1)  # the pool is the parallelism; OpenCV threads on top would only contend
    django.setup()  # the spec module reads choices from catalog.models
