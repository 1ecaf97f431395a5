"""Cross-validation on the real tune half, shared by cv_ranker.py, train_ranker.py and
learning_curve.py (a helper module, not a script).

Everything here reads the ``tune`` split only: the score half is read only to report
(scripts/eval_coding.py --real score), never to choose anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from postkit.coding.features import post_features
from postkit.coding.ranker import AreaRanker, lemma_tokens, read_labelled, train_ranker
from postkit.coding.realset import load_real_cmo
from postkit.coding.tagger import Tagger
from eval_coding import commonest_predict, evaluate, tagger_predict_all

# The synthetic, written-for-purpose sets the first ranker was trained on (never the
# held-out ones); measured as an optional addition to the real rows.
SYNTHETIC = ("tests/data/cmo_forum_dev.jsonl", "tests/data/cmo_forum_dev2.jsonl", "tests/data/cmo_forum_eval.jsonl",
             "tests/data/cmo_forum_dev3.jsonl:tune")


# Chosen by cross-validation on the tune half (scripts/cv_ranker.py --real --grid): the
# ranker's regularisation, the post-feature weight, and the tagger blending it carries.
REAL_C = 1.0
REAL_FEATURE_WEIGHT = 2.0
# n-grams must occur in at least 2 training texts (no word of a single real post ships).
REAL_MIN_DF = 2
# Sample weight of the synthetic sets beside the real tune rows (CV: 0.1 beat 0.3, 1 and none).
REAL_SYNTHETIC_WEIGHT = 0.1
REAL_SETTINGS = {"ranker_blend": 1.0, "model_only_weight": 1.0, "model_only_min_p": 0.3,
                 "model_only_min_weight": 0.05, "model_everywhere": 1.0, "strong_score": 0.5}


@dataclass
class Prepared:
    """Texts parsed once: rows, spaCy docs, lemma lists and post features."""

    rows: list[dict[str, Any]]
    docs: list[Any]
    lemmas: list[list[str]]
    features: list[dict[str, float]]


def prepare(tagger: Tagger, rows: list[dict[str, Any]]) -> Prepared:
    docs = list(tagger.nlp.pipe([r["text"] for r in rows]))
    return Prepared(rows, docs, [[lemma for lemma, _ in lemma_tokens(d)] for d in docs],
                    [post_features(r["text"]) for r in rows])


def load_tune(tagger: Tagger) -> Prepared:
    return prepare(tagger, load_real_cmo("tune"))


def load_synthetic(tagger: Tagger, root: str) -> Prepared:
    return prepare(tagger, [r for spec in SYNTHETIC for r in read_labelled(f"{root}/{spec}")])


def folds(labels: Sequence[str], k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k folds (areas with fewer than k posts are spread as far as they go)."""
    from sklearn.model_selection import StratifiedKFold

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


def fit(data: Prepared, index: Sequence[int], *, c: float, feature_weight: float | None,
        synthetic: Prepared | None = None, synthetic_weight: float = 1.0,
        settings: dict[str, float] | None = None) -> AreaRanker:
    """A ranker on ``data`` rows ``index`` (plus, optionally, the synthetic rows);
    ``feature_weight`` None means TF-IDF alone."""
    lemmas = [data.lemmas[i] for i in index]
    areas = [data.rows[i]["area"] for i in index]
    polarities = [data.rows[i]["polarity"] for i in index]
    feats = [data.features[i] for i in index]
    weights = [1.0] * len(index)
    if synthetic is not None:
        lemmas += synthetic.lemmas
        areas += [r["area"] for r in synthetic.rows]
        polarities += [r["polarity"] for r in synthetic.rows]
        feats += synthetic.features
        weights += [synthetic_weight] * len(synthetic.rows)
    return train_ranker(lemmas, areas, polarities, c=c, post_features=None if feature_weight is None else feats,
                        feature_weight=feature_weight or 1.0, settings=settings, sample_weight=weights,
                        min_df=REAL_MIN_DF, polarity_weight=[1.0] * len(weights))


def model_ranked(ranker: AreaRanker, data: Prepared, i: int) -> list[str]:
    """Outcomes by the ranker's probability alone (how good the model is by itself)."""
    x = ranker.features(data.lemmas[i], data.features[i] if ranker.feature_names else None)
    probs = ranker.area_probabilities(x)
    return sorted(probs, key=lambda a: (-probs[a], a))


def score_tagger(tagger: Tagger, ranker: AreaRanker | None, data: Prepared, index: Sequence[int]) -> list[tuple]:
    """The tagger's ranked outcomes and direction for rows ``index`` (eval_coding's rule)."""
    tagger.ranker = ranker
    return tagger_predict_all(tagger, [], no_area=True, docs=[data.docs[i] for i in index])


def summarise(rows: list[dict[str, Any]], preds: list[tuple]) -> dict[str, float]:
    result = evaluate(rows, preds)
    return {"top1": result["top1"], "top2": result["top2"], "polarity": result["polarity"]}


def baseline(rows: list[dict[str, Any]]) -> dict[str, float]:
    return summarise(rows, commonest_predict(rows, no_area=True))


def cross_validate(tagger: Tagger, data: Prepared, *, c: float = REAL_C, feature_weight: float | None = REAL_FEATURE_WEIGHT,
                   settings: dict[str, float] | None = None, synthetic: Prepared | None = None,
                   synthetic_weight: float = 1.0, k: int = 5, seeds: Sequence[int] = (0, 1, 2),
                   train_sizes: dict[int, Sequence[int]] | None = None) -> dict[str, dict[str, float]]:
    """Stratified k-fold CV on ``data`` (the tune half), repeated over ``seeds``: the
    tagger with each fold's ranker, the ranker's own probabilities alone, and the
    commonest-area baseline, each scored by eval_coding's rule on the held-out folds."""
    settings = dict(REAL_SETTINGS if settings is None else settings)
    labels = [r["area"] for r in data.rows]
    tag_rows, tag_preds, model_preds = [], [], []
    for seed in seeds:
        for train, test in folds(labels, k, seed):
            ranker = fit(data, train, c=c, feature_weight=feature_weight, synthetic=synthetic,
                         synthetic_weight=synthetic_weight, settings=settings)
            tag_rows += [data.rows[i] for i in test]
            tag_preds += score_tagger(tagger, ranker, data, test)
            model_preds += [(model_ranked(ranker, data, i), None) for i in test]
    out = {"tagger": summarise(tag_rows, tag_preds), "model alone": summarise(tag_rows, model_preds),
           "commonest area": baseline(tag_rows)}
    # The same held-out predictions scored per labelling round (round 1: the study's "thank
    # you for" posts; round 2: a wider gratitude draw enriched for the minority areas).
    for label_round in sorted({r.get("round", 1) for r in tag_rows}):
        keep = [n for n, r in enumerate(tag_rows) if r.get("round", 1) == label_round]
        part = [tag_rows[n] for n in keep]
        out[f"tagger, round {label_round}"] = summarise(part, [tag_preds[n] for n in keep])
        out[f"model alone, round {label_round}"] = summarise(part, [model_preds[n] for n in keep])
        out[f"commonest, round {label_round}"] = baseline(part)
    return out
