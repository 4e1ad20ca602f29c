"""Admin: API keys and model reload."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from medcode.serving.deps import Admin, DatabaseDep, JsonBody, ModelDep, SessionDep
from medcode.serving.model_generation import request_reload
from medcode.serving.schemas.admin import (
    KeyCreate,
    KeyCreatedPublic,
    KeyListPublic,
    KeyPublic,
    ModelReloadPublic,
)
from medcode.serving.schemas.common import AUTH_ERRORS, BODY_ERRORS, errors
from medcode.serving.services import audit
from medcode.serving.services import keys as key_service

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=AUTH_ERRORS)


@router.get("/keys", response_model=KeyListPublic)
def list_keys(principal: Admin, session: SessionDep) -> KeyListPublic:
    return KeyListPublic(keys=[KeyPublic(**vars(k)) for k in key_service.all_keys(session)])


@router.post(
    "/keys",
    response_model=KeyCreatedPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[JsonBody],
    responses=BODY_ERRORS,
)
def create_key(body: KeyCreate, principal: Admin, session: SessionDep) -> KeyCreatedPublic:
    created = key_service.create(session, principal, body.role, body.name)
    return KeyCreatedPublic(key_id=created.key_id, name=created.name, role=created.role, key=created.key)


@router.delete("/keys/{key_id}", response_model=KeyPublic, responses=errors(404))
def revoke_key(key_id: str, principal: Admin, session: SessionDep) -> KeyPublic:
    """Revoke a key: its requests answer 401 and its UI sessions end at once."""
    return KeyPublic(**vars(key_service.revoke(session, principal, key_id)))


@router.post(
    "/model/reload",
    response_model=ModelReloadPublic,
    responses={
        503: {"model": ModelReloadPublic, "description": "Loading failed; the old model keeps serving"}
    },
)
async def reload_model(
    principal: Admin, holder: ModelDep, database: DatabaseDep, request: Request
) -> JSONResponse:
    """Reload the model in this process now; on PostgreSQL every other worker process follows on its next
    model poll (the request bumps the shared reload generation first)."""
    everyone = bool(request.app.state.reload_reaches_all_workers)
    generation = await run_in_threadpool(request_reload, database, principal.key_id) if everyone else None
    outcome = await run_in_threadpool(holder.reload)
    body = ModelReloadPublic(
        reloaded=outcome.reloaded,
        version=outcome.version,
        previous_version=outcome.previous_version,
        error=outcome.error,
        workers="all" if everyone else "this process",
        generation=generation,
        followers_within_seconds=request.app.state.settings.model_poll_seconds if everyone else None,
    )

    def record() -> None:
        with database.sessions() as session:
            audit.record(
                session,
                principal,
                "model.reloaded" if outcome.reloaded else "model.reload_failed",
                "model",
                holder.ref,
                before={"version": outcome.previous_version},
                after={"version": outcome.version, "error": outcome.error, "generation": generation},
                model_version=outcome.version,
            )
            session.commit()

    await run_in_threadpool(record)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if outcome.reloaded else 503)
