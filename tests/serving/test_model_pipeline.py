"""The coder UI's mentions and the review checks come from the serving model's own text pipeline (its pack),
not from the one installed from the datasets folder."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from .conftest import Auth
from .fakes import FakeCoder, encounter_json

NOTE = "Type 2 diabetes. Hypertension. Denies chest tightness."


@pytest.fixture(scope="module")
def installed_pipeline() -> Any:
    """What the datasets folder would install: it does not know "chest tightness"."""
    from medcode.model.text import build_pipeline

    return build_pipeline(terms=["hypertension", "diabetes"])


@pytest.fixture(scope="module")
def model_pipeline() -> Any:
    """The model pack's own pipeline: its lexicon knows "chest tightness"."""
    from medcode.model.text import build_pipeline

    return build_pipeline(terms=["hypertension", "diabetes", "chest tightness"])


@pytest.fixture(autouse=True)
def installed(installed_pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("medcode.serving.ui.annotate._load_pipeline", lambda: installed_pipeline)


@pytest.fixture
def coder(model_pipeline: Any) -> FakeCoder:
    return FakeCoder(pipeline=model_pipeline)


def _claimed_item(client: TestClient, as_role: Auth) -> tuple[dict[str, str], int]:
    submitted = client.post("/v1/encounters", json=encounter_json("e1", NOTE), headers=as_role("integration"))
    assert submitted.status_code == 201, submitted.text
    headers = as_role("coder")
    claimed = client.post("/v1/review/claim", headers=headers)
    assert claimed.status_code == 200, claimed.text
    return headers, claimed.json()["item_id"]


def _mentions(client: TestClient, headers: dict[str, str], item_id: int) -> dict[str, bool]:
    response = client.get(f"/ui/api/review/items/{item_id}/annotations", headers=headers)
    assert response.status_code == 200, response.text
    return {m["text"].lower(): m["assertion"]["negated"] for m in response.json()["documents"][0]["mentions"]}


def test_the_coder_sees_the_mentions_of_the_serving_model(
    client: TestClient, as_role: Auth, coder: FakeCoder
) -> None:
    headers, item = _claimed_item(client, as_role)
    assert _mentions(client, headers, item)["chest tightness"] is True  # the model's lexicon, negated

    coder.pipeline = None  # a model without a pipeline of its own reads notes with the installed one
    assert "chest tightness" not in _mentions(client, headers, item)


def test_review_checks_read_the_assertions_of_the_serving_model(
    client: TestClient, as_role: Auth, coder: FakeCoder
) -> None:
    headers, item = _claimed_item(client, as_role)
    start = NOTE.index("chest tightness")
    evidence = [{"document_id": "d1", "start": start, "end": start + len("chest tightness")}]
    added = client.post(
        f"/v1/review/items/{item}/decisions",
        json={"decisions": [{"action": "add", "code": "R07.89", "evidence": evidence}]},
        headers=headers,
    )
    assert added.status_code == 200, added.text
    assert ("absent_evidence", ["R07.89"]) in [(p["kind"], p["codes"]) for p in added.json()["problems"]]

    coder.pipeline = None  # the installed pipeline finds no mention there: nothing to flag
    kinds = {p["kind"] for p in client.get(f"/v1/review/items/{item}", headers=headers).json()["problems"]}
    assert "absent_evidence" not in kinds
