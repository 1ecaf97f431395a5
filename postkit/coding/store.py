"""The coding decision store: one SQLite file per study, shared by every coder.

Why SQLite: coders (and later the browser review app) work on the same study at
the same time, sometimes from two processes on one machine or a shared folder.
A single file with WAL journaling lets readers and one writer proceed together,
and a busy timeout makes a second writer *wait* instead of failing, so no
decision is ever lost to "database is locked".  Every write is one short
``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so two
writers never deadlock upgrading a read lock.

The decision tables are append-only logs.  Nothing is updated or deleted: a
coder changing their mind records a new decision, and their *current* view of a
(unit, code) is their latest one.  That keeps a full audit trail for the methods
section and makes concurrent writers trivially safe (inserts never conflict).
Decisions and reviews are also hash-chained (schema 2, :mod:`postkit.coding.chain`),
so ``postkit code verify`` detects rows edited, deleted or back-dated by hand.

Two more guards, because the review app keeps a store open for hours:

* **Locks.** A store opened for writing holds a *shared* lock
  (:class:`postkit.locks.PathLock`) on its run folder for as long as it is open (on
  the file itself outside a run folder), so ``postkit run``, which locks the folder
  exclusively before replacing it, refuses while coders are at work, and a store
  cannot be opened while a run is replacing its folder. Readers (``read_only=True``,
  opened with SQLite's ``mode=ro``) take no lock.
* **Replaced or deleted file.** The store remembers the file it opened (device and
  inode) and checks before every write that its path still names that file. If the
  file was replaced (a rerun renamed a new run folder over it) or deleted, it refuses
  this and every later write instead of writing into a file nobody will see again.

Suggestions from the rule-based coder are stored separately and never count as
codings until a coder confirms them: agreement statistics must only ever see
human decisions.

The store knows nothing about any UI; the coding sheet (CSV/XLSX) helpers at the
bottom and the later review app are both plain clients of :class:`CodingStore`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sqlite3
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import pandas as pd

from postkit.errors import PostkitError
from postkit.io import OutputSet, spreadsheet_safe
from postkit.locks import SHARED, PathLock, run_folder_of

from . import chain
from .chain import StoreVerifyResult
from .codebook import Codebook

__all__ = [
    "ACTIONS",
    "DEFAULT_FILENAME",
    "SCHEMA_VERSION",
    "SHEET_COLUMNS",
    "CodingStore",
    "StoreReplacedError",
    "StoreVerifyResult",
    "codings_from_sheets",
    "export_sheet",
    "import_sheet",
    "verify_store",
]

DEFAULT_FILENAME = "coding.sqlite"
# 1: tables and append-only triggers; 2: decisions and reviews hash-chained (chain.py).
SCHEMA_VERSION = 2
# accept/add mean "the code applies", reject/remove mean "it does not".
ACTIONS = ("accept", "reject", "add", "remove")
APPLIED_ACTIONS = frozenset({"accept", "add"})
# Long enough to ride out another process's transaction (they are all short) on
# a slow shared disk; a writer that still cannot get the lock after this fails loudly.
BUSY_TIMEOUT_S = 30.0

# Schema 1, from which every store starts; chain.add_chain then takes it to schema 2.
_SCHEMA = """
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
"""

# Append-only is enforced by the database itself, so no client (the review app,
# a hand-written script) can quietly rewrite history; the hash chain shows when
# someone removed these triggers and did it anyway.
_APPEND_ONLY = chain.APPEND_ONLY

DECISION_COLUMNS = ["id", "unit_id", "code_id", "coder", "action", "memo", "decided_at", "codebook_version"]
CODING_COLUMNS = ["unit_id", "coder", "code_id", "applied", "action", "memo", "decided_at"]
REVIEW_COLUMNS = ["id", "kind", "item_id", "reviewer", "action", "text", "scores", "note", "decided_at"]


def _utc_iso(at: datetime | None = None) -> str:
    """ISO 8601 UTC with fixed-width microseconds, so text order is time order.

    A naive datetime is taken to be UTC already (the store never guesses a
    local zone, which would differ between coders' machines).
    """
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _decided_at(at: datetime | None) -> str | None:
    """A caller's decision time as stored, or None for "now" (the store fills it in).

    A time in the future is refused: it would make a decision win over every later
    one ("latest wins"), and the chain verifier flags it as forward-dated.
    """
    if at is None:
        return None
    stamp = _utc_iso(at)
    if stamp > _utc_iso():
        raise PostkitError("a decision cannot be dated in the future",
                           fix="leave the time out (the store records now), or check the computer's clock")
    return stamp


def _clean(value: Any) -> Any:
    """Turn pandas/numpy scalars and NaN into what sqlite3 can bind."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):  # lists, dicts
        pass
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # numpy scalar -> Python scalar
    return value


def _text(value: Any) -> str | None:
    value = _clean(value)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any, what: str) -> int | None:
    value = _clean(value)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PostkitError(f"{what} must be a whole number, got {value!r}") from None


