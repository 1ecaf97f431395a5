"""postkit's recognizers, as Presidio recognizers so Presidio's AnalyzerEngine runs them.

Three kinds, each small:

* :class:`RulePatternRecognizer` — a Presidio ``PatternRecognizer`` built from
  ``rules/deid/patterns.yaml`` plus a named validator (NHS checksum, UK phone shape).
* :class:`GazetteerRecognizer` — names, places and employers from word lists, matched on
  tokens so lowercase writing ("my mate dave", "moved to leeds") is caught; names that
  are also words ("Will", "Hope") need evidence (capitalised mid-sentence, or a cue).
* :class:`NerRecognizer` — spaCy's statistical entities (PERSON, GPE/LOC/FAC, ORG),
  which the engine computes only for sentences that can hold a proper noun.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from .locale_checks import LOCALE_VALIDATORS

# --------------------------------------------------------------------------- validators


def nhs_checksum(text: str) -> bool:
    """NHS numbers carry a modulus-11 check digit; random 10-digit runs mostly fail it."""
    digits = re.sub(r"\D", "", text)
    if len(digits) != 10 or len(set(digits)) == 1:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def uk_phone(text: str) -> bool:
    """A UK number has 10 or 11 digits counting the leading 0 (``+44 (0)7700…`` included)."""
    digits = re.sub(r"\D", "", text)
    if digits.startswith("44"):
        digits = "0" + digits[2:].removeprefix("0")
    return digits.startswith("0") and len(digits) in (10, 11)


# The locale packs' checks (Medicare, TFN, SSN, AU/US phones) live in locale_checks.py.
VALIDATORS: dict[str, Callable[[str], bool]] = {"nhs_checksum": nhs_checksum, "uk_phone": uk_phone,
                                                **LOCALE_VALIDATORS}


class RulePatternRecognizer(PatternRecognizer):
    """A PatternRecognizer whose validation step is a named function from :data:`VALIDATORS`."""

    def __init__(self, *, validator: str | None = None, **kwargs) -> None:
        self._validator = VALIDATORS[validator] if validator else None
        super().__init__(**kwargs)

    def validate_result(self, pattern_text: str) -> bool | None:
        if self._validator is None:
            return None
        return self._validator(pattern_text)


# ----------------------------------------------------------------------- regex fragments

_UNIT_WORDS = "one two three four five six seven eight nine".split()
_TEEN_WORDS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL_UNITS = "first second third fourth fifth sixth seventh eighth ninth".split()
_ORDINAL_TEENS = ("tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth "
                  "nineteenth").split()
_ORDINAL_TENS = "twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth".split()

#: A number from ten to ninety-nine written in words ("sixteen", "twenty-three", "forty one").
_TEEN_PLUS_WORD = ("(?:(?:" + "|".join(_TENS_WORDS) + r")(?:[\s-]?(?:" + "|".join(_UNIT_WORDS) + "))?|"
                   + "|".join(reversed(_TEEN_WORDS)) + ")")
#: What may follow a number that is a stated age, rather than a count or a measure. Units,
#: durations ("5 weeks", "10 years older", "3 years ago"), times, money, scores ("14 out of
#: 27", "7/10") and approximations ("30-something", "40ish", "30s") are not ages.
_NOT_A_UNIT = (r"(?!\s*(?:%|:|\.\d|,\d|/|\+|[''’]|x\b|-?\s*(?:somethings?|ish|odd|plus)\b"
               r"|(?:mg|mcg|ml|kg|kgs|kilos?|lbs?|st|stone|cm|mm|ft|foot|feet|inch(?:es)?|mph|kph|km|miles?|metres?"
               r"|meters?|m|degrees|percent|per|am|pm|quid|pounds?|dollars|bucks|grand|k|p|people|times?|seconds?"
               r"|secs?|minutes?|mins?|hours?|hrs?|h|days?|weeks?|wks?|months?|mths?|decades?|out\s+of|of)\b"
               r"|(?:years?|yrs?)\b(?!\s*-?\s*(?:olds?|of\s+age|young)\b)))")
#: What may follow a one-digit age ("turned 3.", "when I was 7 and…"): one digit is
#: a count far more often, so it needs an ending an age has.
_AGE_END = (r"(?=\s*(?:[.,;:!?)\]]|$|\n|[-–—]\s*\d|[-–—]\s|(?:and|but|so|in|on|at|this|next|last|soon|tomorrow|today|tonight"
            r"|yesterday|now|when|while|with|because|or|though|then|until|till|i|he|she|we|they|my"
            r"|(?:years?|yrs?)\s*old)\b))")

# A number word starts with one of these letters: checking it first keeps a long
# alternation from being tried at every position of every post (ten times faster).
_FIRST = "(?=[otfsenOTFSEN])"

#: Named pieces of regular expression a rule in patterns.yaml may use as ``{NAME}``.
REGEX_FRAGMENTS: dict[str, str] = {
    "UNIT_WORD": _FIRST + "(?:" + "|".join(_UNIT_WORDS) + ")",
    "TEEN_PLUS_WORD": _FIRST + _TEEN_PLUS_WORD,
    "NUMBER_WORD": _FIRST + "(?:" + _TEEN_PLUS_WORD + "|" + "|".join(_UNIT_WORDS) + ")",
    "ORDINAL_WORD": (_FIRST + "(?:(?:" + "|".join(_TENS_WORDS) + r")[\s-]?(?:" + "|".join(_ORDINAL_UNITS) + ")|"
                     + "|".join(_ORDINAL_TENS + list(reversed(_ORDINAL_TEENS)) + _ORDINAL_UNITS) + ")"),
    # an ordinal from thirteenth, in words ("eighteenth", "twenty-first", "fortieth"): a birthday
    "ORDINAL_TEEN_PLUS": (_FIRST + "(?:(?:" + "|".join(_TENS_WORDS) + r")[\s-]?(?:" + "|".join(_ORDINAL_UNITS)
                          + ")|" + "|".join(_ORDINAL_TENS + list(reversed(_ORDINAL_TEENS[3:]))) + ")"),
    "NOT_A_UNIT": _NOT_A_UNIT,
    "AGE_END": _AGE_END,
    # a stated age: two digits or a number word from ten, not followed by a unit; or one
    # digit or number word from two with an ending an age has ("I'm one." is not an age)
    "AGE_NUMBER": (r"(?:(?:[1-9]\d|" + _FIRST + _TEEN_PLUS_WORD + r")\b" + _NOT_A_UNIT + r"|(?:[1-9]|" + _FIRST + "(?:"
                   + "|".join(_UNIT_WORDS[1:]) + r"))\b" + _NOT_A_UNIT + _AGE_END + ")"),
}


def expand_fragments(regex: str) -> str:
    """``{AGE_NUMBER}`` and the other :data:`REGEX_FRAGMENTS` written out in a rule's regex."""
    for key, fragment in REGEX_FRAGMENTS.items():
        regex = regex.replace("{" + key + "}", fragment)
    return regex


