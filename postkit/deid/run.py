"""De-identifying a table file: stream batches, analyse in worker processes, write atomically.

Each batch's texts go to a worker (one DeidEngine per process, built once); at most
two batches per worker are in flight, so memory stays flat however large the input.
Batches come back in input order, so the output is identical whatever ``processes``.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from ..errors import PostkitError
from ..hashing import sha256_path
from ..io import DEFAULT_BATCH_SIZE, OutputSet, open_table
from ..pseudonym import PseudonymKey, Pseudonymizer
from ..summary import text_table
from .engine import ENTITY_TYPES, DeidEngine, as_text, merge_findings
from .forums import ForumPseudonyms, generate_forum_pseudonyms, load_forum_pseudonyms
from .operators import OPERATORS, Replacer

REQUIRED = ("post_id", "text")


@dataclass
class DeidSettings:
    """Everything a worker needs to build its engine (picklable)."""

    operator: str = "tag"
    model: str | None = None
    entities: tuple[str, ...] | None = None
    rules_folder: str | None = None
    deny_usernames: tuple[str, ...] = ()
    deny_names: tuple[str, ...] = ()
    forums: ForumPseudonyms | None = None
    locales: tuple[str, ...] | None = None  # locale packs in rules/deid/locales/ (None: the default, uk)


@dataclass
class DeidSummary:
    posts: int = 0
    texts: int = 0
    entities: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    processes: int = 1
    operator: str = "tag"
    model: str = ""
    model_sha256: str = ""
    rules_sha256: str = ""
    output: Path | None = None
    output_sha256: str = ""
    forum_map: Path | None = None
    forum_map_generated: bool = False
    locales: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "posts": self.posts, "texts": self.texts,
            "entities": {e: self.entities[e] for e in ENTITY_TYPES if self.entities[e]},
            "seconds": round(self.seconds, 2), "posts_per_second": round(self.posts / self.seconds, 1)
            if self.seconds else None, "processes": self.processes, "operator": self.operator,
            "model": self.model, "model_sha256": self.model_sha256, "rules_sha256": self.rules_sha256,
            "locales": list(self.locales),
        }

    def render(self) -> str:
        rate = f"{self.posts / self.seconds:,.0f} posts/s" if self.seconds else "-"
        lines = [
            f"De-identified {self.posts:,} posts ({self.texts:,} texts) in {self.seconds:,.1f} s ({rate}, "
            f"{self.processes} process{'es' if self.processes > 1 else ''}), operator '{self.operator}'",
            "",
            text_table(["entity", "found"], [[e, self.entities[e]] for e in (*ENTITY_TYPES, "FORUM")
                                             if self.entities[e]] or [["(none)", 0]]),
            "",
            f"Model: {self.model} (sha256 {self.model_sha256[:16]}…); rules sha256 {self.rules_sha256[:16]}…",
            f"Locales: {', '.join(self.locales)}",
        ]
        if self.forum_map is not None:
            state = "generated and saved" if self.forum_map_generated else "used"
            lines.append(f"Forum pseudonyms: {self.forum_map} ({state}; keep it with the study, not the export)")
        if self.output is not None:
            lines.append(f"Output: {self.output} (sha256 {self.output_sha256[:16]}…)")
        return "\n".join(lines)


# --------------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(settings: DeidSettings, key: bytes, engine: DeidEngine | None = None) -> None:
    _WORKER["engine"] = engine or DeidEngine(
        settings.model, rules_folder=settings.rules_folder, entities=settings.entities,
        deny_usernames=settings.deny_usernames, deny_names=settings.deny_names, locales=settings.locales,
    )
    _WORKER["replacer"] = Replacer(settings.operator, key, settings.forums)
    _WORKER["forums"] = settings.forums


def _process(job: tuple[list[list[Any]], list[str]]) -> tuple[list[list[str]], list[list[list[dict]]]]:
    """(texts per column, scope per row) → (new texts per column, findings per column per row)."""
    columns, scopes = job
    engine: DeidEngine = _WORKER["engine"]
    replacer: Replacer = _WORKER["replacer"]
    new_columns, spans = [], []
    forums: ForumPseudonyms | None = _WORKER["forums"]
    for texts in columns:
        found = engine.analyze(texts)
        if forums is not None:
            found = [merge_findings(f + forums.find(as_text(t))) for t, f in zip(texts, found)]
        new_columns.append([
            replacer.apply(as_text(t), f, scope) if f else t for t, f, scope in zip(texts, found, scopes)
        ])
        spans.append([[x.as_dict() for x in f] for f in found])
    return new_columns, spans


class _Pool:
    """In-process for one worker; otherwise a bounded window over a process pool."""

    def __init__(self, processes: int, settings: DeidSettings, key: bytes, engine: DeidEngine) -> None:
        self.processes = processes
        if processes == 1:
            _init_worker(settings, key, engine)
            self.pool = None
        else:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            # With fork the parent's engine is inherited as is; spawn rebuilds it per worker.
            initargs = (settings, key, engine if method == "fork" else None)
            self.pool = context.Pool(processes, initializer=_init_worker, initargs=initargs)

    def map_ordered(self, jobs, on_result: Callable[[Any, Any], None]) -> None:
        if self.pool is None:
            for meta, job in jobs:
                on_result(meta, _process(job))
            return
        window: list[tuple[Any, Any]] = []
        for meta, job in jobs:
            window.append((meta, self.pool.apply_async(_process, (job,))))
            if len(window) >= 2 * self.processes:
                first_meta, pending = window.pop(0)
                on_result(first_meta, pending.get())
        for meta, pending in window:
            on_result(meta, pending.get())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


# --------------------------------------------------------------------------- the file job


def deidentify_file(
    source: str | Path,
    output: str | Path,
    key: PseudonymKey,
    *,
    settings: DeidSettings | None = None,
    spans_out: str | Path | None = None,
    text_columns: Sequence[str] = ("text",),
    column_map: Mapping[str, str] | Sequence[str] | None = None,
    processes: int | None = None,
    batch_size: int = 2_000,
    engine: DeidEngine | None = None,
    forum_pseudonyms: str | Path | None = None,
    on_progress: Callable[[int], None] | None = None,
    before_publish: Callable[[], object] | None = None,
) -> DeidSummary:
    """De-identify ``text_columns`` of every row, pseudonymise ``user_id``, keep all other columns.

    ``before_publish`` runs once every row is written and before the outputs are renamed
    into place (e.g. to save a newly generated pseudonym key only when the run succeeded).

    With ``forum_pseudonyms`` (a map file, generated and saved when it does not exist),
    the ``forum`` column and forum mentions in the text become the forums' pseudonyms.
    """
    # A copy: the forum map found or generated below belongs to this run, not the caller's object.
    settings = dataclasses.replace(settings) if settings else DeidSettings()
    if settings.operator not in OPERATORS:
        raise PostkitError(f"unknown operator '{settings.operator}'", fix=f"use one of {', '.join(OPERATORS)}")
    source, output = Path(source), Path(output)
    reader = open_table(source, batch_size=min(batch_size, DEFAULT_BATCH_SIZE), column_map=column_map,
                        required=REQUIRED + tuple(c for c in text_columns if c != "text"))
    processes = max(1, processes or os.cpu_count() or 1)
    engine = engine or DeidEngine(settings.model, rules_folder=settings.rules_folder, entities=settings.entities,
                                  deny_usernames=settings.deny_usernames, deny_names=settings.deny_names,
                                  locales=settings.locales)
    summary = DeidSummary(processes=processes, operator=settings.operator, model=engine.model.name,
                          model_sha256=engine.model.sha256, rules_sha256=engine.rules.sha256, output=output,
                          locales=engine.rules.locales)
    pseudonymize = Pseudonymizer(key)
    has_thread = "thread_id" in reader.columns
    map_path = Path(forum_pseudonyms) if forum_pseudonyms else None
    generated_map = False
    if map_path is not None:
        if map_path.exists():
            settings.forums = load_forum_pseudonyms(map_path)
        else:
            if "forum" not in reader.columns:
                raise PostkitError("no forum column to build forum pseudonyms from", path=source,
                                   fix="add a forum column, or map one with --column forum=YOUR_COLUMN")
            forums_seen = {str(f) for frame in reader.batches() for f in frame["forum"].tolist() if as_text(f).strip()}
            settings.forums = generate_forum_pseudonyms(forums_seen, map_path)
            generated_map = True
        summary.forum_map = map_path
        summary.forum_map_generated = generated_map
    started = time.perf_counter()
    inputs = [source]
    with OutputSet(inputs=inputs) as outputs:
        writer = outputs.table(output, schema_hint=reader.schema)
        if generated_map:
            _, map_temp = outputs.file(map_path)
            map_temp.write_text(settings.forums.to_csv(), encoding="utf-8")
        spans_handle = None
        if spans_out is not None:
            _, spans_temp = outputs.file(spans_out)
            spans_handle = open(spans_temp, "w", encoding="utf-8", newline="\n")
        pool = _Pool(processes, settings, key.secret, engine)
        try:
            def jobs():
                for frame in reader.batches(on_progress):
                    scope_column = frame["thread_id"] if has_thread else frame["post_id"]
                    scopes = [("thread:" if has_thread else "post:") + str(s) for s in scope_column.tolist()]
                    yield frame, ([frame[c].tolist() for c in text_columns], scopes)

            def on_result(frame: pd.DataFrame, result) -> None:
                new_columns, spans = result
                out = frame.copy()
                for column, values in zip(text_columns, new_columns):
                    out[column] = pd.Series(values, index=frame.index, dtype=object)
                if settings.forums is not None and "forum" in out.columns:
                    out["forum"] = [settings.forums.pseudonym_for(f) if as_text(f).strip() else f
                                    for f in frame["forum"].tolist()]
                if "user_id" in out.columns:
                    out["user_id"] = [None if as_text(u).strip() == "" else pseudonymize(as_text(u).strip())
                                      for u in frame["user_id"].tolist()]
                writer.write(out)
                summary.posts += len(frame)
                for column, per_row in zip(text_columns, spans):
                    summary.texts += len(per_row)
                    for post_id, found in zip(frame["post_id"].tolist(), per_row):
                        summary.entities.update(f["entity_type"] for f in found)
                        if spans_handle is not None:
                            record = {"post_id": as_text(post_id), "column": column, "spans": found}
                            spans_handle.write(json.dumps(record, ensure_ascii=False) + "\n")

            pool.map_ordered(jobs(), on_result)
        finally:
            pool.close()
            if spans_handle is not None:
                spans_handle.close()
        if writer.columns is None:
            writer.set_empty_columns(reader.columns)
        summary.output_sha256 = sha256_path(writer.finish())
        if before_publish is not None:
            before_publish()
    summary.seconds = time.perf_counter() - started
    return summary
