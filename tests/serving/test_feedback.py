"""The typed export of finalized reviews that retraining reads."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from medcode.data.feedback import FeedbackExample
from medcode.serving.feedback import export_feedback

from .conftest import Auth
from .fakes import encounter_json

NOTE = "Type 2 diabetes. Asthma. Hypertension."


def _review(
    client: TestClient,
    as_role: Auth,
    encounter_id: str,
    note: str,
    decisions: list[dict],
    finalize: bool = True,
) -> None:
    client.post("/v1/encounters", json=encounter_json(encounter_id, note), headers=as_role("integration"))
    coder = as_role("coder")
    item = client.post("/v1/review/claim", headers=coder).json()["item_id"]
    if decisions:
        response = client.post(
            f"/v1/review/items/{item}/decisions", json={"decisions": decisions}, headers=coder
        )
        assert response.status_code == 200, response.text
    if finalize:
        finalized = client.post(
            f"/v1/review/items/{item}/finalize", headers=coder, json={"accept_undecided": True}
        )
        assert finalized.status_code == 200, finalized.text


def _export(app: FastAPI, **kw: object) -> list[FeedbackExample]:
    with app.state.db.sessions() as session:
        return export_feedback(session, **kw)  # type: ignore[arg-type]


def test_export_carries_positives_negatives_evidence_and_reviewer(
    client: TestClient, app: FastAPI, as_role: Auth, keys: dict[str, str]
) -> None:
    _review(
        client,
        as_role,
        "e1",
        NOTE,
        [
            {
                "code": "E11.9",
                "action": "replace",
                "replacement": "E11.65",
                "reason": "hyperglycemia documented",
            },
            {"code": "J45.909", "action": "reject", "reason": "resolved"},
            {"action": "add", "code": "N18.32", "evidence": [{"document_id": "d1", "start": 0, "end": 16}]},
        ],
    )
    (example,) = _export(app)
    assert example.encounter_id == "e1" and example.revision == 1
    assert example.encounter.documents[0].text == NOTE
    positives = {(c.code, c.source) for c in example.final_codes}
    assert positives == {("I10", "kept"), ("E11.65", "replacement"), ("N18.32", "added")}
    added = next(c for c in example.final_codes if c.code == "N18.32")
    assert added.evidence[0].text == "Type 2 diabetes." and added.model_confidence is None
    negatives = {(n.code, n.kind, n.reason, n.replaced_by) for n in example.rejected}
    assert negatives == {
        ("E11.9", "replaced", "hyperglycemia documented", "E11.65"),
        ("J45.909", "rejected", "resolved", None),
    }
    assert example.encounter.gold is not None
    assert sorted(example.encounter.gold.diagnosis) == ["E11.65", "I10", "N18.32"]
    assert example.reviewer == keys["coder"].split("_")[1] and example.reviewer_name == "test coder"
    assert example.model_version == "fake-1" and example.code_set_version == "ICD-10-CM 2026"


def test_latest_decision_wins_and_open_reviews_are_not_exported(
    client: TestClient, app: FastAPI, as_role: Auth
) -> None:
    _review(
        client,
        as_role,
        "e1",
        "Diabetes.",
        [{"code": "E11.9", "action": "reject", "reason": "unsure"}, {"code": "E11.9", "action": "accept"}],
    )
    _review(client, as_role, "open", "Asthma.", [], finalize=False)
    (example,) = _export(app)
    assert [(c.code, c.source) for c in example.final_codes] == [("E11.9", "accepted")]
    assert example.rejected == []


def test_a_re_reviewed_encounter_exports_its_latest_review_only(
    client: TestClient, app: FastAPI, as_role: Auth
) -> None:
    _review(client, as_role, "e1", "Diabetes.", [{"code": "E11.9", "action": "reject", "reason": "no"}])
    _review(client, as_role, "e1", "Diabetes. Asthma.", [{"code": "J45.909", "action": "accept"}])
    (example,) = _export(app)
    assert example.revision == 2
    assert {c.code for c in example.final_codes} == {"E11.9", "J45.909"}


def test_export_leaves_out_excluded_encounters(client: TestClient, app: FastAPI, as_role: Auth) -> None:
    _review(client, as_role, "train-1", "Diabetes.", [])
    _review(client, as_role, "dev-1", "Asthma.", [])
    examples = _export(app, exclude_encounter_ids={"dev-1"})
    assert [e.encounter_id for e in examples] == ["train-1"]
    assert FeedbackExample.model_validate_json(examples[0].model_dump_json()) == examples[0]
