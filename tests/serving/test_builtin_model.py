"""The service with the real built-in model: negated findings never come back as codes or Conditions."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from medcode.serving.app import create_app

from .conftest import bearer, make_settings, new_key
from .fakes import fhir_bundle, fhir_document

NOTE = (
    "Assessment: type 2 diabetes mellitus with diabetic chronic kidney disease. "
    "The patient denies chest pain. No fever. Family history of breast cancer."
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    pytest.importorskip("medcode.model.registry")
    url = f"sqlite:///{tmp_path_factory.mktemp('builtin') / 'medcode.db'}"
    app = create_app(make_settings(url, model_ref="builtin"))  # the default loader: model.registry
    key = bearer(new_key(app, "integration"))
    with TestClient(app) as test_client:
        deadline = time.monotonic() + 300
        while test_client.get("/health").json()["status"] == "loading":  # the model loads in the background
            assert time.monotonic() < deadline, "the built-in model did not load"
            time.sleep(0.1)
        yield test_client, key
    app.state.db.dispose()


def test_builtin_model_does_not_code_negated_or_family_findings(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    http, key = client
    payload = {"encounter_id": "b1", "documents": [{"document_id": "d1", "text": NOTE}]}
    result = http.post("/v1/suggest", json=payload, headers=key).json()
    codes = [c["code"] for c in result["codes"]]
    assert any(code.startswith("E11") for code in codes), codes
    assert not any(code.startswith(("R07", "R50", "C50")) for code in codes), codes
    assert result["routing"]["decision"] == "review"  # the built-in model is uncalibrated: cold start


def test_builtin_model_fhir_reports_no_negated_condition(client: tuple[TestClient, dict[str, str]]) -> None:
    http, key = client
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    bundle = fhir_bundle(fhir_document(NOTE), patient=patient)
    answer = http.post("/fhir/r4/$suggest-codes", json=bundle, headers=key).json()
    conditions = [e["resource"] for e in answer["entry"] if e["resource"]["resourceType"] == "Condition"]
    codes = [c["code"]["coding"][0]["code"] for c in conditions]
    assert codes and not any(code.startswith(("R07", "R50", "C50")) for code in codes), codes
    assert all(c["verificationStatus"]["coding"][0]["code"] == "provisional" for c in conditions)
