"""Learning from the study's own coders: retrain the area ranker from the coding store, and
put the excerpts the ranker is least sure of first.

Why it exists
-------------
Suggestions trained on one set of posts transfer poorly to another forum (synthetic
training text did not transfer to real posts at all). The coders of a study produce
exactly the labels that would help: every accept, add and reject in the coding store
says what the study's own posts are about. So the study's ranker is retrained from
those decisions (``postkit code retrain``, :func:`retrain_if_due`, or the review app in
the background after every N decisions, :mod:`postkit.review.learner`), and the excerpts
still to code can be ordered so coders label
the most informative ones first (:func:`uncertainty_order`, active learning by margin or
entropy).

How decisions become training rows
----------------------------------
Per unit and coder (each coder's latest decision per code, ``CodingStore.codings``):

* codes the coder applied (accept/add) give the unit's area — the area with most applied
  codes (ties: the higher suggestion score, then the area id) — and its direction (the
  majority polarity of the applied directional codes; neutral codes do not vote);
* a coder who rejected **every** suggestion of the unit and applied nothing coded it
  "none" (no area): that is where rejections are evidence. A rejection beside an applied
  code only says that code is wrong, which a one-label-per-post model cannot use, so it
  is left out;
* a unit the coder has only partly decided (some suggestions undecided, nothing applied)
  is not used yet.

Across coders a unit takes the label most of its coders gave; a tie (coders disagree
evenly) leaves it out until they resolve it. Suggestions are never labels: only human
decisions count.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PostkitError
from .codebook import Codebook, load_codebook
from .ranker import NO_AREA, AreaRanker, lemmatise, load_ranker, train_rows
from .store import CodingStore

RANKER_FILENAME = "ranker.json"
# Fewer coded units than this give a ranker no better than guessing the commonest area.
MIN_UNITS = 10
# Regularisation and post-feature weight for a study's ranker: the values cross-validation
# chose for the packaged ranker on real posts (scripts/cv_ranker.py --real).
DEFAULT_C = 1.0
DEFAULT_FEATURE_WEIGHT = 2.0
# n-grams must occur in at least this many coded units (as for the packaged ranker).
MIN_DF = 2


class NotEnoughCodings(PostkitError):
    """The store does not yet hold enough decided units to train on; ``units``,
    ``outcomes`` and ``needed`` say how far off it is (for a status line)."""

    def __init__(self, message: str, *, units: int = 0, outcomes: int = 0, needed: int = MIN_UNITS,
                 **where: Any) -> None:
        super().__init__(message, **where)
        self.units, self.outcomes, self.needed = units, outcomes, needed


@dataclass
class RetrainResult:
    """What :func:`retrain_from_store` did."""

    path: Path
    units: int                         # labelled units trained on
    outcomes: dict[str, int]           # label -> units
    skipped_ties: int                  # units whose coders disagreed evenly
    decisions: int                     # decisions in the store when trained
    ranker: AreaRanker = field(repr=False)


def _store_path(store: CodingStore | str | Path) -> Path:
    return Path(store.path) if isinstance(store, CodingStore) else Path(store)


def default_ranker_path(store: CodingStore | str | Path) -> Path:
    """Where a study's ranker lives: ``ranker.json`` beside the store's SQLite file."""
    path = _store_path(store)
    folder = path if path.is_dir() else path.parent
    return folder / RANKER_FILENAME


def _unit_text(text: Any, start: Any, end: Any) -> str:
    text = text if isinstance(text, str) else ""
    s = int(start) if start is not None and start == start else 0
    e = int(end) if end is not None and end == end else len(text)
    return text[s:e]


def coded_units(store: CodingStore, codebook: Codebook | None = None) -> tuple[list[dict[str, Any]], int]:
    """Training rows ``{"unit_id", "text", "area", "polarity"}`` from the coders' decisions
    (rules in the module docstring), and the number of units left out because their
    coders disagreed evenly."""
    codebook = codebook or load_codebook()
    codes = {code.id: code for _, _, code in codebook.codes()}
    codings = store.codings()
    suggestions = store.suggestions()
    suggested: dict[str, set[str]] = defaultdict(set)
    best_score: dict[tuple[str, str], float] = {}
    for row in suggestions.itertuples(index=False):
        suggested[row.unit_id].add(row.code_id)
        score = float(row.score) if row.score is not None and row.score == row.score else 0.0
        best_score[(row.unit_id, row.code_id)] = max(best_score.get((row.unit_id, row.code_id), 0.0), score)
    per_coder: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for (unit_id, _coder), group in codings.groupby(["unit_id", "coder"], sort=True):
        applied = [c for c, a in zip(group["code_id"], group["applied"]) if a and c in codes]
        if applied:
            counts = Counter(codes[c].area_id for c in applied)
            area = max(counts, key=lambda a: (counts[a], max(best_score.get((unit_id, c), 0.0)
                                                            for c in applied if codes[c].area_id == a), a))
            votes = Counter(codes[c].polarity for c in applied if codes[c].area_id == area
                            and codes[c].polarity in ("positive", "negative"))
            polarity = None
            if votes and votes["positive"] != votes["negative"]:
                polarity = votes.most_common(1)[0][0]
            per_coder[unit_id].append((area, polarity))
        else:
            rejected = set(group["code_id"])
            if suggested.get(unit_id) and suggested[unit_id] <= rejected:
                per_coder[unit_id].append((NO_AREA, NO_AREA))
    if not per_coder:
        return [], 0
    excerpts = store.excerpts().set_index("unit_id")
    rows, ties = [], 0
    for unit_id in sorted(per_coder):
        labels = Counter(area for area, _ in per_coder[unit_id])
        ranked = labels.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            ties += 1
            continue
        area = ranked[0][0]
        polarities = Counter(p for a, p in per_coder[unit_id] if a == area and p is not None)
        polarity = polarities.most_common(1)[0][0] if polarities else None
        if unit_id not in excerpts.index:
            continue
        record = excerpts.loc[unit_id]
        text = _unit_text(record["text"], record["start"], record["end"])
        if text.strip():
            rows.append({"unit_id": unit_id, "text": text, "area": area, "polarity": polarity})
    return rows, ties


def retrain_from_store(store: CodingStore | str | Path, *, output: str | Path | None = None,
                       codebook: Codebook | None = None, nlp: Any = None, c: float = DEFAULT_C,
                       feature_weight: float = DEFAULT_FEATURE_WEIGHT, min_units: int = MIN_UNITS) -> RetrainResult:
    """Train the study's area ranker from the coders' decisions and write it atomically
    (default: ``ranker.json`` beside the store), for ``postkit tag --ranker FILE``.

    The new ranker carries the packaged ranker's blending settings, so only what it
    learnt differs. Raises :class:`NotEnoughCodings` with fewer than ``min_units``
    labelled units or a single outcome.
    """
    if isinstance(store, CodingStore):
        return _retrain(store, output, codebook, nlp, c, feature_weight, min_units)
    with CodingStore(store, read_only=True) as opened:
        return _retrain(opened, output, codebook, nlp, c, feature_weight, min_units)


def _retrain(store: CodingStore, output: str | Path | None, codebook: Codebook | None, nlp: Any, c: float,
             feature_weight: float, min_units: int) -> RetrainResult:
    rows, ties = coded_units(store, codebook)
    outcomes = Counter(r["area"] for r in rows)
    if len(rows) < min_units or len(outcomes) < 2:
        raise NotEnoughCodings(
            f"the coding store has {len(rows)} coded unit(s) in {len(outcomes)} outcome(s); retraining needs "
            f"at least {min_units} in two outcomes (two areas, or an area and none)", path=_store_path(store),
            units=len(rows), outcomes=len(outcomes), needed=min_units,
            fix="code more units first (accept or add the codes that apply; reject every suggestion of a unit "
                "with no area)")
    decisions = len(store.decisions())
    head = store.head()
    packaged = load_ranker()
    meta = {"training": [{"store": _store_path(store).name, "decisions": decisions,
                          "chain_head": head[1] if head else None, "rows": len(rows)}],
            "store_decisions": decisions, "outcomes": dict(sorted(outcomes.items())), "skipped_ties": ties}
    ranker = train_rows(rows, c=c, nlp=nlp, features=True, feature_weight=feature_weight, meta=meta,
                        settings=packaged.settings, min_df=MIN_DF)
    path = Path(output) if output is not None else default_ranker_path(store)
    ranker.save(path)
    return RetrainResult(path=path, units=len(rows), outcomes=dict(sorted(outcomes.items())), skipped_ties=ties,
                         decisions=decisions, ranker=ranker)


def retrain_if_due(store: CodingStore | str | Path, *, every: int = 25, output: str | Path | None = None,
                   **options: Any) -> RetrainResult | None:
    """Retrain when at least ``every`` decisions were recorded since the ranker at
    ``output`` (default ``ranker.json`` beside the store) was trained; for the review app
    to call after each decision. Returns the result, or None when not due or when the
    store does not hold enough coded units yet. Other errors propagate."""
    if every < 1:
        raise PostkitError("every must be at least 1", fix="retrain after every N >= 1 decisions")
    path = Path(output) if output is not None else default_ranker_path(store)
    last = 0
    if path.exists():
        try:
            last = int(load_ranker(path).meta.get("store_decisions", 0))
        except PostkitError:
            last = 0
    if isinstance(store, CodingStore):
        decisions = len(store.decisions())
    else:
        with CodingStore(store, read_only=True) as opened:
            decisions = len(opened.decisions())
    if decisions - last < every:
        return None
    try:
        return retrain_from_store(store, output=path, **options)
    except NotEnoughCodings:
        return None


# ---------------------------------------------------------------------- uncertainty


def uncertainty(ranker: AreaRanker, texts: Sequence[str], *, nlp: Any = None,
                lemma_lists: Sequence[Sequence[str]] | None = None) -> list[dict[str, Any]]:
    """Per text: ``{"margin", "entropy", "top"}`` of the ranker's outcome probabilities.
    ``margin`` is P(best) - P(second) (small = unsure); ``entropy`` is in nats (large =
    unsure); ``top`` is the most likely outcome."""
    from .features import post_features

    lemma_lists = lemmatise(texts, nlp) if lemma_lists is None else lemma_lists
    out = []
    for text, lemmas in zip(texts, lemma_lists):
        probs = ranker.area_probabilities(ranker.features(lemmas, post_features(text)))
        ordered = sorted(probs.values(), reverse=True)
        margin = ordered[0] - (ordered[1] if len(ordered) > 1 else 0.0)
        entropy = -sum(p * math.log(p) for p in ordered if p > 0)
        out.append({"margin": round(margin, 6), "entropy": round(entropy, 6),
                    "top": max(probs, key=lambda a: (probs[a], a))})
    return out


def uncertainty_order(store: CodingStore, ranker: AreaRanker | str | Path | None = None, *,
                      coder: str | None = None, method: str = "margin", nlp: Any = None) -> list[str]:
    """The unit ids still to code, most informative first, for the review app's excerpt order.

    "Still to code": no decision yet by ``coder`` (by anyone when ``coder`` is None).
    ``ranker``: a ranker or its file; default the study's (``ranker.json`` beside the
    store) when it exists, else the packaged one. ``method``: ``margin`` (smallest gap
    between the two likeliest outcomes first) or ``entropy`` (largest first). Ties keep
    unit id order, so the order is deterministic.
    """
    if method not in ("margin", "entropy"):
        raise PostkitError(f"unknown uncertainty method {method!r}", fix="use margin or entropy")
    if ranker is None:
        study = default_ranker_path(store)
        ranker = load_ranker(study) if study.exists() else load_ranker()
    elif not isinstance(ranker, AreaRanker):
        ranker = load_ranker(ranker)
    decided = store.coded_units()
    if coder is not None:
        decided = decided[decided["coder"] == coder]
    done = set(decided["unit_id"])
    excerpts = store.excerpts()
    todo = [(r.unit_id, _unit_text(r.text, r.start, r.end)) for r in excerpts.itertuples(index=False)
            if r.unit_id not in done]
    if not todo:
        return []
    scores = uncertainty(ranker, [t for _, t in todo], nlp=nlp)
    if method == "margin":
        keys = [(s["margin"], unit_id) for (unit_id, _), s in zip(todo, scores)]
    else:
        keys = [(-s["entropy"], unit_id) for (unit_id, _), s in zip(todo, scores)]
    return [unit_id for _, unit_id in sorted(keys)]
