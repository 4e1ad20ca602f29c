"""The review queue over HTTP: priority, claims and leases, decisions, finalize, release, 409s."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from medcode.serving.orm import DecisionRow
from tests.fakes import Rule

from .conftest import Auth
from .fakes import FakeClock, FakeCoder, encounter_json

NOTE = "Type 2 diabetes. Asthma. Hypertension."
PIPELINE_TERMS = [
    "diabetes",
    "asthma",
    "hypertension",
    "chest pain",
    "tuberculosis",
    "urinary incontinence",
    "urge incontinence",
    "corneal neovascularization",
    "prostatic hyperplasia",
]


@pytest.fixture(scope="module")
def small_pipeline() -> Any:
    """The real text pipeline (negation, family, history context) over a small explicit lexicon."""
    from medcode.model.text import build_pipeline

    return build_pipeline(terms=PIPELINE_TERMS)


@pytest.fixture(autouse=True)
def note_mentions(small_pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The finalize checks read assertions from the small pipeline (deterministic, no lexicon build)."""
    monkeypatch.setattr("medcode.serving.ui.annotate._load_pipeline", lambda: small_pipeline)


def _model_codes(coder: FakeCoder, **keywords: tuple[str, str, str, float]) -> None:
    """Teach the fake coder more keyword -> code rules for one test."""
    extra = [
        Rule(keyword.replace("_", " "), code, confidence, system=system, description=title)
        for keyword, (system, code, title, confidence) in keywords.items()
    ]
    coder.rules = (*coder.rules, *extra)


def _submit(client: TestClient, auth: Auth, encounter_id: str, text_: str = NOTE) -> dict:
    response = client.post(
        "/v1/encounters", json=encounter_json(encounter_id, text_), headers=auth("integration")
    )
    assert response.status_code == 201, response.text
    return response.json()


