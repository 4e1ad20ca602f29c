"""The sign-in throttle and the per-key rate limit on PostgreSQL are one budget for every server process:
two limiter objects on one database stand for two workers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.serving.db import Database
from medcode.serving.errors import ServiceUnavailable
from medcode.serving.limits import (
    FailureLimiter,
    RateLimiter,
    SharedFailureLimiter,
    SharedRateLimiter,
    SuggestionSlots,
    failure_limiter,
    rate_limiter,
)

from .conftest import _postgres_database


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database() -> Iterator[Database]:
    for url in _postgres_database():
        database = Database.connect(url)
        yield database
        database.dispose()


@pytest.mark.postgres
def test_two_workers_share_one_rate_budget_per_key(database: Database) -> None:
    clock = Clock()
    first, second = (SharedRateLimiter(database.engine, 3, clock=clock) for _ in range(2))
    waits = [first.acquire("k1"), second.acquire("k1"), first.acquire("k1"), second.acquire("k1")]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(20.0), "the fourth request in a minute waits for a token (3/min)"
    assert first.acquire("k2") == 0.0, "budgets are per key"
    clock.now += 20.0
    assert second.acquire("k1") == 0.0 and first.acquire("k1") > 0


@pytest.mark.postgres
def test_concurrent_requests_through_two_workers_never_share_a_token(database: Database) -> None:
    clock = Clock()
    limiters = [SharedRateLimiter(database.engine, 30, clock=clock) for _ in range(2)]
    allowed: list[bool] = []
    lock = threading.Lock()

    def client(limiter: SharedRateLimiter) -> None:
        for _ in range(10):
            ok = limiter.acquire("busy") == 0.0
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=client, args=(limiters[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 80 and sum(allowed) == 30


@pytest.mark.postgres
def test_sign_in_failures_count_across_workers_and_a_success_clears_them(database: Database) -> None:
    clock = Clock()
    first, second = (SharedFailureLimiter(database.engine, 2, 30.0, clock=clock) for _ in range(2))
    first.failed("10.0.0.9")
    assert second.retry_after("10.0.0.9") == 0.0
    second.failed("10.0.0.9")
    assert first.retry_after("10.0.0.9") == pytest.approx(30.0)
    first.failed("10.0.0.9")
    assert second.retry_after("10.0.0.9") == pytest.approx(60.0), "each further failure doubles the wait"
    assert first.retry_after("10.0.0.8") == 0.0, "other clients are not locked out"
    clock.now += 61.0
    assert second.retry_after("10.0.0.9") == 0.0
    second.succeeded("10.0.0.9")
    first.failed("10.0.0.9")
    assert first.retry_after("10.0.0.9") == 0.0, "the success cleared the record: one failure locks no one"


@pytest.mark.postgres
def test_postgresql_gets_the_shared_limits(database: Database) -> None:
    assert isinstance(failure_limiter(database.engine, 5, 30.0), SharedFailureLimiter)
    assert isinstance(rate_limiter(database.engine, 600), SharedRateLimiter)


def test_sqlite_keeps_the_limits_in_memory(tmp_path: Path) -> None:
    database = Database.connect(f"sqlite:///{tmp_path / 'medcode.db'}")
    try:
        assert isinstance(failure_limiter(database.engine, 5, 30.0), FailureLimiter)
        assert isinstance(rate_limiter(database.engine, 600), RateLimiter)
    finally:
        database.dispose()


def test_a_request_waits_for_a_slot_at_most_half_its_budget_then_gets_503_with_retry_after() -> None:
    # a 2 s budget: the 1 s wait it allows stands clear of a loaded machine's scheduling delays
    slots = SuggestionSlots(workers=1, timeout_seconds=2.0)
    release = threading.Event()

    async def scenario() -> tuple[float, ServiceUnavailable]:
        busy = asyncio.create_task(slots.run(release.wait))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        with pytest.raises(ServiceUnavailable) as refused:
            await slots.run(lambda: "never")
        waited = time.perf_counter() - started
        release.set()
        assert await busy is True
        return waited, refused.value

    waited, refused = asyncio.run(scenario())
    assert 0.9 <= waited < 1.8, "the wait for a slot stops at half the budget, leaving the rest to the work"
    assert refused.code == "busy" and refused.headers is not None
    assert int(refused.headers["Retry-After"]) >= 1
