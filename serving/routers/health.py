"""GET /health: no authentication; the model serving and whether the database answers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from medcode.serving.deps import DatabaseDep, ModelDep
from medcode.serving.schemas.admin import HealthPublic

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def health(database: DatabaseDep, holder: ModelDep) -> JSONResponse:
    db_ok = database.ping()
    coder = holder.coder if holder.loaded else None
    body = HealthPublic(
        status="ok" if db_ok and coder is not None else "degraded",
        db="ok" if db_ok else "error",
        model_version=coder.version if coder is not None else None,
        code_set_version=coder.code_set_version if coder is not None else None,
        model_ref=holder.ref,
        model_loaded_at=holder.loaded_at,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.status == "ok" else 503)
