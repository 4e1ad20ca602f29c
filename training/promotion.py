"""The promotion gate: a new model takes the `champion` alias only when it is not worse than the current
champion on the validation metric (within a tolerance). `decide` is the rule; `promote` applies it on the
registry, for `medcode train`, `medcode retrain` and the learning-loop simulation alike.

Metric values are stored on each registered version as tags (`validation_metric`, `validation_value`,
`validation_fingerprint`), so the gate compares like with like: when the champion was measured on another
validation set, the caller re-measures it (`champion_value` argument) before deciding.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

CHAMPION = "champion"
DEFAULT_METRIC = "diagnosis.map"
TAG_METRIC = "validation_metric"
TAG_VALUE = "validation_value"
TAG_FINGERPRINT = "validation_fingerprint"


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    metric: str
    candidate_value: float
    champion_value: float | None
    champion_version: str | None
    tolerance: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def metric_value(metrics: Mapping[str, Any], metric: str) -> float:
    """A dotted metric ("diagnosis.map") from nested metrics ({"diagnosis": {"map": 0.5}}) or flat ones."""
    if metric in metrics:
        return float(metrics[metric])
    value: Any = metrics
    for part in metric.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(f"metric {metric!r} not among the model's metrics")
        value = value[part]
    return float(value)


def decide(
    candidate_value: float,
    champion_value: float | None,
    *,
    metric: str = DEFAULT_METRIC,
    tolerance: float = 0.0,
    champion_version: str | None = None,
) -> PromotionDecision:
    """Promote when there is no champion or the candidate is not worse by more than `tolerance`."""
    if champion_value is None:
        return PromotionDecision(
            True, "no champion yet", metric, candidate_value, None, champion_version, tolerance
        )
    if candidate_value + tolerance >= champion_value:
        reason = f"{metric} {candidate_value:.4f} is not worse than the champion's {champion_value:.4f}"
        return PromotionDecision(
            True, reason, metric, candidate_value, champion_value, champion_version, tolerance
        )
    reason = (
        f"{metric} {candidate_value:.4f} is worse than the champion's {champion_value:.4f} "
        f"(tolerance {tolerance:g})"
    )
    return PromotionDecision(
        False, reason, metric, candidate_value, champion_value, champion_version, tolerance
    )


@dataclass(frozen=True)
class ChampionInfo:
    version: str
    metric: str | None
    value: float | None
    fingerprint: str | None


def current_champion(client: Any, name: str) -> ChampionInfo | None:
    """The registered version holding the champion alias, with its stored validation metric."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    tags = dict(mv.tags or {})
    value = tags.get(TAG_VALUE)
    return ChampionInfo(
        version=str(mv.version),
        metric=tags.get(TAG_METRIC),
        value=float(value) if value not in (None, "") else None,
        fingerprint=tags.get(TAG_FINGERPRINT),
    )


def promote(
    client: Any,
    name: str,
    version: str,
    candidate_value: float,
    *,
    metric: str = DEFAULT_METRIC,
    tolerance: float = 0.0,
    fingerprint: str = "",
    champion_value: float | None = None,
    first_model: bool = False,
) -> PromotionDecision:
    """The promotion gate on the registry: record the candidate's validation figure on its version, decide
    (`decide`) against the champion, move the champion alias to `version` when it passes, and record the
    reason on the version.

    `champion_value` overrides the champion's stored value (re-measured on this validation set);
    `first_model` promotes unconditionally (the first model of a learning loop).
    """
    client.set_model_version_tag(name, str(version), TAG_METRIC, metric)
    client.set_model_version_tag(name, str(version), TAG_VALUE, repr(float(candidate_value)))
    client.set_model_version_tag(name, str(version), TAG_FINGERPRINT, fingerprint)
    if first_model:
        decision = PromotionDecision(
            True, "first model: nothing to compare against", metric, candidate_value, None, None, tolerance
        )
    else:
        champion = current_champion(client, name)
        if champion is not None and champion.version == str(version):
            champion = None
        stored = champion.value if champion is not None and champion.metric == metric else None
        value = champion_value if champion_value is not None else stored
        if champion is not None and value is None:
            log.warning("champion version %s has no %s; the new model replaces it", champion.version, metric)
        decision = decide(
            candidate_value,
            value,
            metric=metric,
            tolerance=tolerance,
            champion_version=champion.version if champion else None,
        )
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, str(version))
        log.info("promoted %s version %s to champion: %s", name, version, decision.reason)
    else:
        log.info("kept champion %s: %s", decision.champion_version, decision.reason)
    client.set_model_version_tag(name, str(version), "promotion", decision.reason)
    return decision
