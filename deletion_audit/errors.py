"""One error hierarchy for the service, rendered as ``{"code", "message"}`` by one handler."""

from __future__ import annotations

from typing import Any, ClassVar


class AuditError(Exception):
    """An error a caller can cause or act on. Never a 500."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class BadRequest(AuditError):
    status_code = 400
    code = "bad_request"


class Unauthorized(AuditError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AuditError):
    status_code = 403
    code = "forbidden"


class NotFound(AuditError):
    status_code = 404
    code = "not_found"


class Conflict(AuditError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AuditError):
    status_code = 413
    code = "payload_too_large"


class Unprocessable(AuditError):
    status_code = 422
    code = "unprocessable"


class StartupRefused(Exception):
    """The instance must not start: its keys or its log do not match what it recorded."""
