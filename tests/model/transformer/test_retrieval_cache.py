"""The title-embedding cache of `build_title_index` is read and written through `data.cache`."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from medcode.model.transformer import retrieval

CODES = ["E11.9", "I10", "J45.909"]
HIDDEN = 4


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Stand in for the encoder: each title's row is fixed by its text; records the titles embedded."""
    calls: list[list[str]] = []

    def embed(net: Any, tokenizer: Any, texts: list[str], *args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(list(texts))
        return torch.tensor([[len(t) / 7.0 + i for i in range(HIDDEN)] for t in texts])

    monkeypatch.setattr(retrieval, "embed_many", embed)
    return calls


def _build(cache_dir: Path) -> retrieval.TitleIndex:
    return retrieval.build_title_index(
        SimpleNamespace(hidden=HIDDEN),  # type: ignore[arg-type]
        None,
        code_set_version="ICD-10-CM 2026",
        encoder_fingerprint="enc-1",
        restrict=CODES,
        max_tokens=16,
        device="cpu",
        cache_dir=cache_dir,
    )


def test_titles_are_embedded_once_then_read_from_the_cache(tmp_path: Path, embedded: list[list[str]]) -> None:
    first = _build(tmp_path)
    again = _build(tmp_path)
    assert len(embedded) == 1 and first.codes == again.codes == CODES
    assert torch.equal(first.embeddings, again.embeddings)  # float16-rounded both times
    files = [p.name for p in (tmp_path / "transformer").iterdir()]
    assert len(files) == 1 and files[0].endswith(".npz")  # no temporary file left beside it


def test_an_unreadable_cache_is_rebuilt_with_a_warning(
    tmp_path: Path, embedded: list[list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    _build(tmp_path)
    (cache,) = (tmp_path / "transformer").iterdir()
    cache.write_bytes(b"not an npz file")
    rebuilt = _build(tmp_path)
    assert len(embedded) == 2 and rebuilt.embeddings.shape == (len(CODES), HIDDEN)
    assert "title-embedding cache" in caplog.text
    assert _build(tmp_path).codes == CODES and len(embedded) == 2  # the rebuilt file is read again
