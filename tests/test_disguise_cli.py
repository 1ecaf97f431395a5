"""`postkit disguise check` through the CLI: verdicts, summary, cached index, fail closed."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from postkit.cli import main
from postkit.io import read_table, write_table

TOPICS = ["my gp finally referred me to talking therapies after months on the waiting list",
          "the night shift at the warehouse makes my sleep and my mood so much worse",
          "my cat sits with me when the panic attacks come and it honestly helps",
          "i started running again at the weekend and my head feels clearer",
          "university deadlines are piling up and i cannot face opening my laptop",
          "my sister drove me to the appointment and waited outside the whole time"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_disguise_check_gives_verdicts_and_caches_the_index(tmp_path):
    corpus = pd.DataFrame({"post_id": [f"p{i}" for i in range(len(TOPICS) * 4)],
                           "text": [f"{t}, post number {i}" for i in range(4) for t in TOPICS]})
    write_table(corpus, tmp_path / "forum.parquet")
    quotes = pd.DataFrame({
        "quote_id": ["q1", "q2"],
        "source_post_id": ["p0", "p1"],
        "text": [corpus["text"][0],  # verbatim
                 "sleeping is hard when I work late, and feeling low follows"],
    })
    write_table(quotes, tmp_path / "quotes.csv")
    args = ["disguise", "check", tmp_path / "quotes.csv", "--corpus", tmp_path / "forum.parquet",
            "--output", tmp_path / "checked.csv", "--index", tmp_path / "index", "--top-k", "2"]
    result = run(*args)
    assert result.exit_code == 0, result.output + result.stderr
    checked = read_table(tmp_path / "checked.csv").set_index("quote_id")
    assert list(checked.columns) == ["source_post_id", "source_rank", "dense_rank", "dense", "longest_shared_run",
                                     "distinctive_overlap", "exact_5gram_hits", "verdict"]
    assert checked.loc["q1", "verdict"] == "traceable" and checked.loc["q1", "source_rank"] == "1"
    # q2 shares few words but keeps the meaning: the dense attacker still finds its source.
    assert int(checked.loc["q2", "dense_rank"]) <= 20 and checked.loc["q2", "verdict"] in ("at risk", "traceable")
    assert "traceable" in result.output
    first = (tmp_path / "checked.csv").read_text()
    assert any((tmp_path / "index").iterdir())  # the index was cached
    again = run(*args)  # loads the cached index instead of rebuilding it
    assert again.exit_code == 0 and (tmp_path / "checked.csv").read_text() == first


def test_unknown_source_fails_closed(tmp_path):
    write_table(pd.DataFrame({"post_id": ["p1"], "text": ["hello there"]}), tmp_path / "forum.csv")
    write_table(pd.DataFrame({"quote_id": ["q1"], "source_post_id": ["nope"], "text": ["hello"]}),
                tmp_path / "quotes.csv")
    result = run("disguise", "check", tmp_path / "quotes.csv", "--corpus", tmp_path / "forum.csv",
                 "--output", tmp_path / "out.csv")
    assert result.exit_code == 1 and "nope" in result.stderr and not (tmp_path / "out.csv").exists()
