"""The coding decision store: schema, decisions, progress, concurrency, coding sheets, reviews."""

from __future__ import annotations

import importlib.util
import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from postkit.coding.store import SCHEMA_VERSION, CodingStore, export_sheet, import_sheet
from postkit.errors import PostkitError

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _none(value):
    """pandas 3 string columns hold missing memos as NaN; compare them as None."""
    return None if pd.isna(value) else value

EXCERPTS = [
    {"unit_id": "p1#0", "post_id": "p1", "forum": "Robin", "text": "I felt so alone.", "start": 0, "end": 16},
    {"unit_id": "p1#1", "post_id": "p1", "forum": "Robin", "text": "Then my sister called.", "start": 17, "end": 39},
    {"unit_id": "p2#0", "post_id": "p2", "forum": "Jay", "text": "Nothing helps.", "start": 0, "end": 14},
]
SUGGESTIONS = [
    {"unit_id": "p1#0", "code_id": "ISOLATION", "score": 0.9, "evidence": [{"start": 12, "end": 17, "text": "alone"}]},
    {"unit_id": "p1#1", "code_id": "SUPPORT", "score": 0.7, "evidence": [{"start": 8, "end": 14, "text": "sister"}]},
    {"unit_id": "p2#0", "code_id": "HOPELESS", "score": 0.5, "evidence": []},
]


@pytest.fixture
def store(tmp_path: Path):
    with CodingStore(tmp_path / "coding.sqlite") as s:
        s.add_excerpts(EXCERPTS)
        s.add_suggestions(SUGGESTIONS, codebook_version="v1")
        yield s


# -- schema ---------------------------------------------------------------------


def test_schema_created_wal_and_version(tmp_path: Path) -> None:
    path = tmp_path / "coding.sqlite"
    CodingStore.open(path).close()
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"excerpts", "suggestions", "decisions", "reviews"} <= tables
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_folder_path_uses_default_file_name(tmp_path: Path) -> None:
    with CodingStore(tmp_path) as s:
        assert s.path == tmp_path / "coding.sqlite"
    assert (tmp_path / "coding.sqlite").exists()


def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "coding.sqlite"
    with CodingStore(path) as s:
        assert s.add_excerpts(EXCERPTS) == 3
        s.add_suggestions(SUGGESTIONS, "v1")
        s.decide("p1#0", "ISOLATION", "ann", "accept", "clear", at=T0)
    with CodingStore.open(path) as s:
        assert s.add_excerpts(EXCERPTS) == 0  # upsert-ignore
        assert len(s.excerpts()) == 3
        assert s.add_suggestions(SUGGESTIONS, "v1") == 0
        assert s.add_suggestions(SUGGESTIONS[:1], "v2") == 1
        log = s.decisions()
        assert log[["unit_id", "code_id", "coder", "action", "memo"]].values.tolist() == [
            ["p1#0", "ISOLATION", "ann", "accept", "clear"]
        ]
        assert log.loc[0, "decided_at"] == "2024-05-01T12:00:00.000000Z"
        assert log.loc[0, "codebook_version"] == "v1"  # taken from the suggestion


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "coding.sqlite"
    CodingStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(PostkitError, match="newer postkit") as info:
        CodingStore(path)
    assert info.value.fix and "upgrade" in info.value.fix


def test_foreign_sqlite_and_garbage_files_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(PostkitError, match="not a postkit coding store"):
        CodingStore(other)
    garbage = tmp_path / "notes.sqlite"
    garbage.write_text("hello, this is not a database at all " * 50)
    with pytest.raises(PostkitError, match="not a postkit coding store"):
        CodingStore(garbage)


def test_log_is_append_only_in_the_database(store: CodingStore) -> None:
    store.decide("p1#0", "ISOLATION", "ann", "accept")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store._conn.execute("DELETE FROM decisions")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store._conn.execute("UPDATE decisions SET action = 'reject'")


def test_suggestion_for_unknown_unit_refused(store: CodingStore) -> None:
    with pytest.raises(PostkitError, match="nothing was added") as info:
        store.add_suggestions([{"unit_id": "nope", "code_id": "X"}, SUGGESTIONS[0]], "v9")
    assert "unknown unit_id 'nope'" in info.value.details[0]
    assert len(store.suggestions()) == 3


