"""Bounds on what one client can make the service do: failed sign-ins, requests per key, model work.

The sign-in throttle and the per-key rate limit live in memory per process on SQLite (one server process),
and in the database on PostgreSQL (`SharedFailureLimiter`, `SharedRateLimiter`: one atomic statement per
check on the `signin_failures` and `rate_buckets` tables), so that the workers of `medcode serve
--workers N` count against one budget; `failure_limiter()` and `rate_limiter()` choose. The suggestion
slots stay per process: they bound the CPU work of that process.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, case, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from medcode.model.cancel import stop_when
from medcode.serving.errors import GatewayTimeout, ServiceError, ServiceUnavailable
from medcode.serving.orm import RateBucketRow, SigninFailureRow

T = TypeVar("T")
Clock = Callable[[], float]
MAX_TRACKED = 10_000
"""Clients or keys remembered at once; the least recently seen are forgotten first."""
MAX_BACKOFF_SECONDS = 3600.0


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class FailureLimiter:
    """Failed authentications per client: after `max_failures` the client must wait `backoff_seconds`,
    doubled with every further failure (at most an hour); a success clears its record."""

    def __init__(self, max_failures: int, backoff_seconds: float, clock: Clock = time.monotonic) -> None:
        self.max_failures = max_failures
        self.backoff_seconds = backoff_seconds
        self._clock = clock
        self._clients: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds the client must still wait; 0 when it may try."""
        with self._lock:
            record = self._clients.get(client)
            return 0.0 if record is None else max(0.0, record.locked_until - self._clock())

    def failed(self, client: str) -> None:
        with self._lock:
            record = self._clients.pop(client, None) or _Failures()
            self._clients[client] = record
            record.count += 1
            over = record.count - self.max_failures
            if over >= 0:
                wait = min(self.backoff_seconds * 2 ** min(over, 30), MAX_BACKOFF_SECONDS)
                record.locked_until = self._clock() + wait
            while len(self._clients) > MAX_TRACKED:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)


class RateLimiter:
    """A token bucket per key: `per_minute` requests a minute, in bursts of up to `per_minute`."""

    def __init__(self, per_minute: int, clock: Clock = time.monotonic) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one request for `key`: 0 when allowed, else the seconds until the next one is."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, seen = self._buckets.pop(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - seen) * self._rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self._rate
            while len(self._buckets) > MAX_TRACKED:
                self._buckets.popitem(last=False)
        return wait


PRUNE_EVERY = 1000
"""A shared limiter deletes its stale rows once every this many writes of its process."""
IDLE_BUCKET_SECONDS = 120.0
"""A bucket unused this long has refilled completely (a minute's budget): same as no row, deleted."""


class SharedFailureLimiter:
    """`FailureLimiter`'s rules on the database's `signin_failures` table, shared by every server process
    (times are wall-clock epoch seconds, which processes share). A record whose lock has passed and whose
    last failure is older than twice the longest backoff is forgotten."""

    def __init__(
        self, engine: Engine, max_failures: int, backoff_seconds: float, clock: Clock = time.time
    ) -> None:
        self.max_failures = max_failures
        self.backoff_seconds = backoff_seconds
        self._engine = engine
        self._clock = clock
        self._writes = 0

    def retry_after(self, client: str) -> float:
        row = SigninFailureRow
        with self._engine.connect() as conn:
            until = conn.execute(select(row.locked_until).where(row.client == client[:100])).scalar()
        return 0.0 if until is None else max(0.0, until - self._clock())

    def failed(self, client: str) -> None:
        row = SigninFailureRow
        now = self._clock()
        first_over = 1 - self.max_failures
        first_lock = now + self._backoff(first_over) if first_over >= 0 else 0.0
        over = row.failures + 1 - self.max_failures
        wait = func.least(self.backoff_seconds * func.power(2, func.least(over, 30)), MAX_BACKOFF_SECONDS)
        upsert = (
            pg_insert(row)
            .values(client=client[:100], failures=1, locked_until=first_lock, last_failed=now)
            .on_conflict_do_update(
                index_elements=[row.client],
                set_={
                    "failures": row.failures + 1,
                    "locked_until": case((over >= 0, now + wait), else_=row.locked_until),
                    "last_failed": now,
                },
            )
        )
        with self._engine.begin() as conn:
            conn.execute(upsert)
            self._writes += 1
            if self._writes % PRUNE_EVERY == 0:
                stale = now - 2 * MAX_BACKOFF_SECONDS
                conn.execute(delete(row).where(row.last_failed < stale, row.locked_until < now))

    def succeeded(self, client: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(SigninFailureRow).where(SigninFailureRow.client == client[:100]))

    def _backoff(self, over: int) -> float:
        return float(min(self.backoff_seconds * 2 ** min(over, 30), MAX_BACKOFF_SECONDS))


