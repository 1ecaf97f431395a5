"""The dense-retrieval attacker: numpy MiniLM embeddings, passages, ranks, verdicts, cache, fail-closed."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.disguise import dense, embed
from postkit.disguise.trace import Thresholds, TraceIndex, check_file, load_thresholds, render_summary
from postkit.errors import PostkitError

needs_model = pytest.mark.skipif(not embed.available(), reason="the dense extra is not installed")
REFERENCE = Path(__file__).parent / "data" / "minilm_reference.json"

# A small hand-written forum: one post about grief and appetite, the rest everyday chatter
# (several about gardens and DIY, so an unrelated garden quote has closer posts than the source).
SOURCE = ("After my dad's funeral I stopped eating properly. I lost two stone in a month "
          "and my GP was worried about me.")
REWORDED = ("Appetite vanished completely once we buried Dad; weight dropped off rapidly, "
            "and the doctor grew concerned.")
UNRELATED = "The shed roof leaks again, so new felt and some nails are needed before the winter storms."
FILLER = [
    "Our dog chewed the sofa cushions again while we were at the allotment.",
    "Does anyone know a good recipe for lentil soup that freezes well?",
    "The bus timetable changed and now I wait forty minutes every morning.",
    "We painted the kitchen yellow and it looks brighter already.",
    "I finally fixed the leaking tap with a new washer from the hardware shop.",
    "Planted tomatoes and courgettes in the greenhouse this weekend.",
    "The fence panels blew down in the wind, so the garden is open to the field.",
    "Put up new guttering on the garage, the old one was rusted through.",
    "Our broadband keeps dropping out in the evenings, so frustrating.",
    "Went swimming at the leisure centre and managed twenty lengths.",
    "Booked a caravan near the coast for the half term holiday.",
    "The decking needs sanding and a coat of stain before summer.",
    "Made banana bread with the overripe bananas, turned out well.",
    "Started a couch to five k programme, week two done.",
    "Our car failed its MOT because of the brake pads.",
    "Signed up for an evening class in pottery at the college.",
    "Repotted the peace lily, it was completely root bound.",
    "The greenhouse glass cracked in the frost and I had to tape it up.",
    "Read a novel set in Iceland, recommend it to anyone who likes crime fiction.",
    "The train was cancelled so I worked from home instead.",
    "Built a new compost bin out of old pallets at the bottom of the garden.",
    "Cleared moss off the roof tiles with a long brush, took all afternoon.",
]
IDS = ["src"] + [f"f{i:02d}" for i in range(len(FILLER))]


# --------------------------------------------------------------------------- embeddings


@needs_model
@pytest.mark.slow
def test_encode_matches_sentence_transformers():
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    texts = [item["text"] for item in reference["items"]]
    expected = np.array([item["vector"] for item in reference["items"]], dtype=np.float64)
    got = embed.encode(texts, batch_size=4)  # several batches, sorted by length, back in order
    assert got.shape == (len(texts), embed.DIMENSION) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosine = (got * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.9999, cosine
    assert embed.encode([]).shape == (0, embed.DIMENSION)


@needs_model
def test_similarity_orders_meaning():
    close = embed.similarity("I could not sleep at all last night.", "I was awake the whole night.")
    far = embed.similarity("I could not sleep at all last night.", "The bus was late this morning.")
    assert close > far


def test_weights_with_another_checksum_are_refused(tmp_path):
    fake = tmp_path / "model.zip"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("model.safetensors", b"not the weights")
        archive.writestr("tokenizer.json", "{}")
    if not embed.available():
        pytest.skip("the dense extra is not installed")
    with pytest.raises(PostkitError, match="sha256.*refusing") as info:
        embed.MiniLM(fake)
    assert "\n" not in str(info.value)


@needs_model
@pytest.mark.slow
def test_unzipped_weights_are_cached_privately_and_rechecked(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTKIT_CACHE_DIR", str(tmp_path / "cache"))
    embed.MiniLM()
    folder = embed.model_cache_dir()
    assert (folder / "model.safetensors").is_file() and folder.stat().st_mode & 0o077 == 0
    (folder / "model.safetensors").write_bytes(b"tampered")  # a bad cached copy is not used ...
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))["items"][0]
    minilm = embed.MiniLM()
    vector = minilm.forward(minilm.token_ids([reference["text"]]))[0]
    assert float(vector @ np.array(reference["vector"])) > 0.9999
    assert embed.hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == embed.MODEL_SHA256


def test_missing_extra_names_the_fix(monkeypatch):
    monkeypatch.setattr(embed, "_missing", lambda: ["tokenizers"])
    assert not embed.available()
    with pytest.raises(PostkitError) as info:
        embed.require()
    message = str(info.value)
    assert "pip install 'postkit[dense]'" in message and "tokenizers" in message and "\n" not in message


# --------------------------------------------------------------------------- passages and ranks


def test_passages_are_windows_of_three_sentences():
    text = "One. Two! Three? Four.\nFive\n\nSix. Seven."
    assert dense.passages(text) == ["One. Two! Three?", "Four. Five Six.", "Seven."]
    assert dense.passages("no sentence end at all") == ["no sentence end at all"]
    assert dense.passages("") == [""] and dense.passages(None) == [""]
    assert dense.passages("   ") == ["   "]  # the attacker's rule: the whole text when no sentence
    # Abbreviations end a "sentence" too, as in the attacker: three pieces, one window.
    assert dense.passages("Mr. Smith said hi. Then left") == ["Mr. Smith said hi. Then left"]


def test_split_corpus_owns_passages_per_post():
    flat, starts = dense.split_corpus(["A. B. C. D.", "", "x\u00ady"])  # soft hyphen removed (search form)
    assert flat == ["A. B. C.", "D.", "", "xy"]
    assert starts.tolist() == [0, 2, 3, 4]


def test_dense_form_undoes_hiding_tricks():
    # Cyrillic look-alike letters, fullwidth letters, a soft hyphen
    hidden = "I felt d\u0435pr\u0435ss\u0435d (\uff54\uff49\uff52\uff45\uff44) and lo\u00adnely."
    assert dense.dense_form(hidden) == "I felt depressed (tired) and lonely."
    assert dense.dense_form("\u0421\u0442\u043e\u043f") == "\u0421\u0442\u043e\u043f"  # a real Cyrillic word stays


def _unit(*values):
    vector = np.zeros(embed.DIMENSION, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def test_rank_counts_only_posts_scoring_strictly_higher():
    # post 0: one passage; post 1: two passages, the best one equal to post 0's; post 2: higher; post 3: lower
    vectors = np.stack([_unit(1, 1), _unit(0, 1), _unit(1, 1), _unit(1, 0.01), _unit(0, 1)]).astype(np.float16)
    index = dense.DenseIndex(vectors, np.array([0, 1, 3, 4, 5]))
    query = _unit(1, 0)[None, :]
    best = index.post_scores(query)[:, 0]
    assert best[1] == pytest.approx(best[0])  # a post scores by its best passage
    assert index.ranks_for_vectors(query, [0]) == [2]  # only post 2 is strictly higher; the tie does not count
    assert index.ranks_for_vectors(query, [1]) == [2]
    assert index.ranks_for_vectors(query, [2]) == [1]
    assert index.ranks_for_vectors(query, [3]) == [4]


def test_dense_index_refuses_passages_that_do_not_match_posts():
    with pytest.raises(PostkitError, match="do not match"):
        dense.DenseIndex(np.zeros((3, embed.DIMENSION), dtype=np.float16), np.array([0, 1, 1, 3]))


# --------------------------------------------------------------------------- verdicts


def _row(**changes):
    row = {"source_rank": None, "longest_shared_run": 2, "exact_5gram_hits": 0, "distinctive_overlap": 0.0,
           "dense_rank": 500, "dense": "ran"}
    return row | changes


@pytest.mark.parametrize("dense_rank, verdict", [(1, "traceable"), (2, "at risk"), (20, "at risk"),
                                                 (21, "disguised"), (None, "at risk")])
def test_verdict_is_the_worst_of_the_attackers(dense_rank, verdict):
    assert Thresholds().verdict(_row(dense_rank=dense_rank)) == verdict


def test_dense_not_run_is_never_disguised():
    row = _row()
    del row["dense_rank"]
    assert Thresholds().verdict(row) == "at risk"
    assert Thresholds().verdict(_row(dense_rank=pd.NA)) == "at risk"


def test_dense_top_k_threshold():
    assert load_thresholds().dense_top_k == 20
    assert Thresholds(dense_top_k=5).verdict(_row(dense_rank=6)) == "disguised"
    with pytest.raises(PostkitError, match="dense_top_k"):
        Thresholds(dense_top_k=0)
    with pytest.raises(PostkitError, match="traceable_rank"):
        Thresholds(traceable_rank=3, dense_top_k=2)


@pytest.fixture(scope="module")
def forum_index():
    if not embed.available():
        pytest.skip("the dense extra is not installed")
    return TraceIndex.build(IDS, [SOURCE] + FILLER)


@needs_model
@pytest.mark.slow
def test_reworded_quote_that_keeps_its_meaning_is_not_disguised(forum_index):
    loose = Thresholds(top_k=1, search_depth=5)
    rows = forum_index.check([{"quote_id": "q1", "source_post_id": "src", "text": REWORDED},
                              {"quote_id": "q2", "source_post_id": "src", "text": UNRELATED}], loose)
    reworded, unrelated = rows
    # Keyword search and phrase search are beaten ...
    assert reworded["longest_shared_run"] <= 2 and reworded["exact_5gram_hits"] == 0
    assert reworded["source_rank"] is None or reworded["source_rank"] > 1
    assert loose.verdict(reworded | {"dense_rank": 100}) == "disguised"
    # ... but the meaning is still found: never disguised.
    assert reworded["dense"] == "ran" and reworded["dense_rank"] == 1
    assert reworded["verdict"] == "traceable"
    # A text that no longer means the same can pass once the source is off the dense attacker's page.
    assert unrelated["dense_rank"] > 5
    assert Thresholds(top_k=1, search_depth=5, dense_top_k=5).verdict(unrelated) == "disguised"


# --------------------------------------------------------------------------- fail closed


def _files(tmp_path, quotes):
    corpus = tmp_path / "posts.csv"
    pd.DataFrame({"post_id": IDS, "text": [SOURCE] + FILLER}).to_csv(corpus, index=False)
    quotes_csv = tmp_path / "quotes.csv"
    pd.DataFrame(quotes).to_csv(quotes_csv, index=False)
    return corpus, quotes_csv


def test_without_the_extra_no_quote_is_disguised(tmp_path, monkeypatch):
    monkeypatch.setattr(embed, "available", lambda: False)
    monkeypatch.setenv("POSTKIT_CACHE_DIR", str(tmp_path / "cache"))
    index = TraceIndex.build(IDS, [SOURCE] + FILLER)
    assert index.dense is None and "postkit[dense]" in index.dense_note
    row = index.check([{"quote_id": "q", "source_post_id": "src", "text": UNRELATED}],
                      Thresholds(top_k=1, search_depth=5))[0]
    assert row["dense"] == "not run" and row["dense_rank"] is None
    assert row["source_rank"] is None and row["verdict"] == "at risk"  # disguised for BM25 alone

    corpus, quotes = _files(tmp_path, {"quote_id": ["q"], "source_post_id": ["src"], "text": [UNRELATED]})
    result = check_file(quotes, corpus, tmp_path / "out.csv", thresholds=Thresholds(top_k=1, search_depth=5))
    assert result["dense"] == "not run" and result["counts"]["disguised"] == 0
    written = pd.read_csv(tmp_path / "out.csv")
    assert list(written["dense"]) == ["not run"] and written["dense_rank"].isna().all()
    summary = render_summary(result)
    assert sum("Dense attacker not run" in line for line in summary.splitlines()) == 1
    assert "postkit[dense]" in summary


def test_cli_says_why_once_even_when_quiet(tmp_path, monkeypatch):
    from postkit.cli import main

    monkeypatch.setattr(embed, "available", lambda: False)
    monkeypatch.setenv("POSTKIT_CACHE_DIR", str(tmp_path / "cache"))
    corpus, quotes = _files(tmp_path, {"quote_id": ["q"], "source_post_id": ["src"], "text": [UNRELATED]})
    for quiet in ([], ["--quiet"]):
        done = CliRunner().invoke(main, ["disguise", "check", str(quotes), "--corpus", str(corpus),
                                         "--output", str(tmp_path / "out.csv"), *quiet])
        assert done.exit_code == 0, done.output
        assert done.output.count("Dense attacker not run") == 1


# --------------------------------------------------------------------------- cache


@needs_model
@pytest.mark.slow
def test_passage_embeddings_are_cached_privately_and_reused(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("POSTKIT_CACHE_DIR", str(cache))
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text("{}", encoding="utf-8")  # a run folder, shared with reviewers
    corpus, quotes = _files(run, {"quote_id": ["q1", "q2"], "source_post_id": ["src", "src"],
                                  "text": [REWORDED, SOURCE]})
    builds = []
    real_build = dense.DenseIndex.build.__func__

    def counting_build(cls, texts, *args, **kwargs):
        builds.append(len(texts))
        return real_build(cls, texts, *args, **kwargs)

    monkeypatch.setattr(dense.DenseIndex, "build", classmethod(counting_build))
    first = check_file(quotes, corpus, run / "checked.csv")
    assert first["dense"] == "ran" and builds == [len(IDS)]
    folders = list((cache / dense.CACHE_SUBDIR).iterdir())
    assert len(folders) == 1 and (folders[0] / "embeddings.npy").is_file()
    assert (cache / dense.CACHE_SUBDIR).stat().st_mode & 0o077 == 0
    assert np.load(folders[0] / "embeddings.npy").dtype == np.float16
    second = check_file(quotes, corpus, run / "checked2.csv")
    assert builds == [len(IDS)]  # not embedded again
    assert pd.read_csv(run / "checked.csv")["dense_rank"].tolist() == \
        pd.read_csv(run / "checked2.csv")["dense_rank"].tolist()
    assert second["counts"] == first["counts"]
    # Nothing of the dense index is in the run folder.
    assert not [p for p in run.rglob("*") if p.suffix == ".npy" or "dense" in p.name]