def _alternation(words: Iterable[str]) -> str:
    """Regex alternation, longest first, each word allowing a trailing full stop."""
    escaped = sorted({re.escape(w.strip()) for w in words if w.strip()}, key=len, reverse=True)
    return "(?:" + "|".join(escaped) + r")\.?" if escaped else "(?!x)x"


def _pattern_flags(case_sensitive: bool) -> int:
    return re.DOTALL | re.MULTILINE | (0 if case_sensitive else re.IGNORECASE)


class CompiledPattern(Pattern):
    """A Presidio ``Pattern`` compiled once, with the flags its recognizer matches with.

    Speed: Presidio's ``Pattern`` compiles its regex (with the slow-to-compile ``regex``
    module) to validate it, and ``PatternRecognizer`` compiles it again with its flags on
    first use. Here the one compilation both validates (an invalid regex is the same
    ``ValueError``) and is what Presidio matches with, since ``compiled_with_flags``
    equals the recognizer's ``global_regex_flags``.
    """

    def __init__(self, name: str, regex: str, score: float, flags: int) -> None:  # noqa: D107
        import regex as regex_module  # the module Presidio matches with

        if not 0 <= score <= 1:
            raise ValueError(f"Invalid score: {score}. Score should be between 0 and 1")
        self.name, self.regex, self.score = name, regex, score
        try:
            self.compiled_regex = regex_module.compile(regex, flags=flags)
        except regex_module.error as exc:
            raise ValueError(f"Invalid regex pattern: {exc}") from None
        self.compiled_with_flags = flags


def pattern_recognizers(patterns: dict, placeholders: dict[str, Iterable[str]]) -> list[PatternRecognizer]:
    """Presidio recognizers from the YAML rules (one per recognizer and case mode)."""
    recognizers: list[PatternRecognizer] = []
    for spec in patterns["recognizers"]:
        by_case: dict[bool, list[Pattern]] = {}
        for item in spec["patterns"]:
            regex = expand_fragments(item["regex"])
            for key, words in placeholders.items():
                regex = regex.replace("{" + key + "}", _alternation(words))
            case_sensitive = bool(item.get("case_sensitive"))
            by_case.setdefault(case_sensitive, []).append(
                CompiledPattern(item["name"], regex, float(item["score"]), _pattern_flags(case_sensitive))
            )
        for case_sensitive, group in by_case.items():
            flags = _pattern_flags(case_sensitive)
            recognizers.append(
                RulePatternRecognizer(
                    validator=spec.get("validator"),
                    supported_entity=spec["entity"],
                    patterns=group,
                    context=spec.get("context"),
                    name=spec["name"] + ("_cased" if case_sensitive else ""),
                    global_regex_flags=flags,
                )
            )
    return recognizers


class CuedPatternRecognizer(EntityRecognizer):
    """Regexes where a cue decides and only the ``value`` group is the identifier.

    Presidio's pattern recognizers flag the whole match; here "my daughter is 16"
    flags just "16", and "moving from B29" just "B29" (a bare "B29" is too ambiguous).
    """

    #: how much text before a match ``not_before`` looks at
    WINDOW = 40

    def __init__(self, specs: list[dict]) -> None:
        self.specs = []
        for spec in specs:
            flags = re.DOTALL | re.MULTILINE | (0 if spec.get("case_sensitive") else re.IGNORECASE)
            # ``not_before``: text right before the match that shows the number is no one's age
            # ("like a 12 year old", "at least 18 years old"); ``not_after``: likewise after it.
            before = re.compile("(?:" + expand_fragments(spec["not_before"]) + r")\Z", flags) \
                if spec.get("not_before") else None
            after = re.compile(expand_fragments(spec["not_after"]), flags) if spec.get("not_after") else None
            self.specs.append((spec["entity"], spec["name"], re.compile(expand_fragments(spec["regex"]), flags),
                               float(spec["score"]), before, after))
        super().__init__(supported_entities=sorted({s[0] for s in self.specs}) or ["AGE"],
                         name="cued_patterns", supported_language="en")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None):
        results = []
        for entity, name, regex, score, not_before, not_after in self.specs:
            if entity not in entities:
                continue
            groups = [g for g in regex.groupindex if g.startswith("value")]
            for match in regex.finditer(text):
                if not_before is not None and not_before.search(text[max(0, match.start() - self.WINDOW):match.start()]):
                    continue
                if not_after is not None and not_after.match(text, match.end()):
                    continue
                for group in groups:
                    start, end = match.span(group)
                    if start < end:
                        results.append(RecognizerResult(
                            entity, start, end, score,
                            recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: name,
                                                  RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}))
        return results


