"""The clinical text pipeline: a blank English spaCy pipeline of small registered steps.

    normalizer -> sectionizer -> sentencizer -> mentions -> modifiers -> context

`TextPipeline` wraps it and turns `doc.spans["mentions"]` into `data.types.Mention` objects whose offsets
index the text exactly as received. A pipeline is built explicitly from its lexicon:

- `build_pipeline(terms=...)` / `build_pipeline(lexicon=...)`: an explicit lexicon (tests, tools);
- `save_lexicon(pipeline, folder)` / `load_pipeline(folder)`: the lexicon as a model pack file, so a loaded
  pack finds the mentions it was trained with on any machine, with or without the datasets folder; with it
  the rule files the pipeline ran with (`text/rules/`: normalisation, abbreviations, tokenizer, sections,
  modifiers, anatomy, ConText rules) and the ConText literals already tokenised, so a pack asserts as it
  did when saved whatever rules the installed medcode ships (a pack saved before carries none: it runs
  the installed rules).

The full lexicon of a datasets folder is `model.text.sources`' business (`full_pipeline`, `get_pipeline`):
this module never imports it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc, Span

from medcode.data.errors import InvalidInputError
from medcode.data.types import Assertion, Encounter, Mention
from medcode.model.packfile import read_json_gz, write_json_gz
from medcode.model.text.context import CONTEXT_FACTORY, ConTextComponent, ContextRules
from medcode.model.text.extensions import ASSERTION_ATTRS, MENTIONS_KEY, register_extensions
from medcode.model.text.lexicon import MENTION_TYPES, Lexicon, TermKeyer, TermSpec
from medcode.model.text.matcher import MATCHER_FACTORY, MentionMatcher
from medcode.model.text.modifiers import MODIFIERS_FACTORY
from medcode.model.text.normalize import NORMALIZER_FACTORY, Normalization, Normalizer
from medcode.model.text.rules import load_json_resource, resource_path, resources_fingerprint
from medcode.model.text.sections import SECTIONIZER_FACTORY
from medcode.model.text.sentences import SENTENCIZER_FACTORY

logger = logging.getLogger(__name__)

PIPELINE_VERSION = "medcode-text-1"
PIPE_NAMES = ("normalizer", "sectionizer", "sentencizer", "mentions", "modifiers", "context")
MAX_NOTE_CHARS = 200_000
"""Longest note the pipeline reads (the service and the CLI check their own configured limit first)."""
LEXICON_FILE = "text/lexicon.json.gz"
"""The compiled lexicon inside a model pack."""
KEY_RESOURCES = ("abbreviations.tsv", "normalization.json", "stopwords.txt", "tokenizer.json")
"""Resource files that decide how text becomes lexicon keys: a pack's lexicon records their fingerprint."""
RULES_DIR = "text/rules"
"""The rule files a pipeline runs with, inside a model pack."""
RULE_RESOURCES = (
    "normalization.json",
    "abbreviations.tsv",
    "tokenizer.json",
    "sections.json",
    "modifiers.json",
    "anatomy.txt",
    "context_rules.json",
)
"""Resource files the pipeline reads when it is built and that decide its output (those read only to
build a lexicon are baked into the lexicon itself)."""
CONTEXT_TOKENS_FILE = f"{RULES_DIR}/context_tokens.json"
"""The ConText literals of the pack's rule files already tokenised (saves tokenising them at each load)."""
TermLike = TermSpec | str | tuple[str, str] | tuple[str, str, Iterable[str]]


def installed_rule_files() -> dict[str, Path]:
    """The rule files the installed medcode ships (name -> path)."""
    return {name: resource_path(name) for name in RULE_RESOURCES}


_RULE_CONFIG = {
    "normalization.json": ("context", "normalization"),
    "abbreviations.tsv": ("context", "abbreviations"),
    "tokenizer.json": ("sentencizer", "tokenizer_rules"),
    "sections.json": ("sectionizer", "rules"),
    "modifiers.json": ("modifiers", "rules"),
    "anatomy.txt": ("modifiers", "anatomy"),
    "context_rules.json": ("context", "rules"),
}
"""Where a `make_nlp` pipeline's config names each rule file (pipe, setting)."""


