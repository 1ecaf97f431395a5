"""Choose another exemplar: a code's excerpts ranked from least to most findable.

Rewording cannot hide a quote whose meaning is distinctive: a semantic search still finds
it. Researchers then do what careful qualitative writers do — pick another of the many
excerpts that illustrate the same code, one that is harder to trace. This module lists,
for one code, the sample's excerpts that carry it (from the study's coding store) and
checks each one as it would be quoted — the shortest span carrying the code's evidence
(:func:`postkit.disguise.paraphrase.core`), verbatim — against both attackers of
:mod:`postkit.disguise.trace`: the BM25 search box (``source_rank``) and the dense
semantic search (``dense_rank``). Least findable first: by the *better* of the two
attackers' ranks (a source an attacker finds at rank 3 is findable, whatever the other
says), then by the other rank.

An excerpt "carries" a code when a coder applied it (their latest decision is accept or
add), or when the tagger suggested it and no coder has rejected or removed it.

Nothing here writes to the store or to a run folder; the ranking is for the researcher's
eyes (it shows the excerpts' text, which the store already holds).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import PostkitError
from .trace import VERDICTS, Thresholds, TraceIndex

STORE_FILENAME = "coding.sqlite"
RANK_FIELDS = ("unit_id", "post_id", "text", "verdict", "source_rank", "dense_rank", "dense", "longest_shared_run",
               "carried_by")


def find_store(path: str | Path) -> Path:
    """The coding store: ``path`` itself, or ``coding.sqlite`` in a folder or its ``tag/`` stage."""
    path = Path(path)
    if path.is_file():
        return path
    for candidate in (path / STORE_FILENAME, path / "tag" / STORE_FILENAME):
        if candidate.is_file():
            return candidate
    raise PostkitError("no coding store found", path=path,
                       fix="pass the study's coding.sqlite, or a run folder with a tag stage")


def _evidence(value: Any) -> list[tuple[int, int]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return []
    spans = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and isinstance(item.get("start"), int) and isinstance(item.get("end"), int):
            spans.append((item["start"], item["end"]))
    return spans


def code_excerpts(store_path: str | Path, code_id: str) -> list[dict[str, Any]]:
    """The store's excerpts that carry ``code_id`` (see the module docstring), with the tagger's
    evidence for it (offsets into the excerpt's post text), in unit order."""
    from ..coding.store import CodingStore

    with CodingStore(find_store(store_path), read_only=True) as store:
        excerpts = store.excerpts()
        suggestions = store.suggestions()
        codings = store.codings()
    suggested = suggestions[suggestions["code_id"] == code_id]
    mine = codings[codings["code_id"] == code_id]
    applied = set(mine.loc[mine["applied"], "unit_id"])
    refused = set(mine.loc[~mine["applied"], "unit_id"]) - applied
    evidence: dict[str, list[tuple[int, int]]] = {}
    for unit_id, value in suggested[["unit_id", "evidence"]].itertuples(index=False):
        evidence.setdefault(unit_id, []).extend(_evidence(value))
    carrying = applied | (set(suggested["unit_id"]) - refused)
    out = []
    for row in excerpts.to_dict("records"):
        if row["unit_id"] not in carrying:
            continue
        text = row["text"] if isinstance(row["text"], str) else ""
        start = int(row["start"]) if row.get("start") is not None and not _missing(row["start"]) else 0
        end = int(row["end"]) if row.get("end") is not None and not _missing(row["end"]) else len(text)
        out.append({"unit_id": str(row["unit_id"]), "post_id": str(row["post_id"]), "post_text": text,
                    "start": start, "end": end, "evidence": sorted(set(evidence.get(row["unit_id"], []))),
                    "carried_by": "coder" if row["unit_id"] in applied else "tagger"})
    return out


def _missing(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def exemplar_text(excerpt: dict[str, Any], nlp: Any) -> str:
    """What a researcher would quote from an excerpt: the shortest span of the unit still
    carrying the code's evidence (or the whole unit when it has none or cannot be cut)."""
    from .paraphrase import core

    unit = excerpt["post_text"][excerpt["start"] : excerpt["end"]]
    local = [(s - excerpt["start"], e - excerpt["start"]) for s, e in excerpt.get("evidence", ())
             if excerpt["start"] <= s and e <= excerpt["end"]]
    if not local:
        return " ".join(unit.split())
    text, _ = core(unit, nlp, local)
    return " ".join(text.split())


def _findability(row: dict[str, Any]) -> tuple:
    """Sort key, least findable first: verdict, then the better (smaller) attacker rank, then the
    other one; a rank beyond the search counts as not found. Without the dense attacker the
    BM25 rank stands for both."""
    bm25 = row["source_rank"] if row["source_rank"] is not None else math.inf
    dense = row["dense_rank"] if row.get("dense") == "ran" and row["dense_rank"] is not None else bm25
    worst, other = sorted((bm25, dense))
    return (VERDICTS[::-1].index(row["verdict"]), -worst, -other, row["unit_id"])


def rank_exemplars(excerpts: Sequence[dict[str, Any]], index: TraceIndex, thresholds: Thresholds | None = None,
                   *, nlp: Any = None) -> list[dict[str, Any]]:
    """Each excerpt's exemplar text checked against both attackers, least findable first.

    Fails closed like the check: an excerpt whose post is not in the corpus raises (its
    findability cannot be measured).
    """
    from .meaning import load_nlp

    thresholds = thresholds or Thresholds()
    nlp = nlp if nlp is not None else load_nlp()
    quotes = [{"quote_id": e["unit_id"], "source_post_id": e["post_id"], "text": exemplar_text(e, nlp)}
              for e in excerpts]
    checked = index.check(quotes, thresholds, n_threads=1) if quotes else []
    rows = []
    for excerpt, quote, check in zip(excerpts, quotes, checked):
        rows.append({"unit_id": excerpt["unit_id"], "post_id": excerpt["post_id"], "text": quote["text"],
                     "verdict": check["verdict"], "source_rank": check["source_rank"],
                     "dense_rank": check.get("dense_rank"), "dense": check.get("dense", "not run"),
                     "longest_shared_run": check["longest_shared_run"], "carried_by": excerpt["carried_by"]})
    return sorted(rows, key=_findability)


def rank_file(store_path: str | Path, corpus_path: str | Path, code_id: str, *,
              index_dir: str | Path | None = None, thresholds: Thresholds | None = None,
              on_progress: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """``postkit disguise rank``: the code's excerpts in the store ranked against the corpus.

    Returns ``{"code_id", "excerpts": [...], "posts", "dense", "note"}``; ``dense`` says
    whether the semantic attacker ran (without it no exemplar is called disguised).
    """
    from .trace import load_index, load_thresholds, refuse_shared_location

    if not isinstance(code_id, str) or not code_id.strip():
        raise PostkitError("no code given", fix="pass --code CODE_ID (see the codebook)")
    thresholds = thresholds or load_thresholds()
    excerpts = code_excerpts(store_path, code_id.strip())
    if index_dir is not None:
        refuse_shared_location(index_dir)
    index, _ = load_index(corpus_path, index_dir, on_progress)
    rows = rank_exemplars(excerpts, index, thresholds)
    dense = "ran" if index.dense is not None else "not run"
    return {"code_id": code_id.strip(), "excerpts": rows, "posts": len(index), "dense": dense,
            "note": None if index.dense is not None else index.dense_note}


def _rank_text(rank: int | None) -> str:
    return "not found" if rank is None else str(rank)


def render_ranking(result: dict[str, Any], width: int = 70) -> str:
    """The ranking as a few lines for the terminal, least findable first."""
    rows = result["excerpts"]
    lines = [f"Exemplars of {result['code_id']}: {len(rows)} excerpt{'s' if len(rows) != 1 else ''}, "
             f"least findable first (searched {result.get('posts', '?')} posts)"]
    if result.get("dense") != "ran":
        lines.append(f"  The semantic attacker did not run ({result.get('note') or 'unavailable'}): "
                     "no exemplar can be called disguised.")
    if not rows:
        lines.append("  No excerpt of the sample carries this code.")
        return "\n".join(lines)
    lines.append(f"  {'#':>3}  {'verdict':<10} {'BM25 rank':>10} {'dense rank':>11}  unit / excerpt")
    for number, row in enumerate(rows, start=1):
        dense = _rank_text(row["dense_rank"]) if row.get("dense") == "ran" else "not run"
        text = row["text"] if len(row["text"]) <= width else row["text"][: width - 1] + "…"
        lines.append(f"  {number:>3}  {row['verdict']:<10} {_rank_text(row['source_rank']):>10} {dense:>11}  "
                     f"{row['unit_id']}: {text}")
    lines.append("  A lower rank means the source post is found sooner; quote from the top of this list, "
                 "then check the wording with `postkit disguise suggest`.")
    return "\n".join(lines)
