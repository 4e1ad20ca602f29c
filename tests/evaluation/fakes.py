"""Small stand-ins for the models (`tests.fakes.FakeCoder`, set up by `keyword_coder`) and the text pipeline,
so the evaluation tests need neither."""

from __future__ import annotations

from collections.abc import Sequence

from medcode.data.types import Assertion, Mention
from tests.fakes import FakeCoder, Rule

__all__ = ["FakeCoder", "Rule", "fake_extract", "keyword_coder"]


def keyword_coder(rules: Sequence[Rule], version: str = "fake-1") -> FakeCoder:
    """The fake coder as the evaluation tests use it: a rule's code is suggested at confidence >= 0.5 (a
    candidate below), and nothing is auto-accepted."""
    return FakeCoder(rules, threshold=0.5, auto_accept=None, version=version)


NEGATIONS = ("no ", "denies ")
FAMILY = ("mother had ", "father had ")


def fake_extract(text: str, document_id: str = "d1") -> list[Mention]:
    """One mention per word of 4+ letters; negated after "no"/"denies", family after "mother had"."""
    mentions = []
    pos = 0
    for word in text.split():
        start = text.index(word, pos)
        pos = start + len(word)
        clean = word.strip(".,;:")
        if len(clean) < 4:
            continue
        before = text[max(0, start - 12) : start].lower()
        assertion = Assertion(
            negated=any(before.endswith(n) for n in NEGATIONS),
            family=any(before.endswith(f) for f in FAMILY),
        )
        mentions.append(
            Mention(
                document_id=document_id, start=start, end=start + len(clean), text=clean, assertion=assertion
            )
        )
    return mentions