def _claim(client: TestClient, headers: dict[str, str]) -> dict:
    response = client.post("/v1/review/claim", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _claimed(client: TestClient, auth: Auth, text_: str = NOTE) -> tuple[dict[str, str], int]:
    """Encounter e1 with `text_` submitted, and its review item claimed: the coder's headers and the item id."""
    _submit(client, auth, "e1", text_)
    coder = auth("coder")
    return coder, _claim(client, coder)["item_id"]


def _decide(client: TestClient, headers: dict[str, str], item_id: int, *decisions: dict, **kw: object):
    return client.post(
        f"/v1/review/items/{item_id}/decisions", json={"decisions": list(decisions)}, headers=headers, **kw
    )


def _finalize(client: TestClient, headers: dict[str, str], item_id: int, **body: object):
    return client.post(f"/v1/review/items/{item_id}/finalize", json=body, headers=headers)


def _audit(client: TestClient, auth: Auth, encounter_id: str, action: str) -> dict:
    events = client.get("/v1/audit", params={"encounter_id": encounter_id}, headers=auth("admin")).json()
    return next(e for e in events["events"] if e["action"] == action)


def _kinds(response: Any) -> list[tuple[str, list[str]]]:
    return [(p["kind"], p["codes"]) for p in response.json()["problems"]]


def _evidence(text_: str, phrase: str) -> list[dict[str, object]]:
    start = text_.index(phrase)
    return [{"document_id": "d1", "start": start, "end": start + len(phrase)}]


def test_claim_serves_lowest_confidence_first(client: TestClient, as_role: Auth) -> None:
    _submit(client, as_role, "diabetes", "Diabetes.")  # 0.62
    _submit(client, as_role, "asthma", "Asthma.")  # 0.41
    queue = client.get("/v1/review/queue", headers=as_role("coder")).json()
    assert [i["encounter_id"] for i in queue["items"]] == ["asthma", "diabetes"]
    assert queue["items"][0]["priority"] == pytest.approx(0.41)
    assert queue["items"][0]["lowest_confidence"] == pytest.approx(0.41) and queue["items"][0]["n_codes"] == 1
    assert _claim(client, as_role("coder"))["encounter_id"] == "asthma"


def test_claim_on_an_empty_queue_answers_204(client: TestClient, as_role: Auth) -> None:
    response = client.post("/v1/review/claim", headers=as_role("coder"))
    assert response.status_code == 204 and response.content == b""


def test_claiming_again_resumes_the_held_item(client: TestClient, as_role: Auth, clock: FakeClock) -> None:
    _submit(client, as_role, "a")
    _submit(client, as_role, "b")
    first = _claim(client, as_role("coder"))
    clock.advance(10)
    again = _claim(client, as_role("coder"))
    assert again["item_id"] == first["item_id"] and again["resumed"] is True
    assert again["lease_expires_at"] > first["lease_expires_at"]


def test_decisions_then_finalize_give_the_final_codes(
    client: TestClient, app: FastAPI, as_role: Auth
) -> None:
    coder, item = _claimed(client, as_role)
    response = _decide(
        client,
        coder,
        item,
        {"code": "I10", "action": "accept"},
        {"code": "J45.909", "action": "reject", "reason": "not supported by the note"},
        {"code": "e11.9", "action": "replace", "replacement": "e1165"},
        {"action": "add", "code": "N18.32", "evidence": [{"document_id": "d1", "start": 0, "end": 16}]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["stored"]) == 4
    status = {c["code"]: c["status"] for c in body["codes"]}
    assert status == {
        "I10": "accepted",
        "J45.909": "rejected",
        "E11.9": "replaced",
        "E11.65": "accepted",
        "N18.32": "added",
    }
    added = body["stored"][3]
    assert added["evidence"] == [{"document_id": "d1", "start": 0, "end": 16, "text": "Type 2 diabetes."}]

    final = client.post(f"/v1/review/items/{item}/finalize", headers=coder)
    assert final.status_code == 200
    codes = {(c["code"], c["source"]) for c in final.json()["final_codes"]}
    assert codes == {("I10", "model"), ("E11.65", "coder"), ("N18.32", "coder")}
    encounter = client.get("/v1/encounters/e1", headers=as_role("integration")).json()
    assert encounter["status"] == "final"
    assert {c["code"] for c in encounter["final_codes"]} == {"I10", "E11.65", "N18.32"}
    replaced = next(c for c in encounter["final_codes"] if c["code"] == "E11.65")
    assert replaced["evidence"][0]["text"] == "diabetes"


def test_undecided_codes_block_finalize_until_accepted_as_a_whole(client: TestClient, as_role: Auth) -> None:
    coder, item = _claimed(client, as_role, "Diabetes. Hypertension.")
    _decide(client, coder, item, {"code": "I10", "action": "accept"})
    refused = client.post(f"/v1/review/items/{item}/finalize", headers=coder)
    assert refused.status_code == 409 and refused.json()["code"] == "finalize_blocked"
    assert [(p["kind"], p["codes"]) for p in refused.json()["problems"]] == [("undecided", ["E11.9"])]
    assert "E11.9" in refused.json()["detail"]
    overridden = _finalize(client, coder, item, override={"reason": "looked fine"})
    assert overridden.status_code == 409, "an override does not decide codes"

    final = _finalize(client, coder, item, accept_undecided=True)
    assert final.status_code == 200, final.text
    assert {(c["code"], c["source"]) for c in final.json()["final_codes"]} == {
        ("E11.9", "model"),
        ("I10", "model"),
    }
    assert final.json()["accepted_undecided"] == ["E11.9"]
    event = _audit(client, as_role, "e1", "review.finalized")
    assert event["after"]["accepted_undecided"] == ["ICD-10-CM:E11.9"]


def test_latest_decision_on_a_code_wins(client: TestClient, as_role: Auth) -> None:
    coder, item = _claimed(client, as_role, "Diabetes.")
    _decide(client, coder, item, {"code": "E11.9", "action": "reject", "reason": "no"})
    body = _decide(client, coder, item, {"code": "E11.9", "action": "accept"}).json()
    assert [c["status"] for c in body["codes"]] == ["accepted"]


@pytest.mark.parametrize(
    ("decision", "code"),
    [
        ({"code": "Z99.89", "action": "accept"}, "code_not_in_item"),
        ({"code": "I10", "action": "reject", "reason": "x"}, "code_not_in_item"),
        (
            {"code": "E11.9", "action": "add", "evidence": [{"document_id": "d1", "start": 0, "end": 5}]},
            "code_already_in_item",
        ),
    ],
)
def test_decision_that_does_not_fit_the_item_conflicts(
    client: TestClient, as_role: Auth, decision: dict, code: str
) -> None:
    _submit(client, as_role, "e1", "Diabetes.")
    item = _claim(client, as_role("coder"))["item_id"]
    response = _decide(client, as_role("coder"), item, decision)
    assert response.status_code == 409 and response.json()["code"] == code


@pytest.mark.parametrize(
    "decision",
    [
        {"action": "add", "code": "I10", "evidence": [{"document_id": "d1", "start": 0, "end": 999}]},
        {"action": "add", "code": "I10", "evidence": [{"document_id": "d9", "start": 0, "end": 3}]},
        {
            "action": "add",
            "code": "I10",
            "evidence": [{"document_id": "d1", "start": 0, "end": 3, "text": "xyz"}],
        },
        {"action": "add", "code": "I10", "evidence": [{"document_id": "d1", "start": 4, "end": 4}]},
        {"action": "add", "code": "I10", "evidence": []},
        {"action": "add", "code": "Q99.999", "evidence": [{"document_id": "d1", "start": 0, "end": 3}]},
        {"action": "replace", "code": "E11.9", "replacement": "NOPE1"},
        {"action": "reject", "code": "E11.9"},
        {"action": "accept", "code": "E11.9", "replacement": "E11.65"},
    ],
)
def test_invalid_decision_is_422_and_stores_nothing(
    client: TestClient, app: FastAPI, as_role: Auth, decision: dict
) -> None:
    _submit(client, as_role, "e1", "Diabetes.")
    item = _claim(client, as_role("coder"))["item_id"]
    response = _decide(client, as_role("coder"), item, {"code": "E11.9", "action": "accept"}, decision)
    assert response.status_code == 422, response.text
    with app.state.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DecisionRow)) == 0


