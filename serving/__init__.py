"""FastAPI app: encounters, FHIR, review queue, code search, auth, storage and the coder UI."""