# -- decisions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "ISOLATION", "ann", "accept"), "unknown unit_id"),
        (("p1#0", "ISOLATION", "ann", "maybe"), "unknown action"),
        (("p1#0", "ISOLATION", "  ", "accept"), "coder name is empty"),
        (("p1#0", "ISOLATION", None, "accept"), "coder name is empty"),
        (("p1#0", "", "ann", "accept"), "code_id is empty"),
    ],
)
def test_decide_validation(store: CodingStore, args: tuple, message: str) -> None:
    with pytest.raises(PostkitError, match=message):
        store.decide(*args)
    assert store.decisions().empty


def test_latest_decision_wins(store: CodingStore) -> None:
    first = store.decide("p1#0", "ISOLATION", "ann", "accept", at=T0)
    second = store.decide("p1#0", "ISOLATION", "ann", "reject", "on reflection: loneliness", at=T0 + timedelta(1))
    assert second > first
    # Recorded later but dated earlier: time decides, not insertion order.
    store.decide("p1#0", "ISOLATION", "ann", "accept", at=T0 - timedelta(1))
    store.decide("p1#0", "ISOLATION", "bob", "accept", at=T0)
    store.decide("p1#1", "LONELINESS", "ann", "add", at=T0)
    codings = store.codings()
    assert list(codings.columns) == ["unit_id", "coder", "code_id", "applied", "action", "memo", "decided_at"]
    got = {(r.unit_id, r.coder, r.code_id): (r.applied, _none(r.memo)) for r in codings.itertuples()}
    assert got == {
        ("p1#0", "ann", "ISOLATION"): (False, "on reflection: loneliness"),
        ("p1#0", "bob", "ISOLATION"): (True, None),
        ("p1#1", "ann", "LONELINESS"): (True, None),
    }
    assert codings["applied"].dtype == bool
    assert len(store.decisions()) == 5  # nothing overwritten
    assert len(store.decisions(coder="bob")) == 1


def test_same_timestamp_tie_broken_by_insertion(store: CodingStore) -> None:
    store.decide("p2#0", "HOPELESS", "ann", "accept", at=T0)
    store.decide("p2#0", "HOPELESS", "ann", "remove", at=T0)
    assert store.codings()["applied"].tolist() == [False]


def test_suggestions_alone_never_count_as_codings(store: CodingStore) -> None:
    codings = store.codings()
    assert codings.empty
    assert list(codings.columns) == ["unit_id", "coder", "code_id", "applied", "action", "memo", "decided_at"]
    assert store.coded_units().empty
    store.decide("p1#0", "ISOLATION", "ann", "accept")
    assert store.codings()[["unit_id", "code_id"]].values.tolist() == [["p1#0", "ISOLATION"]]


def test_naive_datetime_taken_as_utc(store: CodingStore) -> None:
    store.decide("p1#0", "ISOLATION", "ann", "accept", at=datetime(2024, 1, 2, 3, 4, 5))
    assert store.decisions().loc[0, "decided_at"] == "2024-01-02T03:04:05.000000Z"


def test_coded_units_and_progress(store: CodingStore) -> None:
    assert store.progress() == {
        "units_total": 3,
        "units_decided": 0,
        "units_decided_by_coder": {},
        "decisions_by_coder": {},
        "decisions_total": 0,
        "suggestions_total": 3,
        "suggestions_pending": 3,
    }
    store.decide("p1#0", "ISOLATION", "ann", "accept", at=T0)
    store.decide("p1#0", "ISOLATION", "ann", "reject", at=T0 + timedelta(1))
    store.decide("p1#0", "EXTRA", "ann", "add", at=T0)
    store.decide("p1#1", "SUPPORT", "bob", "reject", at=T0)
    store.add_suggestions([SUGGESTIONS[0]], "v2")  # same (unit, code), newer codebook: not a new pending item
    progress = store.progress()
    assert progress["units_decided"] == 2
    assert progress["units_decided_by_coder"] == {"ann": 1, "bob": 1}
    assert progress["decisions_by_coder"] == {"ann": 3, "bob": 1}
    assert progress["decisions_total"] == 4
    assert progress["suggestions_total"] == 3
    assert progress["suggestions_pending"] == 1  # only p2#0 HOPELESS
    assert store.coded_units().values.tolist() == [["p1#0", "ann"], ["p1#1", "bob"]]


# -- concurrency ------------------------------------------------------------------

PER_PROCESS = 300


