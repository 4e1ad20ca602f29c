"""FastAPI dependencies, as `Annotated` aliases routes declare in their signatures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import Message
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from medcode.serving.auth import Permission, Principal, claimed_key_id, verify_key
from medcode.serving.db import Database
from medcode.serving.errors import (
    Forbidden,
    InvalidRequest,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)
from medcode.serving.holder import ModelHolder
from medcode.serving.limits import ClientSlots, SuggestionSlots, retry_after_header
from medcode.serving.services import audit
from medcode.serving.services.encounters import EncounterLimits, PriorityFn
from medcode.serving.services.review_checks import MentionSource, model_mentions
from medcode.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer mck_...`")


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def get_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with database.sessions() as session:
        yield session


def get_model(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.model
    return holder


def get_mentions(request: Request) -> MentionSource:
    """The review checks' mentions: those of the serving model's own text pipeline."""
    holder: ModelHolder = request.app.state.model
    return model_mentions(lambda: holder.coder)


def get_now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def get_priority_fn(request: Request) -> PriorityFn:
    priority: PriorityFn = request.app.state.priority_fn
    return priority


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_session)]
ModelDep = Annotated[ModelHolder, Depends(get_model)]
MentionsDep = Annotated[MentionSource, Depends(get_mentions)]
NowDep = Annotated[datetime, Depends(get_now)]
PriorityDep = Annotated[PriorityFn, Depends(get_priority_fn)]


def get_slots(request: Request) -> ClientSlots:
    """The suggestion workers, bound to this request: its model work stops when its client goes away."""
    slots: SuggestionSlots = request.app.state.suggestion_slots
    return ClientSlots(slots, request.is_disconnected)


def get_limits(settings: Annotated[Settings, Depends(get_settings_dep)]) -> EncounterLimits:
    return EncounterLimits(
        max_note_chars=settings.max_note_chars,
        max_documents=settings.max_documents,
        max_encounter_chars=settings.max_encounter_chars,
    )


SlotsDep = Annotated[ClientSlots, Depends(get_slots)]
LimitsDep = Annotated[EncounterLimits, Depends(get_limits)]


ANONYMOUS = Principal(key_id="anonymous", name="unauthenticated client", role="none")
"""The actor of audit events about failed authentication."""


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def check_signin_allowed(request: Request) -> None:
    """429 while this client is locked out after too many failed sign-ins or rejected keys."""
    wait = request.app.state.auth_failures.retry_after(client_of(request))
    if wait > 0:
        raise TooManyRequests(
            "too many failed sign-ins or rejected API keys from this client; wait before trying again",
            headers=retry_after_header(wait),
        )


def record_auth_failure(request: Request, action: str, raw_key: str, reason: str) -> None:
    """Count the failure against the client and keep an audit event: the claimed key id, never the key."""
    client = client_of(request)
    request.app.state.auth_failures.failed(client)
    database: Database = request.app.state.db
    with database.sessions() as session:
        audit.record(
            session,
            ANONYMOUS,
            action,
            "api_key",
            claimed_key_id(raw_key) or "-",
            after={"reason": reason, "client": client[:100]},
        )
        session.commit()


def _rate_limited(request: Request, principal: Principal) -> Principal:
    wait = request.app.state.rate_limiter.acquire(principal.key_id)
    if wait > 0:
        raise TooManyRequests(
            f"more than {request.app.state.rate_limiter.per_minute} requests a minute with this key"
            " (MEDCODE_RATE_LIMIT_PER_MINUTE)",
            code="rate_limited",
            headers=retry_after_header(wait),
        )
    return principal


def get_current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        # The coder UI's signed session cookie (CSRF header checked on state changes) stands in for a key.
        from medcode.serving.ui.auth import principal_from_cookie

        ui_principal = principal_from_cookie(request, session)
        session.rollback()
        if ui_principal is not None:
            return _rate_limited(request, ui_principal)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(
            "an API key is required (Authorization: Bearer KEY)", headers={"WWW-Authenticate": "Bearer"}
        )
    check_signin_allowed(request)
    principal, outcome = verify_key(session, credentials.credentials)
    session.rollback()  # end the read: the request's own transaction starts when it needs one
    if principal is None:
        record_auth_failure(request, "auth.key_rejected", credentials.credentials, outcome)
        raise Unauthorized("invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    request.app.state.auth_failures.succeeded(client_of(request))
    return _rate_limited(request, principal)


CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    """A dependency that lets through only principals whose role grants `permission`."""

    def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            raise Forbidden(f"the {principal.role} role may not do this (needs {permission.value})")
        return principal

    dependency.__name__ = f"require_{permission.name.lower()}"
    return dependency


SuggestPrincipal = Annotated[Principal, Depends(require(Permission.SUGGEST))]
EncounterWriter = Annotated[Principal, Depends(require(Permission.ENCOUNTERS_WRITE))]
EncounterReader = Annotated[Principal, Depends(require(Permission.ENCOUNTERS_READ))]
Reviewer = Annotated[Principal, Depends(require(Permission.REVIEW))]
CodeReader = Annotated[Principal, Depends(require(Permission.CODES))]
FhirClient = Annotated[Principal, Depends(require(Permission.FHIR))]
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT))]
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]


def require_json(request: Request, _principal: CurrentPrincipal) -> None:
    """415 unless the body is JSON (application/json or any +json type); checked after authentication."""
    header = request.headers.get("content-type")
    if header is None:
        raise UnsupportedMediaType("send the body as application/json")
    message = Message()
    message["content-type"] = header
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"unsupported content type {message.get_content_type()!r}; send application/json"
        )


JsonBody = Depends(require_json)


MAX_ID = 2**31 - 1
"""The largest row id (and offset) the database columns hold; larger numbers answer 422, not 500."""
ItemId = Annotated[int, Path(ge=1, le=MAX_ID, description="a review item's id")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]


def as_utc(value: datetime | None, name: str = "since") -> datetime | None:
    """An aware UTC datetime (naive input is taken as UTC); 422 when it falls off the datetime range."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"{name} is out of range once converted to UTC") from None
