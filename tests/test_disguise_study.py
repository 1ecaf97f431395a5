"""The review folder: decisions in the coding store, approval only when disguised, export re-checks."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.coding.store import CodingStore
from postkit.disguise.study import QuoteStudy, export_approved, locate
from postkit.disguise.suggest import quotes_from_posts, suggest_file
from postkit.disguise.trace import TraceIndex, default_index_dir
from postkit.errors import PostkitError
from postkit.io import read_table, write_table

DEMO = Path(__file__).resolve().parent.parent / "corpora" / "demo" / "posts.csv"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A review folder made by suggest_file over 800 demo posts, with 8 verbatim quotes."""
    folder = tmp_path_factory.mktemp("study")
    demo = pd.read_csv(DEMO, dtype=str, keep_default_na=False).head(800)
    write_table(demo[["post_id", "text"]], folder / "forum.csv")
    long_posts = demo[demo["text"].str.split().str.len() >= 30]
    write_table(pd.DataFrame(quotes_from_posts(long_posts.to_dict("records"), 8)), folder / "quotes.csv")
    suggest_file(folder / "quotes.csv", folder / "forum.csv", study_dir=folder / "review")
    return folder


@pytest.fixture
def study_dir(built, tmp_path):
    """A fresh copy per test, so decisions do not leak between tests."""
    import shutil

    shutil.copytree(built / "review", tmp_path / "review")
    return tmp_path / "review"


# Texts that no longer say what a demo post says: disguised from both attackers.
FAR_TEXTS = ("Repainted the garden bench green on a dry afternoon.",
             "It was a long road, yet that afternoon ended in a smile.")


def _approvable(study):
    """The first quote with a disguised candidate, and that candidate's text; else (the dense
    attacker finds most rewordings of these templated posts) the first quote and a text that no
    longer carries its meaning, checked to be disguised."""
    for quote in study.quotes():
        for candidate in quote["candidates"]:
            if candidate["verdict"] == "disguised":
                return quote, candidate["text"]
    quote = study.quotes()[0]
    for text in FAR_TEXTS:
        if study.check(quote["quote_id"], text)["verdict"] == "disguised":
            return quote, text
    raise AssertionError("no disguised text for any quote")


def test_open_lists_quotes_with_candidates_and_highlights(study_dir):
    with QuoteStudy.open(study_dir) as study:
        quotes = study.quotes()
        assert len(quotes) == 8 and all(q["status"] is None for q in quotes)
        first = quotes[0]
        checked = study.check(first["quote_id"], first["text"])
        assert checked["verdict"] == "traceable" and checked["source_rank"] <= 2  # templated posts can tie
        # the verbatim quote shares every content word and one long run with its source
        assert checked["runs"] and checked["runs"][0][0] == 0
        assert checked["shared"]
        text = first["text"]
        assert all(0 <= s < e <= len(text) for s, e in checked["shared"])


def test_approve_requires_disguised_text_and_persists(study_dir):
    with QuoteStudy.open(study_dir) as study:
        quote, good = _approvable(study)
        with pytest.raises(PostkitError, match="cannot approve"):
            study.decide(quote["quote_id"], "amy", "approve", quote["text"])
        decision = study.decide(quote["quote_id"], "amy", "approve", good, note="reads naturally")
        assert decision["action"] == "approve" and decision["scores"]["verdict"] == "disguised"
        other = next(q for q in study.quotes() if q["quote_id"] != quote["quote_id"])
        study.decide(other["quote_id"], "amy", "reject", other["text"], note="too long")
    with QuoteStudy.open(study_dir) as reopened:  # persisted in the store
        statuses = {q["quote_id"]: q["status"] for q in reopened.quotes()}
        assert statuses[quote["quote_id"]]["action"] == "approve" and statuses[quote["quote_id"]]["text"] == good
        assert statuses[quote["quote_id"]]["note"] == "reads naturally"
        assert statuses[quote["quote_id"]]["reviewer"] == "amy"
        assert statuses[other["quote_id"]]["action"] == "reject"
        assert sum(s is None for s in statuses.values()) == len(statuses) - 2
        assert len(reopened.history(quote["quote_id"])) == 1
    # the decisions are in the same store coding decisions use
    assert len(CodingStore(study_dir / "coding.sqlite").reviews("quote")) == 2


def test_export_writes_only_approved_quotes_with_scores(study_dir, tmp_path):
    with QuoteStudy.open(study_dir) as study:
        quote, good = _approvable(study)
        other = next(q for q in study.quotes() if q["quote_id"] != quote["quote_id"])
        study.decide(quote["quote_id"], "amy", "approve", good)
        study.decide(other["quote_id"], "amy", "reject", other["text"])
    result = CliRunner().invoke(main, ["disguise", "export", str(study_dir), "--output", str(tmp_path / "q.csv")])
    assert result.exit_code == 0, result.output + result.stderr
    assert "Exported 1 approved quote" in result.output and "1 rejected and 6 pending" in result.output
    exported = read_table(tmp_path / "q.csv")
    assert exported["quote_id"].tolist() == [quote["quote_id"]]
    assert exported["text"].tolist() == [good] and exported["verdict"].tolist() == ["disguised"]
    assert {"source_rank", "dense_rank", "longest_shared_run", "exact_5gram_hits", "meaning_score",
            "reviewer"} <= set(exported)
    assert exported["dense_rank"].astype(int).gt(20).all()


