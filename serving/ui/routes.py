"""The coder UI under /ui: sign-in and sign-out, the queue page, the encounter page, static files, and
two UI-only JSON endpoints (a note's sections and mentions). Pages are server-rendered shells; their ES
modules call the JSON API with the session cookie and the CSRF header."""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from medcode.data.types import Encounter
from medcode.serving.auth import Principal, verify_key
from medcode.serving.deps import (
    ItemId,
    MentionsDep,
    ModelDep,
    Reviewer,
    SessionDep,
    SettingsDep,
    client_of,
    record_auth_failure,
)
from medcode.serving.errors import Forbidden, NotFound
from medcode.serving.limits import retry_after_header
from medcode.serving.orm import EncounterRow, RevisionRow
from medcode.serving.routers.health import training_status_of
from medcode.serving.schemas.common import READ_ERRORS
from medcode.serving.services import audit
from medcode.serving.services import review as review_service
from medcode.serving.ui.annotate import AnnotationsPublic, annotate
from medcode.serving.ui.auth import end_session, principal_of_session, start_session
from medcode.serving.ui.session import (
    UiSession,
    clear_session_cookie,
    clear_signin_cookie,
    csrf_ok,
    encode_session,
    new_session,
    new_token,
    secret_of,
    session_of,
    set_session_cookie,
    set_signin_cookie,
    signin_token_ok,
)

logger = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
STATIC_DIR = _HERE / "static"
TEMPLATE_DIR = _HERE / "templates"
DEFAULT_PAGE = "/ui/queue"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class _StaticFiles(StaticFiles):
    """Static files that browsers revalidate (ETag) on every use: module imports carry no version."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


router = APIRouter(prefix="/ui", include_in_schema=False)
# a Mount does not take the router prefix: it names its full path
router.mount("/ui/static", _StaticFiles(directory=STATIC_DIR), name="ui-static")
templates = Jinja2Templates(directory=str(TEMPLATE_DIR))


@lru_cache(maxsize=1)
def _asset_version() -> str:
    """A short hash of the static files: changes when they do, so browsers fetch fresh copies."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def static_url(name: str) -> str:
    return f"/ui/static/{name}?v={_asset_version()}"


templates.env.globals["static_url"] = static_url
templates.env.globals["training_status"] = training_status_of  # the header's background-training banner


def safe_next(target: str | None) -> str:
    """Only local UI paths are valid redirect targets after sign-in (no open redirect)."""
    if not target or not target.startswith("/ui/") or target.startswith("//") or "\\" in target:
        return DEFAULT_PAGE
    if target.startswith("/ui/signin") or target.startswith("/ui/static/"):
        return DEFAULT_PAGE
    return target


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _signed_in(request: Request, db: SessionDep) -> tuple[UiSession, Principal] | None:
    ui_session = session_of(request)
    if ui_session is None:
        return None
    principal = principal_of_session(db, ui_session)
    db.rollback()  # end the read (SQLite takes its write lock at BEGIN)
    return None if principal is None else (ui_session, principal)


def _to_signin(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/ui/signin?next={quote(safe_next(target), safe='/')}", status_code=303)
    clear_session_cookie(response, request)
    return response


def _app_page(request: Request, db: SessionDep, name: str, **context: Any) -> Response:
    signed = _signed_in(request, db)
    if signed is None:
        return _to_signin(request)
    ui_session, principal = signed
    return _page(
        request,
        name,
        {"session": ui_session, "principal": principal, "csrf_token": ui_session.csrf, **context},
    )


# -- sign-in / sign-out ------------------------------------------------------------------------------


@router.get("", response_class=RedirectResponse)
@router.get("/", response_class=RedirectResponse)
def ui_root() -> RedirectResponse:
    return RedirectResponse(DEFAULT_PAGE, status_code=303)


def _signin_page(
    request: Request, next_page: str, error: str | None = None, status_code: int = 200
) -> Response:
    token = new_token()
    context = {"next": next_page, "error": error, "csrf_token": None, "session": None, "signin_token": token}
    response = _page(request, "signin.html", context, status_code)
    set_signin_cookie(response, request, token)
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, db: SessionDep, next: str | None = None) -> Response:
    if _signed_in(request, db) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _signin_page(request, safe_next(next))


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    db: SessionDep,
    api_key: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = DEFAULT_PAGE,
) -> Response:
    target = safe_next(next)
    if not signin_token_ok(request, csrf_token):
        return _signin_page(request, target, "The sign-in form expired; please try again.", 400)
    wait = request.app.state.auth_failures.retry_after(client_of(request))
    if wait > 0:
        response = _signin_page(request, target, "Too many failed sign-ins; please wait and try again.", 429)
        response.headers.update(retry_after_header(wait))
        return response
    principal, outcome = verify_key(db, api_key) if api_key.strip() else (None, "malformed")
    db.rollback()
    if principal is None:
        record_auth_failure(request, "auth.signin_failed", api_key, outcome)
        return _signin_page(request, target, "That API key is not valid (or was revoked).", 401)
    request.app.state.auth_failures.succeeded(client_of(request))
    ui_session = new_session(principal.key_id, principal.name, principal.role)
    start_session(db, ui_session)
    audit.record(db, principal, "ui.signed_in", "api_key", principal.key_id)
    db.commit()
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, encode_session(secret_of(request), ui_session))
    clear_signin_cookie(response, request)
    logger.info("UI sign-in by key %s (%s)", principal.key_id, principal.role)
    return response


