"""The ICD-10-CM Alphabetic Index as a tree, walked the way a coder walks it.

A coder looks up the main term (the condition: "Fracture"), then goes down the indented subterms that the
documentation supports (site, type, acuity: "radius" / "lower end"), follows "see" redirects, applies a
"with" / "in" / "due to" subterm when the other condition is documented anywhere in the encounter
(ICD-10-CM Official Guidelines I.A.15), ignores nonessential modifiers in parentheses, and takes the code
of the deepest subterm reached, or the main term's default code when no subterm applies. A code ending in
"-" needs more characters from the tabular; that completion (laterality, 7th character) is the caller's.
The Neoplasm table is walked by site with the column the behaviour names (malignant primary / secondary,
in situ, benign, uncertain, unspecified); the Drug table is kept by substance and intent column.

`IndexTree` is plain data (`to_json` / `from_json` / `loads`) so a model pack carries it; a loaded tree
decodes a main term's subtree, and the Neoplasm and Drug tables, on first use (a note walks a few of the
~8,000 main terms), and writes back the same JSON whether decoded or not. Word matching is the caller's:
`walk` takes a `words` function (text -> normalised content words) so this module stays free of the text
pipeline; the same function must normalise the mention and the index titles.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, overload

import numpy as np

from medcode.data.icd10cm_index import IndexTerm

Words = Callable[[str], frozenset[str]]

CONNECTORS = frozenset({"with", "in", "due to", "in (due to)", "with or due to", "associated with"})
"""Subterms that only join the next level: the condition below them must be documented in the encounter."""
FILLER = frozenset(
    {
        "end",
        "part",
        "region",
        "site",
        "portion",
        "specified",
        "nec",
        "nos",
        "other",
        "type",
        "involvement",
        "only",
    }
)
"""Words of subterm titles a note need not repeat ("distal end" is documented by "distal")."""
NEOPLASM_BEHAVIOUR: dict[str, tuple[str, ...]] = {
    "MalignantSecondary": ("metastatic", "metastasis", "secondary", "mets"),
    "CaInSitu": ("situ",),
    "Benign": ("benign", "adenoma", "lipoma", "fibroma", "hemangioma"),
    "UncertainBehavior": ("uncertain",),
    "MalignantPrimary": ("malignant", "cancer", "carcinoma", "malignancy", "sarcoma", "adenocarcinoma"),
}
"""Words naming a neoplasm's behaviour, checked in this order (a metastatic carcinoma is secondary)."""
MAX_REDIRECTS = 3
NOT = "not:"
"""Prefix of a modifier word the note documents as absent ("without LOC" -> not:loss, not:consciousness):
it can only choose a "without" subterm."""
_BARE = frozenset({"and", "or", "with", "in", "of"})


