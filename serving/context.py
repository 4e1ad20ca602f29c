"""Per-request context that service functions may read without threading it through every call."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("medcode_request_id", default=None)