def test_decisions_without_a_lease_conflict(client: TestClient, app: FastAPI, as_role: Auth) -> None:
    from .conftest import bearer, new_key

    _submit(client, as_role, "e1", "Diabetes.")
    item = _claim(client, as_role("coder"))["item_id"]
    other = bearer(new_key(app, "coder", "other coder"))
    response = _decide(client, other, item, {"code": "E11.9", "action": "accept"})
    assert response.status_code == 409 and response.json()["code"] == "lease_held_by_another"
    for action in ("finalize", "release"):
        response = client.post(f"/v1/review/items/{item}/{action}", headers=other)
        assert response.status_code == 409


def test_unclaimed_item_needs_a_claim(client: TestClient, as_role: Auth) -> None:
    item = _submit(client, as_role, "e1", "Diabetes.")["review_item_id"]
    response = _decide(client, as_role("coder"), item, {"code": "E11.9", "action": "accept"})
    assert response.status_code == 409 and response.json()["code"] == "lease_not_held"


def test_unknown_item_is_404(client: TestClient, as_role: Auth) -> None:
    response = client.post("/v1/review/items/999/finalize", headers=as_role("coder"))
    assert response.status_code == 404


def test_an_expired_lease_returns_the_item_to_the_queue(
    client: TestClient, app: FastAPI, as_role: Auth, clock: FakeClock
) -> None:
    from .conftest import bearer, new_key

    _submit(client, as_role, "e1", "Diabetes.")
    first = as_role("coder")
    item = _claim(client, first)["item_id"]
    second = bearer(new_key(app, "coder", "second coder"))
    assert client.post("/v1/review/claim", headers=second).status_code == 204

    clock.advance(app.state.settings.review_lease_seconds + 1)
    stale = _decide(client, first, item, {"code": "E11.9", "action": "accept"})
    assert stale.status_code == 409 and stale.json()["code"] == "lease_expired"
    assert _claim(client, second)["item_id"] == item
    stale = _decide(client, first, item, {"code": "E11.9", "action": "accept"})
    assert stale.json()["code"] == "lease_held_by_another"
    assert _decide(client, second, item, {"code": "E11.9", "action": "accept"}).status_code == 200


