"""``DATA.md``: the data dictionary of a run folder, one line per column of every table it holds.

Someone handed a run folder (a co-author, a data archive, a reviewer) needs to know what
each column means without reading postkit's code: is ``user_id`` the forum's id or a
pseudonym, is ``text`` still identifying, what is ``sample_rank``? The pipeline writes
``DATA.md`` at the end of each run (:func:`write_data_dictionary`), and records it in the
manifest like the stages' files.

The columns come from the files themselves (the Arrow schema of Parquet and ``datasets``
tables, the header and first values of CSV and JSON Lines, the SQLite schema of the coding
store), so the dictionary never lists a column the run did not write. Their meanings come
from :data:`MEANINGS` below, per stage where the same name means different things
(``text`` before and after de-identification); a column postkit did not make is marked as
passed through from the input.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterable, Mapping

DATA_DICTIONARY = "DATA.md"
PASSED_THROUGH = "From the input, passed through unchanged (postkit did not make this column)."

# (stage or "*", column) → meaning. The stage-specific entry wins over "*".
MEANINGS: dict[tuple[str, str], str] = {
    ("*", "post_id"): "The post's id, as in the input posts file.",
    ("*", "forum"): "The forum (board, sub-forum) the post was written in, as in the input.",
    ("*", "thread_id"): "The thread the post belongs to, as in the input.",
    ("*", "created_at"): "When the post was written, as in the input (ISO 8601).",
    ("raw", "user_id"): "The author's id as in the input: NOT pseudonymised (no deid stage ran before this one); "
                        "do not share this table.",
    ("raw", "text"): "The post's text as written: NOT de-identified (no deid stage ran before this one); "
                     "do not share this table.",
    ("*", "user_id"): "The author's pseudonym: a keyed hash (HMAC-SHA256) of the forum's user id. The same author "
                      "has the same pseudonym throughout the run; the key is not in the run folder.",
    ("*", "text"): "The post's text, de-identified: names, usernames, contact details, places, dates, ages and "
                   "other identifiers replaced as the deid stage's operator says (e.g. [PERSON]).",
    ("*", "sample_rank"): "The post's place in its stratum's draw: 1 is the post with the smallest keyed hash "
                          "(HMAC-SHA256 keyed by the seed) of its post_id.",
    ("*", "word_count"): "Words in the text: whitespace-separated tokens with at least one letter or digit.",
    ("*", "matched_phrase"): "The first sampling phrase the text contains (what made it eligible).",
    ("*", "suggestions"): "The tagger's code suggestions for the post: a list of records (code_id, area, polarity, "
                          "score, rule_score, negated, hedged, evidence spans with offsets, features). Suggestions "
                          "only: a coder's decision is what counts.",
    ("*", "suggested_area"): "The programme-theory area the tagger reads the post as ('none' when no code applies).",
    ("*", "suggested_polarity"): "Whether the suggested area is present (positive) or negated/absent.",
    ("*", "codebook_version"): "sha256 of the codebook the suggestions (or decision) were made against.",
    ("*", "ranker_version"): "sha256 of the suggestion ranker's weights.",
    # deid/spans.jsonl
    ("deid", "column"): "Which text column the spans were found in.",
    ("deid", "spans"): "What was replaced: a list of {start, end, entity_type, score, recognizer}, character "
                       "offsets into the ORIGINAL text (which is not in this folder).",
    # disguise/quotes.csv and suggestions.jsonl
    ("disguise", "quote_id"): "The quote's id.",
    ("disguise", "source_post_id"): "The post_id the quote was taken from.",
    ("disguise", "text"): "The quote as the researchers chose it (verbatim from the post).",
    ("disguise", "verdict"): "How findable the quote is as written: traceable, at risk or disguised "
                             "(search by an attacker over the whole forum).",
    ("disguise", "source_rank"): "Where the quote's source post ranks when the quote is searched for (1 = found first).",
    ("disguise", "longest_shared_run"): "The longest run of words the quote shares with its source post.",
    ("disguise", "candidates"): "Suggested rewordings, each with its own verdict, source_rank, shared runs, meaning "
                                "score and the edits made.",
    # tag/coding.sqlite (looked up as store/TABLE, then store)
    ("store", "unit_id"): "The excerpt (unit of coding) the row is about.",
    ("store", "start"): "Where the excerpt starts in its post's text (character offset).",
    ("store", "end"): "Where the excerpt ends in its post's text (character offset, exclusive).",
    ("store", "added_at"): "When the excerpt was loaded into the store (UTC).",
    ("store", "code_id"): "A code of the codebook.",
    ("store", "score"): "The tagger's confidence in the suggestion (0–1).",
    ("store", "evidence"): "JSON list of {start, end, text}: the words that triggered the suggestion.",
    ("store/suggestions", "created_at"): "When the suggestion was stored (UTC).",
    ("store/reviews", "text"): "The exact text the reviewer decided on (for quotes: the disguised wording).",
    ("store", "id"): "Row number (append-only: rows are never changed or deleted).",
    ("store", "coder"): "The coder's name, normalised (case-folded, invisible characters removed).",
    ("store", "action"): "The decision: accept/add (the code applies), reject/remove (it does not); for quote "
                       "reviews approve/reject.",
    ("store", "memo"): "The coder's note on the decision (free text).",
    ("store", "decided_at"): "When the decision was made (UTC).",
    ("store", "recorded_at"): "When the row was written (UTC).",
    ("store", "seq"): "Position in the store's hash chain.",
    ("store", "prev"): "Hash of the previous row in the chain.",
    ("store", "hash"): "This row's hash: it covers the row and prev, so an edited or deleted row is detected.",
    ("store", "kind"): "What is reviewed (quote: a disguised quote for publication).",
    ("store", "item_id"): "The reviewed item's id (for quotes, the quote_id).",
    ("store", "reviewer"): "The reviewer's name, normalised.",
    ("store", "scores"): "JSON: the check's scores of the approved text (verdict, source_rank, …).",
    ("store", "note"): "The reviewer's note (free text).",
    ("store", "one"): "Always 1 (a one-row table).",
    ("store", "head_seq"): "The chain's last position.",
    ("store", "head_hash"): "The chain's last hash: record it elsewhere to detect a rewritten store.",
    ("store", "head_recorded_at"): "When the last row was written.",
    ("store", "migrated_rows"): "Rows that existed before the store got its hash chain.",
    ("store", "migrated_from"): "The schema version the store was migrated from.",
    ("store", "migrated_at"): "When the store got its hash chain.",
}

# What each stage's files hold, for the heading above each table.
FILE_MEANINGS: dict[tuple[str, str], str] = {
    ("consent", "posts"): "posts whose authors consented",
    ("deid", "posts"): "the consented posts, de-identified",
    ("deid", "spans"): "one line per text: where identifiers were found (offsets only)",
    ("sample", "posts"): "the sample: per-stratum random draw of eligible posts",
    ("tag", "posts"): "the sampled posts with code suggestions",
    ("tag", "store"): "the coding store: excerpts, suggestions and coders' and reviewers' decisions",
    ("disguise", "quotes"): "the quotes chosen for disguise",
    ("disguise", "suggestions"): "one line per quote: its verdict and suggested rewordings",
}
# Files that are not tables (logs, keys, reports, manifests) are described elsewhere.
_TABLE_LABELS = {"posts", "spans", "quotes", "suggestions", "store"}


def meaning(stage: str, column: str, deidentified: bool = True) -> str:
    """What ``column`` means in ``stage``'s output; the pass-through note when postkit did not make it.

    ``deidentified`` says whether a deid stage ran before (or is) this stage: before it,
    ``user_id`` and ``text`` are the forum's own.
    """
    raw = () if deidentified else (("raw", column),)
    family = (stage.split("/")[0], column)  # "store/reviews" falls back to "store"
    for key in (*raw, (stage, column), family, ("*", column)):
        if key in MEANINGS:
            return MEANINGS[key]
    return PASSED_THROUGH


def _arrow_type(kind: Any) -> str:
    import pyarrow as pa

    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "text"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind):
        return "number"
    if pa.types.is_boolean(kind):
        return "true/false"
    if pa.types.is_timestamp(kind):
        return "timestamp"
    if pa.types.is_dictionary(kind):
        return "category"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = kind.value_type
        if pa.types.is_struct(inner):
            return "list of records"
        return f"list of {_arrow_type(inner)}"
    if pa.types.is_struct(kind):
        return "record"
    return str(kind)


def _value_type(values: Iterable[Any]) -> str:
    """A JSON Lines or CSV column's type, from its first non-empty values."""
    for value in values:
        if value is None or (isinstance(value, float) and value != value) or value == "":
            continue
        if isinstance(value, bool):
            return "true/false"
        if isinstance(value, int):
            return "integer"
        if isinstance(value, float):
            return "number"
        if isinstance(value, list):
            return "list of records" if value and isinstance(value[0], dict) else "list"
        if isinstance(value, dict):
            return "record"
        return "text"
    return "text (empty)"


