"""Phone intake pages (mounted under /intake/)."""
from django.urls import path  # noqa: F401

urlpatterns: list = []
