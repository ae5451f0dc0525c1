from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import accounts, health, home, media
from .api_errors import api_not_found
from .dashboard import views as dashboard

admin.site.site_header = "Stockmatch catalogue"
admin.site.site_title = "Stockmatch"

handler404 = "warehouse.api_errors.not_found"

urlpatterns = [
    path("", home.home, name="home"),
    path("admin/dashboard/", admin.site.admin_view(dashboard.dashboard), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("intake/", include("warehouse.intake_urls")),
    path("api/v1/auth/token/", accounts.AuthTokenApi.as_view(), name="api-auth-token"),
    path("api/v1/auth/token/revoke/", accounts.AuthTokenRevokeApi.as_view(), name="api-auth-token-revoke"),
    path("api/v1/", include("matching.urls")),
    path("api/v1/", include("warehouse.api_urls")),
    path("api/v1/", include("matching.mirror.urls")),
    path("mirror/", include("matching.mirror.page_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Uploaded files, in development and production alike: each request is checked (warehouse/media.py).
    path("media/<path:path>", media.media_file, name="media"),
    re_path(r"^api/(?P<path>.*)$", api_not_found),  # last: unknown API paths get JSON, not an HTML 404
]
