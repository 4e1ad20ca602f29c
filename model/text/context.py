"""Assertion context (ConText): negated, possible, historical, family, hypothetical, as span attributes.

Triggers come from resources/context_rules.json. Within one sentence (header tokens excluded, so a header
such as "HISTORY OF PRESENT ILLNESS:" neither triggers nor stops anything), every trigger opens a scope:
forward, backward or both. A scope ends at the sentence end, at a terminator ("but", "however", ";", ...),
at a clause boundary when the rule says so, after `max_scope` tokens, or at a trigger of another category
when a break token (",", "and", ...) lies between them — "history of MI, no chest pain" is not negated
history. A closing terminator ends a scope after its own words ("no known drug allergies, hypertension": the
allergy phrase is the whole item; ", a mass" starts a new finding) unless the rest of the clause is a list
coordinated by "or"/"nor" ("no allergies, diabetes or hypertension"). The scope of an object trigger
("negative for", "denies", "without") that a clause verb ends after a comma ends at that comma: the words
between are the subject of a new clause ("negative for MRSA, and anemia was noted"). Pseudo-triggers ("no change", "gram negative") consume their words. A mention inside a scope gets
the category; when it gets both negated and possible, the nearer trigger wins. Sections add their own flags
(everything under Family History is family; Past Medical History is historical). Mentions are never
dropped, only marked.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc, Span

from medcode.model.text.extensions import (
    ASSERTION_ATTRS,
    CATEGORY_TO_ASSERTION,
    MENTIONS_KEY,
    register_extensions,
)
from medcode.model.text.normalize import Normalization
from medcode.model.text.rules import (
    END,
    EOS,
    NUM,
    YEAR,
    PhraseTrie,
    load_json_resource,
    resource_stamp,
)

CONTEXT_FACTORY = "medcode_context_v1"
DIRECTIONS = frozenset({"FORWARD", "BACKWARD", "BIDIRECTIONAL", "PSEUDO", "TERMINATE"})
_SLOT_RE = re.compile(r"\{([A-Z]+)\}")
_PLACEHOLDERS = {NUM: "7", YEAR: "1999", END: "\u00a7"}


@dataclass(frozen=True)
class ContextRule:
    """One trigger literal with what it does."""

    literal: str
    direction: str
    categories: tuple[str, ...] = ()
    clause: bool = False
    max_scope: int | None = None
    exclude_types: frozenset[str] = frozenset()
    terminates: frozenset[str] = frozenset()
    """For TERMINATE rules: the categories whose scopes it ends (empty: all)."""
    closes: bool = False
    """For TERMINATE rules: the scope ends after the rule's words, not before (see `ConTextComponent`)."""
    clause_verb: bool = False
    """For TERMINATE rules: a finite verb, so the words since the last comma are a new clause's subject."""
    object_scope: bool = False
    """The trigger's scope is its object ("negative for X", "denies X"): it never runs into a new clause."""

    def ends(self, category: str) -> bool:
        return self.direction == "TERMINATE" and (not self.terminates or category in self.terminates)


