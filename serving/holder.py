"""The loaded model, held so that a newly promoted champion can replace it without a restart.

`ModelHolder.coder` is what requests use (loaded once, at startup or on first use). `swap()` replaces it
atomically; `reload()` loads the configured reference again and keeps the old model when loading fails;
`poll_once()` asks a cheap *version probe* (e.g. which registry version the `champion` alias points at)
and reloads only when the answer changes. `poll_forever()` runs that every `interval` seconds in the
app's lifespan. In-flight requests keep the model object they started with.

A *generation probe* (serving.model_generation: a counter in the database that an admin reload bumps)
makes an admin reload reach every server process: `reload()` records the generation it loaded under, and
`poll_once()` reloads once when the shared generation has moved, whatever the reference (a pack folder too).

`load_in_background()` (the app's startup) loads in a thread: until it ends, `coder` raises `ModelNotReady`
(503 with Retry-After) instead of making requests wait, and `state` says "loading"; a failed load leaves
`state` "failed" with the reason in `load_error` until a reload or a new champion succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from medcode.model.base import Coder
from medcode.serving.errors import ServiceUnavailable
from medcode.serving.orm import utcnow

logger = logging.getLogger(__name__)

Loader = Callable[[str], Coder]
WarmUp = Callable[[Coder], None]
VersionProbe = Callable[[str], str | None]
"""ref -> an identifier that changes when the model behind `ref` changes (None: unknown)."""
GenerationProbe = Callable[[], int]
"""The reload generation shared by every server process (serving.model_generation)."""
LOADING_RETRY_SECONDS = 5


class ModelNotReady(ServiceUnavailable):
    """The model is still loading (or failed to load): 503 with Retry-After, never a wait."""

    code = "model_loading"


@dataclass(frozen=True)
class ReloadOutcome:
    reloaded: bool
    version: str
    """The version now serving."""
    previous_version: str | None
    error: str | None = None
    at: datetime | None = None


def default_loader(ref: str) -> Coder:
    from medcode.settings import get_settings

    return get_settings().registry.load_model(ref)


def default_version_probe(ref: str) -> str | None:
    """Which registry version `ref` points at ("none" while nothing is registered); None: cannot tell.

    Cheap (a registry query, no model load), so the poller can ask it every few seconds."""
    from medcode.data.errors import ModelNotFoundError
    from medcode.settings import get_settings

    registry = get_settings().registry
    resolve = registry.resolve_version
    if ref == "champion":
        if not registry.exists():
            return "none"
        ref = f"models:/{registry.model_name}@champion"
    elif not ref.startswith("models:/"):
        return None
    try:
        value = resolve(ref)
    except ModelNotFoundError:
        return "none"
    return "/".join(value) if isinstance(value, tuple) else str(value)


def warm_up(coder: Coder) -> None:
    """One tiny suggestion, so that lazily loaded resources are ready before real requests arrive."""
    from medcode.data.types import Document, Encounter

    text = "Assessment: essential hypertension. Denies chest pain."
    coder.suggest(Encounter(encounter_id="warm-up", documents=[Document(document_id="d1", text=text)]))


def is_pollable_ref(ref: str) -> bool:
    """References whose target can move: the champion alias, and registry aliases (models:/NAME@alias)."""
    return ref == "champion" or (ref.startswith("models:/") and "@" in ref)


class ModelHolder:
    def __init__(
        self,
        ref: str,
        *,
        loader: Loader | None = None,
        coder: Coder | None = None,
        version_probe: VersionProbe | None = None,
        warm: WarmUp | None = None,
        generation_probe: GenerationProbe | None = None,
    ) -> None:
        self.ref = ref
        self._generation_probe = generation_probe
        self.generation: int | None = None
        """The shared reload generation the serving model was loaded under (None: no probe, or unknown)."""
        self._warm = warm
        self._loader = loader or default_loader
        self._probe = version_probe or default_version_probe
        self._coder = coder
        self._lock = threading.RLock()
        self._reload_lock = threading.Lock()
        self._last_probe: str | None = None
        self._loading = False
        self.load_error: str | None = None
        """Why the last background load failed (None after a success)."""
        self.loaded_at: datetime | None = utcnow() if coder is not None else None

    @property
    def loaded(self) -> bool:
        return self._coder is not None

    @property
    def state(self) -> str:
        """ready, loading (a background load is running), failed (it failed), or unloaded."""
        if self._coder is not None:
            return "ready"
        if self._loading:
            return "loading"
        return "failed" if self.load_error is not None else "unloaded"

    @property
    def coder(self) -> Coder:
        """The model; loaded now on first use, unless a background load runs or failed (ModelNotReady)."""
        coder = self._coder
        if coder is not None:
            return coder
        if self._loading:
            raise ModelNotReady(
                "the model is still loading; retry shortly",
                headers={"Retry-After": str(LOADING_RETRY_SECONDS)},
            )
        if self.load_error is not None:
            raise ModelNotReady(
                "the model failed to load; an admin reload or a new champion retries",
                code="model_unavailable",
                headers={"Retry-After": "60"},
            )
        return self.ensure_loaded()

    def ensure_loaded(self) -> Coder:
        """Load now (waiting for a load in progress) and return the model."""
        with self._lock:
            if self._coder is None:
                self._install(self._load())
            assert self._coder is not None
            return self._coder

    def load_in_background(self, then: Callable[[Coder], None] | None = None) -> threading.Thread:
        """Load in a daemon thread, then call `then(coder)`; meanwhile requests get ModelNotReady."""
        self._loading = True

        def run() -> None:
            try:
                coder = self.ensure_loaded()
            except Exception as exc:
                self.load_error = f"{type(exc).__name__}: {exc}"[:500]
                logger.error("model %r failed to load (%s)", self.ref, type(exc).__name__)
                return
            finally:
                self._loading = False
            self.load_error = None
            if then is not None:
                then(coder)

        thread = threading.Thread(target=run, name="medcode-model-load", daemon=True)
        thread.start()
        return thread

    def swap(self, new_coder: Coder) -> Coder | None:
        """Serve `new_coder` from now on; returns the previous model."""
        with self._lock:
            old = self._coder
            self._install(new_coder)
        logger.info("model swapped: %s -> %s", old.version if old is not None else None, new_coder.version)
        return old

    def reload(self) -> ReloadOutcome:
        """Load the configured reference again; on failure keep serving the current model."""
        outcome = self._reload(unless_generation=None)
        assert outcome is not None
        return outcome

    def _reload(self, *, unless_generation: int | None) -> ReloadOutcome | None:
        """`reload()`; skipped (None) when the model is already loaded under `unless_generation` (this
        process's admin reload ran while its poller waited for the lock)."""
        with self._reload_lock:
            if unless_generation is not None and self.generation == unless_generation:
                return None
            previous = self._coder.version if self._coder is not None else None
            probe = self._safe_probe()
            generation = self._safe_generation()
            try:
                new = self._load()
            except Exception as exc:
                if generation is not None:
                    self.generation = generation  # do not retry a broken model on every poll
                if self._coder is None:
                    self.load_error = f"{type(exc).__name__}: {exc}"[:500]
                    raise
                logger.error(
                    "model reload of %r failed (%s); keeping %s", self.ref, type(exc).__name__, previous
                )
                error = f"{type(exc).__name__}: {exc}"[:500]
                return ReloadOutcome(False, self._coder.version, previous, error, utcnow())
            self.swap(new)
            if generation is not None:
                self.generation = generation
            self.load_error = None
            if probe is not None:
                self._last_probe = probe
            return ReloadOutcome(True, new.version, previous, None, utcnow())

    def poll_once(self) -> ReloadOutcome | None:
        """Reload when the probe's answer differs from the one seen at the last load; else None (also while
        the first load runs)."""
        if self._loading:
            return None
        generation = self._safe_generation()
        if generation is not None and self.generation is None:
            self.generation = generation  # unknown at load time (the database was away): from now on
        elif generation is not None and generation != self.generation:
            logger.info(
                "model reload requested (generation %s -> %s); reloading", self.generation, generation
            )
            return self._reload(unless_generation=generation)
        probe = self._safe_probe()
        if probe is None or probe == self._last_probe:
            return None
        logger.info("model reference %r moved (%s -> %s); reloading", self.ref, self._last_probe, probe)
        outcome = self.reload()
        if not outcome.reloaded:
            self._last_probe = probe  # do not retry a broken model on every tick
        return outcome

    async def poll_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.poll_once)
            except Exception as exc:  # a failing probe must not stop the poller
                logger.warning("model poll failed: %s", type(exc).__name__)

    def _load(self) -> Coder:
        logger.info("loading model %r", self.ref)
        if self._last_probe is None:
            self._last_probe = self._safe_probe()
        if self.generation is None:
            self.generation = self._safe_generation()
        coder = self._loader(self.ref)
        if self._warm is not None:
            self._warm(coder)  # a model that cannot answer is a failed load: the old one keeps serving
        return coder

    def _install(self, coder: Coder) -> None:
        self._coder = coder
        self.loaded_at = utcnow()

    def _safe_generation(self) -> int | None:
        if self._generation_probe is None:
            return None
        try:
            return self._generation_probe()
        except Exception as exc:
            logger.warning("model generation probe failed: %s", type(exc).__name__)
            return None

    def _safe_probe(self) -> str | None:
        try:
            return self._probe(self.ref)
        except Exception as exc:
            logger.warning("model version probe failed: %s", type(exc).__name__)
            return None
