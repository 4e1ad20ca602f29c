"""Helpers of the service tests: the fake coder (`tests.fakes.FakeCoder`, keyword rules, negation-aware like
the real one), a settable clock and encounter JSON."""

from __future__ import annotations

from tests.fakes import FakeCoder

__all__ = ["FakeClock", "FakeCoder", "encounter_json"]


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


def encounter_json(encounter_id: str, text: str, **extra: object) -> dict[str, object]:
    return {
        "encounter_id": encounter_id,
        "patient": {"age": 67, "sex": "female"},
        "setting": "inpatient",
        "documents": [{"document_id": "d1", "type": "discharge_summary", "text": text}],
        **extra,
    }