def _writer(path: str, coder: str, start_event) -> None:
    start_event.wait()
    with CodingStore(path) as s:
        for i in range(PER_PROCESS):
            s.decide(f"u{i % 10}", f"C{i}", coder, "accept" if i % 2 else "reject", memo=str(i))


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "coding.sqlite"
    with CodingStore(path) as s:
        s.add_excerpts([{"unit_id": f"u{i}", "text": f"unit {i}"} for i in range(10)])
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_writer, args=(str(path), coder, start)) for coder in ("ann", "bob")]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]  # a "database is locked" error would exit non-zero
    with CodingStore(path) as s:
        log = s.decisions()
        assert len(log) == 2 * PER_PROCESS
        assert log.groupby("coder").size().to_dict() == {"ann": PER_PROCESS, "bob": PER_PROCESS}
        assert log["id"].is_unique
        assert sorted(log[log.coder == "ann"]["memo"].astype(int)) == list(range(PER_PROCESS))
        assert len(s.codings()) == 2 * PER_PROCESS


def _opener(path: str, start_event, _i: int) -> None:
    start_event.wait()
    with CodingStore(path) as s:
        s.add_excerpts([{"unit_id": "x"}])


def test_simultaneous_first_open_creates_schema_once(tmp_path: Path) -> None:
    path = tmp_path / "coding.sqlite"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_opener, args=(str(path), start, i)) for i in range(3)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    with CodingStore(path) as s:
        assert s.excerpts()["unit_id"].tolist() == ["x"]


# -- coding sheets ------------------------------------------------------------------

SHEET_FORMATS = ["csv"] + (["xlsx"] if importlib.util.find_spec("openpyxl") else [])


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return pd.read_excel(path, dtype=str, keep_default_na=False)


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_excel(path, index=False)


@pytest.mark.parametrize("fmt", SHEET_FORMATS)
def test_sheet_round_trip_and_idempotent(store: CodingStore, tmp_path: Path, fmt: str) -> None:
    store.decide("p2#0", "HOPELESS", "ann", "accept", "bleak", at=T0)
    store.decide("p2#0", "HOPELESS", "bob", "reject", at=T0)  # other coder: not shown to ann
    sheet = tmp_path / f"ann.{fmt}"
    assert export_sheet(store, sheet, "ann") == 3
    frame = _read(sheet)
    assert list(frame.columns) == ["unit_id", "post_id", "text", "code_id", "suggested", "score", "evidence",
                                   "decision", "memo"]
    assert frame["code_id"].tolist() == ["ISOLATION", "SUPPORT", "HOPELESS"]
    assert frame["suggested"].tolist() == ["yes", "yes", "yes"]
    assert frame.loc[0, "evidence"] == "alone"
    assert frame.loc[0, "score"] == "0.9"
    assert frame.loc[2, ["decision", "memo"]].tolist() == ["accept", "bleak"]  # current decision pre-filled
    # The coder fills the sheet in.
    frame.loc[0, ["decision", "memo"]] = ["accept", "strong"]
    frame.loc[1, "decision"] = "Reject"  # case is forgiven
    new = frame.iloc[[1]].copy()
    new[["code_id", "suggested", "score", "evidence", "decision", "memo"]] = ["FAMILY", "", "", "", "add", ""]
    frame = pd.concat([frame, new], ignore_index=True)
    _write(frame, sheet)

    assert import_sheet(store, sheet, "ann") == 3  # HOPELESS unchanged -> skipped
    ann = store.codings().query("coder == 'ann'")
    got = {(r.unit_id, r.code_id): (r.applied, _none(r.memo)) for r in ann.itertuples()}
    assert got == {
        ("p1#0", "ISOLATION"): (True, "strong"),
        ("p1#1", "SUPPORT"): (False, None),
        ("p1#1", "FAMILY"): (True, None),
        ("p2#0", "HOPELESS"): (True, "bleak"),
    }
    before = len(store.decisions())
    assert import_sheet(store, sheet, "ann") == 0
    assert len(store.decisions()) == before
    # A fresh export reflects the store (added code included) and re-imports as a no-op.
    assert export_sheet(store, sheet, "ann") == 4
    assert import_sheet(store, sheet, "ann") == 0
    assert store.progress()["suggestions_pending"] == 0


def test_sheet_blank_decisions_skipped_and_memo_change_recorded(store: CodingStore, tmp_path: Path) -> None:
    sheet = tmp_path / "ann.csv"
    export_sheet(store, sheet, "ann")
    assert import_sheet(store, sheet, "ann") == 0  # all blank
    frame = _read(sheet)
    frame.loc[0, "decision"] = "accept"
    _write(frame, sheet)
    assert import_sheet(store, sheet, "ann") == 1
    frame.loc[0, "memo"] = "second thoughts, same call"
    _write(frame, sheet)
    assert import_sheet(store, sheet, "ann") == 1
    assert store.codings()["memo"].tolist() == ["second thoughts, same call"]


