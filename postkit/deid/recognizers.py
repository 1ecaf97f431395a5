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


VALIDATORS: dict[str, Callable[[str], bool]] = {"nhs_checksum": nhs_checksum, "uk_phone": uk_phone}


class RulePatternRecognizer(PatternRecognizer):
    """A PatternRecognizer whose validation step is a named function from :data:`VALIDATORS`."""

    def __init__(self, *, validator: str | None = None, **kwargs) -> None:
        self._validator = VALIDATORS[validator] if validator else None
        super().__init__(**kwargs)

    def validate_result(self, pattern_text: str) -> bool | None:
        if self._validator is None:
            return None
        return self._validator(pattern_text)


def _alternation(words: Iterable[str]) -> str:
    """Regex alternation, longest first, each word allowing a trailing full stop."""
    escaped = sorted({re.escape(w.strip()) for w in words if w.strip()}, key=len, reverse=True)
    return "(?:" + "|".join(escaped) + r")\.?" if escaped else "(?!x)x"


def pattern_recognizers(patterns: dict, placeholders: dict[str, Iterable[str]]) -> list[PatternRecognizer]:
    """Presidio recognizers from the YAML rules (one per recognizer and case mode)."""
    recognizers: list[PatternRecognizer] = []
    for spec in patterns["recognizers"]:
        by_case: dict[bool, list[Pattern]] = {}
        for item in spec["patterns"]:
            regex = item["regex"]
            for key, words in placeholders.items():
                regex = regex.replace("{" + key + "}", _alternation(words))
            by_case.setdefault(bool(item.get("case_sensitive")), []).append(
                Pattern(item["name"], regex, float(item["score"]))
            )
        for case_sensitive, group in by_case.items():
            flags = re.DOTALL | re.MULTILINE | (0 if case_sensitive else re.IGNORECASE)
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

    def __init__(self, specs: list[dict]) -> None:
        self.specs = []
        for spec in specs:
            flags = re.DOTALL | re.MULTILINE | (0 if spec.get("case_sensitive") else re.IGNORECASE)
            self.specs.append((spec["entity"], spec["name"], re.compile(spec["regex"], flags), float(spec["score"])))
        super().__init__(supported_entities=sorted({s[0] for s in self.specs}) or ["AGE"],
                         name="cued_patterns", supported_language="en")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None):
        results = []
        for entity, name, regex, score in self.specs:
            if entity not in entities:
                continue
            groups = [g for g in regex.groupindex if g.startswith("value")]
            for match in regex.finditer(text):
                for group in groups:
                    start, end = match.span(group)
                    if start < end:
                        results.append(RecognizerResult(
                            entity, start, end, score,
                            recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: name,
                                                  RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}))
        return results


# --------------------------------------------------------------------------- phrase index


def token_lowers(doc) -> list[str]:
    """Lowercased token texts, computed once per doc and shared by every word list
    (building spaCy Token objects is the costly part)."""
    lowers = doc.user_data.get("postkit_lowers")
    if lowers is None:
        lowers = doc.user_data["postkit_lowers"] = [t.lower_ for t in doc]
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
        special = {k.lower() for k in (getattr(tokenizer, "rules", None) or {})}
        for entry in entries:
            entry = entry.strip()
            low = entry.lower()
            if entry.isalpha() and entry.isascii() and low not in special:
                key: tuple[str, ...] = (low,)
            else:
                key = tuple(t.lower_ for t in tokenizer(entry))
            if key:
                self.phrases.setdefault(key, entry)
        self.max_len = max((len(k) for k in self.phrases), default=0)

    def __contains__(self, text: str) -> bool:
        return tuple(text.lower().split()) in self.phrases

    def find(self, doc) -> list[tuple[int, int, str]]:
        """(first token, end token exclusive, canonical entry), non-overlapping, left to right."""
        found, i, n = [], 0, len(doc)
        lowers = token_lowers(doc)
        while i < n:
            for length in range(min(self.max_len, n - i), 0, -1):
                entry = self.phrases.get(tuple(lowers[i:i + length]))
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
                 month_cues: Iterable[str] = ()) -> None:
        self.lists = lists
        self.surnames = {s.lower() for s in surnames}
        self.cues_before = PhraseIndex(tokenizer, cues_before)
        self.cues_after = {c.lower() for c in cues_after}
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
            # "me and will said" is a name; "therapist will ask", "and deal with" are the
            # ordinary words: a lowercase word after a weak cue and before another
            # lowercase word is read as the word
            return not (following_token is not None and following_token.is_alpha
                        and following_token.text.islower() and following_token.lower_ not in self.cues_after)
        following = doc[end].lower_ if end < len(doc) else ""
        if token.text[:1].isupper() and following in self.cues_after:
            return True
        # A word alone on its line signs a post off: evidence of a name, not of a place.
        return entity == "PERSON" and token.text[:1].isupper() and self._alone_on_line(doc, start, end)

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
                results.append(self._result("PERSON", doc[j:j + 1], 0.8, "title"))
        return results

    def _result(self, entity: str, span, score: float, how: str) -> RecognizerResult:
        return RecognizerResult(entity, span.start_char, span.end_char, score,
                                analysis_explanation=None,
                                recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: f"gazetteer:{how}",
                                                      RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id})


