"""A pack's text pipeline runs the rule files it was saved with, not the ones the installed medcode ships;
a pack saved before the rules were packed runs the installed ones."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from medcode.model.text import context as context_module
from medcode.model.text import pipeline as pipeline_module
from medcode.model.text import rules as rules_module
from medcode.model.text.context import literal_tokens
from medcode.model.text.pipeline import (
    CONTEXT_TOKENS_FILE,
    RULE_RESOURCES,
    RULES_DIR,
    TextPipeline,
    build_pipeline,
    context_rules_of,
    load_pipeline,
    normalizer_of,
    save_lexicon,
)

NOTE = "Patient denies chest pain. Family history of asthma."
TERMS = [("chest pain", "sign_symptom", ["R07.9"]), ("asthma", "condition", ["J45.909"])]


def assertions(pipeline: TextPipeline) -> dict[str, tuple[bool, bool]]:
    return {m.text: (m.assertion.negated, m.assertion.family) for m in pipeline.extract(NOTE)}


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    pipeline = build_pipeline(terms=TERMS)
    assert assertions(pipeline) == {"chest pain": (True, False), "asthma": (False, True)}
    save_lexicon(pipeline, tmp_path / "pack")
    return tmp_path / "pack"


@pytest.fixture
def changed_installed_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The installed rules as a later medcode might ship them: 'denies' is no longer a negation trigger."""
    folder = tmp_path / "installed"
    folder.mkdir()
    for name in RULE_RESOURCES:
        shutil.copy(rules_module.resource_path(name), folder / name)
    data = json.loads((folder / "context_rules.json").read_text(encoding="utf-8"))
    for group in data["rules"]:
        group["literals"] = [lit for lit in group["literals"] if not lit.startswith("denies")]
    (folder / "context_rules.json").write_text(json.dumps(data), encoding="utf-8")
    original = rules_module.resource_path

    def patched(name: str) -> Path:
        return folder / name if (folder / name).is_file() else original(name)

    monkeypatch.setattr(rules_module, "resource_path", patched)
    monkeypatch.setattr(pipeline_module, "resource_path", patched)
    monkeypatch.setattr(context_module, "_RULES_CACHE", {})
    return folder


def test_a_loaded_pack_keeps_the_assertions_it_was_saved_with(
    saved: Path, changed_installed_rules: Path
) -> None:
    installed_now = build_pipeline(terms=TERMS)
    assert assertions(installed_now)["chest pain"] == (False, False)  # the changed rules took effect
    loaded = load_pipeline(saved)
    assert assertions(loaded) == {"chest pain": (True, False), "asthma": (False, True)}
    assert all(path.parent == saved / RULES_DIR for path in loaded.rule_files.values())


def test_a_pack_saved_from_a_loaded_pack_carries_the_packs_rules(
    saved: Path, changed_installed_rules: Path, tmp_path: Path
) -> None:
    save_lexicon(load_pipeline(saved), tmp_path / "again")
    for name in RULE_RESOURCES:
        assert (tmp_path / "again" / RULES_DIR / name).read_bytes() == (saved / RULES_DIR / name).read_bytes()
    assert assertions(load_pipeline(tmp_path / "again"))["chest pain"] == (True, False)


def test_a_pack_without_rules_runs_the_installed_ones_and_says_so(
    saved: Path, changed_installed_rules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.rmtree(saved / RULES_DIR)  # as a pack saved before the rules were packed
    with caplog.at_level(logging.DEBUG, logger=pipeline_module.logger.name):
        loaded = load_pipeline(saved)
    assert assertions(loaded)["chest pain"] == (False, False)
    assert any("carries no text rules" in r.getMessage() for r in caplog.records)
    assert loaded.rule_files["context_rules.json"] == changed_installed_rules / "context_rules.json"


def test_stored_tokens_are_the_tokenised_literals_and_are_used(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context_module, "_RULES_CACHE", {})
    calls: list[int] = []
    original = context_module.literal_tokens

    def counting(*args: object, **kwargs: object) -> list[list[str]]:
        calls.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(context_module, "literal_tokens", counting)
    loaded = load_pipeline(saved)
    assert calls == []  # the pack's tokens, not the tokenizer
    rules = context_rules_of(loaded.nlp)
    expected = literal_tokens(
        loaded.nlp.tokenizer, normalizer_of(loaded.nlp).normalization, [r.literal for r in rules.rules]
    )
    assert rules.tokens == expected


def test_tokens_of_other_rule_files_are_ignored(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = saved / CONTEXT_TOKENS_FILE
    stored = json.loads(file.read_text(encoding="utf-8"))
    stored["rules_sha256"] = "0" * 64
    stored["tokens"] = [["zzz"] for _ in stored["tokens"]]
    file.write_text(json.dumps(stored), encoding="utf-8")
    monkeypatch.setattr(context_module, "_RULES_CACHE", {})
    assert assertions(load_pipeline(saved))["chest pain"] == (True, False)


def test_a_pipeline_knows_its_rule_files_from_its_own_steps(saved: Path) -> None:
    loaded = load_pipeline(saved)
    rewrapped = TextPipeline(loaded.nlp, loaded.lexicon, max_note_chars=1000)
    assert rewrapped.rule_files == loaded.rule_files
    assert build_pipeline(terms=TERMS).rule_files == pipeline_module.installed_rule_files()


@pytest.fixture
def changed_installed_abbreviations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed abbreviation table as a later medcode might ship it (one more row)."""
    folder = tmp_path / "installed-abbreviations"
    folder.mkdir()
    table = rules_module.resource_path("abbreviations.tsv").read_text(encoding="utf-8")
    (folder / "abbreviations.tsv").write_text(table + "zzq\tzebra quotient\n", encoding="utf-8")
    original = rules_module.resource_path

    def patched(name: str) -> Path:
        return folder / name if (folder / name).is_file() else original(name)

    monkeypatch.setattr(rules_module, "resource_path", patched)
    monkeypatch.setattr(pipeline_module, "resource_path", patched)


@pytest.fixture
def keyed(tmp_path: Path) -> Path:
    """A pack whose lexicon records the fingerprint of the tables its keys were made with (as the full
    lexicon of `medcode train` does)."""
    pipeline = build_pipeline(terms=TERMS)
    pipeline.lexicon.meta["key_resources"] = rules_module.resources_fingerprint(pipeline_module.KEY_RESOURCES)
    save_lexicon(pipeline, tmp_path / "keyed")
    return tmp_path / "keyed"


def _stale_key_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "keyed with other normalisation" in r.getMessage()]


def test_a_pack_with_its_rules_is_not_stale_when_the_installed_keys_change(
    keyed: Path, changed_installed_abbreviations: None, caplog: pytest.LogCaptureFixture
) -> None:
    # its lexicon keys were made with the abbreviation table the pack carries, and the pack reads that one
    with caplog.at_level(logging.WARNING, logger=pipeline_module.logger.name):
        load_pipeline(keyed)
    assert _stale_key_warnings(caplog) == []


def test_a_pack_whose_keys_differ_from_the_tables_it_reads_says_so(
    keyed: Path, changed_installed_abbreviations: None, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.rmtree(keyed / RULES_DIR)  # saved before rules were packed: it reads the installed, changed table
    with caplog.at_level(logging.WARNING, logger=pipeline_module.logger.name):
        load_pipeline(keyed)
    assert len(_stale_key_warnings(caplog)) == 1
