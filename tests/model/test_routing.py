from __future__ import annotations

from medcode.data.types import CodeSuggestion, Evidence
from medcode.model.routing import route
from medcode.model.thresholds import TaskThresholds

EV = [Evidence(document_id="d1", start=0, end=4, text="note")]


def _s(code: str, conf: float, desc: str = "", system: str = "ICD-10-CM") -> CodeSuggestion:
    return CodeSuggestion(system=system, code=code, confidence=conf, description=desc, evidence=EV)  # type: ignore[arg-type]


def _th(_: str) -> TaskThresholds:
    return TaskThresholds(decision=0.5, auto_accept=0.9)


def test_confident_unambiguous_result_is_auto_accepted() -> None:
    routing = route([_s("I10", 0.97)], [_s("E11.9", 0.2)], _th, calibrated=True)
    assert routing.decision == "auto_accept"
    assert routing.reasons == []


def test_uncalibrated_model_always_routes_to_review() -> None:
    routing = route([_s("I10", 0.99)], [], _th, calibrated=False)
    assert routing.decision == "review"
    assert "cold_start_model" in routing.reasons


def test_low_confidence_code_is_named() -> None:
    routing = route([_s("I10", 0.97), _s("E11.9", 0.6)], [], _th, calibrated=True)
    assert routing.reasons == ["low_confidence:E11.9"]


def test_close_sibling_gives_small_margin() -> None:
    routing = route([_s("J18.9", 0.95)], [_s("J18.1", 0.9)], _th, calibrated=True)
    assert "small_margin:J18.9" in routing.reasons


def test_unspecified_code_with_supported_specific_sibling() -> None:
    codes = [_s("E11.9", 0.95, "Type 2 diabetes mellitus without complications, unspecified")]
    candidates = [_s("E11.22", 0.3, "Type 2 diabetes mellitus with diabetic chronic kidney disease")]
    routing = route(codes, candidates, _th, calibrated=True)
    assert "unspecified:E11.9" in routing.reasons


def test_rule_reasons_are_passed_through_and_empty_result_is_reviewed() -> None:
    routing = route([], [], _th, calibrated=True, rule_reasons=["excludes1:E11.9"])
    assert routing.decision == "review"
    assert routing.reasons == ["no_codes", "excludes1:E11.9"]
