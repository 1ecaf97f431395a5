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

FORMAT = "postkit-area-ranker/1"
RANKER_FILE = "cmo_ranker.json"


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

    # ------------------------------------------------------------------ inference

    def features(self, lemmas: Sequence[str]) -> dict[int, float]:
        """Sublinear, l2-normalised TF-IDF of the known n-grams (scikit-learn's formula)."""
        counts = Counter(g for g in ngrams(lemmas) if g in self.vocabulary)
        weights = {self.vocabulary[g]: (1.0 + math.log(n)) * self.idf[self.vocabulary[g]] for g, n in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {i: w / norm for i, w in weights.items()} if norm else {}

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
        if data.get("format") != FORMAT:
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
        )
        if len(ranker.idf) != len(terms) or len(ranker.area_coef) != len(ranker.areas):
            raise ValueError("terms, idf and coefficients disagree in length")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PostkitError(f"not a valid area ranker file ({exc})", path=path,
                           fix="re-create it with scripts/train_ranker.py") from None
    return ranker


def train_ranker(lemma_lists: Sequence[Sequence[str]], areas: Sequence[str], polarities: Sequence[str],
                 *, c: float = 4.0, meta: dict[str, Any] | None = None) -> AreaRanker:
    """Fit the two models with scikit-learn on already-lemmatised texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    if len(set(areas)) < 2 or set(polarities) != {"positive", "negative"}:
        raise PostkitError("training needs at least two areas and both polarities",
                           fix="add labelled rows for the missing areas or polarities")
    vectorizer = TfidfVectorizer(analyzer=ngrams, sublinear_tf=True)
    matrix = vectorizer.fit_transform(list(lemma_lists))
    area_model = LogisticRegression(C=c, max_iter=5000).fit(matrix, list(areas))
    polarity_model = LogisticRegression(C=c, max_iter=5000).fit(matrix, list(polarities))
    classes = list(area_model.classes_)
    if len(classes) == 2:  # binary: scikit-learn keeps one row for the second class
        coef_rows = [-area_model.coef_[0], area_model.coef_[0]]
        intercepts = [-area_model.intercept_[0] / 2, area_model.intercept_[0] / 2]
        coef_rows = [row / 2 for row in coef_rows]
    else:
        coef_rows, intercepts = list(area_model.coef_), list(area_model.intercept_)
    sign = 1.0 if polarity_model.classes_[1] == "positive" else -1.0
    return AreaRanker(
        vocabulary={t: int(i) for t, i in vectorizer.vocabulary_.items()},
        idf=[float(v) for v in vectorizer.idf_],
        areas=classes,
        area_coef=[{i: float(w) for i, w in enumerate(row) if w != 0.0} for row in coef_rows],
        area_intercept=[float(v) for v in intercepts],
        polarity_coef={i: sign * float(w) for i, w in enumerate(polarity_model.coef_[0]) if w != 0.0},
        polarity_intercept=sign * float(polarity_model.intercept_[0]),
        meta=dict(meta or {}, C=c),
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
    negative; the first bad row stops with its file and line.
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
            elif row.get("polarity") not in ("positive", "negative"):
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


def train_file_rows(specs: Sequence[str | Path], *, c: float = 4.0, nlp: Any = None) -> AreaRanker:
    """Train a ranker on labelled JSONL files (``FILE`` or ``FILE:SPLIT``), lemmatised with the
    tagger's own pipeline so training and tagging see the same lemmas."""
    from ..hashing import sha256_path

    if nlp is None:
        from .tagger import Tagger

        nlp = Tagger(ranker=None).nlp
    rows: list[dict[str, Any]] = []
    training = []
    for spec in specs:
        part = read_labelled(spec)
        training.append({"file": str(spec), "sha256": sha256_path(_labelled_spec(spec)[0]), "rows": len(part)})
        rows.extend(part)
    lemma_lists = [[lemma for lemma, _ in lemma_tokens(doc)] for doc in nlp.pipe(r["text"] for r in rows)]
    meta = {"training": training, "rows": len(rows),
            "fingerprints": sorted({text_fingerprint(r["text"]) for r in rows})}
    return train_ranker(lemma_lists, [r["area"] for r in rows], [r["polarity"] for r in rows], c=c, meta=meta)
