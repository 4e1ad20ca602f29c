"""POST /v1/suggest: one encounter in, its result out; nothing is stored."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from medcode.data.types import Encounter, Result
from medcode.serving.deps import JsonBody, ModelDep, SettingsDep, SuggestPrincipal
from medcode.serving.services import encounters as service

router = APIRouter(prefix="/v1", tags=["encounters"])
logger = logging.getLogger(__name__)


@router.post("/suggest", response_model=Result, dependencies=[JsonBody])
def suggest(
    encounter: Encounter, principal: SuggestPrincipal, holder: ModelDep, settings: SettingsDep
) -> Result:
    """Suggest codes for one encounter: the result with evidence, confidence and routing. Nothing is stored."""
    service.check_note_size(encounter, settings.max_note_chars)
    result = service.suggest(holder.coder, encounter)
    logger.info("suggested %d codes for one encounter (key %s)", len(result.codes), principal.key_id)
    return result
