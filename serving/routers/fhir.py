"""POST /fhir/r4/$suggest-codes: a FHIR Bundle in, a Bundle of Conditions, Procedures and a draft Claim out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from medcode.serving.deps import FhirClient, JsonBody, LimitsDep, ModelDep, NowDep, SlotsDep
from medcode.serving.errors import FHIR_JSON, ServiceError, operation_outcome, request_id_of
from medcode.serving.schemas.common import ERROR_DESCRIPTIONS
from medcode.serving.services import encounters as encounter_service
from medcode.serving.services import fhir as service

router = APIRouter(prefix="/fhir/r4", tags=["fhir"])
_OUTCOME: dict[str, Any] = {
    "schema": {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "id": {"type": "string", "description": "the request id"},
            "issue": {"type": "array", "items": {"type": "object"}},
        },
    }
}
_BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A FHIR R4 Bundle: a Patient, an optional Encounter, and DocumentReferences whose"
    " `content[].attachment` is `text/plain` with the note as base64 `data`",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "id": {"type": "string"},
        "type": {"type": "string"},
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": {
                        "type": "object",
                        "required": ["resourceType"],
                        "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}},
                    },
                },
            },
        },
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {}}, "description": "Bundle with Condition, Procedure and a draft Claim"},
    **{
        status: {"content": {FHIR_JSON: _OUTCOME}, "description": f"OperationOutcome: {text}"}
        for status, text in ERROR_DESCRIPTIONS.items()
        if status not in (409, 404)
    },
}
REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {FHIR_JSON: {"schema": _BUNDLE_SCHEMA}, "application/json": {"schema": _BUNDLE_SCHEMA}},
}


@router.post(
    "/$suggest-codes",
    dependencies=[JsonBody],
    responses=RESPONSES,
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def suggest_codes(
    request: Request,
    principal: FhirClient,
    holder: ModelDep,
    limits: LimitsDep,
    slots: SlotsDep,
    now: NowDep,
) -> JSONResponse:
    """Codes for the encounter a Bundle describes, as a Bundle of Conditions, Procedures and a draft
    Claim; nothing is stored. Errors answer an OperationOutcome."""
    body = await request.body()
    try:
        encounter, context = await run_in_threadpool(service.parse_bundle, body, limits)
        result = await slots.run(lambda: encounter_service.suggest(holder.coder, encounter))
        bundle = await run_in_threadpool(service.build_bundle, result, context, now=now)
    except service.FhirInputError as exc:
        outcome = operation_outcome(exc.status, exc.messages, request_id_of(request))
        return JSONResponse(outcome, status_code=exc.status, media_type=FHIR_JSON)
    except ServiceError as exc:
        outcome = operation_outcome(exc.status_code, [exc.message], request_id_of(request))
        return JSONResponse(outcome, status_code=exc.status_code, media_type=FHIR_JSON, headers=exc.headers)
    return JSONResponse(bundle, media_type=FHIR_JSON)