def table_columns(path: Path) -> list[tuple[str, str]]:
    """(column, type) of a table postkit wrote, read from the file (not from what it should hold)."""
    from ..io import detect_format, iter_json_lines, open_table

    fmt = detect_format(path)
    reader = open_table(path)
    if reader.schema is not None:
        return [(f.name, _arrow_type(f.type)) for f in reader.schema]
    if fmt == "jsonl":
        first: list[dict[str, Any]] = []
        for _number, record in iter_json_lines(path):
            first.append(record)
            if len(first) >= 50:
                break
        return [(c, _value_type(r.get(c) for r in first)) for c in reader.columns]
    return [(c, "text") for c in reader.columns]  # CSV: every cell is text until read


def sqlite_columns(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Each table of a SQLite file and its (column, declared type), read-only."""
    connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        tables = [name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        return {table: [(row[1], {"TEXT": "text", "INTEGER": "integer", "REAL": "number"}.get(row[2], row[2] or "any"))
                        for row in connection.execute(f'PRAGMA table_info("{table}")')]
                for table in tables}
    finally:
        connection.close()


def _cell(name: str) -> str:
    """A column name inside a Markdown table cell and code span: pipes and backticks cannot end either."""
    return name.replace("|", "\\|").replace("`", "'")


def _lines(heading: str, stage: str, columns: list[tuple[str, str]], deidentified: bool) -> list[str]:
    lines = [heading, "", "| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{_cell(name)}` | {kind} | {meaning(stage, name, deidentified)} |" for name, kind in columns]
    return lines + [""]


def build_data_dictionary(run_folder: str | Path, stages: Iterable[Mapping[str, Any]], *, study: str = "") -> str:
    """The Markdown text of ``DATA.md`` for the tables ``stages`` (the manifest's stage entries) wrote."""
    run_folder = Path(run_folder)
    out = [f"# Data dictionary{f': {study}' if study else ''}", "",
           "One line per column of every table in this run folder, read from the files themselves. "
           "Written by postkit at the end of the run; `manifest.json` records its sha256.", ""]
    deidentified = False
    for stage in stages:
        name = str(stage.get("name"))
        deidentified = deidentified or name == "deid"
        for label, record in (stage.get("files") or {}).items():
            if label not in _TABLE_LABELS:
                continue
            rel = str(record["path"])
            path = run_folder / rel
            about = FILE_MEANINGS.get((name, label), label)
            if label == "store":
                for table, columns in sqlite_columns(path).items():
                    out += _lines(f"## `{rel}`, table `{table}` ({name} stage: {about})", f"store/{table}", columns,
                                  deidentified)
            else:
                out += _lines(f"## `{rel}` ({name} stage: {about})", name, table_columns(path), deidentified)
    return "\n".join(out).rstrip() + "\n"


def write_data_dictionary(run_folder: str | Path, stages: Iterable[Mapping[str, Any]], *, study: str = "") -> Path:
    """Write ``DATA.md`` into ``run_folder`` (a run being built: no other process reads it yet)."""
    path = Path(run_folder) / DATA_DICTIONARY
    path.write_text(build_data_dictionary(run_folder, stages, study=study), encoding="utf-8")
    return path