@dataclass
class ContextRules:
    trie: PhraseTrie[ContextRule]
    cross_termination: dict[str, frozenset[str]]
    break_tokens: frozenset[str]
    clause_tokens: frozenset[str]
    conflicts: list[tuple[str, str]]
    suppress: dict[str, frozenset[str]] = field(default_factory=dict)
    coordinators: frozenset[str] = frozenset()
    """Words that make a list one coordinated object of the negation ("or", "nor"): no closing inside it."""
    version: str = ""
    rules: list[ContextRule] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)
    """Each rule's literal as the folded tokens it matches (what a model pack stores: `tokens=` of `load`)."""

    @classmethod
    def load(
        cls,
        tokenizer: Tokenizer,
        normalization: Normalization,
        name: str = "context_rules.json",
        tokens: Sequence[Sequence[str]] | None = None,
    ) -> ContextRules:
        """The rules of a data file; `tokens`, when given, are the literals already tokenised (one list per
        expanded literal, as `ContextRules.tokens` of the same files), which skips the tokenizer."""
        data = load_json_resource(name)
        slots: dict[str, list[str]] = data.get("slots", {})
        trie: PhraseTrie[ContextRule] = PhraseTrie()
        rules: list[ContextRule] = []
        for group in data["rules"]:
            direction = group["direction"]
            if direction not in DIRECTIONS:
                raise ValueError(f"context rule direction {direction!r} is not one of {sorted(DIRECTIONS)}")
            for literal in _expand_slots(group["literals"], slots):
                rules.append(
                    ContextRule(
                        literal=literal,
                        direction=direction,
                        categories=tuple(group.get("categories", ())),
                        clause=bool(group.get("clause", False)),
                        max_scope=group.get("max_scope"),
                        exclude_types=frozenset(group.get("exclude_types", ())),
                        terminates=frozenset(group.get("terminates", ())),
                        closes=bool(group.get("closes", False)),
                        clause_verb=bool(group.get("clause_verb", False)),
                        object_scope=bool(group.get("object_scope", False)),
                    )
                )
        if tokens is None or len(tokens) != len(rules):
            tokens = literal_tokens(tokenizer, normalization, [r.literal for r in rules])
        token_lists = [list(t) for t in tokens]
        for rule, words in zip(rules, token_lists, strict=True):
            if words:
                trie.add(words, rule)
        return cls(
            trie=trie,
            cross_termination={k: frozenset(v) for k, v in data.get("cross_termination", {}).items()},
            break_tokens=frozenset(data.get("break_tokens", ())),
            clause_tokens=frozenset(data.get("clause_tokens", ())),
            conflicts=[(a, b) for a, b in data.get("conflicts", [])],
            suppress={k: frozenset(v) for k, v in data.get("suppress", {}).items()},
            coordinators=frozenset(data.get("coordinators", ())),
            version=str(data.get("version", "")),
            rules=rules,
            tokens=token_lists,
        )


