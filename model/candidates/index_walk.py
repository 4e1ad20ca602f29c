"""The Alphabetic Index walk as a candidate source: per present mention, the code a coder reaches in the
index from the mention's main term and the words the note gives, verified in the tabular.

For each present mention of the text pipeline: the mention's words name the main term ("fx" ->
"Fracture"), the words of the mention and of its sentence choose subterms (site, type, acuity), and the
words of every present mention of the encounter apply "with" / "in" subterms (Guidelines I.A.15). A
negated, family or hypothetical mention walks too, but its code is recorded as absent (it never supports a
code). The index code is then checked in the packaged ICD-10-CM tabular (`data.codesystems.CodeSets`):
an unknown code is dropped; a "-" code or a subcategory is completed down the tabular with the side the
note documents (right / left / bilateral, "R" / "L" / "b/l") and the child the note's words support, else
its "unspecified" child; a code complete but for its 7th character stays so, and the rules step
(`model.rules.seventh`) adds the character from the encounter (initial / subsequent / sequela) with the
placeholder X. Two walk codes that exclude each other (Excludes1) keep only the one whose walk used more of the
note's words (then the deeper one).

Hits carry source "index_walk": score = share of the mention's words the path used, `term_coverage` = the
walk's depth (levels below the main term, capped at 4, / 4), `rank` = 0 for the best head of the mention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from medcode.data.codesystems import CodeSets, load_code_sets
from medcode.data.icd10cm import ref_covers
from medcode.data.index_walk import NOT, IndexTree, WalkHit
from medcode.data.types import Mention
from medcode.model.rules.laterality import SIDES, note_sides
from medcode.model.rules.terms import content_words, normalize_words, title_support

SOURCE = "index_walk"
MAX_DEPTH = 4
_WALKED_TYPES = frozenset({"condition", "sign_symptom", "injury", "other"})
_MULTIPLE = re.compile(
    r"\bx\s?[2-9]\b"  # "rib fractures x2"
    r"|\b(?:two|three|four|five|several|multiple|[2-9])\s+(?:[\w-]+\s+){0,2}?(?:fractures|fxs|ribs)\b"
    r"|\bribs\s+\d+\s*(?:-|to|and|&)\s*\d+"  # "ribs 5-6"
    r"|\bribs?\s+(?:fractures|fxs)\b",  # "rib fractures": more than one rib
    re.IGNORECASE,
)
"""A count of injuries in the sentence: the index's "multiple" subterm ("Fracture, rib, multiple")."""


_STAGED = frozenset({"stage", "grade"})
"""Words whose value is the word after them: "stage 3a" gives "stage:3a" besides "stage" and "3a"."""


def words(text: str) -> frozenset[str]:
    """The one normaliser of both sides (note and index titles): the rules' content words, and a stage or
    grade with its value as one word, so that "Disease, kidney, chronic, stage 2" needs "stage 2" said
    together (the "2" of "T2DM" beside "CKD stage 3a" is not a stage)."""
    found = content_words(text)
    if found & _STAGED:
        seq = normalize_words(text)
        found |= {f"{a}:{b}" for a, b in pairwise(seq) if a in _STAGED}
    if "non" in found:
        # "non-ST" is one word in a title and in a note, two where an abbreviation is spelled out
        # ("NSTEMI" -> "non st elevation ..."): joined, the "st" of a non-ST infarction is no ST elevation
        seq = normalize_words(text)
        joined = [(a, b) for a, b in pairwise(seq) if a == "non"]
        rest = [w for i, w in enumerate(seq) if w != "non" and (i == 0 or seq[i - 1] != "non")]
        found = (found - {"non"} - {b for _, b in joined if b not in rest}) | {a + b for a, b in joined}
    return found


_ABSENT = re.compile(r"\b(?:without|w/o|no|denies|negative for)\b([^.;,:\n]*)", re.IGNORECASE)


def split_absent(text: str) -> tuple[str, frozenset[str]]:
    """The text without its "without X" / "no X" stretches, and X's words marked absent (data.index_walk.NOT):
    a condition said to be absent neither chooses a subterm nor applies a "with" subterm."""
    absent = frozenset(NOT + w for m in _ABSENT.finditer(text) for w in words(m.group(1)))
    return _ABSENT.sub(" ", text), absent


