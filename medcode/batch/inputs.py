"""Encounters in, for `medcode batch`: the project's JSONL, Parquet, or FHIR Bulk Data NDJSON.

Each reader yields `Item`s in a fixed order (the input's order; for FHIR, the order in which an encounter's
first resource appears): an item's `position` decides its shard, so a rerun over the same input cuts the
same shards. An item either holds a checked `Encounter` or the reason it cannot be coded (invalid JSON,
invalid encounter, too long, a repeated `encounter_id`); reasons never quote note text.

A whole input that cannot be read (missing, compressed, not one of the three formats) raises
`InvalidInputError` before any work starts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from medcode.data.errors import InvalidInputError, MedcodeError
from medcode.data.jsonl import parse_encounter_line
from medcode.data.types import Encounter
from medcode.serving.errors import ServiceError
from medcode.serving.services.encounters import EncounterLimits, check_encounter
from medcode.serving.services.fhir import FhirInputError, parse_bundle

Format = Literal["jsonl", "parquet", "fhir"]
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
NDJSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class Item:
    """One encounter of the input, or the reason it cannot be coded."""

    position: int
    """0-based place in the input order (blank lines do not count): item `p` belongs to shard `p // size`."""
    source: str
    """Where it came from, for the errors file: "notes.jsonl:12", "notes.parquet row 3", "Encounter/e1"."""
    encounter: Encounter | None = None
    encounter_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class BatchInput:
    """An input file or folder, its format and the files it covers."""

    path: Path
    format: Format
    files: tuple[Path, ...]

    def fingerprint(self) -> list[dict[str, Any]]:
        """Name, size and modification time of every file: a rerun refuses an input that changed."""
        out = []
        for file in self.files:
            stat = file.stat()
            out.append({"file": str(file.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        return out

    def count(self) -> int:
        """How many items `items` yields (for the progress bar), without parsing encounters."""
        if self.format == "parquet":
            return sum(_parquet_file(f).metadata.num_rows for f in self.files)
        if self.format == "fhir":
            return sum(1 for _ in _fhir_groups(self.files))
        total = 0
        for file in self.files:
            with file.open("rb") as handle:
                total += sum(1 for line in handle if line.strip())
        return total

    def items(self, limits: EncounterLimits) -> Iterator[Item]:
        """Every encounter in order, checked against `limits` like an API request; repeated ids fail."""
        if self.format == "parquet":
            raw = _parquet_items(self.files)
        elif self.format == "fhir":
            raw = _fhir_items(self.files, limits)
        else:
            raw = _jsonl_items(self.files)
        seen: dict[str, str] = {}
        for item in raw:
            if item.encounter is not None:
                item = _checked(item, limits)
            if item.encounter_id is not None and item.error is None:
                first = seen.setdefault(item.encounter_id, item.source)
                if first != item.source:
                    item = Item(
                        item.position,
                        item.source,
                        encounter_id=item.encounter_id,
                        error=f"encounter_id repeats {first}",
                    )
            yield item


def open_input(path: Path) -> BatchInput:
    """The format and files of INPUT (a file, or a folder of files of one format)."""
    if not path.exists():
        raise InvalidInputError(f"no such file or folder: {path}")
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix in (*NDJSON_SUFFIXES, ".parquet")
        )
        if not files:
            raise InvalidInputError(f"{path} holds no .jsonl, .ndjson or .parquet files")
    else:
        files = [path]
    formats = {_format_of(f) for f in files}
    if len(formats) > 1:
        raise InvalidInputError(f"{path} mixes input formats ({', '.join(sorted(formats))}): one at a time")
    return BatchInput(path=path, format=formats.pop(), files=tuple(files))


def _format_of(file: Path) -> Format:
    with file.open("rb") as handle:
        head = handle.read(4)
        if head.startswith(PARQUET_MAGIC) or file.suffix == ".parquet":
            return "parquet"
        if head.startswith(GZIP_MAGIC):
            raise InvalidInputError(f"{file} is compressed (gzip): decompress it first")
        handle.seek(0)
        first = next((line for line in handle if line.strip()), None)
    if first is None:
        return "jsonl"  # an empty file: nothing to do
    try:
        data = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInputError(
            f"{file} is not JSONL, FHIR NDJSON or Parquet: its first line is not a JSON object"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"{file} is not JSONL, FHIR NDJSON or Parquet: its first line is not a JSON object"
        )
    return "fhir" if "resourceType" in data else "jsonl"


def _checked(item: Item, limits: EncounterLimits) -> Item:
    """The item, or its failure when the encounter breaks a limit (too long, empty or invalid text)."""
    assert item.encounter is not None
    try:
        check_encounter(item.encounter, limits)
    except ServiceError as exc:
        return Item(item.position, item.source, encounter_id=item.encounter_id, error=exc.message)
    return item


# -- JSONL -------------------------------------------------------------------------------------------


def _lines(files: tuple[Path, ...]) -> Iterator[tuple[str, bytes]]:
    """(source, raw line) for every non-blank line of the files in turn; source is "FILE:LINENO"."""
    for file in files:
        with file.open("rb") as handle:
            for lineno, raw in enumerate(handle, start=1):
                if raw.strip():
                    yield f"{file.name}:{lineno}", raw


def _jsonl_items(files: tuple[Path, ...]) -> Iterator[Item]:
    for position, (source, raw) in enumerate(_lines(files)):
        yield _jsonl_item(position, source, raw)


def _jsonl_item(position: int, source: str, raw: bytes) -> Item:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Item(position, source, error=f"{source}: not UTF-8 text (byte {exc.start})")
    try:
        encounter = parse_encounter_line(line, source)
    except MedcodeError as exc:
        return Item(position, source, encounter_id=_id_of(line), error=str(exc))
    return Item(position, source, encounter=encounter, encounter_id=encounter.encounter_id)


def _id_of(line: str) -> str | None:
    """The encounter_id of a line that is JSON but not a valid encounter (for the errors file)."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    value = data.get("encounter_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 200 else None