# --------------------------------------------------------------------------- phrase index


def _lower(token) -> str:
    """A token lowercased, without a dash glued to its end: the tokenizer leaves "Emily-" in
    "Emily- my cat" as one token, and the word lists should still see "emily"."""
    low = token.lower_
    if len(low) > 2 and low[-1] in "-–—" and low[-2].isalpha():
        return low.rstrip("-–—")
    return low


def token_lowers(doc) -> list[str]:
    """Lowercased token texts, computed once per doc and shared by every word list
    (building spaCy Token objects is the costly part)."""
    lowers = doc.user_data.get("postkit_lowers")
    if lowers is None:
        lowers = doc.user_data["postkit_lowers"] = [_lower(t) for t in doc]
    return lowers



class PhraseIndex:
    """Finds listed phrases in a tokenised text, case-insensitively, longest match first.

    Entries are tokenised with the same tokenizer as the text, so "Stoke-on-Trent" or
    "Sainsbury's" match however spaCy splits them; a lookup per token position is far
    cheaper than one large regex alternation.
    """

    def __init__(self, tokenizer, entries: Iterable[str]) -> None:
        self.phrases: dict[tuple[str, ...], str] = {}
        # A plain word is one token unless the tokenizer has a special case for it
        # ("cannot"); skipping the tokenizer for those keeps start-up fast with long lists.
        # So are plain words separated by single spaces ("insulin glargine"), unless a
        # special case itself spans a space.
        special = {k.lower() for k in (getattr(tokenizer, "rules", None) or {})}
        spaced_special = any(" " in k.strip() for k in special)  # " " alone is a special case
        for entry in entries:
            entry = entry.strip()
            low = entry.lower()
            words = low.split(" ")
            if entry.isascii() and (len(words) == 1 or not spaced_special) \
                    and all(w.isalpha() and w not in special for w in words):
                key: tuple[str, ...] = tuple(words)
            else:
                key = tuple(t.lower_ for t in tokenizer(entry))
            if key:
                self.phrases.setdefault(key, entry)
        self.max_len = max((len(k) for k in self.phrases), default=0)
        # Speed: the phrase lengths listed for each first word, longest first. Most tokens
        # start no phrase and cost one dict lookup instead of one per possible length.
        lengths: dict[str, set[int]] = {}
        for key in self.phrases:
            lengths.setdefault(key[0], set()).add(len(key))
        self._lengths = {first: tuple(sizes) if len(sizes) == 1 else tuple(sorted(sizes, reverse=True))
                         for first, sizes in lengths.items()}

    def __contains__(self, text: str) -> bool:
        return tuple(text.lower().split()) in self.phrases

    def find(self, doc) -> list[tuple[int, int, str]]:
        """(first token, end token exclusive, canonical entry), non-overlapping, left to right."""
        found, i = [], 0
        lowers = token_lowers(doc)
        n = len(lowers)
        starts, phrases = self._lengths, self.phrases
        while i < n:
            for length in starts.get(lowers[i], ()):
                if length <= n - i:
                    entry = phrases.get(tuple(lowers[i:i + length]))
                    if entry is not None:
                        found.append((i, i + length, entry))
                        i += length
                        break
            else:
                i += 1
        return found


# --------------------------------------------------------------------------- gazetteers


_QUOTES = {'"', "'", "“", "”", "‘", "’", "``", "''"}
_SENTENCE_END = {".", "!", "?", "\n", "…", ":", ";", '"', "“", "”", "-", "–", "—", "(", ")"}


def _sentence_initial(doc, index: int) -> bool:
    if index == 0:
        return True
    previous = doc[index - 1]
    return previous.text in _SENTENCE_END or "\n" in previous.text or previous.is_space


#: name cues after a word too common to show that a lowercase word after a weak cue is a name
_WEAK_AFTER = frozenset({"is", "was", "and", "'s", "’s", "at", "from", "who", "x", "xx"})


@dataclass
class GazetteerList:
    entity: str
    index: PhraseIndex
    ambiguous: set[str]  # lowercased entries needing evidence
    score: float