def _records(rows: Iterable[dict] | pd.DataFrame) -> Iterator[dict]:
    if isinstance(rows, pd.DataFrame):
        yield from rows.to_dict("records")
    else:
        yield from rows


class StoreReplacedError(PostkitError):
    """The store's file was replaced or deleted while it was open; it accepts no more writes.

    Its own type so the review app can answer 409 Conflict and tell the reviewer to
    restart, rather than blame the request.
    """


class CodingStore:
    """All coding decisions (and other reviews) of one study, in one SQLite file.

    Safe to open from several processes at once; each method is its own short
    transaction, so a crash loses at most the call in progress.

    ``read_only=True`` opens an existing store for reading only (progress, exports,
    verification): no lock, no migration, and every write raises. Otherwise the store
    is created or migrated as needed and holds a shared lock on its run folder until
    :meth:`close`; ``purpose`` names this holder in other processes' messages (e.g.
    ``"review app"``; default: the running command, see :func:`postkit.locks.process_purpose`).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, purpose: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            path = path / DEFAULT_FILENAME
        self.path = path
        self.read_only = read_only
        self._lock: PathLock | None = None
        self._lost = False
        if not path.parent.exists():
            raise PostkitError(
                "the folder for the coding store does not exist",
                path=path.parent,
                fix="create it first or choose another --store path",
            )
        if read_only and not path.is_file():
            raise PostkitError("the coding store does not exist", path=path, fix="check the path")
        if not read_only:
            self._lock = self._take_lock(purpose)
        try:
            # isolation_level=None: no implicit transactions; we issue BEGIN IMMEDIATE
            # ourselves so the write lock is taken before anything is read.
            if read_only:
                self._conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True,
                                             timeout=BUSY_TIMEOUT_S, isolation_level=None)
            else:
                self._conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            self._release_lock()
            raise PostkitError(f"cannot open the coding store ({exc})", path=path) from None
        try:
            self._identity = self._file_identity()
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if read_only:
                self.schema = self._read_schema()
            else:
                self._migrate()
                self.schema = SCHEMA_VERSION
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise PostkitError(
                        f"cannot switch the coding store to WAL journaling (got {mode!r})",
                        path=path,
                        fix="put the store on a local disk; network file systems cannot share SQLite safely",
                    )
                problem = chain.chain_problem_on_open(self._conn)
                if problem is not None:
                    raise PostkitError(
                        f"refusing to write to a coding store that was altered by hand: {problem}",
                        path=path,
                        fix="run `postkit code verify` on it, and restore the store from a backup",
                    )
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise PostkitError(
                f"not a postkit coding store ({exc})",
                path=path,
                fix="point to the study's coding.sqlite or to a new file name",
            ) from None
        except BaseException:
            self._close_quietly()
            raise

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False, purpose: str | None = None) -> CodingStore:
        """Open (creating if needed, unless ``read_only``) the store at ``path`` (a file or a study folder)."""
        return cls(path, read_only=read_only, purpose=purpose)

    def close(self) -> None:
        """Close the connection and release the lock; committed data is already on disk."""
        try:
            self._conn.close()
        finally:
            self._release_lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def head(self) -> tuple[int, str] | None:
        """(seq, hash) of the last decision or review in the hash chain; None for a schema-1 store.

        Record it somewhere the store's editors cannot reach: ``postkit code verify
        STORE --expect-head HASH`` then also catches a store rewritten from scratch.
        """
        if self.schema < 2:
            return None
        return chain.head(self._conn)

    def check_unchanged(self) -> None:
        """Raise :class:`PostkitError` if the store's path no longer names the file this store opened.

        After that, every write is refused: a rerun replaced the run folder (or someone
        deleted the file), and decisions written now would go into a file nobody sees.
        """
        if not self._lost:
            try:
                self._lost = self._file_identity() != self._identity
            except FileNotFoundError:
                self._lost = True
        if self._lost:
            raise StoreReplacedError(
                "the coding store was replaced or deleted since it was opened; nothing was written, "
                "and nothing more will be",
                path=self.path,
                fix="restart the review app (or reopen the store) to work on the current file; "
                    "decisions made before the replacement are in the old run folder's backup, if any",
            )

    # -- internals ---------------------------------------------------------------

    def _take_lock(self, purpose: str | None) -> PathLock:
        """A shared lock on the run folder holding the store (else on the store file itself)."""
        target = run_folder_of(self.path) or self.path
        lock = PathLock(target, mode=SHARED, purpose=purpose)
        try:
            return lock.acquire()
        except PostkitError as exc:
            raise PostkitError(
                f"cannot open the coding store for writing: its {'run folder' if target != self.path else 'file'} "
                f"is {exc.message}",
                path=self.path,
                fix="wait for that to finish (a run replaces the folder, store included), then retry",
            ) from None

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def _close_quietly(self) -> None:
        try:
            self._conn.close()
        finally:
            self._release_lock()

    def _file_identity(self) -> tuple[int, int]:
        stat = os.stat(self.path)
        return stat.st_dev, stat.st_ino

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction holding the lock from the start, on the file this store opened."""
        if self.read_only:
            raise PostkitError("the coding store was opened read-only", path=self.path,
                               fix="open it without read_only to record decisions")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self.check_unchanged()  # under SQLite's write lock: the last moment before writing
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _read_schema(self) -> int:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        self._refuse_newer(version)
        if version == 0:
            raise PostkitError("this SQLite file is not a postkit coding store", path=self.path,
                               fix="point to the study's coding.sqlite")
        return int(version)

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        self._refuse_newer(version)
        if version == SCHEMA_VERSION:
            return
        with self._write() as conn:
            # Re-read under the lock: another process may have created it meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._refuse_newer(version)
            if version == SCHEMA_VERSION:
                return
            created = version == 0
            if created:
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise PostkitError(
                        "this SQLite file is not a postkit coding store (it has other tables)",
                        path=self.path,
                        fix="choose a new file name for the coding store",
                    )
                for statement in chain.statements(_SCHEMA + _APPEND_ONLY):
                    conn.execute(statement)  # executescript() would COMMIT our transaction
            # Schema 1 -> 2: the hash chain (a new store takes the same step, so both look alike).
            try:
                chain.add_chain(conn, _utc_iso(), None if created else 1)
            except PostkitError as exc:
                raise PostkitError(exc.message, path=self.path, fix=exc.fix) from None
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise PostkitError(
                f"the coding store was written by a newer postkit (schema {version}, "
                f"this postkit reads up to {SCHEMA_VERSION})",
                path=self.path,
                fix="upgrade postkit (pip install -U postkit) before opening it",
            )

    def _frame(self, sql: str, params: Iterable[Any] = (), columns: list[str] | None = None) -> pd.DataFrame:
        cursor = self._conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        frame = pd.DataFrame(cursor.fetchall(), columns=names)
        if columns is not None:
            frame = frame[columns]
        return frame

    def _unit_exists(self, unit_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM excerpts WHERE unit_id = ?", (unit_id,)).fetchone() is not None

    def _known_units(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT unit_id FROM excerpts")}

    # -- excerpts and suggestions ------------------------------------------------

    def add_excerpts(self, rows: Iterable[dict] | pd.DataFrame) -> int:
        """Register the units coders code; existing unit_ids are left untouched.

        Ignoring (not replacing) duplicates keeps decisions attached to the text
        the coder actually saw.  Returns the number of new units.
        """
        now = _utc_iso()
        values = []
        for number, row in enumerate(_records(rows), start=1):
            unit_id = _text(row.get("unit_id"))
            if unit_id is None:
                raise PostkitError("an excerpt has no unit_id", row=number, fix="give every unit an id")
            values.append((
                unit_id,
                _text(row.get("post_id")),
                _text(row.get("forum")),
                None if _clean(row.get("text")) is None else str(_clean(row.get("text"))),
                _int(row.get("start"), "start"),
                _int(row.get("end"), "end"),
                now,
            ))
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO excerpts (unit_id, post_id, forum, text, start, end, added_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            return conn.total_changes - before

    def add_suggestions(self, rows: Iterable[dict] | pd.DataFrame, codebook_version: str) -> int:
        """Store rule-based suggestions (unit_id, code_id, score, evidence).

        Suggestions are keyed by codebook version, so re-running a newer codebook
        adds rows rather than rewriting what coders were shown.  They never count
        as codings.  Returns the number of new suggestions.
        """
        version = _text(codebook_version)
        if version is None:
            raise PostkitError("codebook_version is empty", fix="pass the codebook's version string")
        now = _utc_iso()
        values = []
        problems = []
        known = self._known_units()
        for number, row in enumerate(_records(rows), start=1):
            unit_id, code_id = _text(row.get("unit_id")), _text(row.get("code_id"))
            if unit_id is None or code_id is None:
                problems.append(f"suggestion {number}: unit_id and code_id are required")
                continue
            if unit_id not in known:
                problems.append(f"suggestion {number}: unknown unit_id {unit_id!r}")
                continue
            evidence = _clean(row.get("evidence"))
            if evidence is not None and not isinstance(evidence, str):
                evidence = json.dumps(evidence, ensure_ascii=False)
            score = _clean(row.get("score"))
            values.append((unit_id, code_id, None if score is None else float(score), evidence, version, now))
        if problems:
            raise PostkitError(
                f"{len(problems)} suggestion(s) cannot be stored; nothing was added",
                fix="add the excerpts first (add_excerpts) and give every suggestion a code_id",
                details=problems,
            )
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO suggestions"
                " (unit_id, code_id, score, evidence, codebook_version, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
            return conn.total_changes - before

    def suggestions(self) -> pd.DataFrame:
        """All stored suggestions (evidence left as JSON text)."""
        return self._frame(
            "SELECT unit_id, code_id, score, evidence, codebook_version, created_at FROM suggestions"
            " ORDER BY unit_id, code_id, codebook_version"
        )

    def excerpts(self) -> pd.DataFrame:
        """All registered units."""
        return self._frame(
            "SELECT unit_id, post_id, forum, text, start, end, added_at FROM excerpts ORDER BY unit_id"
        )

    # -- decisions ---------------------------------------------------------------

    def _check_decision(self, unit_id: Any, code_id: Any, coder: Any, action: Any) -> tuple[str, str, str, str]:
        coder_s = _text(coder)
        if coder_s is None:
            raise PostkitError("the coder name is empty", fix="pass the coder's name or initials")
        code_s = _text(code_id)
        if code_s is None:
            raise PostkitError("the code_id is empty", fix="name the code being decided")
        action_s = (_text(action) or "").lower()
        if action_s not in ACTIONS:
            raise PostkitError(
                f"unknown action {action!r}", fix=f"use one of: {', '.join(ACTIONS)}"
            )
        unit_s = _text(unit_id)
        if unit_s is None or not self._unit_exists(unit_s):
            raise PostkitError(
                f"unknown unit_id {unit_id!r}", fix="add the excerpt first (add_excerpts) or check the id"
            )
        return unit_s, code_s, coder_s, action_s

    def _default_version(self, unit_id: str, code_id: str) -> str | None:
        row = self._conn.execute(
            "SELECT codebook_version FROM suggestions WHERE unit_id = ? AND code_id = ?"
            " ORDER BY created_at DESC, codebook_version DESC LIMIT 1",
            (unit_id, code_id),
        ).fetchone()
        return row[0] if row else None

    def decide(
        self,
        unit_id: str,
        code_id: str,
        coder: str,
        action: str,
        memo: str | None = None,
        *,
        at: datetime | None = None,
        codebook_version: str | None = None,
    ) -> int:
        """Append one decision and return its id.

        Validated before writing (unknown unit, bad action, empty coder raise
        :class:`PostkitError`) so the log never holds a decision nobody can
        interpret.  ``codebook_version`` defaults to that of the latest
        suggestion of this code for this unit, if any.  ``at`` (when the coder
        decided, e.g. offline) defaults to now and may not lie in the future; the
        store records its own time beside it for the hash chain.
        """
        unit_s, code_s, coder_s, action_s = self._check_decision(unit_id, code_id, coder, action)
        decided_at = _decided_at(at)
        with self._write() as conn:
            version = _text(codebook_version) or self._default_version(unit_s, code_s)
            return self._append_decision(conn, unit_s, code_s, coder_s, action_s, _text(memo), decided_at, version)

    def _append_decision(self, conn: sqlite3.Connection, unit_id: str, code_id: str, coder: str, action: str,
                         memo: str | None, decided_at: str | None, version: str | None) -> int:
        """Insert one chained decision inside an open write transaction."""
        values = {"unit_id": unit_id, "code_id": code_id, "coder": coder, "action": action, "memo": memo,
                  "decided_at": decided_at, "codebook_version": version}
        return chain.append(conn, "decisions", values, _utc_iso())

    def decisions(self, coder: str | None = None) -> pd.DataFrame:
        """The full decision log (optionally one coder's), oldest first."""
        where, params = ("WHERE coder = ?", (coder,)) if coder is not None else ("", ())
        return self._frame(
            f"SELECT {', '.join(DECISION_COLUMNS)} FROM decisions {where} ORDER BY decided_at, id",
            params,
            DECISION_COLUMNS,
        )

    _LATEST = """
        SELECT unit_id, coder, code_id, action, memo, decided_at FROM (
            SELECT *, ROW_NUMBER() OVER (
                PARTITION BY unit_id, coder, code_id ORDER BY decided_at DESC, id DESC) AS rank
            FROM decisions {where})
        WHERE rank = 1
    """

    def codings(self) -> pd.DataFrame:
        """Current state: each coder's latest decision per (unit, code).

        Only human decisions appear here; a suggestion nobody confirmed is not a
        coding.  ``applied`` is True for accept/add and False for reject/remove,
        so "coder looked and said no" is kept distinct from "never decided".
        """
        frame = self._frame(self._LATEST.format(where="") + " ORDER BY unit_id, coder, code_id")
        frame["applied"] = frame["action"].isin(APPLIED_ACTIONS).astype(bool)
        return frame[CODING_COLUMNS].reset_index(drop=True)

    def _current(self, coder: str) -> dict[tuple[str, str], tuple[str, str | None]]:
        rows = self._conn.execute(self._LATEST.format(where="WHERE coder = ?"), (coder,))
        return {(u, c): (a, m) for u, _coder, c, a, m, _at in rows}

    def coded_units(self) -> pd.DataFrame:
        """(unit_id, coder) pairs where the coder decided anything.

        Agreement needs this: a code absent from a unit the coder *did* review
        means "not applied", while an unreviewed unit is missing data.
        """
        return self._frame("SELECT DISTINCT unit_id, coder FROM decisions ORDER BY unit_id, coder")

    def progress(self) -> dict[str, Any]:
        """Counts for a progress line or dashboard.

        ``suggestions_pending`` counts suggested (unit, code) pairs that no coder
        has decided yet, across codebook versions.
        """
        conn = self._conn
        one = lambda sql: conn.execute(sql).fetchone()[0]
        return {
            "units_total": one("SELECT count(*) FROM excerpts"),
            "units_decided": one("SELECT count(DISTINCT unit_id) FROM decisions"),
            "units_decided_by_coder": dict(
                conn.execute("SELECT coder, count(DISTINCT unit_id) FROM decisions GROUP BY coder ORDER BY coder")
            ),
            "decisions_by_coder": dict(
                conn.execute("SELECT coder, count(*) FROM decisions GROUP BY coder ORDER BY coder")
            ),
            "decisions_total": one("SELECT count(*) FROM decisions"),
            "suggestions_total": one("SELECT count(*) FROM (SELECT DISTINCT unit_id, code_id FROM suggestions)"),
            "suggestions_pending": one(
                "SELECT count(*) FROM (SELECT DISTINCT unit_id, code_id FROM suggestions) s"
                " WHERE NOT EXISTS (SELECT 1 FROM decisions d"
                " WHERE d.unit_id = s.unit_id AND d.code_id = s.code_id)"
            ),
        }

    # -- generic reviews ---------------------------------------------------------

    def add_review(
        self,
        kind: str,
        item_id: str,
        reviewer: str,
        action: str,
        *,
        text: str | None = None,
        scores: Any = None,
        note: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Append a review of any other kind (e.g. ``kind='quote'`` disguise approvals).

        Kept generic and append-only like decisions so later review apps need no
        schema change; ``scores`` is stored as JSON.  ``at`` as for :meth:`decide`.
        """
        fields = {"kind": kind, "item_id": item_id, "reviewer": reviewer, "action": action}
        cleaned = {name: _text(value) for name, value in fields.items()}
        empty = [name for name, value in cleaned.items() if value is None]
        if empty:
            raise PostkitError(f"review field(s) empty: {', '.join(empty)}", fix="fill in every required field")
        try:
            scores_json = None if scores is None else json.dumps(scores, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise PostkitError(f"review scores are not JSON-serialisable ({exc})") from None
        # Stored as text either way; hashing the text keeps the chain equal to what is read back.
        values = {**cleaned, "text": None if text is None else str(text), "scores": scores_json,
                  "note": None if note is None else str(note), "decided_at": _decided_at(at)}
        with self._write() as conn:
            return chain.append(conn, "reviews", values, _utc_iso())

    def reviews(self, kind: str | None = None) -> pd.DataFrame:
        """The review log (optionally one kind), oldest first; ``scores`` decoded from JSON."""
        where, params = ("WHERE kind = ?", (kind,)) if kind is not None else ("", ())
        frame = self._frame(
            f"SELECT {', '.join(REVIEW_COLUMNS)} FROM reviews {where} ORDER BY decided_at, id",
            params,
            REVIEW_COLUMNS,
        )
        frame["scores"] = pd.Series(
            [json.loads(s) if isinstance(s, str) else None for s in frame["scores"]], index=frame.index, dtype=object
        )
        return frame


def verify_store(path: str | Path, *, expected_head: str | None = None) -> StoreVerifyResult:
    """Check the coding store at ``path`` (a file or a study folder) for tampering, reading only.

    Walks the hash chain of decisions and reviews, checks the head record and the safeguard
    triggers, and (with ``expected_head``, recorded elsewhere) that the store was not
    rewritten. Returns a result naming the first problem (``.ok``, ``.problem``,
    ``.render()``); raises :class:`PostkitError` only when the file cannot be read as a
    store. A schema-1 store has no chain and fails with a note on how to add one.
    """
    path = Path(path)
    if path.is_dir():
        path = path / DEFAULT_FILENAME
    # Before opening: a read-only open may create the -wal file. Committed rows may still sit
    # in the -wal file, so its time counts too.
    times = [p.stat().st_mtime for p in (path, path.with_name(path.name + "-wal")) if p.is_file()]
    modified = datetime.fromtimestamp(max(times), UTC) if times else None
    with CodingStore(path, read_only=True) as store:
        if store.schema < 2:
            return StoreVerifyResult(path, store.schema, problems=[
                f"schema {store.schema}: this store has no hash chain yet, so edits cannot be detected — "
                "opening it for writing once (e.g. `postkit code load` or `import-sheet`, or the review app) "
                "adds one"])
        try:
            return chain.verify_chain(store._conn, path, store.schema, expected_head=expected_head,
                                      modified=modified)
        except sqlite3.DatabaseError as exc:
            return StoreVerifyResult(path, store.schema, problems=[
                f"the store's tables were changed by hand ({exc}) — it cannot be checked"])


# -- coding sheets ---------------------------------------------------------------

SHEET_COLUMNS = ["unit_id", "post_id", "text", "code_id", "code_name", "definition", "suggested", "score",
                 "evidence", "decision", "memo"]
# The codebook tab of an .xlsx sheet: every code, so a coder can look one up and add it.
CODEBOOK_SHEET_COLUMNS = ["code_id", "name", "area", "kind", "polarity", "definition", "include", "exclude"]
# Columns only read by people, never imported: a value starting with one of these characters is
# a formula to a spreadsheet (a post that opens "=HYPERLINK(...)" would run as one), so in CSV it
# gets a leading apostrophe, and in .xlsx it is stored as text.
_READ_ONLY_COLUMNS = ("text", "code_name", "definition", "evidence")
_XLSX_MAX_ROW = 1_048_576


def _sheet_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".xlsx":
        if importlib.util.find_spec("openpyxl") is None:
            raise PostkitError(
                "writing or reading .xlsx coding sheets needs openpyxl, which is not installed",
                path=path,
                fix="use a .csv sheet, or pip install openpyxl",
            )
        return "xlsx"
    raise PostkitError(
        f"unsupported coding sheet type {suffix or '(none)'!r}", path=path, fix="use a .csv or .xlsx file name"
    )


def _evidence_text(evidence: str | None) -> str:
    """Evidence spans as readable text for the sheet ("…" | "…")."""
    evidence = _text(evidence)  # None/NaN from a pandas 3 string column
    if not evidence:
        return ""
    try:
        spans = json.loads(evidence)
    except ValueError:
        return str(evidence)
    if isinstance(spans, list):
        return " | ".join(str(s.get("text", "")) if isinstance(s, dict) else str(s) for s in spans)
    return str(spans)


def export_sheet(store: CodingStore, path: str | Path, coder: str, codebook: Codebook | None = None) -> int:
    """Write a coding sheet for ``coder`` and return its number of rows.

    One row per (unit, code) that was suggested or that this coder already
    decided, pre-filled with the coder's current decision and memo so the sheet
    always reflects the store (re-importing it changes nothing).  Other coders'
    decisions are deliberately left out to keep coding independent.  Units with
    nothing suggested get one row with a blank code_id so the coder still sees
    them and can add codes.  Each row names its code and gives the code's
    definition from ``codebook`` (default: the packaged one; blank for a code it
    does not hold), so a coder judges against the theory, not the code id.
    An .xlsx sheet also gets a drop-down of the decisions on the ``decision``
    column, a codebook tab listing every code (with include/exclude notes) and a
    drop-down of those codes on ``code_id``. The sheet is written atomically.
    """
    from .codebook import load_codebook

    path = Path(path)
    fmt = _sheet_format(path)
    coder_s = _text(coder)
    if coder_s is None:
        raise PostkitError("the coder name is empty", fix="pass the coder's name or initials")
    book = codebook if codebook is not None else load_codebook()
    codes = {code.id: (area, code) for area, _, code in book.codes()}
    excerpts = store.excerpts()
    # Latest codebook version's suggestion per (unit, code).
    suggestions = store._frame(
        "SELECT unit_id, code_id, score, evidence FROM ("
        " SELECT *, ROW_NUMBER() OVER (PARTITION BY unit_id, code_id"
        "  ORDER BY created_at DESC, codebook_version DESC) AS rank FROM suggestions)"
        " WHERE rank = 1"
    )
    current = store._current(coder_s)
    suggested = {(r.unit_id, r.code_id): r for r in suggestions.itertuples(index=False)}
    keys_by_unit: dict[str, set[str]] = {}
    for unit_id, code_id in list(suggested) + list(current):
        keys_by_unit.setdefault(unit_id, set()).add(code_id)
    rows = []
    for unit in excerpts.itertuples(index=False):
        unit_codes = sorted(keys_by_unit.get(unit.unit_id, set())) or [""]
        for code_id in unit_codes:
            sug = suggested.get((unit.unit_id, code_id))
            action, memo = current.get((unit.unit_id, code_id), ("", None))
            _area, code = codes.get(code_id, (None, None))
            rows.append({
                "unit_id": unit.unit_id,
                "post_id": _text(unit.post_id) or "",
                "text": "" if _clean(unit.text) is None else unit.text,
                "code_id": code_id,
                "code_name": code.name if code else "",
                "definition": code.definition if code else "",
                "suggested": "yes" if sug is not None else "no",
                "score": "" if sug is None or sug.score is None or pd.isna(sug.score) else f"{sug.score:g}",
                "evidence": _evidence_text(sug.evidence) if sug is not None else "",
                "decision": action,
                "memo": memo or "",
            })
    frame = pd.DataFrame(rows, columns=SHEET_COLUMNS)
    with OutputSet() as outputs:
        _, temp = outputs.file(path)
        if fmt == "csv":
            for column in _READ_ONLY_COLUMNS:
                frame[column] = [spreadsheet_safe(value) for value in frame[column]]
            # utf-8-sig: Excel opens non-ASCII text correctly only with the BOM.
            frame.to_csv(temp, index=False, encoding="utf-8-sig")
        else:
            _write_xlsx(frame, temp, book)
    return len(frame)


def _write_xlsx(frame: pd.DataFrame, temp: Path, book: Codebook) -> None:
    """The sheet as .xlsx: every cell text (never a formula), drop-downs, a codebook tab."""
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    codebook_rows = [{"code_id": code.id, "name": code.name, "area": area.name, "kind": code.kind,
                      "polarity": code.polarity, "definition": code.definition, "include": code.include,
                      "exclude": code.exclude} for area, _, code in book.codes()]
    # The temporary name has no .xlsx suffix, so the engine is named explicitly.
    with pd.ExcelWriter(temp, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name="coding")
        pd.DataFrame(codebook_rows, columns=CODEBOOK_SHEET_COLUMNS).to_excel(
            writer, index=False, sheet_name="codebook")
        for sheet in writer.sheets.values():
            for row in sheet.iter_rows(min_row=2):
                for cell in row:
                    if cell.data_type == "f":  # a string starting "=": post text, not a formula
                        cell.data_type = "s"
            sheet.freeze_panes = "A2"
        sheet = writer.sheets["coding"]

        def column(name: str) -> str:
            return get_column_letter(SHEET_COLUMNS.index(name) + 1)

        decision = DataValidation(
            type="list", formula1='"' + ",".join(ACTIONS) + '"', allow_blank=True,
            showErrorMessage=True, errorTitle="Not a decision",
            error=f"Choose {', '.join(ACTIONS)}, or leave the cell blank.",
            showInputMessage=True, promptTitle="Decision",
            prompt="accept or reject a suggested code; add a code that was not suggested; remove one you added")
        decision.add(f"{column('decision')}2:{column('decision')}{_XLSX_MAX_ROW}")
        sheet.add_data_validation(decision)
        if codebook_rows:  # a drop-down of the codebook's codes; other ids (an older codebook's) stay allowed
            code = DataValidation(type="list", formula1=f"codebook!$A$2:$A${len(codebook_rows) + 1}",
                                  allow_blank=True, showErrorMessage=False)
            code.add(f"{column('code_id')}2:{column('code_id')}{_XLSX_MAX_ROW}")
            sheet.add_data_validation(code)
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(SHEET_COLUMNS))}{len(frame) + 1}"
        widths = {"text": 60, "definition": 50, "evidence": 30, "memo": 40, "code_name": 28}
        for name in SHEET_COLUMNS:
            sheet.column_dimensions[column(name)].width = widths.get(name, 12)


def _read_sheet(path: Path) -> pd.DataFrame:
    fmt = _sheet_format(path)
    if not path.exists():
        raise PostkitError("the coding sheet does not exist", path=path, fix="check the file name")
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        else:
            with pd.ExcelFile(path, engine="openpyxl") as workbook:
                # The decisions are on the "coding" tab (first as exported; a coder may reorder tabs).
                name = "coding" if "coding" in workbook.sheet_names else workbook.sheet_names[0]
                frame = pd.read_excel(workbook, sheet_name=name, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise PostkitError("the coding sheet is empty", path=path, fix="export it again") from None
    except UnicodeDecodeError:
        raise PostkitError("the coding sheet is not UTF-8 text", path=path, fix="re-save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, ValueError, zipfile.BadZipFile) as exc:
        raise PostkitError(f"cannot read the coding sheet ({exc})", path=path) from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in ("unit_id", "code_id", "decision") if c not in frame.columns]
    if missing:
        raise PostkitError(
            f"the coding sheet lacks column(s) {', '.join(missing)}",
            path=path,
            fix="export a fresh sheet with export_sheet and fill that in",
        )
    return frame


def import_sheet(store: CodingStore, path: str | Path, coder: str) -> int:
    """Record the decisions a coder filled into a sheet; return how many were new.

    All rows are validated first and any problem aborts the whole import with
    one error listing every bad row (sheet row numbers, header = row 1), so a
    sheet is never half-imported.  Blank decisions are skipped, and a decision
    identical (action and memo) to the coder's current one is skipped, so
    importing the same sheet twice records nothing the second time.
    """
    path = Path(path)
    coder_s = _text(coder)
    if coder_s is None:
        raise PostkitError("the coder name is empty", fix="pass the coder's name or initials")
    frame = _read_sheet(path)
    has_memo = "memo" in frame.columns
    known = store._known_units()
    problems: list[str] = []
    wanted: dict[tuple[str, str], tuple[int, str, str | None]] = {}
    for index, row in enumerate(frame.to_dict("records")):
        sheet_row = index + 2
        decision = (_text(row.get("decision")) or "").lower()
        unit_id = _text(row.get("unit_id"))
        code_id = _text(row.get("code_id"))
        memo = _text(row.get("memo")) if has_memo else None
        if unit_id is None:
            if decision or code_id:
                problems.append(f"row {sheet_row}: unit_id is empty")
            continue  # fully blank line
        if unit_id not in known:
            problems.append(f"row {sheet_row}, column 'unit_id': not an excerpt of this store")
            continue
        if not decision:
            continue
        if decision not in ACTIONS:
            problems.append(f"row {sheet_row}, column 'decision': not one of {', '.join(ACTIONS)} (or blank)")
            continue
        if code_id is None:
            problems.append(f"row {sheet_row}, column 'code_id': empty, but the row has a decision")
            continue
        key = (unit_id, code_id)
        if key in wanted and wanted[key][1:] != (decision, memo):
            problems.append(f"row {sheet_row}: conflicts with row {wanted[key][0]} (same unit and code, "
                            "another decision or memo)")
            continue
        wanted.setdefault(key, (sheet_row, decision, memo))
    if problems:
        raise PostkitError(
            f"{len(problems)} row(s) of the coding sheet are invalid; nothing was imported",
            path=path,
            fix="correct the listed rows and import again",
            details=problems,
        )
    now = _utc_iso()
    added = 0
    with store._write() as conn:
        current = store._current(coder_s)  # read under the lock: no race with another import
        for (unit_id, code_id), (_row, decision, memo) in wanted.items():
            if current.get((unit_id, code_id)) == (decision, memo):
                continue
            store._append_decision(conn, unit_id, code_id, coder_s, decision, memo, now,
                                   store._default_version(unit_id, code_id))
            added += 1
    return added


def codings_from_sheets(paths: Sequence[str | Path], coders: Sequence[str]) -> pd.DataFrame:
    """Codings (unit_id, coder, code_id, applied) from filled coding sheets, one per coder.

    For teams that code in spreadsheets and never share a store: a row's decision says
    whether the code applies (accept/add) or not (reject/remove); blank rows say nothing.
    """
    if len(paths) != len(coders):
        raise PostkitError(f"{len(paths)} sheets but {len(coders)} coder names",
                           fix="give one coder name per sheet, in the same order (--coders A,B)")
    rows = []
    for path, coder in zip(paths, coders):
        frame = _read_sheet(Path(path))
        for number, (unit, code, decision) in enumerate(
                zip(frame["unit_id"], frame["code_id"], frame["decision"]), start=2):
            decision = str(decision).strip().lower()
            if not decision:
                continue
            if decision not in ACTIONS:
                raise PostkitError(f"unknown decision '{decision}'", path=path, row=number, column="decision",
                                   fix=f"use one of {', '.join(ACTIONS)} or leave it blank")
            rows.append({"unit_id": str(unit).strip(), "coder": coder, "code_id": str(code).strip(),
                         "applied": decision in APPLIED_ACTIONS})
    return pd.DataFrame(rows, columns=["unit_id", "coder", "code_id", "applied"])
