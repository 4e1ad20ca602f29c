"""The clinical text pipeline: a blank English spaCy pipeline of small registered steps.

    normalizer -> sectionizer -> sentencizer -> mentions -> modifiers -> context

`TextPipeline` wraps it and turns `doc.spans["mentions"]` into `data.types.Mention` objects whose offsets
index the text exactly as received. `get_pipeline()` builds the full lexicon once (cached on disk) and keeps
the pipeline in memory; `build_pipeline(terms=...)` builds one from an explicit small lexicon.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from functools import lru_cache

import spacy
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc, Span

from medcode.data.errors import InvalidInputError
from medcode.data.types import Assertion, Encounter, Mention
from medcode.model.text.context import CONTEXT_FACTORY
from medcode.model.text.extensions import ASSERTION_ATTRS, MENTIONS_KEY, register_extensions
from medcode.model.text.lexicon import MENTION_TYPES, Lexicon, TermKeyer, TermSpec
from medcode.model.text.matcher import MATCHER_FACTORY, MentionMatcher
from medcode.model.text.modifiers import MODIFIERS_FACTORY
from medcode.model.text.normalize import NORMALIZER_FACTORY, Normalization, Normalizer
from medcode.model.text.rules import load_json_resource, resource_path
from medcode.model.text.sections import SECTIONIZER_FACTORY
from medcode.model.text.sentences import SENTENCIZER_FACTORY
from medcode.settings import get_settings

logger = logging.getLogger(__name__)

PIPELINE_VERSION = "medcode-text-1"
PIPE_NAMES = ("normalizer", "sectionizer", "sentencizer", "mentions", "modifiers", "context")
TermLike = TermSpec | str | tuple[str, str] | tuple[str, str, Iterable[str]]


def make_nlp() -> Language:
    """The spaCy pipeline with every step and an empty lexicon."""
    register_extensions()
    nlp = spacy.blank("en")
    tokenizer = nlp.tokenizer
    if isinstance(tokenizer, Tokenizer):
        for case in load_json_resource("tokenizer.json").get("special_cases", []):
            tokenizer.add_special_case(case, [{"ORTH": case}])
    nlp.add_pipe(NORMALIZER_FACTORY, name="normalizer")
    nlp.add_pipe(SECTIONIZER_FACTORY, name="sectionizer")
    nlp.add_pipe(SENTENCIZER_FACTORY, name="sentencizer")
    nlp.add_pipe(MATCHER_FACTORY, name="mentions")
    nlp.add_pipe(MODIFIERS_FACTORY, name="modifiers")
    nlp.add_pipe(CONTEXT_FACTORY, name="context")
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

    def __init__(self, nlp: Language, lexicon: Lexicon) -> None:
        self.nlp = nlp
        self.lexicon = lexicon
        self.matcher = matcher_of(nlp)
        self.matcher.set_lexicon(lexicon)

    @property
    def normalization(self) -> Normalization:
        return normalizer_of(self.nlp).normalization

    def _check(self, text: str) -> None:
        if not isinstance(text, str):
            raise InvalidInputError("note text must be a string")
        limit = get_settings().max_note_chars
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


def build_pipeline(terms: Iterable[TermLike] | None = None, lexicon: Lexicon | None = None) -> TextPipeline:
    """A pipeline over an explicit lexicon (tests, tools); the full one is `get_pipeline()`."""
    nlp = make_nlp()
    if lexicon is None:
        lexicon = build_lexicon(nlp, terms or [])
    return TextPipeline(nlp, lexicon)


@lru_cache(maxsize=1)
def get_pipeline() -> TextPipeline:
    """The pipeline with the full lexicon (built once and cached under the settings' cache folder)."""
    from medcode.model.text.sources import load_default_lexicon

    started = time.perf_counter()
    nlp = make_nlp()
    lexicon = load_default_lexicon(make_keyer(nlp))
    logger.info("text pipeline ready: %d lexicon keys in %.2f s", len(lexicon), time.perf_counter() - started)
    return TextPipeline(nlp, lexicon)
