"""POST /v1/suggest: one encounter in, its result out; nothing is stored."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from medcode.data.types import Encounter, Result
from medcode.serving.deps import JsonBody, LimitsDep, ModelDep, SlotsDep, SuggestPrincipal
from medcode.serving.schemas.common import AUTH_ERRORS, BODY_ERRORS, SUGGEST_ERRORS
from medcode.serving.services import encounters as service

router = APIRouter(prefix="/v1", tags=["encounters"])
logger = logging.getLogger(__name__)


@router.post(
    "/suggest",
    response_model=Result,
    dependencies=[JsonBody],
    responses=AUTH_ERRORS | BODY_ERRORS | SUGGEST_ERRORS,
)
async def suggest(
    encounter: Encounter, principal: SuggestPrincipal, holder: ModelDep, limits: LimitsDep, slots: SlotsDep
) -> Result:
    """Suggest codes for one encounter: the result with evidence, confidence and routing. Nothing is stored."""
    service.check_encounter(encounter, limits)
    result = await slots.run(lambda: service.suggest(holder.coder, encounter))
    logger.info("suggested %d codes for one encounter (key %s)", len(result.codes), principal.key_id)
    return result
