"""The consent policy: which posts are kept, and the reason given for every decision."""

from __future__ import annotations

import pandas as pd
import pytest

from postkit.consent import Reason, filter_posts, look_alike_id_groups, parse_consent_records
from postkit.errors import PostkitError
from postkit.timestamps import parse_timestamp

AS_OF = "2025-01-01T00:00:00Z"


def posts(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        [{"post_id": p, "forum": f, "user_id": u, "text": f"text of {p}", "created_at": "2020-01-01T00:00:00Z"}
         for p, f, u in rows]
    )


def consent(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def rec(user: str, status: str, at: str, forum: str = "", **extra: str) -> dict:
    return {"user_id": user, "status": status, "recorded_at": at, "forum": forum, **extra}


def reasons(post_rows, consent_rows, as_of: str = AS_OF) -> dict:
    result = filter_posts(posts(*post_rows), consent(*consent_rows), as_of)
    return dict(zip(result.decisions["post_id"], result.decisions["reason"]))


def test_opted_in_user_is_kept_with_all_columns_and_order():
    frame = posts(("p2", "Robin", "u1"), ("p1", "Robin", "u2"), ("p3", "Magpie", "u1"))
    frame["extra"] = ["a", "b", "c"]
    result = filter_posts(frame, consent(rec("u1", "opt_in", "2021-01-01T00:00:00Z")), AS_OF)
    assert result.kept["post_id"].tolist() == ["p2", "p3"]
    assert result.kept.columns.tolist() == frame.columns.tolist()
    assert result.kept["extra"].tolist() == ["a", "c"]
    assert result.decisions["reason"].tolist() == ["OPTED_IN", "NO_RECORD", "OPTED_IN"]


def test_no_record_excludes():
    assert reasons([("p1", "Robin", "u9")], [rec("u1", "opt_in", "2021-01-01")]) == {"p1": "NO_RECORD"}


def test_opt_out_excludes():
    assert reasons([("p1", "Robin", "u1")], [rec("u1", "opt_out", "2021-01-01")]) == {"p1": "OPTED_OUT"}


def test_withdrawal_excludes_past_posts_too():
    rows = [rec("u1", "opt_in", "2019-01-01"), rec("u1", "withdrawn", "2023-06-01")]
    # The post predates the withdrawal; it is still excluded.
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "WITHDRAWN"}


def test_latest_record_wins_whatever_the_file_order():
    rows = [rec("u1", "opt_in", "2024-01-01"), rec("u1", "opt_out", "2020-01-01")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "OPTED_IN"}
    rows = [rec("u1", "withdrawn", "2022-01-01"), rec("u1", "opt_in", "2023-01-01")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "OPTED_IN"}  # re-consent after withdrawal


def test_conflict_at_same_latest_timestamp():
    rows = [rec("u1", "opt_in", "2022-01-01T10:00:00Z"), rec("u1", "opt_out", "2022-01-01T10:00:00Z")]
    result = filter_posts(posts(("p1", "Robin", "u1")), consent(*rows), AS_OF)
    assert result.decisions["reason"].tolist() == ["CONFLICT"]
    assert [r["row"] for r in result.decisions["records"][0]] == [1, 2]


def test_same_instant_written_with_different_offsets_is_a_conflict():
    rows = [rec("u1", "opt_in", "2022-06-01T11:00:00+01:00"), rec("u1", "opt_out", "2022-06-01T10:00:00Z")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "CONFLICT"}


def test_agreeing_duplicates_are_not_a_conflict():
    rows = [rec("u1", "opt_in", "2022-01-01"), rec("u1", "Opt-In", "2022-01-01")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "OPTED_IN"}


def test_not_yet_when_only_future_records():
    rows = [rec("u1", "opt_in", "2025-03-01")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "NOT_YET"}


def test_future_record_is_ignored_when_an_earlier_one_applies():
    rows = [rec("u1", "opt_out", "2021-01-01"), rec("u1", "opt_in", "2025-03-01")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "OPTED_OUT"}


def test_record_exactly_at_as_of_counts():
    assert reasons([("p1", "Robin", "u1")], [rec("u1", "opt_in", AS_OF)]) == {"p1": "OPTED_IN"}


