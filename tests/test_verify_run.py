"""`postkit verify RUN_DIR`: a reviewer rechecks a run folder against its manifest and audit log."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.errors import PostkitError
from postkit.verify_run import verify_run

STUDY = """\
[study]
name = "unit"
output = "run"

[inputs]
posts = "posts.csv"
consent = "consent.csv"

[pipeline]
stages = ["consent", "sample", "tag"]

[consent]
as_of = "2025-01-01T00:00:00Z"

[sample]
per_forum = 2
min_words = 1
seed = 1
phrases = ["a"]

[tag]
store = true
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def run_dir(corpus, tmp_path):
    study = corpus["folder"] / "study.toml"
    study.write_text(STUDY)
    out = tmp_path / "run"
    result = invoke("run", study, "--output", out)
    assert result.exit_code == 0, result.output
    return out


def test_an_untouched_run_verifies(run_dir, corpus):
    result = invoke("verify", run_dir, "--inputs", corpus["folder"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK:")
    check = verify_run(run_dir, inputs_dir=corpus["folder"])
    statuses = {c.what: c.status for c in check.checks}
    assert statuses["input posts"] == "ok" and statuses["input consent"] == "ok"
    assert statuses["audit chain"] == "ok" and statuses["audit signature"] == "ok"


def test_a_changed_output_is_named(run_dir):
    posts = run_dir / "consent" / "posts.parquet"
    posts.write_bytes(posts.read_bytes() + b"\0")
    result = invoke("verify", run_dir)
    assert result.exit_code == 1
    assert "consent/posts.parquet: changed" in result.output


def test_a_changed_input_is_named(run_dir, corpus):
    corpus["posts"].write_text(corpus["posts"].read_text() + "p99,u9,Robin,2024-01-01T00:00:00Z,added\n")
    result = invoke("verify", run_dir, "--inputs", corpus["folder"])
    assert result.exit_code == 1
    assert "input posts" in result.output and "changed" in result.output


def test_an_edited_audit_log_fails_with_its_line(run_dir):
    log = run_dir / "consent" / "audit.jsonl"
    lines = log.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["decision"] = "kept" if entry.get("decision") != "kept" else "excluded"
    lines[1] = json.dumps(entry)
    log.write_text("\n".join(lines) + "\n")
    check = verify_run(run_dir)
    assert not check.ok
    [problem] = [c for c in check.problems if c.what == "audit chain"]
    assert "line 2" in problem.detail
    assert any(c.path == "consent/audit.jsonl" and c.status == "changed" for c in check.problems)


def test_missing_and_added_files(run_dir):
    (run_dir / "sample" / "posts.parquet").unlink()
    (run_dir / "notes.txt").write_text("reviewer's notes")
    check = verify_run(run_dir)
    assert [c.path for c in check.problems] == ["sample/posts.parquet"]
    assert any(c.path == "notes.txt" and c.status == "added" for c in check.checks)


def test_coding_decisions_are_reported_not_failed(run_dir):
    import sqlite3

    store = run_dir / "tag" / "coding.sqlite"
    db = sqlite3.connect(store)
    with db:
        db.execute("CREATE TABLE reviewer_scratch (x)")
    db.close()
    check = verify_run(run_dir)
    assert check.ok
    assert any(c.path == "tag/coding.sqlite" and c.status == "updated after the run" for c in check.checks)


def test_inputs_a_reviewer_does_not_have_are_not_checked_unless_required(run_dir, corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recorded input paths do not resolve from here
    for path in (corpus["posts"], corpus["consent"]):
        path.rename(path.with_suffix(".moved"))
    assert verify_run(run_dir).ok
    assert not verify_run(run_dir, require_inputs=True).ok


def test_not_a_run_folder_is_one_clear_line(tmp_path):
    with pytest.raises(PostkitError, match="no manifest.json"):
        verify_run(tmp_path)
    result = invoke("verify", tmp_path / "nowhere")
    assert result.exit_code != 0 and "run folder not found" in result.output


def test_json_output(run_dir):
    result = invoke("verify", run_dir, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True and data["checks"]


def test_python_dash_m_postkit_runs_the_cli():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "postkit", "verify", "--help"], capture_output=True, text=True,
                          cwd=root, timeout=60)
    assert done.returncode == 0 and "Usage: postkit verify" in done.stdout