class GazetteerRecognizer(EntityRecognizer):
    """Names, places and employers from rules/deid word lists, with ambiguity handling."""

    def __init__(self, tokenizer, lists: list[GazetteerList], *, surnames: Iterable[str],
                 cues_before: Iterable[str], cues_after: Iterable[str], titles: Iterable[str],
                 weak_cues: Iterable[str] = (), months: Iterable[str] = (),
                 month_cues: Iterable[str] = (), kind_cues: dict[str, Iterable[str]] | None = None) -> None:
        self.lists = lists
        # Cues of a place or an employer ("moved to", "work at"): a person's cues ("my sister",
        # "and", "thanks") are no evidence that "Hope" or "Boots" is a place or a shop.
        self.kind_cues = {entity: PhraseIndex(tokenizer, cues) for entity, cues in (kind_cues or {}).items()}
        self.surnames = {s.lower() for s in surnames}
        self.cues_before = PhraseIndex(tokenizer, cues_before)
        self.cues_after = {c.lower() for c in cues_after}
        self.weak_cues_after = self.cues_after - _WEAK_AFTER
        self.titles = {t.lower().rstrip(".") for t in titles}
        self.weak_cues = {c.lower() for c in weak_cues}
        self.months = {m.lower() for m in months}
        self.month_cues = {c.lower() for c in month_cues}
        super().__init__(supported_entities=sorted({g.entity for g in lists}), name="gazetteer",
                         supported_language="en")

    def _is_month(self, doc, start: int, end: int) -> bool:
        """"in May", "since April", "June 2019", "March 3rd": the month, not a name or place."""
        if end - start != 1 or doc[start].lower_ not in self.months:
            return False
        before = doc[start - 1].lower_ if start > 0 else ""
        after = doc[end] if end < len(doc) else None
        return before in self.month_cues or (after is not None and after.text[:1].isdigit())

    def load(self) -> None:  # lists are loaded in __init__
        pass

    def _has_evidence(self, doc, start: int, end: int, entity: str) -> bool:
        token = doc[start]
        if self._is_month(doc, start, end):
            return False
        capital = token.text[:1].isupper()
        if capital and not token.text.isupper() and not _sentence_initial(doc, start):
            return True
        following_token = doc[end] if end < len(doc) else None
        # quotes between a cue and a name do not break the cue: my daughter "Poppy"
        lowers = [t.lower_ for t in doc[max(0, start - 5):start] if t.text not in _QUOTES][-3:]
        if entity != "PERSON" and entity in self.kind_cues:
            # a one-word cue ("in", "at") counts for a capitalised word only: "in Reading", not "in hope"
            cues = self.kind_cues[entity].phrases
            return any(tuple(lowers[-size:]) in cues and (capital or size > 1)
                       for size in range(len(lowers), 0, -1))
        weak_cue = False
        if not capital and token.is_stop and following_token is not None and following_token.is_alpha \
                and following_token.text.islower() and following_token.lower_ not in self.cues_after:
            return False  # "my therapist will call": a modal or function word, even after a cue
        for size in range(len(lowers), 0, -1):
            cue = tuple(lowers[-size:])
            if cue in self.cues_before.phrases:
                if capital or size > 1 or cue[0] not in self.weak_cues:
                    return True
                weak_cue = True
        if weak_cue:
            # "me and will said", "went with will." are names; "therapist will ask", "and deal
            # with", "the therapist may, if…" are the ordinary words: a lowercase word after a
            # weak cue is a name only before a name cue ("said") or the end of a sentence
            # ("and hope is what I need": a copula or a joining word after it is no evidence)
            return (following_token is None or following_token.lower_ in self.weak_cues_after
                    or following_token.text in (".", "!", "?") or "\n" in following_token.text)
        following = doc[end].lower_ if end < len(doc) else ""
        if token.text[:1].isupper() and following in self.cues_after:
            return True
        # A word alone on its line signs a post off: evidence of a name, not of a place.
        return entity == "PERSON" and token.text[:1].isupper() and self._alone_on_line(doc, start, end)

    @staticmethod
    def _abbreviation(doc, start: int, end: int) -> bool:
        """"as a LEO", "the ED": a name of up to three capitals in ordinary text is an
        abbreviation; in shouted text ("I TOLD TOM") it is still a name."""
        token = doc[start]
        if end - start != 1 or len(token.text) > 3 or not token.text.isupper() or not token.is_alpha:
            return False
        neighbours = [t for t in doc[max(0, start - 3):start] if t.is_alpha and len(t.text) > 1] + \
            [t for t in doc[end:end + 3] if t.is_alpha and len(t.text) > 1]
        return not any(t.text.isupper() for t in neighbours)

    @staticmethod
    def _alone_on_line(doc, start: int, end: int) -> bool:
        """A sign-off: the name on a line of its own ("…chat.\n\nHolly", "- Will x")."""
        before = start == 0 or "\n" in doc[start - 1].text or (
            doc[start - 1].text in {"-", "–", "—"} and (start == 1 or "\n" in doc[start - 2].text))
        after = end == len(doc) or "\n" in doc[end].text or doc[end].lower_ in {"x", "xx", "xxx"}
        return before and after

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None):
        if nlp_artifacts is None or nlp_artifacts.tokens is None:
            return []
        doc = nlp_artifacts.tokens
        results = []
        for gazetteer in self.lists:
            if gazetteer.entity not in entities:
                continue
            for start, end, entry in gazetteer.index.find(doc):
                if entry.lower() in gazetteer.ambiguous and not self._has_evidence(doc, start, end, gazetteer.entity):
                    continue
                if self._abbreviation(doc, start, end):
                    continue
                if gazetteer.entity == "PERSON":
                    end = self._extend_surname(doc, end)
                span = doc[start:end]
                results.append(self._result(gazetteer.entity, span, gazetteer.score, "gazetteer"))
        if "PERSON" in entities:
            results.extend(self._titled_names(doc))
        return results

    def _extend_surname(self, doc, end: int) -> int:
        """"Sarah" + "Jones" → one PERSON span when the next word is a surname or capitalised."""
        if end < len(doc):
            nxt = doc[end]
            if nxt.is_alpha and (nxt.lower_ in self.surnames or (nxt.text[:1].isupper() and not nxt.is_stop
                                                                  and nxt.text != "I")):
                return end + 1
        return end

    def _titled_names(self, doc) -> list[RecognizerResult]:
        """"Dr Patel", "Mrs. Okafor": the capitalised word after a title is a name."""
        results = []
        lowers = token_lowers(doc)
        for i in range(len(lowers) - 1):
            if lowers[i].rstrip(".") not in self.titles or not doc[i].text[:1].isupper():
                continue
            j = i + 1 + (1 if doc[i + 1].text == "." else 0)
            if j < len(doc) and doc[j].is_alpha and doc[j].text[:1].isupper():
                # "Dr Emily Carter": the surname after a given name belongs to the span
                end = j + 2 if j + 1 < len(doc) and doc[j + 1].is_alpha and doc[j + 1].text[:1].isupper() \
                    and doc[j + 1].text != "I" and not doc[j + 1].is_stop else j + 1
                results.append(self._result("PERSON", doc[j:end], 0.8, "title"))
        return results

    def _result(self, entity: str, span, score: float, how: str) -> RecognizerResult:
        return RecognizerResult(entity, span.start_char, span.end_char, score,
                                analysis_explanation=None,
                                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: f"gazetteer:{how}",
                                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})


