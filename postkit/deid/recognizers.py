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
            for match in regex.finditer(text):
                start, end = match.span("value")
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
        for entry in entries:
            key = tuple(t.lower_ for t in tokenizer(entry.strip()))
            if key:
                self.phrases.setdefault(key, entry.strip())
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
                 cues_before: Iterable[str], cues_after: Iterable[str], titles: Iterable[str]) -> None:
        self.lists = lists
        self.surnames = {s.lower() for s in surnames}
        self.cues_before = PhraseIndex(tokenizer, cues_before)
        self.cues_after = {c.lower() for c in cues_after}
        self.titles = {t.lower().rstrip(".") for t in titles}
        super().__init__(supported_entities=sorted({g.entity for g in lists}), name="gazetteer",
                         supported_language="en")

    def load(self) -> None:  # lists are loaded in __init__
        pass

    def _has_evidence(self, doc, start: int, end: int, entity: str) -> bool:
        token = doc[start]
        if token.text[:1].isupper() and not token.text.isupper() and not _sentence_initial(doc, start):
            return True
        lowers = [t.lower_ for t in doc[max(0, start - 3):start]]
        for size in range(len(lowers), 0, -1):
            if tuple(lowers[-size:]) in self.cues_before.phrases:
                return True
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


class NerRecognizer(EntityRecognizer):
    """spaCy's entities (already in the NLP artifacts), mapped to postkit's types.

    A one-word PERSON that opens a sentence, is also an ordinary word and is followed by
    a word that shows the ordinary use ("Hope you're ok", "Will you…", "Mark my words")
    is dropped; "Bill has been great" stays.
    """

    def __init__(self, score: float = 0.6, ambiguous_names: Iterable[str] = (),
                 not_name_before: Iterable[str] = ()) -> None:
        self.score = score
        self.ambiguous = {n.lower() for n in ambiguous_names}
        self.not_name_before = {w.lower() for w in not_name_before}
        super().__init__(supported_entities=sorted(set(NER_LABELS.values())), name="spacy_ner",
                         supported_language="en")

    def load(self) -> None:
        pass

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
            if entity in entities and any(c.isalpha() for c in ent.text):
                results.append(RecognizerResult(
                    entity, ent.start_char, ent.end_char, self.score,
                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: "spacy_ner",
                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id}))
        return results
