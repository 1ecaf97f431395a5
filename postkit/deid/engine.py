"""The de-identification engine: spaCy + Presidio + postkit's UK/forum recognizers.

Why it is fast: Presidio's default engine runs the whole spaCy pipeline on every post.
Here each batch is tokenised once (cheap), the statistical NER runs only on sentences
that hold a capitalised word no word list explains (not "I", not a common sentence
starter, not a known name/place/employer/allow-listed term — those are the gazetteers'
job, as are lowercase names and places), in one ``nlp.pipe`` call
per batch (a sentence repeated within the batch is read once), and Presidio's
AnalyzerEngine then runs every recognizer over prepared NLP artifacts instead of
parsing again. Start-up counts too (a one-post run is mostly start-up): only the NER
component is loaded, each pattern is compiled once, and plain word-list entries are
keyed without the tokenizer. Every such shortcut leaves the findings unchanged; see
the docstrings where each is made.

Why it fails closed: overlapping findings are merged into one span covering both, and
only phrases on an allow-list (helplines, generic services, medications, chat words)
are ever spared.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Sequence

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

from .model import LoadedModel, load_model
from .recognizers import (
    CuedPatternRecognizer,
    GazetteerList,
    GazetteerRecognizer,
    HandleCueRecognizer,
    NerEvidence,
    NerRecognizer,
    PhraseIndex,
    SignOffRecognizer,
    pattern_recognizers,
    token_lowers,
)
from .learned_age import AgeModel
from .repair import repair_boundaries, to_original
from .rules import LEARNED_MODELS, DeidRules, load_rules

# ID_NUMBER: other national ids from the locale packs (Medicare, tax file, Social Security numbers).
ENTITY_TYPES = ("PERSON", "USERNAME", "EMAIL", "PHONE", "POSTCODE", "NHS_NUMBER", "NI_NUMBER", "ID_NUMBER",
                "ADDRESS", "LOCATION", "ORG", "DATE", "AGE", "URL")
_MAX_CHUNK = 100_000  # characters analysed at once; longer posts are split at whitespace
_SENTENCE = re.compile(r"[^.!?\n]+[.!?\n]*|[.!?\n]+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*")
_PRONOUN_I = {"I", "I'm", "I’m", "I've", "I’ve", "I'd", "I’d", "I'll", "I’ll"}

for _name in ("presidio-analyzer", "presidio_analyzer", "presidio-anonymizer"):
    logging.getLogger(_name).setLevel(logging.ERROR)


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    entity_type: str
    score: float
    recognizer: str

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type,
                "score": round(self.score, 3), "recognizer": self.recognizer}


class DeidEngine:
    """Finds identifiers in batches of texts. Build once (model + rules), reuse for every batch."""

    def __init__(
        self,
        model: str | None = None,
        *,
        rules_folder: str | None = None,
        entities: Sequence[str] | None = None,
        deny_usernames: Iterable[str] = (),
        deny_names: Iterable[str] = (),
        loaded_model: LoadedModel | None = None,
        locales: Sequence[str] | None = None,
        learned_age: bool = True,
    ) -> None:
        from ..errors import PostkitError

        # Locale packs (rules/deid/locales/, default uk) add national phone/postcode/id formats.
        self.rules: DeidRules = load_rules(rules_folder, locales)
        self.model = loaded_model or load_model(model)
        self.nlp = self.model.nlp
        self.nlp.max_length = max(self.nlp.max_length, _MAX_CHUNK * 2)
        unknown = sorted(set(entities or ()) - set(ENTITY_TYPES))
        if unknown:
            raise PostkitError(f"unknown entity type '{unknown[0]}'", fix=f"choose from {', '.join(ENTITY_TYPES)}")
        self.entities = list(entities or ENTITY_TYPES)
        self.score_threshold = float(self.rules.patterns.get("score_threshold", 0.4))
        # How much text the statistical NER actually read (the gate's effect), for benchmarks.
        # ner_run_chars: what it read after identical sentences were merged (see _gated_ner).
        self.stats = {"chars": 0, "ner_chars": 0, "ner_run_chars": 0}
        tokenizer = self.nlp.tokenizer
        words = self.rules.words

        self.allow = PhraseIndex(tokenizer, words("allow_services") + words("allow_medications")
                                 + words("allow_medications_international") + words("allow_words")
                                 + words("allow_regions"))
        self.allow_texts = {" ".join(k) for k in self.allow.phrases}
        # Countries and states spare place-like findings only: "Georgia" or "Chad" said of
        # a person stays a PERSON (the lists hold no UK given name, but others may).
        self.allow_places = PhraseIndex(tokenizer, words("allow_places"))
        self.allow_place_texts = {" ".join(k) for k in self.allow_places.phrases}
        # Abbreviations written in capitals ("MRI", "ED", "NDIS"): spared only as written.
        self.acronyms = frozenset(words("acronyms"))
        gazetteer_words = {w.lower() for name in ("first_names", "surnames", "uk_places", "employers",
                                                  "deny_names") for w in words(name)}
        gazetteer_words |= {w.lower() for w in deny_names}
        # Everyday English words: evidence rules and sentence-boundary repair, never names.
        self.common_words = frozenset(w for w in words("common_words") if w not in gazetteer_words)
        gate = self.rules.patterns.get("ner_gate", {})
        from spacy.lang.en.stop_words import STOP_WORDS

        self.common_starters = {str(w).lower() for w in gate.get("common_sentence_starters", [])} | set(STOP_WORDS)
        self.common_starters |= {w.lower() for w in words("allow_words")}
        # Capitalised words a word list already decides (known names, places, employers,
        # allow-listed terms) do not need the statistical NER; unknown ones ("Tommo") do.
        # Ambiguous names/places ("Bill", "Reading") are not decided by a list, so they still go to NER.
        self.explained = {w.lower() for name in ("first_names", "surnames", "uk_places", "employers",
                                                 "allow_services", "allow_medications", "allow_words",
                                                 "allow_medications_international", "allow_places",
                                                 "allow_regions", "acronyms")
                          for w in words(name) if " " not in w}
        self.explained -= {w.lower() for w in words("ambiguous_names") + words("ambiguous_places")}

        cues = self.rules.patterns.get("gazetteers", {})
        # The model's vocabulary as loaded (it grows as text is tokenised; a snapshot keeps
        # "words the model knows" fixed).
        known_words = frozenset(s for s in self.nlp.vocab.strings if s.islower())
        gazetteer = GazetteerRecognizer(
            tokenizer,
            [
                GazetteerList("PERSON", PhraseIndex(tokenizer, words("first_names") + tuple(deny_names)
                                                    + words("deny_names")),
                              {w.lower() for w in words("ambiguous_names")}, 0.7),
                GazetteerList("LOCATION", PhraseIndex(tokenizer, words("uk_places")),
                              {w.lower() for w in words("ambiguous_places")}, 0.7),
                # An employer whose name is also an ordinary word ("Boots") needs its capital.
                GazetteerList("ORG", PhraseIndex(tokenizer, words("employers")),
                              {e.lower() for e in words("employers") if e.lower() in known_words}, 0.6),
                GazetteerList("USERNAME", PhraseIndex(tokenizer, tuple(deny_usernames) + words("deny_usernames")),
                              set(), 0.9),
            ],
            surnames=words("surnames"),
            cues_before=cues.get("name_cues_before", []),
            cues_after=cues.get("name_cues_after", []),
            titles=cues.get("titles", []),
            weak_cues=cues.get("weak_name_cues", []),
            months=cues.get("month_names", []),
            month_cues=cues.get("month_cues_before", []),
            kind_cues={"LOCATION": self.rules.patterns.get("ner_evidence", {}).get("place_cues_before", []),
                       "ORG": self.rules.patterns.get("ner_evidence", {}).get("org_cues_before", [])},
        )
        registry = _OrderedRegistry(supported_languages=["en"])
        placeholders = {"STREET_SUFFIXES": words("street_suffixes") or ("Road", "Street", "Lane", "Avenue"),
                        "ORG_SUFFIXES": words("org_suffixes") or ("School", "Hospital", "College")}
        for recognizer in pattern_recognizers(self.rules.patterns, placeholders):
            registry.add_recognizer(recognizer)
        registry.add_recognizer(gazetteer)
        registry.add_recognizer(CuedPatternRecognizer(self.rules.patterns.get("cued_patterns", [])))
        registry.add_recognizer(HandleCueRecognizer(known_words, cues.get("handle_cues", {}),
                                                    spared=self.allow_place_texts,
                                                    names=words("first_names") + tuple(deny_names)))
        ner_cues = self.rules.patterns.get("ner_evidence", {})
        evidence = NerEvidence(
            common=self.common_words,
            names=frozenset(gazetteer_words),
            person_before=PhraseIndex(tokenizer, ner_cues.get("person_cues_before", [])),
            person_after=frozenset(w.lower() for w in ner_cues.get("person_cues_after", [])),
            org_before=PhraseIndex(tokenizer, ner_cues.get("org_cues_before", [])),
            place_before=PhraseIndex(tokenizer, ner_cues.get("place_cues_before", [])),
            therapy_words=frozenset(w.lower() for w in ner_cues.get("therapy_words", [])),
            name_last_words=frozenset(w.lower().rstrip(".") for w in words("street_suffixes") + words("org_suffixes")
                                      + tuple(ner_cues.get("place_words", [])) if " " not in w),
            org_place_after=frozenset(w.lower() for w in ner_cues.get("org_place_cues_after", [])),
        )
        public = self.rules.patterns.get("public_figures", {})
        before = sorted({re.escape(str(c)) for c in public.get("before", [])}, key=len, reverse=True)
        after = sorted({re.escape(str(c)) for c in public.get("after", [])}, key=len, reverse=True)
        # before_patterns: regexes for cues a word list cannot hold ('"Some Title" by X')
        patterns = "".join("|(?:" + str(p) + ")" for p in public.get("before_patterns", []))
        # (a title may stand between the cue and the name: "a book by Dr X")
        self._public_before = re.compile(r"(?:(?:^|\W)(?:" + "|".join(before) + r")" + patterns + r")\s*[,:]?\s*"
                                         r"(?:(?:dr|prof|professor|mr|mrs|ms|sir|dame)\.?\s+)?$",
                                         re.IGNORECASE) if before else None
        self._public_after = re.compile(r"^(?:" + "|".join(after) + r")\b", re.IGNORECASE) if after else None
        # A name found once is a name wherever else the post writes it the same way; a word-name
        # opening a sentence before "you", "it"… ("Hope you're well") stays the word.
        self._ambiguous_names = frozenset(w.lower() for w in words("ambiguous_names"))
        self._not_name_before = frozenset(w.lower() for w in cues.get("word_not_name_before", []))
        signoff = self.rules.patterns.get("signoff", {})
        registry.add_recognizer(SignOffRecognizer(
            closings=[str(c) for c in signoff.get("closings", [])],
            not_names=[str(c) for c in signoff.get("not_names", [])],
            common=self.common_words, names=frozenset(w.lower() for w in words("first_names"))))
        registry.add_recognizer(NerRecognizer(ambiguous_names=words("ambiguous_names"),
                                              not_name_before=cues.get("word_not_name_before", []),
                                              evidence=evidence))
        # Presidio needs an NlpEngine object for stop-word checks in context scoring; it is
        # handed the already loaded pipeline so nothing is loaded (or downloaded) again.
        self._presidio_nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": self.model.name}])
        self._presidio_nlp.nlp = {"en": self.nlp}
        self.analyzer = AnalyzerEngine(registry=registry, nlp_engine=self._presidio_nlp,
                                       supported_languages=["en"])
        # A learned second opinion on ages (learned_age.py), added to the rules' findings; on
        # unless turned off, and a rules folder without its model file is refused (fail closed).
        self.age_model: AgeModel | None = None
        if learned_age and "AGE" in self.entities:
            if "age" not in self.rules.learned:
                raise PostkitError("the learned age model is missing",
                                   path=self.rules.folder / LEARNED_MODELS["age"],
                                   fix="copy rules/deid/age_model.json into the rules folder "
                                       "(or turn the learned age model off)")
            self.age_model = AgeModel(self.rules.learned["age"], words("first_names") + tuple(deny_names))

    # ----------------------------------------------------------------- public

    def analyze(self, texts: Sequence[Any]) -> list[list[Finding]]:
        """Findings per text (offsets into that text), non-overlapping, sorted."""
        # Strings spaCy interns while processing this batch are freed afterwards, so memory
        # stays flat over millions of posts (the vocabulary would otherwise only grow).
        with self.nlp.memory_zone():
            return self._analyze(texts)

    def _analyze(self, texts: Sequence[Any]) -> list[list[Finding]]:
        clean = [as_text(t) for t in texts]
        # Each text is analysed with its missing sentence spaces put back ("now.I was");
        # findings are mapped back to the original offsets.
        repaired = [repair_boundaries(text, self.common_words) for text in clean]
        pieces: list[tuple[int, int, str]] = []  # (text index, offset, piece)
        for index, (text, _) in enumerate(repaired):
            for offset, piece in _chunks(text):
                pieces.append((index, offset, piece))
        entities = self._gated_ner([p for _, _, p in pieces])
        results: list[list[Finding]] = [[] for _ in clean]
        for (index, offset, piece), ents in zip(pieces, entities):
            inserted = repaired[index][1]
            for finding in self._analyze_one(piece, ents):
                start = to_original(finding.start + offset, inserted)
                end = to_original(finding.end + offset, inserted)
                start, end = _trim(clean[index], start, end)
                if start < end:
                    results[index].append(Finding(start, end, finding.entity_type, finding.score,
                                                  finding.recognizer))
        if self.age_model is not None:
            for text, found in zip(clean, results):
                # an overlap with a rules age is merged below (the model may add its unit)
                taken = [(f.start, f.end) for f in found if f.entity_type != "AGE"]
                found.extend(Finding(start, end, "AGE", score, "learned_age")
                             for start, end, score in self.age_model.find(text, taken))
        return [merge_findings(found) for found in results]

    # ----------------------------------------------------------------- internals

    def _needs_ner(self, sentence: str) -> bool:
        for position, word in enumerate(_WORD.findall(sentence)):
            if not word[0].isupper() or word in _PRONOUN_I:
                continue
            if position == 0 and word.lower() in self.common_starters:
                continue
            if word.lower() in self.allow_texts or word.lower() in self.explained:
                continue
            return True
        return False

    def _gated_ner(self, texts: list[str]) -> list[list[tuple[int, int, str]]]:
        """spaCy entities per text, from one nlp.pipe over the sentences that need NER.

        Speed: each sentence is its own doc, so its entities depend on its text alone; a
        sentence that occurs more than once in the batch (a greeting, a sign-off, a quoted
        line) is read by the NER once and its entities reused. How much this saves depends
        on the corpus: half of the NER sentences of the templated demo corpus repeat, a
        few in a hundred of real posts.
        """
        jobs: list[tuple[int, int, str]] = []
        for index, text in enumerate(texts):
            self.stats["chars"] += len(text)
            for match in _SENTENCE.finditer(text):
                if self._needs_ner(match.group(0)):
                    jobs.append((index, match.start(), match.group(0)))
                    self.stats["ner_chars"] += len(match.group(0))
        unique = list(dict.fromkeys(sentence for _, _, sentence in jobs))
        self.stats["ner_run_chars"] += sum(map(len, unique))
        entities: dict[str, list[tuple[int, int, str]]] = {
            sentence: [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
            for sentence, doc in zip(unique, self.nlp.pipe(unique, batch_size=256))
        }
        found: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        for index, offset, sentence in jobs:
            found[index].extend((start + offset, end + offset, label) for start, end, label in entities[sentence])
        return found

    def _analyze_one(self, text: str, ents: list[tuple[int, int, str]]) -> list[Finding]:
        if not text.strip():
            return []
        from spacy.util import filter_spans

        doc = self.nlp.make_doc(text)
        spans = [doc.char_span(s, e, label=label, alignment_mode="expand") for s, e, label in ents]
        doc.ents = filter_spans([s for s in spans if s is not None])
        artifacts = _Artifacts(doc, self._presidio_nlp)
        results = self.analyzer.analyze(text, language="en", entities=self.entities,
                                        nlp_artifacts=artifacts, score_threshold=self.score_threshold)
        if not results:
            return []  # most posts: the allow-lists below have nothing to spare
        allowed = [(doc[s].idx, doc[e - 1].idx + len(doc[e - 1])) for s, e, _ in self.allow.find(doc)]
        places = [(doc[s].idx, doc[e - 1].idx + len(doc[e - 1])) for s, e, _ in self.allow_places.find(doc)]
        findings = []
        public: set[str] = set()  # names the post shows to be public figures
        for result in results:
            span_text = text[result.start:result.end]
            bare = span_text.strip(" .,!?")
            if bare.lower() in self.allow_texts or bare.lstrip("@") in self.acronyms:
                continue
            if any(a <= result.start and result.end <= b for a, b in allowed):
                continue
            if result.entity_type in ("LOCATION", "ORG") and (
                    _strip_article(bare).lower() in self.allow_place_texts
                    or any(a <= result.start and result.end <= b for a, b in places)):
                continue
            if result.entity_type == "PERSON" and self._public_figure(text, result.start, result.end):
                public.add(span_text.strip())
                continue
            name = (result.recognition_metadata or {}).get("recognizer_name", "")
            start, end = _trim(text, result.start, result.end)
            if start < end:
                findings.append(Finding(start, end, result.entity_type, result.score, name))
        if public:
            # "when X was President … X's policies": shown once to be a public figure, X is one
            # in every mention
            findings = [f for f in findings if f.entity_type != "PERSON" or text[f.start:f.end] not in public]
        return findings + self._repeated_names(text, findings)

    def _repeated_names(self, text: str, findings: list[Finding]) -> list[Finding]:
        """Every other mention of a capitalised name found once in the post.

        Why: a post that names someone twice ("I'm Will by the way. Will as in William")
        leaks the name if only the mention with a cue is replaced. Only names written with
        a capital (not in capitals: "KT" may be an abbreviation elsewhere) are repeated, as
        written; a word-name opening a sentence before "you", "it"… stays the word.
        """
        names = {text[f.start:f.end] for f in findings if f.entity_type == "PERSON"}
        names = {n for n in names if len(n) > 1 and n[0].isupper() and not n.isupper()
                 and all(c.isalpha() or c in " '’-." for c in n)}
        if not names:
            return []
        taken = [(f.start, f.end) for f in findings]
        extra = []
        for name in sorted(names):
            for match in re.finditer(r"(?<![\w'’-])" + re.escape(name) + r"(?![\w-])", text):
                start, end = match.span()
                if any(a < end and start < b for a, b in taken):
                    continue
                if name.lower() in self._ambiguous_names:
                    before = text[:start].rstrip(" \t\"'“‘")
                    following = re.match(r"\s*([\w'’]+)", text[end:])
                    if (not before or before[-1] in ".!?\n") and following is not None \
                            and following.group(1).lower() in self._not_name_before:
                        continue
                extra.append(Finding(start, end, "PERSON", 0.5, "repeated_name"))
                taken.append((start, end))
        return extra


    def _public_figure(self, text: str, start: int, end: int) -> bool:
        """"President X", "the book by X", "X's book": a public figure or author, not a person to protect."""
        if self._public_before is not None and self._public_before.search(text[max(0, start - 80):start]):
            return True
        return self._public_after is not None and bool(self._public_after.match(text[end:end + 24]))


class _OrderedRegistry(RecognizerRegistry):
    """Presidio's registry, handing out the chosen recognizers in the order they were added.

    Presidio collects them in a ``set`` of recognizer objects, whose order follows memory
    addresses: when two recognizers find the very same span, type and score, which one
    is named in ``--spans-out`` then changed from run to run. (What is found and replaced
    never depended on it.)
    """

    def get_recognizers(self, language, entities=None, all_fields=False, ad_hoc_recognizers=None):
        chosen = super().get_recognizers(language=language, entities=entities, all_fields=all_fields,
                                         ad_hoc_recognizers=ad_hoc_recognizers)
        order = {id(r): n for n, r in enumerate([*self.recognizers, *(ad_hoc_recognizers or [])])}
        return sorted(chosen, key=lambda r: order.get(id(r), len(order)))


class _Artifacts(NlpArtifacts):
    """Presidio's NLP artifacts for one prepared doc, with the context-only parts made lazy.

    Speed: Presidio's ``NlpArtifacts`` computes every token's offset and a stop-word
    filtered keyword list (a vocabulary lookup per token) up front, but only its context
    enhancer reads them, and only for a finding of a recognizer with context words (a
    few posts in a hundred). Here they are computed on first use, with Presidio's own
    ``set_keywords``, so what the enhancer sees is unchanged. ``lemmas`` are the
    lowercased tokens the recognizers share (:func:`token_lowers`).
    """

    def __init__(self, doc, nlp_engine) -> None:  # every attribute NlpArtifacts.__init__ sets
        self.entities = list(doc.ents)
        self.tokens = doc
        self.lemmas = token_lowers(doc)
        self.nlp_engine = nlp_engine
        self.scores = [0.85] * len(self.entities)

    @cached_property
    def tokens_indices(self) -> list[int]:  # type: ignore[override]
        return [t.idx for t in self.tokens]

    @cached_property
    def keywords(self) -> list[str]:  # type: ignore[override]
        return self.set_keywords(self.nlp_engine, self.lemmas, "en")


def _strip_article(text: str) -> str:
    return text[4:] if text[:4].lower() == "the " else text


def as_text(value: Any) -> str:
    """Posts arrive from any format: None/NaN mean no text; other values are read as text."""
    if value is None:
        return ""
    if isinstance(value, float) and value != value:
        return ""
    return value if isinstance(value, str) else str(value)


_EDGE_PUNCTUATION = " \t\n-–—,.;:!?\"'“”‘’*~"


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """A span without the punctuation or spaces a model sometimes includes ("- Lee" → "Lee")."""
    while start < end and text[start] in _EDGE_PUNCTUATION:
        start += 1
    while end > start and text[end - 1] in _EDGE_PUNCTUATION:
        end -= 1
    return start, end


def _chunks(text: str) -> list[tuple[int, str]]:
    """Very long posts in pieces of at most _MAX_CHUNK characters, split at whitespace."""
    if len(text) <= _MAX_CHUNK:
        return [(0, text)]
    pieces, start = [], 0
    while start < len(text):
        end = min(start + _MAX_CHUNK, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + _MAX_CHUNK // 2, end)
            end = cut if cut > start else end
        pieces.append((start, text[start:end]))
        start = end
    return pieces


def merge_findings(findings: list[Finding]) -> list[Finding]:
    """Overlapping findings become one span covering both.

    The longer finding names the type ("uni of leeds" is an ORG that contains a place);
    between equally long ones, the more confident wins.
    """
    merged: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.start, -(f.end - f.start))):
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            winner = last if (last.end - last.start, last.score) >= (finding.end - finding.start, finding.score) \
                else finding
            recognizers = last.recognizer if finding.recognizer in last.recognizer.split("+") \
                else f"{last.recognizer}+{finding.recognizer}"
            merged[-1] = Finding(last.start, max(last.end, finding.end), winner.entity_type,
                                 max(last.score, finding.score), recognizers)
        else:
            merged.append(finding)
    return merged
