"""Resolve a model reference to a loaded Coder.

References:
- "builtin": the knowledge-based model (no training);
- "champion": the registered model's `champion` alias in the MLflow registry (falls back to the built-in
  model, with a warning, when nothing is registered or the registry cannot be read);
- "models:/NAME/VERSION" or "models:/NAME@ALIAS": a registry version;
- a filesystem path to a model pack folder.

A `Registry` names the MLflow store, the registered model and the local folder packs are downloaded to; the
edges build it from the settings (`Settings.registry`) and pass it down.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.data.errors import ModelNotFoundError
from medcode.model.base import Coder
from medcode.model.runtime import Runtime

if TYPE_CHECKING:
    from medcode.model.rules.pipeline import RulesConfig

log = logging.getLogger(__name__)

CHAMPION = "champion"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")
PACK_ARTIFACT = "pack"
"""Where the model pack sits inside a registered MLflow model's artifacts (`artifacts/pack`)."""


@dataclass(frozen=True)
class Registry:
    """Where registered models live and where their packs are unpacked locally."""

    tracking_uri: str
    cache_dir: Path
    model_name: str = "medcode"
    data_dir: Path | None = None
    """The datasets folder the built-in model reads (it is the fallback when nothing is registered)."""
    builtin_rules: RulesConfig | None = None
    """The coding-rules config of the built-in model, which has no pack to carry one (None: rules on)."""
    runtime: Runtime = field(default_factory=Runtime)
    """How this machine runs a loaded pack (device, encoder precision, threads): never which codes."""

    def load_model(self, ref: str = CHAMPION) -> Coder:
        """Load the model a reference names (see the module docstring)."""
        ref = (ref or CHAMPION).strip()
        if ref == "builtin":
            return self._builtin()
        if ref == CHAMPION:
            return self._load_champion()
        if _MODELS_URI.match(ref):
            return self._load_registered(ref)
        path = Path(ref).expanduser()
        if path.exists():
            from medcode.model.pack import load_pack

            return load_pack(path, self.runtime)
        raise ModelNotFoundError(
            f"unknown model reference {ref!r}: expected 'builtin', 'champion', 'models:/NAME/VERSION', "
            "'models:/NAME@ALIAS' or a model pack folder"
        )

    def _load_champion(self) -> Coder:
        if not self.exists():
            log.warning("no MLflow registry at %s; using the built-in model", self.tracking_uri)
            return self._builtin()
        ref = f"models:/{self.model_name}@{CHAMPION}"
        try:
            self.resolve_version(ref)
        except ModelNotFoundError as exc:
            log.warning("no champion model registered (%s); using the built-in model", exc)
            return self._builtin()
        # A registered champion that cannot be loaded (corrupt or missing pack) is an error, not a reason
        # to serve the built-in model: a running service keeps its current model (serving.holder).
        return self._load_registered(ref)

    def _builtin(self) -> Coder:
        from medcode.model.builtin import BuiltinCoder

        return BuiltinCoder(data_dir=self.data_dir, cache_dir=self.cache_dir, rules=self.builtin_rules)

    def exists(self) -> bool:
        """False when the tracking store is a local SQLite file that does not exist yet (nothing to read)."""
        if self.tracking_uri.startswith("sqlite:///"):
            return Path(self.tracking_uri.removeprefix("sqlite:///")).is_file()
        return True

    def client(self) -> Any:
        """An MLflow client on this tracking and registry store (telemetry off)."""
        self.configure_mlflow()
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def configure_mlflow(self) -> None:
        """Point the mlflow module's tracking and registry at this store."""
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def resolve_version(self, ref: str) -> tuple[str, str]:
        """(name, version number) of a registry reference "models:/NAME/VERSION" or "models:/NAME@ALIAS"."""
        match = _MODELS_URI.match(ref)
        if not match:
            raise ModelNotFoundError(f"not a registry reference: {ref!r}")
        name = match.group("name")
        client = self.client()
        from mlflow.exceptions import MlflowException

        try:
            if match.group("alias"):
                mv = client.get_model_version_by_alias(name, match.group("alias"))
            else:
                mv = client.get_model_version(name, match.group("version"))
        except MlflowException as exc:
            raise ModelNotFoundError(f"{ref} is not in the model registry") from exc
        return name, str(mv.version)

    def champion_version(self) -> str | None:
        """The registry version the champion alias points at, or None (cheap enough to poll)."""
        if not self.exists():
            return None
        try:
            return self.resolve_version(f"models:/{self.model_name}@{CHAMPION}")[1]
        except ModelNotFoundError:
            return None

    def download_pack(self, ref: str) -> Path:
        """Fetch a registered model's pack into the local cache (once per version) and return its folder."""
        name, version = self.resolve_version(ref)
        target = self.cache_dir / "models" / name / version
        found = _find_pack(target)
        if found is not None:
            return found
        client = self.client()
        mv = client.get_model_version(name, version)
        import mlflow

        # Into a private folder first, then renamed into place: the workers of one server download the same
        # version at the same moment, and none may load another's half-copied pack.
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        try:
            mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(partial))
            try:
                partial.rename(target)
            except OSError:  # another process finished first (or an empty folder was left): keep its copy
                if _find_pack(target) is None:
                    shutil.rmtree(target, ignore_errors=True)
                    partial.rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        found = _find_pack(target)
        if found is None:
            raise ModelNotFoundError(f"{ref} (version {version}) holds no medcode model pack")
        return found

    def _load_registered(self, ref: str) -> Coder:
        from medcode.model.pack import load_pack

        return load_pack(self.download_pack(ref), self.runtime)


def _find_pack(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    for manifest in sorted(folder.rglob("manifest.json"), key=lambda p: len(p.parts)):
        return manifest.parent
    return None