class SharedRateLimiter:
    """`RateLimiter`'s token bucket per key on the database's `rate_buckets` table: one atomic upsert per
    request refills the bucket for the time passed, takes a token when there is one and says whether it did,
    so concurrent requests through any server process never share a token."""

    def __init__(self, engine: Engine, per_minute: int, clock: Clock = time.time) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._engine = engine
        self._clock = clock
        self._writes = 0

    def acquire(self, key: str) -> float:
        """Take one request for `key`: 0 when allowed, else the seconds until the next one is."""
        if self.per_minute <= 0:
            return 0.0
        row = RateBucketRow
        now = self._clock()
        cap = float(self.per_minute)
        refilled = func.least(cap, row.tokens + func.greatest(0.0, now - row.seen) * self._rate)
        upsert = (
            pg_insert(row)
            .values(key_id=key[:64], tokens=cap - 1.0, seen=now, allowed=True)
            .on_conflict_do_update(
                index_elements=[row.key_id],
                set_={
                    "tokens": case((refilled >= 1.0, refilled - 1.0), else_=refilled),
                    "seen": func.greatest(row.seen, now),
                    "allowed": refilled >= 1.0,
                },
            )
            .returning(row.tokens, row.allowed)
        )
        with self._engine.begin() as conn:
            tokens, allowed = conn.execute(upsert).one()
            self._writes += 1
            if self._writes % PRUNE_EVERY == 0:
                conn.execute(delete(row).where(row.seen < now - IDLE_BUCKET_SECONDS))
        return 0.0 if allowed else max(0.0, (1.0 - tokens) / self._rate)


def failure_limiter(
    engine: Engine, max_failures: int, backoff_seconds: float
) -> FailureLimiter | SharedFailureLimiter:
    """The sign-in throttle: in the database on PostgreSQL (shared by the workers), in memory otherwise."""
    if engine.dialect.name == "postgresql":
        return SharedFailureLimiter(engine, max_failures, backoff_seconds)
    return FailureLimiter(max_failures, backoff_seconds)


def rate_limiter(engine: Engine, per_minute: int) -> RateLimiter | SharedRateLimiter:
    """The per-key rate limit: in the database on PostgreSQL (shared by the workers), in memory otherwise."""
    if engine.dialect.name == "postgresql":
        return SharedRateLimiter(engine, per_minute)
    return RateLimiter(per_minute)


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class ClientGone(ServiceError):
    """The client disconnected before its suggestion was ready; the answer (logged as 499, nginx's
    "client closed request") reaches nobody."""

    status_code = 499
    code = "client_closed_request"

    def __init__(self) -> None:
        super().__init__("the client went away before its suggestion was ready")


Disconnected = Callable[[], Awaitable[bool]]
"""True once the request's client has gone (Starlette's `Request.is_disconnected`)."""


class SuggestionSlots:
    """At most `workers` suggestions computed at once, each answered within `timeout_seconds`.

    Each suggestion runs in its own daemon thread under `model.cancel.stop_when`: when its budget is spent,
    its client disconnects (`disconnected` answers true) or its request is cancelled (server shutdown), the
    thread is told to stop and the model gives the CPU back at its next check between documents or stages.
    A thread keeps its slot until it has really ended, so abandoned work never adds up beyond `workers`
    threads, and new requests wait for a slot for at most `wait_share` of their budget (503 with
    Retry-After when none frees in time): the work keeps the rest, so an overloaded server answers with a
    503 the client can retry rather than a 504 after spending the CPU on a suggestion nobody receives.
    Daemon threads never hold up the process's exit."""

    def __init__(
        self, workers: int, timeout_seconds: float, poll_seconds: float = 0.1, wait_share: float = 0.5
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self.wait_share = wait_share
        self._slots = threading.BoundedSemaphore(self.workers)

    async def run(self, work: Callable[[], T], disconnected: Disconnected | None = None) -> T:
        """`work()`'s result; 503 when no slot frees within `wait_share` of the budget, 504 when the work
        overruns the budget, `ClientGone` when `disconnected()` turns true first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_seconds
        wait_until = loop.time() + self.timeout_seconds * self.wait_share
        while not self._slots.acquire(blocking=False):  # polled: a cancelled waiter never holds a slot
            if loop.time() >= wait_until:
                raise ServiceUnavailable(
                    f"all {self.workers} suggestion workers stayed busy for"
                    f" {self.timeout_seconds * self.wait_share:g} s; retry later",
                    code="busy",
                    headers=retry_after_header(min(self.timeout_seconds, 30.0)),
                )
            if disconnected is not None and await disconnected():
                raise ClientGone()
            await asyncio.sleep(0.02)

        stop = threading.Event()
        future: asyncio.Future[T] = loop.create_future()
        future.add_done_callback(_consume)

        def target() -> None:
            outcome: tuple[bool, Any]
            try:
                with stop_when(stop.is_set):
                    outcome = (True, work())
            except BaseException as exc:  # handed to the awaiting request, which re-raises it
                outcome = (False, exc)
            finally:
                self._slots.release()
            with contextlib.suppress(RuntimeError):  # the event loop closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, outcome)

        threading.Thread(target=target, name="medcode-suggestion", daemon=True).start()
        try:
            while not future.done():
                left = deadline - loop.time()
                if left <= 0:
                    raise GatewayTimeout(
                        f"the suggestion did not finish within its {self.timeout_seconds:g} s budget"
                        " (MEDCODE_SUGGEST_TIMEOUT_SECONDS); send shorter notes or fewer documents",
                        code="suggestion_timeout",
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), min(left, self.poll_seconds))
                if not future.done() and disconnected is not None and await disconnected():
                    raise ClientGone()
            return future.result()
        finally:
            stop.set()  # a no-op once the work is done; otherwise the model stops at its next check


@dataclass(frozen=True)
class ClientSlots:
    """The suggestion slots as one request sees them: its work stops when its client disconnects."""

    slots: SuggestionSlots
    disconnected: Disconnected

    async def run(self, work: Callable[[], T]) -> T:
        return await self.slots.run(work, self.disconnected)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned suggestion's error quietly (its message may quote note text; a stopped one
    ends in `model.cancel.Stopped`)."""
    if not future.cancelled():
        future.exception()
