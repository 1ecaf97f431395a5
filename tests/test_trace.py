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


def test_paraphrase_escapes_keyword_search_but_not_the_dense_attacker(index):
    # Disguised for BM25 and phrase search, but it keeps the meaning: the dense attacker still
    # finds the source on its first page, so the verdict (the worst of the attackers) is not disguised.
    text = "Staying indoors felt safer than seeing a GP; people from reception kept phoning over tablets."
    row = _one(index, text, Thresholds(top_k=2, search_depth=10, traceable_rank=1))
    assert row["distinctive_overlap"] == 0.0
    assert row["longest_shared_run"] < 5
    assert row["exact_5gram_hits"] == 0
    assert row["source_rank"] is None or row["source_rank"] > 2
    assert row["dense"] == "ran" and row["dense_rank"] <= 2
    assert row["verdict"] == ("traceable" if row["dense_rank"] == 1 else "at risk")
    # Judged on the keyword side alone it would have passed as disguised.
    assert Thresholds(top_k=2, search_depth=10).verdict(row | {"dense_rank": 99}) == "disguised"


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
    # q2 escapes keyword search but keeps its meaning: the dense attacker ranks its source first.
    assert first["index"] == "built" and first["counts"]["traceable"] == 2 and first["dense"] == "ran"
    result = pd.read_csv(out)
    assert list(result["verdict"]) == ["traceable", "traceable"]
    assert list(result["dense_rank"]) == [1, 1]
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


# --------------------------------------------------------------------------- normalise, then check

HOMOGLYPHS = str.maketrans("aeopcixyAEOPCHIKMTX", "аеорсіхуАЕОРСНІКМТХ")  # Latin -> Cyrillic look-alikes


def _inside_words(text, mark):
    """``mark`` after the second letter of every word of 4+ letters (where a reader never notices)."""
    return " ".join(w[:2] + mark + w[2:] if len(w) >= 4 else w for w in text.split(" "))


HIDDEN = {
    "soft hyphen": _inside_words(SOURCE, "\u00ad"),
    "zero-width space": _inside_words(SOURCE, "\u200b"),
    "zero-width joiner and non-joiner": _inside_words(_inside_words(SOURCE, "\u200d"), "\u200c"),
    "byte order mark and word joiner": "\ufeff" + _inside_words(SOURCE, "\u2060"),
    "bidi marks": _inside_words(SOURCE, "\u200e\u2066\u2069"),
    "hair space": _inside_words(SOURCE, "\u200a"),
    "fullwidth letters": "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in SOURCE),
    "cyrillic homoglyphs": SOURCE.translate(HOMOGLYPHS),
    "all at once": _inside_words(SOURCE.translate(HOMOGLYPHS), "\u00ad\u200b"),
    "combining marks": _inside_words(SOURCE, "\u0301"),
}


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_a_verbatim_quote_with_hidden_characters_stays_traceable(index, name):
    hidden = HIDDEN[name]
    assert hidden != SOURCE
    assert words(hidden) == words(SOURCE)
    row = _one(index, hidden)
    assert row["verdict"] == "traceable" and row["source_rank"] == 1
    assert row["longest_shared_run"] == len(words(SOURCE))


def test_hidden_characters_in_the_forum_are_normalised_too():
    """The index reads posts the same way: a post typed with look-alikes is found by plain words."""
    post = "My CPN said the waiting list for trauma therapy is nine months long"
    index = TraceIndex.build(["src", "other"], [_inside_words(post.translate(HOMOGLYPHS), "\u00ad"),
                                                 "nothing to do with it at all"])
    row = index.check([{"quote_id": "q", "source_post_id": "src", "text": post}], Thresholds())[0]
    assert row["verdict"] == "traceable" and row["longest_shared_run"] == len(words(post))


def test_word_spans_give_the_words_of_words_with_offsets_into_the_original():
    from postkit.disguise.trace import word_spans

    samples = list(HIDDEN.values()) + [
        "Café naïve ﬁne ½ İstanbul Straße ΣΊΣΥΦΟΣ don’t ｄｏｎ＇ｔ",
        "e\u0301te\u0301 \u1100\u1161\u11a8 ｶﾞｷﾞ 𝐛𝐨𝐥𝐝 ⓒircled",
        "",
        "\u00ad\u200b",
        "emoji 😀 between 👍🏽 words",
    ]
    for text in samples:
        spans = word_spans(text)
        assert [w for _, _, w in spans] == words(text), text
        for start, end, _ in spans:
            assert 0 <= start < end <= len(text)
    # a word with a soft hyphen inside spans the whole visible word
    text = "I co\u00adpe badly"
    assert [(text[s:e], w) for s, e, w in word_spans(text)] == [("I", "i"), ("co\u00adpe", "cope"), ("badly", "badly")]


def test_genuine_words_of_other_scripts_are_kept():
    assert words("Привет, как дела") == ["привет", "как", "дела"]
    assert words("рор") == ["pop"]  # every letter a Latin look-alike: read as the Latin word


# --------------------------------------------------------------------------- where the index lives


