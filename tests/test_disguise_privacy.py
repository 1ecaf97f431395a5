"""No forum text in the run folder: what reviewers open holds no words of excluded posts.

A demo-like study (consent → de-identification → sample → tag → disguise) over a small
forum whose excluded posts (authors who did not opt in) use words no consented post
uses. After the run, every file of the run folder is searched for those words —
including inside Parquet tables and SQLite stores — and none may be found. The search
index of the whole forum, which must hold them, lives in the private cache instead.
"""

from __future__ import annotations

import json
import re
import sqlite3
import textwrap

import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.cli import main

KEPT = [  # authors who opted in
    ("k1", "u_a", "Thank you for listening to me last night, it helped more than I can say and I finally slept "
                  "through until morning without waking up worried about work."),
    ("k2", "u_b", "Thank you for the advice about routines, getting up at the same time every day has made the "
                  "mornings feel less heavy and I can face breakfast again."),
    ("k3", "u_c", "Thank you for sharing your story about the waiting list, it made me feel less alone while I "
                  "wait for my first appointment with the counsellor."),
    ("k4", "u_a", "Thank you for the kind replies everyone, I went for a short walk today like someone suggested "
                  "and the fresh air really did help my mood a little."),
    ("k5", "u_d", "Thank you for reminding me that bad days pass, today was hard but I made a cup of tea and sat "
                  "in the garden for a while and it got easier."),
]
EXCLUDED = [  # no record, opted out, withdrawn: none of these may reach the run folder
    ("x1", "u_none", "Thank you for the harpsichord recital tickets, my marmoset Wobblethorpe hid under the "
                     "tarpaulin all evening while the neighbours argued about Tobermory."),
    ("x2", "u_out", "Thank you for asking about Quillfeather, the clarinet audition at Strathpeffer went badly "
                    "and my landlady Mrs Abernathy-Pocklington confiscated the trombone."),
    ("x3", "u_wd", "Thank you for the zeppelin postcards, I pinned them above the aquarium beside the "
                   "xylophone my grandmother Philomena bequeathed me last Michaelmas."),
]
CONSENT = textwrap.dedent("""\
    user_id,status,recorded_at
    u_a,opt_in,2020-01-01T00:00:00Z
    u_b,opt_in,2020-01-01T00:00:00Z
    u_c,opt_in,2020-01-01T00:00:00Z
    u_d,opt_in,2020-01-01T00:00:00Z
    u_out,opt_out,2020-01-01T00:00:00Z
    u_wd,opt_in,2019-01-01T00:00:00Z
    u_wd,withdrawn,2021-01-01T00:00:00Z
    """)
STUDY = textwrap.dedent("""\
    [study]
    name = "privacy"
    output = "run"
    format = "parquet"

    [inputs]
    posts = "posts.csv"
    consent = "consent.csv"

    [pipeline]
    stages = ["consent", "deid", "sample", "tag", "disguise"]

    [consent]
    as_of = "2025-01-01T00:00:00Z"

    [deid]
    spans = true

    [sample]
    per_forum = 10
    phrases = ["thank you for"]
    min_words = 10
    seed = 1

    [tag]
    store = true

    [disguise]
    quotes_from_sample = 4
    candidates = 3
    """)
# The excluded posts' distinctive words (names, places, rare nouns). Everyday words they also
# use ("evening") may turn up legitimately, e.g. as a synonym in a suggested paraphrase.
SECRET = {"harpsichord", "recital", "marmoset", "wobblethorpe", "tarpaulin", "tobermory", "quillfeather",
          "clarinet", "strathpeffer", "landlady", "abernathy", "pocklington", "confiscated", "trombone",
          "zeppelin", "postcards", "aquarium", "xylophone", "philomena", "bequeathed", "michaelmas"}
_WORD = re.compile(r"[a-z]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _readable_text(path) -> str:
    """A file's bytes as text, plus the cells of Parquet tables and SQLite databases (compressed
    or binary, their text would not show in the raw bytes)."""
    raw = path.read_bytes()
    parts = [raw.decode("utf-8", "ignore")]
    if raw.startswith(b"PAR1"):
        parts.append(pd.read_parquet(path).astype(str).to_csv())
    if raw.startswith(b"SQLite format 3"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                parts.extend(str(row) for row in db.execute(f'SELECT * FROM "{table}"'))
    return "\n".join(parts).lower()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("privacy")
    rows = [{"post_id": pid, "forum": "Robin", "user_id": user, "text": text,
             "created_at": "2022-03-01T10:00:00Z"} for pid, user, text in KEPT + EXCLUDED]
    pd.DataFrame(rows).to_csv(folder / "posts.csv", index=False)
    (folder / "consent.csv").write_text(CONSENT)
    (folder / "study.toml").write_text(STUDY)
    result = CliRunner().invoke(main, ["run", str(folder / "study.toml")])
    assert result.exit_code == 0, result.output + result.stderr
    return folder


@pytest.mark.slow
def test_the_run_folder_holds_no_word_of_an_excluded_post(run, private_cache):
    only_excluded = set().union(*(_words(t) for _, _, t in EXCLUDED)) - set().union(*(_words(t) for _, _, t in KEPT))
    assert SECRET <= only_excluded
    secret = SECRET
    files = [p for p in (run / "run").rglob("*") if p.is_file()]
    assert any(p.name == "suggestions.jsonl" for p in files) and any(p.name == "index.json" for p in files)
    leaks = {p.relative_to(run).as_posix(): sorted(w for w in secret if w in _readable_text(p)) for p in files}
    assert {name: found for name, found in leaks.items() if found} == {}
    # The attacker's index does hold them (the test would catch it in the run folder), privately.
    key = json.loads((run / "run" / "disguise" / "index.json").read_text())["key"]
    cached = private_cache / "trace-index" / key
    assert cached.is_dir() and cached.stat().st_mode & 0o777 == 0o700
    vocabulary = "".join(_readable_text(p) for p in cached.rglob("*") if p.is_file())
    assert "harpsichord" in vocabulary and "wobblethorpe" in vocabulary


@pytest.mark.slow
def test_reviewers_open_the_run_from_the_cache_or_a_rebuild(run, tmp_path, monkeypatch):
    from postkit.disguise.study import QuoteStudy

    with QuoteStudy.open(run / "run") as study:  # found in the cache by its key
        assert len(study.quotes()) == 4
    monkeypatch.setenv("POSTKIT_CACHE_DIR", str(tmp_path / "another-machine"))
    told = []
    with QuoteStudy.open(run / "run", notify=told.append) as study:  # rebuilt from the recorded corpus
        assert len(study.quotes()) == 4
    assert len(told) == 1 and "indexing" in told[0] and "posts.csv" in told[0]
    assert not (run / "run" / "disguise" / "index").exists()
