"""A plain ASGI middleware: request ids, an access log without bodies, a body-size cap, and the last-resort
500 handler (the client gets a request id, never a stack trace; the log gets frames, never messages)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medcode.serving.context import request_id_var
from medcode.serving.errors import FHIR_JSON, is_fhir_path, log_unexpected, operation_outcome

logger = logging.getLogger("serving.access")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        method, path = scope.get("method", ""), scope.get("path", "")
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_body_bytes:
                await _send_json(
                    send_with_id,
                    413,
                    path,
                    f"request body over {self.max_body_bytes} bytes",
                    "payload_too_large",
                    request_id,
                )
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log_unexpected(exc, request_id, method, path)
            if not status["sent"]:
                await _send_json(send_with_id, 500, path, "internal error", "internal_error", request_id)
        finally:
            request_id_var.reset(token)
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.info("%s %s %s %.1fms request=%s", method, path, status["code"], elapsed_ms, request_id)


async def _send_json(send: Send, status: int, path: str, detail: str, code: str, request_id: str) -> None:
    payload: dict[str, Any]
    if is_fhir_path(path):
        payload, media = operation_outcome(status, [detail], request_id), FHIR_JSON
    else:
        payload, media = {"detail": detail, "code": code, "request_id": request_id}, "application/json"
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
