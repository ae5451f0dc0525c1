"""Pages: the kiosk (public shell; its JavaScript calls the mirror API with the device key), the fitting-room
list (staff), and product photos for the mirror (resized once, content-addressed, cached by browsers)."""
from __future__ import annotations

import io
import re

from django.contrib.auth.views import redirect_to_login
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from PIL import Image

from catalog.imaging import encode_jpeg, to_rgb
from catalog.models import ProductImage, ProductStatus
from warehouse.roles import CATALOG, WAREHOUSE, has_role

from . import selectors, services
from .models import Shortlist

SHA256 = re.compile(r"^[0-9a-f]{64}$")


@require_GET
def kiosk(request: HttpRequest) -> HttpResponse:
    response = render(request, "mirror/kiosk.html", {"kiosk": {
        "idleSeconds": int(selectors.mirror_setting("IDLE_SECONDS", 60)),
        "recommendUrl": reverse("mirror-recommendations"),
        "productUrl": reverse("mirror-product", args=["SKU"]),
        "shortlistUrl": reverse("mirror-shortlists"),
    }})
    response["Cache-Control"] = "no-cache"
    response["Referrer-Policy"] = "no-referrer"  # the first visit's URL carries the device key
    return response


def _staff(request: HttpRequest) -> HttpResponse | None:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not (has_role(request.user, WAREHOUSE) or has_role(request.user, CATALOG)):
        return render(request, "warehouse/forbidden.html", status=403)
    return None


def fitting_room(request: HttpRequest) -> HttpResponse:
    refused = _staff(request)
    if refused:
        return refused
    return render(request, "mirror/fitting_room.html", {"shortlists": selectors.shortlists_open()})


@require_POST
def fitting_room_done(request: HttpRequest, shortlist_id: int) -> HttpResponse:
    refused = _staff(request)
    if refused:
        return refused
    try:
        services.shortlist_mark_done(shortlist_id=shortlist_id)
    except Shortlist.DoesNotExist as exc:
        raise Http404("No such shortlist.") from exc
    return redirect("mirror-fitting-room")


@require_GET
def product_image(request: HttpRequest, sha256: str) -> HttpResponse:
    """A catalogue photo of a product on sale, at most ``MIRROR["IMAGE_SIZE"]`` px, cached for a long time:
    the URL names the file's SHA-256, so a changed photo has a new URL."""
    if not SHA256.match(sha256):
        raise Http404
    size = int(selectors.mirror_setting("IMAGE_SIZE", 640))
    etag = f'"{sha256[:32]}-{size}"'
    headers = {
        "Cache-Control": f"public, max-age={int(selectors.mirror_setting('IMAGE_MAX_AGE', 30 * 24 * 3600))}, immutable",
        "ETag": etag,
    }
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    else:
        image = ProductImage.objects.filter(sha256=sha256, product__status=ProductStatus.ACTIVE).first()
        if image is None:
            raise Http404
        response = HttpResponse(_resized(image, size), content_type="image/jpeg")
    for name, value in headers.items():
        response[name] = value
    return response


def _resized(image: ProductImage, size: int) -> bytes:
    path = f"mirror/images/{image.sha256[:2]}/{image.sha256}-{size}.jpg"
    if default_storage.exists(path):
        with default_storage.open(path, "rb") as handle:
            return handle.read()
    with image.file.open("rb") as handle:
        picture = Image.open(io.BytesIO(handle.read()))
        picture.draft("RGB", (size, size))
        picture = to_rgb(picture)
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    data = encode_jpeg(picture, quality=85)
    default_storage.save(path, ContentFile(data))
    return data
