"""POST /fhir/r4/$suggest-codes: a FHIR Bundle in, a Bundle of Conditions, Procedures and a draft Claim out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from medcode.serving.deps import FhirClient, JsonBody, ModelDep, NowDep, SettingsDep
from medcode.serving.errors import FHIR_JSON, operation_outcome, request_id_of
from medcode.serving.services import encounters as encounter_service
from medcode.serving.services import fhir as service

router = APIRouter(prefix="/fhir/r4", tags=["fhir"])
EXAMPLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {}}, "description": "Bundle with Condition, Procedure and a draft Claim"},
    400: {"description": "OperationOutcome: the body is not JSON"},
    422: {"description": "OperationOutcome: not a valid Bundle or no text/plain note"},
}


@router.post("/$suggest-codes", dependencies=[JsonBody], responses=EXAMPLE_RESPONSES)
async def suggest_codes(
    request: Request, principal: FhirClient, holder: ModelDep, settings: SettingsDep, now: NowDep
) -> JSONResponse:
    body = await request.body()

    def work() -> dict[str, object]:
        encounter, context = service.parse_bundle(body, settings.max_note_chars)
        result = encounter_service.suggest(holder.coder, encounter)
        return service.build_bundle(result, context, now=now)

    try:
        bundle = await run_in_threadpool(work)
    except service.FhirInputError as exc:
        outcome = operation_outcome(exc.status, exc.messages, request_id_of(request))
        return JSONResponse(outcome, status_code=exc.status, media_type=FHIR_JSON)
    return JSONResponse(bundle, media_type=FHIR_JSON)
