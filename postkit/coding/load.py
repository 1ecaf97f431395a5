"""From tagged posts to the coding store: excerpts to code and the suggestions for them.

``postkit tag`` writes one row per unit (a post, or a sentence of one) with a
``suggestions`` list; coders then work from the store. Excerpts keep the whole post
text plus the unit's offsets in it, so a QDA export can show the excerpt in context.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..errors import PostkitError
from ..io import jsonable, open_table
from .store import CodingStore


def _suggestion_list(value: Any, path: Path, row: int) -> list[dict[str, Any]]:
    """Suggestions arrive as nested arrays (Parquet/datasets), lists (JSONL) or JSON text (CSV)."""
    value = jsonable(value)  # numpy arrays of structs → plain lists and dicts
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise PostkitError(f"suggestions are not valid JSON ({exc.msg})", path=path, row=row,
                               column="suggestions", fix="load the file postkit tag wrote, unchanged") from None
    if not isinstance(value, list):
        raise PostkitError("suggestions must be a list", path=path, row=row, column="suggestions")
    return [dict(item) for item in value]


def load_tagged(store: CodingStore, tagged: str | Path, *, batch_size: int = 5_000,
                on_progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Add every unit of a tagged file as an excerpt, and its suggestions; returns counts."""
    tagged = Path(tagged)
    reader = open_table(tagged, batch_size=batch_size,
                        required=("post_id", "text", "suggestions", "codebook_version"))
    sentence_units = "unit_id" in reader.columns
    counts = {"units": 0, "new_units": 0, "suggestions": 0}
    for frame in reader.batches(on_progress):
        excerpts, by_version = [], {}
        for position, record in enumerate(frame.to_dict("records")):
            row = int(frame.index[position]) + 1
            unit_id = str(record["unit_id"] if sentence_units else record["post_id"])
            text = record["text"] if isinstance(record["text"], str) else ""
            start = int(record["unit_start"]) if sentence_units else 0
            end = int(record["unit_end"]) if sentence_units else len(text)
            excerpts.append({"unit_id": unit_id, "post_id": str(record["post_id"]), "forum": record.get("forum"),
                             "text": text, "start": start, "end": end})
            version = str(record["codebook_version"])
            for suggestion in _suggestion_list(record["suggestions"], tagged, row):
                by_version.setdefault(version, []).append({
                    "unit_id": unit_id, "code_id": suggestion["code_id"], "score": suggestion.get("score"),
                    "evidence": suggestion.get("evidence", [])})
        counts["units"] += len(excerpts)
        counts["new_units"] += store.add_excerpts(excerpts)
        for version, rows in by_version.items():
            counts["suggestions"] += store.add_suggestions(rows, codebook_version=version)
    return counts