def test_expired_opt_in():
    rows = [rec("u1", "opt_in", "2021-01-01", expires_at="2024-12-31T23:59:59Z")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "EXPIRED"}
    rows = [rec("u1", "opt_in", "2021-01-01", expires_at="2026-01-01")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "OPTED_IN"}


def test_expiry_on_opt_out_never_turns_into_consent():
    rows = [rec("u1", "opt_in", "2020-01-01"), rec("u1", "opt_out", "2021-01-01", expires_at="2022-01-01")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "OPTED_OUT"}


@pytest.mark.parametrize("missing", ["post_id", "user_id", "forum"])
@pytest.mark.parametrize("blank", ["", "   ", None])
def test_invalid_post(missing, blank):
    row = {"post_id": "p1", "forum": "Robin", "user_id": "u1"}
    row[missing] = blank
    result = filter_posts(pd.DataFrame([row]), consent(rec("u1", "opt_in", "2021-01-01")), AS_OF)
    assert result.decisions["reason"].tolist() == ["INVALID_POST"]
    assert len(result.kept) == 0


def test_forum_specific_records():
    rows = [
        rec("u1", "opt_in", "2021-01-01", forum="Robin"),
        rec("u1", "opt_out", "2021-01-01", forum="Magpie"),
    ]
    got = reasons([("p1", "Robin", "u1"), ("p2", "Magpie", "u1"), ("p3", "Jay", "u1")], rows)
    assert got == {"p1": "OPTED_IN", "p2": "OPTED_OUT", "p3": "NO_RECORD"}


def test_star_and_empty_forum_cover_every_forum_and_latest_wins_across_scopes():
    rows = [
        rec("u1", "opt_in", "2021-01-01", forum="*"),
        rec("u1", "opt_out", "2022-01-01", forum="Magpie"),
        rec("u2", "opt_out", "2021-01-01", forum=""),
        rec("u2", "opt_in", "2022-01-01", forum="Robin"),
    ]
    got = reasons(
        [("p1", "Robin", "u1"), ("p2", "Magpie", "u1"), ("p3", "Robin", "u2"), ("p4", "Jay", "u2")], rows
    )
    assert got == {"p1": "OPTED_IN", "p2": "OPTED_OUT", "p3": "OPTED_IN", "p4": "OPTED_OUT"}


def test_forum_names_match_case_insensitively_so_an_opt_out_is_never_missed():
    rows = [rec("u1", "opt_in", "2021-01-01"), rec("u1", "opt_out", "2022-01-01", forum=" robin ")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "OPTED_OUT"}


def test_user_ids_are_trimmed_and_a_case_only_match_never_keeps_a_post():
    rows = [rec(" u1 ", "opt_in", "2021-01-01"), rec("U2", "opt_in", "2021-01-01")]
    got = reasons([("p1", "Robin", "u1 "), ("p2", "Robin", "u2"), ("p3", "Robin", "u3")], rows)
    assert got == {"p1": "OPTED_IN", "p2": "AMBIGUOUS_ID", "p3": "NO_RECORD"}


def test_offsets_compare_as_instants_and_naive_means_utc():
    # 10:30+02:00 is 08:30Z, earlier than the naive (UTC) 09:00 opt-out.
    rows = [rec("u1", "opt_in", "2022-01-01T10:30:00+02:00"), rec("u1", "opt_out", "2022-01-01T09:00:00")]
    assert reasons([("p1", "Robin", "u1")], rows) == {"p1": "OPTED_OUT"}


@pytest.mark.parametrize("spelling", ["opt_in", "OPT_IN", "Opt-In", " opt-in "])
def test_status_spellings(spelling):
    assert reasons([("p1", "Robin", "u1")], [rec("u1", spelling, "2021-01-01")]) == {"p1": "OPTED_IN"}


def test_numeric_ids_match_their_text_form():
    frame = pd.DataFrame([{"post_id": 1, "forum": "Robin", "user_id": 42}])
    result = filter_posts(frame, consent(rec("42", "opt_in", "2021-01-01")), AS_OF)
    assert result.decisions["reason"].tolist() == ["OPTED_IN"]


