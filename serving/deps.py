"""FastAPI dependencies, as `Annotated` aliases routes declare in their signatures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from email.message import Message
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from medcode.serving.auth import Permission, Principal, authenticate_key
from medcode.serving.db import Database
from medcode.serving.errors import Forbidden, Unauthorized, UnsupportedMediaType
from medcode.serving.holder import ModelHolder
from medcode.serving.services.encounters import PriorityFn
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
NowDep = Annotated[datetime, Depends(get_now)]
PriorityDep = Annotated[PriorityFn, Depends(get_priority_fn)]


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
            return ui_principal
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(
            "an API key is required (Authorization: Bearer KEY)", headers={"WWW-Authenticate": "Bearer"}
        )
    principal = authenticate_key(session, credentials.credentials)
    session.rollback()  # end the read: the request's own transaction starts when it needs one
    if principal is None:
        raise Unauthorized("invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return principal


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