class HandleCueRecognizer(EntityRecognizer):
    """Names and handles given away by how forums address people.

    * Bare lowercase handles: "mindfulmeg wrote…", "thanks moonbeam!". A handle has no @, so
      only its slot gives it away: the subject of a reporting verb, or the name someone is
      thanked or greeted by. To keep ordinary nouns out ("my counsellor wrote") the token
      must not follow a determiner and must not be a word the language model knows.
    * The name a post greets: "Hi Anna,", "Hello Frostproof,", "Dear Oak Harbor," at the
      start of a line or sentence, before a comma, full stop or line end. Words that greet
      everyone ("Hi All", "Dear Forum") are in ``greeting_not_names``; countries and states
      (``spared``) are not identifiers.
    * A name someone introduces themselves by that the model does not know as a word:
      "I'm Snagz.", "my name is Tilde-Rae and…" ("I'm Fine." is a word).
    * The same two slots in lowercase when the word is a listed given name, even one that
      is also a word ("welcome hope!", "i'm amber, 24"): the slot is the evidence. An
      introduced lowercase word needs a comma, "!" or "here/from" after it ("i'm frank
      about it" is the adjective).
    * An initial someone is thanked by: "thank you B x,", "cheers J!".
    """

    def __init__(self, known_words, cues: dict, spared: Iterable[str] = (), names: Iterable[str] = ()) -> None:
        self.known = known_words
        self.names = frozenset(n.lower() for n in names)
        self.after = {w.lower() for w in cues.get("after", [])}
        self.before = {w.lower() for w in cues.get("before", [])}
        self.determiners = {w.lower() for w in cues.get("not_after", [])}
        self.not_names = {w.lower() for w in cues.get("greeting_not_names", [])}
        self.spared = {w.lower() for w in spared}
        greetings = sorted({re.escape(str(w)) for w in cues.get("greetings", [])}, key=len, reverse=True)
        word = r"[A-Z][\w'’-]*"
        self.greeting = re.compile(
            r"(?:^|\n|[.!?]\s+)[ \t]*(?i:" + ("|".join(greetings) or "(?!x)x") + r")[ \t]*,?[ \t]+"
            r"(?P<name>" + word + r"(?:[ \t]+" + word + r")?)[ \t]*(?=[,!.:;\n]|\Z)") if greetings else None
        intros = sorted({re.escape(str(w)).replace(r"\ ", r"\s+") for w in cues.get("introductions", [])},
                        key=len, reverse=True)
        self.introduction = re.compile(
            r"(?<![\w'’])(?i:" + "|".join(intros) + r")[ \t]+(?P<name>" + word + r")"
            r"(?=[ \t]*(?:[,.!;:\n)]|\Z|(?:and|here|from)\b))") if intros else None
        lower_word = r"[a-z][a-z'’-]*"
        self.greeting_lower = re.compile(
            r"(?:^|\n|[.!?]\s+)[ \t]*(?i:" + "|".join(greetings) + r")[ \t]*,?[ \t]+"
            r"(?P<name>" + lower_word + r")[ \t]*(?=[,!.:;\n]|\Z)") if greetings and self.names else None
        self.introduction_lower = re.compile(
            r"(?<![\w'’])(?i:" + "|".join(intros) + r")[ \t]+(?P<name>" + lower_word + r")"
            r"(?=[ \t]*(?:[,!;:\n)]|\Z|(?:here|from)\b))") if intros and self.names else None
        self.thanked_initial = re.compile(
            r"(?<![\w'’])(?i:thanks|thank\s+you|thankyou|cheers|ta|love|hugs|bless\s+you)[ \t]+(?P<name>[A-HJ-Z])"
            r"(?=[ \t]*(?:[xX]{1,3}\b|[,!.](?!\w)))")
        super().__init__(supported_entities=["USERNAME", "PERSON"], name="handle_cues", supported_language="en")

    def load(self) -> None:
        pass

    def _candidate(self, low: str) -> bool:
        """Cheap string test first: most tokens are known words and never become Token objects."""
        return (len(low) >= 5 and low not in self.known and low.replace("_", "").isalnum()
                and not low.isdigit())

    def _result(self, entity: str, start: int, end: int, score: float, how: str) -> RecognizerResult:
        return RecognizerResult(entity, start, end, score,
                                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: how,
                                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})

    def _addressed_names(self, text: str) -> list[RecognizerResult]:
        results = []
        if self.greeting is not None:
            for match in self.greeting.finditer(text):
                name = match.group("name")
                words = [w.lower().strip("'’") for w in name.split()]
                if any(w in self.not_names for w in words) or words[0] in ("i", "i'm", "i’m") \
                        or name.lower() in self.spared:
                    continue
                results.append(self._result("PERSON", *match.span("name"), 0.55, "greeting"))
        if self.introduction is not None:
            for match in self.introduction.finditer(text):
                name = match.group("name")
                low = name.lower()
                if low in self.known or low in self.not_names or low in self.spared or name.isupper():
                    continue
                results.append(self._result("PERSON", *match.span("name"), 0.55, "introduction"))
        for regex, how in ((self.greeting_lower, "greeting"), (self.introduction_lower, "introduction")):
            for match in regex.finditer(text) if regex is not None else ():
                low = match.group("name").lower()
                if low in self.names and low not in self.not_names and low not in self.spared:
                    results.append(self._result("PERSON", *match.span("name"), 0.55, how))
        for match in self.thanked_initial.finditer(text):
            results.append(self._result("PERSON", *match.span("name"), 0.55, "thanked_initial"))
        return results

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None):
        results = self._addressed_names(text) if "PERSON" in entities else []
        if nlp_artifacts is None or nlp_artifacts.tokens is None or "USERNAME" not in entities:
            return results
        doc = nlp_artifacts.tokens
        lowers = token_lowers(doc)
        for i, low in enumerate(lowers):
            if not self._candidate(low):
                continue
            token = doc[i]
            if token.text != low or token.is_stop:  # a handle written all in lowercase
                continue
            before = lowers[i - 1] if i > 0 else ""
            if before in self.determiners:
                continue
            after = doc[i + 1] if i + 1 < len(doc) else None
            reported = after is not None and after.lower_ in self.after
            addressed = before in self.before and (after is None or after.is_punct)
            if reported or addressed:
                results.append(self._result("USERNAME", token.idx, token.idx + len(token.text), 0.6,
                                            "handle_cues"))
        return results