def test_finalizing_twice_conflicts(client: TestClient, as_role: Auth) -> None:
    coder, item = _claimed(client, as_role, "Diabetes.")
    assert _finalize(client, coder, item, accept_undecided=True).status_code == 200
    again = client.post(f"/v1/review/items/{item}/finalize", headers=coder)
    assert again.status_code == 409 and again.json()["code"] == "item_final"
    late = _decide(client, coder, item, {"code": "E11.9", "action": "accept"})
    assert late.status_code == 409


def test_release_returns_the_item_to_the_queue(client: TestClient, app: FastAPI, as_role: Auth) -> None:
    from .conftest import bearer, new_key

    coder, item = _claimed(client, as_role, "Diabetes.")
    queue = client.get("/v1/review/queue?unclaimed=true", headers=coder).json()
    assert queue["items"] == []
    assert client.post(f"/v1/review/items/{item}/release", headers=coder).json()["released"] is True
    other = bearer(new_key(app, "coder", "other"))
    assert _claim(client, other)["item_id"] == item


def test_a_decision_id_is_stored_once(client: TestClient, app: FastAPI, as_role: Auth) -> None:
    coder, item = _claimed(client, as_role, "Diabetes.")
    decision = {"code": "E11.9", "action": "accept", "decision_id": "client-1"}
    first = _decide(client, coder, item, decision).json()
    again = _decide(client, coder, item, decision).json()
    assert len(first["stored"]) == 1 and first["replayed"] == []
    assert again["stored"] == [] and [d["decision_id"] for d in again["replayed"]] == ["client-1"]
    reused = _decide(
        client, coder, item, {"code": "E11.9", "action": "reject", "reason": "x", "decision_id": "client-1"}
    )
    assert reused.status_code == 409 and reused.json()["code"] == "decision_id_reused"
    with app.state.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DecisionRow)) == 1


def test_an_idempotency_key_makes_a_retry_harmless(client: TestClient, app: FastAPI, as_role: Auth) -> None:
    coder, item = _claimed(client, as_role)
    decisions = ({"code": "E11.9", "action": "accept"}, {"code": "I10", "action": "accept"})
    headers = coder | {"Idempotency-Key": "retry-42"}
    assert len(_decide(client, headers, item, *decisions).json()["stored"]) == 2
    client.post(f"/v1/review/items/{item}/finalize", headers=coder)
    retried = _decide(client, headers, item, *decisions)  # after finalize: still a harmless replay
    assert retried.status_code == 200 and len(retried.json()["replayed"]) == 2
    with app.state.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DecisionRow)) == 2


def test_queue_filters_by_reason_kind(client: TestClient, as_role: Auth) -> None:
    _submit(client, as_role, "low", "Diabetes.")
    client.post(
        "/v1/encounters?route=review",
        json=encounter_json("forced", "Hypertension."),
        headers=as_role("integration"),
    )
    coder = as_role("coder")
    forced = client.get("/v1/review/queue?reason=forced_review", headers=coder).json()
    assert [i["encounter_id"] for i in forced["items"]] == ["forced"]
    low = client.get("/v1/review/queue?reason=low_confidence", headers=coder).json()
    assert [i["encounter_id"] for i in low["items"]] == ["low"]


