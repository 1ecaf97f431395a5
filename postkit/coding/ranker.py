"""A small learned text model that re-ranks theory areas and sets a post's pathway direction.

Why it exists
-------------
The codebook's cues say *which codes* a post shows and *where* (evidence spans), but cue
lists alone rank the four theory areas poorly on forum text worded in ways no cue
anticipated: generic self-efficacy words ("tried", "cope") outvote the situation a post
describes, and a mechanism such as "writing it down" carries the codebook's positive
polarity even in a post about writing making things worse. Writing more cues from errors
stopped generalising (see ``docs/benchmarks.md``). A linear model over the post's lemma
unigrams and bigrams, trained on labelled forum-style posts, sees the whole post and
generalises better; blended with the cue scores it helps on every held-out set we have.

What it is
----------
Two scikit-learn ``LogisticRegression`` models over sublinear TF-IDF features of lemma
n-grams: a multinomial one for the theory area and a binary one for the pathway direction
(positive/negative). They are trained by ``scripts/train_ranker.py`` and shipped as plain
JSON (``rules/cmo_ranker.json``: vocabulary, idf, coefficients, the training files and
their hashes), not as a pickle, because a pickle runs code when loaded and cannot be
reviewed or diffed; inference is a sparse dot product and a softmax, checked against
scikit-learn's own ``predict_proba`` in the tests.

It never adds a code on its own judgement: it scales the cue-based scores of each area's
codes, votes on the direction, and, for an area it is confident about but no cue matched,
adds a low-scoring area suggestion whose evidence is the words that weighed most.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PostkitError

FORMAT = "postkit-area-ranker/2"
# Version 1 files (TF-IDF only, no post-level features, no "none" outcome) still load.
FORMATS = ("postkit-area-ranker/1", FORMAT)
RANKER_FILE = "cmo_ranker.json"
# The outcome "no theory area" (a ranker trained on posts coded none may predict it).
NO_AREA = "none"


def lemma_tokens(tokens: Iterable[Any]) -> list[tuple[str, int]]:
    """(lowercase lemma, token index) of a spaCy span's words: punctuation and spaces dropped.

    Training and inference both go through this function, so the features always agree.
    (Marking words after a negator, the classic bag-of-words fix for "didn't help", did
    not help in cross-validation on our few hundred posts; the tagger's cue negation and
    the polarity lexicon's tone handle negation instead.)
    """
    return [(t.lemma_.lower(), t.i) for t in tokens if not (t.is_punct or t.is_space)]


def ngrams(lemmas: Sequence[str]) -> list[str]:
    """Unigrams and bigrams (joined by a space), in text order."""
    return list(lemmas) + [f"{a} {b}" for a, b in zip(lemmas, lemmas[1:])]


@dataclass
class AreaRanker:
    """Area probabilities and pathway direction of a text from its lemma n-grams."""

    vocabulary: dict[str, int]
    idf: list[float]
    areas: list[str]
    area_coef: list[dict[int, float]]     # per area: feature index -> weight (non-zero only)
    area_intercept: list[float]
    polarity_coef: dict[int, float]        # weight towards "positive"
    polarity_intercept: float
    meta: dict[str, Any] = field(default_factory=dict)
    version_hash: str = ""
    # Post-level features (postkit.coding.features) appended after the n-grams, at index
    # len(vocabulary) + j, each multiplied by feature_weight; empty for a text-only ranker.
    feature_names: list[str] = field(default_factory=list)
    feature_weight: float = 1.0
    # Tagger blending settings chosen (by cross-validation) for this ranker; they override
    # the tagger's defaults (see postkit.coding.tagger.DEFAULT_SETTINGS).
    settings: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ inference

    def features(self, lemmas: Sequence[str], post: dict[str, float] | None = None) -> dict[int, float]:
        """Sublinear, l2-normalised TF-IDF of the known n-grams (scikit-learn's formula),
        followed by the post-level features ``post`` (``features.post_features``) when
        this ranker uses them."""
        counts = Counter(g for g in ngrams(lemmas) if g in self.vocabulary)
        weights = {self.vocabulary[g]: (1.0 + math.log(n)) * self.idf[self.vocabulary[g]] for g, n in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values()))
        x = {i: w / norm for i, w in weights.items()} if norm else {}
        if self.feature_names and post:
            base = len(self.vocabulary)
            for j, name in enumerate(self.feature_names):
                value = float(post.get(name, 0.0)) * self.feature_weight
                if value:
                    x[base + j] = value
        return x

    def feature_drivers(self, x: dict[int, float], area: str, limit: int = 3) -> list[dict[str, Any]]:
        """The post-level features that push most towards ``area`` (name and their
        contribution to its logit, relative to the mean of the other outcomes): what a
        coder is shown beside the evidence spans."""
        if not self.feature_names or area not in self.areas:
            return []
        base, k = len(self.vocabulary), self.areas.index(area)
        others = [c for n, c in enumerate(self.area_coef) if n != k]
        drivers = []
        for j, name in enumerate(self.feature_names):
            value = x.get(base + j)
            if not value:
                continue
            mine = self.area_coef[k].get(base + j, 0.0)
            rest = sum(c.get(base + j, 0.0) for c in others) / max(len(others), 1)
            weight = (mine - rest) * value
            if weight > 0.0:
                drivers.append({"name": name, "weight": round(weight, 4)})
        drivers.sort(key=lambda d: (-d["weight"], d["name"]))
        return drivers[:limit]

    def area_probabilities(self, x: dict[int, float]) -> dict[str, float]:
        """Softmax over areas (multinomial logistic regression)."""
        logits = [b + sum(coef.get(i, 0.0) * w for i, w in x.items())
                  for coef, b in zip(self.area_coef, self.area_intercept)]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        total = sum(exps)
        return {area: e / total for area, e in zip(self.areas, exps)}

    def positive_probability(self, x: dict[int, float]) -> float:
        """Probability that the text illustrates a positive pathway."""
        z = self.polarity_intercept + sum(self.polarity_coef.get(i, 0.0) * w for i, w in x.items())
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def content_terms(self, lemmas: Sequence[str], x: dict[int, float], area: str,
                      limit: int = 3) -> tuple[float, list[tuple[int, int]]]:
        """How much the post's content words push towards ``area`` (the summed positive
        weight of n-grams holding a content word), and the positions ``[start, end)`` in
        ``lemmas`` of the ``limit`` heaviest: the explanation a coder sees for a
        model-only suggestion. Function words ("the", "for") carry weight in a model
        trained on a few hundred posts, but they explain nothing, so they never count here.
        """
        return _content_terms(lemmas, x, self.area_coef[self.areas.index(area)], self.vocabulary, limit)

    def direction_terms(self, lemmas: Sequence[str], x: dict[int, float], polarity: str,
                        limit: int = 3) -> tuple[float, list[tuple[int, int]]]:
        """Like :meth:`content_terms`, for the words that push towards ``polarity``."""
        sign = 1.0 if polarity == "positive" else -1.0
        coef = {i: sign * w for i, w in self.polarity_coef.items()}
        return _content_terms(lemmas, x, coef, self.vocabulary, limit)

    # ------------------------------------------------------------------ persistence

    def to_json(self) -> dict[str, Any]:
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {
            "format": FORMAT,
            "meta": self.meta,
            "features": list(self.feature_names),
            "feature_weight": self.feature_weight,
            "settings": dict(sorted(self.settings.items())),
            "terms": terms,
            "idf": [round(v, 6) for v in self.idf],
            "areas": self.areas,
            "area_coef": [{str(i): round(w, 6) for i, w in sorted(c.items())} for c in self.area_coef],
            "area_intercept": [round(v, 6) for v in self.area_intercept],
            "polarity_coef": {str(i): round(w, 6) for i, w in sorted(self.polarity_coef.items())},
            "polarity_intercept": round(self.polarity_intercept, 6),
        }

    def save(self, path: str | Path) -> None:
        from ..io import write_atomic

        write_atomic(path, json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")


def _content_terms(lemmas: Sequence[str], x: dict[int, float], coef: dict[int, float], vocabulary: dict[str, int],
                   limit: int) -> tuple[float, list[tuple[int, int]]]:
    from spacy.lang.en.stop_words import STOP_WORDS

    best: dict[str, tuple[float, int, int]] = {}
    n = len(lemmas)
    for pos, gram in enumerate(ngrams(lemmas)):
        index = vocabulary.get(gram)
        if index is None or index not in x or gram in best:
            continue
        if not any(w.isalpha() and w not in STOP_WORDS for w in gram.split(" ")):
            continue
        weight = coef.get(index, 0.0) * x[index]
        if weight > 0:
            best[gram] = (weight, pos, pos + 1) if pos < n else (weight, pos - n, pos - n + 2)
    total = sum(w for w, _, _ in best.values())
    ranked = sorted(best.values(), key=lambda t: (-t[0], t[1]))[:limit]
    return total, [(s, e) for _, s, e in sorted(ranked, key=lambda t: t[1])]


def load_ranker(path: str | Path | None = None) -> AreaRanker:
    """Read a ranker file (default: the packaged ``rules/cmo_ranker.json``)."""
    from ..deid.rules import rules_root

    path = Path(path) if path is not None else rules_root() / RANKER_FILE
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PostkitError(f"cannot read the area ranker ({exc.strerror})", path=path,
                           fix="give an existing file made by scripts/train_ranker.py, or --ranker none") from None
    try:
        data = json.loads(raw)
        if data.get("format") not in FORMATS:
            raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        terms = data["terms"]
        ranker = AreaRanker(
            vocabulary={t: i for i, t in enumerate(terms)},
            idf=[float(v) for v in data["idf"]],
            areas=list(data["areas"]),
            area_coef=[{int(i): float(w) for i, w in c.items()} for c in data["area_coef"]],
            area_intercept=[float(v) for v in data["area_intercept"]],
            polarity_coef={int(i): float(w) for i, w in data["polarity_coef"].items()},
            polarity_intercept=float(data["polarity_intercept"]),
            meta=dict(data.get("meta", {})),
            version_hash=hashlib.sha256(raw).hexdigest(),
            feature_names=[str(n) for n in data.get("features", [])],
            feature_weight=float(data.get("feature_weight", 1.0)),
            settings={str(k): float(v) for k, v in data.get("settings", {}).items()},
        )
        if len(ranker.idf) != len(terms) or len(ranker.area_coef) != len(ranker.areas):
            raise ValueError("terms, idf and coefficients disagree in length")
        from .features import FEATURE_NAMES

        unknown = [n for n in ranker.feature_names if n not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"it uses {len(unknown)} post feature(s) this postkit does not compute")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PostkitError(f"not a valid area ranker file ({exc})", path=path,
                           fix="re-create it with scripts/train_ranker.py") from None
    return ranker


def train_ranker(lemma_lists: Sequence[Sequence[str]], areas: Sequence[str], polarities: Sequence[str],
                 *, c: float = 4.0, meta: dict[str, Any] | None = None,
                 post_features: Sequence[dict[str, float]] | None = None, feature_weight: float = 1.0,
                 settings: dict[str, float] | None = None, sample_weight: Sequence[float] | None = None,
                 min_df: int = 1, polarity_weight: Sequence[float] | None = None) -> AreaRanker:
    """Fit the two models with scikit-learn on already-lemmatised texts.

    ``polarity_weight``: sample weights for the direction model when they should differ
    from ``sample_weight`` (real posts are nearly all positive and teach direction little,
    so the synthetic rows keep full weight there).
    ``min_df``: keep only n-grams found in at least that many texts. Training on real
    posts uses 2, so a word only one post contains (a name, a handle, a place) never
    enters the shipped vocabulary.

    ``areas`` may include ``"none"`` (no theory area): the ranker then predicts that
    outcome too. ``post_features`` (one ``features.post_features`` dict per text) adds
    the post-level features, scaled by ``feature_weight``. The direction model learns
    from rows whose polarity is positive or negative; with fewer than both it is left
    undecided (P(positive) = 0.5), so it never votes on direction from one-sided data.
    """
    import numpy as np
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from .features import FEATURE_NAMES

    if len(set(areas)) < 2:
        raise PostkitError("training needs at least two outcomes (two areas, or an area and none)",
                           fix="add labelled rows for another area (or rows coded none)")
    vectorizer = TfidfVectorizer(analyzer=ngrams, sublinear_tf=True, min_df=min_df)
    matrix = vectorizer.fit_transform(list(lemma_lists))
    names: list[str] = []
    if post_features is not None:
        names = list(FEATURE_NAMES)
        dense = np.array([[float(f.get(n, 0.0)) * feature_weight for n in names] for f in post_features])
        matrix = hstack([matrix, csr_matrix(dense)]).tocsr()
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    # One BLAS thread: on a few hundred rows, more threads only fight each other (4x slower on 2 busy cores).
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        area_model = LogisticRegression(C=c, max_iter=5000).fit(matrix, list(areas), sample_weight=weights)
    classes = list(area_model.classes_)
    if len(classes) == 2:  # binary: scikit-learn keeps one row for the second class
        coef_rows = [-area_model.coef_[0], area_model.coef_[0]]
        intercepts = [-area_model.intercept_[0] / 2, area_model.intercept_[0] / 2]
        coef_rows = [row / 2 for row in coef_rows]
    else:
        coef_rows, intercepts = list(area_model.coef_), list(area_model.intercept_)
    directional = [n for n, p in enumerate(polarities) if p in ("positive", "negative")]
    polarity_coef: dict[int, float] = {}
    polarity_intercept = 0.0
    pweights = weights if polarity_weight is None else np.asarray(polarity_weight, dtype=float)
    if {polarities[n] for n in directional} == {"positive", "negative"}:
        with threadpool_limits(1):
            polarity_model = LogisticRegression(C=c, max_iter=5000).fit(
                matrix[directional], [polarities[n] for n in directional],
                sample_weight=None if pweights is None else pweights[directional])
        sign = 1.0 if polarity_model.classes_[1] == "positive" else -1.0
        polarity_coef = {i: sign * float(w) for i, w in enumerate(polarity_model.coef_[0]) if w != 0.0}
        polarity_intercept = sign * float(polarity_model.intercept_[0])
    return AreaRanker(
        vocabulary={t: int(i) for t, i in vectorizer.vocabulary_.items()},
        idf=[float(v) for v in vectorizer.idf_],
        areas=classes,
        area_coef=[{i: float(w) for i, w in enumerate(row) if w != 0.0} for row in coef_rows],
        area_intercept=[float(v) for v in intercepts],
        polarity_coef=polarity_coef,
        polarity_intercept=polarity_intercept,
        meta=dict(meta or {}, C=c, **({"min_df": min_df} if min_df != 1 else {})),
        feature_names=names,
        feature_weight=feature_weight if names else 1.0,
        settings=dict(settings or {}),
    )


def text_fingerprint(text: str) -> str:
    """Short hash of a training text (lets an evaluation notice it is scoring training data)."""
    return hashlib.sha256(" ".join(text.split()).lower().encode("utf-8")).hexdigest()[:16]


def _labelled_spec(spec: str | Path) -> tuple[Path, str | None]:
    """``FILE`` or ``FILE:SPLIT`` -> (path, split); a path that exists is never split."""
    text_spec = str(spec)
    if Path(text_spec).exists() or ":" not in text_spec:
        return Path(text_spec), None
    head, _, split = text_spec.rpartition(":")
    return Path(head), split


def read_labelled(spec: str | Path) -> list[dict[str, Any]]:
    """Rows of a labelled JSONL file; ``FILE:SPLIT`` keeps rows whose ``split`` is SPLIT.

    Every row needs a non-empty ``text``, an ``area`` and a ``polarity`` of positive or
    negative (a row with area ``none`` may have polarity ``none``); the first bad row
    stops with its file and line.
    """
    from ..io import iter_json_lines

    path, split = _labelled_spec(spec)
    rows = []
    try:
        for number, row in iter_json_lines(path):
            problem = None
            if not isinstance(row.get("text"), str) or not row["text"].strip():
                problem = "has no text"
            elif not isinstance(row.get("area"), str) or not row["area"]:
                problem = "has no area"
            elif row.get("polarity") not in ("positive", "negative") and not (
                    row["area"] == NO_AREA and row.get("polarity") in (NO_AREA, None)):
                problem = f"has polarity {row.get('polarity')!r}"
            if problem:
                raise PostkitError(f"line {number} {problem}", path=path,
                                   fix='give each row "text", "area" and "polarity" (positive or negative)')
            if split is None or row.get("split") == split:
                rows.append(row)
    except OSError as exc:
        raise PostkitError(f"cannot read labelled rows ({exc.strerror})", path=path,
                           fix="give an existing JSONL file, optionally as FILE:SPLIT") from None
    if not rows:
        raise PostkitError("no labelled rows" + (f" with split {split!r}" if split else ""), path=path,
                           fix="check the file and the :SPLIT suffix")
    return rows


def lemmatise(texts: Sequence[str], nlp: Any = None) -> list[list[str]]:
    """Lemma lists of texts with the tagger's own pipeline (so training and tagging agree)."""
    if nlp is None:
        from .tagger import Tagger

        nlp = Tagger(ranker=None).nlp
    return [[lemma for lemma, _ in lemma_tokens(doc)] for doc in nlp.pipe(list(texts))]


def train_rows(rows: Sequence[dict[str, Any]], *, c: float = 4.0, nlp: Any = None, features: bool = False,
               feature_weight: float = 1.0, meta: dict[str, Any] | None = None,
               settings: dict[str, float] | None = None, lemma_lists: Sequence[Sequence[str]] | None = None,
               sample_weight: Sequence[float] | None = None, min_df: int = 1,
               polarity_weight: Sequence[float] | None = None) -> AreaRanker:
    """Train a ranker on rows ``{"text", "area", "polarity"}``; ``meta`` gains the rows'
    count and text fingerprints (so an evaluation can tell training texts apart)."""
    from .features import post_features

    texts = [r["text"] for r in rows]
    lemma_lists = lemmatise(texts, nlp) if lemma_lists is None else lemma_lists
    # Both a short fingerprint of the normalised text (what eval_coding.py checks) and the
    # sha256 of the exact text (what the real set's labels record, so a test can prove the
    # score half was never trained on without reading its texts).
    meta = dict(meta or {}, rows=len(rows), fingerprints=sorted({text_fingerprint(t) for t in texts}),
                text_sha256=sorted({hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts}))
    return train_ranker(lemma_lists, [r["area"] for r in rows], [r.get("polarity") or NO_AREA for r in rows],
                        c=c, meta=meta, post_features=[post_features(t) for t in texts] if features else None,
                        feature_weight=feature_weight, settings=settings, sample_weight=sample_weight,
                        min_df=min_df, polarity_weight=polarity_weight)


def train_file_rows(specs: Sequence[str | Path], *, c: float = 4.0, nlp: Any = None, features: bool = False,
                    feature_weight: float = 1.0, settings: dict[str, float] | None = None,
                    extra_rows: Sequence[dict[str, Any]] = (), extra_source: dict[str, Any] | None = None,
                    sample_weight: Sequence[float] | None = None, min_df: int = 1,
                    polarity_weight: Sequence[float] | None = None) -> AreaRanker:
    """Train a ranker on labelled JSONL files (``FILE`` or ``FILE:SPLIT``), lemmatised with the
    tagger's own pipeline so training and tagging see the same lemmas. ``extra_rows``
    (e.g. the real tune half) are added after the files and described by ``extra_source``
    in the training record."""
    from ..hashing import sha256_path

    rows: list[dict[str, Any]] = []
    training = []
    for spec in specs:
        part = read_labelled(spec)
        training.append({"file": str(spec), "sha256": sha256_path(_labelled_spec(spec)[0]), "rows": len(part)})
        rows.extend(part)
    if extra_rows:
        training.append(dict(extra_source or {"file": "(rows given in code)"}, rows=len(extra_rows)))
        rows.extend(extra_rows)
    return train_rows(rows, c=c, nlp=nlp, features=features, feature_weight=feature_weight,
                      meta={"training": training}, settings=settings, sample_weight=sample_weight, min_df=min_df,
                      polarity_weight=polarity_weight)
