"""Resolve a model reference to a loaded Coder.

References:
- "builtin": the knowledge-based model (no training);
- "champion": the registered model's `champion` alias in the MLflow registry (falls back to the built-in
  model, with a warning, when nothing is registered or the registry cannot be read);
- "models:/NAME/VERSION" or "models:/NAME@ALIAS": a registry version;
- a filesystem path to a model pack folder.

`None` means `get_settings().model_ref` (default "champion").
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from medcode.data.errors import ModelNotFoundError
from medcode.model.base import Coder
from medcode.settings import get_settings

log = logging.getLogger(__name__)

CHAMPION = "champion"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")
PACK_ARTIFACT = "pack"
"""Where the model pack sits inside a registered MLflow model's artifacts (`artifacts/pack`)."""


def load_model(ref: str | None = None) -> Coder:
    """Load the model a reference names (see the module docstring)."""
    ref = (ref or get_settings().model_ref or CHAMPION).strip()
    if ref == "builtin":
        from medcode.model.builtin import BuiltinCoder

        return BuiltinCoder()
    if ref == CHAMPION:
        return _load_champion()
    match = _MODELS_URI.match(ref)
    if match:
        return _load_registered(ref)
    path = Path(ref).expanduser()
    if path.exists():
        from medcode.model.pack import load_pack

        return load_pack(path)
    raise ModelNotFoundError(
        f"unknown model reference {ref!r}: expected 'builtin', 'champion', 'models:/NAME/VERSION', "
        "'models:/NAME@ALIAS' or a model pack folder"
    )


def _load_champion() -> Coder:
    name = get_settings().registered_model_name
    if not registry_exists():
        log.warning("no MLflow registry at %s; using the built-in model", get_settings().resolved_mlflow_uri)
        return _builtin()
    ref = f"models:/{name}@{CHAMPION}"
    try:
        resolve_version(ref)
    except ModelNotFoundError as exc:
        log.warning("no champion model registered (%s); using the built-in model", exc)
        return _builtin()
    # A registered champion that cannot be loaded (corrupt or missing pack) is an error, not a reason
    # to serve the built-in model: a running service keeps its current model (serving.holder).
    return _load_registered(ref)


def _builtin() -> Coder:
    from medcode.model.builtin import BuiltinCoder

    return BuiltinCoder()


def registry_exists() -> bool:
    """False when the tracking store is a local SQLite file that does not exist yet (nothing to read)."""
    uri = get_settings().resolved_mlflow_uri
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).is_file()
    return True


def mlflow_client() -> Any:
    """An MLflow client on the configured tracking and registry store (telemetry off)."""
    configure_mlflow()
    from mlflow.tracking import MlflowClient

    uri = get_settings().resolved_mlflow_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def configure_mlflow() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    settings = get_settings()
    if settings.resolved_mlflow_uri.startswith("sqlite:///"):
        settings.home.mkdir(parents=True, exist_ok=True)
    import mlflow

    mlflow.set_tracking_uri(settings.resolved_mlflow_uri)
    mlflow.set_registry_uri(settings.resolved_mlflow_uri)


def resolve_version(ref: str) -> tuple[str, str]:
    """(name, version number) of a registry reference "models:/NAME/VERSION" or "models:/NAME@ALIAS"."""
    match = _MODELS_URI.match(ref)
    if not match:
        raise ModelNotFoundError(f"not a registry reference: {ref!r}")
    name = match.group("name")
    client = mlflow_client()
    from mlflow.exceptions import MlflowException

    try:
        if match.group("alias"):
            mv = client.get_model_version_by_alias(name, match.group("alias"))
        else:
            mv = client.get_model_version(name, match.group("version"))
    except MlflowException as exc:
        raise ModelNotFoundError(f"{ref} is not in the model registry") from exc
    return name, str(mv.version)


def champion_version() -> str | None:
    """The registry version the champion alias points at, or None (cheap enough to poll)."""
    if not registry_exists():
        return None
    try:
        return resolve_version(f"models:/{get_settings().registered_model_name}@{CHAMPION}")[1]
    except ModelNotFoundError:
        return None


def download_pack(ref: str) -> Path:
    """Fetch a registered model's pack into the local cache (once per version) and return its folder."""
    name, version = resolve_version(ref)
    target = get_settings().cache_dir / "models" / name / version
    found = _find_pack(target)
    if found is not None:
        return found
    client = mlflow_client()
    mv = client.get_model_version(name, version)
    import mlflow

    target.mkdir(parents=True, exist_ok=True)
    mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(target))
    found = _find_pack(target)
    if found is None:
        raise ModelNotFoundError(f"{ref} (version {version}) holds no medcode model pack")
    return found


def _find_pack(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    for manifest in sorted(folder.rglob("manifest.json"), key=lambda p: len(p.parts)):
        return manifest.parent
    return None


def _load_registered(ref: str) -> Coder:
    from medcode.model.pack import load_pack

    return load_pack(download_pack(ref))