@router.post("/signout")
def signout(
    request: Request, db: SessionDep, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    ui_session = session_of(request)
    if ui_session is not None:
        if not csrf_ok(request, ui_session, csrf_token):
            raise Forbidden("missing or invalid CSRF token", code="csrf_failed")
        principal = principal_of_session(db, ui_session)
        end_session(db, ui_session)
        if principal is not None:
            audit.record(db, principal, "ui.signed_out", "api_key", principal.key_id)
        db.commit()
    response = RedirectResponse("/ui/signin", status_code=303)
    clear_session_cookie(response, request)
    return response


# -- pages -------------------------------------------------------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, db: SessionDep) -> Response:
    return _app_page(request, db, "queue.html", nav="queue")


@router.get("/review/{item_id}", response_class=HTMLResponse)
def review_page(item_id: ItemId, request: Request, db: SessionDep, settings: SettingsDep) -> Response:
    return _app_page(
        request,
        db,
        "encounter.html",
        nav="queue",
        item_id=item_id,
        encounter_id=None,
        lease_seconds=settings.review_lease_seconds,
    )


@router.get("/encounters/{encounter_id}", response_class=HTMLResponse)
def encounter_page(encounter_id: str, request: Request, db: SessionDep) -> Response:
    return _app_page(request, db, "encounter.html", nav="queue", item_id=None, encounter_id=encounter_id)


# -- UI-only JSON ------------------------------------------------------------------------------------


@router.get(
    "/api/review/items/{item_id}/annotations", response_model=AnnotationsPublic, responses=READ_ERRORS
)
def item_annotations(
    item_id: ItemId, principal: Reviewer, db: SessionDep, model: ModelDep, mentions: MentionsDep
) -> AnnotationsPublic:
    """The item's note with sections and mentions (the serving model's pipeline's): coders and admins, as
    `/v1/review/items/{item_id}`."""
    item = review_service.get_item(db, item_id, mentions_of=mentions)
    return annotate(item.encounter_id, item.documents, model.coder.pipeline)


@router.get(
    "/api/encounters/{encounter_id}/annotations", response_model=AnnotationsPublic, responses=READ_ERRORS
)
def encounter_annotations(
    encounter_id: str, principal: Reviewer, db: SessionDep, model: ModelDep
) -> AnnotationsPublic:
    """The encounter's latest note with sections and mentions: note text is for coders and admins only
    (as `/v1/review/items/{item_id}`); integrations and scientists read codes, not notes."""
    row = db.scalar(select(EncounterRow).where(EncounterRow.encounter_id == encounter_id))
    if row is None:
        db.rollback()
        raise NotFound(f"no encounter {encounter_id!r}", code="encounter_not_found")
    revision = db.scalar(
        select(RevisionRow).where(
            RevisionRow.encounter_pk == row.id, RevisionRow.revision == row.current_revision
        )
    )
    db.rollback()
    if revision is None:
        raise NotFound(f"no stored revision of encounter {encounter_id!r}", code="encounter_not_found")
    encounter = Encounter.model_validate(revision.encounter_json)
    return annotate(encounter_id, encounter.documents, model.coder.pipeline)