def test_export_refuses_a_quote_that_no_longer_passes(study_dir, built, tmp_path, monkeypatch):
    with QuoteStudy.open(study_dir) as study:
        quote, good = _approvable(study)
        study.decide(quote["quote_id"], "amy", "approve", good)
    # The forum grows: someone reposts the approved wording, so a phrase search now finds it.
    forum = read_table(built / "forum.csv")
    grown = pd.concat([forum, pd.DataFrame({"post_id": ["new1"], "text": [good]})], ignore_index=True)
    key = json.loads((study_dir / "index.json").read_text())["key"]
    monkeypatch.setenv("POSTKIT_CACHE_DIR", str(tmp_path / "cache"))  # this test's own cache holds the grown index
    TraceIndex.build(grown["post_id"].tolist(), grown["text"].tolist(), fingerprint=key).save(default_index_dir(key))
    out = tmp_path / "q.csv"
    result = CliRunner().invoke(main, ["disguise", "export", str(study_dir), "--output", str(out)])
    assert result.exit_code == 1
    assert "no longer pass" in result.stderr and quote["quote_id"] in result.stderr
    assert not out.exists()


def test_a_disguised_text_that_changes_a_risk_statement_cannot_be_approved_or_exported(study_dir, tmp_path,
                                                                                         monkeypatch):
    with QuoteStudy.open(study_dir) as study:
        quote, good = _approvable(study)
        study.decide(quote["quote_id"], "amy", "approve", good)  # approved while it kept the meaning
        real_check = study.check

        def risk_changed(quote_id, text):
            return real_check(quote_id, text) | {"risk_changed": True,
                                                 "risk_reason": "a risk statement (self-harm) was reworded or dropped"}

        monkeypatch.setattr(study, "check", risk_changed)
        with pytest.raises(PostkitError, match=r"cannot approve: a risk statement \(self-harm\)"):
            study.decide(quote["quote_id"], "amy", "approve", good)
        with pytest.raises(PostkitError, match="a risk statement changed"):
            export_approved(study, tmp_path / "q.csv")
    assert not (tmp_path / "q.csv").exists()


def _review_many(folder: str, reviewer: str, count: int, queue) -> None:
    with QuoteStudy.open(folder) as study:
        quotes = study.quotes()
        for n in range(count):
            quote = quotes[n % len(quotes)]
            study.decide(quote["quote_id"], reviewer, "reject", quote["text"], note=f"{reviewer} {n}")
    queue.put(reviewer)


def test_concurrent_reviewers_lose_nothing(study_dir):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_review_many, args=(str(study_dir), name, 15, queue)) for name in ("amy", "bo")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    reviews = CodingStore(study_dir / "coding.sqlite").reviews("quote")
    assert len(reviews) == 30
    assert sorted(reviews["note"]) == sorted([f"amy {n}" for n in range(15)] + [f"bo {n}" for n in range(15)])


def test_locate_explains_a_wrong_folder(tmp_path):
    with pytest.raises(PostkitError, match="no suggestions.jsonl"):
        locate(tmp_path)
    (tmp_path / "suggestions.jsonl").write_text("")
    with pytest.raises(PostkitError, match="index"):
        locate(tmp_path)


def test_export_of_an_empty_review_is_header_only(study_dir, tmp_path):
    with QuoteStudy.open(study_dir) as study:
        counts = export_approved(study, tmp_path / "none.csv")
    assert counts == {"exported": 0, "quotes": 8, "rejected": 0, "pending": 8}
    assert (tmp_path / "none.csv").read_text().startswith("quote_id,source_post_id,text,verdict")


# --------------------------------------------------------------------------- hidden characters

HIDING = {
    "soft hyphen": "\u00ad",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "byte order mark": "\ufeff",
    "right-to-left mark": "\u200f",
}


def _hide(text, mark):
    return " ".join(w[:2] + mark + w[2:] if len(w) >= 4 else w for w in text.split(" "))


def _fullwidth(text):
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _homoglyphs(text):
    return text.translate(str.maketrans("aeopcixy", "аеорсіху"))


@pytest.fixture
def small_study(tmp_path):
    from review_fixtures import make_study_folder

    return make_study_folder(tmp_path / "small")


def _variants(text):
    return {**{name: _hide(text, mark) for name, mark in HIDING.items()},
            "fullwidth letters": _fullwidth(text), "cyrillic homoglyphs": _homoglyphs(text)}


