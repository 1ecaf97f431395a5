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
    assert "row 10, column 'status': unknown status — use opt_in" in result.stderr
    assert "perhaps" not in result.stderr and "not a date" not in result.stderr  # values are never echoed
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
    assert "row 12, column 'post_id': duplicate post_id (first seen at row 1)" in result.stderr
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


# --------------------------------------------------------------------------- issue 11: consent fails closed


def footer_of(path):
    return json.loads(path.read_text().splitlines()[-1])


def test_look_alike_withdrawals_exclude_and_check_lists_them_by_row(corpus, tmp_path):
    # u_in opted in (row 1); rows 10-12 withdraw under a case variant, a Cyrillic look-alike
    # and with a zero-width space. None of them may leave u_in's posts in the corpus.
    consent = corpus["consent"]
    consent.write_text(consent.read_text() + "U_IN,withdrawn,2023-01-01T00:00:00Z,,,v2,email\n"
                       "u_f\u043erum,withdrawn,2023-01-01T00:00:00Z,,,v2,email\n"
                       "u_\u200bex,opt_out,2020-01-01T00:00:00Z,Robin,,v2,email\n", encoding="utf-8")
    out, audit = tmp_path / "kept.csv", tmp_path / "audit.jsonl"
    result = run(*filter_args(corpus, out, audit))
    assert result.exit_code == 0, result.output
    reasons = {e["post_id"]: e["reason"] for e in audit_entries(audit)}
    assert reasons["p01"] == reasons["p09"] == reasons["p11"] == "AMBIGUOUS_ID"
    assert reasons["p07"] == "EXPIRED"  # u_ex's variant is the same id, its old opt-out changes nothing
    assert read_table(out).empty
    assert "AMBIGUOUS_ID" in result.output and "WITHDRAWN_LATER" in result.output
    check = run("consent", "check", corpus["consent"], "--posts", corpus["posts"])
    assert check.exit_code == 0
    assert "Look-alike user ids" in check.output and "2 groups" in check.output
    assert "row 1  ~  row 10" in check.output and "row 9  ~  row 11" in check.output
    assert "author of post row 1 (2 posts)  ~  record row 10" in check.output
    assert "U_IN" not in check.output and "u_in" not in check.output  # rows, never ids


def test_check_reports_a_ragged_row_with_file_line_and_column(corpus):
    consent = corpus["consent"]
    consent.write_text(consent.read_text() + "bob,u_out,opt_in,2021-01-01T00:00:00Z,,,v1,form\n")
    result = CliRunner().invoke(main, ["consent", "check", str(consent)])
    assert result.exit_code == 1
    assert f"{consent}, row 10: 8 fields on line 11 but the header names 7 columns" in result.stderr
    assert "bob" not in result.stderr


@pytest.mark.parametrize("content, expected", [
    ("user_id,status,recorded_at,status\nu_in,withdrawn,2021-01-01,opt_in\n",
     "column 2 and column 4 of the header are both named 'status'"),
    ("user_id,status,recorded_at\nbob,u_in,opt_in,2021-01-01\n", "row 1: 4 fields on line 2"),
])
def test_ambiguous_consent_files_stop_the_filter_and_write_nothing(corpus, tmp_path, content, expected):
    corpus["consent"].write_text(content)
    out, audit = tmp_path / "kept.csv", tmp_path / "audit.jsonl"
    result = CliRunner().invoke(main, [str(a) for a in filter_args(corpus, out, audit)])
    assert result.exit_code == 1 and expected in result.stderr
    assert not out.exists() and not audit.exists()


def test_duplicate_json_key_in_consent_stops_the_filter(corpus, tmp_path):
    path = corpus["folder"] / "consent.jsonl"
    path.write_text('{"user_id": "u_in", "status": "withdrawn", "recorded_at": "2021-01-01", "status": "opt_in"}\n')
    args = filter_args(corpus, tmp_path / "kept.csv", tmp_path / "audit.jsonl")
    args[args.index(corpus["consent"])] = path
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1 and "line 1: the key 'status' appears twice" in result.stderr


def test_all_as_a_forum_is_an_error_not_a_warning(corpus, tmp_path):
    consent = corpus["consent"]
    consent.write_text(consent.read_text() + "u_in,withdrawn,2023-01-01T00:00:00Z,all,,v2,email\n")
    result = CliRunner().invoke(main, [str(a) for a in filter_args(corpus, tmp_path / "k.csv", tmp_path / "a.jsonl")])
    assert result.exit_code == 1
    assert "row 10, column 'forum': a word for every forum" in result.stderr
    assert not (tmp_path / "k.csv").exists()


