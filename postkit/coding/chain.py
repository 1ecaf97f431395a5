"""Tamper evidence for the coding store: one hash chain over every human decision and review.

Why: the store's append-only triggers stop a client from rewriting history by mistake,
but anyone holding the file can ``DROP TRIGGER`` and then edit, delete or insert rows
(with a back-dated time) — and agreement statistics or quote approvals would silently
change. A hash chain makes such edits visible, like the consent audit log
(:mod:`postkit.audit`), whose canonical JSON and :func:`~postkit.audit.line_hash` it reuses.

How:

* **One chain across both tables** (``decisions`` and ``reviews``), in the order rows
  were recorded, so a study has *one* head to write down. Each row stores ``seq``
  (1, 2, … across both tables), ``prev`` (the hash of row ``seq - 1``; all zeros,
  :data:`~postkit.audit.GENESIS`, for the first) and ``hash`` = ``line_hash`` of
  ``{"table": …, every content column (see :data:`CHAINED`), "seq", "prev"}``. The
  table name is hashed too, so a row cannot be moved from one table to the other.
* **recorded_at is set by the store**, never by a caller, and never decreases along
  the chain (a clock that stepped back is clamped to the previous row's time). A row
  inserted later with an earlier time is therefore visible as back-dated. ``decided_at``
  may be given by a caller (decisions made offline) but never later than ``recorded_at``.
* **The head is repeated** in the one-row ``chain`` table, so deleting the last rows
  (which leaves an intact but shorter chain) is noticed too.
* **Triggers guard the chain**: the append-only triggers, plus ones refusing an insert
  that does not continue the chain and a head that moves backwards. The verifier
  checks that each is present and unchanged and that no other trigger was added
  (a ``RAISE(IGNORE)`` trigger could silently drop new decisions).

What this detects, and what it does not. Within the file, :func:`verify_chain` finds
edited rows, deleted rows (in the middle, and at the end through the head record),
inserted, duplicated or reordered rows, back-dated and forward-dated rows, and dropped,
changed or added triggers. It cannot detect a *full rewrite* by someone who recomputes
every hash and the head record, because they live in the same file. Only a head
recorded elsewhere (``postkit code verify`` and ``code progress`` print it; pass it back
with ``--expect-head``), or signed by someone the attacker is not, defends against that.
The "later than the file's modification time" check is a sanity check only: whoever can
edit the file can also set its mtime. Excerpts and suggestions are not chained: they are
machine output, made again from the tagged file whose sha256 the run manifest records.

Stores written by schema 1 (no chain) are chained when first opened for writing:
their rows in rowid order, decisions first, then reviews, all with the migration time
as ``recorded_at``. Those rows are only as trustworthy as the file was at that moment,
and the verifier says so.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Mapping

from ..audit import GENESIS, line_hash
from ..errors import PostkitError

__all__ = [
    "APPEND_ONLY",
    "CHAINED",
    "EXPECTED_TRIGGERS",
    "StoreVerifyResult",
    "add_chain",
    "append",
    "chain_problem_on_open",
    "head",
    "row_hash",
    "statements",
    "trigger_problems",
    "verify_chain",
]

# The columns each chained row's hash covers (besides "table", "seq" and "prev").
CHAINED: dict[str, tuple[str, ...]] = {
    "decisions": ("id", "unit_id", "code_id", "coder", "action", "memo", "decided_at", "codebook_version",
                  "recorded_at"),
    "reviews": ("id", "kind", "item_id", "reviewer", "action", "text", "scores", "note", "decided_at",
                "recorded_at"),
}
# A row recorded later than the file's last modification is impossible, but clocks of a
# machine and its file server may differ a little; a minute of forward-dating harms no one.
FUTURE_TOLERANCE_S = 60.0
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\Z")  # what CodingStore writes

# Schema 1's append-only triggers, unchanged in schema 2 (the verifier compares the text).
APPEND_ONLY = """
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS reviews_no_update BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
CREATE TRIGGER IF NOT EXISTS reviews_no_delete BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
"""

# Schema 1 -> 2. Columns are added (not declared NOT NULL: ALTER TABLE cannot), so a new
# store is made by the same steps as a migrated one and both have the same schema.
_CHAIN_SCHEMA = """
ALTER TABLE decisions ADD COLUMN recorded_at TEXT;
ALTER TABLE decisions ADD COLUMN seq INTEGER;
ALTER TABLE decisions ADD COLUMN prev TEXT;
ALTER TABLE decisions ADD COLUMN hash TEXT;
ALTER TABLE reviews ADD COLUMN recorded_at TEXT;
ALTER TABLE reviews ADD COLUMN seq INTEGER;
ALTER TABLE reviews ADD COLUMN prev TEXT;
ALTER TABLE reviews ADD COLUMN hash TEXT;
CREATE TABLE chain (
    one              INTEGER PRIMARY KEY CHECK (one = 1),
    head_seq         INTEGER NOT NULL,
    head_hash        TEXT NOT NULL,
    head_recorded_at TEXT,
    migrated_rows    INTEGER NOT NULL,  -- rows chained by the migration from schema 1
    migrated_from    INTEGER,
    migrated_at      TEXT
);
"""

_CHAIN_INDEXES = """
CREATE UNIQUE INDEX decisions_by_seq ON decisions (seq);
CREATE UNIQUE INDEX reviews_by_seq ON reviews (seq);
"""

# Friction for hand-written SQL: an insert must continue the chain, the head only moves on.
_CHAIN_GUARDS = """
CREATE TRIGGER decisions_chained BEFORE INSERT ON decisions
WHEN NEW.seq IS NOT (SELECT head_seq + 1 FROM chain) OR NEW.prev IS NOT (SELECT head_hash FROM chain)
  OR NEW.hash IS NULL OR NEW.recorded_at IS NULL
