"""`postkit run STUDY.toml`: stages in order, one manifest, all-or-nothing run folders."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import snapshot
from postkit.audit import verify_audit
from postkit.cli import main
from postkit.hashing import sha256_path
from postkit.io import read_table

STUDY = """\
[study]
name = "unit"
output = "run"
format = "{fmt}"

[inputs]
posts = "posts.csv"
consent = "consent.csv"

[pipeline]
stages = ["consent"]

[consent]
as_of = "2025-01-01T00:00:00Z"
"""


def write_study(corpus, text=None, fmt="parquet"):
    path = corpus["folder"] / "study.toml"
    path.write_text(text if text is not None else STUDY.format(fmt=fmt))
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("fmt, name", [("parquet", "posts.parquet"), ("csv", "posts.csv"), ("hf", "posts")])
def test_run_writes_stage_outputs_and_a_manifest(corpus, tmp_path, fmt, name):
    study = write_study(corpus, fmt=fmt)
    out = tmp_path / "run"
    result = invoke("run", study, "--output", out)
    assert result.exit_code == 0, result.output
    assert "3 kept, 8 excluded" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["posts"]["sha256"] == sha256_path(corpus["posts"])
    assert manifest["inputs"]["consent"]["sha256"] == sha256_path(corpus["consent"])
    assert manifest["config"]["consent"]["as_of"] == "2025-01-01T00:00:00Z"
    assert manifest["versions"]["postkit"]
    [stage] = manifest["stages"]
    assert stage["name"] == "consent" and stage["counts"]["kept"] == 3
    assert stage["counts"]["by_reason"]["CONFLICT"] == 1
    assert stage["output"] == f"consent/{name}" and manifest["output"] == f"consent/{name}"
    assert stage["files"]["posts"]["sha256"] == sha256_path(out / "consent" / name)
    assert read_table(out / "consent" / name)["post_id"].tolist() == ["p01", "p09", "p11"]
    check = verify_audit(out / "consent" / "audit.jsonl", output=out / "consent" / name)
    assert check.ok and check.head == stage["audit_head"]
    # locks live beside what they lock and go with their holder: none in or beside the run folder
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith((".lock-postkit", ".tmp-postkit"))]


def test_output_path_in_study_is_relative_to_the_study_file(corpus, tmp_path, monkeypatch):
    study = write_study(corpus)
    monkeypatch.chdir(tmp_path)
    assert invoke("run", study).exit_code == 0
    assert (corpus["folder"] / "run" / "manifest.json").exists()


def test_rerun_replaces_a_previous_run_but_never_a_foreign_folder(corpus, tmp_path):
    study = write_study(corpus)
    out = tmp_path / "run"
    assert invoke("run", study, "--output", out).exit_code == 0
    assert invoke("run", study, "--output", out).exit_code == 0
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("precious")
    result = invoke("run", study, "--output", foreign)
    assert result.exit_code == 1 and "not a postkit run folder" in result.stderr
    assert (foreign / "thesis.docx").read_text() == "precious"


def test_failed_run_leaves_nothing_and_keeps_the_previous_run(corpus, tmp_path):
    study = write_study(corpus)
    out = tmp_path / "run"
    assert invoke("run", study, "--output", out).exit_code == 0
    previous = snapshot(out)
    corpus["consent"].write_text(corpus["consent"].read_text() + "u_z,maybe,2021-01-01,,,,\n")
    result = invoke("run", study, "--output", out)
    assert result.exit_code == 1 and "unknown status" in result.stderr
    assert snapshot(out) == previous
    assert not [p for p in tmp_path.iterdir() if "tmp-postkit" in p.name]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.replace('stages = ["consent"]', 'stages = ["consnet"]'), "unknown stage 'consnet'"),
        (lambda s: s.replace("[consent]", "[consnet]"), "unknown section [consnet]"),
        (lambda s: s.replace('as_of = "2025-01-01T00:00:00Z"', 'as_of = "soon"'), "[consent] as_of"),
        (lambda s: s.replace('as_of = "2025-01-01T00:00:00Z"', ""), "[consent] needs as_of"),
        (lambda s: s.replace('as_of =', 'asof ='), "unknown option 'asof'"),
        (lambda s: s.replace('posts = "posts.csv"', 'posts = "missing.csv"'), "file not found"),
        (lambda s: s.replace('format = "parquet"', 'format = "xlsx"'), "format 'xlsx'"),
        (lambda s: s.replace("[inputs]", "[inputs"), "not valid TOML"),
    ],
)
def test_study_file_mistakes_are_one_clear_line(corpus, tmp_path, edit, message):
    study = write_study(corpus, edit(STUDY.format(fmt="parquet")))
    result = invoke("run", study, "--output", tmp_path / "run")
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_column_mapping_in_the_study_file(corpus, tmp_path):
    text = corpus["posts"].read_text().replace("post_id,forum,user_id", "id,board,author", 1)
    corpus["posts"].write_text(text)
    study = write_study(corpus, STUDY.format(fmt="csv").replace(
        'consent = "consent.csv"',
        'consent = "consent.csv"\ncolumns = { post_id = "id", forum = "board", user_id = "author" }'))
    result = invoke("run", study, "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    kept = read_table(tmp_path / "run" / "consent" / "posts.csv")
    assert kept.columns.tolist()[:3] == ["post_id", "forum", "user_id"]


def test_run_folder_may_not_hold_the_inputs(corpus):
    study = write_study(corpus)
    result = invoke("run", study, "--output", corpus["folder"])
    assert result.exit_code == 1 and "would contain the input" in result.stderr


def test_demo_study_file_is_valid():
    from pathlib import Path

    from postkit.pipeline import load_study

    study = load_study(Path(__file__).parent.parent / "corpora" / "demo" / "study.toml")
    assert study.stages == ["consent", "deid", "sample", "tag", "disguise"] and study.posts.name == "posts.csv"


DISGUISE_STUDY = STUDY.format(fmt="parquet").replace('stages = ["consent"]', 'stages = ["consent", "disguise"]')


def test_disguise_stage_makes_a_review_folder_and_reruns_keep_human_decisions(corpus, tmp_path):
    from postkit.disguise.study import QuoteStudy

    study = write_study(corpus, DISGUISE_STUDY + "\n[disguise]\nquotes_from_sample = 2\ncandidates = 3\n")
    out = tmp_path / "run"
    result = invoke("run", study, "--output", out)
    assert result.exit_code == 0, result.output + result.stderr
    assert "Paraphrase suggestions: 2 quotes" in result.output
    for name in ("suggestions.jsonl", "quotes.csv", "index.json"):
        assert (out / "disguise" / name).exists()
    assert not (out / "disguise" / "index").exists()  # the forum's index is cached privately, not in the run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"][-1]["counts"]["quotes"] == 2
    # the attacker's corpus is the whole forum (the raw posts), not only the consented ones
    assert manifest["stages"][-1]["corpus"] == str(corpus["posts"])
    with QuoteStudy.open(out) as opened:
        quote = opened.quotes()[0]
        opened.decide(quote["quote_id"], "amy", "reject", quote["text"], note="keep this")
    again = invoke("run", study, "--output", out)
    assert again.exit_code == 1 and "decision(s)" in again.stderr and "new folder" in again.stderr
    with QuoteStudy.open(out) as reopened:  # nothing was lost
        assert reopened.quote(quote["quote_id"])["status"]["note"] == "keep this"


def test_disguise_stage_searches_a_forum_with_its_own_column_names(corpus, tmp_path):
    import pandas as pd

    posts = pd.read_csv(corpus["posts"], dtype=str, keep_default_na=False).rename(columns={"text": "body"})
    posts.to_csv(corpus["posts"], index=False)
    text = DISGUISE_STUDY.replace('consent = "consent.csv"', 'consent = "consent.csv"\ncolumns = { text = "body" }')
    study = write_study(corpus, text + "\n[disguise]\nquotes_from_sample = 1\n")
    result = invoke("run", study, "--output", tmp_path / "run")
    assert result.exit_code == 0, result.output + result.stderr
    assert "Paraphrase suggestions: 1 quote" in result.output


def test_disguise_stage_needs_one_quote_source(corpus, tmp_path):
    study = write_study(corpus, DISGUISE_STUDY + "\n[disguise]\ncandidates = 3\n")
    result = invoke("run", study, "--output", tmp_path / "run")
    assert result.exit_code == 1 and "quotes_from_sample" in result.stderr
    assert not (tmp_path / "run").exists()


def test_run_summary_names_the_final_paths(corpus, tmp_path):
    study = write_study(corpus)
    result = invoke("run", study, "--output", tmp_path / "run")
    assert f"Output:     {tmp_path / 'run' / 'consent' / 'posts.parquet'}" in result.output
    assert f"Audit log:  {tmp_path / 'run' / 'consent' / 'audit.jsonl'}" in result.output
    assert "tmp-postkit" not in result.output


def test_consent_then_deid_share_one_key_and_chain_outputs(corpus, tmp_path):
    text = STUDY.format(fmt="csv").replace('stages = ["consent"]', 'stages = ["consent", "deid"]')
    study = write_study(corpus, text + '\n[deid]\noperator = "tag"\nspans = true\nprocesses = 1\n')
    out = tmp_path / "run"
    result = invoke("run", study, "--output", out)
    assert result.exit_code == 0, result.output + result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["consent", "deid"]
    assert manifest["output"] == "deid/posts.csv"
    deid = manifest["stages"][1]
    assert deid["counts"]["posts"] == 3 and deid["model_sha256"] and deid["rules_sha256"]
    assert set(deid["files"]) == {"posts", "spans"}
    final = read_table(out / "deid" / "posts.csv")
    assert final["post_id"].tolist() == ["p01", "p09", "p11"]
    # The de-identified user ids are the same pseudonyms the consent audit log used.
    audit = [json.loads(line) for line in (out / "consent" / "audit.jsonl").read_text().splitlines()]
    logged = {e["post_id"]: e["user"] for e in audit if e.get("type") == "entry"}
    assert final["user_id"].tolist() == [logged["p01"], logged["p09"], logged["p11"]]
    assert "De-identified 3 posts" in result.output


def test_sample_stage_in_a_study(corpus, tmp_path):
    text = STUDY.format(fmt="csv").replace('stages = ["consent"]', 'stages = ["consent", "sample"]')
    study = write_study(corpus, text + '\n[sample]\nper_forum = 1\nmin_words = 3\nseed = 5\nreport = false\n')
    out = tmp_path / "run"
    result = invoke("run", study, "--output", out)
    assert result.exit_code == 0, result.output + result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    stage = manifest["stages"][-1]
    assert stage["name"] == "sample" and stage["counts"]["posts"] == 3
    assert set(stage["files"]) == {"posts", "manifest"}
    sample = read_table(out / "sample" / "posts.csv")
    # p01 ("Thank you for listening, it helped.") is the only eligible post; one per forum.
    assert sample["post_id"].tolist() == ["p01"] and sample["sample_rank"].tolist() == ["1"]
    sample_manifest = json.loads((out / "sample" / "sample.manifest.json").read_text())
    assert sample_manifest["seed"] == 5
    assert sample_manifest["input"]["path"] == str(out / "consent" / "posts.csv")  # final paths, not temporary
    assert sample_manifest["output"]["path"] == str(out / "sample" / "posts.csv")
    assert "Sample: 1 of 3 posts" in result.output