def count_words(text: str) -> frozenset[str]:
    """ "multiple" when the text counts more than one injury of a site ("fractures x2", "ribs 5-6")."""
    return frozenset({"multiple"}) if _MULTIPLE.search(text) else frozenset()


def side_words(text: str) -> frozenset[str]:
    """Sides a text documents, with the short forms notes use before a body part ("R distal radius")."""
    found = {w for w in words(text) if w in SIDES} | note_sides(text)
    if {"right", "left"} <= found:
        found.add("bilateral")
    # with what each side implies ("right" -> "unilateral"), as the index titles' words carry it
    return frozenset(found).union(*(words(side) for side in found))


@dataclass(frozen=True, slots=True)
class WalkCode:
    """One mention's walk, verified: the code to suggest and how it was reached."""

    mention: int
    code: str
    walk: WalkHit
    score: float
    rank: int

    @property
    def depth_share(self) -> float:
        return min(self.walk.depth, MAX_DEPTH) / MAX_DEPTH


class IndexWalker:
    """Walks the index for the mentions of an encounter (one per model, built from the pack's tree)."""

    def __init__(self, tree: IndexTree, code_sets: CodeSets | None = None, per_mention: int = 2) -> None:
        self.tree = tree
        self.code_sets = code_sets or load_code_sets()
        self.per_mention = per_mention
        self._refs: dict[str, tuple[str, ...]] = {}

    def walk_mentions(
        self, mentions: list[Mention], sentences: list[str], clauses_from: int = -1
    ) -> list[WalkCode]:
        """Verified walk codes for `mentions` (sentence text of each in `sentences`). Mentions from
        `clauses_from` on are clauses (a stretch of the note, not a recognised condition): they keep a walk
        only when a subterm below the main term applied. The words of present pipeline mentions are the
        encounter's documented conditions for "with" subterms."""
        n_pipeline = len(mentions) if clauses_from < 0 else clauses_from
        context = frozenset().union(
            *(
                words(split_absent(_mention_text(m))[0])
                for m in mentions[:n_pipeline]
                if m.assertion.is_present
            )
        )
        out: list[WalkCode] = []
        procedures = [m for m in mentions[:n_pipeline] if m.type == "procedure"]
        for i, mention in enumerate(mentions):
            if mention.type not in _WALKED_TYPES:
                continue
            if i >= n_pipeline and any(_overlap(mention, p) for p in procedures):
                continue  # a clause telling what was done ("radical orchiectomy") names no condition
            said, absent = split_absent(_mention_text(mention))
            own = words(said)
            if not own:
                continue
            sentence, absent_nearby = split_absent(sentences[i])
            sides = side_words(sentence or said)
            modifiers = own | words(sentence) | sides | count_words(sentence or said) | absent | absent_nearby
            hits = self.tree.walk(own, modifiers, context | modifiers, words)
            rank = 0
            for hit in hits[: self.per_mention]:
                if i >= n_pipeline and hit.depth < 1:
                    continue
                code = self.verify(hit, modifiers)
                if code is None or (i >= n_pipeline and code.startswith("Z")):
                    # status and encounter codes ("physical examination" -> Z00.00) need more than a
                    # clause's words: the rules' Z-code tables decide them
                    continue
                head = words(hit.path[0].split(",")[0])
                # a clause holds more than the condition: only the path's own words count there
                score = 1.0 if i >= n_pipeline else len((hit.matched | head) & own) / len(own)
                out.append(WalkCode(i, code, hit, round(min(1.0, 0.5 + 0.5 * score), 6), rank))
                rank += 1
        return self._drop_excluded(out)

    # the tabular ---------------------------------------------------------------------------------------
    def verify(self, hit: WalkHit, note_words: frozenset[str]) -> str | None:
        """The tabular code for an index code: billable, or complete but for its 7th character; a header
        is completed with the child the note supports (side first), else its unspecified child; None for
        a code the tabular does not know."""
        return complete(self.code_sets, hit.code_prefix, note_words)

    def _excludes(self, a: str, b: str) -> bool:
        """Either code's Excludes1 notes (its own, its ancestors', its block's, its chapter's) cover the other."""
        return any(ref_covers(ref, y) for x, y in ((a, b), (b, a)) for ref in self._excludes1(x))

    def _excludes1(self, code: str) -> tuple[str, ...]:
        refs = self._refs.get(code)
        if refs is None:
            entry = self.code_sets.icd10cm.resolve(code)
            refs = (
                ()
                if entry is None
                else tuple(self.code_sets.icd10cm.applicable_refs(entry.code, "excludes1"))
            )
            self._refs[code] = refs
        return refs

    def _drop_excluded(self, codes: list[WalkCode]) -> list[WalkCode]:
        icd = self.code_sets.icd10cm
        keep: list[WalkCode] = []
        for wc in sorted(codes, key=lambda w: (-len(w.walk.matched), -w.walk.depth, -w.score, w.mention)):
            entry = icd.resolve(wc.code)
            if entry is None:
                continue
            if any(self._excludes(k.code, wc.code) for k in keep if k.code != wc.code):
                continue
            keep.append(wc)
        return sorted(keep, key=lambda w: (w.mention, w.rank))