def rule_files_of(nlp: Language) -> dict[str, Path]:
    """The rule files a `make_nlp` pipeline was built from, read from its steps' config."""
    files: dict[str, Path] = {}
    for name, (pipe, setting) in _RULE_CONFIG.items():
        value = str(nlp.get_pipe_config(pipe).get(setting) or "")
        files[name] = resource_path(value or name)
    return files


def make_nlp(rule_files: Mapping[str, Path] | None = None, context_tokens: Path | None = None) -> Language:
    """The spaCy pipeline with every step and an empty lexicon, over the installed rule files or
    `rule_files` (every name of RULE_RESOURCES -> a path; a model pack's copies)."""
    register_extensions()

    def file(name: str) -> str:
        return name if rule_files is None else str(rule_files[name])

    norm: dict[str, str] = {}
    if rule_files is not None:
        norm = {"normalization": file("normalization.json"), "abbreviations": file("abbreviations.tsv")}
    nlp = spacy.blank("en")
    tokenizer = nlp.tokenizer
    if isinstance(tokenizer, Tokenizer):
        for case in load_json_resource(file("tokenizer.json")).get("special_cases", []):
            tokenizer.add_special_case(case, [{"ORTH": case}])
    context = {"rules": file("context_rules.json"), **norm}
    if context_tokens is not None:
        context["tokens"] = str(context_tokens)
    nlp.add_pipe(NORMALIZER_FACTORY, name="normalizer", config=norm)
    nlp.add_pipe(SECTIONIZER_FACTORY, name="sectionizer", config={"rules": file("sections.json")})
    nlp.add_pipe(SENTENCIZER_FACTORY, name="sentencizer", config={"tokenizer_rules": file("tokenizer.json")})
    nlp.add_pipe(MATCHER_FACTORY, name="mentions", config=norm)
    modifiers = {"rules": file("modifiers.json"), "anatomy": file("anatomy.txt"), **norm}
    nlp.add_pipe(MODIFIERS_FACTORY, name="modifiers", config=modifiers)
    nlp.add_pipe(CONTEXT_FACTORY, name="context", config=context)
    return nlp


