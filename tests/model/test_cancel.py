"""Cooperative cancellation (model.cancel): a check raises only inside `stop_when` once the caller says so,
and reading an encounter stops between its documents."""

from __future__ import annotations

import threading

import pytest

from medcode.data.types import Document, Encounter, Mention
from medcode.model.cancel import Stopped, check_stop, stop_when
from medcode.model.candidates.generate import read_encounter


def test_a_check_outside_stop_when_does_nothing() -> None:
    check_stop()


def test_a_check_raises_once_the_caller_asks_to_stop() -> None:
    stop = threading.Event()
    with stop_when(stop.is_set):
        check_stop()
        stop.set()
        with pytest.raises(Stopped):
            check_stop()
    check_stop()  # the condition ends with its block


def test_the_condition_belongs_to_the_thread_that_set_it() -> None:
    errors: list[BaseException] = []

    def other() -> None:
        try:
            check_stop()
        except BaseException as exc:
            errors.append(exc)

    with stop_when(lambda: True):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert errors == []


def test_reading_an_encounter_stops_between_documents() -> None:
    read: list[str] = []
    stop = threading.Event()

    def extractor(text: str, document_id: str) -> list[Mention]:
        read.append(document_id)
        stop.set()  # the client goes away while the first document is being read
        return []

    encounter = Encounter(
        encounter_id="e1",
        documents=[Document(document_id=f"d{i}", text="Chest pain.") for i in range(3)],
    )
    with stop_when(stop.is_set), pytest.raises(Stopped):
        read_encounter(encounter, extractor, clauses=False)
    assert read == ["d0"]
