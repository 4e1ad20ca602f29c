"""The learning loop against a real MLflow registry (SQLite in a temporary folder), real trained default
models (tiny synthetic corpus, CPU, no sentence encoder) and the running service:

- the promotion gate refuses a model trained on shuffled labels and the service keeps the old champion;
- the running service picks up a newly promoted champion without a restart (registry poller, admin
  reload), and keeps serving it when the next champion cannot be loaded.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from medcode.data.types import Encounter
from medcode.evaluation.tracking import Tracker
from medcode.model.base import Coder
from medcode.serving.app import create_app
from medcode.serving.auth import SYSTEM_PRINCIPAL
from medcode.serving.services import keys as key_service
from medcode.settings import Settings, get_settings, reset_settings
from medcode.training.feedback import TrainingSet
from medcode.training.retrain import FrozenEvaluation, RetrainConfig, retrain
from medcode.training.tracking import LOOP_EXPERIMENT

from ..model.synthetic import make_corpus

pytestmark = pytest.mark.slow


def _renamed(encounters: list[Encounter], prefix: str) -> list[Encounter]:
    return [e.model_copy(update={"encounter_id": f"{prefix}-{e.encounter_id}"}) for e in encounters]


def _shuffled_labels(encounters: list[Encounter], seed: int = 7) -> list[Encounter]:
    """The same notes with every encounter's gold codes taken from another encounter."""
    golds = [e.gold for e in encounters]
    random.Random(seed).shuffle(golds)
    return [e.model_copy(update={"gold": g}) for e, g in zip(encounters, golds, strict=True)]


class _Fits:
    """Fitted default models, memoised by training data (several tests reuse them)."""

    def __init__(self) -> None:
        self.fitted: dict[str, Coder] = {}

    def __call__(self, training: TrainingSet) -> Coder:
        from medcode.model.catalog import Knowledge
        from medcode.model.trained.coder import DefaultConfig
        from medcode.training.default import fit_default

        if training.fingerprint not in self.fitted:
            config = DefaultConfig(use_dense=False, folds=3, ranker_max_iter=60)
            coder, _ = fit_default(
                training.encounters, Knowledge(), config, evidence=training.evidence or None
            )
            self.fitted[training.fingerprint] = coder
        return self.fitted[training.fingerprint]


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("loop-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDCODE_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MEDCODE_DATA_DIR", raising=False)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        reset_settings()
        train = _renamed(make_corpus(40, seed=1), "train")
        dev = _renamed(make_corpus(16, seed=2), "dev")
        yield {
            "home": home,
            "train": train,
            "frozen": FrozenEvaluation.of(dev, dataset="synthetic", split="dev"),
            "fit": _Fits(),
            "mp": mp,
        }
    reset_settings()


def _use_model_name(loop: dict[str, Any], name: str) -> None:
    loop["mp"].setenv("MEDCODE_REGISTERED_MODEL", name)
    reset_settings()


def _app(loop: dict[str, Any], name: str, poll_seconds: float) -> Any:
    settings = Settings(
        database_url=f"sqlite:///{loop['home'] / f'{name}.db'}",
        model_ref="champion",
        model_poll_seconds=poll_seconds,
        registered_model_name=name,
    )
    return create_app(settings)


def _key(app: Any, role: str) -> dict[str, str]:
    with app.state.db.sessions() as session:
        return {"Authorization": f"Bearer {key_service.create(session, SYSTEM_PRINCIPAL, role).key}"}


def _serving(client: TestClient) -> str:
    _wait_for(lambda: client.get("/health").json()["status"] != "loading", 300)  # loads in the background
    return str(client.get("/health").json()["model_version"])


def _suggested_by(client: TestClient, key: dict[str, str]) -> str:
    body = {
        "encounter_id": "probe",
        "documents": [{"document_id": "d1", "text": "Known essential hypertension."}],
    }
    response = client.post("/v1/suggest", json=body, headers=key)
    assert response.status_code == 200, response.text
    return str(response.json()["model_version"])


def _tracker() -> Tracker:
    return Tracker.from_settings(LOOP_EXPERIMENT)


def _champion_version() -> str:
    version = get_settings().registry.champion_version()
    assert version is not None
    return version


def _wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_gate_refuses_a_model_trained_on_shuffled_labels_and_the_service_keeps_the_champion(
    loop: dict[str, Any],
) -> None:
    _use_model_name(loop, "loop-gate")
    config = RetrainConfig(n_resamples=200)
    first = retrain(loop["train"], [], loop["frozen"], loop["fit"], config, champion=None, tracker=_tracker())
    assert first.promote and _champion_version() == first.registered_version
    app = _app(loop, "loop-gate", poll_seconds=0.1)
    with TestClient(app) as client:
        key = _key(app, "integration")
        assert _serving(client) == first.coder.version

        worse = retrain(
            _shuffled_labels(loop["train"]),
            [],
            loop["frozen"],
            loop["fit"],
            config,
            champion=get_settings().registry,
            tracker=_tracker(),
        )

        assert not worse.promote, worse.reason
        assert worse.champion is not None and worse.champion.version == first.coder.version  # re-measured
        assert worse.candidate.map_interval.value < worse.champion.map_interval.value
        assert worse.registered_version not in (None, first.registered_version)  # registered, not promoted
        assert _champion_version() == first.registered_version
        time.sleep(0.5)  # a few poller ticks: nothing moved, nothing reloads
        assert app.state.model.poll_once() is None
        assert _serving(client) == first.coder.version
        assert _suggested_by(client, key) == first.coder.version


def test_running_service_picks_up_a_promoted_champion_and_survives_a_broken_one(loop: dict[str, Any]) -> None:
    from medcode.training.promotion import CHAMPION
    from medcode.training.tracking import register_pack

    _use_model_name(loop, "loop-pickup")
    config = RetrainConfig(n_resamples=200, tolerance=1.0)
    first = retrain(
        loop["train"][:12], [], loop["frozen"], loop["fit"], config, champion=None, tracker=_tracker()
    )
    app = _app(loop, "loop-pickup", poll_seconds=0.1)
    with TestClient(app) as client:
        key, admin = _key(app, "integration"), _key(app, "admin")
        assert _serving(client) == first.coder.version

        better = retrain(
            loop["train"],
            [],
            loop["frozen"],
            loop["fit"],
            config,
            champion=get_settings().registry,
            tracker=_tracker(),
        )
        assert better.promote and _champion_version() == better.registered_version
        _wait_for(lambda: _serving(client) == better.coder.version)  # the poller swapped it, no restart
        assert _suggested_by(client, key) == better.coder.version

        # a champion whose pack is corrupt: the service keeps the model it has
        pack = Path(get_settings().home) / "broken-pack"
        better.coder.save(pack)
        with (pack / "arrays.npz").open("ab") as fh:
            fh.write(b"corrupt")
        tracker = _tracker()
        with tracker.run("broken"):
            logged = register_pack(tracker, pack, "loop-pickup")
        get_settings().registry.client().set_registered_model_alias("loop-pickup", CHAMPION, logged.version)
        outcome = app.state.model.poll_once() or app.state.model.reload()
        assert not outcome.reloaded and "corrupt" in (outcome.error or "")
        response = client.post("/v1/admin/model/reload", headers=admin)
        assert response.status_code == 503 and response.json()["version"] == better.coder.version
        assert _serving(client) == better.coder.version
        assert _suggested_by(client, key) == better.coder.version
