from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from medcode.training.promotion import decide, metric_value, promote


def test_first_model_is_promoted() -> None:
    assert decide(0.3, None).promote


def test_worse_model_is_not_promoted_and_equal_is() -> None:
    assert not decide(0.49, 0.50).promote
    assert decide(0.50, 0.50).promote
    assert decide(0.49, 0.50, tolerance=0.02).promote


def test_decision_json_names_every_field() -> None:
    decision = decide(0.49, 0.50, tolerance=0.005, champion_version="3")
    assert decision.to_json() == {
        "promote": False,
        "reason": decision.reason,
        "metric": "diagnosis.map",
        "candidate_value": 0.49,
        "champion_value": 0.50,
        "champion_version": "3",
        "tolerance": 0.005,
    }


def test_metric_value_reads_nested_and_flat_metrics() -> None:
    assert metric_value({"diagnosis": {"map": 0.4}}, "diagnosis.map") == 0.4
    assert metric_value({"diagnosis.map": 0.5}, "diagnosis.map") == 0.5
    with pytest.raises(KeyError):
        metric_value({"procedure": {"map": 0.4}}, "diagnosis.map")


@dataclass
class _Version:
    version: str
    tags: dict[str, str] = field(default_factory=dict)


class _FakeClient:
    """The few MlflowClient calls the gate makes, in memory."""

    def __init__(self) -> None:
        self.versions: dict[str, _Version] = {}
        self.alias: str | None = None

    def get_model_version_by_alias(self, name: str, alias: str) -> _Version:
        from mlflow.exceptions import MlflowException

        if self.alias is None:
            raise MlflowException("no alias")
        return self.versions[self.alias]

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.alias = version

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.versions.setdefault(version, _Version(version)).tags[key] = value


def test_gate_moves_alias_only_when_not_worse() -> None:
    client = _FakeClient()
    assert promote(client, "m", "1", 0.40, fingerprint="fp").promote
    assert client.alias == "1"
    decision = promote(client, "m", "2", 0.35, fingerprint="fp")
    assert not decision.promote
    assert client.alias == "1"
    assert decision.champion_value == pytest.approx(0.40)
    assert client.versions["2"].tags["validation_value"] == repr(0.35)  # the refused version keeps its figure
    assert "worse" in client.versions["2"].tags["promotion"]
    assert promote(client, "m", "3", 0.41, fingerprint="fp").promote
    assert client.alias == "3"


def test_gate_uses_a_remeasured_champion_value() -> None:
    client = _FakeClient()
    promote(client, "m", "1", 0.90, fingerprint="other-validation-set")
    assert not promote(client, "m", "2", 0.50, fingerprint="fp").promote
    assert promote(client, "m", "3", 0.50, fingerprint="fp", champion_value=0.45).promote


def test_first_model_of_a_loop_is_promoted_even_when_a_better_champion_exists() -> None:
    client = _FakeClient()
    promote(client, "m", "1", 0.90)
    decision = promote(client, "m", "2", 0.10, first_model=True)
    assert decision.promote and client.alias == "2"
    assert client.versions["2"].tags["promotion"] == "first model: nothing to compare against"
