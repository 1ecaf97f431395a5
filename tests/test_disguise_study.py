"""The review folder: decisions in the coding store, approval only when disguised, export re-checks."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.coding.store import CodingStore
from postkit.disguise.study import QuoteStudy, export_approved, locate
from postkit.disguise.suggest import quotes_from_posts, suggest_file
from postkit.disguise.trace import TraceIndex
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


def _approvable(study):
    """The first quote with a disguised candidate, and that candidate's text."""
    for quote in study.quotes():
        for candidate in quote["candidates"]:
            if candidate["verdict"] == "disguised":
                return quote, candidate["text"]
    raise AssertionError("the suggester found no disguised candidate for any quote")


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
    assert {"source_rank", "longest_shared_run", "exact_5gram_hits", "meaning_score", "reviewer"} <= set(exported)


def test_export_refuses_a_quote_that_no_longer_passes(study_dir, built, tmp_path):
    with QuoteStudy.open(study_dir) as study:
        quote, good = _approvable(study)
        study.decide(quote["quote_id"], "amy", "approve", good)
    # The forum grows: someone reposts the approved wording, so a phrase search now finds it.
    forum = read_table(built / "forum.csv")
    grown = pd.concat([forum, pd.DataFrame({"post_id": ["new1"], "text": [good]})], ignore_index=True)
    TraceIndex.build(grown["post_id"].tolist(), grown["text"].tolist()).save(study_dir / "index")
    out = tmp_path / "q.csv"
    result = CliRunner().invoke(main, ["disguise", "export", str(study_dir), "--output", str(out)])
    assert result.exit_code == 1
    assert "no longer pass" in result.stderr and quote["quote_id"] in result.stderr
    assert not out.exists()


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
