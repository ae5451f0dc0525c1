from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import health, home

admin.site.site_header = "Stockmatch catalogue"
admin.site.site_title = "Stockmatch"

urlpatterns = [
    path("", home.home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("intake/", include("warehouse.intake_urls")),
    path("api/v1/", include("matching.urls")),
    path("api/v1/", include("warehouse.api_urls")),
    path("api/v1/", include("matching.mirror.urls")),
    path("mirror/", include("matching.mirror.page_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