def test_review_item_shows_the_note_codes_and_decisions(client: TestClient, as_role: Auth) -> None:
    coder, item = _claimed(client, as_role, "Diabetes.")
    _decide(client, coder, item, {"code": "E11.9", "action": "reject", "reason": "ruled out"})
    body = client.get(f"/v1/review/items/{item}", headers=coder).json()
    assert body["documents"][0]["text"] == "Diabetes."
    assert body["codes"][0]["status"] == "rejected" and body["codes"][0]["reason"] == "ruled out"
    assert [d["action"] for d in body["decisions"]] == ["reject"]
    assert body["result"]["model_version"] == "fake-1"


def test_decisions_are_append_only_in_the_database(client: TestClient, app: FastAPI, as_role: Auth) -> None:
    coder, item = _claimed(client, as_role, "Diabetes.")
    _decide(client, coder, item, {"code": "E11.9", "action": "accept"})
    for statement in ("UPDATE decisions SET action = 'reject'", "DELETE FROM decisions"):
        with app.state.db.sessions() as session, pytest.raises(DBAPIError):
            session.execute(text(statement))
            session.commit()
    with app.state.db.sessions() as session:
        assert session.scalars(select(DecisionRow.action)).all() == ["accept"]


# -- the live code set: problems after every decision, finalize refused until fixed or overridden --------

INCONTINENCE = ("ICD-10-CM", "R32", "Unspecified urinary incontinence", 0.7)
INCONTINENCE_NOTE = "Urinary incontinence. Urge incontinence on exam."
EXCLUDES1_PAIR = (
    {"code": "R32", "action": "accept"},
    {"action": "add", "code": "N39.41", "evidence": _evidence(INCONTINENCE_NOTE, "Urge incontinence")},
)
"""Decisions that code R32 beside N39.41, which R32's Excludes1 note forbids."""


def test_an_excludes1_pair_shows_on_both_cards_and_clears_when_one_goes(
    client: TestClient, as_role: Auth, coder: FakeCoder
) -> None:
    _model_codes(coder, urinary_incontinence=INCONTINENCE)
    coder, item = _claimed(client, as_role, INCONTINENCE_NOTE)
    before = client.get(f"/v1/review/items/{item}", headers=coder).json()
    assert next(c for c in before["codes"] if c["code"] == "R32")["problems"] == []

    added = _decide(client, coder, item, *EXCLUDES1_PAIR)
    assert ("excludes1", ["R32", "N39.41"]) in _kinds(added)
    cards = {c["code"]: c for c in added.json()["codes"]}
    for code in ("R32", "N39.41"):
        assert [p["kind"] for p in cards[code]["problems"]] == ["excludes1"], f"{code} shows the conflict"

    refused = _finalize(client, coder, item)
    assert refused.status_code == 409 and _kinds(refused) == [("excludes1", ["R32", "N39.41"])]

    removed = _decide(
        client, coder, item, {"code": "N39.41", "action": "reject", "reason": "urge not documented"}
    )
    assert removed.json()["problems"] == []
    assert next(c for c in removed.json()["codes"] if c["code"] == "R32")["problems"] == []
    assert _finalize(client, coder, item).status_code == 200