def test_verbatim_quotes_with_hidden_characters_are_traceable_and_cannot_be_approved(small_study):
    from review_fixtures import SOURCE_1

    with QuoteStudy.open(small_study) as study:
        for name, text in _variants(SOURCE_1).items():
            checked = study.check("q1", text)
            assert checked["verdict"] == "traceable", name
            assert checked["hidden_characters"], name  # the live check marks them for the reviewer
            with pytest.raises(PostkitError, match="cannot approve") as info:
                study.decide("q1", "amy", "approve", text)
            assert text not in str(info.value)
        assert study.history("q1") == []


@pytest.mark.parametrize("name", ["soft hyphen", "zero-width space", "fullwidth letters", "cyrillic homoglyphs"])
def test_a_disguised_text_with_hidden_characters_cannot_be_approved(small_study, name):
    from review_fixtures import DISGUISED_1

    text = _variants(DISGUISED_1)[name]
    with QuoteStudy.open(small_study) as study:
        assert study.check("q1", DISGUISED_1)["verdict"] == "disguised"
        assert study.check("q1", text)["verdict"] == "disguised"  # normalised, the text is the same words
        with pytest.raises(PostkitError, match=r"cannot approve: the text contains U\+[0-9A-F]{4}") as info:
            study.decide("q1", "amy", "approve", text)
        message = str(info.value)
        assert text not in message and "character" in message
        study.decide("q1", "amy", "reject", text, note="hidden characters")  # rejecting it is fine
        study.decide("q1", "amy", "approve", DISGUISED_1)  # the plain text is approved


def test_the_message_names_the_code_point_not_the_text(small_study):
    from review_fixtures import DISGUISED_1

    with QuoteStudy.open(small_study) as study:
        with pytest.raises(PostkitError) as info:
            study.decide("q1", "amy", "approve", DISGUISED_1.replace("long", "lo\u00adng"))
    assert "U+00AD SOFT HYPHEN at character" in str(info.value)
    assert "lo\u00adng" not in str(info.value)


@pytest.mark.parametrize("name", sorted(_variants("x")))
def test_export_refuses_an_approved_text_with_hidden_characters(small_study, tmp_path, name):
    """Approved by an older postkit (or written into the store by hand): the export stops it."""
    from review_fixtures import DISGUISED_1, SOURCE_1

    for text in (_variants(DISGUISED_1)[name], _variants(SOURCE_1)[name]):
        with CodingStore(small_study / "coding.sqlite") as store:
            store.add_review("quote", "q1", "amy", "approve", text=text, scores={}, note=None)
        out = tmp_path / "q.csv"
        result = CliRunner().invoke(main, ["disguise", "export", str(small_study), "--output", str(out)])
        assert result.exit_code == 1, result.output
        assert "may not be published as typed" in result.stderr or "no longer pass" in result.stderr
        assert "q1" in result.stderr and text not in result.stderr
        assert not out.exists()


# --------------------------------------------------------------------------- the index outside the folder


def test_open_rebuilds_a_missing_index_from_the_recorded_corpus(study_dir, built, tmp_path, monkeypatch):
    monkeypatch.setenv("POSTKIT_CACHE_DIR", str(tmp_path / "empty-cache"))
    told = []
    with QuoteStudy.open(study_dir, notify=told.append) as study:
        assert len(study.quotes()) == 8
    assert told and "indexing" in told[0] and str(built / "forum.csv") in told[0]
    told.clear()
    with QuoteStudy.open(study_dir, notify=told.append):
        pass
    assert told == []  # cached now
    assert (tmp_path / "empty-cache" / "trace-index").stat().st_mode & 0o777 == 0o700


def test_open_fails_closed_when_the_corpus_is_gone_or_changed(study_dir, built, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("POSTKIT_CACHE_DIR", str(tmp_path / "empty-cache"))
    record = json.loads((study_dir / "index.json").read_text())
    moved = tmp_path / "elsewhere.csv"
    shutil.copy(built / "forum.csv", moved)
    record["corpus"]["path"], record["corpus"]["relative"] = str(tmp_path / "gone.csv"), "gone.csv"
    (study_dir / "index.json").write_text(json.dumps(record))
    with pytest.raises(PostkitError, match="not in this machine's cache and the corpus"):
        QuoteStudy.open(study_dir)
    moved.write_text(moved.read_text() + "new1,an extra post\n")
    record["corpus"]["path"] = str(moved)
    (study_dir / "index.json").write_text(json.dumps(record))
    with pytest.raises(PostkitError, match="corpus changed"):
        QuoteStudy.open(study_dir)


def test_a_review_folder_with_the_old_in_folder_index_is_refused(study_dir):
    (study_dir / "index").mkdir()
    (study_dir / "index" / "meta.json").write_text("{}")
    with pytest.raises(PostkitError, match="holds the text of every post"):
        locate(study_dir)


def test_suggest_refuses_an_index_folder_inside_the_review_folder(built, tmp_path):
    result = CliRunner().invoke(main, ["disguise", "suggest", str(built / "quotes.csv"), "--corpus",
                                       str(built / "forum.csv"), "--study", str(tmp_path / "review"),
                                       "--index-dir", str(tmp_path / "review" / "index")])
    assert result.exit_code == 1 and "inside a run or review folder" in result.stderr
    assert not (tmp_path / "review").exists()