def test_pseudonymised_decisions_never_show_the_user_id():
    result = filter_posts(
        posts(("p1", "Robin", "alice")), consent(rec("alice", "opt_in", "2021-01-01")), AS_OF,
        pseudonymize=lambda u: "user_x",
    )
    assert result.decisions["user"].tolist() == ["user_x"]


def test_duplicate_post_ids_stop_the_run():
    with pytest.raises(PostkitError, match=r"row 3.*duplicate post_id \(first seen at row 1\)"):
        filter_posts(posts(("p1", "Robin", "u1"), ("p2", "Robin", "u1"), ("p1", "Jay", "u1")),
                     consent(rec("u1", "opt_in", "2021-01-01")), AS_OF)


@pytest.mark.parametrize(
    "bad, expected",
    [
        ({"status": "maybe"}, r"row 2, column 'status': unknown status — use opt_in"),
        ({"status": ""}, r"row 2, column 'status': empty status"),
        ({"user_id": "  "}, r"row 2, column 'user_id': missing user id"),
        ({"recorded_at": "yesterday"}, r"row 2, column 'recorded_at': not an ISO 8601 timestamp"),
        ({"recorded_at": ""}, r"row 2, column 'recorded_at': empty timestamp"),
        ({"expires_at": "soon"}, r"row 2, column 'expires_at'"),
        ({"expires_at": "2020-01-01"}, r"row 2, column 'expires_at': expires before it was recorded"),
    ],
)
def test_invalid_consent_rows_fail_closed(bad, expected):
    rows = [rec("u1", "opt_in", "2021-01-01"), {**rec("u2", "opt_in", "2021-01-01"), **bad}]
    with pytest.raises(PostkitError, match=expected) as info:
        parse_consent_records(consent(*rows), "consent.csv")
    assert info.value.path == "consent.csv"


def test_every_invalid_consent_row_is_listed():
    rows = [rec("u1", "nope", "2021-01-01"), rec("u2", "opt_in", "bad"), rec("u3", "opt_in", "2021-01-01")]
    with pytest.raises(PostkitError) as info:
        parse_consent_records(consent(*rows), "consent.csv")
    assert [d.split(",")[0] for d in info.value.details] == ["row 1", "row 2"]
    assert "2 problems" in str(info.value)


def test_missing_consent_column_is_named():
    with pytest.raises(PostkitError, match=r"missing column 'recorded_at'.*--column recorded_at="):
        parse_consent_records(pd.DataFrame([{"user_id": "u1", "status": "opt_in"}]), "consent.csv")


def test_every_reason_code_is_reachable():
    rows = [
        rec("in", "opt_in", "2021-01-01"),
        rec("out", "opt_out", "2021-01-01"),
        rec("wd", "withdrawn", "2021-01-01"),
        rec("cf", "opt_in", "2021-01-01"), rec("cf", "opt_out", "2021-01-01"),
        rec("ny", "opt_in", "2026-01-01"),
        rec("ex", "opt_in", "2021-01-01", expires_at="2022-01-01"),
        rec("wl", "opt_in", "2021-01-01"), rec("wl", "withdrawn", "2025-02-01"),
        rec("AMB", "opt_in", "2021-01-01"),
    ]
    post_rows = [(f"p{u}", "Robin", u) for u in ["in", "none", "out", "wd", "cf", "ny", "ex", "wl", "amb"]]
    post_rows.append(("pbad", "", "in"))
    got = set(reasons(post_rows, rows).values())
    assert got == {r.value for r in Reason}


def test_typed_timestamps_from_parquet_and_null_ones():
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "status": ["opt_in", "opt_in"],
                          "recorded_at": pd.to_datetime(["2021-01-01T00:00:00Z", None], utc=True)})
    with pytest.raises(PostkitError, match=r"row 2, column 'recorded_at': empty timestamp"):
        parse_consent_records(frame, "consent.parquet")
    records = parse_consent_records(frame.head(1), "consent.parquet")
    assert records[0].recorded_at.isoformat() == "2021-01-01T00:00:00+00:00"


# --------------------------------------------------------------------------- issue 11: fail-closed identity