def test_an_excludes1_pair_is_final_only_with_an_audited_reason(
    client: TestClient, as_role: Auth, coder: FakeCoder
) -> None:
    _model_codes(coder, urinary_incontinence=INCONTINENCE)
    coder, item = _claimed(client, as_role, INCONTINENCE_NOTE)
    _decide(client, coder, item, *EXCLUDES1_PAIR)
    unknown = _finalize(
        client, coder, item, overrides=[{"problem": "excludes1:I10|R32", "reason": "because"}]
    )
    assert unknown.status_code == 422
    reason = "two distinct episodes documented by urology"
    final = _finalize(client, coder, item, overrides=[{"problem": "excludes1:R32|N39.41", "reason": reason}])
    assert final.status_code == 200, final.text
    assert {c["code"] for c in final.json()["final_codes"]} == {"R32", "N39.41"}
    assert [(o["key"], o["reason"]) for o in final.json()["overridden"]] == [("excludes1:R32|N39.41", reason)]
    event = _audit(client, as_role, "e1", "review.finalized")
    assert [(o["key"], o["reason"]) for o in event["after"]["overrides"]] == [
        ("excludes1:R32|N39.41", reason)
    ]


def test_an_incomplete_pcs_code_is_never_final(client: TestClient, as_role: Auth, coder: FakeCoder) -> None:
    _model_codes(coder, cystectomy=("ICD-10-PCS", "0TTB", "Resection of Bladder", 0.8))
    coder, item = _claimed(client, as_role, "Hypertension. Cystectomy performed.")
    decided = _decide(
        client, coder, item, {"code": "I10", "action": "accept"}, {"code": "0TTB", "action": "accept"}
    )
    card = next(c for c in decided.json()["codes"] if c["code"] == "0TTB")
    assert card["billable"] is False and [p["kind"] for p in card["problems"]] == ["incomplete_code"]

    refused = _finalize(client, coder, item, override={"reason": "the surgeon will tell us later"})
    assert refused.status_code == 409 and _kinds(refused) == [("incomplete_code", ["0TTB"])]
    assert refused.json()["problems"][0]["overridable"] is False
    _decide(client, coder, item, {"code": "0TTB", "action": "reject", "reason": "approach not documented"})
    final = _finalize(client, coder, item)
    assert final.status_code == 200 and [c["code"] for c in final.json()["final_codes"]] == ["I10"]


def test_a_header_beside_its_own_child_must_be_fixed(
    client: TestClient, as_role: Auth, coder: FakeCoder
) -> None:
    text_ = "Corneal neovascularization, deep, both eyes."
    _model_codes(coder, corneal_neovascularization=("ICD-10-CM", "H16.4", "Corneal neovascularization", 0.6))
    coder, item = _claimed(client, as_role, text_)
    added = _decide(
        client,
        coder,
        item,
        {"code": "H16.4", "action": "accept"},
        {"action": "add", "code": "H16.443", "evidence": _evidence(text_, "Corneal neovascularization")},
    )
    assert _kinds(added) == [("non_billable", ["H16.4"]), ("category_with_child", ["H16.4", "H16.443"])]
    refused = _finalize(client, coder, item, override={"reason": "I am sure"})
    assert refused.status_code == 409 and len(refused.json()["problems"]) == 2
    _decide(client, coder, item, {"code": "H16.4", "action": "reject", "reason": "header; child coded"})
    final = _finalize(client, coder, item)
    assert final.status_code == 200 and [c["code"] for c in final.json()["final_codes"]] == ["H16.443"]


def test_an_age_sex_edit_needs_a_reason(client: TestClient, as_role: Auth, coder: FakeCoder) -> None:
    _model_codes(coder, prostatic_hyperplasia=("ICD-10-CM", "N40.0", "Benign prostatic hyperplasia", 0.8))
    coder, item = _claimed(
        client, as_role, "Prostatic hyperplasia."
    )  # the fake's patient is a 67-year-old woman
    decided = _decide(client, coder, item, {"code": "N40.0", "action": "accept"})
    assert [k for k, _ in _kinds(decided)] == ["age_sex"]
    assert _finalize(client, coder, item).status_code == 409
    final = _finalize(client, coder, item, override={"reason": "registered sex differs from anatomy"})
    assert final.status_code == 200 and final.json()["overridden"][0]["kind"] == "age_sex"


