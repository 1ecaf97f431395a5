"""The real-text disguise benchmark's pure parts (issue 14): the 4-word rule for careful rewrites,
the headline measure, the stand-in risk check, the quote opening rule, and the clean skip.

Every text here is made up; the real quotes and rewrites stay outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_disguise_real as bench  # noqa: E402
import select_disguise_quotes as select  # noqa: E402


# --------------------------------------------------------------------------- the 4-word rule

def test_longest_shared_run_ignores_case_punctuation_and_curly_apostrophes():
    original = "I can’t sleep at night, and the mornings are worse."
    assert bench.longest_shared_run(original, "i CAN'T sleep at NIGHT!") == 5
    assert bench.longest_shared_run(original, "Nights bring no rest for me; mornings are harder.") == 2
    assert bench.longest_shared_run(original, "") == 0


def test_run_violations_names_rewrites_keeping_four_words():
    dog = "my dog died last spring and I miss him"
    rows = [
        {"quote_id": "a", "original": dog, "text": "since my dog died last spring I grieve"},
        {"quote_id": "b", "original": dog, "text": "I still grieve for the pet I lost this year"},
        {"quote_id": "c", "original": "the bus was late again today", "text": "today the bus was late"},
    ]
    assert bench.run_violations(rows) == [("a", 5), ("c", 4)]
    assert bench.run_violations(rows, max_run=4) == [("a", 5)]


def test_fullwidth_letters_do_not_hide_a_shared_run():
    assert bench.longest_shared_run("thanks for the kind words", "ｔｈａｎｋｓ ｆｏｒ ｔｈｅ kind words") == 5


# --------------------------------------------------------------------------- headline

def _row(verdict, bm25, dense, meaning, text="x"):
    return {"postkit_verdict": verdict, "bm25_rank": bm25, "dense_rank": dense, "meaning": meaning,
            "text": text, "longest_run": 2}


def test_headline_counts_disguised_by_both_with_meaning_over_the_floor():
    rows = [
        _row("disguised", None, 57, 0.71),      # counts
        _row("disguised", 300, 21, 0.60),       # counts: rank 21 is outside the top 20, meaning at the floor
        _row("disguised", None, 20, 0.80),      # dense attacker finds it: unsafe verdict
        _row("disguised", None, 90, 0.59),      # disguised by both, meaning too low
        _row("at risk", 15, 400, 0.90),         # BM25 finds it
        _row("traceable", 1, 1, 1.0),
        _row(None, None, None, None, text=None),  # no candidate: a failure, not left out
        _row("disguised", None, 150, 0.65),     # counts
    ]
    s = bench.summarise_set(rows)
    assert s["quotes"] == 8 and s["no_candidate"] == 1
    assert s["disguised_both"] == 4
    assert s["disguised_both_meaning"] == 3
    assert s["headline"] == round(3 / 8, 4)
    assert s["unsafe"] == 1
    assert s["bm25_found"] == 2 and s["dense_found"] == 2 and s["dense_rank_1"] == 1
    assert s["postkit_disguised"] == 5
    assert s["meaning_median"] == 0.71


def test_table_blanks_the_reference_columns_when_it_did_not_run():
    rows = [_row("disguised", None, None, None), _row("traceable", 1, None, None)]
    table = bench.render_table({"original": bench.summarise_set(rows)})
    line = table.splitlines()[-1]
    assert line.startswith("| original | 2 | 1 | – | 1 | – |")
    assert "**–**" in line
    scored = bench.render_table({"human": bench.summarise_set([_row("disguised", None, 40, 0.7)])})
    assert "**1/1 (100%)**" in scored


# --------------------------------------------------------------------------- risk stand-in

def test_simple_risk_check_catches_a_changed_risk_statement():
    before = "I tried to commit suicide last year"
    assert bench.simple_risk_changed(before, "I made a suicide attempt once") is None
    assert bench.simple_risk_changed(before, "I tried to devote myself last year") == "suicide"
    assert bench.simple_risk_changed("I have not self-harmed in months", "I have self harmed lately") == "negation"
    assert bench.simple_risk_changed("work was hard", "my job was tough") is None


# --------------------------------------------------------------------------- quote opening

def test_opening_takes_whole_sentences_to_eighteen_words_and_stops_at_forty_five():
    short = "One two three. " + " ".join(["word"] * 14) + " end. More text here."
    assert select.opening(short.split()) == 18
    long_sentence = " ".join(f"w{i}" for i in range(60))
    assert select.opening(long_sentence.split()) == 45
    with_comma = " ".join(f"w{i}" for i in range(30)) + ", " + " ".join(f"v{i}" for i in range(30))
    assert select.opening(with_comma.split()) == 30


# --------------------------------------------------------------------------- clean skip

def _run(args, tmp_path):
    env = dict(os.environ, POSTKIT_BENCH_DIR=str(tmp_path / "bench"), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_disguise_real.py"), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_skips_cleanly_without_the_forum(tmp_path):
    done = _run(["--forum", str(tmp_path / "absent.jsonl")], tmp_path)
    assert done.returncode == 0
    assert "forum not found" in done.stdout and "skipped" in done.stdout


def test_skips_cleanly_without_the_quotes(tmp_path):
    forum = tmp_path / "posts.jsonl"
    forum.write_text('{"post_id": "p1", "text": "a made-up post"}\n', encoding="utf-8")
    done = _run(["--forum", str(forum)], tmp_path)
    assert done.returncode == 0
    assert "quotes not found" in done.stdout and "skipped" in done.stdout
    assert not (tmp_path / "bench").exists()  # nothing written when skipped


def test_bench_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTKIT_BENCH_DIR", str(tmp_path / "b"))
    assert bench.bench_dir() == tmp_path / "b"
    monkeypatch.delenv("POSTKIT_BENCH_DIR")
    assert bench.bench_dir() == Path.home() / ".cache" / "postkit" / "bench" / "disguise-real"