OPT_IN_2020 = "2020-01-01T00:00:00Z"
WITHDRAWN_2023 = "2023-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "author, withdrawal_id, reason",
    [
        ("alice", "ALICE", "AMBIGUOUS_ID"),  # case only: maybe another person, never a reason to keep
        ("alice", "ali\u200bce", "WITHDRAWN"),  # zero-width space: the same id once normalised
        ("alice", "\ufeffalice", "WITHDRAWN"),  # leading BOM (a spreadsheet export)
        ("alice", "\u0430lice", "AMBIGUOUS_ID"),  # Cyrillic а: a TR39 confusable
        ("jos\u00e9", "jose\u0301", "WITHDRAWN"),  # NFD withdrawal against an NFC author
        ("bob", "b\u00adob", "WITHDRAWN"),  # soft hyphen
        ("bob", "\u200ebob\u200f", "WITHDRAWN"),  # bidi marks
        ("carol", "ｃａｒｏｌ", "WITHDRAWN"),  # fullwidth letters (NFKC)
    ],
)
def test_a_withdrawal_under_a_variant_of_the_author_id_is_never_missed(author, withdrawal_id, reason):
    rows = [rec(author, "opt_in", OPT_IN_2020), rec(withdrawal_id, "withdrawn", WITHDRAWN_2023)]
    result = filter_posts(posts(("p1", "Robin", author)), consent(*rows), AS_OF)
    assert result.decisions["reason"].tolist() == [reason]
    assert len(result.kept) == 0
    assert [r["row"] for r in result.decisions["records"][0]] == [2]


def test_an_opt_in_under_a_look_alike_id_never_keeps_a_post():
    for variant in ["ALICE", "Alice", "\u0430lice", "AL1CE"]:
        got = reasons([("p1", "Robin", "alice" if variant != "AL1CE" else "ALICE")],
                      [rec(variant, "opt_in", OPT_IN_2020)])
        assert got == {"p1": "AMBIGUOUS_ID"}, variant


def test_look_alike_ids_that_agree_or_are_older_do_not_exclude():
    # 'Sam' and 'sam' both opted in: whoever is who, both are kept.
    rows = [rec("Sam", "opt_in", OPT_IN_2020), rec("sam", "opt_in", OPT_IN_2020)]
    assert reasons([("p1", "Robin", "Sam"), ("p2", "Robin", "sam")], rows) == {"p1": "OPTED_IN", "p2": "OPTED_IN"}
    # A look-alike's withdrawal older than the author's own re-consent changes nothing either way.
    rows = [rec("ALICE", "withdrawn", "2019-01-01"), rec("alice", "opt_in", OPT_IN_2020)]
    assert reasons([("p1", "Robin", "alice")], rows) == {"p1": "OPTED_IN"}
    # ... but one at the same time as the opt-in is a conflict if they are one person.
    rows = [rec("ALICE", "opt_out", OPT_IN_2020), rec("alice", "opt_in", OPT_IN_2020)]
    assert reasons([("p1", "Robin", "alice")], rows) == {"p1": "AMBIGUOUS_ID"}


def test_post_ids_and_authors_are_normalised_too():
    frame = posts(("p1", "Robin", "\ufeffalice\u200b"), ("p2", "Robin", "alice"))
    result = filter_posts(frame, consent(rec("alice", "opt_in", OPT_IN_2020)), AS_OF)
    assert result.decisions["reason"].tolist() == ["OPTED_IN", "OPTED_IN"]
    assert result.decisions["user"].tolist() == ["alice", "alice"]
    with pytest.raises(PostkitError, match="duplicate post_id"):
        filter_posts(posts(("p1", "Robin", "u1"), ("p1\u200b", "Robin", "u1")),
                     consent(rec("u1", "opt_in", OPT_IN_2020)), AS_OF)


@pytest.mark.parametrize("forum", ["Rob\u200bin", "R\u043ebin", "\ufeffRobin", "ＲＯＢＩＮ"])
def test_a_forum_opt_out_under_a_look_alike_name_excludes_but_its_opt_in_never_includes(forum):
    rows = [rec("u1", "opt_in", OPT_IN_2020), rec("u1", "opt_out", WITHDRAWN_2023, forum=forum)]
    assert reasons([("p1", "Robin", "u1"), ("p2", "Jay", "u1")], rows) == {"p1": "OPTED_OUT", "p2": "OPTED_IN"}
    rows = [rec("u2", "opt_in", OPT_IN_2020, forum=forum)]
    assert reasons([("p3", "Robin", "u2")], rows) == {"p3": "NO_RECORD"}


