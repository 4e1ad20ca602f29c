"""A plain ASGI middleware: request ids, an access log without identifiers, limits and checks on what
comes in, security headers, and the last-resort 500 handler (the client gets a request id, never a stack
trace; the log gets frames, never messages).

What it refuses before any route runs:
- a body over `max_body_bytes`, whether it declares a Content-Length or streams in chunks (413): the body
  is counted as it arrives and never read past the limit;
- control characters in the path, the query or a form field, and in JSON bodies NUL characters, lone
  surrogates, nesting deeper than `MAX_JSON_DEPTH` or a number Python will not convert (422 naming the
  place): text that PostgreSQL, the tokenizer or a log line cannot take never reaches them.

A request still running when the server's shutdown grace period ends is cancelled by the server; it
answers 503 (`shutting_down`), never a 500.

The access log names the route's template (`/v1/encounters/{encounter_id}`), never the path a client
sent, and a client's `X-Request-ID` only when it is 1-64 characters of `[A-Za-z0-9._-]` (else a new id).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medcode.serving.context import request_id_var
from medcode.serving.errors import FHIR_JSON, is_fhir_path, log_unexpected, operation_outcome

logger = logging.getLogger("serving.access")

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_JSON_DEPTH = 64
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"))
"""On every answer that does not set its own: API responses carry PHI and must not be cached or sniffed."""
UNMATCHED_ROUTE = "<no route>"
SHUTTING_DOWN = "the server is shutting down and stopped this request; send it again"


class BadInput(Exception):
    def __init__(self, status: int, detail: str, code: str) -> None:
        super().__init__(detail)
        self.status, self.detail, self.code = status, detail, code


def route_template(scope: Scope) -> str:
    """The matched route's path template (set by the router in the scope), never the client's path."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED_ROUTE


def valid_request_id(given: str) -> bool:
    return _REQUEST_ID_RE.fullmatch(given) is not None


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
        request_id = given if valid_request_id(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        method, path = _clean(scope.get("method", "")), scope.get("path", "")
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message["headers"] = [
                    *message.get("headers", []),
                    *extra,
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            _check_target(path, scope.get("query_string", b""))
            body_receive = await self._read_body(headers, receive) if _has_body(method, headers) else receive
            await self.app(scope, body_receive, send_with_id)
        except BadInput as exc:
            if not status["sent"]:
                await _send_json(send_with_id, exc.status, path, exc.detail, exc.code, request_id)
        except asyncio.CancelledError:
            # The server cancels what still runs when its shutdown grace period ends: answer 503 rather than
            # let the cancellation surface as a 500 with a stack trace (the model work was told to stop).
            if not status["sent"]:
                await _send_json(send_with_id, 503, path, SHUTTING_DOWN, "shutting_down", request_id)
        except Exception as exc:
            log_unexpected(exc, request_id, method, route_template(scope))
            if not status["sent"]:
                await _send_json(send_with_id, 500, path, "internal error", "internal_error", request_id)
        finally:
            request_id_var.reset(token)
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.info(
                "%s %s %s %.1fms request=%s",
                method,
                route_template(scope),
                status["code"],
                elapsed_ms,
                request_id,
            )

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> Receive:
        """Read the whole body (never past the limit), check it, and hand the app a replay of it."""
        length = headers.get("content-length", "")
        too_large = BadInput(413, f"request body over {self.max_body_bytes} bytes", "payload_too_large")
        if length.isdigit() and int(length) > self.max_body_bytes:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadInput(400, "the client went away before sending the body", "client_disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        _check_body(headers.get("content-type", ""), body)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _has_body(method: str, headers: dict[str, str]) -> bool:
    return (
        method not in ("GET", "HEAD", "OPTIONS")
        or "content-length" in headers
        or ("transfer-encoding" in headers)
    )


def _clean(text: str) -> str:
    return _CONTROL_RE.sub("?", text)[:20]


def _printable(text: str) -> str:
    """A client-sent name fit to quote in an error: printable characters only, at most 40."""
    return "".join(c if c.isprintable() and not "\ud800" <= c <= "\udfff" else "?" for c in text[:40])


def _check_target(path: str, query_string: bytes) -> None:
    if _CONTROL_RE.search(path):
        raise BadInput(422, "the path contains a control character", "invalid")
    if query_string:
        query = query_string.decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            if _CONTROL_RE.search(name) or _CONTROL_RE.search(value):
                raise BadInput(
                    422, f"query parameter {_clean(name)!r} contains a control character", "invalid"
                )


def _check_body(content_type: str, body: bytes) -> None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            if _CONTROL_RE.search(name) or _CONTROL_RE.search(value):
                raise BadInput(422, f"form field {_clean(name)!r} contains a control character", "invalid")
        return
    if not (media == "application/json" or media.endswith("+json")) or not body:
        return
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadInput(422, f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep", "invalid") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return  # the route answers malformed JSON with its own reason
    except ValueError:
        raise BadInput(
            422, "the JSON holds a number with more digits than this service reads", "invalid"
        ) from None
    problem = _json_problem(data)
    if problem is not None:
        raise BadInput(422, problem, "invalid")


def _json_problem(data: Any) -> str | None:
    """The first thing in a JSON document no database or tokenizer takes, as a sentence; else None."""
    for where, depth, value in _walk(data):
        if depth > MAX_JSON_DEPTH:
            return f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep"
        if isinstance(value, str):
            if "\x00" in value:
                return f"{where or 'the body'} contains a NUL character"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"{where or 'the body'} contains a lone surrogate (not valid Unicode text)"
    return None


def _walk(data: Any) -> Iterator[tuple[str, int, Any]]:
    stack: list[tuple[str, int, Any]] = [("", 0, data)]
    while stack:
        where, depth, value = stack.pop()
        yield where, depth, value
        if isinstance(value, dict):
            for key, item in value.items():
                name = _printable(str(key))
                yield f"{where}.{name}" if where else name, depth + 1, key
                stack.append((f"{where}.{name}" if where else name, depth + 1, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{index}]", depth + 1, item) for index, item in enumerate(value))


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
