"""Sampling: phrase and length eligibility, deterministic per-forum samples, funnel, errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.io import read_table, write_table
from postkit.sample import count_words, matched_phrases, sample_file, sample_key


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Thank you for…", "thank you for"),
        ("thank you for, honestly", "thank you for"),
        ("THANK YOU FOR EVERYTHING", "thank you for"),
        ("thank   you\nfor listening", "thank you for"),
        ("Thank you\n\nfor being here", "thank you for"),
        ("ok. thank you for.", "thank you for"),
        ("thank you formally", None),
        ("thankyou for this", None),
        ("thanks for this", None),
        ("thank u for this", None),
        ("thank you, for this", None),
        ("mythank you for", None),
        ("thank you fortnightly", None),
        ("", None),
    ],
)
def test_phrase_matching(text, expected):
    assert matched_phrases([text], ["thank you for"]) == [expected]


def test_several_phrases_are_ored_and_the_first_match_is_reported():
    texts = ["thanks for this", "thank you for this", "nothing"]
    assert matched_phrases(texts, ["thank you for", "thanks for"]) == ["thanks for", "thank you for", None]
    assert matched_phrases(["thank you for and thanks for"], ["thanks for", "thank you for"]) == ["thanks for"]


def test_curly_and_straight_apostrophes_match_each_other():
    assert matched_phrases(["you’re a star"], ["you're a star"]) == ["you're a star"]
    assert matched_phrases(["you're a star"], ["you’re a star"]) == ["you’re a star"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("one two three", 3),
        ("don't — stop 🙂 !!! ...", 2),
        ("a-b c.d e,f", 3),
        ("line\nbreaks\tand  spaces", 4),
        ("", 0),
        ("🙂 🙂", 0),
        ("2am 50mg", 2),
    ],
)
def test_word_definition(text, words):
    assert count_words([text]) == [words]


def make_posts(n_per_forum: dict[str, int], extra_words: int = 31) -> pd.DataFrame:
    rows = []
    for forum, n in n_per_forum.items():
        for i in range(n):
            body = " ".join(["word"] * (extra_words - 3))
            rows.append({"post_id": f"{forum}-{i:04d}", "forum": forum, "user_id": f"u{i}",
                         "text": f"Thank you for {body}", "created_at": f"{2019 + i % 3}-05-01T00:00:00Z",
                         "extra": f"x{i}"})
    return pd.DataFrame(rows)


def test_length_boundary_is_more_than_min_words(tmp_path):
    frame = pd.DataFrame([
        {"post_id": "p30", "forum": "Robin", "text": "thank you for " + " ".join(["w"] * 27)},  # 30 words
        {"post_id": "p31", "forum": "Robin", "text": "thank you for " + " ".join(["w"] * 28)},  # 31 words
    ])
    assert count_words(frame["text"].tolist()) == [30, 31]
    source = tmp_path / "posts.csv"
    write_table(frame, source)
    result = sample_file(source, tmp_path / "out.csv", per_stratum=5, min_words=30)
    sample = read_table(tmp_path / "out.csv")
    assert sample["post_id"].tolist() == ["p31"]
    assert sample["word_count"].tolist() == ["31"] and sample["matched_phrase"].tolist() == ["thank you for"]
    assert vars(result.totals()) == {"total": 2, "phrase": 2, "length": 1, "sampled": 1}


def test_sample_is_the_n_smallest_keys_per_forum(tmp_path):
    frame = make_posts({"Robin": 50, "Jay": 30})
    source = tmp_path / "posts.parquet"
    write_table(frame, source)
    sample_file(source, tmp_path / "out.parquet", per_stratum=10, seed=7)
    sample = read_table(tmp_path / "out.parquet")
    for forum, group in sample.groupby("forum"):
        candidates = sorted(frame[frame.forum == forum]["post_id"], key=lambda p: sample_key(7, p))[:10]
        assert group.sort_values("sample_rank")["post_id"].tolist() == candidates
        assert group["sample_rank"].tolist() == list(range(1, 11))
    assert sample["extra"].notna().all() and list(sample.columns)[-3:] == ["sample_rank", "word_count",
                                                                           "matched_phrase"]


def test_same_sample_whatever_order_batch_size_or_format(tmp_path):
    frame = make_posts({"Robin": 60, "Jay": 25, "Wren": 3})
    outputs = []
    for i, (order_seed, batch, name) in enumerate([(None, 1000, "a.csv"), (1, 7, "b.jsonl"), (2, 1, "c.parquet")]):
        shuffled = frame if order_seed is None else frame.sample(frac=1, random_state=order_seed)
        source = tmp_path / f"in{i}_{name}"
        write_table(shuffled, source)
        out = tmp_path / f"out{i}.csv"
        sample_file(source, out, per_stratum=12, seed="s3", batch_size=batch)
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] == outputs[2]
    other_seed = tmp_path / "other.csv"
    sample_file(tmp_path / "in0_a.csv", other_seed, per_stratum=12, seed="s4")
    assert other_seed.read_text() != outputs[0]


def test_small_forums_give_all_their_eligible_posts_and_say_so(tmp_path):
    source = tmp_path / "posts.csv"
    write_table(make_posts({"Robin": 30, "Wren": 4}), source)
    result = run("sample", source, "--output", tmp_path / "out.csv", "--per-forum", 10)
    assert result.exit_code == 0, result.output
    assert "only 4 eligible" in result.output
    assert "1 of 2 strata had fewer than 10 eligible posts and contribute all of them: Wren" in result.output
    sample = read_table(tmp_path / "out.csv")
    assert sample.groupby("forum").size().to_dict() == {"Robin": 10, "Wren": 4}


def test_stratify_by_forum_and_year(tmp_path):
    source = tmp_path / "posts.csv"
    write_table(make_posts({"Robin": 30}), source)
    result = sample_file(source, tmp_path / "out.csv", per_stratum=4, by=["forum", "year"])
    assert [r["stratum"] for r in result.funnel_rows()] == ["Robin / 2019", "Robin / 2020", "Robin / 2021"]
    assert len(read_table(tmp_path / "out.csv")) == 12


def test_manifest_records_settings_counts_and_hashes(tmp_path):
    from postkit.hashing import sha256_path

    source = tmp_path / "posts.csv"
    write_table(make_posts({"Robin": 15}), source)
    out = tmp_path / "out.parquet"
    sample_file(source, out, per_stratum=5, seed=11, phrases=["thank you for", "thanks for"])
    manifest = json.loads((tmp_path / "out.parquet.manifest.json").read_text())
    assert manifest["seed"] == 11 and manifest["phrases"] == ["thank you for", "thanks for"]
    assert manifest["min_words"] == 30 and manifest["per_stratum"] == 5
    assert manifest["input"]["sha256"] == sha256_path(source) and manifest["output"]["sha256"] == sha256_path(out)
    assert manifest["funnel"] == [{"stratum": "Robin", "total": 15, "phrase": 15, "length": 15, "sampled": 5,
                                   "short": False}]
    assert "letter or digit" in manifest["word_definition"]


def test_empty_input_gives_empty_output_with_columns(tmp_path):
    source = tmp_path / "posts.csv"
    source.write_text("post_id,forum,user_id,text,created_at\n")
    result = run("sample", source, "--output", tmp_path / "out.csv")
    assert result.exit_code == 0 and "The input has no posts" in result.output
    assert (tmp_path / "out.csv").read_text().strip() == \
        "post_id,forum,user_id,text,created_at,sample_rank,word_count,matched_phrase"


def test_missing_columns_and_bad_options_are_clear_errors(tmp_path):
    source = tmp_path / "posts.csv"
    source.write_text("post_id,board,text\np1,Robin,hi\n")
    result = run("sample", source, "--output", tmp_path / "out.csv")
    assert result.exit_code == 1 and "missing column 'forum'" in result.stderr and "--column forum=" in result.stderr
    assert run("sample", source, "--output", tmp_path / "o.csv", "--column", "forum=board").exit_code == 0
    result = run("sample", source, "--output", tmp_path / "o.csv", "--column", "forum=board", "--by", "forum,mood")
    assert result.exit_code == 1 and "missing column 'mood'" in result.stderr
    result = run("sample", source, "--output", tmp_path / "o.csv", "--column", "forum=board", "--phrase", "  ")
    assert result.exit_code == 1


def test_duplicate_eligible_post_ids_stop_the_run(tmp_path):
    frame = make_posts({"Robin": 3})
    frame.loc[2, "post_id"] = frame.loc[0, "post_id"]
    source = tmp_path / "posts.csv"
    write_table(frame, source)
    result = run("sample", source, "--output", tmp_path / "out.csv")
    assert result.exit_code == 1 and "duplicate post_id 'Robin-0000'" in result.stderr
    assert not (tmp_path / "out.csv").exists()


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])