def test_later_withdrawal_wins_by_default_and_the_old_rule_is_logged(corpus, tmp_path):
    consent = corpus["consent"]
    consent.write_text(consent.read_text() + "u_in,withdrawn,2025-06-01T00:00:00Z,,,v3,email\n")
    out, audit = tmp_path / "kept.csv", tmp_path / "audit.jsonl"
    assert run(*filter_args(corpus, out, audit)).exit_code == 0
    reasons = {e["post_id"]: e["reason"] for e in audit_entries(audit)}
    assert reasons["p01"] == reasons["p09"] == "WITHDRAWN_LATER"
    header = json.loads(audit.read_text().splitlines()[0])
    assert header["ignore_later_withdrawals"] is False and "later_withdrawals" in header["policy"]
    assert read_table(out)["post_id"].tolist() == ["p11"]
    old_out, old_audit = tmp_path / "old.csv", tmp_path / "old.jsonl"
    assert run(*filter_args(corpus, old_out, old_audit, "--ignore-later-withdrawals")).exit_code == 0
    assert json.loads(old_audit.read_text().splitlines()[0])["ignore_later_withdrawals"] is True
    assert read_table(old_out)["post_id"].tolist() == ["p01", "p09", "p11"]
    assert run("audit", "verify", old_audit, "--output", old_out).exit_code == 0


def test_forums_without_posts_are_logged_and_shown_even_quietly(corpus, tmp_path):
    consent = corpus["consent"]
    consent.write_text(consent.read_text() + "u_wd,opt_out,2021-01-01T00:00:00Z,Rob\u200bin,,v2,email\n"
                       "u_wd,opt_out,2021-01-01T00:00:00Z,Wren,,v2,email\n", encoding="utf-8")
    out, audit = tmp_path / "kept.csv", tmp_path / "audit.jsonl"
    result = run(*filter_args(corpus, out, audit, "-q"))
    assert result.exit_code == 0 and result.stdout == ""
    assert "no post belongs to" in result.stderr and "Rob\\u200bin, Wren" in result.stderr
    assert footer_of(audit)["consent_forums_without_posts"] == ["Rob\\u200bin", "Wren"]


def test_study_file_can_reproduce_an_old_run_and_rejects_a_non_boolean(corpus, tmp_path):
    consent = corpus["consent"]
    consent.write_text(consent.read_text() + "u_in,withdrawn,2025-06-01T00:00:00Z,,,v3,email\n")
    study = corpus["folder"] / "study.toml"
    text = ('[study]\nname = "unit"\noutput = "run"\n\n[inputs]\nposts = "posts.csv"\nconsent = "consent.csv"\n\n'
            '[pipeline]\nstages = ["consent"]\n\n[consent]\nas_of = "2025-01-01T00:00:00Z"\n')
    study.write_text(text)
    assert run("run", study, "--output", tmp_path / "new").exit_code == 0
    assert footer_of(tmp_path / "new" / "consent" / "audit.jsonl")["counts"]["kept"] == 1  # u_in withdrew later
    study.write_text(text + "ignore_later_withdrawals = true\n")
    assert run("run", study, "--output", tmp_path / "old").exit_code == 0
    audit = tmp_path / "old" / "consent" / "audit.jsonl"
    assert json.loads(audit.read_text().splitlines()[0])["ignore_later_withdrawals"] is True
    assert footer_of(audit)["counts"]["kept"] == 3
    study.write_text(text + 'ignore_later_withdrawals = "yes"\n')
    result = CliRunner().invoke(main, ["run", str(study), "--output", str(tmp_path / "bad")])
    assert result.exit_code == 1 and "ignore_later_withdrawals must be true or false" in result.stderr


def test_check_lists_look_alike_forum_names(corpus):
    consent = corpus["consent"]
    consent.write_text(consent.read_text() + "u_wd,opt_out,2021-01-01T00:00:00Z,Rob\u200bin,,v2,email\n",
                       encoding="utf-8")
    result = run("consent", "check", consent)
    assert result.exit_code == 0
    assert "Look-alike forum names (count only for exclusions): Rob\\u200bin, Robin" in result.output


def test_postkit_run_quietly_still_warns_of_forums_without_posts(corpus, tmp_path):
    """A steward running a whole study with -q must still see a misspelt forum in the consent file."""
    consent = corpus["consent"]
    consent.write_text(consent.read_text() + "u_wd,opt_out,2021-01-01T00:00:00Z,Wren,,v2,email\n", encoding="utf-8")
    study = corpus["folder"] / "study.toml"
    study.write_text('[study]\nname = "unit"\noutput = "run"\n\n[inputs]\nposts = "posts.csv"\n'
                     'consent = "consent.csv"\n\n[pipeline]\nstages = ["consent"]\n\n'
                     '[consent]\nas_of = "2025-01-01T00:00:00Z"\n', encoding="utf-8")
    quiet = run("run", study, "-q")
    assert quiet.exit_code == 0 and quiet.stdout == ""
    assert quiet.stderr.count("no post belongs to") == 1 and "Wren" in quiet.stderr
    loud = run("run", study, "--output", tmp_path / "loud")
    assert loud.exit_code == 0
    assert (loud.stdout + loud.stderr).count("no post belongs to") == 1
