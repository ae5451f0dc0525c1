"""Every API error has the same shape: ``{"detail": "<a sentence>", "code": "<machine code>"}``.

Validation errors add ``field`` (the first field at fault) and ``fields`` (every message per field), and keep
DRF's per-field messages at the top level where existing clients read them. ``exception_handler`` is DRF's
``EXCEPTION_HANDLER``; unknown API paths (``api_not_found``, the last URL pattern) and Django's 404s under /api/
(``not_found``, ``handler404``) answer JSON; ``document_errors`` (a drf-spectacular postprocessing hook) lists
the error answers every operation can give.
"""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import page_not_found
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with its answers reshaped into ``{detail, code}``."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, ValidationError):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        field, message = _first_error(fields)
        body: dict[str, Any] = {**fields, "detail": message, "code": getattr(message, "code", None) or "invalid"}
        if field and field not in ("non_field_errors", "detail"):
            body["detail"] = f"{field}: {message}"
            body["field"] = field
        body["fields"] = fields
        response.data = body
    elif isinstance(data, dict) and "detail" in data and "code" not in data:
        data["code"] = getattr(data["detail"], "code", None) or "error"
    return response


api_exception_handler = exception_handler  # the name the intake settings used


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


@csrf_exempt  # a POST with a session cookie to a mistyped path must still get the JSON 404, not a CSRF page
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


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: JSON for the API (an id that is not a number), the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
    "additionalProperties": {"description": "Messages for the field of that name (validation errors)."},
    "required": ["detail", "code"],
}
_ERRORS = {
    "400": "Invalid input (body or query parameters), with the reason.",
    "401": "Not signed in (no or an invalid token).",
    "403": "Signed in without the role this needs.",
    "404": "No such object (or not yours), or a page number past the end.",
}


def document_errors(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Postprocessing hook: add the shared error answers to every operation that does not describe its own."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, description in _ERRORS.items():
                if status == "401" and operation.get("security") == [{}]:
                    continue
                operation["responses"].setdefault(status, {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                })
    return result


__all__ = ["api_not_found", "document_errors", "exception_handler", "not_found"]