def test_the_default_cache_is_private_and_reused(corpus, tmp_path, monkeypatch):
    from postkit.disguise.trace import default_index_dir, fingerprint_file

    monkeypatch.setenv("POSTKIT_CACHE_DIR", str(tmp_path / "cache"))
    ids, texts = corpus
    corpus_csv = _write(tmp_path / "posts.csv", {"post_id": ids, "text": texts})
    quotes_csv = _write(tmp_path / "quotes.csv", {"quote_id": ["q1"], "source_post_id": ["src"], "text": [SOURCE]})
    first = check_file(quotes_csv, corpus_csv, tmp_path / "out.csv", thresholds=Thresholds())
    second = check_file(quotes_csv, corpus_csv, tmp_path / "out2.csv", thresholds=Thresholds())
    assert (first["index"], second["index"]) == ("built", "cached")
    folder = default_index_dir(fingerprint_file(corpus_csv))
    assert folder.parent == tmp_path / "cache" / "trace-index"
    for path in (folder.parent, folder):
        assert path.stat().st_mode & 0o777 == 0o700, path
    # the same file read with other columns is another corpus, so another key
    assert fingerprint_file(corpus_csv, {"text": "body"}) != fingerprint_file(corpus_csv)


def test_an_open_cache_folder_is_made_private(tmp_path, monkeypatch):
    from postkit.disguise.trace import default_index_dir

    monkeypatch.setenv("POSTKIT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "trace-index").mkdir(parents=True, mode=0o755)
    (tmp_path / "cache" / "trace-index").chmod(0o755)
    default_index_dir("a" * 64)
    assert (tmp_path / "cache" / "trace-index").stat().st_mode & 0o777 == 0o700
    with pytest.raises(PostkitError, match="cache key"):
        default_index_dir("../../etc")


def test_an_index_folder_inside_a_run_or_review_folder_is_refused(corpus, tmp_path):
    from postkit.disguise.trace import refuse_shared_location

    run = tmp_path / "run"
    (run / "disguise").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    review = tmp_path / "review"
    review.mkdir()
    (review / "suggestions.jsonl").write_text("")
    for inside in (run / "disguise" / "index", run / "idx", review / "index", review / "a" / "b"):
        with pytest.raises(PostkitError, match="may not be kept inside a run or review folder"):
            refuse_shared_location(inside)
    with pytest.raises(PostkitError, match="inside a run or review folder"):
        refuse_shared_location(tmp_path / "study" / "idx", tmp_path / "study")  # the folder about to be written
    refuse_shared_location(tmp_path / "private-index")  # elsewhere is fine
    ids, texts = corpus
    corpus_csv = _write(tmp_path / "posts.csv", {"post_id": ids, "text": texts})
    quotes_csv = _write(tmp_path / "quotes.csv", {"quote_id": ["q1"], "source_post_id": ["src"], "text": [SOURCE]})
    with pytest.raises(PostkitError, match="inside a run or review folder"):
        check_file(quotes_csv, corpus_csv, tmp_path / "out.csv", index_dir=run / "disguise" / "index")
    assert not (run / "disguise" / "index").exists()


# --------------------------------------------------------------------------- what may not be published


@pytest.mark.parametrize("text, code_point, why", [
    ("co\u00adpe", "U+00AD SOFT HYPHEN", "invisible"),
    ("co\u200bpe", "U+200B ZERO WIDTH SPACE", "invisible"),
    ("co\u200cpe", "U+200C ZERO WIDTH NON-JOINER", "invisible"),
    ("co\u200dpe", "U+200D ZERO WIDTH JOINER", "invisible"),
    ("\ufeffcope", "U+FEFF ZERO WIDTH NO-BREAK SPACE", "invisible"),
    ("co\u202epe", "U+202E RIGHT-TO-LEFT OVERRIDE", "invisible"),
    ("co\u2066pe", "U+2066 LEFT-TO-RIGHT ISOLATE", "invisible"),
    ("co\u200ape", "U+200A HAIR SPACE", "narrow space"),
    ("ｃope", "U+FF43 FULLWIDTH LATIN SMALL LETTER C", "compatibility form of 'c'"),
    ("𝐜ope", "U+1D41C MATHEMATICAL BOLD SMALL C", "compatibility form of 'c'"),
    ("ﬁne", "U+FB01 LATIN SMALL LIGATURE FI", "compatibility form of 'fi'"),
    ("cоpe", "U+043E CYRILLIC SMALL LETTER O", "cyrillic look-alike of Latin 'o'"),
    ("рор", "U+0440 CYRILLIC SMALL LETTER ER", "cyrillic look-alike of Latin 'p'"),
    ("αpple", "U+03B1 GREEK SMALL LETTER ALPHA", "greek look-alike of Latin 'a'"),
])
def test_hidden_characters_are_named_by_code_point(text, code_point, why):
    from postkit.disguise.study import publication_problem
    from postkit.identity import character_label, hidden_characters

    found = hidden_characters(text)
    assert found and character_label(found[0][1]) == code_point and why in found[0][2]
    problem = publication_problem(text)
    assert code_point in problem and "at character" in problem and text not in problem


@pytest.mark.parametrize("text", [
    "Plain ASCII text, with punctuation; and numbers 42.",
    "Café, naïve, déjà vu, São Paulo, Zoë — “curly quotes” and don’t…",
    "I ❤️ this group 👩‍💻 1️⃣ 🏳️‍🌈 👍🏽 and m² ½",
    "Привет, как дела",  # a genuine word of another script
    "10\u00a0mg",  # a no-break space is visible as a space
])
def test_ordinary_text_may_be_published(text):
    from postkit.identity import hidden_characters

    assert hidden_characters(text) == []