BEGIN SELECT RAISE(ABORT, 'decisions are hash-chained: append them through postkit'); END;
CREATE TRIGGER reviews_chained BEFORE INSERT ON reviews
WHEN NEW.seq IS NOT (SELECT head_seq + 1 FROM chain) OR NEW.prev IS NOT (SELECT head_hash FROM chain)
  OR NEW.hash IS NULL OR NEW.recorded_at IS NULL
BEGIN SELECT RAISE(ABORT, 'reviews are hash-chained: append them through postkit'); END;
CREATE TRIGGER chain_forward_only BEFORE UPDATE ON chain
WHEN NEW.head_seq <= OLD.head_seq OR NEW.one IS NOT OLD.one OR NEW.migrated_rows IS NOT OLD.migrated_rows
  OR NEW.migrated_from IS NOT OLD.migrated_from OR NEW.migrated_at IS NOT OLD.migrated_at
BEGIN SELECT RAISE(ABORT, 'the chain head only moves forward'); END;
CREATE TRIGGER chain_no_delete BEFORE DELETE ON chain
BEGIN SELECT RAISE(ABORT, 'the chain head cannot be deleted'); END;
"""


def statements(script: str) -> list[str]:
    """The statements of a DDL script, to run one by one (``executescript`` would commit)."""
    return [s.strip() for s in script.split(";\n") if s.strip()]


def _normal(sql: str) -> str:
    """Trigger text as SQLite stores it (without IF NOT EXISTS), whitespace collapsed."""
    sql = re.sub(r"\s+", " ", sql).strip().rstrip(";").strip()
    return re.sub(r"^CREATE TRIGGER IF NOT EXISTS ", "CREATE TRIGGER ", sql, flags=re.IGNORECASE)


def _triggers(script: str) -> dict[str, str]:
    found = {}
    for sql in statements(script):
        name = re.match(r"CREATE TRIGGER (?:IF NOT EXISTS )?(\w+)", sql)
        assert name is not None
        found[name.group(1)] = _normal(sql)
    return found


_V1_TRIGGERS = _triggers(APPEND_ONLY)
EXPECTED_TRIGGERS = _V1_TRIGGERS | _triggers(_CHAIN_GUARDS)


def row_hash(table: str, row: Mapping[str, Any]) -> str:
    """The definition: ``line_hash`` of the row's table name, content columns, seq and prev."""
    content = {"table": table, **{name: row[name] for name in CHAINED[table]}, "seq": row["seq"],
               "prev": row["prev"]}
    return line_hash(content)


