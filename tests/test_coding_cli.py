"""The coding workflow through the CLI: sheets out, decisions in, progress, agreement."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.coding.store import CodingStore


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "coding.sqlite"
    with CodingStore(path) as opened:
        opened.add_excerpts([{"unit_id": f"u{i}", "post_id": f"p{i}", "forum": "Robin", "text": f"post {i}",
                              "start": 0, "end": 6} for i in range(6)])
        opened.add_suggestions([{"unit_id": f"u{i}", "code_id": "SE-C1", "score": 0.8, "evidence": []}
                                for i in range(6)], codebook_version="v1")
    return path


def fill(sheet, decisions):
    frame = pd.read_csv(sheet, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame["decision"] = [decisions.get(u, "") for u in frame["unit_id"]]
    frame.to_csv(sheet, index=False)


def test_sheets_round_trip_progress_and_agreement(store, tmp_path):
    alice, bob = tmp_path / "alice.csv", tmp_path / "bob.csv"
    assert run("code", "export-sheet", store, "--coder", "alice", "--output", alice).exit_code == 0
    assert run("code", "export-sheet", store, "--coder", "bob", "--output", bob).exit_code == 0
    fill(alice, {"u0": "accept", "u1": "accept", "u2": "reject", "u3": "reject", "u4": "accept", "u5": "reject"})
    fill(bob, {"u0": "accept", "u1": "reject", "u2": "reject", "u3": "reject", "u4": "accept", "u5": "reject"})
    result = run("code", "import-sheet", store, alice, "--coder", "alice")
    assert result.exit_code == 0 and "recorded 6 decisions by alice" in result.output
    assert run("code", "import-sheet", store, bob, "--coder", "bob").exit_code == 0
    result = run("code", "progress", store)
    assert result.exit_code == 0 and "6 of 6 units have decisions" in result.output and "alice" in result.output
    from_store = run("agreement", store, "--coders", "alice,bob")
    assert from_store.exit_code == 0, from_store.output
    # 5 of 6 units agree; kappa = (5/6 - 1/2) / (1 - 1/2) = 0.667 (alice 3 yes, bob 2 yes: pe = .5*.33+.5*.67)
    assert "SE-C1" in from_store.output and "83.3%" in from_store.output
    assert "u1" in from_store.output  # the disagreement is listed
    assert "Rule suggestions vs alice" in from_store.output
    from_sheets = run("agreement", alice, bob, "--coders", "alice,bob")
    assert from_sheets.exit_code == 0
    assert from_sheets.output.split("\n")[:6] == from_store.output.split("\n")[:6]


def test_bad_sheet_is_refused_whole(store, tmp_path):
    sheet = tmp_path / "alice.csv"
    run("code", "export-sheet", store, "--coder", "alice", "--output", sheet)
    fill(sheet, {"u0": "accept", "u1": "maybe"})
    result = run("code", "import-sheet", store, sheet, "--coder", "alice")
    assert result.exit_code == 1 and "row 3, column 'decision'" in result.stderr and "maybe" not in result.stderr
    assert "0 of 6 units have decisions" in run("code", "progress", store).output


def test_export_sheet_names_the_codes_from_the_chosen_codebook(store, tmp_path):
    from postkit.coding.codebook import default_codebook_path

    sheet = tmp_path / "alice.csv"
    assert run("code", "export-sheet", store, "--coder", "alice", "--output", sheet).exit_code == 0
    frame = pd.read_csv(sheet, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert set(frame["code_name"]) == {"Active, well-organised forum"} and all(frame["definition"])
    book = tmp_path / "book.yaml"
    book.write_text(default_codebook_path().read_text(encoding="utf-8").replace(
        'name: "Active, well-organised forum"', 'name: "A busy, tidy forum"'), encoding="utf-8")
    result = run("code", "export-sheet", store, "--coder", "alice", "--output", sheet, "--codebook", book)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(sheet, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert set(frame["code_name"]) == {"A busy, tidy forum"}
    fill(sheet, {"u0": "accept"})
    assert "recorded 1 decisions" in run("code", "import-sheet", store, sheet, "--coder", "alice").output
    missing = run("code", "export-sheet", store, "--coder", "alice", "--output", sheet,
                  "--codebook", tmp_path / "nope.yaml")
    assert missing.exit_code == 1 and "codebook not found" in missing.stderr


def test_agreement_needs_a_sheet_per_coder(tmp_path, store):
    sheet = tmp_path / "a.csv"
    run("code", "export-sheet", store, "--coder", "alice", "--output", sheet)
    result = run("agreement", sheet, "--coders", "alice,bob")
    assert result.exit_code == 1 and "1 sheets but 2 coder names" in result.stderr


def test_codebook_check_and_show(tmp_path):
    result = run("codebook", "check")
    assert result.exit_code == 0 and result.output.startswith("OK: ") and "4 areas" in result.output
    shown = run("codebook", "show", "--format", "markdown")
    assert shown.exit_code == 0 and "SE-C1" in shown.output
    broken = tmp_path / "book.yaml"
    broken.write_text("version: '1'\nname: x\nareas:\n  - id: a\n    name: A\n    definition: d\n"
                      "    configurations: []\n")
    result = run("codebook", "check", "--codebook", broken)
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {broken}")


def test_load_tagged_posts_and_sentences(tmp_path):
    from postkit.io import write_table

    posts = pd.DataFrame([
        {"post_id": "p1", "forum": "Robin", "text": "I feel less alone. Thanks all.",
         "suggestions": [{"code_id": "UA-C1", "area": "understanding_acceptance", "polarity": "positive",
                          "score": 0.7, "evidence": [{"start": 7, "end": 17, "text": "less alone"}]}],
         "codebook_version": "v1"},
        {"post_id": "p2", "forum": "Jay", "text": "Just venting.", "suggestions": [], "codebook_version": "v1"},
    ])
    tagged = tmp_path / "tagged.csv"  # CSV: suggestions travel as JSON text
    write_table(posts, tagged)
    store = tmp_path / "study"
    store.mkdir()
    result = run("code", "load", tagged, "--store", store)
    assert result.exit_code == 0, result.output + result.stderr
    assert "2 new units (2 read), 1 suggestions added" in result.output
    with CodingStore(store) as opened:
        excerpts = opened.excerpts().set_index("unit_id")
        assert excerpts.loc["p1", "end"] == len("I feel less alone. Thanks all.")
        assert opened.codings().empty  # suggestions are not codings
    sentences = posts.head(1).assign(unit_id=["p1#s0"], unit_start=[0], unit_end=[18],
                                     unit_text=["I feel less alone."])
    tagged_sentences = tmp_path / "tagged_sentences.parquet"
    write_table(sentences, tagged_sentences)
    assert run("code", "load", tagged_sentences, "--store", store).exit_code == 0
    with CodingStore(store) as opened:
        unit = opened.excerpts().set_index("unit_id").loc["p1#s0"]
        assert (unit["start"], unit["end"]) == (0, 18)


def test_export_qdc_and_qdpx(store, tmp_path):
    import zipfile

    sheet = tmp_path / "alice.csv"
    run("code", "export-sheet", store, "--coder", "alice", "--output", sheet)
    fill(sheet, {"u0": "accept", "u1": "reject"})
    assert run("code", "import-sheet", store, sheet, "--coder", "alice").exit_code == 0
    result = run("export", "qdc", "--output", tmp_path / "codebook.qdc")
    assert result.exit_code == 0 and "codes in 4 areas" in result.output
    result = run("export", "qdpx", store, "--output", tmp_path / "study.qdpx")
    assert result.exit_code == 0 and "1 codings by 1 coder(s)" in result.output, result.output + result.stderr
    names = zipfile.ZipFile(tmp_path / "study.qdpx").namelist()
    assert names[0] == "project.qde" and all(n.startswith("sources/") for n in names[1:])


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_tag_then_load_into_the_store(tmp_path, suffix):
    from postkit.io import write_table

    posts = pd.DataFrame({"post_id": ["p1", "p2"], "forum": ["Robin", "Jay"],
                          "text": ["Thank you for the tips, I tried the breathing and it really helped.",
                                   "Reading this I realised I'm not the only one who feels like this."]})
    source = tmp_path / "posts.csv"
    write_table(posts, source)
    tagged = tmp_path / f"tagged{suffix}"
    result = run("tag", source, "--output", tagged)
    assert result.exit_code == 0 and "Tagged 2 posts" in result.output, result.output + result.stderr
    result = run("code", "load", tagged, "--store", tmp_path / "coding.sqlite")
    assert result.exit_code == 0, result.output + result.stderr
    with CodingStore(tmp_path / "coding.sqlite") as opened:
        suggestions = opened.suggestions()
        assert set(suggestions["unit_id"]) == {"p1", "p2"}
        assert opened.codings().empty


def test_tag_ranker_option(tmp_path):
    from postkit.io import write_table

    source = tmp_path / "posts.csv"
    write_table(pd.DataFrame({"post_id": ["p1"], "text": ["Nobody replied to my post and I feel ignored."]}), source)
    result = run("tag", source, "--output", tmp_path / "cues.csv", "--ranker", "none")
    assert result.exit_code == 0 and "no area ranker" in result.output, result.output + result.stderr
    cues = pd.read_csv(tmp_path / "cues.csv", keep_default_na=False)
    assert cues["ranker_version"].tolist() == [""] and cues["suggested_polarity"].tolist() == ["negative"]
    result = run("tag", source, "--output", tmp_path / "out.csv", "--ranker", tmp_path / "absent.json")
    assert result.exit_code != 0 and "absent.json" in result.output + result.stderr
    assert not (tmp_path / "out.csv").exists()


def test_tag_stage_ranker_setting(tmp_path):
    from postkit.io import write_table

    write_table(pd.DataFrame({"post_id": ["p1"], "forum": ["Jay"], "text": ["Writing it down helped me a lot."]}),
                tmp_path / "posts.csv")
    study = tmp_path / "study.toml"
    study.write_text('[study]\nname = "t"\noutput = "run"\nformat = "csv"\n[inputs]\nposts = "posts.csv"\n'
                     '[pipeline]\nstages = ["tag"]\n[tag]\nranker = "none"\nstore = false\n')
    result = run("run", study)
    assert result.exit_code == 0, result.output + result.stderr
    assert pd.read_csv(tmp_path / "run" / "tag" / "posts.csv", keep_default_na=False)["ranker_version"].tolist() == [""]


def test_code_verify_reports_ok_then_the_edited_row(store):
    import re
    import sqlite3

    with CodingStore(store) as opened:
        opened.decide("u0", "SE-C1", "alice", "accept")
        opened.decide("u1", "SE-C1", "alice", "reject", memo="private memo")
        opened.add_review("quote", "q1", "alice", "approve")
    progress = run("code", "progress", store)
    head = re.search(r"Chain head: ([0-9a-f]{64}) \(seq 3;", progress.output).group(1)
    ok = run("code", "verify", store, "--expect-head", head)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith(f"OK: {store} is intact: 2 decisions and 1 reviews in one hash chain")
    assert f"Head: {head} (seq 3)" in ok.output
    wrong = run("code", "verify", store, "--expect-head", "0" * 64)
    assert wrong.exit_code == 1 and f"head {head} is not the expected {'0' * 64}" in wrong.output
    conn = sqlite3.connect(store)
    conn.execute("DROP TRIGGER decisions_no_update")
    conn.execute("UPDATE decisions SET action = 'accept' WHERE id = 2")
    conn.commit()
    conn.close()
    bad = run("code", "verify", store)
    assert bad.exit_code == 1
    assert bad.output.startswith(f"FAILED: {store}: decisions row id 2 (seq 2): edited")
    assert "also: trigger decisions_no_update was dropped" in bad.output
    assert "private memo" not in bad.output and "alice" not in bad.output  # no raw values echoed


def test_code_verify_missing_store_and_readers_during_a_run(store, tmp_path):
    from postkit.locks import EXCLUSIVE, PathLock

    missing = run("code", "verify", tmp_path / "none.sqlite")
    assert missing.exit_code == 1 and "the coding store does not exist" in missing.stderr
    with PathLock(store, mode=EXCLUSIVE, purpose="postkit run"):
        assert run("code", "progress", store).exit_code == 0  # readers take no lock
        assert run("code", "verify", store).exit_code == 0
        sheet = tmp_path / "alice.csv"
        assert run("code", "export-sheet", store, "--coder", "alice", "--output", sheet).exit_code == 0
        fill(sheet, {"u0": "accept"})
        refused = run("code", "import-sheet", store, sheet, "--coder", "alice")
        assert refused.exit_code == 1 and "its file is in use by postkit run" in refused.stderr
    assert run("code", "import-sheet", store, sheet, "--coder", "alice").exit_code == 0