# -- Parquet -----------------------------------------------------------------------------------------


def _parquet_file(file: Path) -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInputError("Parquet input needs pyarrow: pip install 'medcode[batch]'") from None

    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(f"{file} is not a readable Parquet file ({type(exc).__name__})") from None


def _parquet_items(files: tuple[Path, ...]) -> Iterator[Item]:
    """Rows with the encounter's own columns (`encounter_id`, `documents`, `patient`, `setting`, ...), or
    flat rows with one note: `encounter_id`, `text` and optionally `document_id`, `age`, `sex`."""
    position = 0
    for file in files:
        row_number = 0
        for batch in _parquet_file(file).iter_batches(batch_size=512):
            for row in batch.to_pylist():
                row_number += 1
                source = f"{file.name} row {row_number}"
                yield _parquet_item(position, source, _without_nulls(row))
                position += 1


def _parquet_item(position: int, source: str, row: dict[str, Any]) -> Item:
    if "documents" not in row and "text" in row:
        row = _flat_row(row)
    given_id = row.get("encounter_id")
    encounter_id = given_id if isinstance(given_id, str) and given_id else None
    try:
        encounter = Encounter.model_validate(row)
    except ValidationError as exc:
        return Item(position, source, encounter_id=encounter_id, error=f"{source}: {_describe(exc)}")
    return Item(position, source, encounter=encounter, encounter_id=encounter.encounter_id)


def _flat_row(row: dict[str, Any]) -> dict[str, Any]:
    document = {"document_id": row.get("document_id") or "d1", "text": row["text"]}
    if row.get("type"):
        document["type"] = row["type"]
    patient = {key: row[key] for key in ("age", "sex") if key in row}
    rest = {k: v for k, v in row.items() if k not in ("text", "document_id", "type", "age", "sex")}
    return {**rest, "patient": patient, "documents": [document]}


def _without_nulls(value: Any) -> Any:
    """Parquet's nulls become absent fields (the encounter's defaults apply)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _describe(exc: ValidationError) -> str:
    """Where and what, never the offending value (it may be note text)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "encounter"
    more = len(exc.errors()) - 1
    return f"invalid encounter: {where}: {first.get('msg', 'invalid')}" + (
        f" (and {more} more)" if more > 0 else ""
    )


# -- FHIR Bulk Data NDJSON ---------------------------------------------------------------------------


@dataclass
class _Group:
    """The resources of one encounter: its Encounter (if exported) and the DocumentReferences of it."""

    key: str
    encounter: dict[str, Any] | None = None
    documents: list[dict[str, Any]] | None = None
    error: str | None = None