class HandleCueRecognizer(EntityRecognizer):
    """Bare lowercase forum handles: "mindfulmeg wrote…", "thanks moonbeam!".

    A handle has no @, so only its slot gives it away: the subject of a reporting verb, or
    the name someone is thanked or greeted by. To keep ordinary nouns out ("my counsellor
    wrote") the token must not follow a determiner and must not be a word the language
    model knows.
    """

    def __init__(self, known_words, cues: dict) -> None:
        self.known = known_words
        self.after = {w.lower() for w in cues.get("after", [])}
        self.before = {w.lower() for w in cues.get("before", [])}
        self.determiners = {w.lower() for w in cues.get("not_after", [])}
        super().__init__(supported_entities=["USERNAME"], name="handle_cues", supported_language="en")

    def load(self) -> None:
        pass

    def _candidate(self, low: str) -> bool:
        """Cheap string test first: most tokens are known words and never become Token objects."""
        return (len(low) >= 5 and low not in self.known and low.replace("_", "").isalnum()
                and not low.isdigit())

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None):
        if nlp_artifacts is None or nlp_artifacts.tokens is None or "USERNAME" not in entities:
            return []
        doc = nlp_artifacts.tokens
        lowers = token_lowers(doc)
        results = []
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
                results.append(RecognizerResult(
                    "USERNAME", token.idx, token.idx + len(token.text), 0.6,
                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: "handle_cues",
                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}))
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
        if entity == "ORG" and last in ev.therapy_words:
            return True
        lowers = token_lowers(doc)
        following = lowers[ent.end] if ent.end < len(doc) else ""
        if entity == "PERSON":
            return not (_cue_before(lowers, ent.start, ev.person_before) or following in ev.person_after)
        cues = ev.org_before if entity == "ORG" else ev.place_before
        return not (_cue_before(lowers, ent.start, cues) or following in ev.org_place_after)

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
            if entity in entities and any(c.isalpha() for c in ent.text) and not self._weak(ent, entity):
                results.append(RecognizerResult(
                    entity, ent.start_char, ent.end_char, self.score,
                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: "spacy_ner",
                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}))
        return results


class SignOffRecognizer(EntityRecognizer):
    """Names and initials that sign a post off, at its very end.

    Three shapes, each only in the last lines of a post: a closing phrase then a name
    ("Cheers, Mike", "Be well, Robin J. Smith, LCSW", "Thanks in advance Van"); a dash or
    tilde then a name ("- J", "~Mark (www…)"); or a last line that is only a name or an
    initial ("\\n\\nC", "\\nEllu xx"). A last line holding one everyday word ("Anyway",
    "Help") is not a name unless the word is a listed given name.
    """

    _NAME = r"(?P<name>[A-Z][a-zA-Z'’\-]*(?:\s+[A-Z]\.?)?(?:\s+[A-Z][a-zA-Z'’\-]+)?\.?)"
    _END = r"[\s~.!,x*-]*(?:\(.*|,\s*[A-Z]{2,}.*)?\Z"

    def __init__(self, closings: Iterable[str], not_names: Iterable[str], common: Iterable[str] = (),
                 names: Iterable[str] = (), tail: int = 160) -> None:
        phrases = sorted({re.escape(c.strip()) for c in closings if c.strip()}, key=len, reverse=True)
        closing = "(?:" + "|".join(phrases) + ")" if phrases else "(?!x)x"
        self.after_closing = re.compile(r"(?i:(?<![\w])" + closing + r")[\s,.!~:-]*" + self._NAME + self._END,
                                        re.DOTALL)
        self.after_dash = re.compile(r"(?:^|[\s.!?])[~\-–—]+\s?" + self._NAME + self._END, re.DOTALL)
        self.last_line = re.compile(r"(?:\A|\n)[ \t>~\-–—]*" + self._NAME + r"[ \t]*(?:[xX]+|xo+)?[ \t.!]*\Z",
                                    re.DOTALL)
        self.not_names = {n.lower() for n in not_names}
        self.common = frozenset(common)
        self.names = frozenset(names)
        self.tail = tail
        super().__init__(supported_entities=["PERSON"], name="sign_off", supported_language="en")

    def load(self) -> None:
        pass

    def _name_ok(self, name: str, bare_line: bool) -> bool:
        words = name.rstrip(".").split()
        first = words[0].lower()
        if first in self.not_names or name.strip() in ("I", "I'm"):
            return False
        if bare_line and len(words[0]) > 1 and first in self.common and first not in self.names:
            return False
        return True

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None):
        if "PERSON" not in entities or not text:
            return []
        offset = max(0, len(text) - self.tail)
        tail = text[offset:]
        results = []
        for regex, bare in ((self.after_closing, False), (self.after_dash, False), (self.last_line, True)):
            for match in regex.finditer(tail):
                name = match.group("name")
                if bare and not name[:1].isupper():
                    continue
                # a closing on an earlier line or sentence ("Thanks for reading.\nAnyway") is
                # no evidence for the last word: judge it as a bare last line
                between = tail[match.start():match.start("name")]
                loose = bare or "\n" in between or "." in between
                if self._name_ok(name, loose):
                    start, end = match.span("name")
                    end -= len(name) - len(name.rstrip("."))
                    results.append(RecognizerResult(
                        "PERSON", offset + start, offset + end, 0.7,
                        recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: "sign_off",
                                              RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}))
                break
        return results