# --------------------------------------------------------------------------- statistical NER

NER_LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION", "ORG": "ORG"}


@dataclass
class NerEvidence:
    """What makes an NER entity made only of everyday words an identifier after all.

    ``common`` holds everyday English words (names, places and employers from the
    gazetteers already removed); ``*_before`` are cue phrases that must come right before
    the entity ("work at", "moved to", "my friend"), ``person_after`` words right after it
    ("said", "told").
    """

    common: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()  # gazetteer names/places/employers, lowercased
    person_before: PhraseIndex | None = None
    person_after: frozenset[str] = frozenset()
    org_before: PhraseIndex | None = None
    place_before: PhraseIndex | None = None
    therapy_words: frozenset[str] = frozenset()
    name_last_words: frozenset[str] = frozenset()  # "Road", "School", "Park": a named street or place
    org_place_after: frozenset[str] = frozenset()  # "X in/at …": a local organisation or place


def _cue_before(lowers: list[str], start: int, cues: PhraseIndex | None) -> bool:
    if cues is None or start == 0:
        return False
    window = lowers[max(0, start - cues.max_len):start]
    return any(tuple(window[-size:]) in cues.phrases for size in range(len(window), 0, -1))


_DOMAIN_PART = re.compile(r"^\.?[a-z]{2,4}(?:\.[a-z]{2,4})+$")


def is_acronym(text: str) -> bool:
    """An all-capitals abbreviation of 2-5 letters ("MRI", "PTSD", "NDIS"), "/" allowed ("H/W")."""
    letters = text.replace("/", "").replace("&", "")
    return 2 <= len(letters) <= 5 and letters.isalpha() and letters.isupper()


#: a questionnaire, scale or code ("GAD-7", "PHQ-9", "PCL-5", "COVID-19"): capitals, a dash, a number
_CODE = re.compile(r"[A-Z]{2,6}-\d{1,3}")
_MONEY = re.compile(r"[$£€]?\d[\d.,]*\s?(?:k|m|bn|mil|grand)", re.IGNORECASE)
#: endings of the names of conditions, symptoms and procedures ("Misophonia", "Dysthymia",
#: "Gastritis", "Fibromyalgia"): the small model tags them as people or places
MEDICAL_SUFFIXES = ("itis", "osis", "oses", "emia", "aemia", "algia", "phobia", "phonia", "pathy", "plasia",
                    "trophy", "ectomy", "otomy", "iasis", "thymia", "philia", "somnia", "lexia", "praxia",
                    "kinesia", "tonia", "mania", "echiae", "achiae", "uria", "rrhea", "rrhoea", "ocele")


def _medical_word(ent) -> bool:
    """A one-word entity that is the name of a condition or procedure by its ending."""
    words = [t for t in ent if t.is_alpha]
    return len(words) == 1 and len(words[0]) > 6 and words[0].lower_.endswith(MEDICAL_SUFFIXES)


