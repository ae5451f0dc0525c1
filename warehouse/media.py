"""Uploaded files under ``/media/``, served by the app with a permission check per file.

Catalogue product photos are public (the mirror and integrations show them). Photos taken in the
warehouse are not: a snapshot's files (original, preview, cut-out, mask) only for the worker who took it
and for roles with ``warehouse.view_snapshot`` (catalogue managers, supervisors); snapshot-derived
product photos (drafts made by "not in catalogue") only for staff who may view the catalogue. Anything
else is a 404. With S3-compatible storage (django-storages) files get the storage's own URLs instead.
"""
from __future__ import annotations

import mimetypes
import posixpath

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files.storage import default_storage
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from catalog.models import ImageRole, ProductImage
from catalog.thumbnails import thumbnail_source_sha256

from .models import Snapshot

PUBLIC, PRIVATE = "public", "private"


def media_access(*, user: AbstractBaseUser | AnonymousUser, name: str) -> str | None:
    """``"public"``, ``"private"`` (this user may see it) or None (not found, or not theirs)."""
    source_sha256 = thumbnail_source_sha256(name)
    if source_sha256 is not None:  # a small rendition: the access of the catalogue photo it was made from
        roles = set(ProductImage.objects.filter(sha256=source_sha256).values_list("role", flat=True))
        if roles - {ImageRole.SNAPSHOT}:
            return PUBLIC
        return PRIVATE if roles and user.is_authenticated and user.has_perm("catalog.view_productimage") else None
    image = ProductImage.objects.filter(file=name).only("role").first()
    if image is not None:
        if image.role != ImageRole.SNAPSHOT:
            return PUBLIC
        return PRIVATE if user.is_authenticated and user.has_perm("catalog.view_productimage") else None
    if not user.is_authenticated:
        return None
    snapshot = Snapshot.objects.filter(
        Q(original=name) | Q(preview=name) | Q(cutout=name) | Q(mask=name)
    ).only("uploaded_by_id").first()
    if snapshot is not None and (snapshot.uploaded_by_id == user.pk or user.has_perm("warehouse.view_snapshot")):
        return PRIVATE
    return None


def _user(request: HttpRequest) -> AbstractBaseUser | AnonymousUser:
    """The session's user, else the API token's (native apps fetch photos with their token)."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        found = None
    return found[0] if found else AnonymousUser()


def media_file(request: HttpRequest, path: str) -> FileResponse:
    name = posixpath.normpath(path).lstrip("/")
    if name.startswith("..") or name != path:
        raise Http404("No such file.")
    access = media_access(user=_user(request), name=name)
    if access is None or not default_storage.exists(name):
        raise Http404("No such file.")
    content_type, _ = mimetypes.guess_type(name)
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type or "application/octet-stream")
    response["Cache-Control"] = "public, max-age=86400" if access == PUBLIC else "private, max-age=3600"
    return response
