"""Paraphrase suggestions: targeted rewrites that really change the verdict, scored and ranked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.disguise import paraphrase
from postkit.disguise.meaning import MeaningScorer, load_nlp
from postkit.disguise.suggest import (Suggester, command_paraphraser, excerpt, python_paraphraser,
                                      quotes_from_posts)
from postkit.disguise.trace import TraceIndex, Thresholds, default_index_dir, words
from postkit.errors import PostkitError
from postkit.io import read_table, write_table

DEMO = Path(__file__).resolve().parent.parent / "corpora" / "demo" / "posts.csv"


@pytest.fixture(scope="module")
def nlp():
    return load_nlp()


@pytest.fixture(scope="module")
def demo():
    frame = pd.read_csv(DEMO, dtype=str, keep_default_na=False)
    return frame


@pytest.fixture(scope="module")
def index(demo):
    return TraceIndex.build(demo["post_id"].tolist(), demo["text"].tolist())


@pytest.fixture(scope="module")
def suggester(index, nlp):
    return Suggester(index, Thresholds(), nlp=nlp, scorer=MeaningScorer(nlp))


def _verbatim(demo, n=6, skip=0):
    rows = demo[demo["text"].str.split().str.len() >= 30].iloc[skip:]
    return quotes_from_posts(rows.to_dict("records"), n)


# -- paraphrase operations ------------------------------------------------------

def test_generalise_blurs_identifying_details():
    text, edits = paraphrase.generalise("I'm 23 and [PERSON] told me on Tuesday. I waited 3 years (at Leeds).")
    assert "23" not in text and "twenties" in text
    assert "[PERSON]" not in text and "someone" in text
    assert "3 years" not in text and "a few years" in text
    assert "Leeds" not in text and "Tuesday" not in text
    assert len(edits) >= 4


def test_medicine_names_are_generalised():
    text, edits = paraphrase.generalise("Mirtazapine knocks me out. My sertraline dose went up.")
    assert text == "My medication knocks me out. My medication dose went up." and len(edits) == 2


def test_every_candidate_drops_identifiers_a_raw_quote_may_hold():
    text, edits = paraphrase.generalise("@rainypenguin_66 ring me on 07700 900893 or see https://x.org/a. 3 years on",
                                        details=False)
    assert "rainypenguin" not in text and "07700" not in text and "x.org" not in text
    assert "3 years" in text  # details are blurred only when asked
    assert text.endswith("a website. 3 years on") and len(edits) == 3


def test_contractions_expand_or_contract():
    expanded, edits = paraphrase.toggle_contractions("I'm tired and I don't sleep.")
    assert expanded == "I am tired and I do not sleep." and edits
    contracted, edits = paraphrase.toggle_contractions("I am tired and I do not sleep.")
    assert contracted == "I'm tired and I don't sleep." and edits


def test_clause_reordering_both_ways(nlp):
    front, edits = paraphrase.restructure("I kept posting because people here listened.", nlp,
                                          voice=False, contractions=False, sentence_order=False)
    assert front == "Because people here listened, I kept posting." and edits
    back, _ = paraphrase.restructure("When I read your post, I cried.", nlp, voice=False, contractions=False,
                                     sentence_order=False)
    assert back == "I cried when I read your post."


def test_passive_voice_with_pronoun_cases_and_inflection(nlp):
    text, edits = paraphrase.restructure("This forum saved me.", nlp, clauses=False, contractions=False,
                                         sentence_order=False)
    assert text == "I was saved by this forum." and "voice: active → passive" in edits
    text, _ = paraphrase.restructure("My sister helped us.", nlp, clauses=False, contractions=False,
                                     sentence_order=False)
    assert text == "We were helped by my sister."


def test_sentence_order_keeps_pronoun_openings_attached(nlp):
    swapped, edits = paraphrase.restructure("I joined last year. Nobody here judges me.", nlp, clauses=False,
                                            voice=False, contractions=False)
    assert swapped == "Nobody here judges me. I joined last year." and edits
    kept, edits = paraphrase.restructure("I joined last year. It changed everything.", nlp, clauses=False,
                                         voice=False, contractions=False)
    assert kept == "I joined last year. It changed everything." and not edits


def test_substitution_targets_the_heaviest_words_first(nlp):
    weights = {"exhausted": 5.0, "lonely": 1.0}
    text, edits = paraphrase.substitute("I felt exhausted and lonely.", nlp, weights, share=0.5)
    assert "exhausted" not in text and "lonely" in text and len(edits) == 1


# -- suggester ------------------------------------------------------------------

def test_weights_favour_rare_words_the_source_contains(suggester, demo):
    quote = _verbatim(demo, 1)[0]
    weights = suggester.weights(quote["text"], quote["source_post_id"])
    assert weights  # the verbatim quote shares words with its source
    assert all(w >= 0 for w in weights.values())
    assert weights.get("the", 0.0) < max(weights.values())


def test_verbatim_quotes_become_disguised(suggester, demo):
    quotes = _verbatim(demo, 6)
    rows = suggester.suggest(quotes)
    assert all(r["verdict"] == "traceable" for r in rows)  # verbatim: the source is the first hit
    disguised = [r for r in rows if r["candidates"] and r["candidates"][0]["verdict"] == "disguised"]
    # The demo corpus is generated from templates, so whole sentences recur across posts and
    # a search by meaning finds most rewordings (the dense attacker): a quote whose best
    # candidate is not disguised must say plainly that no rewording will do...
    for row in rows:
        if row not in disguised:
            assert row["no_rewording"] and row["advice"], row
    # ...and every best candidate is less findable than the verbatim quote.
    for row in rows:
        top = row["candidates"][0]
        assert (top["verdict"] != "traceable" or (top["source_rank"] or 999) > row["source_rank"]
                or top["longest_shared_run"] < row["longest_shared_run"]), top
    for row in rows:
        for candidate in row["candidates"]:
            assert set(candidate) >= {"text", "verdict", "source_rank", "longest_shared_run", "meaning_score",
                                      "edits"}
            assert candidate["text"] != row["text"] and candidate["edits"]
            assert 0.0 <= candidate["meaning_score"] <= 1.0
        order = ["disguised", "at risk", "traceable"]
        ranks = [order.index(c["verdict"]) for c in row["candidates"]]
        assert ranks == sorted(ranks)  # best first
    # a disguised rewrite that lost the quote's meaning says so too
    for row in disguised:
        kept = max(c["meaning_score"] for c in row["candidates"] if c["verdict"] == "disguised")
        assert (row["advice"] is None) == (kept >= 0.6), row


def test_candidates_are_checked_like_the_check_command(suggester, index, demo):
    quote = _verbatim(demo, 1, skip=3)[0]
    row = suggester.suggest([quote])[0]
    top = row["candidates"][0]
    again = index.check([{"quote_id": "x", "source_post_id": quote["source_post_id"], "text": top["text"]}],
                        Thresholds())[0]
    assert again["verdict"] == top["verdict"] and again["source_rank"] == top["source_rank"]


def external_upper(text: str) -> list[str]:
    """A stand-in for a team's own paraphraser (loaded by module:function)."""
    return [text.upper(), "Completely different words about gardening and the weather today."]


