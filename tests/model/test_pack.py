from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medcode.data.errors import ModelNotFoundError
from medcode.model.pack import (
    PackManifest,
    load_arrays,
    load_object,
    load_pack,
    read_manifest,
    save_pack,
    verify_pack,
)


def _manifest() -> PackManifest:
    return PackManifest(
        preset="builtin",
        version="builtin-test",
        code_set_version="ICD-10-CM 2026",
        thresholds={"diagnosis": {"decision": 0.4, "per_code": {"I10": 0.3}, "auto_accept": 0.9}},
        calibration={"diagnosis": {"method": "isotonic", "x": [0.1, 0.5, 0.9], "y": [0.05, 0.4, 0.97]}},
        training_data={"fingerprint": "abc", "documents": 3},
        metrics={"diagnosis": {"map": 0.5}},
        config={"nested": {"a": [1, 2.5, "x"]}},
    )


def test_save_then_read_gives_identical_manifest_and_weights(tmp_path: Path) -> None:
    arrays = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([0.1, 1e-9, 3.0])}
    objects = {"thing": {"k": [1, 2, 3]}}
    save_pack(tmp_path / "pack", _manifest(), arrays=arrays, objects=objects)
    again = read_manifest(tmp_path / "pack")
    original = _manifest()
    assert again.to_json() | {"files": {}, "created_at": ""} == original.to_json() | {
        "files": {},
        "created_at": "",
    }
    assert set(again.files) == {"arrays.npz", "objects/thing.joblib"}
    loaded = load_arrays(tmp_path / "pack")
    for name, value in arrays.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)
    assert load_object(tmp_path / "pack", "thing") == {"k": [1, 2, 3]}


def test_corrupt_weight_file_is_refused(tmp_path: Path) -> None:
    save_pack(tmp_path / "pack", _manifest(), arrays={"w": np.ones(3)})
    (tmp_path / "pack" / "arrays.npz").write_bytes(b"garbage")
    with pytest.raises(ModelNotFoundError, match="checksum"):
        verify_pack(tmp_path / "pack")


def test_folder_without_manifest_is_not_a_pack(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"manifest\.json"):
        load_pack(tmp_path)


def test_unknown_preset_names_the_preset(tmp_path: Path) -> None:
    manifest = _manifest()
    manifest.preset = "no-such-preset"
    save_pack(tmp_path / "pack", manifest)
    with pytest.raises(ModelNotFoundError, match="no-such-preset"):
        load_pack(tmp_path / "pack")


def test_newer_pack_format_is_refused(tmp_path: Path) -> None:
    save_pack(tmp_path / "pack", _manifest())
    path = tmp_path / "pack" / "manifest.json"
    data = json.loads(path.read_text())
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ModelNotFoundError, match="newer"):
        read_manifest(tmp_path / "pack")
