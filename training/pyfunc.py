"""An MLflow pyfunc wrapper around a medcode model pack, so that registered versions also load with
`mlflow.pyfunc.load_model(...)`: input is a list of encounter dicts (or a DataFrame with a `text` column),
output a list of Result dicts."""

from __future__ import annotations

from typing import Any

from mlflow.pyfunc import PythonModel


class MedcodePyfunc(PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        from pathlib import Path

        from medcode.model.pack import load_pack

        self.coder = load_pack(Path(context.artifacts["pack"]))

    def predict(
        self, context: Any, model_input: list[Any], params: dict[str, Any] | None = None
    ) -> list[Any]:
        from medcode.data.types import Document, Encounter

        if hasattr(model_input, "to_dict") and hasattr(model_input, "columns"):
            records = model_input.to_dict(orient="records")
        else:
            records = list(model_input)
        out = []
        for i, record in enumerate(records):
            if isinstance(record, str):
                record = {"text": record}
            if "documents" in record:
                encounter = Encounter.model_validate(record)
            else:
                encounter = Encounter(
                    encounter_id=str(record.get("encounter_id", f"e{i + 1}")),
                    documents=[Document(document_id="d1", text=str(record.get("text", "")))],
                )
            out.append(self.coder.suggest(encounter).model_dump(mode="json"))
        return out
