"""Model packs: a folder with `manifest.json` and the weights a preset needs.

A pack is what `medcode train` produces, what MLflow stores as an artifact and what `load_model` reads.

    pack/
      manifest.json        preset, version, code-set version, thresholds, calibration, training-data
                           fingerprint, metrics, resolved config, and a sha256 of every weight file
      arrays.npz           named numpy arrays (optional)
      objects/NAME.joblib  fitted scikit-learn objects (optional)
      ...                  anything else a preset writes itself (e.g. `*.safetensors`)

Presets own their weights; this module only writes and reads the container. `load_pack(path)` reads the
manifest and hands the folder to the preset's loader in the preset registry (`model.presets`), which takes
`(path: Path, manifest: PackManifest)` and returns a `Coder`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medcode.data.errors import ModelNotFoundError
from medcode.model import presets
from medcode.model.base import Coder
from medcode.model.runtime import Runtime

if TYPE_CHECKING:
    from medcode.data.index_walk import IndexTree
    from medcode.model.catalog import CodeCatalog, Knowledge

log = logging.getLogger(__name__)

PACK_FORMAT = "medcode-pack"
PACK_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
OBJECTS_DIR = "objects"


@dataclass
class PackManifest:
    """Everything about a model pack except its weights; `manifest.json` on disk."""

    preset: str
    version: str
    code_set_version: str
    thresholds: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    """Dataset name, splits, document counts and `fingerprint` (sha256 of the training encounters)."""
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    """The resolved training configuration (every option with its effective value)."""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    files: dict[str, str] = field(default_factory=dict)
    """Relative path -> sha256 of every other file of the pack (filled in by `save_pack`)."""
    format: str = PACK_FORMAT
    format_version: int = PACK_FORMAT_VERSION

    @classmethod
    def of(
        cls,
        coder: Coder,
        preset: str,
        *,
        thresholds: dict[str, Any],
        calibration: dict[str, Any],
        config: dict[str, Any],
    ) -> PackManifest:
        """The manifest of `coder`: its version, code-set version, training data and metrics as the `Coder`
        protocol gives them, and what its preset stores of its own."""
        return cls(
            preset=preset,
            version=coder.version,
            code_set_version=coder.code_set_version,
            thresholds=thresholds,
            calibration=calibration,
            training_data=dict(coder.training_data),
            metrics=dict(coder.metrics),
            config=config,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PackManifest:
        if data.get("format") != PACK_FORMAT:
            raise ModelNotFoundError(f"not a medcode model pack (format={data.get('format')!r})")
        if int(data.get("format_version", 0)) > PACK_FORMAT_VERSION:
            raise ModelNotFoundError(
                f"model pack format {data.get('format_version')} is newer than this medcode "
                f"understands ({PACK_FORMAT_VERSION}); upgrade medcode"
            )
        known = {f for f in cls.__dataclass_fields__}
        missing = {"preset", "version", "code_set_version"} - set(data)
        if missing:
            raise ModelNotFoundError(f"model pack manifest lacks {sorted(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known})


def save_pack(
    path: Path,
    manifest: PackManifest,
    arrays: Mapping[str, np.ndarray] | None = None,
    objects: Mapping[str, Any] | None = None,
    write_extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write a pack folder (created if missing; existing pack files are replaced) and return it.

    `write_extra(folder)` lets a preset write files of its own (e.g. safetensors) before the checksums
    are taken.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if arrays:
        np.savez(path / ARRAYS, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    if objects:
        import joblib

        (path / OBJECTS_DIR).mkdir(exist_ok=True)
        for name, obj in objects.items():
            _check_name(name)
            joblib.dump(obj, path / OBJECTS_DIR / f"{name}.joblib", compress=3)
    if write_extra is not None:
        write_extra(path)
    manifest.files = {
        str(p.relative_to(path)): _sha256(p)
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    (path / MANIFEST).write_text(
        json.dumps(manifest.to_json(), indent=2, sort_keys=True, default=_json_default)
    )
    log.info("saved model pack %s (preset %s, version %s)", path, manifest.preset, manifest.version)
    return path


def read_manifest(path: Path) -> PackManifest:
    """Read and check a pack's manifest; raises ModelNotFoundError when the folder is not a pack."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise ModelNotFoundError(f"no model pack at {path} (missing {MANIFEST})")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ModelNotFoundError(f"model pack manifest {file} is not valid JSON: {exc}") from exc
    return PackManifest.from_json(data)