def test_external_python_paraphraser_is_scored_the_same_way(index, nlp, demo):
    external = python_paraphraser(f"{__name__}:external_upper")
    suggester = Suggester(index, Thresholds(), nlp=nlp, scorer=MeaningScorer(nlp), externals=[external],
                          n_candidates=20)
    quote = _verbatim(demo, 1)[0]
    row = suggester.suggest([quote])[0]
    mine = [c for c in row["candidates"] if c["edits"] == [external.label]]
    assert len(mine) == 2
    gardening = next(c for c in mine if "gardening" in c["text"])
    upper = next(c for c in mine if c is not gardening)
    assert upper["verdict"] == "traceable"  # case changes nothing for a search engine
    assert gardening["meaning_score"] < upper["meaning_score"]


def test_external_command_paraphraser(tmp_path):
    script = tmp_path / "para.py"
    script.write_text("import sys\ntext = sys.stdin.read()\nprint(text[::-1])\nprint()\nprint('second')\n")
    external = command_paraphraser(f"{sys.executable} {script}")
    assert external.run("abc") == ["cba", "second"]
    failing = command_paraphraser(f"{sys.executable} -c \"import sys; sys.exit('model missing')\"")
    with pytest.raises(PostkitError, match="model missing"):
        failing.run("abc")
    with pytest.raises(PostkitError, match="not found"):
        command_paraphraser("no-such-paraphraser-xyz").run("abc")
    with pytest.raises(PostkitError, match="module:function"):
        python_paraphraser("nocolon")


