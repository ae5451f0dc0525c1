"""Signing in: failed-login lockout (django-axes) and API tokens for native apps.

Every sign-in path (the login page, the admin, the token endpoint) goes through Django's ``authenticate``,
where axes counts failures per username and per client address (``AXES_LOCKOUT_PARAMETERS``). Once either
reaches ``AXES_FAILURE_LIMIT`` within ``AXES_COOLOFF_TIME``, further attempts are refused without checking
the password (no PBKDF2 work), with a message saying when to try again. The API takes a token
(``Authorization: Token <key>``) or the browser session; Basic auth is off, since it ran PBKDF2 on every call.
"""
from __future__ import annotations

import math

from axes.helpers import get_cool_off
from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

LOCKED_OUT = "Too many failed sign-ins for this account or from this address. Try again in {minutes} minutes."


class LoginLockedOut(Exception):
    """Sign-in refused: too many failures for the username or the address."""


def _minutes_left(request: HttpRequest) -> int:
    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds() / 60)) if cool_off else 15


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: JSON ``{detail, code}`` for the API, the sign-in page with the reason otherwise."""
    minutes = _minutes_left(request)
    message = LOCKED_OUT.format(minutes=minutes)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message, "code": "locked_out"}, status=429)
    else:
        response = render(request, "registration/login.html", {"locked_out": message}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response


def user_authenticate(*, request: HttpRequest, username: str, password: str) -> AbstractBaseUser | None:
    """The active user with these credentials, or None; raises ``LoginLockedOut`` while locked out."""
    user = authenticate(request=request, username=username, password=password)
    if getattr(request, "axes_locked_out", False):
        raise LoginLockedOut(LOCKED_OUT.format(minutes=_minutes_left(request)))
    return user if user is not None and user.is_active else None


def auth_token_issue(*, user: AbstractBaseUser) -> Token:
    """The user's API token (one per user, made on first request)."""
    token, _ = Token.objects.get_or_create(user=user)
    return token


def auth_token_revoke(*, user: AbstractBaseUser) -> None:
    Token.objects.filter(user=user).delete()


class TokenThrottle(AnonRateThrottle):
    """Token requests per client address (``STOCKMATCH_TOKEN_RATE``), on top of the lockout."""

    scope = "auth_token"


_ERROR = inline_serializer("AuthError", {"detail": serializers.CharField(), "code": serializers.CharField()})


class AuthTokenApi(APIView):
    """Exchange a username and password for an API token (native apps), or revoke it."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenThrottle]

    class AuthTokenInputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})

    class AuthTokenSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="Send as `Authorization: Token <token>` on every API call.")
        username = serializers.CharField()

    @extend_schema(
        operation_id="auth_token_create", summary="Get an API token", request=AuthTokenInputSerializer,
        responses={
            200: AuthTokenSerializer,
            400: OpenApiResponse(_ERROR, description="Missing fields, or wrong username or password."),
            429: OpenApiResponse(_ERROR, description="Locked out after too many failures, or too many requests."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = self.AuthTokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = user_authenticate(request=request._request, **serializer.validated_data)
        except LoginLockedOut as exc:
            return Response({"detail": str(exc), "code": "locked_out"}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        if user is None:
            return Response({"detail": "That username and password did not match.", "code": "invalid_credentials"},
                            status=status.HTTP_400_BAD_REQUEST)
        token = auth_token_issue(user=user)
        return Response(self.AuthTokenSerializer({"token": token.key, "username": user.get_username()}).data)


class AuthTokenRevokeApi(APIView):
    """Sign a device out: the token stops working (a new one is issued on the next sign-in)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="auth_token_destroy", summary="Revoke your API token", request=None,
                   responses={204: OpenApiResponse(description="Revoked.")})
    def delete(self, request: Request) -> Response:
        auth_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