def _expand_slots(literals: Iterable[str], slots: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for literal in literals:
        names = _SLOT_RE.findall(literal)
        if not names:
            out.append(literal)
            continue
        for values in itertools.product(*(slots[n] for n in names)):
            text = literal
            for slot, value in zip(names, values, strict=True):
                text = text.replace("{" + slot + "}", value, 1)
            out.append(" ".join(text.split()))
    return list(dict.fromkeys(out))


def literal_tokens(
    tokenizer: Tokenizer, normalization: Normalization, literals: Sequence[str]
) -> list[list[str]]:
    """Trigger literals as the folded tokens they match, with <NUM>/<YEAR> wildcards kept."""
    reverse = {sample: placeholder for placeholder, sample in _PLACEHOLDERS.items()}
    texts = []
    for literal in literals:
        text = literal
        for placeholder, sample in _PLACEHOLDERS.items():
            text = text.replace(placeholder, f" {sample} " if placeholder != NUM else sample)
        texts.append(text)
    return [
        [reverse.get(t.text, normalization.fold(t.text)) for t in doc if not t.is_space]
        for doc in tokenizer.pipe(texts, batch_size=1000)
    ]


@dataclass
class _Trigger:
    start: int
    end: int
    rule: ContextRule


class ConTextComponent:
    """Pipeline step: set `_.is_negated` ... `_.is_hypothetical` on every mention span."""

    def __init__(self, rules: ContextRules, normalization: Normalization) -> None:
        register_extensions()
        self.rules = rules
        self.normalization = normalization

    # triggers and scopes ----------------------------------------------------------------------------------
    def triggers(self, words: Sequence[str]) -> list[_Trigger]:
        """Every rule matched in a sentence's folded words (pseudo-triggers left out, their words used)."""
        out: list[_Trigger] = []
        for start, end, rules in self.rules.trie.find_all(words):
            out.extend(_Trigger(start, end, rule) for rule in rules if rule.direction != "PSEUDO")
        return out

    def _stops_forward(self, trigger: _Trigger, category: str, other: _Trigger, broke: bool) -> bool:
        if other.rule.ends(category):
            return True
        if not broke or category in other.rule.categories:
            return False
        cross = self.rules.cross_termination.get(category, frozenset())
        return any(c in cross for c in other.rule.categories)

    def _coordinated(self, words: Sequence[str], start: int, limit: int) -> bool:
        """True when an "or"/"nor" lies ahead in the clause: the words from `start` on are still list items."""
        for word in words[start:limit]:
            if word in (";", EOS):
                return False
            if word in self.rules.coordinators:
                return True
        return False

    def forward_scope(
        self,
        words: Sequence[str],
        trigger: _Trigger,
        category: str,
        by_start: dict[int, list[_Trigger]],
        by_end: dict[int, list[_Trigger]] | None = None,
    ) -> tuple[int, int]:
        limit = len(words)
        if trigger.rule.max_scope is not None:
            limit = min(limit, trigger.end + int(trigger.rule.max_scope))
        position = trigger.end
        broke = False
        last_comma: int | None = None
        while position < limit:
            word = words[position]
            if trigger.rule.clause and word in self.rules.clause_tokens:
                break
            closers = [
                other
                for other in (by_end or {}).get(position, ())
                if other.rule.closes and other.rule.ends(category) and other.start >= trigger.end
            ]
            if closers and not self._coordinated(words, position, limit):
                break
            stops = [
                other
                for other in by_start.get(position, ())
                if not other.rule.closes and self._stops_forward(trigger, category, other, broke)
            ]
            if stops:
                if (
                    trigger.rule.object_scope
                    and last_comma is not None
                    and any(o.rule.clause_verb for o in stops)
                ):
                    position = last_comma
                break
            if word == ",":
                last_comma = position
            if word in self.rules.break_tokens:
                broke = True
            position += 1
        return trigger.end, position

    def backward_scope(
        self, words: Sequence[str], trigger: _Trigger, category: str, by_end: dict[int, list[_Trigger]]
    ) -> tuple[int, int]:
        limit = 0
        if trigger.rule.max_scope is not None:
            limit = max(0, trigger.start - int(trigger.rule.max_scope))
        position = trigger.start
        broke = False
        while position > limit:
            word = words[position - 1]
            if trigger.rule.clause and word in self.rules.clause_tokens:
                break
            if any(
                self._stops_forward(trigger, category, other, broke) for other in by_end.get(position, ())
            ):
                break
            if word in self.rules.break_tokens:
                broke = True
            position -= 1
        return position, trigger.start

    # mentions ---------------------------------------------------------------------------------------------
    def assert_sentence(
        self,
        words: Sequence[str],
        mentions: list[tuple[int, int, str]],
    ) -> list[dict[str, int]]:
        """For mentions given as (first word, end word exclusive, type): category -> trigger distance."""
        found: list[dict[str, int]] = [{} for _ in mentions]
        if not mentions:
            return found
        words = [*words, EOS]  # lets '<END>' literals ("fever: no") match at the sentence end
        triggers = self.triggers(words)
        by_start: dict[int, list[_Trigger]] = {}
        by_end: dict[int, list[_Trigger]] = {}
        for trigger in triggers:
            by_start.setdefault(trigger.start, []).append(trigger)
            by_end.setdefault(trigger.end, []).append(trigger)
        for trigger in triggers:
            direction = trigger.rule.direction
            if direction == "TERMINATE":
                continue
            for category in trigger.rule.categories:
                scopes: list[tuple[int, int, bool]] = []
                if direction in ("FORWARD", "BIDIRECTIONAL"):
                    scopes.append((*self.forward_scope(words, trigger, category, by_start, by_end), True))
                if direction in ("BACKWARD", "BIDIRECTIONAL"):
                    scopes.append((*self.backward_scope(words, trigger, category, by_end), False))
                for index, (first, end, kind) in enumerate(mentions):
                    if kind in trigger.rule.exclude_types or _inside(trigger, first, end):
                        continue
                    for scope_start, scope_end, forward in scopes:
                        if first < scope_end and end > scope_start:
                            distance = max(0, first - trigger.end) if forward else max(0, trigger.start - end)
                            previous = found[index].get(category)
                            if previous is None or distance < previous:
                                found[index][category] = distance
        return [self.resolve(flags) for flags in found]

    def resolve(self, flags: dict[str, int]) -> dict[str, int]:
        """Settle conflicting categories (nearer trigger wins) and suppressed ones."""
        for a, b in self.rules.conflicts:
            if a in flags and b in flags:
                del flags[b if flags[a] <= flags[b] else a]
        for key, suppressed in self.rules.suppress.items():
            if key in flags:
                for category in suppressed:
                    flags.pop(category, None)
        return flags

    def __call__(self, doc: Doc) -> Doc:
        spans = list(doc.spans.get(MENTIONS_KEY, []))
        if not spans:
            return doc
        headers: list[bool] | None = doc._.header_tokens
        fold = self.normalization.fold
        sentence_ranges = _sentence_ranges(doc)
        spans.sort(key=lambda s: s.start)
        cursor = 0
        for sent_start, sent_end in sentence_ranges:
            members: list[Span] = []
            while cursor < len(spans) and spans[cursor].start < sent_end:
                if spans[cursor].start >= sent_start:
                    members.append(spans[cursor])
                cursor += 1
            if not members:
                continue
            positions: dict[int, int] = {}
            words: list[str] = []
            for i in range(sent_start, sent_end):
                token = doc[i]
                if token.is_space or (headers is not None and headers[i]):
                    continue
                positions[i] = len(words)
                words.append(fold(token.text))
            mentions: list[tuple[int, int, str]] = []
            for span in members:
                inside = [positions[i] for i in range(span.start, span.end) if i in positions]
                if inside:
                    mentions.append((inside[0], inside[-1] + 1, span.label_))
                else:
                    mentions.append((0, 0, span.label_))
            for span, flags in zip(members, self.assert_sentence(words, mentions), strict=True):
                self._set(span, {CATEGORY_TO_ASSERTION[c] for c in flags})
        self._apply_sections(doc, spans)
        return doc

    @staticmethod
    def _set(span: Span, assertions: set[str]) -> None:
        for name, attr in ASSERTION_ATTRS.items():
            setattr(span._, attr, name in assertions)

    def _apply_sections(self, doc: Doc, spans: list[Span]) -> None:
        sections = doc._.sections or []
        if not any(s.assertion for s in sections):
            return
        for span in spans:
            start_char = span.start_char
            for section in sections:
                if section.header_start <= start_char < section.end and section.assertion:
                    for name, value in section.assertion.items():
                        if value and name in ASSERTION_ATTRS:
                            setattr(span._, ASSERTION_ATTRS[name], True)
            for key, suppressed in self.rules.suppress.items():
                if getattr(span._, ASSERTION_ATTRS[CATEGORY_TO_ASSERTION[key]]):
                    for category in suppressed:
                        setattr(span._, ASSERTION_ATTRS[CATEGORY_TO_ASSERTION[category]], False)


def _inside(trigger: _Trigger, first: int, end: int) -> bool:
    """True when a trigger sits inside a mention after its first word: part of the condition's own name
    ("concussion without loss of consciousness", "diabetes without complications"), not a cue about it."""
    return first < trigger.start and trigger.end <= end


def _sentence_ranges(doc: Doc) -> list[tuple[int, int]]:
    starts = [t.i for t in doc if t.is_sent_start] or [0]
    if starts[0] != 0:
        starts.insert(0, 0)
    return [(s, e) for s, e in zip(starts, [*starts[1:], len(doc)], strict=True)]


@Language.factory(
    CONTEXT_FACTORY,
    default_config={
        "rules": "context_rules.json",
        "normalization": "normalization.json",
        "abbreviations": "",
        "tokens": "",
    },
)
def make_context(
    nlp: Language, name: str, rules: str, normalization: str, abbreviations: str, tokens: str
) -> ConTextComponent:
    """`tokens`: a JSON file with the rules' literals already tokenised (a model pack's
    `text/rules/context_tokens.json`, written for these very rule files); empty: tokenise them here."""
    norm = Normalization.load(normalization, abbreviations)
    stamps = (
        resource_stamp(rules),
        resource_stamp(normalization),
        resource_stamp(tokens) if tokens else None,
    )
    key = (*stamps, abbreviations)
    if key not in _RULES_CACHE:
        stored = json.loads(Path(tokens).read_text(encoding="utf-8"))["tokens"] if tokens else None
        _RULES_CACHE[key] = ContextRules.load(nlp.tokenizer, norm, rules, stored)
    return ConTextComponent(_RULES_CACHE[key], norm)


_RULES_CACHE: dict[tuple[object, ...], ContextRules] = {}
"""Compiled rules per resource names (compiling tokenizes thousands of literals)."""
