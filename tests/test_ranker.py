"""The learned area ranker: faithful to scikit-learn, reproducible, honest about its training data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from postkit.coding.ranker import (
    AreaRanker,
    lemma_tokens,
    load_ranker,
    ngrams,
    read_labelled,
    text_fingerprint,
    train_file_rows,
    train_ranker,
)
from postkit.coding.tagger import Tagger, tag_file
from postkit.errors import PostkitError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"

TRAIN = [
    ("The breathing tips helped me cope with panic at work", "self_efficacy", "positive"),
    ("Too many threads to sift through, I couldn't find the advice I needed", "self_efficacy", "negative"),
    ("Reading your story I realised I am not the only one", "understanding_acceptance", "positive"),
    ("Nobody replied to my post for days and I felt invisible", "understanding_acceptance", "negative"),
    ("Knowing my reply helped someone made my whole week", "helping_others", "positive"),
    ("I worry all night about the people I try to support here", "helping_others", "negative"),
    ("Writing it down here got it out of my head, I feel lighter", "catharsis_sense_making", "positive"),
    ("I deleted my post because someone from work might recognise me", "catharsis_sense_making", "negative"),
]


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger()


def _lemmas(tagger: Tagger, texts: list[str]) -> list[list[str]]:
    return [[lemma for lemma, _ in lemma_tokens(doc)] for doc in tagger.nlp.pipe(texts)]


def test_json_model_reproduces_scikit_learn(tmp_path: Path, tagger: Tagger) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    lemmas = _lemmas(tagger, [t for t, _, _ in TRAIN])
    areas, polarities = [a for _, a, _ in TRAIN], [p for _, _, p in TRAIN]
    ranker = train_ranker(lemmas, areas, polarities)
    ranker.save(tmp_path / "r.json")
    loaded = load_ranker(tmp_path / "r.json")

    vectorizer = TfidfVectorizer(analyzer=ngrams, sublinear_tf=True)
    matrix = vectorizer.fit_transform(lemmas)
    area_model = LogisticRegression(C=4.0, max_iter=5000).fit(matrix, areas)
    polarity_model = LogisticRegression(C=4.0, max_iter=5000).fit(matrix, polarities)
    probe = _lemmas(tagger, ["My replies helped someone and I feel useful", "nobody answered, I felt ignored",
                             "a sentence with no known words xyzzy"])
    expected_area = area_model.predict_proba(vectorizer.transform(probe))
    expected_positive = polarity_model.predict_proba(vectorizer.transform(probe))[:, 1]
    for row, lem in enumerate(probe):
        x = loaded.features(lem)
        got = loaded.area_probabilities(x)
        for col, area in enumerate(area_model.classes_):
            assert got[area] == pytest.approx(expected_area[row, col], abs=1e-4)
        assert loaded.positive_probability(x) == pytest.approx(expected_positive[row], abs=1e-4)


def test_training_is_deterministic(tmp_path: Path, tagger: Tagger) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"text": t, "area": a, "polarity": p}) + "\n" for t, a, p in TRAIN))
    for name in ("a.json", "b.json"):
        train_file_rows([rows], nlp=tagger.nlp).save(tmp_path / name)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    meta = load_ranker(tmp_path / "a.json").meta
    assert meta["rows"] == len(TRAIN) and meta["training"][0]["rows"] == len(TRAIN)
    assert text_fingerprint(TRAIN[0][0]) in meta["fingerprints"]


def test_packaged_ranker_never_saw_the_evaluation_sets() -> None:
    # The accuracy claimed in the README is measured on these; training on them would make it training accuracy.
    ranker = load_ranker()
    seen = set(ranker.meta["fingerprints"])
    unseen = (read_labelled(DATA / "cmo_forum_heldout.jsonl") + read_labelled(DATA / "cmo_forum_heldout2.jsonl")
              + read_labelled(f"{DATA / 'cmo_forum_dev3.jsonl'}:check"))
    assert len(unseen) == 280
    assert not [r["id"] for r in unseen if text_fingerprint(r["text"]) in seen]
    files = [t["file"] for t in ranker.meta["training"]]
    assert not any("heldout" in f for f in files)


def test_bad_ranker_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(PostkitError, match="cannot read the area ranker") as missing:
        load_ranker(tmp_path / "absent.json")
    assert "absent.json" in str(missing.value)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(PostkitError, match="not a valid area ranker file"):
        load_ranker(bad)
    bad.write_text("{not json")
    with pytest.raises(PostkitError, match="not a valid area ranker file"):
        load_ranker(bad)


def test_bad_labelled_rows_name_the_line(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "fine", "area": "self_efficacy", "polarity": "positive"}\n'
                    '{"text": "no direction", "area": "self_efficacy", "polarity": "mixed"}\n')
    with pytest.raises(PostkitError, match="line 2 has polarity 'mixed'"):
        read_labelled(rows)
    rows.write_text('{"text": "fine", "area": "self_efficacy", "polarity": "positive"}\nnot json\n')
    with pytest.raises(PostkitError, match="line 2: invalid JSON"):
        read_labelled(rows)
    rows.write_text('{"text": "fine", "area": "self_efficacy", "polarity": "positive", "split": "tune"}\n')
    with pytest.raises(PostkitError, match="no labelled rows with split 'check'"):
        read_labelled(f"{rows}:check")


def test_ranker_must_match_the_codebook_areas(tmp_path: Path, tagger: Tagger) -> None:
    # A study's ranker, retrained from coders who have used only some areas so far, may know
    # fewer areas (and "none"); the areas it never learnt keep their cue scores.
    lemmas = _lemmas(tagger, [t for t, _, _ in TRAIN[:4]])
    two_areas = train_ranker(lemmas, [a for _, a, _ in TRAIN[:4]], [p for _, _, p in TRAIN[:4]])
    assert isinstance(two_areas, AreaRanker) and len(two_areas.areas) == 2
    partial = Tagger(model=tagger.nlp, ranker=two_areas)
    cues_only = Tagger(model=tagger.nlp, ranker=None)
    text = "Glad I could help, knowing I helped someone makes me feel useful."
    ho = [s for s in partial.suggest([text])[0] if s["area"] == "helping_others"]
    assert ho and ho[0]["score"] == next(s for s in cues_only.suggest([text])[0] if s["code_id"] == ho[0]["code_id"]
                                         and s["area"] == "helping_others")["score"]
    # But never an area the codebook lacks.
    unknown = train_ranker(lemmas, ["self_efficacy", "self_efficacy", "made_up_area", "made_up_area"],
                           [p for _, _, p in TRAIN[:4]])
    with pytest.raises(PostkitError, match="the area ranker knows areas"):
        Tagger(model=tagger.nlp, ranker=unknown)


def test_ranker_reorders_areas_and_sets_direction(tagger: Tagger) -> None:
    # Cues alone: "writing it down" is a (positive) catharsis mechanism; the post says it made things worse.
    text = "Every time I write it all down here it just brings the whole night back and I end up in pieces."
    cues_only = Tagger(ranker=None).assess([text])[0]
    ranked = tagger.assess([text])[0]
    assert cues_only["polarity"] == "positive"
    assert ranked["area"] == "catharsis_sense_making" and ranked["polarity"] == "negative"
    # The positive mechanism is still there for the coder, weighed down; beside it, the
    # area's code for the post's direction, made by the model and saying why.
    writing = next(s for s in ranked["suggestions"] if s["code_id"] == "CS-C2")
    assert writing["score"] < writing["rule_score"]
    direction = next(s for s in ranked["suggestions"]
                     if s["area"] == "catharsis_sense_making" and s["polarity"] == "negative")
    assert direction["rule_score"] == 0.0 and direction["evidence"]
    for ev in direction["evidence"]:
        assert text[ev["start"]:ev["end"]] == ev["text"]
    for s in ranked["suggestions"]:
        assert 0.0 <= s["score"] <= 1.0 and s["rule_score"] >= 0.0


def test_model_only_suggestion_explains_itself_with_content_words(tagger: Tagger) -> None:
    text = "my lad asked how i was and i said fine, same as always. typed the real answer out here instead"
    assessed = tagger.assess([text])[0]
    model_only = [s for s in assessed["suggestions"] if s["rule_score"] == 0.0]
    for s in model_only:
        assert s["evidence"] and s["score"] <= 0.25
        for ev in s["evidence"]:
            assert text[ev["start"]:ev["end"]] == ev["text"]
            assert ev["text"].lower() not in {"the", "and", "i", "a", "to"}
    # Small talk gets nothing from the model: its only weight would be function words.
    assert tagger.assess(["Just the weather today"])[0]["suggestions"] == []


def test_no_ranker_means_cues_only(tmp_path: Path) -> None:
    source = tmp_path / "posts.csv"
    source.write_text("post_id,text\np1,Nobody replied to my post and I feel ignored.\n")
    stats = tag_file(source, tmp_path / "out.csv", ranker=None)
    out = (tmp_path / "out.csv").read_text()
    assert stats["ranker_version"] == "" and "understanding_acceptance" in out


def test_eval_script_flags_training_texts(tmp_path: Path) -> None:
    ranker = load_ranker()
    first_file = ROOT / ranker.meta["training"][0]["file"].split(":")[0]
    row = read_labelled(first_file)[0]
    labelled = tmp_path / "rows.jsonl"
    labelled.write_text(json.dumps({"id": "x1", "text": row["text"], "area": row["area"],
                                    "polarity": row["polarity"]}) + "\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "eval_coding.py"), str(labelled),
                           "--engine", "tagger", "--no-targets"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "1 of 1 texts were used to train the area ranker" in done.stdout


def test_train_script_refuses_bad_rows_and_writes_nothing(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "only text"}\n')
    out = tmp_path / "r.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_ranker.py"), str(rows), "--output", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and "line 1 has no area" in done.stderr and not out.exists()


def test_packaged_ranker_never_trained_on_the_real_score_half() -> None:
    # The real set's labels hold each coded text's sha256, and the ranker records the sha256
    # of every text it was trained on: the two can be compared without reading any score post.
    labels = [json.loads(line) for line in (DATA / "real_cmo_labels.jsonl").read_text().splitlines() if line.strip()]
    score = {r["text_sha256"] for r in labels if r["split"] == "score"}
    # Round 1's tune half (the packaged ranker predates round 2, coded later).
    tune = {r["text_sha256"] for r in labels if r["split"] == "tune" and r.get("round", 1) == 1}
    ranker = load_ranker()
    trained = set(ranker.meta["text_sha256"])
    assert len(score) == 247 and not trained & score
    assert tune <= trained  # the record does work: the tune half is there
    files = [t["file"] for t in ranker.meta["training"]]
    assert "tests/data/real_cmo_labels.jsonl:tune" in files and not any("score" in f for f in files)
    assert ranker.meta["min_df"] == 2  # no n-gram of a single real post ships


def test_post_features_in_json_reproduce_scikit_learn(tmp_path: Path, tagger: Tagger) -> None:
    import numpy as np
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from postkit.coding.features import FEATURE_NAMES, post_features

    texts = [t for t, _, _ in TRAIN] + ["Does anyone know the opening hours? Thanks for any advice.",
                                        "Is there a number to call at night? Thanks in advance."]
    areas = [a for _, a, _ in TRAIN] + ["none", "none"]
    polarities = [p for _, _, p in TRAIN] + ["none", "none"]
    lemmas = _lemmas(tagger, texts)
    feats = [post_features(t) for t in texts]
    ranker = train_ranker(lemmas, areas, polarities, post_features=feats, feature_weight=2.0,
                          settings={"strong_score": 0.5})
    ranker.save(tmp_path / "r.json")
    loaded = load_ranker(tmp_path / "r.json")
    assert "none" in loaded.areas and loaded.feature_names == list(FEATURE_NAMES)
    assert loaded.settings == {"strong_score": 0.5}

    vectorizer = TfidfVectorizer(analyzer=ngrams, sublinear_tf=True)
    dense = csr_matrix(np.array([[f[n] * 2.0 for n in FEATURE_NAMES] for f in feats]))
    matrix = hstack([vectorizer.fit_transform(lemmas), dense]).tocsr()
    area_model = LogisticRegression(C=4.0, max_iter=5000).fit(matrix, areas)
    probe_texts = ["Can anyone tell me where to find the forms? Thanks for any help.",
                   "I wrote it all down and feel lighter, thanks for reading."]
    probe = _lemmas(tagger, probe_texts)
    probe_feats = [post_features(t) for t in probe_texts]
    expected = area_model.predict_proba(hstack([vectorizer.transform(probe), csr_matrix(
        np.array([[f[n] * 2.0 for n in FEATURE_NAMES] for f in probe_feats]))]).tocsr())
    for row, (lem, f) in enumerate(zip(probe, probe_feats)):
        got = loaded.area_probabilities(loaded.features(lem, f))
        for col, area in enumerate(area_model.classes_):
            assert got[area] == pytest.approx(expected[row, col], abs=1e-4)


def test_a_version_1_ranker_file_still_loads(tmp_path: Path, tagger: Tagger) -> None:
    lemmas = _lemmas(tagger, [t for t, _, _ in TRAIN])
    data = train_ranker(lemmas, [a for _, a, _ in TRAIN], [p for _, _, p in TRAIN]).to_json()
    for key in ("features", "feature_weight", "settings"):
        data.pop(key)
    data["format"] = "postkit-area-ranker/1"
    (tmp_path / "v1.json").write_text(json.dumps(data))
    old = load_ranker(tmp_path / "v1.json")
    assert old.feature_names == [] and old.settings == {}
    assert Tagger(model=tagger.nlp, ranker=old).settings["strong_score"] == 0.2  # the tagger's defaults