def test_sheet_lists_units_without_suggestions(store: CodingStore, tmp_path: Path) -> None:
    store.add_excerpts([{"unit_id": "p3#0", "post_id": "p3", "text": "Quiet one."}])
    sheet = tmp_path / "ann.csv"
    assert export_sheet(store, sheet, "ann") == 4
    frame = _read(sheet)
    last = frame.iloc[-1]
    assert (last["unit_id"], last["code_id"], last["suggested"]) == ("p3#0", "", "no")
    frame.loc[frame.index[-1], ["code_id", "decision"]] = ["CALM", "add"]
    _write(frame, sheet)
    assert import_sheet(store, sheet, "ann") == 1
    assert store.codings()[["unit_id", "code_id"]].values.tolist() == [["p3#0", "CALM"]]


def test_bad_sheet_rows_abort_whole_import(store: CodingStore, tmp_path: Path) -> None:
    sheet = tmp_path / "ann.csv"
    export_sheet(store, sheet, "ann")
    frame = _read(sheet)
    frame.loc[0, "decision"] = "accept"  # valid, but must not be imported
    frame.loc[1, "decision"] = "yes please"
    frame.loc[2, "unit_id"] = "p9#9"
    frame.loc[2, "decision"] = "accept"
    _write(frame, sheet)
    with pytest.raises(PostkitError, match="2 row") as info:
        import_sheet(store, sheet, "ann")
    err = info.value
    assert err.path == str(sheet)
    assert any(line.startswith("row 3:") and "yes please" in line for line in err.details)
    assert any(line.startswith("row 4:") and "p9#9" in line for line in err.details)
    assert store.decisions().empty


def test_sheet_conflicting_duplicate_rows_refused(store: CodingStore, tmp_path: Path) -> None:
    sheet = tmp_path / "ann.csv"
    export_sheet(store, sheet, "ann")
    frame = _read(sheet)
    frame.loc[0, "decision"] = "accept"
    dup = frame.iloc[[0]].copy()
    dup["decision"] = "reject"
    _write(pd.concat([frame, dup], ignore_index=True), sheet)
    with pytest.raises(PostkitError) as info:
        import_sheet(store, sheet, "ann")
    assert "conflicts with row 2" in info.value.details[0]
    assert store.decisions().empty


def test_sheet_errors(store: CodingStore, tmp_path: Path) -> None:
    with pytest.raises(PostkitError, match="unsupported coding sheet type"):
        export_sheet(store, tmp_path / "sheet.txt", "ann")
    with pytest.raises(PostkitError, match="coder name is empty"):
        export_sheet(store, tmp_path / "sheet.csv", "")
    (tmp_path / "bad.csv").write_text("unit_id,memo\np1#0,hi\n")
    with pytest.raises(PostkitError, match="lacks column"):
        import_sheet(store, tmp_path / "bad.csv", "ann")
    if not importlib.util.find_spec("openpyxl"):
        with pytest.raises(PostkitError, match="openpyxl"):
            export_sheet(store, tmp_path / "sheet.xlsx", "ann")


# -- reviews ------------------------------------------------------------------------


def test_reviews(store: CodingStore) -> None:
    first = store.add_review("quote", "q1", "ann", "approve", text="a disguised quote", scores={"bleu": 0.12},
                             note="ok", at=T0)
    second = store.add_review("quote", "q1", "bob", "reject", at=T0 + timedelta(1))
    store.add_review("other", "x", "ann", "flag", at=T0)
    assert second > first
    quotes = store.reviews("quote")
    assert quotes["reviewer"].tolist() == ["ann", "bob"]
    assert quotes.loc[0, "scores"] == {"bleu": 0.12}
    assert _none(quotes.loc[1, "scores"]) is None
    assert quotes.loc[0, "text"] == "a disguised quote"
    assert len(store.reviews()) == 3
    assert store.reviews("none").empty
    with pytest.raises(PostkitError, match="reviewer"):
        store.add_review("quote", "q1", " ", "approve")
    with pytest.raises(PostkitError, match="JSON"):
        store.add_review("quote", "q1", "ann", "approve", scores={"x": object()})
    assert store.codings().empty  # reviews are not codings
