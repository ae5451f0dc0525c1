"""One error shape for the whole API: ``{"detail": str, "code": str}``, plus DRF's messages per field.

DRF answers validation errors as ``{field: [messages]}`` and Django answers unknown URLs with an HTML page;
clients were promised ``{detail, code}`` (docs, schema). ``exception_handler`` (DRF's
``EXCEPTION_HANDLER``) reshapes DRF's errors, ``not_found`` (``handler404``) gives JSON under /api/, and
``document_errors`` (a drf-spectacular postprocessing hook) lists the error answers every operation can give.
"""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def _first(messages: Any) -> tuple[str, str]:
    """(message, code) of the first error in DRF's nested error data."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            text, code = _first(value)
            plain = key == "non_field_errors" or str(key).isdigit()  # list items are keyed by position
            return (text if plain else f"{key}: {text}"), code
    if isinstance(messages, list) and messages:
        return _first(messages[0])
    return str(messages), getattr(messages, "code", None) or "invalid"


def exception_handler(exc: Exception, context: dict) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data:
        if "code" not in data:
            data["code"] = getattr(data["detail"], "code", None) or "error"
        return response
    detail, code = _first(data)
    # The field messages stay where DRF puts them (clients read them), beside the promised detail and code.
    response.data = {**(data if isinstance(data, dict) else {"errors": data}), "detail": detail, "code": code}
    return response


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


__all__ = ["document_errors", "exception_handler", "not_found"]
