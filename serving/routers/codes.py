"""GET /v1/codes: code search for the coder UI's typeahead; GET /v1/codes/{system}/{code}: one code's detail."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from medcode.serving.deps import CodeReader
from medcode.serving.schemas.codes import CodeDetailPublic, PcsStepPublic
from medcode.serving.schemas.common import AUTH_ERRORS, errors
from medcode.serving.services.code_detail import code_detail, pcs_step
from medcode.serving.services.codes import CodeSearchPublic, configured_code_sets, search_codes

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


@router.get("/pcs/builder", response_model=PcsStepPublic, responses=errors(404, 503))
def pcs_builder(
    principal: CodeReader,
    prefix: Annotated[str, Query(max_length=7, description="the ICD-10-PCS characters chosen so far")] = "",
) -> PcsStepPublic:
    """The ICD-10-PCS builder's next step: the valid values of the next axis (section, body system,
    operation, body part, approach, device, qualifier) after `prefix`, with their labels."""
    return pcs_step(configured_code_sets(), prefix)


@router.get("/codes/{system}/{code}", response_model=CodeDetailPublic, responses=errors(404))
def code_info(
    principal: CodeReader,
    system: SystemName,
    code: Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9.\-]+$")],
) -> CodeDetailPublic:
    """The code's chapter/block/category path, its children (what completes a header) and, for ICD-10-CM,
    the Includes, Excludes1/2, Code first, Use additional and Code also notes that apply, and its 7th
    characters."""
    return code_detail(configured_code_sets(), system, code)