def _fhir_items(files: tuple[Path, ...], limits: EncounterLimits) -> Iterator[Item]:
    """One item per exported Encounter (with the DocumentReferences whose `context.encounter` points at
    it) and per DocumentReference that names no Encounter; each becomes a Bundle that the FHIR endpoint's
    own conversion (`serving.services.fhir.parse_bundle`) turns into an encounter."""
    patients: dict[str, dict[str, Any]] = {}
    groups = list(_fhir_groups(files, patients))
    for position, group in enumerate(groups):
        if group.error is not None:
            yield Item(position, group.key, error=group.error)
            continue
        bundle = _bundle(group, patients)
        try:
            encounter, _context = parse_bundle(json.dumps(bundle).encode(), limits)
        except FhirInputError as exc:
            yield Item(position, group.key, encounter_id=_fhir_id(group.key), error="; ".join(exc.messages))
            continue
        yield Item(position, group.key, encounter=encounter, encounter_id=encounter.encounter_id)


def _fhir_groups(
    files: tuple[Path, ...], patients: dict[str, dict[str, Any]] | None = None
) -> Iterator[_Group]:
    """Groups in the order their first resource appears; a line that is not a resource is a group of its
    own that carries the error. Patients are collected into `patients` ("Patient/ID" -> resource)."""
    patients = {} if patients is None else patients
    groups: dict[str, _Group] = {}
    for source, raw in _lines(files):
        resource = _resource(raw, source)
        if isinstance(resource, str):
            groups[source] = _Group(key=source, error=resource)
            continue
        kind = resource.get("resourceType")
        ident = resource.get("id")
        if kind == "Patient" and isinstance(ident, str):
            patients.setdefault(f"Patient/{ident}", resource)
        elif kind == "Encounter":
            key = f"Encounter/{ident}" if isinstance(ident, str) else source
            group = groups.setdefault(key, _Group(key=key))
            group.encounter = group.encounter or resource
        elif kind == "DocumentReference":
            key = _encounter_of(resource) or (
                f"DocumentReference/{ident}" if isinstance(ident, str) else source
            )
            group = groups.setdefault(key, _Group(key=key))
            group.documents = [*(group.documents or []), resource]
    yield from groups.values()


def _resource(raw: bytes, source: str) -> dict[str, Any] | str:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"{source}: not a JSON resource"
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        return f"{source}: not a FHIR resource (no resourceType)"
    return data


def _encounter_of(document: dict[str, Any]) -> str | None:
    context = document.get("context")
    refs = context.get("encounter") if isinstance(context, dict) else None
    for ref in refs if isinstance(refs, list) else []:
        key = _reference(ref, "Encounter")
        if key:
            return key
    return None


def _reference(ref: Any, kind: str) -> str | None:
    """ "Kind/ID" of a Reference ("Patient/p1", or a full URL ending in it); None for anything else."""
    value = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(value, str):
        return None
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == kind and parts[-1]:
        return f"{kind}/{parts[-1]}"
    return None


def _fhir_id(key: str) -> str | None:
    kind, _, ident = key.partition("/")
    return ident if kind in ("Encounter", "DocumentReference") and ident else None


def _bundle(group: _Group, patients: dict[str, dict[str, Any]]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    subjects = [group.encounter, *(group.documents or [])]
    patient_key = next(
        (key for r in subjects if r is not None and (key := _reference(r.get("subject"), "Patient"))), None
    )
    if patient_key and patient_key in patients:
        entries.append({"fullUrl": patient_key, "resource": patients[patient_key]})
    if group.encounter is not None:
        entries.append({"fullUrl": group.key, "resource": group.encounter})
    for document in group.documents or []:
        ident = document.get("id")
        entry: dict[str, Any] = {"resource": document}
        if isinstance(ident, str):
            entry["fullUrl"] = f"DocumentReference/{ident}"
        entries.append(entry)
    # the id of a group without an Encounter or DocumentReference id comes from its place in the input,
    # so that a rerun gives it the same encounter_id
    ident = _fhir_id(group.key) or re.sub(r"[^A-Za-z0-9.-]", "-", group.key)[-64:]
    return {"resourceType": "Bundle", "id": ident, "type": "collection", "entry": entries}
