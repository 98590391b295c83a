"""Errors the services raise; each carries a message a person can act on."""
from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of the domain errors; `status` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: Any, field: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    """The request is malformed or incomplete; nothing was changed."""

    status = 400


class ValidationFailed(InvalidInput):
    """Several fields are wrong at once: `errors` maps field name to message."""

    def __init__(self, errors: dict[str, Any], status: int = 400) -> None:
        super().__init__("; ".join(str(m) for m in errors.values()))
        self.errors = errors
        self.status = status


class NotAllowed(ServiceError):
    """The actor may not do this to this ticket."""

    status = 403


class IllegalTransition(ServiceError):
    """The ticket's state does not allow this action."""

    status = 409


class Conflict(ServiceError):
    """Someone else changed the ticket first; reload and try again."""

    status = 409


class PayloadTooLarge(InvalidInput):
    """An upload is larger than allowed."""

    status = 413


class Busy(ServiceError):
    """The server is at its limit for this work right now; the same request later succeeds."""

    status = 503
