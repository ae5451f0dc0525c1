"""gunicorn settings for ``make serve`` (production): environment-driven, safe for photo uploads.

Threads serve slow phone uploads without tying up a process each; ``max_requests`` recycles workers so
memory freed after large photos goes back to the system. Each worker that matches in-process (no
broker) loads the models once (~750 MB): with a broker configured the web workers stay small.
"""
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))  # an upload matched in-process takes a few seconds
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "500"))
max_requests_jitter = 50
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
