"""Cooperative cancellation of one suggestion: the caller says when to stop, the model checks between stages.

A coder cannot be interrupted from outside in the middle of a note (it runs in a thread, in C code half
the time), so the caller wraps the call in `stop_when(should_stop)` and the models call `check_stop()`
between documents and between pipeline stages: once `should_stop()` is true (the client went away, the
time budget is spent, the server is shutting down) the next check raises `Stopped` and the thread's CPU is
free again. A model that never checks simply runs to its end; outside `stop_when` a check does nothing.

The condition travels in a context variable rather than as a `Coder.suggest` parameter, so every coder
(trained, built-in, transformer, the tests' fakes) keeps the one `suggest(encounter)` signature.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

StopCheck = Callable[[], bool]
"""True once the work should stop."""

_should_stop: ContextVar[StopCheck | None] = ContextVar("medcode_should_stop", default=None)


class Stopped(Exception):
    """The caller asked the model to stop; nothing of the half-done suggestion is returned."""


@contextlib.contextmanager
def stop_when(should_stop: StopCheck) -> Iterator[None]:
    """Make `check_stop()` in this thread (and context) raise `Stopped` once `should_stop()` is true."""
    token = _should_stop.set(should_stop)
    try:
        yield
    finally:
        _should_stop.reset(token)


def check_stop() -> None:
    """Raise `Stopped` when the current caller asked to stop; cheap enough to call between documents."""
    should_stop = _should_stop.get()
    if should_stop is not None and should_stop():
        raise Stopped("the suggestion was stopped by its caller")