def read_word_list(name: str) -> list[str]:
    """A one-term-per-line resource file ('#' starts a comment line)."""
    lines = resource_path(name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def normalizer_of(nlp: Language) -> Normalizer:
    normalizer = nlp.get_pipe("normalizer")
    if not isinstance(normalizer, Normalizer):
        raise TypeError("the 'normalizer' pipe is not a medcode Normalizer")
    return normalizer


def matcher_of(nlp: Language) -> MentionMatcher:
    matcher = nlp.get_pipe("mentions")
    if not isinstance(matcher, MentionMatcher):
        raise TypeError("the 'mentions' pipe is not a medcode MentionMatcher")
    return matcher


def make_keyer(nlp: Language) -> TermKeyer:
    normalization = normalizer_of(nlp).normalization
    stopwords = frozenset(normalization.word(w) for w in read_word_list("stopwords.txt"))
    generic: set[str] = set()
    for site in read_word_list("anatomy.txt"):
        generic.update(normalization.word(w) for w in site.split())
    for spec in load_json_resource("modifiers.json")["attributes"].values():
        for phrase in spec["terms"]:
            generic.update(normalization.word(w) for w in phrase.replace("-", " ").split())
    tokenizer = nlp.tokenizer
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError("the pipeline's tokenizer is not a spaCy Tokenizer")
    return TermKeyer(tokenizer, normalization, stopwords, frozenset(generic))


def stop_keys(keyer: TermKeyer) -> frozenset[str]:
    """Keys never matched: generic words of code titles, and bare anatomical sites (an attribute)."""
    words = read_word_list("lexicon_stopterms.txt") + read_word_list("anatomy.txt")
    return frozenset(k for k in keyer.keys(words) if k)


def _as_spec(term: TermLike) -> TermSpec:
    if isinstance(term, TermSpec):
        return term
    if isinstance(term, str):
        return TermSpec(term, "condition", (), "explicit")
    if len(term) == 2:
        return TermSpec(term[0], term[1], (), "explicit")
    text, kind, codes = term  # type: ignore[misc]
    return TermSpec(text, kind, tuple(codes), "explicit")


class TextPipeline:
    """Notes in, clinical mentions out (offsets into the text as received)."""

    version = PIPELINE_VERSION

    def __init__(
        self,
        nlp: Language,
        lexicon: Lexicon,
        max_note_chars: int = MAX_NOTE_CHARS,
        rule_files: Mapping[str, Path] | None = None,
    ) -> None:
        self.nlp = nlp
        self.lexicon = lexicon
        self.rule_files: dict[str, Path] = dict(rule_files) if rule_files else rule_files_of(nlp)
        """The rule files `nlp` was built from (what `save_lexicon` copies into a pack)."""
        self.max_note_chars = max_note_chars
        self.matcher = matcher_of(nlp)
        self.matcher.set_lexicon(lexicon)

    @property
    def normalization(self) -> Normalization:
        return normalizer_of(self.nlp).normalization

    def _check(self, text: str) -> None:
        if not isinstance(text, str):
            raise InvalidInputError("note text must be a string")
        limit = self.max_note_chars
        if len(text) > limit:
            raise InvalidInputError(f"note has {len(text)} characters; the limit is {limit}")

    def process(self, text: str) -> Doc:
        """The annotated spaCy Doc of one note."""
        self._check(text)
        return self.nlp(text)

    def mentions_of(self, doc: Doc, document_id: str = "d1") -> list[Mention]:
        return [to_mention(span, document_id) for span in doc.spans.get(MENTIONS_KEY, [])]

    def extract(self, text: str, document_id: str = "d1") -> list[Mention]:
        """The mentions of one note, in text order."""
        return self.mentions_of(self.process(text), document_id)

    def __call__(self, text: str, document_id: str = "d1") -> list[Mention]:
        """`extract`: a pipeline is a `model.mentions.Extractor`."""
        return self.extract(text, document_id)

    def extract_many(self, texts: Iterable[str], batch_size: int = 32) -> Iterator[list[Mention]]:
        """Mentions of many notes (document ids "d1"), streamed through spaCy's `pipe`."""

        def checked() -> Iterator[str]:
            for text in texts:
                self._check(text)
                yield text

        for doc in self.nlp.pipe(checked(), batch_size=batch_size):
            yield self.mentions_of(doc)

    def extract_encounter(self, encounter: Encounter) -> list[Mention]:
        """The mentions of every document of an encounter, each carrying its document id."""
        mentions: list[Mention] = []
        for document in encounter.documents:
            mentions.extend(self.extract(document.text, document.document_id))
        return mentions


def to_mention(span: Span, document_id: str) -> Mention:
    kind = span.label_ if span.label_ in MENTION_TYPES else "condition"
    assertion = Assertion(**{name: bool(getattr(span._, attr)) for name, attr in ASSERTION_ATTRS.items()})
    end = span.end_char
    text = span.text
    last = span[-1].text
    if len(last) == 2 and last[1] == "." and last[0].isalpha():
        end -= 1  # "hepatitis B." at a sentence end: the tokenizer keeps "B." whole
        text = text[:-1]
    return Mention(
        document_id=document_id,
        start=span.start_char,
        end=end,
        text=text,
        type=kind,  # type: ignore[arg-type]
        section=span._.section,
        assertion=assertion,
        attributes=dict(span._.attributes or {}),
        concepts=list(span._.concepts),
    )


def build_lexicon(nlp: Language, terms: Iterable[TermLike]) -> Lexicon:
    """A lexicon from explicit terms: "pneumonia", ("chest pain", "sign_symptom"), or with codes."""
    keyer = make_keyer(nlp)
    return Lexicon.build((_as_spec(t) for t in terms), keyer, stop_keys=stop_keys(keyer))


def build_pipeline(
    terms: Iterable[TermLike] | None = None,
    lexicon: Lexicon | None = None,
    rule_files: Mapping[str, Path] | None = None,
    context_tokens: Path | None = None,
) -> TextPipeline:
    """A pipeline over an explicit lexicon (tests, tools, a model pack's lexicon), with the installed
    rule files or `rule_files` (see `make_nlp`)."""
    nlp = make_nlp(rule_files, context_tokens)
    if lexicon is None:
        lexicon = build_lexicon(nlp, terms or [])
    return TextPipeline(nlp, lexicon, rule_files=rule_files)


def context_rules_of(nlp: Language) -> ContextRules:
    context = nlp.get_pipe("context")
    if not isinstance(context, ConTextComponent):
        raise TypeError("the 'context' pipe is not a medcode ConTextComponent")
    return context.rules


def _rules_digest(files: Mapping[str, Path]) -> str:
    digest = hashlib.sha256()
    for name in RULE_RESOURCES:
        digest.update(name.encode() + b"\0" + Path(files[name]).read_bytes() + b"\0")
    return digest.hexdigest()


def save_lexicon(pipeline: TextPipeline, folder: Path) -> Path:
    """Write the pipeline's lexicon into a model pack folder (`text/lexicon.json.gz`); returns the file."""
    file = Path(folder) / LEXICON_FILE
    file.parent.mkdir(parents=True, exist_ok=True)
    write_json_gz(file, pipeline.lexicon.to_json(), sort_keys=True)
    save_rule_files(pipeline, folder)
    return file


def save_rule_files(pipeline: TextPipeline, folder: Path) -> Path:
    """Copy the rule files the pipeline runs with into a pack folder (`text/rules/`), with its ConText
    literals as tokens (`text/rules/context_tokens.json`, tied to those files by a sha256); returns the
    rules folder."""
    target = Path(folder) / RULES_DIR
    target.mkdir(parents=True, exist_ok=True)
    sources = pipeline.rule_files
    data = {name: Path(sources[name]).read_bytes() for name in RULE_RESOURCES}
    for name, content in data.items():
        (target / name).write_bytes(content)
    tokens = {"rules_sha256": _rules_digest(sources), "tokens": context_rules_of(pipeline.nlp).tokens}
    (Path(folder) / CONTEXT_TOKENS_FILE).write_text(
        json.dumps(tokens, separators=(",", ":"), ensure_ascii=False), encoding="utf-8"
    )
    return target


def load_pipeline(folder: Path) -> TextPipeline:
    """The text pipeline over the lexicon a model pack folder carries (never the datasets folder)."""
    lexicon = read_json_gz(folder, LEXICON_FILE, "text lexicon", Lexicon.from_json)
    rules = Path(folder) / RULES_DIR

    def key_file(name: str) -> Path:  # the pack's own copy where it carries one: the pipeline reads that
        packed = rules / name
        return packed if name in RULE_RESOURCES and packed.is_file() else resource_path(name)

    recorded = lexicon.meta.get("key_resources")
    if recorded is not None and recorded != resources_fingerprint(KEY_RESOURCES, key_file):
        logger.warning(
            "model pack %s: its lexicon was keyed with other normalisation resources than this medcode has; "
            "some terms may not match until it is retrained",
            folder,
        )
    if not all((rules / name).is_file() for name in RULE_RESOURCES):
        logger.debug(
            "model pack %s carries no text rules (saved before they were packed): installed rules", folder
        )
        return build_pipeline(lexicon=lexicon)
    files = {name: rules / name for name in RULE_RESOURCES}
    tokens: Path | None = Path(folder) / CONTEXT_TOKENS_FILE
    try:
        stored = json.loads(Path(folder, CONTEXT_TOKENS_FILE).read_text(encoding="utf-8"))
        if stored.get("rules_sha256") != _rules_digest(files):
            tokens = None
    except (OSError, ValueError, AttributeError):
        tokens = None
    if tokens is None:
        logger.debug("model pack %s: no tokenised ConText rules for its rule files; tokenising them", folder)
    return build_pipeline(lexicon=lexicon, rule_files=files, context_tokens=tokens)
