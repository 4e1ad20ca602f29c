"""The error body every endpoint answers with, and the statuses each endpoint declares in the OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorPublic(BaseModel):
    """A 4xx/5xx answer: a reason a person can act on, a machine-readable code and the request id."""

    detail: Any
    """A sentence, or for 422 a list of `{loc, msg, type}` without the offending input."""
    code: str
    request_id: str | None = None


ERROR_DESCRIPTIONS = {
    400: "The body could not be read (not JSON, or not the declared encoding)",
    401: "No valid API key (Authorization: Bearer KEY) or UI session",
    403: "The caller's role may not do this, or a UI request lacks its CSRF token",
    404: "No such resource, or not one this caller may see",
    409: "Stale or conflicting request (lease, item state, codes, an encounter id another client uses)",
    413: "Body, document count or note size over the service's limits (the reason names the limit)",
    415: "The body is not application/json",
    422: "Invalid input: the reason names each field (NUL characters, lone surrogates, empty notes, ...)",
    429: "Too many requests or failed sign-ins: wait the seconds in Retry-After",
    503: "No suggestion worker came free within the time budget (Retry-After)",
    504: "The suggestion did not finish within its time budget",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, each with the error body."""
    return {status: {"model": ErrorPublic, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}


AUTH_ERRORS = errors(401, 403, 422, 429)
"""What any authenticated endpoint may answer: no key, wrong role, bad parameters, throttled."""
READ_ERRORS = errors(401, 403, 404, 422, 429)
BODY_ERRORS = errors(400, 413, 415)
SUGGEST_ERRORS = errors(503, 504)
