"""Mirror devices authenticate with their own API key; nothing else opens the mirror API.

``Authorization: Api-Key <prefix>.<secret>``. The key is looked up by prefix and checked against its
SHA-512 hash on every request (no cache), so a key revoked in admin gets 401 on its very next request.
Requests are throttled per key (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["mirror"]``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_api_key.permissions import KeyParser

from .models import MirrorKey

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.request import Request
    from rest_framework.views import APIView


class MirrorKeyAuthentication(BaseAuthentication):
    keyword = KeyParser.keyword

    def authenticate(self, request: Request) -> tuple[AnonymousUser, MirrorKey] | None:
        key = KeyParser().get_from_authorization(request)
        if not key:
            return None
        try:
            device = MirrorKey.objects.get_from_key(key)
        except MirrorKey.DoesNotExist:
            raise AuthenticationFailed("This mirror key is not valid or has been revoked.") from None
        if device.has_expired:
            raise AuthenticationFailed("This mirror key has expired.")
        return AnonymousUser(), device

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class HasMirrorKey(BasePermission):
    message = "The mirror API needs a mirror device key."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, MirrorKey)


class MirrorKeyThrottle(SimpleRateThrottle):
    """Requests per mirror key, at the "mirror" rate (read at request time, so settings changes apply)."""

    scope = "mirror"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not isinstance(request.auth, MirrorKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


class MirrorKeyScheme(OpenApiAuthenticationExtension):
    target_class = "matching.mirror.auth.MirrorKeyAuthentication"
    name = "MirrorKey"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "`Api-Key <prefix>.<secret>`: a mirror device key created in admin.",
        }


class MirrorApiMixin:
    """Mirror key only (no staff session), throttled per key."""

    authentication_classes = [MirrorKeyAuthentication]
    permission_classes = [HasMirrorKey]
    throttle_classes = [MirrorKeyThrottle]