def test_codes_resting_on_absent_or_historical_evidence_are_flagged(
    client: TestClient, as_role: Auth
) -> None:
    text_ = "Asthma in childhood. Denies chest pain. Hypertension."
    coder, item = _claimed(client, as_role, text_)
    decided = _decide(
        client,
        coder,
        item,
        {"code": "J45.909", "action": "accept"},
        {"code": "I10", "action": "accept"},
        {"action": "add", "code": "R07.9", "evidence": _evidence(text_, "chest pain")},
    )
    assert _kinds(decided) == [("historical_evidence", ["J45.909"]), ("absent_evidence", ["R07.9"])]
    assert next(c for c in decided.json()["codes"] if c["code"] == "I10")["problems"] == []
    refused = _finalize(client, coder, item)
    assert refused.status_code == 409 and len(refused.json()["problems"]) == 2


def test_evidence_that_is_a_measurement_needs_an_explicit_accept(
    client: TestClient, as_role: Auth, coder: FakeCoder
) -> None:
    _model_codes(coder, tuberculosis=("ICD-10-CM", "A15.9", "Respiratory tuberculosis unspecified", 0.85))
    coder, item = _claimed(client, as_role, "Hypertension.\nTuberculosis: 140/100\n")
    _decide(client, coder, item, {"code": "I10", "action": "accept"})
    refused = _finalize(client, coder, item, accept_undecided=True)
    assert refused.status_code == 409 and _kinds(refused) == [("doubtful_evidence", ["A15.9"])]
    accepted = _decide(client, coder, item, {"code": "A15.9", "action": "accept"})
    assert accepted.json()["problems"] == []


def test_a_stale_tab_cannot_overwrite_a_decision(client: TestClient, as_role: Auth) -> None:
    coder, item = _claimed(client, as_role, "Diabetes. Hypertension.")
    seen = client.get(f"/v1/review/items/{item}", headers=coder).json()  # both tabs load the item
    rev = {c["code"]: c["rev"] for c in seen["codes"]}
    first = _decide(
        client,
        coder,
        item,
        {"code": "E11.9", "action": "reject", "reason": "no", "expected_rev": rev["E11.9"]},
    )
    assert first.status_code == 200
    stale = _decide(client, coder, item, {"code": "E11.9", "action": "accept", "expected_rev": rev["E11.9"]})
    assert stale.status_code == 409 and stale.json()["code"] == "stale_code"
    other = _decide(client, coder, item, {"code": "I10", "action": "accept", "expected_rev": rev["I10"]})
    assert other.status_code == 200, "a code the other tab did not touch can still be decided"
    assert next(c for c in other.json()["codes"] if c["code"] == "E11.9")["status"] == "rejected"

    stale_finalize = _finalize(client, coder, item, expected_version=seen["version"])
    assert stale_finalize.status_code == 409 and stale_finalize.json()["code"] == "stale_item"
    assert _finalize(client, coder, item, expected_version=other.json()["version"]).status_code == 200


def test_candidates_carry_the_billable_flag(client: TestClient, as_role: Auth, coder: FakeCoder) -> None:
    _model_codes(coder, cystectomy=("ICD-10-PCS", "0TTB", "Resection of Bladder", 0.8))
    coder, item = _claimed(client, as_role, "Diabetes. No cystectomy.")
    body = client.get(f"/v1/review/items/{item}", headers=coder).json()
    assert [(c["code"], c["billable"]) for c in body["candidates"]] == [("0TTB", False)]
    assert [(c["code"], c["billable"]) for c in body["codes"]] == [("E11.9", True)]


def test_code_search_returns_the_billable_flag(client: TestClient, as_role: Auth) -> None:
    hits = client.get(
        "/v1/codes", params={"q": "H16.44", "system": "ICD-10-CM"}, headers=as_role("coder")
    ).json()
    flags = {h["code"]: h["billable"] for h in hits["hits"]}
    assert flags["H16.44"] is False and flags["H16.443"] is True
