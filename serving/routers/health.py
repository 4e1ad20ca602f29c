"""GET /health: no authentication; the model serving (or loading), whether the database answers, and the
first-run background training's progress (read from its status file; serving never imports training)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from medcode.serving.deps import DatabaseDep, ModelDep, SettingsDep
from medcode.serving.process import pid_alive
from medcode.serving.schemas.admin import HealthPublic, TrainingStatusPublic

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def health(database: DatabaseDep, holder: ModelDep, settings: SettingsDep) -> JSONResponse:
    db_ok = database.ping()
    state = holder.state
    coder = holder.coder if state == "ready" else None
    if state == "loading":
        status = "loading"
    elif db_ok and state == "ready":
        status = "ok"
    else:
        status = "degraded"
    body = HealthPublic(
        status=status,
        db="ok" if db_ok else "error",
        model_version=coder.version if coder is not None else None,
        code_set_version=coder.code_set_version if coder is not None else None,
        model_ref=holder.ref,
        model_loaded_at=holder.loaded_at,
        model_generation=holder.generation,
        pid=os.getpid(),
        model_state=state,
        training=read_training_status(settings.training_status_file),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.status == "ok" else 503)


def read_training_status(path: Path) -> TrainingStatusPublic | None:
    """The background training's status; a 'running' job whose process is gone reads 'interrupted'."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        status = TrainingStatusPublic.model_validate(raw)
    except (OSError, ValueError, ValidationError):
        return None
    if status.state == "running" and status.pid is not None and not pid_alive(status.pid):
        status = status.model_copy(
            update={"state": "interrupted", "step": "the training process is no longer running"}
        )
    return status


def training_status_of(request: Request) -> TrainingStatusPublic | None:
    """For the UI header: the app's background training status."""
    return read_training_status(request.app.state.settings.training_status_file)
