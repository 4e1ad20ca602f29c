"""Cache files are never needed: unreadable ones are ignored, unwritable ones skipped, never half written."""

from __future__ import annotations

import logging
import pickle
from functools import partial
from pathlib import Path

import pytest

from medcode.data.cache import read_cache, write_cache


def test_a_written_cache_reads_back_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    file = tmp_path / "sub" / "x.pkl"
    assert write_cache(file, partial(pickle.dump, {"a": [1, 2]}), "test cache")
    assert read_cache(file, pickle.load, "test cache") == {"a": [1, 2]}
    assert [p.name for p in file.parent.iterdir()] == ["x.pkl"]


def test_an_absent_cache_is_none_without_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert read_cache(tmp_path / "none.pkl", pickle.load, "test cache") is None
    assert not caplog.records


def test_an_unreadable_cache_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "x.pkl"
    file.write_bytes(b"not a pickle")
    with caplog.at_level(logging.WARNING):
        assert read_cache(file, pickle.load, "test cache") is None
    assert "ignoring unreadable test cache" in caplog.text


def test_a_failed_write_is_skipped_with_a_warning_and_keeps_the_old_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "x.pkl"
    file.write_bytes(b"old")

    def fail(handle: object) -> None:
        raise OSError("disk full")

    with caplog.at_level(logging.WARNING):
        assert not write_cache(file, fail, "test cache")
    assert "could not write the test cache" in caplog.text
    assert file.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.pkl"]
