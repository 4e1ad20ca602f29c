"""What the coders read from a note: the text pipeline's mentions, and sentence spans for evidence.

An `Extractor` is any `(text, document_id) -> mentions` callable; a `model.text.TextPipeline` is one, and
every model carries its own. `default_extractor(data_dir)` is the full pipeline of a datasets folder, for
tools. `clause_mentions` cuts sentences into clauses and marks the obvious negation, family and
hypothetical cues: the candidate generator's extra lexical queries (no substitute for the pipeline).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medcode.data.types import Assertion, Mention
from medcode.model.text.sentences import sentence_spans

log = logging.getLogger(__name__)

Extractor = Callable[[str, str], list[Mention]]
"""(text, document_id) -> mentions with offsets into `text`."""


@dataclass(frozen=True, slots=True)
class Sentence:
    document_id: str
    start: int
    end: int
    text: str


def split_sentences(text: str, document_id: str = "d1", max_chars: int = 600) -> list[Sentence]:
    """Sentence spans of a note (`model.text.sentences.sentence_spans`), as records of one document."""
    return [Sentence(document_id, a, b, text[a:b]) for a, b in sentence_spans(text, max_chars)]


def default_extractor(data_dir: Path | None = None, cache_dir: Path | None = None) -> Extractor:
    """The full text pipeline of a datasets folder (`model.text.get_pipeline`: built once per process;
    None: the packaged sources only). Models read notes with the pipeline they carry, not this."""
    from medcode.model.text.sources import get_pipeline

    return get_pipeline(data_dir, cache_dir)


# ---------------------------------------------------------------------------------------------- fallback

_CLAUSE_SPLIT = re.compile(r"[,;:()]|\band\b|\bbut\b|\bwith no\b|\bwithout\b", re.IGNORECASE)
_NEGATION = re.compile(
    r"\b(no|not|denies|denied|without|negative for|free of|absence of|ruled out|no evidence of)\b", re.I
)
_FAMILY = re.compile(
    r"\b(family history|mother|father|brother|sister|son|daughter|grandmother|grandfather|aunt|uncle|sibling)s?\b",
    re.I,
)
_HYPOTHETICAL = re.compile(r"\b(if|should|in case|return if|call if|unless)\b", re.I)
_POSSIBLE = re.compile(
    r"\b(possible|probable|suspected|likely|rule out|r/o|versus|vs\.?|cannot be excluded)\b", re.I
)
_HISTORY = re.compile(r"\b(history of|h/o|previous|prior|past)\b", re.I)
_POST_NEGATION = re.compile(
    r"\b(was negative|is negative|were negative|absent|ruled out|not seen|excluded)\b", re.I
)


def clause_mentions(text: str, document_id: str = "d1") -> list[Mention]:
    """Fallback mentions: every clause of every sentence, with sentence-level assertion cues."""
    mentions: list[Mention] = []
    for sentence in split_sentences(text, document_id):
        s = sentence.text
        family = bool(_FAMILY.search(s))
        hypothetical = bool(_HYPOTHETICAL.search(s))
        possible = bool(_POSSIBLE.search(s))
        historical = bool(_HISTORY.search(s))
        cuts = [(m.start(), m.group(0).lower()) for m in _CLAUSE_SPLIT.finditer(s)]
        bounds = [(0, ""), *cuts, (len(s), "")]
        negating = False
        for (a, token), (b, _) in itertools.pairwise(bounds):
            if token in ("but", ";", ":"):
                negating = False
            if _NEGATION.search(s[a:b]):
                negating = True
            chunk = s[a + len(token) : b] if token not in (",", ";", ":", "(", ")") else s[a + 1 : b]
            offset = b - len(chunk)
            lead = len(chunk) - len(chunk.lstrip(" ,;:()"))
            a2, b2 = offset + lead, offset + len(chunk.rstrip(" ,;:()."))
            if b2 - a2 < 3 or not re.search(r"[A-Za-z]{3}", s[a2:b2]):
                continue
            cleaned = re.sub(
                r"^(no|not|denies|denied|negative for|free of|absence of|no evidence of)\s+",
                "",
                s[a2:b2],
                flags=re.I,
            )
            a2 = b2 - len(cleaned)
            negated = negating or bool(_POST_NEGATION.search(s[a2:b]))
            mentions.append(
                Mention(
                    document_id=document_id,
                    start=sentence.start + a2,
                    end=sentence.start + b2,
                    text=s[a2:b2],
                    type="condition",
                    assertion=Assertion(
                        negated=negated,
                        family=family,
                        hypothetical=hypothetical,
                        possible=possible,
                        historical=historical,
                    ),
                )
            )
    return mentions
