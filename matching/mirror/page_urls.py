"""Mirror pages (mounted under /mirror/)."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.kiosk, name="mirror-kiosk"),
    path("fitting-room/", views.fitting_room, name="mirror-fitting-room"),
    path("fitting-room/<int:shortlist_id>/done/", views.fitting_room_done, name="mirror-fitting-room-done"),
    path("images/<str:sha256>.jpg", views.product_image, name="mirror-image"),
]
