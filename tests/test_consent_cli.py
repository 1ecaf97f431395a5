"""`postkit consent filter` / `audit verify` end to end, through click's CliRunner."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import AS_OF, EXPECTED_REASONS, snapshot
from postkit.cli import main
from postkit.io import read_table


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def filter_args(corpus, out, audit, *extra):
    return ["consent", "filter", corpus["posts"], "--consent", corpus["consent"], "--output", out,
            "--audit", audit, "--as-of", AS_OF, *extra]


def audit_entries(path):
    return [json.loads(line) for line in path.read_text().splitlines() if '"type":"entry"' in line]


@pytest.mark.parametrize("name", ["kept.csv", "kept.jsonl", "kept.parquet", "kept_ds"])
def test_filter_keeps_opted_in_posts_and_logs_every_decision(corpus, tmp_path, name):
    out, audit = tmp_path / "out" / name, tmp_path / "out" / "audit.jsonl"
    before = snapshot(corpus["folder"])
    result = run(*filter_args(corpus, out, audit))
    assert result.exit_code == 0, result.output
    kept = read_table(out)
    assert kept["post_id"].tolist() == ["p01", "p09", "p11"]  # input order
    assert kept.columns.tolist() == ["post_id", "forum", "user_id", "text", "created_at", "likes"]
    assert kept["text"].tolist()[1] == "Second post\nover two lines"
    entries = audit_entries(audit)
    assert {e["post_id"]: e["reason"] for e in entries if e["post_id"]} | {"p08": "INVALID_POST"} == EXPECTED_REASONS
    assert snapshot(corpus["folder"]) == before  # inputs untouched
    # The summary shows totals, every reason and the head hash.
    assert "11 posts -> 3 kept, 8 excluded" in result.output
    for reason in set(EXPECTED_REASONS.values()):
        assert reason in result.output
    assert "Audit head: " in result.output
    verify = run("audit", "verify", audit, "--output", out)
    assert verify.exit_code == 0 and "intact" in verify.output


def test_audit_names_the_deciding_record_and_never_the_user_id(corpus, tmp_path):
    audit = tmp_path / "audit.jsonl"
    assert run(*filter_args(corpus, tmp_path / "kept.csv", audit)).exit_code == 0
    text = audit.read_text()
    for user in ["u_in", "u_out", "u_wd", "u_cf", "u_ex", "u_forum"]:
        assert user not in text
    by_post = {e["post_id"]: e for e in audit_entries(audit)}
    withdrawn = by_post["p03"]
    assert withdrawn["records"] == [{
        "row": 4, "status": "withdrawn", "recorded_at": "2023-05-01T09:00:00Z", "forum": "*",
        "expires_at": None, "notice_version": "v2", "source": "email_reply",
    }]
    assert withdrawn["decision"] == "excluded"
    assert [r["row"] for r in by_post["p05"]["records"]] == [5, 6]
    assert by_post["p01"]["user"] == by_post["p09"]["user"] != by_post["p02"]["user"]
    header = json.loads(text.splitlines()[0])
    assert header["as_of"] == AS_OF and header["inputs"]["posts"]["sha256"]


def test_small_batches_give_the_same_result(corpus, tmp_path):
    outputs = []
    for size in (1, 3, 1000):
        out, audit = tmp_path / f"kept{size}.csv", tmp_path / f"audit{size}.jsonl"
        assert run(*filter_args(corpus, out, audit, "--batch-size", size)).exit_code == 0
        outputs.append((out.read_bytes(), [(e["post_id"], e["reason"], e["user"]) for e in audit_entries(audit)]))
    assert outputs[0] == outputs[1] == outputs[2]


def test_invalid_consent_row_stops_with_one_line_and_writes_nothing(corpus, tmp_path):
    consent = corpus["consent"]
    consent.write_text(consent.read_text() + "u_x,perhaps,2021-01-01,,,,\nu_y,opt_in,not a date,,,,\n")
    out, audit = tmp_path / "out" / "kept.csv", tmp_path / "out" / "audit.jsonl"
    before = snapshot(corpus["folder"])
    result = CliRunner().invoke(main, [str(a) for a in filter_args(corpus, out, audit)])
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: {consent}: 2 problems in consent records")
    assert "row 10, column 'status': unknown status 'perhaps'" in result.stderr
    assert "row 11, column 'recorded_at'" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists() and not audit.exists()
    assert not any((tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else True
    assert snapshot(corpus["folder"]) == before


def test_duplicate_post_ids_stop_the_run_after_streaming_started(corpus, tmp_path):
    posts = corpus["posts"]
    posts.write_text(posts.read_text() + "p01,Robin,u_in,again,2021-03-01T00:00:00Z,0\n")
    out, audit = tmp_path / "kept.parquet", tmp_path / "audit.jsonl"
    result = CliRunner().invoke(main, [str(a) for a in filter_args(corpus, out, audit, "--batch-size", 2)])
    assert result.exit_code == 1
    assert "row 12, column 'post_id': duplicate post_id 'p01' (first seen at row 1)" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "keys"] or not out.exists()
    assert not out.exists() and not audit.exists()
    assert not [p for p in tmp_path.iterdir() if "tmp-postkit" in p.name]


def test_missing_column_error_suggests_mapping_and_mapping_works(corpus, tmp_path):
    frame = pd.read_csv(corpus["posts"], dtype=str, keep_default_na=False).rename(columns={"user_id": "author"})
    frame.to_csv(corpus["posts"], index=False)
    out, audit = tmp_path / "kept.csv", tmp_path / "audit.jsonl"
    result = CliRunner().invoke(main, [str(a) for a in filter_args(corpus, out, audit)])
    assert result.exit_code == 1
    assert "missing column 'user_id'" in result.stderr and "--column user_id=YOUR_COLUMN" in result.stderr
    result = run(*filter_args(corpus, out, audit, "--column", "user_id=author"))
    assert result.exit_code == 0
    assert read_table(out)["post_id"].tolist() == ["p01", "p09", "p11"]


def test_output_over_an_input_is_refused(corpus, tmp_path):
    before = snapshot(corpus["folder"])
    result = CliRunner().invoke(main, [str(a) for a in filter_args(corpus, corpus["posts"], tmp_path / "a.jsonl")])
    assert result.exit_code == 1 and "would overwrite the input" in result.stderr
    assert snapshot(corpus["folder"]) == before


def test_generated_key_is_announced_and_kept_out_of_the_output_folder(corpus, tmp_path, monkeypatch, private_keys):
    monkeypatch.delenv("POSTKIT_PSEUDONYM_KEY")
    out = tmp_path / "out"
    result = run(*filter_args(corpus, out / "kept.csv", out / "audit.jsonl"))
    assert result.exit_code == 0
    keys = list(private_keys.glob("pseudonym-*.key"))
    assert len(keys) == 1 and f"Generated a new pseudonym key: {keys[0]}" in result.stderr
    assert not list(out.glob("*.key"))
    assert keys[0].stat().st_mode & 0o077 == 0  # owner-only
    # Reusing the key gives the same pseudonyms.
    again = tmp_path / "again"
    assert run(*filter_args(corpus, again / "kept.csv", again / "audit.jsonl", "--key-file", keys[0])).exit_code == 0
    users = lambda p: [e["user"] for e in audit_entries(p)]  # noqa: E731
    assert users(out / "audit.jsonl") == users(again / "audit.jsonl")


def test_key_folder_next_to_output_is_refused(corpus, tmp_path, monkeypatch):
    monkeypatch.delenv("POSTKIT_PSEUDONYM_KEY")
    monkeypatch.setenv("POSTKIT_KEY_DIR", str(tmp_path / "out"))
    result = CliRunner().invoke(
        main, [str(a) for a in filter_args(corpus, tmp_path / "out" / "kept.csv", tmp_path / "audit.jsonl")]
    )
    assert result.exit_code == 1 and "next to the output" in result.stderr


def test_bad_key_file_and_short_key(corpus, tmp_path, monkeypatch):
    result = CliRunner().invoke(
        main, [str(a) for a in filter_args(corpus, tmp_path / "k.csv", tmp_path / "a.jsonl", "--key-file", tmp_path / "nope")]
    )
    assert result.exit_code == 1 and "key file not found" in result.stderr
    monkeypatch.setenv("POSTKIT_PSEUDONYM_KEY", "short")
    result = CliRunner().invoke(main, [str(a) for a in filter_args(corpus, tmp_path / "k.csv", tmp_path / "a.jsonl")])
    assert result.exit_code == 1 and "too short" in result.stderr


def test_bad_as_of_is_a_usage_error(corpus, tmp_path):
    result = CliRunner().invoke(main, [str(a) for a in filter_args(corpus, tmp_path / "k.csv", tmp_path / "a.jsonl")]
                                + ["--as-of", "last tuesday"])
    assert result.exit_code == 2 and "ISO 8601" in result.stderr


def test_verify_detects_an_edited_decision(corpus, tmp_path):
    out, audit = tmp_path / "kept.csv", tmp_path / "audit.jsonl"
    assert run(*filter_args(corpus, out, audit)).exit_code == 0
    lines = audit.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"reason":"OPTED_OUT"', '"reason":"OPTED_IN"')
    audit.write_text("".join(lines))
    result = run("audit", "verify", audit)
    assert result.exit_code == 1 and "line 3" in result.output


def test_verify_detects_a_changed_output_and_a_wrong_head(corpus, tmp_path):
    out, audit = tmp_path / "kept.csv", tmp_path / "audit.jsonl"
    result = run(*filter_args(corpus, out, audit))
    head = result.output.split("Audit head: ")[1].split()[0]
    assert run("audit", "verify", audit, "--expect-head", head).exit_code == 0
    assert run("audit", "verify", audit, "--expect-head", "0" * 64).exit_code == 1
    out.write_text(out.read_text() + "p99,Robin,u_x,smuggled in,2021-01-01T00:00:00Z,0\n")
    result = run("audit", "verify", audit, "--output", out)
    assert result.exit_code == 1 and "output" in result.output


def test_every_command_has_help_and_version():
    assert run("--version").output.startswith("postkit, version ")

    def walk(command, path):
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, path + [name])

    for path in walk(main, []):
        result = run(*path, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output, path


def test_consent_check(corpus):
    result = run("consent", "check", corpus["consent"])
    assert result.exit_code == 0 and "9 valid records for 7 users" in result.output


def test_convert_between_formats(corpus, tmp_path):
    target = tmp_path / "posts.parquet"
    result = run("convert", corpus["posts"], target)
    assert result.exit_code == 0 and "11 rows" in result.output
    assert read_table(target)["post_id"].tolist()[:2] == ["p01", "p02"]


def test_audit_show_explains_decisions(corpus, tmp_path):
    out, audit = tmp_path / "kept.csv", tmp_path / "audit.jsonl"
    assert run(*filter_args(corpus, out, audit)).exit_code == 0
    result = run("audit", "show", audit, "--post", "p03", "--post", "nope", "--reason", "conflict")
    assert result.exit_code == 0
    assert "consent judged as of 2025-01-01T00:00:00Z" in result.output
    assert "p03  Magpie  user_" in result.output
    assert "excluded WITHDRAWN  [row 4: withdrawn recorded 2023-05-01T09:00:00Z" in result.output
    assert "p05  Jay" in result.output and "row 5: opt_in" in result.output and "row 6: opt_out" in result.output
    assert "not in this log: nope" in result.output
    audit.write_text(audit.read_text().replace('"reason":"WITHDRAWN"', '"reason":"OPTED_IN"'))
    result = run("audit", "show", audit)
    assert result.exit_code == 1 and "FAILED" in result.output


def test_reason_codes_listed_in_cli_match_the_policy():
    from postkit.cli import REASON_CODES
    from postkit.consent import Reason

    assert REASON_CODES == [r.value for r in Reason]


def test_consent_file_missing_column_names_the_consent_mapping_option(corpus, tmp_path):
    corpus["consent"].write_text(corpus["consent"].read_text().replace("recorded_at", "when", 1))
    result = CliRunner().invoke(main, [str(a) for a in filter_args(corpus, tmp_path / "k.csv", tmp_path / "a.jsonl")])
    assert result.exit_code == 1
    assert "missing column 'recorded_at'" in result.stderr
    assert "--consent-column recorded_at=YOUR_COLUMN" in result.stderr
    result = run(*filter_args(corpus, tmp_path / "k.csv", tmp_path / "a.jsonl", "--consent-column", "recorded_at=when"))
    assert result.exit_code == 0


def test_os_errors_are_one_line_not_a_traceback(corpus, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder is expected")
    out = blocker / "k.csv"
    result = CliRunner().invoke(main, [str(a) for a in filter_args(corpus, out, tmp_path / "a.jsonl")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot read or write") and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "a.jsonl").exists()
