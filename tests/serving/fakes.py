"""Helpers of the service tests: the fake coder (`tests.fakes.FakeCoder`, keyword rules, negation-aware like
the real one), a settable clock, encounter JSON and FHIR Bundles, and clients run at once on threads."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Sequence
from typing import Any

from tests.fakes import FakeCoder

__all__ = ["FakeClock", "FakeCoder", "encounter_json", "fhir_bundle", "fhir_document", "run_at_once"]


class FakeClock:
    """A settable clock the app reads through `create_app(clock=...)`."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(seconds=seconds)


def run_at_once(calls: Sequence[tuple[str, Callable[[], None]]], *, timeout: float) -> list[str]:
    """Run each (name, call) on its own thread, all at once, and wait up to `timeout` seconds for each. What
    went wrong, one line per call: an exception it raised (a timeout, a dropped connection), named, so that
    the test fails with its cause, or that it still runs after the wait."""
    errors: list[str] = []

    def guarded(name: str, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=guarded, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    errors.extend(
        f"{name}: still running after {timeout} s"
        for (name, _), t in zip(calls, threads, strict=True)
        if t.is_alive()
    )
    return errors


def encounter_json(encounter_id: str, text: str, **extra: object) -> dict[str, object]:
    return {
        "encounter_id": encounter_id,
        "patient": {"age": 67, "sex": "female"},
        "setting": "inpatient",
        "documents": [{"document_id": "d1", "type": "discharge_summary", "text": text}],
        **extra,
    }


def fhir_document(
    text: str | bytes = "Diabetes.", content_type: str = "text/plain", **extra: Any
) -> dict[str, Any]:
    """A current DocumentReference carrying `text` as a base64 attachment (`extra`: more fields, e.g. id)."""
    data = text.encode() if isinstance(text, str) else text
    attachment = {"contentType": content_type, "data": base64.b64encode(data).decode()}
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [{"attachment": attachment}],
        **extra,
    }


def fhir_bundle(*resources: dict[str, Any], patient: dict[str, Any] | None = None) -> dict[str, Any]:
    """A collection Bundle: the Patient p1 (or `patient`), then `resources` (Encounter, DocumentReferences)."""
    patient = patient or {"resourceType": "Patient", "id": "p1"}
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (patient, *resources)],
    }