def verify_pack(path: Path, manifest: PackManifest | None = None) -> None:
    """Check every file listed in the manifest exists with its recorded checksum."""
    manifest = manifest or read_manifest(path)
    for rel, digest in manifest.files.items():
        file = Path(path) / rel
        if not file.is_file():
            raise ModelNotFoundError(f"model pack {path} is incomplete: {rel} is missing")
        if _sha256(file) != digest:
            raise ModelNotFoundError(f"model pack {path} is corrupt: {rel} does not match its checksum")


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    file = Path(path) / ARRAYS
    if not file.is_file():
        return {}
    with np.load(file, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_object(path: Path, name: str) -> Any:
    import joblib

    _check_name(name)
    file = Path(path) / OBJECTS_DIR / f"{name}.joblib"
    if not file.is_file():
        raise ModelNotFoundError(f"model pack {path} lacks object {name!r}")
    return joblib.load(file)


KNOWLEDGE_FILE = "knowledge.json.gz"
"""The code knowledge (index, ontology, ICD-10-PCS names) a pack was built with: `model.catalog.Knowledge`."""
INDEX_TREE_FILE = "index_tree.json.gz"
"""The Alphabetic Index tree the index walk reads (data.index_walk.IndexTree.to_json)."""
CATALOG_FILE = "catalog.npz"
"""The code catalog built from the pack's knowledge, as columns (`model.catalog.CodeCatalog.to_columns`),
so that loading the pack reads it instead of building it again (seconds of CPU)."""


def save_knowledge(knowledge: Knowledge, folder: Path) -> None:
    """Write the code knowledge into a pack folder (gzip without a timestamp: same content, same bytes);
    the index tree, when there is one, goes to its own file (INDEX_TREE_FILE)."""
    _write_json_gz(Path(folder) / KNOWLEDGE_FILE, knowledge.to_json())
    if knowledge.index_tree is not None:
        _write_json_gz(Path(folder) / INDEX_TREE_FILE, knowledge.index_tree.to_json())


def _write_json_gz(file: Path, payload: Any) -> None:
    data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    with file.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(data)


def load_knowledge(folder: Path, sha256: str | None = None) -> Knowledge:
    """The code knowledge a pack folder carries (ModelNotFoundError when absent or unreadable, or when its
    file's digest is not `sha256`: a model loaded earlier reads it late, and the folder has changed since)."""
    from medcode.model.catalog import Knowledge

    file = Path(folder) / KNOWLEDGE_FILE
    if not file.is_file():
        raise ModelNotFoundError(f"model pack {folder} carries no code knowledge ({KNOWLEDGE_FILE})")
    try:
        data = file.read_bytes()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise ModelNotFoundError(
                f"model pack {folder} changed since it was loaded: its {KNOWLEDGE_FILE} is another one"
            )
        knowledge = Knowledge.from_json(json.loads(gzip.decompress(data)))
    except (OSError, EOFError, ValueError, TypeError) as exc:
        raise ModelNotFoundError(f"model pack {folder} has unreadable code knowledge: {exc}") from exc
    knowledge.index_tree = load_index_tree(folder)
    return knowledge


def load_index_tree(folder: Path) -> IndexTree | None:
    """The Alphabetic Index tree a pack folder carries; None in packs saved before the index walk (no
    walk, same answers)."""
    tree_file = Path(folder) / INDEX_TREE_FILE
    if not tree_file.is_file():
        return None
    from medcode.data.index_walk import IndexTree

    try:
        with gzip.open(tree_file, "rb") as fh:
            return IndexTree.loads(fh.read())
    except (OSError, EOFError, ValueError, TypeError) as exc:
        raise ModelNotFoundError(f"model pack {folder} has unreadable code knowledge: {exc}") from exc


def save_catalog(catalog: CodeCatalog, folder: Path) -> None:
    """Write the catalog's columns into a pack folder, after its knowledge file (`save_knowledge`): they are
    tied to that file's bytes and to the installed ICD-10-CM tabular, and read only while both are the
    same (`load_catalog_columns`). A catalog whose names cannot be stored as columns is left out (the pack
    then builds it at load, as packs saved before the columns did)."""
    try:
        columns = catalog.to_columns()
    except ValueError as exc:
        log.warning("model pack %s: code catalog not stored as columns (%s)", folder, exc)
        return
    columns["knowledge_sha256"] = np.asarray(_sha256(Path(folder) / KNOWLEDGE_FILE))
    columns["tabular"] = np.asarray(_tabular_key())
    np.savez_compressed(Path(folder) / CATALOG_FILE, **columns)  # type: ignore[arg-type]


def knowledge_digest(folder: Path) -> str:
    """The sha256 of a pack folder's knowledge file (for `load_knowledge(folder, sha256=...)`)."""
    return _sha256(Path(folder) / KNOWLEDGE_FILE)


def load_catalog_columns(folder: Path) -> CodeCatalog | None:
    """The code catalog stored in a pack folder, or None (with the reason in the log) when the pack has
    none (saved before the columns were stored), or its columns were built from another knowledge file or
    another ICD-10-CM tabular than this installation's, or cannot be read: the caller builds the catalog
    from the knowledge then, as before."""
    from medcode.model.catalog import CodeCatalog

    file = Path(folder) / CATALOG_FILE
    if not file.is_file():
        log.debug("model pack %s stores no code catalog; building it from the knowledge", folder)
        return None
    try:
        with np.load(file, allow_pickle=False) as data:
            columns = {k: data[k] for k in data.files}
        knowledge = Path(folder) / KNOWLEDGE_FILE
        if not knowledge.is_file() or str(columns.pop("knowledge_sha256")) != _sha256(knowledge):
            reason = f"built from another {KNOWLEDGE_FILE}"
        elif str(columns.pop("tabular")) != _tabular_key():
            reason = "built from another ICD-10-CM tabular than the installed one"
        else:
            return CodeCatalog.from_columns(columns)
    except (OSError, EOFError, KeyError, ValueError, TypeError) as exc:
        reason = f"unreadable: {exc}"
    log.warning(
        "model pack %s: stored code catalog not used (%s); building it from the knowledge", folder, reason
    )
    return None


def _tabular_key() -> str:
    """What identifies the installed ICD-10-CM tabular the catalog's ICD-10-CM part is built from, without
    reading it: release, parse format and the XML file's size."""
    from medcode.data.icd10cm import FORMAT_VERSION, VERSION, tabular_path

    return f"{VERSION}|{FORMAT_VERSION}|{tabular_path().stat().st_size}"


def load_pack(path: Path, runtime: Runtime | None = None) -> Coder:
    """Load a model pack folder as a Coder, dispatching on the manifest's preset. Every file is checked
    against its checksum first (a changed lexicon, vector or weight file is refused); everything that
    decides the output comes from the folder, `runtime` only says how this machine runs it."""
    path = Path(path)
    manifest = read_manifest(path)
    verify_pack(path, manifest)
    coder = presets.get(manifest.preset).load(path, manifest, runtime or Runtime())
    log.info("loaded model pack %s (preset %s, version %s)", path, manifest.preset, manifest.version)
    return coder


def fingerprint_texts(items: list[str]) -> str:
    """A stable sha256 over an ordered list of strings (used for training-data fingerprints)."""
    digest = hashlib.sha256()
    for item in items:
        data = item.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"invalid pack object name {name!r}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable in a pack manifest: {type(value).__name__}")