def trigger_problems(conn: sqlite3.Connection, expected: Mapping[str, str] = EXPECTED_TRIGGERS) -> list[str]:
    """Each safeguard trigger that is missing or changed, and each trigger nobody expects."""
    found = {name: (table, _normal(sql or "")) for name, table, sql in
             conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")}
    problems = []
    for name, sql in expected.items():
        if name not in found:
            problems.append(f"trigger {name} was dropped — a safeguard of the store was removed by hand")
        elif found[name][1] != sql:
            problems.append(f"trigger {name} was changed — a safeguard of the store was altered by hand")
    for name, (table, _sql) in found.items():
        if name not in expected:
            problems.append(f"unknown trigger {name} on table {table} — added by hand; it could alter or drop "
                            "new rows")
    return problems


def add_chain(conn: sqlite3.Connection, now: str, from_version: int | None) -> int:
    """Schema 1 -> 2 inside the caller's write transaction; returns the number of rows chained.

    Existing rows are chained in rowid order, decisions first, then reviews, with ``now``
    as their ``recorded_at``. ``from_version`` is None for a store created just now.
    Refuses a schema-1 store whose append-only triggers were already tampered with:
    chaining it would bless whatever was done to it.
    """
    problems = trigger_problems(conn, _V1_TRIGGERS)
    if problems:
        raise PostkitError(
            f"cannot add the hash chain: {problems[0]}",
            fix="restore the coding store from a backup; postkit will not vouch for rows that may have been edited",
        )
    for statement in statements(_CHAIN_SCHEMA):
        conn.execute(statement)
    # Filling the new columns is an UPDATE, which the append-only triggers forbid: lift
    # them for this one transaction and put back the very same text.
    for table in CHAINED:
        conn.execute(f"DROP TRIGGER {table}_no_update")
    seq, prev = 0, GENESIS
    for table, columns in CHAINED.items():
        read = [c for c in columns if c != "recorded_at"]
        for values in conn.execute(f"SELECT {', '.join(read)} FROM {table} ORDER BY id").fetchall():
            seq += 1
            row = dict(zip(read, values)) | {"recorded_at": now, "seq": seq, "prev": prev}
            prev = row_hash(table, row)
            conn.execute(f"UPDATE {table} SET recorded_at = ?, seq = ?, prev = ?, hash = ? WHERE id = ?",
                         (now, seq, row["prev"], prev, row["id"]))
    for sql in statements(APPEND_ONLY):
        if "_no_update" in sql:
            conn.execute(sql)
    for statement in statements(_CHAIN_INDEXES) + statements(_CHAIN_GUARDS):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO chain (one, head_seq, head_hash, head_recorded_at, migrated_rows, migrated_from, migrated_at)"
        " VALUES (1, ?, ?, ?, ?, ?, ?)",
        (seq, prev, now if seq else None, seq, from_version, None if from_version is None else now),
    )
    return seq


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """(seq, hash) of the last chained row, as the head record says; (0, GENESIS) when empty."""
    seq, hash_ = conn.execute("SELECT head_seq, head_hash FROM chain").fetchone()
    return int(seq), str(hash_)


def append(conn: sqlite3.Connection, table: str, values: Mapping[str, Any], clock: str) -> int:
    """Insert one chained row (inside the caller's write transaction) and move the head; returns its id.

    ``values`` holds the content columns except id and recorded_at; a missing or None
    ``decided_at`` becomes the recorded time. ``clock`` is the store's "now".
    """
    head_seq, head_hash, head_time = conn.execute(
        "SELECT head_seq, head_hash, head_recorded_at FROM chain").fetchone()
    recorded = max(clock, head_time) if head_time else clock  # never earlier than the row before
    row_id = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]
    row = {**values, "id": row_id, "recorded_at": recorded, "seq": head_seq + 1, "prev": head_hash}
    if row.get("decided_at") is None:
        row["decided_at"] = recorded
    row["hash"] = row_hash(table, row)
    names = [*CHAINED[table], "seq", "prev", "hash"]
    conn.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                 [row[n] for n in names])
    conn.execute("UPDATE chain SET head_seq = ?, head_hash = ?, head_recorded_at = ?",
                 (row["seq"], row["hash"], recorded))
    return int(row_id)


