"""Mirror API routes (mounted under /api/v1/)."""
from django.urls import path

from . import apis

urlpatterns = [
    path("mirror/recommendations", apis.RecommendationsApi.as_view(), name="mirror-recommendations"),
    path("mirror/products/<str:sku>", apis.ProductApi.as_view(), name="mirror-product"),
    path("mirror/shortlists", apis.ShortlistApi.as_view(), name="mirror-shortlists"),
    path("fitting-room/shortlists/", apis.FittingRoomShortlistsApi.as_view(), name="api-fitting-room-shortlists"),
    path("fitting-room/shortlists/<int:shortlist_id>/done/", apis.FittingRoomDoneApi.as_view(),
         name="api-fitting-room-done"),
]
