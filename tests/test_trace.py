"""Traceability check: small corpora with known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from postkit.disguise.trace import (
    Thresholds,
    TraceIndex,
    check_file,
    load_thresholds,
    longest_shared_run,
    render_summary,
    words,
)
from postkit.errors import PostkitError

SOURCE = (
    "I missed my appointment at the surgery because I couldn't face leaving the house, "
    "and the receptionist rang twice about the prescription for sertraline."
)

FILLER = [
    "Our dog chewed the sofa cushions again while we were at the allotment.",
    "Does anyone know a good recipe for lentil soup that freezes well?",
    "The bus timetable changed and now I wait forty minutes every morning.",
    "My daughter started secondary school and the uniform cost a fortune.",
    "We painted the kitchen yellow and it looks brighter already.",
    "Football practice got rained off so the kids played board games instead.",
    "I finally fixed the leaking tap with a new washer from the hardware shop.",
    "The library has a knitting circle on Thursdays which is lovely.",
    "Planted tomatoes and courgettes in the greenhouse this weekend.",
    "Our broadband keeps dropping out in the evenings, so frustrating.",
    "Went swimming at the leisure centre and managed twenty lengths.",
    "The cat brought in a frog and left it under the radiator.",
    "Booked a caravan near the coast for the half term holiday.",
    "My mum is learning to use video calls on her new tablet.",
    "Made banana bread with the overripe bananas, turned out well.",
    "The neighbours are having an extension built and the noise is constant.",
    "Started a couch to five k programme, week two done.",
    "Our car failed its MOT because of the brake pads.",
    "Signed up for an evening class in pottery at the college.",
    "The pharmacy changed its opening hours which is confusing.",
    "Watched a documentary about whales last night, fascinating.",
    "Sorting out the loft and found my old school reports.",
    "Tried the new cafe on the high street, the scones were great.",
    "The boiler engineer is coming on Friday between eight and one.",
    "Birthday party for my son went well, fifteen children and one bouncy castle.",
    "Repotted the peace lily, it was completely root bound.",
    "Read a novel set in Iceland, recommend it to anyone who likes crime fiction.",
    "Our street has a community litter pick on Sunday morning.",
    "The train was cancelled so I worked from home instead.",
]


@pytest.fixture(scope="module")
def corpus():
    ids = ["src"] + [f"f{i:02d}" for i in range(len(FILLER))]
    return ids, [SOURCE] + FILLER


@pytest.fixture(scope="module")
def index(corpus):
    return TraceIndex.build(*corpus)


def _one(index, text, thresholds=None):
    return index.check([{"quote_id": "q1", "source_post_id": "src", "text": text}],
                       thresholds or Thresholds())[0]


def test_verbatim_quote_is_traceable(index):
    row = _one(index, SOURCE)
    assert row["source_rank"] == 1
    assert row["longest_shared_run"] == len(words(SOURCE))
    assert row["exact_5gram_hits"] >= 1
    assert row["distinctive_overlap"] == 1.0
    assert row["verdict"] == "traceable"


def test_paraphrase_is_disguised(index):
    text = "Staying indoors felt safer than seeing a GP; people from reception kept phoning over tablets."
    row = _one(index, text, Thresholds(top_k=2, search_depth=10, traceable_rank=1))
    assert row["distinctive_overlap"] == 0.0
    assert row["longest_shared_run"] < 5
    assert row["exact_5gram_hits"] == 0
    assert row["source_rank"] is None or row["source_rank"] > 2
    assert row["verdict"] == "disguised"


def test_in_between_is_at_risk():
    # A 5-word verbatim run (>= 5, < 8) while the source is not the first hit: at risk.
    ids = ["src", "d1", "d2", "d3"]
    texts = [
        "Today the receptionist rang twice about my prescription and I cried in the car park.",
        "receptionist rang twice prescription receptionist rang twice prescription",
        "prescription receptionist rang twice, prescription receptionist twice",
        "Nothing about doctors here at all.",
    ]
    idx = TraceIndex.build(ids, texts)
    row = idx.check([{"quote_id": "q", "source_post_id": "src",
                      "text": "Honestly, the receptionist rang twice about it."}], Thresholds())[0]
    assert row["longest_shared_run"] == 5
    assert row["exact_5gram_hits"] == 1
    assert row["source_rank"] is not None and row["source_rank"] > 1
    assert row["verdict"] == "at risk"


def test_rank_within_top_k_but_not_first_is_at_risk():
    ids = ["a", "b", "c", "d"]
    texts = ["walrus walrus walrus penguin", "walrus penguin", "giraffe", "zebra"]
    idx = TraceIndex.build(ids, texts)
    row = idx.check([{"quote_id": 1, "source_post_id": "b", "text": "walrus"}],
                    Thresholds(top_k=2, search_depth=4))[0]
    assert row["source_rank"] == 2
    assert row["verdict"] == "at risk"


def test_shared_run_normalisation():
    a = words("I felt SO alone, honestly.")
    b = words("i felt so alone honestly")
    assert a == b
    assert longest_shared_run(a, b) == 5
    assert words("I don\u2019t know") == ["i", "don't", "know"]
    assert longest_shared_run(words("I don\u2019t know why"), words("i don't know why")) == 4
    assert longest_shared_run(words("x y z"), words("p q")) == 0
    assert longest_shared_run([], ["a"]) == 0


def test_curly_apostrophes_match_in_index():
    idx = TraceIndex.build(["a", "b"], ["I don't think I can cope any more tonight", "other words here entirely"])
    row = idx.check([{"quote_id": 1, "source_post_id": "a",
                      "text": "I DON\u2019T think I can cope"}], Thresholds(top_k=1, search_depth=2))[0]
    assert row["longest_shared_run"] == 6
    assert row["exact_5gram_hits"] == 1


def test_exact_5gram_hits_counts_distinct_posts():
    phrase = "one day at a time"
    texts = [f"{phrase} is what my nan said", f"they told me {phrase} and {phrase} again",
             f"honestly {phrase}", "one day at the time", "nothing in common"]
    idx = TraceIndex.build([f"p{i}" for i in range(5)], texts)
    row = idx.check([{"quote_id": 1, "source_post_id": "p4", "text": f"Remember: {phrase.upper()}!"}],
                    Thresholds(top_k=1, search_depth=5))[0]
    assert row["exact_5gram_hits"] == 3  # p0, p1 (twice, counted once), p2; not p3
    assert idx.check([{"quote_id": 1, "source_post_id": "p4", "text": "one day at"}],
                     Thresholds(top_k=1, search_depth=5))[0]["exact_5gram_hits"] == 0


def test_distinctive_overlap(index):
    row = _one(index, "sertraline receptionist")
    assert 0 < row["distinctive_overlap"] < 1
    assert _one(index, "completely unrelated words")["distinctive_overlap"] == 0.0


def test_save_load_round_trip(index, corpus, tmp_path):
    quotes = [{"quote_id": i, "source_post_id": "src", "text": t} for i, t in
              enumerate([SOURCE, "receptionist rang twice", "nothing to see", ""])]
    index.save(tmp_path / "idx")
    loaded = TraceIndex.load(tmp_path / "idx")
    assert loaded.fingerprint == index.fingerprint
    assert loaded.check(quotes, Thresholds()) == index.check(quotes, Thresholds())
    index.save(tmp_path / "idx")  # overwriting an existing cache works
    assert TraceIndex.load(tmp_path / "idx").fingerprint == index.fingerprint


def test_unknown_source_fails_closed(index):
    with pytest.raises(PostkitError, match="not in the corpus") as info:
        index.check([{"quote_id": "q1", "source_post_id": "src", "text": "x"},
                     {"quote_id": "q9", "source_post_id": "nope", "text": "x"}], Thresholds())
    assert info.value.row == 2 and "q9" in str(info.value)


def _write(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_check_file_and_cache(corpus, tmp_path):
    ids, texts = corpus
    corpus_csv = _write(tmp_path / "posts.csv", {"post_id": ids, "text": texts})
    quotes_csv = _write(tmp_path / "quotes.csv", {
        "quote_id": ["q1", "q2"], "source_post_id": ["src", "f03"],
        "text": [SOURCE, "Kids' uniforms for big school were shockingly pricey."]})
    out = tmp_path / "out.csv"
    cache = tmp_path / "cache"
    thresholds = Thresholds(top_k=1, search_depth=5)
    first = check_file(quotes_csv, corpus_csv, out, index_dir=cache, thresholds=thresholds)
    assert first["index"] == "built" and first["counts"]["traceable"] == 1
    result = pd.read_csv(out)
    assert list(result["verdict"])[0] == "traceable"
    second = check_file(quotes_csv, corpus_csv, tmp_path / "out2.csv", index_dir=cache, thresholds=thresholds)
    assert second["index"] == "cached" and second["counts"] == first["counts"]
    # Editing the corpus makes the cache stale: it is rebuilt, and the new post is searched.
    _write(corpus_csv, {"post_id": ids + ["new"], "text": texts + [SOURCE]})
    third = check_file(quotes_csv, corpus_csv, tmp_path / "out3.csv", index_dir=cache, thresholds=thresholds)
    assert third["index"] == "built" and third["posts"] == len(ids) + 1
    assert "traceable" in render_summary(third)


def test_check_file_unknown_source_names_row(corpus, tmp_path):
    ids, texts = corpus
    corpus_csv = _write(tmp_path / "posts.csv", {"post_id": ids, "text": texts})
    quotes_csv = _write(tmp_path / "quotes.csv", {
        "quote_id": ["q1", "q2"], "source_post_id": ["src", "gone"], "text": ["a", "b"]})
    out = tmp_path / "out.csv"
    with pytest.raises(PostkitError, match="row 2.*'q2'.*not in the corpus"):
        check_file(quotes_csv, corpus_csv, out, thresholds=Thresholds())
    assert not out.exists()


def test_default_thresholds_file():
    assert load_thresholds() == Thresholds()


@pytest.mark.parametrize("text, message", [
    ("top_k: 0\n", "top_k"),
    ("top_k: 30\nsearch_depth: 20\n", "search_depth"),
    ("traceable_run: 4\n", "traceable_run"),
    ("top_kk: 5\n", "unknown threshold"),
    ("max_distinctive_overlap: 2\n", "max_distinctive_overlap"),
    ("- 1\n", "mapping"),
    ("top_k: [\n", "YAML"),
    ("max_shared_run: -1\n", "max_shared_run"),
])
def test_threshold_errors(tmp_path, text, message):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(PostkitError, match=message):
        load_thresholds(path)
    with pytest.raises(PostkitError, match="not found"):
        load_thresholds(tmp_path / "missing.yaml")


def test_distinctive_overlap_threshold(index):
    text = "Staying indoors felt safer than seeing a GP; people from reception kept phoning over tablets."
    strict = Thresholds(top_k=2, search_depth=10, max_distinctive_overlap=0.0)
    row = _one(index, "sertraline, indoors, GP", strict)
    assert row["distinctive_overlap"] > 0
    assert row["verdict"] != "disguised"
    assert _one(index, text, strict)["distinctive_overlap"] == 0.0


def test_saving_the_index_removes_what_a_killed_save_left(tmp_path):
    """A save killed half-way leaves a hidden temp folder; the next save of that cache removes it."""
    from postkit.disguise.trace import TraceIndex

    index = TraceIndex.build(["p1", "p2"], ["the quick brown fox jumps", "a slow green turtle walks"])
    cache = tmp_path / "index"
    stale = tmp_path / ".index.deadbeef.tmp-postkit"
    stale.mkdir()
    (stale / "tokens.npy").write_bytes(b"half written")
    index.save(cache)
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]
    assert TraceIndex.load(cache) is not None
