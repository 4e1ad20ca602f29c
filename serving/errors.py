"""Errors the service answers with a 4xx status, and the handlers that turn every error into JSON.

Responses carry the request id; FHIR paths answer an OperationOutcome. Nothing of the request body is
echoed in errors or written to the log, and no stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from medcode.data.errors import MedcodeError

logger = logging.getLogger(__name__)

FHIR_PREFIX = "/fhir/"
FHIR_JSON = "application/fhir+json"


class ServiceError(Exception):
    """An error with an HTTP status and a short machine-readable code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class InvalidRequest(ServiceError):
    status_code = 422
    code = "invalid"


class ServiceUnavailable(ServiceError):
    status_code = 503
    code = "unavailable"


class TooManyRequests(ServiceError):
    status_code = 429
    code = "too_many_requests"


class GatewayTimeout(ServiceError):
    status_code = 504
    code = "timeout"


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def is_fhir_path(path: str) -> bool:
    return path.startswith(FHIR_PREFIX)


FHIR_ISSUE_CODES = {400: "structure", 401: "login", 403: "forbidden", 404: "not-found", 409: "conflict"}
FHIR_ISSUE_CODES |= {
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    500: "exception",
    503: "transient",
    504: "timeout",
}


def operation_outcome(status: int, diagnostics: Sequence[str], request_id: str | None) -> dict[str, Any]:
    """A minimal FHIR R4 OperationOutcome (plain JSON: building it must never fail)."""
    issue_code = FHIR_ISSUE_CODES.get(status, "processing")
    outcome: dict[str, Any] = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": issue_code, "diagnostics": text[:1000]} for text in diagnostics
        ]
        or [{"severity": "error", "code": issue_code}],
    }
    if request_id:
        outcome["id"] = request_id
    return outcome


def error_response(
    request: Request,
    status: int,
    detail: Any,
    code: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    rid = request_id_of(request)
    if is_fhir_path(request.url.path):
        lines = [detail] if isinstance(detail, str) else [_error_line(e) for e in detail]
        return JSONResponse(
            operation_outcome(status, lines, rid), status_code=status, headers=headers, media_type=FHIR_JSON
        )
    return JSONResponse(
        {"detail": detail, "code": code, "request_id": rid}, status_code=status, headers=headers
    )


def _error_line(error: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ()))
    return f"{loc}: {error.get('msg', '')}" if loc else str(error.get("msg", ""))


def clean_validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without the offending input (it may hold note text) or internal context."""
    cleaned = []
    for error in errors:
        item = {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": error.get("type"),
        }
        cleaned.append(item)
    return cleaned


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(request, exc.status_code, exc.message, exc.code, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 422, clean_validation_errors(exc.errors()), "invalid")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(request, exc.status_code, str(exc.detail), "http_error", dict(exc.headers or {}))


async def _medcode_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(request, 422, str(exc), "invalid")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(MedcodeError, _medcode_error)


def log_unexpected(exc: BaseException, request_id: str | None, method: str, path: str) -> None:
    """Log an unexpected error with its frames only: messages may quote request data (note text)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error(
        "unhandled %s in %s %s (request %s)\n%s", type(exc).__name__, method, path, request_id, frames
    )
