"""FHIR R4 in and out, built and validated with `fhir.resources.R4B`.

In: a Bundle with a Patient, an optional Encounter and DocumentReferences whose text/plain attachments
(base64) are the notes. Out: a `collection` Bundle with a Condition per suggested diagnosis code, a
Procedure per suggested procedure code, and a draft Claim with the diagnoses and procedures sequenced in
the order of the result. Only `Result.codes` are reported, never candidates, and those never rest on a
negated, family or hypothetical mention. Conditions are `confirmed` when the result was auto-accepted,
else `provisional` (a coder has not confirmed them). Malformed input raises `FhirInputError`, which the
router answers with an OperationOutcome.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from medcode.data.types import Document, Encounter, Patient, Result, task_of_system
from medcode.serving.errors import ServiceError
from medcode.serving.services.encounters import EncounterLimits, check_encounter

SYSTEM_URIS = {
    "ICD-10-CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD-10-PCS": "http://www.cms.gov/Medicare/Coding/ICD10",
    "HCPCS": "urn:oid:2.16.840.1.113883.6.285",
    "CPT": "http://www.ama-assn.org/go/cpt",
}
CONFIDENCE_EXTENSION = "https://medcode.dev/fhir/StructureDefinition/code-confidence"
EVIDENCE_EXTENSION = "https://medcode.dev/fhir/StructureDefinition/evidence-span"
MODEL_EXTENSION = "https://medcode.dev/fhir/StructureDefinition/model-version"
ENCOUNTER_CLASS_TO_SETTING = {
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "AMB": "outpatient",
    "HH": "outpatient",
    "VR": "outpatient",
    "EMER": "emergency",
    "OBSENC": "observation",
}
MAX_OTHER_ENTRIES = 50
"""Entries of a Bundle besides its DocumentReferences (Patient, Encounter, ...)."""
GENDER_TO_SEX = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}


class FhirInputError(Exception):
    def __init__(self, status: int, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = messages


@dataclass
class FhirContext:
    """References the answer points back at."""

    encounter_id: str
    patient_ref: str
    encounter_ref: str | None
    setting: str = "other"
    document_refs: dict[str, str] = field(default_factory=dict)


def parse_bundle(body: bytes, limits: EncounterLimits) -> tuple[Encounter, FhirContext]:
    """The encounter a Bundle describes; FhirInputError (4xx) for anything this service cannot take."""
    from fhir.resources.R4B.bundle import Bundle

    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FhirInputError(
            400, [f"the body is not JSON: {exc.msg if hasattr(exc, 'msg') else 'bad encoding'}"]
        ) from None
    except RecursionError:
        raise FhirInputError(422, ["the JSON is nested too deeply"]) from None
    except ValueError:  # e.g. an integer of more digits than Python converts
        raise FhirInputError(422, ["the JSON holds a number this service does not read"]) from None
    _check_shape(data, limits.max_documents)
    try:
        bundle = Bundle.model_validate(data)
    except Exception as exc:  # pydantic errors, and the library's KeyError/ValueError on odd resources
        raise FhirInputError(422, _validation_messages(exc)) from None

    patient: Any = None
    encounter: Any = None
    patient_ref = encounter_ref = None
    documents: list[Document] = []
    document_refs: dict[str, str] = {}
    given_ids = _given_document_ids(bundle)
    used_ids: set[str] = set()
    seen_resources: set[str | None] = set()
    for index, entry in enumerate(bundle.entry or []):
        resource: Any = entry.resource
        if resource is None:
            continue
        kind = resource.get_resource_type()
        ref = entry.fullUrl or (f"{kind}/{resource.id}" if resource.id else None)
        if kind == "Patient" and patient is None:
            patient, patient_ref = resource, ref
        elif kind == "Encounter" and encounter is None:
            encounter, encounter_ref = resource, ref
        elif kind == "DocumentReference":
            if resource.id and resource.id in seen_resources:
                raise FhirInputError(
                    422, [f"Bundle.entry[{index}]: two DocumentReferences have the id {resource.id!r}"]
                )
            seen_resources.add(resource.id)
            for content_index, content in enumerate(resource.content or []):
                text = _attachment_text(content.attachment, index)
                if text is None or not text.strip():
                    continue
                doc_id = resource.id or f"doc{index}"
                if content_index or doc_id in used_ids or (not resource.id and doc_id in given_ids):
                    doc_id = _free_id(doc_id, content_index, used_ids | given_ids)
                used_ids.add(doc_id)
                if len(text) > limits.max_note_chars:
                    raise FhirInputError(
                        413,
                        [
                            f"document {doc_id!r} has {len(text)} characters; the limit is"
                            f" {limits.max_note_chars} (MEDCODE_MAX_NOTE_CHARS)"
                        ],
                    )
                if len(documents) >= limits.max_documents:
                    raise FhirInputError(
                        413,
                        [
                            f"the Bundle has more than {limits.max_documents} notes; the limit is"
                            f" {limits.max_documents} (MEDCODE_MAX_DOCUMENTS)"
                        ],
                    )
                documents.append(Document(document_id=doc_id, type=_doc_type(resource), text=text))
                if ref:
                    document_refs[doc_id] = ref
    problems = []
    if patient is None:
        problems.append("the Bundle needs a Patient resource")
    if not documents:
        problems.append("the Bundle needs a DocumentReference with a non-empty base64 text/plain attachment")
    if problems:
        raise FhirInputError(422, problems)
    assert patient is not None

    when = _encounter_start(encounter)
    encounter_id = (
        (encounter.id if encounter is not None and encounter.id else None) or bundle.id or uuid.uuid4().hex
    )
    try:
        ours = Encounter(
            encounter_id=encounter_id,
            patient=Patient(age=_age(patient.birthDate, when), sex=GENDER_TO_SEX.get(patient.gender or "")),  # type: ignore[arg-type]
            setting=_setting(encounter),  # type: ignore[arg-type]
            date=when.isoformat() if when else None,
            documents=documents,
        )
        check_encounter(ours, limits)
    except ValidationError as exc:
        raise FhirInputError(422, _validation_messages(exc)) from None
    except ServiceError as exc:
        raise FhirInputError(exc.status_code, [exc.message]) from None
    context = FhirContext(
        encounter_id=encounter_id,
        patient_ref=patient_ref or f"Patient/{patient.id or 'unknown'}",
        encounter_ref=encounter_ref,
        setting=ours.setting,
        document_refs=document_refs,
    )
    return ours, context


def _check_shape(data: Any, max_documents: int) -> None:
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise FhirInputError(422, ["expected a FHIR Bundle (resourceType 'Bundle')"])
    entries = data.get("entry", [])
    if not isinstance(entries, list):
        raise FhirInputError(422, ["Bundle.entry must be a list"])
    if len(entries) > max_documents + MAX_OTHER_ENTRIES:
        raise FhirInputError(
            413,
            [
                f"the Bundle has {len(entries)} entries; the limit is {max_documents + MAX_OTHER_ENTRIES}"
                f" ({max_documents} notes, MEDCODE_MAX_DOCUMENTS, and {MAX_OTHER_ENTRIES} other resources)"
            ],
        )
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise FhirInputError(422, [f"Bundle.entry[{index}] needs a resource with a resourceType"])


def _given_document_ids(bundle: Any) -> set[str]:
    return {
        str(entry.resource.id)
        for entry in bundle.entry or []
        if entry.resource is not None
        and entry.resource.get_resource_type() == "DocumentReference"
        and entry.resource.id
    }


def _free_id(base: str, content_index: int, taken: set[str]) -> str:
    """A document id made from `base` that no other document of the Bundle has (ids are unique)."""
    suffix = content_index or 1
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


def _validation_messages(exc: Exception) -> list[str]:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return [
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors()[:20]
            ]
        except Exception:  # an exception whose errors() is not pydantic's
            pass
    if isinstance(exc, KeyError):
        return ["the Bundle holds a resource type this service does not know"]
    return [f"invalid FHIR content ({type(exc).__name__})"]


def _attachment_text(attachment: Any, index: int) -> str | None:
    content_type = (attachment.contentType or "").lower()
    if not content_type.startswith("text/plain") or attachment.data is None:
        return None
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key == "charset" and value:
            charset = value.strip('"')
    raw = attachment.data if isinstance(attachment.data, bytes) else str(attachment.data).encode()
    try:
        return raw.decode(charset)
    except (LookupError, UnicodeDecodeError):
        raise FhirInputError(422, [f"entry {index}: the attachment is not valid {charset} text"]) from None


def _doc_type(resource: Any) -> str:
    concept = resource.type
    if concept is None:
        return "note"
    if concept.text:
        return str(concept.text)
    for coding in concept.coding or []:
        if coding.display or coding.code:
            return str(coding.display or coding.code)
    return "note"


def _encounter_start(encounter: Any) -> date | None:
    if encounter is None or encounter.period is None or encounter.period.start is None:
        return None
    start = encounter.period.start
    return start.date() if isinstance(start, datetime) else start if isinstance(start, date) else None


def _age(birth: Any, on: date | None) -> int | None:
    if not isinstance(birth, date):
        return None
    on = on or datetime.now(UTC).date()
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return years if 0 <= years <= 130 else None


def _setting(encounter: Any) -> str:
    if encounter is None or encounter.class_fhir is None:
        return "other"
    return ENCOUNTER_CLASS_TO_SETTING.get((encounter.class_fhir.code or "").upper(), "other")


# -- the answer --------------------------------------------------------------------------------------


def build_bundle(result: Result, context: FhirContext, *, now: datetime) -> dict[str, Any]:
    """The answer Bundle as JSON, validated by `fhir.resources` resource by resource."""
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.claim import Claim
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.procedure import Procedure

    confirmed = result.routing.decision == "auto_accept"
    subject = {"reference": context.patient_ref}
    encounter = {"reference": context.encounter_ref} if context.encounter_ref else None
    entries: list[dict[str, Any]] = []
    diagnoses: list[dict[str, Any]] = []
    procedures: list[dict[str, Any]] = []
    for code in result.codes:
        coding = {"system": SYSTEM_URIS.get(code.system, code.system), "code": code.code}
        if code.description:
            coding["display"] = code.description
        concept = {"coding": [coding], "text": code.description or code.code}
        extensions = [{"url": CONFIDENCE_EXTENSION, "valueDecimal": round(code.confidence, 4)}] + [
            {"url": EVIDENCE_EXTENSION, "valueString": f"{e.document_id}:{e.start}-{e.end}"}
            for e in code.evidence
        ]
        full_url = f"urn:uuid:{uuid.uuid4()}"
        if task_of_system(code.system) == "diagnosis":
            resource: Any = Condition.model_validate(
                {
                    "resourceType": "Condition",
                    "extension": extensions,
                    "clinicalStatus": _concept(
                        "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"
                    ),
                    "verificationStatus": _concept(
                        "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "confirmed" if confirmed else "provisional",
                    ),
                    "category": [
                        _concept(
                            "http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis"
                        )
                    ],
                    "code": concept,
                    "subject": subject,
                    **({"encounter": encounter} if encounter else {}),
                    **_evidence_details(code.evidence, context),
                }
            )
            diagnoses.append({"sequence": len(diagnoses) + 1, "diagnosisCodeableConcept": concept})
        else:
            resource = Procedure.model_validate(
                {
                    "resourceType": "Procedure",
                    "extension": extensions,
                    "status": "completed",
                    "code": concept,
                    "subject": subject,
                    **({"encounter": encounter} if encounter else {}),
                }
            )
            procedures.append({"sequence": len(procedures) + 1, "procedureCodeableConcept": concept})
        entries.append({"fullUrl": full_url, "resource": resource})
    if diagnoses:
        diagnoses[0]["type"] = [
            _concept("http://terminology.hl7.org/CodeSystem/ex-diagnosistype", "principal")
        ]
    claim = Claim.model_validate(
        {
            "resourceType": "Claim",
            "extension": [{"url": MODEL_EXTENSION, "valueString": result.model_version}],
            "status": "draft",
            "use": "claim",
            "type": _concept(
                "http://terminology.hl7.org/CodeSystem/claim-type",
                "institutional" if _is_institutional(result, context) else "professional",
            ),
            "patient": subject,
            "created": now.isoformat(),
            "provider": {"display": "to be completed by the billing system"},
            "priority": _concept("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "to be completed"}}],
            **({"diagnosis": diagnoses} if diagnoses else {}),
            **({"procedure": procedures} if procedures else {}),
        }
    )
    entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": claim})
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": uuid.uuid4().hex,
            "type": "collection",
            "timestamp": now.isoformat(),
            "entry": entries,
        }
    )
    return json.loads(bundle.model_dump_json(exclude_none=True))


def _is_institutional(result: Result, context: FhirContext) -> bool:
    """Inpatient stays (and ICD-10-PCS procedures, which only inpatient claims carry) bill as institutional."""
    return context.setting == "inpatient" or any(c.system == "ICD-10-PCS" for c in result.codes)


def _concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _evidence_details(evidence: list[Any], context: FhirContext) -> dict[str, Any]:
    details = []
    for span in evidence:
        ref = context.document_refs.get(span.document_id)
        if ref:
            details.append({"reference": ref, "display": span.text[:200] if span.text else None})
    if not details:
        return {}
    return {"evidence": [{"detail": [{k: v for k, v in d.items() if v} for d in details]}]}