def test_excerpt_takes_whole_opening_sentences():
    text = "First short one. Second sentence is here with more words in it. Third should not be needed at all."
    assert excerpt(text, max_words=45, min_words=8) == "First short one. Second sentence is here with more words in it."
    assert len(excerpt("word " * 100).split()) == 45


# -- command line ---------------------------------------------------------------

def test_suggest_command_writes_output_and_review_folder(tmp_path, demo):
    corpus = tmp_path / "forum.csv"
    write_table(demo[["post_id", "forum", "text"]].head(600), corpus)
    quotes = pd.DataFrame(_verbatim(demo.head(600), 3))
    write_table(quotes, tmp_path / "quotes.csv")
    result = CliRunner().invoke(main, ["disguise", "suggest", str(tmp_path / "quotes.csv"), "--corpus", str(corpus),
                                       "--output", str(tmp_path / "out.jsonl"), "--study", str(tmp_path / "review"),
                                       "--candidates", "3"])
    assert result.exit_code == 0, result.output + str(result.exception)
    assert "best candidate" in result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["quote_id"] for r in rows] == quotes["quote_id"].tolist()
    assert all(1 <= len(r["candidates"]) <= 3 for r in rows)
    assert (tmp_path / "review" / "suggestions.jsonl").is_file()
    # the review folder names the index; the index itself (every post's words) is cached privately
    record = json.loads((tmp_path / "review" / "index.json").read_text())
    assert not (tmp_path / "review" / "index").exists()
    cached = default_index_dir(record["key"])
    assert (cached / "meta.json").is_file() and cached.stat().st_mode & 0o777 == 0o700
    assert record["corpus"]["path"] == str(corpus.resolve())
    # CSV output keeps the candidates as JSON text
    result = CliRunner().invoke(main, ["disguise", "suggest", str(tmp_path / "quotes.csv"), "--corpus", str(corpus),
                                       "--output", str(tmp_path / "out.csv"), "-q"])
    assert result.exit_code == 0
    assert json.loads(read_table(tmp_path / "out.csv")["candidates"][0])[0]["text"]


def test_suggest_fails_closed_on_unknown_source(tmp_path):
    write_table(pd.DataFrame({"post_id": ["p1"], "text": ["hello there"]}), tmp_path / "forum.csv")
    write_table(pd.DataFrame({"quote_id": ["q1"], "source_post_id": ["zz"], "text": ["hello"]}), tmp_path / "q.csv")
    result = CliRunner().invoke(main, ["disguise", "suggest", str(tmp_path / "q.csv"), "--corpus",
                                       str(tmp_path / "forum.csv"), "--study", str(tmp_path / "review")])
    assert result.exit_code == 1 and "zz" in result.stderr
    assert not (tmp_path / "review" / "suggestions.jsonl").exists()


def test_words_normalisation_is_shared_with_the_check():
    assert words("Don\u2019t  STOP") == ["don't", "stop"]
