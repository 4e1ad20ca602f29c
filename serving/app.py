"""The FastAPI app factory.

`create_app()` connects the database and runs its migrations, and installs the routers, the error
handlers and the request middleware. The model loads once, in a background thread started by the app's
startup (or on first use when the app runs without its lifespan), into a `ModelHolder` that an admin
reload or the registry poller can swap without a restart; on PostgreSQL every worker process also polls
the shared reload generation, so that an admin reload reaches them all (serving.model_generation). The
server answers from the start: /health says "loading" (503) and suggestions answer 503 with Retry-After
until the model is ready; startup waits only `ready_wait_seconds` for a model that loads quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from functools import partial

from fastapi import FastAPI

from medcode.model.base import Coder
from medcode.serving.db import Database
from medcode.serving.errors import install_error_handlers
from medcode.serving.holder import Loader, ModelHolder, VersionProbe, is_pollable_ref, warm_up
from medcode.serving.limits import SuggestionSlots, failure_limiter, rate_limiter
from medcode.serving.middleware import RequestContextMiddleware
from medcode.serving.model_generation import current_generation
from medcode.serving.orm import utcnow
from medcode.serving.routers import admin, audit, codes, encounters, fhir, health, review, suggest
from medcode.serving.services.codes import configured_code_search, lookup_code
from medcode.serving.services.encounters import PriorityFn, confidence_priority
from medcode.serving.services.review_checks import rule_tabular
from medcode.serving.ui.session import resolve_session_secret
from medcode.settings import Settings, get_settings

logger = logging.getLogger(__name__)

API_DESCRIPTION = """Suggests ICD-10-CM, ICD-10-PCS, HCPCS and CPT codes for clinical encounters, with
confidence and evidence; routes them to auto-accept or a coder review queue. Every endpoint but
`/health` takes an API key: `Authorization: Bearer mck_...` (create one with `medcode keys create`)."""


def create_app(
    settings: Settings | None = None,
    coder: Coder | None = None,
    *,
    loader: Loader | None = None,
    version_probe: VersionProbe | None = None,
    clock: Callable[[], datetime] | None = None,
    priority_fn: PriorityFn | None = None,
    ready_wait_seconds: float = 2.0,
) -> FastAPI:
    """The medcode API. `coder` skips model loading (tests); `loader`/`version_probe` replace the registry's;
    startup waits at most `ready_wait_seconds` for the model before it accepts requests."""
    settings = settings or get_settings()
    database = Database.connect(settings.resolved_database_url)
    # PostgreSQL serves several worker processes: an admin reload reaches them all through the database
    shared = database.engine.dialect.name == "postgresql"
    holder = ModelHolder(
        settings.model_ref,
        loader=loader,
        coder=coder,
        version_probe=version_probe,
        warm=warm_up if loader is None else None,
        generation_probe=partial(current_generation, database),
    )
    poll = (
        coder is None and settings.model_poll_seconds > 0 and (shared or is_pollable_ref(settings.model_ref))
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def loaded(model: Coder) -> None:
            logger.info("serving model %s (%s)", model.version, model.code_set_version)
            if coder is None and loader is None:
                _warm_code_sets()
                threading.Thread(target=_warm_code_search, name="medcode-search-warm-up", daemon=True).start()

        if holder.loaded:
            loaded(holder.coder)
        else:
            loading = holder.load_in_background(then=loaded)
            await asyncio.to_thread(loading.join, ready_wait_seconds)
            if loading.is_alive():
                logger.info("model %r still loading: /health says so until it is ready", holder.ref)
        poller = asyncio.create_task(holder.poll_forever(settings.model_poll_seconds)) if poll else None
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            database.dispose()

    app = FastAPI(
        title="medcode",
        version=_version(),
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        telemetry={"tracing": False, "metrics": False, "logs": False},  # type: ignore[call-arg]
    )
    app.state.settings = settings
    app.state.db = database
    app.state.model = holder
    app.state.reload_reaches_all_workers = poll and shared
    app.state.clock = clock or utcnow
    app.state.priority_fn = priority_fn or confidence_priority
    app.state.session_secret = resolve_session_secret(settings.session_secret, settings.home)
    # in the database on PostgreSQL, so that every server process counts against the same budget
    app.state.auth_failures = failure_limiter(
        database.engine, settings.signin_max_failures, settings.signin_backoff_seconds
    )
    app.state.rate_limiter = rate_limiter(database.engine, settings.rate_limit_per_minute)
    app.state.suggestion_slots = SuggestionSlots(settings.suggest_workers, settings.suggest_timeout_seconds)
    install_error_handlers(app)
    most_text = min(settings.max_encounter_chars, settings.max_documents * settings.max_note_chars)
    body_limit = max(8 * most_text, 1 << 20)  # room for JSON escapes and base64 around the text
    app.add_middleware(RequestContextMiddleware, max_body_bytes=body_limit)
    for module in (health, suggest, encounters, review, codes, audit, fhir, admin):
        app.include_router(module.router)
    _include_ui(app)
    return app


def _warm_code_sets() -> None:
    """Load the code sets that validate coders' codes now, not in the first coder's request."""
    try:
        lookup_code("I10", "ICD-10-CM")
        rule_tabular()  # the finalize checks' view, else built inside the first coder's decision
    except Exception as exc:  # a missing optional code set is reported when used
        logger.warning("code sets not loaded at startup: %s", type(exc).__name__)


def _warm_code_search() -> None:
    """Build (or load from its disk cache) the coders' code search index in the background: a first build
    takes seconds, and the first typeahead should not wait for it."""
    try:
        configured_code_search()
    except Exception as exc:  # search reports its own errors when used
        logger.warning("code search not built at startup: %s", type(exc).__name__)


def _include_ui(app: FastAPI) -> None:
    """The coder UI's pages and its JSON API under /ui."""
    from medcode.serving.ui import router

    app.include_router(router)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medcode")
    except PackageNotFoundError:
        return "0.0.0"