def _tail(conn: sqlite3.Connection) -> tuple[int, str]:
    """(seq, hash) of the row with the highest seq in either table; (0, GENESIS) when none."""
    best = (0, GENESIS)
    for table in CHAINED:
        row = conn.execute(f"SELECT seq, hash FROM {table} WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
                           ).fetchone()
        if row is not None and isinstance(row[0], int) and row[0] > best[0]:
            best = (row[0], str(row[1]))
    return best


def chain_problem_on_open(conn: sqlite3.Connection) -> str | None:
    """The cheap checks a writer makes before appending: safeguards intact, head matches the last row.

    (The full walk is :func:`verify_chain`; a writer must not extend a chain whose end
    was cut off or whose triggers were removed.)
    """
    problems = trigger_problems(conn)
    if problems:
        return problems[0]
    if _tail(conn) != head(conn):
        return "the last rows of the hash chain do not match its head record — rows were deleted or edited"
    return None


# -- verification -------------------------------------------------------------------


@dataclass
class StoreVerifyResult:
    """The outcome of :func:`verify_chain`; ``problems[0]`` is the first break in the chain."""

    path: Path
    schema: int
    rows: dict[str, int] = field(default_factory=dict)  # chained rows read per table
    head: str | None = None  # the last row's hash, when the chain is intact
    head_seq: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> str | None:
        return self.problems[0] if self.problems else None

    def render(self) -> str:
        """What ``postkit code verify`` prints."""
        if not self.ok:
            lines = [f"FAILED: {self.path}: {self.problems[0]}"]
            lines += [f"  also: {problem}" for problem in self.problems[1:]]
        else:
            decisions, reviews = self.rows.get("decisions", 0), self.rows.get("reviews", 0)
            lines = [
                f"OK: {self.path} is intact: {decisions:,} decisions and {reviews:,} reviews in one hash chain, "
                "safeguard triggers in place",
                f"Head: {self.head} (seq {self.head_seq})",
                "  (record the head elsewhere; `postkit code verify STORE --expect-head HEAD` then also catches "
                "a store rewritten from scratch)",
            ]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)


def _when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rows(conn: sqlite3.Connection) -> list[tuple[str, dict[str, Any]]]:
    """Every chained row of both tables, in chain order (rows without a seq last)."""
    rows = []
    for table, columns in CHAINED.items():
        names = [*columns, "seq", "prev", "hash"]
        cursor = conn.execute(f"SELECT {', '.join(names)} FROM {table}")
        rows += [(table, dict(zip(names, values))) for values in cursor]
    order = {table: n for n, table in enumerate(CHAINED)}

    def key(item: tuple[str, dict[str, Any]]) -> tuple[Any, ...]:
        table, row = item
        seq, row_id = row["seq"], row["id"]
        placed = type(seq) is int
        return (not placed, seq if placed else 0, order[table], row_id if type(row_id) is int else 0)

    return sorted(rows, key=key)


