"""GET /v1/codes: code search for the coder UI's typeahead."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from medcode.serving.deps import CodeReader
from medcode.serving.schemas.common import AUTH_ERRORS
from medcode.serving.services.codes import CodeSearchPublic, search_codes

router = APIRouter(prefix="/v1", tags=["codes"], responses=AUTH_ERRORS)
SystemName = Literal["ICD-10-CM", "ICD-10-PCS", "HCPCS", "CPT"]


@router.get("/codes", response_model=CodeSearchPublic)
def codes(
    principal: CodeReader,
    q: Annotated[str, Query(min_length=1, max_length=200, description="words of a title, or a code prefix")],
    system: SystemName | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> CodeSearchPublic:
    return search_codes(q, system, limit)