def complete(code_sets: CodeSets, code: str, note_words: frozenset[str]) -> str | None:
    """Down the tabular from `code` to a billable code, or one that lacks only its 7th character."""
    icd = code_sets.icd10cm
    entry = icd.resolve(code)
    if entry is None:
        return None
    entry = _documented_side(icd, entry, note_words)
    while not entry.billable and not icd.needs_seventh(entry):
        children = [icd[c] for c in icd.children(entry.code)]
        children = [c for c in children if c.seventh_char is None]
        if not children:
            break
        choice = _choose(children, entry.title, note_words)
        if choice is None:
            break
        entry = choice
    return _documented_side(icd, entry, note_words).code


_SIDE_SLOT = re.compile(r"\b(right|left|bilateral|unspecified)\b")


def _documented_side(icd, entry, note_words: frozenset[str]):  # type: ignore[no-untyped-def]
    """The sibling naming the side the note documents, for a code of an unspecified side ("laceration
    without foreign body of unspecified forearm" + "L" -> ... of left forearm); else the code itself."""
    sides = note_words & frozenset(SIDES)
    title = entry.title.lower()
    if not sides or entry.parent is None or "unspecified" not in title:
        return entry
    key = _SIDE_SLOT.sub("<side>", title)
    for code in icd.children(entry.parent):
        sibling = icd[code]
        sib = sibling.title.lower()
        if sibling.seventh_char is None and _SIDE_SLOT.sub("<side>", sib) == key:
            named = frozenset(w for w in content_words(sib) if w in SIDES)
            if named and named == sides - {"unilateral"}:
                return sibling
    return entry


def _choose(children: list, parent_title: str, note_words: frozenset[str]):  # type: ignore[no-untyped-def]
    """The child the note supports best (a documented side first), else the unspecified one."""
    sides = note_words & frozenset(SIDES)
    scored = []
    for child in children:
        support = title_support(child.title, note_words, given=content_words(parent_title))
        if support.violated:
            continue
        title_sides = frozenset(w for w in content_words(child.title) if w in SIDES)
        side_ok = 1 if title_sides and title_sides <= sides else (0 if not title_sides else -1)
        scored.append((side_ok, support.matched, -support.missing, child))
    if not scored:
        return None
    scored.sort(key=lambda s: s[:3], reverse=True)
    best = scored[0]
    ties = [s for s in scored if s[:3] == best[:3]]
    if best[0] >= 0 and (best[1] > 0 or best[0] > 0) and len(ties) == 1:
        return best[3]
    if len(ties) > 1 and "nondisplaced" not in note_words:
        # a fracture not documented as displaced or nondisplaced is coded displaced (Guidelines I.C.19.c.1)
        displaced = [t for t in ties if "nondisplaced" not in content_words(t[3].title)]
        if len(displaced) == 1 and best[0] >= 0:
            return displaced[0][3]
    unspecified = [c for c in children if "unspecified" in c.title.lower()]
    if len(unspecified) == 1:
        return unspecified[0]
    return best[3] if len(ties) == 1 else None


def _overlap(a: Mention, b: Mention) -> bool:
    return a.document_id == b.document_id and a.start < b.end and b.start < a.end


def _mention_text(mention: Mention) -> str:
    extra = [v for k, v in sorted(mention.attributes.items()) if k != "source" and v]
    return " ".join([mention.text, *extra])