class NerRecognizer(EntityRecognizer):
    """spaCy's entities (already in the NLP artifacts), mapped to postkit's types.

    A one-word PERSON that opens a sentence, is also an ordinary word and is followed by
    a word that shows the ordinary use ("Hope you're ok", "Will you…", "Mark my words")
    is dropped; "Bill has been great" stays.

    The small model also tags capitalised everyday words and abbreviations ("Therapy",
    "Stuck", "Company Tax", "APFT Failure", "the VA", "DAMN"). An entity whose every word
    is an everyday English word or an all-capitals abbreviation (and none a known name,
    place or employer) is not enough evidence on its own: it is kept only after a cue of
    its kind ("work at X", "moved to X", "my friend X", "X said"). A name of a therapy
    ("Acceptance and Commitment Therapy") is never an organisation.
    """

    def __init__(self, score: float = 0.6, ambiguous_names: Iterable[str] = (),
                 not_name_before: Iterable[str] = (), evidence: NerEvidence | None = None) -> None:
        self.score = score
        self.ambiguous = {n.lower() for n in ambiguous_names}
        self.not_name_before = {w.lower() for w in not_name_before}
        self.evidence = evidence or NerEvidence()
        super().__init__(supported_entities=sorted(set(NER_LABELS.values())), name="spacy_ner",
                         supported_language="en")

    def load(self) -> None:
        pass

    def _everyday(self, ent) -> bool:
        """Every word of the entity is an everyday word or an abbreviation, none a known name."""
        ev = self.evidence
        words = [t for t in ent if not t.is_punct and not t.is_space and t.text not in ("'s", "’s")]
        if not words:
            return False
        for token in words:
            low = token.lower_
            if low in ev.names:
                return False
            if low in ev.common or token.is_stop:
                continue
            if is_acronym(token.text):
                continue
            return False
        return True

    def _weak(self, ent, entity: str) -> bool:
        ev = self.evidence
        if not ev.common:
            return False
        if _DOMAIN_PART.match(ent.text):
            return True  # ".co.uk": a piece of a web address, left to the URL patterns
        doc = ent.doc
        last = ent[-1].lower_
        if (last in ev.name_last_words and len(ent) > 1) or not self._everyday(ent):
            return False
        # "Group for Carers of Veterans", "Centre for Family Life": an organisation's head word
        # first, then "for"/"of"
        if len(ent) > 2 and ent[0].lower_ in ev.name_last_words and ent[1].lower_ in ("of", "for"):
            return False
        if entity == "ORG" and last in ev.therapy_words:
            return True
        lowers = token_lowers(doc)
        following = lowers[ent.end] if ent.end < len(doc) else ""
        if entity == "PERSON":
            return not (_cue_before(lowers, ent.start, ev.person_before) or following in ev.person_after)
        cues = ev.org_before if entity == "ORG" else ev.place_before
        # "X in/at/on …" shows a local place, but not for a word shouted in capitals ("the word
        # COMPLAINT in capitals") or one everyday word opening a sentence ("Vet on Monday")
        shouted = all(t.text.isupper() for t in ent if t.is_alpha)
        opening = len(ent) == 1 and _sentence_initial(doc, ent.start)
        after = following in ev.org_place_after and not shouted and not opening
        return not (_cue_before(lowers, ent.start, cues) or after)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None):
        if nlp_artifacts is None:
            return []
        results = []
        for ent in nlp_artifacts.entities:
            entity = NER_LABELS.get(ent.label_)
            if entity == "PERSON" and len(ent) == 1 and ent.text.lower() in self.ambiguous \
                    and _sentence_initial(ent.doc, ent.start) and ent.end < len(ent.doc) \
                    and ent.doc[ent.end].lower_ in self.not_name_before:
                continue
            if entity in entities and any(c.isalpha() for c in ent.text) and not _MONEY.fullmatch(ent.text) \
                    and not _medical_word(ent) and not _CODE.fullmatch(ent.text) and not self._weak(ent, entity):
                # the possessive stays outside ("[Dawn]'s daughter"), so the text after the name
                # reads "'s book" to the public-figure check
                end = ent[-2].idx + len(ent[-2].text) if len(ent) > 1 and ent[-1].text in ("'s", "’s") \
                    else ent.end_char
                results.append(RecognizerResult(
                    entity, ent.start_char, end, self.score,
                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: "spacy_ner",
                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}))
        return results