@pytest.mark.parametrize("word", ["all", "ALL", "Any", "every", "everything", "\u0430ll", "all forums", "\u2217"])
def test_a_word_for_every_forum_is_an_error_not_a_forum(word):
    rows = [rec("u1", "opt_in", OPT_IN_2020), rec("u1", "withdrawn", WITHDRAWN_2023, forum=word)]
    with pytest.raises(PostkitError, match=r"row 2, column 'forum': a word for every forum.*write \*") as info:
        parse_consent_records(consent(*rows), "consent.csv")
    assert info.value.details == [info.value.details[0]]  # only the forum cell is wrong


def test_later_withdrawal_wins_unless_an_old_run_is_reproduced():
    rows = [rec("u1", "opt_in", OPT_IN_2020), rec("u1", "withdrawn", "2025-03-01T00:00:00Z"),
            rec("u2", "opt_in", OPT_IN_2020), rec("u2", "opt_out", "2025-03-01T00:00:00Z", forum="Robin"),
            rec("u3", "opt_in", OPT_IN_2020), rec("u3", "withdrawn", "2031-01-01T00:00:00Z"),
            rec("u4", "opt_in", OPT_IN_2020), rec("u4", "opt_in", "2025-03-01T00:00:00Z")]
    frame = posts(("p1", "Robin", "u1"), ("p2", "Robin", "u2"), ("p3", "Jay", "u2"), ("p4", "Robin", "u3"),
                  ("p5", "Robin", "u4"))
    now = parse_timestamp("2026-01-01T00:00:00Z")
    result = filter_posts(frame, consent(*rows), AS_OF, now=now)
    got = dict(zip(result.decisions["post_id"], result.decisions["reason"]))
    # u3's withdrawal is dated after the run: not yet known, so not applied.
    assert got == {"p1": "WITHDRAWN_LATER", "p2": "WITHDRAWN_LATER", "p3": "OPTED_IN", "p4": "OPTED_IN",
                   "p5": "OPTED_IN"}
    assert [r["row"] for r in result.decisions["records"][0]] == [2]
    old = filter_posts(frame, consent(*rows), AS_OF, now=now, ignore_later_withdrawals=True)
    assert set(old.decisions["reason"]) == {"OPTED_IN"}


def test_a_later_withdrawal_under_a_look_alike_id_excludes_too():
    rows = [rec("alice", "opt_in", OPT_IN_2020), rec("\u0430lice", "withdrawn", "2025-03-01T00:00:00Z")]
    assert reasons([("p1", "Robin", "alice")], rows) == {"p1": "AMBIGUOUS_ID"}


def test_error_messages_never_echo_cell_values():
    secret = "alice.smith@nhs.net"
    for bad in ({"status": secret}, {"recorded_at": secret}, {"expires_at": secret}, {"forum": "ALL"}):
        rows = [{**rec("u2", "opt_in", "2021-01-01"), **bad}]
        with pytest.raises(PostkitError) as info:
            parse_consent_records(consent(*rows), "consent.csv")
        text = str(info.value) + "\n".join(info.value.details)
        assert secret not in text and "ALL" not in text


def test_look_alike_groups_are_described_by_record_rows():
    records = parse_consent_records(consent(
        rec("alice", "opt_in", OPT_IN_2020), rec("bob", "opt_in", OPT_IN_2020),
        rec("ALICE", "withdrawn", WITHDRAWN_2023),
        rec("\u0430lice", "opt_out", WITHDRAWN_2023), rec("alice", "opt_out", WITHDRAWN_2023),
        rec("b\u200bob", "opt_out", WITHDRAWN_2023),  # the same id as bob: not a look-alike
    ), "consent.csv")
    assert [g.rows for g in look_alike_id_groups(records)] == [((1, 5), (3,), (4,))]
