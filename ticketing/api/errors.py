"""Errors of the staff API (/api/v1), always JSON: `{"error": {"code", "message"}}`.

Validation errors add `"errors": {"field": "message"}`. Every status the API can
answer with has one code here, and the OpenAPI document lists the same codes.
"""
from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ticketing.services.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
    ServiceError,
    ValidationFailed,
)

# The `code` of each status; 409 has three, so a client can tell them apart.
CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    500: "server_error",
}
ILLEGAL_TRANSITION = "illegal_transition"
VERSION_MISMATCH = "version_mismatch"
ALL_CODES = (*CODES.values(), ILLEGAL_TRANSITION, VERSION_MISMATCH)

MESSAGES: dict[int, Any] = {
    400: _l("The request is malformed."),
    401: _l("Send a valid staff API key: Authorization: Bearer <key>."),
    403: _l("You may not do that."),
    404: _l("There is no such page, or it is not yours to see."),
    405: _l("This method is not allowed here."),
    413: _l("The request body is too large."),
    415: _l("Send the body as JSON (Content-Type: application/json)."),
    422: _l("Some fields are not valid."),
    500: _l("Nothing was saved. Please try again later."),
}


class ApiError(Exception):
    """An answer other than success: status, code, message, and per-field errors."""

    def __init__(self, status: int, message: Any = None, code: str | None = None,
                 errors: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(message or MESSAGES.get(status, "")))
        self.status = status
        self.code = code or CODES.get(status, "bad_request")
        self.message = message if message is not None else MESSAGES.get(status, "")
        self.errors = errors
        self.headers = headers or {}

    def response(self) -> Response:
        """The JSON response for this error."""
        body: dict[str, Any] = {"error": {"code": self.code, "message": str(self.message)}}
        if self.errors is not None:
            body["errors"] = {str(name): str(message) for name, message in self.errors.items()}
        response = json_response(body, self.status)
        response.headers.update(self.headers)
        return response


def json_response(body: Any, status: int = 200) -> Response:
    """`body` as UTF-8 JSON (Chinese stays readable); escaped if it holds unpaired surrogates."""
    try:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a client's field name we echo back; never stored data
        data = json.dumps(body, separators=(",", ":")).encode("ascii")
    return current_app.response_class(data, status=status, mimetype="application/json")


def validation_failed(errors: dict[str, Any]) -> ApiError:
    """422 with a message per field."""
    return ApiError(422, errors=errors)


def from_http(exc: HTTPException) -> ApiError:
    """A Werkzeug error (404, 405, 413 …) in the API's own shape."""
    status = exc.code or 500
    if status not in CODES:
        status = 400 if 400 <= status < 500 else 500
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    return ApiError(status, headers=headers)


def from_service(exc: ServiceError, field_names: dict[str, str] | None = None) -> ApiError:
    """A service error as the API answers it: 403, 409 or 422."""
    names = field_names or {}
    if isinstance(exc, NotAllowed):
        return ApiError(403, exc.message)
    if isinstance(exc, IllegalTransition):
        return ApiError(409, exc.message, code=ILLEGAL_TRANSITION)
    if isinstance(exc, Conflict):
        return ApiError(409, exc.message)
    if isinstance(exc, ValidationFailed):
        return validation_failed({names.get(k, k): v for k, v in exc.errors.items()})
    if isinstance(exc, InvalidInput) and exc.status == 413:
        return ApiError(413, exc.message)
    errors = {names.get(exc.field, exc.field): exc.message} if exc.field else {}
    return ApiError(422, exc.message, errors=errors)