@dataclass(slots=True)
class IndexNode:
    """One line of the index: a main term or subterm, with its code, cross-references and table cells."""

    title: str
    code: str | None = None
    see: str = ""
    see_also: str = ""
    nonessential: str = ""
    cells: dict[str, str] = field(default_factory=dict)
    """Table rows only: column ("MalignantPrimary", "AdverseEffect", ...) -> code."""
    children: list[IndexNode] = field(default_factory=list)

    def child(self, title: str) -> IndexNode | None:
        """The child a reference part names: its title, or one of its comma-separated alternatives."""
        wanted = _plain(title)
        exact = next((c for c in reversed(self.children) if _plain(c.title) == wanted), None)
        if exact is not None:
            return exact
        return next(
            (c for c in reversed(self.children) if wanted in (a.strip() for a in _plain(c.title).split(","))),
            None,
        )

    @property
    def label(self) -> str:
        """The title to match: the nonessential words of a bare connector line ("and" + "(on) chronic")
        carry its meaning in the flattened index."""
        if _plain(self.title) in _BARE and self.nonessential:
            return f"{self.title} {re.sub(r'[()]', ' ', self.nonessential)}"
        return self.title

    def size(self) -> int:
        return 1 + sum(c.size() for c in self.children)

    def to_json(self) -> list[Any]:
        return [
            self.title,
            self.code or "",
            self.see,
            self.see_also,
            self.nonessential,
            self.cells,
            [c.to_json() for c in self.children],
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> IndexNode:
        title, code, see, see_also, nemod, cells, children = data
        return cls(
            str(title),
            str(code) or None,
            str(see),
            str(see_also),
            str(nemod),
            {str(k): str(v) for k, v in cells.items()},
            [cls.from_json(c) for c in children],
        )


RawNode = bytes | list[Any]
"""A node as `IndexNode.to_json` writes it: JSON text not parsed yet, or the parsed list."""


def _parsed(raw: RawNode) -> Any:
    return json.loads(raw) if isinstance(raw, bytes) else raw


class MainTerms(Sequence[IndexNode]):
    """The main terms in index order, each decoded from its JSON on first access (`self[i]`); the titles,
    which choose the main terms a mention names, are at hand without decoding (`title(i)`)."""

    __slots__ = ("_items", "_titles")

    def __init__(self, titles: list[str], items: Iterable[IndexNode | RawNode]) -> None:
        self._titles = titles
        self._items = list(items)
        if len(titles) != len(self._items):
            raise ValueError(f"{len(titles)} main term titles for {len(self._items)} main terms")

    @classmethod
    def of(cls, nodes: Iterable[IndexNode]) -> MainTerms:
        """Main terms already decoded (a tree built from the index files)."""
        decoded = list(nodes)
        return cls([n.title for n in decoded], decoded)

    def title(self, i: int) -> str:
        return self._titles[i]

    @property
    def titles(self) -> Sequence[str]:
        return self._titles

    def decoded(self) -> int:
        """How many main terms are decoded so far."""
        return sum(1 for item in self._items if isinstance(item, IndexNode))

    def _node(self, i: int) -> IndexNode:
        item = self._items[i]
        if isinstance(item, IndexNode):
            return item
        node = self._items[i] = IndexNode.from_json(_parsed(item))
        return node

    @overload
    def __getitem__(self, i: int) -> IndexNode: ...
    @overload
    def __getitem__(self, i: slice) -> list[IndexNode]: ...
    def __getitem__(self, i: int | slice) -> IndexNode | list[IndexNode]:
        if isinstance(i, slice):
            return [self._node(j) for j in range(len(self._items))[i]]
        return self._node(range(len(self._items))[i])

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[IndexNode]:
        return (self._node(i) for i in range(len(self._items)))

    def to_json(self) -> list[Any]:
        """Each main term as `IndexNode.to_json` writes it (an undecoded one: its JSON as it was read)."""
        return [item.to_json() if isinstance(item, IndexNode) else _parsed(item) for item in self._items]


@dataclass(frozen=True, slots=True)
class WalkHit:
    """Where a walk ended: the path taken (main term first), the code printed there, and how it got there."""

    path: tuple[str, ...]
    code: str
    depth: int
    """Subterm levels below the main term that the note supported (0: the main term's default code)."""
    matched: frozenset[str]
    """Modifier words the path used."""
    redirects: tuple[str, ...] = ()
    """'see' references followed on the way."""
    source: str = "index"
    """"index" or "neoplasm"."""

    @property
    def code_prefix(self) -> str:
        return self.code.rstrip("-").rstrip(".")

    @property
    def incomplete(self) -> bool:
        """The index code ends in "-": the tabular gives the remaining characters."""
        return self.code.endswith("-")


@lru_cache(maxsize=262144)
def _plain(title: str) -> str:
    return " ".join(re.sub(r"\([^()]*\)", " ", title).lower().split())


class IndexTree:
    """The alphabetic index (main terms and their subterm trees) and the Neoplasm and Drug tables."""

    def __init__(
        self,
        mains: Sequence[IndexNode],
        neoplasm: IndexNode | None = None,
        drugs: list[IndexNode] | None = None,
        version: str = "",
    ) -> None:
        self.mains = mains if isinstance(mains, MainTerms) else MainTerms.of(mains)
        self._neoplasm: IndexNode | None = neoplasm
        self._drugs: list[IndexNode] | None = drugs or []
        # a loaded tree's tables as read, decoded into the two above on first use (kept: threads may race)
        self._raw_neoplasm: RawNode | None = None
        self._raw_drugs: RawNode = []
        self.version = version
        self._titles_plain: dict[str, list[int]] | None = None
        self._heads: dict[int, tuple[Words, dict[str, list[int]], list[frozenset[str]]]] = {}
        self._sizes: dict[int, int] = {}
        self._words_of: Words | None = None
        self._title_words: dict[str, tuple[frozenset[str], ...]] = {}
        self._child_words: dict[int, tuple[IndexNode, list[int], dict[str, list[int]]]] = {}

    @property
    def neoplasm(self) -> IndexNode | None:
        """The Neoplasm table (its main term and sites), decoded on first use."""
        if self._neoplasm is None and self._raw_neoplasm is not None:
            self._neoplasm = IndexNode.from_json(_parsed(self._raw_neoplasm))
        return self._neoplasm

    @property
    def drugs(self) -> list[IndexNode]:
        """The Table of Drugs and Chemicals by substance, decoded on first use."""
        if self._drugs is None:
            self._drugs = [IndexNode.from_json(d) for d in _parsed(self._raw_drugs)]
        return self._drugs

    @property
    def _by_title(self) -> dict[str, list[int]]:
        """Main term indices by plain title, and by the plain part before the first comma."""
        if self._titles_plain is None:
            by_title: dict[str, list[int]] = defaultdict(list)
            for i, title in enumerate(self.mains.titles):
                by_title[_plain(title)].append(i)
                by_title[_plain(title.split(",")[0])].append(i)
            self._titles_plain = dict(by_title)
        return self._titles_plain

    # serialisation -----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The tree as JSON data; parts not decoded yet are written as they were read (same JSON)."""
        neoplasm: Any = None
        if self._neoplasm is not None:
            neoplasm = self._neoplasm.to_json()
        elif self._raw_neoplasm is not None:
            neoplasm = _parsed(self._raw_neoplasm)
        drugs = [d.to_json() for d in self._drugs] if self._drugs is not None else _parsed(self._raw_drugs)
        return {"version": self.version, "mains": self.mains.to_json(), "neoplasm": neoplasm, "drugs": drugs}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IndexTree:
        """The tree from `to_json` data; each main term and table is decoded on first use."""
        mains = list(data.get("mains", []))
        if not all(isinstance(m, list) and m for m in mains):
            raise TypeError("each main term of an index tree is a JSON list, its title first")
        neoplasm = data.get("neoplasm")
        drugs = data.get("drugs", [])
        return cls._lazy(
            MainTerms([str(m[0]) for m in mains], mains),
            neoplasm or None,
            list(drugs),
            str(data.get("version", "")),
        )

    @classmethod
    def loads(cls, text: bytes) -> IndexTree:
        """The tree from the JSON text `to_json` was dumped to, parsing only the main terms' titles now:
        the text of each main term and table is kept and parsed on first use (ValueError when the text is
        not JSON)."""
        split = _split_tree_json(text)
        if split is None:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError(f"an index tree is a JSON object, not {type(data).__name__}")
            return cls.from_json(data)
        version, titles, mains, neoplasm, drugs = split
        return cls._lazy(MainTerms(titles, list(mains)), neoplasm, drugs, version)

    @classmethod
    def _lazy(cls, mains: MainTerms, neoplasm: RawNode | None, drugs: RawNode, version: str) -> IndexTree:
        tree = cls(mains, None, None, version)
        tree._raw_neoplasm, tree._raw_drugs, tree._drugs = neoplasm, drugs, None
        return tree

    def __len__(self) -> int:
        return len(self.mains)

    # main terms --------------------------------------------------------------------------------------
    def _head_table(self, words: Words) -> tuple[dict[str, list[int]], list[frozenset[str]]]:
        cached = self._heads.get(id(words))
        if cached is not None and cached[0] is words:
            return cached[1], cached[2]
        by_word: dict[str, list[int]] = defaultdict(list)
        heads: list[frozenset[str]] = []
        for i, title in enumerate(self.mains.titles):
            names, _ = _head_parts(title)
            heads.append(words(names[0]))
            for name in names:
                head = words(name)
                if head and i not in by_word[min(head)]:
                    by_word[min(head)].append(i)
        self._heads[id(words)] = (words, by_word, heads)
        return by_word, heads

    def main_terms(self, mention_words: frozenset[str], words: Words) -> list[int]:
        """Main terms whose head (the words before the first comma, or one of the other forms of that word
        the title lists: "Infarct, infarction") the mention's words all contain."""
        by_word, _ = self._head_table(words)
        found: set[int] = set()
        for word in mention_words:
            for i in by_word.get(word, ()):
                if any(words(name) <= mention_words for name in _head_parts(self.mains.title(i))[0]):
                    found.add(i)
        return sorted(found)

    def _size(self, i: int) -> int:
        if i not in self._sizes:
            self._sizes[i] = self.mains[i].size()
        return self._sizes[i]

    # the walk ----------------------------------------------------------------------------------------
    def walk(
        self,
        mention_words: frozenset[str],
        modifiers: frozenset[str],
        context: frozenset[str],
        words: Words,
    ) -> list[WalkHit]:
        """The best walk from each head the mention names (best first).

        `mention_words` name the main term (the mention's own words), `modifiers` choose subterms (the
        mention's and its sentence's words), `context` applies "with" / "in" / "due to" subterms (the
        words of every present mention of the encounter). Among main terms sharing a head ("Fracture,
        traumatic" / "Fracture, pathological") the one whose qualifiers the note documents wins, then the
        deeper walk, then the larger entry (the general one)."""
        by_head: dict[frozenset[str], tuple[tuple[int, int, int, int], WalkHit]] = {}
        _, heads = self._head_table(words)
        for i in self.main_terms(mention_words, words):
            main = self.mains[i]
            _, rest = _head_parts(main.title)
            qualifiers = [words(q) for q in rest]
            head = heads[i]
            unmatched = sum(1 for q in qualifiers if q and not (q <= modifiers | head))
            used = frozenset().union(*(q for q in qualifiers if q and q <= modifiers))
            hit = self._walk_main(main, modifiers, context, words, used)
            if hit is None:
                continue
            key = (-unmatched, len(hit.matched), hit.depth, self._size(i))
            current = by_head.get(head)
            if current is None or key > current[0]:
                by_head[head] = (key, hit)
        ranked = sorted(by_head.values(), key=lambda kv: (-len(kv[1].matched), -kv[1].depth))
        return [hit for _, hit in ranked]

    def _walk_main(
        self,
        main: IndexNode,
        modifiers: frozenset[str],
        context: frozenset[str],
        words: Words,
        used: frozenset[str],
    ) -> WalkHit | None:
        redirect = main.see or (main.see_also if not main.code else "")
        if redirect and not main.children:
            target = self.resolve(redirect)
            if target is None:
                return self._neoplasm_redirect(redirect, modifiers, words)
            node, path = target
            return self._descend(node, path, modifiers, context, words, used, 0, (redirect,))
        own = self._descend(main, (main.title,), modifiers, context, words, used, 0, ())
        if "neoplasm" in main.see_also.lower():
            # "Carcinoma - see also Neoplasm, by site, malignant": the table by site, unless a subterm
            # of the entry itself says more
            table = self._neoplasm_redirect(main.see_also, modifiers, words)
            if table is not None and (own is None or _better(table, own)):
                return table
        return own

    def _descend(
        self,
        node: IndexNode,
        path: tuple[str, ...],
        modifiers: frozenset[str],
        context: frozenset[str],
        words: Words,
        used: frozenset[str],
        depth: int,
        redirects: tuple[str, ...],
        code: str | None = None,
    ) -> WalkHit | None:
        if not node.code and node.see and depth > 0 and len(redirects) < MAX_REDIRECTS:
            # a subterm that only says "see ...": the coder goes there and goes on
            target = self.resolve(node.see)
            if target is not None:
                tnode, tpath = target
                return self._descend(
                    tnode, tpath, modifiers, context, words, used, depth, (*redirects, node.see), code
                )
            if "neoplasm" in node.see.lower():
                return self._neoplasm_redirect(node.see, modifiers - used, words, depth, used)
        code = node.code or code
        best: WalkHit | None = None
        if code:
            best = WalkHit(path, code, depth, used, redirects)
        for child, needed in self._matching_children(node, modifiers - used, context, words):
            if child.see and not child.code and not child.children and len(redirects) < MAX_REDIRECTS:
                target = self.resolve(child.see)
                if target is None:
                    if "neoplasm" in child.see.lower():
                        hit = self._neoplasm_redirect(child.see, modifiers - used - needed, words, depth + 1)
                    else:
                        continue
                elif path[: len(target[1])] == target[1]:
                    # a reference resolved only to a term above this one ("wrist - see Fracture, carpal,
                    # lunate" where the index has no such line resolves to "Fracture") leads back: a loop
                    continue
                else:
                    # the words that chose a pure redirect ("malleolus - see Fracture, ankle") may choose
                    # again there ("lateral malleolus only"); they count as used either way
                    tnode, tpath = target
                    hit = self._descend(
                        tnode,
                        tpath,
                        modifiers,
                        context,
                        words,
                        used,
                        depth + 1,
                        (*redirects, child.see),
                        code,
                    )
                    if hit is not None and not needed <= hit.matched:
                        hit = replace(hit, matched=hit.matched | needed)
            else:
                hit = self._descend(
                    child,
                    (*path, child.title),
                    modifiers,
                    context,
                    words,
                    used | needed,
                    depth + 1,
                    redirects,
                    code,
                )
            if hit is not None and (best is None or _better(hit, best)):
                best = hit
        return best

    def _matching_children(
        self, node: IndexNode, modifiers: frozenset[str], context: frozenset[str], words: Words
    ) -> Iterable[tuple[IndexNode, frozenset[str]]]:
        """Children the note supports, with the words each used. A connector ("with") passes through to
        its own children, which must then be documented in the encounter (`context`)."""
        for child in self._candidates(node, modifiers, words):
            title = _plain(child.title)
            if title in CONNECTORS:
                pool = modifiers if title == "due to" else context
                for grandchild in child.children:
                    rest = _negative(grandchild.title)
                    if rest is not None:  # "with / no loss of consciousness"
                        needed = self._match(rest, modifiers, words, NOT)
                    else:
                        needed = self._match(grandchild.label, pool, words)
                    if needed:
                        yield _via(child, grandchild), needed
                continue
            rest = _negative(title)
            if rest is not None:
                # "without X" / "no X": X documented absent ("concussion without LOC"), as NOT + word
                needed = self._match(rest, modifiers, words, NOT)
                if needed:
                    yield child, needed
                continue
            for connector in ("with ", "in ", "due to "):
                if title.startswith(connector):
                    # "with"/"in" are presumed linked when both are documented (I.A.15); "due to" must
                    # be said where the condition is
                    pool = modifiers if connector == "due to " else context
                    needed = self._match(title[len(connector) :], pool, words)
                    if needed:
                        yield child, needed
                    break
            else:
                needed = self._match(child.label, modifiers, words)
                if needed:
                    yield child, needed

    def _candidates(self, node: IndexNode, modifiers: frozenset[str], words: Words) -> list[IndexNode]:
        """The children worth matching, in index order: connector lines always; the others only when the
        note has a word of theirs (a word index per node with many children, built on first use)."""
        if len(node.children) <= 12:
            return node.children
        if self._words_of is not words:
            self._words_of, self._title_words, self._child_words = words, {}, {}
        index = self._child_words.get(id(node))
        if index is None or index[0] is not node:
            always: list[int] = []
            by_word: dict[str, list[int]] = defaultdict(list)
            for j, child in enumerate(node.children):
                title = _plain(child.title)
                if title in CONNECTORS or title.startswith(("with ", "in ", "due to ", "without ", "no ")):
                    always.append(j)
                    continue
                if self._title_words.get(child.label) is None:
                    self._title_words[child.label] = _alternatives(child.label, words)
                for alternative in self._title_words[child.label]:
                    by_word[min(alternative)].append(j)
            index = self._child_words[id(node)] = (node, always, dict(by_word))
        _, always, by_word = index
        chosen = set(always)
        for word in modifiers:
            chosen.update(by_word.get(word, ()))
        return [node.children[j] for j in sorted(chosen)]

    def _match(self, title: str, available: frozenset[str], words: Words, prefix: str = "") -> frozenset[str]:
        """The words of a subterm title the note documents (empty when it does not): the largest of its
        alternatives whose words all occur (with `prefix`: all occur marked absent)."""
        if self._words_of is not words:
            self._words_of, self._title_words, self._child_words = words, {}, {}
        alternatives = self._title_words.get(title)
        if alternatives is None:
            alternatives = self._title_words[title] = _alternatives(title, words)
        best: frozenset[str] = frozenset()
        for needed in alternatives:
            if prefix:
                needed = frozenset(prefix + w for w in needed)
            if needed <= available and len(needed) > len(best):
                best = needed
        return best

    # redirects ---------------------------------------------------------------------------------------
    def resolve(self, reference: str) -> tuple[IndexNode, tuple[str, ...]] | None:
        """The node a "see" reference names ("Fracture, radius, lower end"), resolved as deep as it goes;
        None when its main term is not in the index (e.g. "Table of Neoplasms"). The main term is the
        longest leading part of the reference that is a main term's title, else a main term with the
        first part as its head ("Fracture" -> "Fracture, traumatic"), the larger one when several."""
        cleaned = re.sub(r"\bby (site|type|body region|location)\b", "", reference, flags=re.I)
        parts = [p.strip() for p in cleaned.split(",") if p.strip()]
        best: tuple[tuple[int, int], IndexNode, tuple[str, ...]] | None = None
        for k in range(len(parts), 0, -1):
            key = _plain(", ".join(parts[:k]))
            for i in self._by_title.get(key, ()):
                exact = _plain(self.mains.title(i)) == key
                if not exact and k > 1:
                    continue
                main = self.mains[i]
                path: tuple[str, ...] = (main.title,)
                node, consumed = main, k if exact else 1
                for part in parts[consumed:]:
                    nxt = node.child(part)
                    if nxt is None:
                        break
                    node, path, consumed = nxt, (*path, nxt.title), consumed + 1
                score = (consumed, self._size(i))
                if best is None or score > best[0]:
                    best = (score, node, path)
        return None if best is None else (best[1], best[2])

    # the neoplasm table ------------------------------------------------------------------------------
    def _neoplasm_redirect(
        self,
        reference: str,
        modifiers: frozenset[str],
        words: Words,
        depth: int = 0,
        used: frozenset[str] = frozenset(),
    ) -> WalkHit | None:
        # the note's behaviour word ("metastatic") before the reference's default ("malignant")
        column = neoplasm_column(modifiers) or neoplasm_column(words(reference))
        return self.neoplasm_walk(modifiers, words, column or "UnspecifiedBehavior", depth, used)

    def neoplasm_walk(
        self,
        modifiers: frozenset[str],
        words: Words,
        column: str,
        depth: int = 0,
        used: frozenset[str] = frozenset(),
    ) -> WalkHit | None:
        """The Neoplasm table walked by site words; the code of `column` at the deepest site reached."""
        if self.neoplasm is None:
            return None
        path: tuple[str, ...] = (self.neoplasm.title,)
        node, matched, levels = self.neoplasm, used, 0
        while True:
            options = [
                (len(needed), c, needed)
                for c in self._candidates(node, modifiers - matched, words)
                if column in c.cells and (needed := self._match(c.title, modifiers - matched, words))
            ]
            if not options:
                break
            _, node, needed = max(options, key=lambda o: o[0])
            path, matched, levels = (*path, node.title), matched | needed, levels + 1
        code = node.cells.get(column)
        if not code:
            return None
        cues = (
            frozenset(c for c in NEOPLASM_BEHAVIOUR[column] if c in modifiers)
            if column in NEOPLASM_BEHAVIOUR
            else frozenset()
        )
        return WalkHit(path, code, depth + levels, matched | cues, ("Table of Neoplasms",), "neoplasm")


def _split_tree_json(text: bytes) -> tuple[str, list[str], list[bytes], bytes | None, bytes] | None:
    """`IndexTree.to_json` as `json.dumps` writes it (ASCII), cut without parsing it whole: (version, main
    term titles, each main term's JSON text, the Neoplasm table's, the Drug table's). The cut follows the
    brackets outside strings (numpy over the bytes); None for a text of another shape (the caller then
    parses it whole)."""
    if not text.isascii():
        return None
    chars = np.frombuffer(text, dtype=np.uint8)
    quotes = np.flatnonzero(chars == ord('"'))
    closing = np.ones(len(quotes), dtype=bool)
    for j in np.flatnonzero(chars[np.maximum(quotes - 1, 0)] == ord("\\")).tolist():
        # a quote ends a string unless an odd run of backslashes precedes it (rare: checked one by one)
        q = run = int(quotes[j])
        while run > 0 and text[run - 1] == ord("\\"):
            run -= 1
        closing[j] = (q - run) % 2 == 0
    quotes = quotes[closing]
    if len(quotes) % 2:
        return None
    brackets = np.flatnonzero(
        (chars == ord("[")) | (chars == ord("]")) | (chars == ord("{")) | (chars == ord("}"))
    )
    brackets = brackets[np.searchsorted(quotes, brackets) % 2 == 0]  # outside strings
    if not len(brackets) or chars[brackets[0]] != ord("{"):
        return None
    opening = (chars[brackets] == ord("[")) | (chars[brackets] == ord("{"))
    step = np.where(opening, 1, -1)
    after = np.cumsum(step)
    if after[-1] != 0 or after.min() < 0 or (after[:-1] == 0).any():
        return None
    before = after - step

    def values(level: int, start: int, end: int) -> list[tuple[int, int]]:
        """The spans of the arrays and objects at `level` strictly between `start` and `end`."""
        inside = (brackets > start) & (brackets < end)
        starts = brackets[inside & opening & (before == level)].tolist()
        ends = brackets[inside & ~opening & (after == level)].tolist()
        return list(zip(starts, ends, strict=True))

    # the top-level object with each array or object in it replaced by its number: keys and scalars
    top = values(1, int(brackets[0]), int(brackets[-1]))
    pieces, done = [], 0
    for n, (start, end) in enumerate(top):
        pieces += [text[done:start], str(n).encode()]
        done = end + 1
    data = json.loads(b"".join([*pieces, text[done:]]))
    if not isinstance(data, dict):
        return None
    mains_at, neoplasm_at, drugs_at = data.get("mains"), data.get("neoplasm"), data.get("drugs")
    if not (
        type(mains_at) is int and type(drugs_at) is int and (neoplasm_at is None or type(neoplasm_at) is int)
    ):
        return None
    if any(chars[top[n][0]] != ord("[") for n in (mains_at, neoplasm_at, drugs_at) if n is not None):
        return None
    mains_start, mains_end = top[mains_at]
    mains = values(2, mains_start, mains_end)
    # the main terms' list holds arrays and nothing else: "[" first "," second ... last "]"
    bounds = [mains_start, *(b for span in mains for b in span), mains_end]
    gaps = [text[bounds[j] + 1 : bounds[j + 1]] for j in range(0, len(bounds), 2)]
    if gaps != ([b"", *[b","] * (len(mains) - 1), b""] if mains else [b""]):
        return None
    # each main term's title is its first item: the string right after its "["
    starts = np.asarray([s for s, _ in mains], dtype=np.int64)
    at = np.searchsorted(quotes, starts + 1)
    if len(mains) and (at[-1] + 1 >= len(quotes) or (quotes[at] != starts + 1).any()):
        return None
    titles = []
    for s, e in zip((starts + 1).tolist(), quotes[at + 1].tolist() if len(mains) else [], strict=True):
        raw = text[s + 1 : e]
        titles.append(json.loads(text[s : e + 1]) if b"\\" in raw else raw.decode("ascii"))

    def part(n: int) -> bytes:
        return text[top[n][0] : top[n][1] + 1]

    return (
        str(data.get("version", "")),
        titles,
        [text[s : e + 1] for s, e in mains],
        None if neoplasm_at is None else part(neoplasm_at),
        part(drugs_at),
    )


@lru_cache(maxsize=131072)
def _head_parts(title: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A main term's names and its qualifiers: after the first comma, a single word that is another form
    of the head ("Infarct, infarction", "Failure, failed") names the same term; the other parts qualify
    it ("Fracture, traumatic")."""
    head, *parts = (p.strip() for p in title.split(","))
    names = [head]
    qualifiers: list[str] = []
    for part in parts:
        (names if _same_word(head, part) else qualifiers).append(part)
    return tuple(names), tuple(qualifiers)


def _same_word(a: str, b: str) -> bool:
    """Two single words sharing a stem of 4 or more letters covering most of the shorter one."""
    a, b = a.lower(), b.lower()
    if not a or not b or " " in a or " " in b:
        return False
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared >= 4 and shared >= 0.6 * min(len(a), len(b))


def neoplasm_column(found: frozenset[str]) -> str | None:
    """The Neoplasm table column the words name ("metastatic" -> MalignantSecondary), None if none."""
    for column, cues in NEOPLASM_BEHAVIOUR.items():
        if any(c in found for c in cues):
            return column
    return None


def _negative(title: str) -> str | None:
    """What a "without X" / "no X" subterm needs absent (X), None for other subterms."""
    plain = _plain(title)
    for cue in ("without ", "no "):
        if plain.startswith(cue):
            return plain[len(cue) :]
    return None


def _via(connector: IndexNode, child: IndexNode) -> IndexNode:
    """A "with" subterm's child, titled with its connector ("with / lung abscess" -> "with lung abscess")."""
    return IndexNode(
        f"{connector.title} {child.title}",
        child.code,
        child.see,
        child.see_also,
        child.nonessential,
        child.cells,
        child.children,
    )


def _alternatives(title: str, words: Words) -> tuple[frozenset[str], ...]:
    """The word sets of a subterm title's comma-separated alternatives ("abdomen, abdominal"), filler aside."""
    found = (words(a) - FILLER for a in _plain(title).split(","))
    return tuple(w for w in found if w)


def _better(a: WalkHit, b: WalkHit) -> bool:
    return (len(a.matched), a.depth, -len(a.redirects)) > (len(b.matched), b.depth, -len(b.redirects))


# ---------------------------------------------------------------------------------------------- building


def build_tree(terms: Iterable[IndexTerm], version: str = "") -> IndexTree:
    """The tree from index terms in document order (`icd10cm_index.load_index` with the kinds "index",
    "neoplasm" and "drug"); each term's path names its ancestors."""
    mains: list[IndexNode] = []
    tables: dict[str, list[IndexNode]] = {"neoplasm": [], "drug": []}
    for term in terms:
        if term.source == "index":
            node = _insert(mains, term.path, new=True)
            node.code = term.code or node.code
            node.see = term.see or node.see
            node.see_also = term.see_also or node.see_also
            node.nonessential = term.nonessential or node.nonessential
        elif term.source in tables and term.code and term.column:
            node = _insert(tables[term.source], term.path)
            node.cells[term.column] = term.code
    neoplasm = next((n for n in tables["neoplasm"] if n.title.lower().startswith("neoplasm")), None)
    return IndexTree(mains, neoplasm, tables["drug"], version)


def _insert(roots: list[IndexNode], path: tuple[str, ...], new: bool = False) -> IndexNode:
    """The node at `path` below the latest lines of its ancestors, created with any missing ancestor.
    `new`: every index line is a node of its own (two "Cancer" main terms stay two); else a line with
    the title of the last sibling continues it (the table readers give one term per cell)."""
    siblings = roots
    node: IndexNode | None = None
    for level, title in enumerate(path):
        last = level == len(path) - 1
        node = siblings[-1] if siblings and siblings[-1].title == title and not (new and last) else None
        if node is None:
            node = IndexNode(title)
            siblings.append(node)
        siblings = node.children
    assert node is not None
    return node
