"""7th characters: a code whose tabular entry defines 7th characters gets the one the note documents.

The meanings come from the tabular (`CodeEntry.seventh_chars`): encounter episodes (initial / subsequent /
sequela, with open/closed fracture and healing for fractures) are read from the mention's 'episode'
attribute or the note's phrases (resources/note_cues.json) and never assumed; other meanings (laterality,
fetus, stage, tophus) are matched word by word against the note, falling back to the one meaning that
needs no documentation ("not applicable or unspecified", "without tophus"). Without a decision the code
moves to the candidates with the reason "missing_7th_character:CODE".
"""

from __future__ import annotations

from collections.abc import Mapping

from medcode.data.types import CodeSuggestion
from medcode.model.rules.refs import compact
from medcode.model.rules.state import RulesState, derived
from medcode.model.rules.terms import title_support, title_terms

_EPISODES = ("sequela", "subsequent", "initial")
ACTIVE_TREATMENT_SETTINGS = frozenset({"emergency"})
"""Settings whose injury encounter is active treatment when the note names no episode (Guidelines
I.C.19.a: 7th character A while the patient receives active treatment, as in an emergency department
visit). Not inpatient: it is the encounter's default setting when a source does not say, and an admission
may be for aftercare."""


def documented_episodes(state: RulesState, suggestion: CodeSuggestion) -> list[str]:
    """The encounter episodes the note documents for a code, else "initial" for an emergency department
    encounter (active treatment)."""
    episodes = state.context.episode(suggestion)
    if not episodes and state.encounter.setting in ACTIVE_TREATMENT_SETTINGS:
        return ["initial"]
    return episodes


def _episode_of(meaning: str) -> str | None:
    lowered = meaning.lower()
    return next((e for e in _EPISODES if e in lowered), None)


def with_seventh(code: str, char: str) -> str:
    """S52.521 + A -> S52.521A; S01.20 + A -> S01.20XA (placeholder X up to 6 characters)."""
    padded = compact(code).ljust(6, "X") + char
    return f"{padded[:3]}.{padded[3:]}"


class SeventhCharacterRule:
    name = "seventh_character"

    def __init__(self, discount: float = 0.95) -> None:
        self.discount = discount

    def __call__(self, state: RulesState) -> None:
        for suggestion in list(state.diagnoses()):
            entry = state.tabular.entry(suggestion.code)
            if entry is None or not state.tabular.needs_seventh(entry):
                continue
            chars = dict(entry.seventh_chars)
            if any(_episode_of(m) for m in chars.values()):
                choice, why = self._episode_char(state, suggestion, chars)
            else:
                choice, why = self._other_char(state, suggestion, chars)
            full = with_seventh(entry.code, choice) if choice else None
            full_entry = state.tabular.entry(full) if full else None
            if full_entry is None or not full_entry.billable:
                state.move_out(suggestion)
                state.fire(
                    self.name,
                    [suggestion],
                    f"{entry.code} needs a 7th character ({_options(chars)}); {why}",
                    reason=f"missing_7th_character:{entry.code}",
                    warning={suggestion.code: "seventh_character:missing"},
                )
                continue
            self._complete(state, suggestion, full_entry.code, full_entry.title, chars[choice or ""], why)

    def _complete(
        self, state: RulesState, suggestion: CodeSuggestion, full: str, title: str, meaning: str, why: str
    ) -> None:
        replacement = derived(
            full,
            title,
            suggestion.confidence * self.discount,
            list(suggestion.evidence),
            f"{suggestion.code} completed with its 7th character",
        )
        stored = state.replace(suggestion, replacement)
        lowered = meaning.lower()
        reason = (
            f"unspecified:{full}" if "unspecified" in lowered and "not applicable" not in lowered else None
        )
        state.fire(
            self.name,
            [stored, suggestion],
            f"7th character '{full[-1]}' ({meaning}) from {why}",
            reason=reason,
            warning={
                stored.code: f"seventh_character:{suggestion.code}",
                suggestion.code: f"seventh_character:{full}",
            },
        )

    # encounter episodes -------------------------------------------------------------------------------
    def _episode_char(
        self, state: RulesState, suggestion: CodeSuggestion, chars: Mapping[str, str]
    ) -> tuple[str | None, str]:
        context = state.context
        episodes = documented_episodes(state, suggestion)
        if not episodes:
            return (
                None,
                "the note does not say whether this is the initial encounter, a later one or a sequela",
            )
        if len(episodes) > 1:
            return None, f"the note documents several encounter episodes ({', '.join(episodes)})"
        episode = episodes[0]
        options = {c: m for c, m in chars.items() if _episode_of(m) == episode}
        why = [
            f"the documented {episode} encounter"
            if context.episode(suggestion)
            else f"an {state.encounter.setting} encounter for the injury (active treatment)"
        ]
        if len(options) > 1:
            is_open, is_closed = context.cue("fracture_open"), context.cue("fracture_closed")
            if is_open and not is_closed:
                opened = {c: m for c, m in options.items() if "open" in m.lower()}
                if context.cue("open_type_3"):
                    opened = {c: m for c, m in opened.items() if "iiia" in m.lower()} or opened
                else:
                    opened = {c: m for c, m in opened.items() if "type i or ii" in m.lower()} or opened
                options = opened
                why.append("an open fracture")
            elif is_open and is_closed:
                return None, "the note calls the fracture both open and closed"
            else:
                options = {c: m for c, m in options.items() if "open" not in m.lower()}
                why.append(
                    "a closed fracture" if is_closed else "a fracture not documented as open (coded closed)"
                )
        if len(options) > 1 and episode == "subsequent":
            healing = context.which("healing")
            if len(healing) > 1:
                return None, f"the note documents several healing states ({', '.join(healing)})"
            wanted = healing[0] if healing else "routine healing"
            options = {c: m for c, m in options.items() if wanted in m.lower()}
            why.append(wanted if healing else "routine healing (no delay, nonunion or malunion documented)")
        if len(options) != 1:
            return None, f"the note leaves {len(options)} choices open"
        return next(iter(options)), ", ".join(why)

    # other meanings ----------------------------------------------------------------------------------
    def _other_char(
        self, state: RulesState, suggestion: CodeSuggestion, chars: Mapping[str, str]
    ) -> tuple[str | None, str]:
        words = state.context.words_for([suggestion])
        scored = []
        for char, meaning in chars.items():
            support = title_support(meaning, words)
            if support.matched and not support.violated:
                scored.append((support.matched, -support.missing, char))
        scored.sort(reverse=True)
        if scored and (len(scored) == 1 or scored[0][:2] != scored[1][:2]):
            char = scored[0][2]
            return char, f"the note's words ('{chars[char]}')"
        if len(scored) > 1:
            return None, "the note supports several of them equally"
        defaults = [
            c
            for c, m in chars.items()
            if not title_terms(m).required and not title_support(m, words).violated
        ]
        if len(defaults) == 1:
            meaning = chars[defaults[0]]
            if "fetus" in " ".join(chars.values()).lower() and state.context.cue("multiple_gestation"):
                return None, "a multiple gestation is documented: which fetus is affected must be coded"
            return defaults[0], f"the default when nothing else is documented ('{meaning}')"
        return None, "the note documents none of them"


def _options(chars: Mapping[str, str]) -> str:
    return "; ".join(f"{c}={m}" for c, m in chars.items())
