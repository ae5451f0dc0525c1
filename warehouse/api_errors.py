"""Every API error has the same shape: ``{"detail": "<a sentence>", "code": "<machine code>"}``.

Validation errors add ``field`` (the first field at fault) and ``fields`` (every message per field, as
DRF reports them); unknown API paths answer a JSON 404 instead of an HTML page.
"""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with its answers reshaped into ``{detail, code}`` (the ``EXCEPTION_HANDLER`` setting)."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, ValidationError):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        field, message = _first_error(fields)
        body: dict[str, Any] = {"detail": message, "code": getattr(message, "code", None) or "invalid"}
        if field and field not in ("non_field_errors", "detail"):
            body["detail"] = f"{field}: {message}"
            body["field"] = field
        body["fields"] = fields
        response.data = body
    elif isinstance(data, dict) and "detail" in data and "code" not in data:
        data["code"] = getattr(data["detail"], "code", None) or "error"
    return response


def _first_error(errors: Any, field: str = "") -> tuple[str, ErrorDetail | str]:
    """The first message in DRF's nested error structure, with the top-level field it belongs to."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            return _first_error(value, field or str(key))
    if isinstance(errors, list):
        for value in errors:
            if value:
                return _first_error(value, field)
    if isinstance(errors, str) and errors:
        return field, errors
    return field, ErrorDetail("Invalid input.", code="invalid")


def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any unknown path under /api/ (a mistyped route, a non-integer id): a JSON 404, never an HTML page."""
    detail = "No such API endpoint or object."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            detail += f" Did you mean {request.path}/ (with the trailing slash)?"
    return JsonResponse({"detail": detail, "code": "not_found"}, status=404)
