"""Phone intake pages (mounted under /intake/)."""
from django.urls import path

from . import views

app_name = "intake"

urlpatterns = [
    path("", views.capture, name="capture"),
    path("today/", views.today, name="today"),
    path("s/<int:snapshot_id>/", views.snapshot_page, name="snapshot"),
    path("s/<int:snapshot_id>/fix/", views.fix_page, name="fix"),
    path("s/<int:snapshot_id>/image/<str:kind>/", views.snapshot_image, name="image"),
]