class SignOffRecognizer(EntityRecognizer):
    """Names and initials that sign a post off, at its very end.

    Three shapes, each only in the last lines of a post: a closing phrase then a name
    ("Cheers, Mike", "Be well, Robin J. Smith, LCSW", "Thanks in advance Van"); a dash or
    tilde then a name ("- J", "~Mark (www…)"); or a last line that is only a name or an
    initial ("\\n\\nC", "\\nEllu xx"). A last line holding one everyday word ("Anyway",
    "Help") is not a name unless the word is a listed given name. Initials in capitals may
    also end the post on the line of its last sentence, after its full stop or an emoji
    ("…next week 🌻 KT", "Love to all. R."); abbreviations there ("OK", "LOL") are left
    to the engine's allow-lists.
    """

    _NAME = r"(?P<name>[A-Z][a-zA-Z'’\-]*(?:[ \t]+[A-Z]\.?)?(?:[ \t]+[A-Z][a-zA-Z'’\-]+)?\.?)"
    # a practice or organisation signed under or after the name: "Mirella~Cedar Tree Counseling",
    # "Cheers, Ana\nHarbour Family Therapy" — two to seven capitalised words to the end
    _ORG = (r"(?P<org>(?:The\s+)?[A-Z][\w'’&-]*(?:[ \t]+(?:(?:of|and|for|the|&)[ \t]+)?[A-Z][\w'’&-]*){1,6})"
            r"[\s.]*(?:\(.*|(?:www\.|https?://)\S*\s*)?")
    _END = r"[\s~.!,x*-]*(?:\(.*|,\s*[A-Z]{2,}.*|" + _ORG + r")?\Z"
    #: last words of a practice's name in a signature
    PRACTICE_WORDS = frozenset("""counseling counselling therapy therapies psychotherapy psychology psychiatry
        practice practices clinic centre center services group associates wellness health healthcare llc pllc
        inc ltd consulting solutions institute partners collective""".split())

    def __init__(self, closings: Iterable[str], not_names: Iterable[str], common: Iterable[str] = (),
                 names: Iterable[str] = (), tail: int = 160) -> None:
        phrases = sorted({re.escape(c.strip()) for c in closings if c.strip()}, key=len, reverse=True)
        closing = "(?:" + "|".join(phrases) + ")" if phrases else "(?!x)x"
        self.after_closing = re.compile(r"(?i:(?<![\w])" + closing + r")[\s,.!~:-]*" + self._NAME + self._END,
                                        re.DOTALL)
        self.after_dash = re.compile(r"(?:^|[\s.!?])[~\-–—]+\s?" + self._NAME + self._END, re.DOTALL)
        self.last_line = re.compile(r"(?:\A|\n)[ \t>~\-–—]*" + self._NAME + r"[ \t]*(?:[xX]+|xo+)?[ \t.!]*\Z",
                                    re.DOTALL)
        # "…love.  Petra~Willow Bank Counseling": a name, a tilde and a practice end the post
        self.end_initials = re.compile(r"(?:[.!?]|[^\w\s.,;:'\"’”)\]\-–—~&/])[ \t]+(?P<name>[A-Z]{1,3})\.?"
                                       r"[ \t]*(?:[xX]+)?[ \t.!]*\Z")
        self.tilde_org = re.compile(r"(?:\A|\n|[.!?]|\s{2})[ \t]*" + self._NAME + r"[ \t]*~[ \t]*" + self._ORG + r"\Z",
                                    re.DOTALL)
        self.not_names = {n.lower() for n in not_names}
        self.common = frozenset(common)
        self.names = frozenset(names)
        self.tail = tail
        super().__init__(supported_entities=["PERSON", "ORG"], name="sign_off", supported_language="en")

    def load(self) -> None:
        pass

    def _name_ok(self, name: str, bare_line: bool) -> bool:
        words = name.rstrip(".").split()
        first = words[0].lower()
        if first in self.not_names or name.strip() in ("I", "I'm"):
            return False
        if bare_line and len(words[0]) > 1 and first in self.common and first not in self.names:
            return False
        # a last line in capitals ("USAF VET", "PTSD AWARENESS") is a title or a shout, not a name
        if bare_line and len(words[0]) > 2 and words[0].isupper() and first not in self.names:
            return False
        return True

    def _practice(self, tail: str, match: re.Match) -> bool:
        """A name signed under a closing may be followed by a role ("Surviving Spouse"): the
        words after it are a practice only after a tilde ("Mirella~…") or when they end in a
        word practices are named with ("… Family Therapy", "… Counselling LLC")."""
        if "~" in tail[match.end("name"):match.start("org")]:
            return True
        return match.group("org").split()[-1].lower().strip(".") in self.PRACTICE_WORDS

    def _result(self, entity: str, start: int, end: int) -> RecognizerResult:
        return RecognizerResult(entity, start, end, 0.7,
                                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: "sign_off",
                                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None):
        if "PERSON" not in entities or not text:
            return []
        offset = max(0, len(text) - self.tail)
        tail = text[offset:]
        results = []
        for regex, bare in ((self.after_closing, False), (self.after_dash, False), (self.tilde_org, False),
                            (self.last_line, True)):
            for match in regex.finditer(tail):
                name = match.group("name")
                if bare and not name[:1].isupper():
                    continue
                # a closing on an earlier line or sentence ("Thanks for reading.\nAnyway") is
                # no evidence for the last word: judge it as a bare last line
                between = tail[match.start():match.start("name")]
                loose = bare or "\n" in between or "." in between
                org = match.groupdict().get("org")
                if org and not self._practice(tail, match):
                    # "- Behind These Walls", "from Under Her Skin": a title, not a signature
                    break
                if self._name_ok(name, loose):
                    start, end = match.span("name")
                    end -= len(name) - len(name.rstrip("."))
                    results.append(self._result("PERSON", offset + start, offset + end))
                    if org and "ORG" in entities:
                        results.append(self._result("ORG", offset + match.start("org"), offset + match.end("org")))
                break
        if not results:
            match = self.end_initials.search(tail)
            low = match.group("name").lower() if match is not None else ""
            if match is not None and low != "i" and low not in self.not_names and low not in self.common:
                results.append(self._result("PERSON", offset + match.start("name"), offset + match.end("name")))
        return results
