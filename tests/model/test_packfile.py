"""One gzipped JSON part of a pack: same content gives the same bytes; absent or damaged parts are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcode.data.errors import ModelNotFoundError
from medcode.model.packfile import read_json_gz, write_json_gz


def test_written_part_reads_back_and_has_the_same_bytes_each_time(tmp_path: Path) -> None:
    write_json_gz(tmp_path / "a.json.gz", {"b": 1, "a": [1, 2]}, sort_keys=True)
    first = (tmp_path / "a.json.gz").read_bytes()
    write_json_gz(tmp_path / "a.json.gz", {"a": [1, 2], "b": 1}, sort_keys=True)
    assert (tmp_path / "a.json.gz").read_bytes() == first
    assert read_json_gz(tmp_path, "a.json.gz", "thing", dict) == {"a": [1, 2], "b": 1}


def test_absent_part_is_refused_naming_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"carries no text lexicon \(x.json.gz\)"):
        read_json_gz(tmp_path, "x.json.gz", "text lexicon", dict)


def test_corrupt_part_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.json.gz").write_bytes(b"not gzip")
    with pytest.raises(ModelNotFoundError, match="unreadable code vectors"):
        read_json_gz(tmp_path, "x.json.gz", "code vectors", dict)


def test_part_its_parser_rejects_is_refused(tmp_path: Path) -> None:
    write_json_gz(tmp_path / "x.json.gz", {"systems": {}})

    def parse(payload: dict[str, object]) -> object:
        return payload["codes"]

    with pytest.raises(ModelNotFoundError, match="unreadable code vectors: 'codes'"):
        read_json_gz(tmp_path, "x.json.gz", "code vectors", parse)