def _walk(rows: list[tuple[str, dict[str, Any]]], migrated: int, reference: datetime | None,
          counts: dict[str, int]) -> tuple[str | None, int, str]:
    """Check each row in chain order; returns (first problem, last seq, last hash)."""
    expected, prev, prev_time = 1, GENESIS, None
    prev_where = "the start"
    last_id = {table: 0 for table in CHAINED}
    for table, row in rows:
        seq, row_id = row["seq"], row["id"]
        where = f"{table} row id {row_id} (seq {seq})"
        if type(seq) is not int:
            return (f"{table} row id {row_id}: not in the hash chain (it has no seq) — inserted by hand",
                    expected - 1, prev)
        if row["hash"] != row_hash(table, row):
            return f"{where}: edited — its hash does not match its content", expected - 1, prev
        if seq != expected:
            if seq > expected:
                gap = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
                return f"{where}: expected seq {expected} — {gap} deleted before it", expected - 1, prev
            return f"{where}: seq {seq} appears twice — a row was inserted or duplicated", expected - 1, prev
        if row["prev"] != prev:
            return (f"{where}: prev does not match the hash of {prev_where} — that row was edited and its hash "
                    "recomputed, or a row was removed or inserted here", expected - 1, prev)
        if type(row_id) is not int or row_id <= last_id[table]:
            return (f"{where}: comes after {table} row id {last_id[table]} in the chain but has a smaller id — "
                    "rows were reordered", expected - 1, prev)
        recorded, decided = row["recorded_at"], row["decided_at"]
        if not isinstance(recorded, str) or not _TIME.match(recorded):
            return f"{where}: recorded_at is not a time postkit writes — edited", expected - 1, prev
        if prev_time is not None and recorded < prev_time:
            return (f"{where}: back-dated — recorded at {recorded}, before {prev_where} ({prev_time})",
                    expected - 1, prev)
        if reference is not None and (_when(recorded) - reference).total_seconds() > FUTURE_TOLERANCE_S:
            return (f"{where}: recorded at {recorded}, after the file was last modified ({_iso(reference)}) — "
                    "forward-dated", expected - 1, prev)
        if seq > migrated and isinstance(decided, str) and _TIME.match(decided) and decided > recorded:
            return (f"{where}: decided at {decided}, after it was recorded ({recorded}) — forward-dated",
                    expected - 1, prev)
        counts[table] += 1
        last_id[table], prev, prev_time, prev_where = row_id, row["hash"], recorded, where
        expected += 1
    return None, expected - 1, prev


def verify_chain(conn: sqlite3.Connection, path: Path, schema: int, *, expected_head: str | None = None,
                 modified: datetime | None = None) -> StoreVerifyResult:
    """Walk the chain of an open store (schema 2) and check its triggers and head record.

    ``modified`` is the file's last modification time (rows recorded after it are
    forward-dated); ``expected_head`` a head recorded elsewhere. Reports the first break
    in the chain and every trigger problem; never raises for a tampered store.
    """
    result = StoreVerifyResult(path, schema, rows={table: 0 for table in CHAINED})
    info = conn.execute("SELECT head_seq, head_hash, migrated_rows, migrated_from, migrated_at FROM chain").fetchall()
    if len(info) != 1:
        result.problems.append("the chain's head record is missing — it was deleted by hand")
        result.problems += trigger_problems(conn)
        return result
    head_seq, head_hash, migrated, migrated_from, migrated_at = info[0]
    migrated = migrated if type(migrated) is int else 0
    problem, last_seq, last_hash = _walk(_rows(conn), migrated, modified, result.rows)
    if problem is None and (last_seq, last_hash) != (head_seq, head_hash):
        if type(head_seq) is int and head_seq > last_seq:
            gap = f"seq {head_seq}" if head_seq == last_seq + 1 else f"seq {last_seq + 1}..{head_seq}"
            problem = f"the last row(s) were deleted: the chain ends at seq {last_seq} but its head record names {gap}"
        else:
            problem = (f"the chain's head record (seq {head_seq}) does not match its last row (seq {last_seq}) — "
                       "the head record was edited")
    if problem is not None:
        result.problems.append(problem)
    else:
        result.head, result.head_seq = last_hash, last_seq
        if expected_head is not None and last_hash != expected_head.strip().lower():
            result.problems.append(
                f"head {last_hash} is not the expected {expected_head.strip()} — rows were deleted from the end or "
                "added, the store was rewritten, or this is another study's store")
    result.problems += trigger_problems(conn)
    if migrated:
        result.notes.append(
            f"the first {migrated:,} row(s) were chained when the store was migrated from schema {migrated_from} "
            f"at {migrated_at}; they are only as trustworthy as the file was then")
    return result
