"""Sampling as partition functions: keyed-hash keys, the N smallest per stratum by tree reduction.

Why it gives the local sample exactly: a post's key is HMAC-SHA256(seed, post_id), which
depends on nothing else, and the N smallest keys of a stratum are the N smallest among
the N smallest of each part of it. So each partition keeps only its N smallest eligible
posts per stratum, and partial results are merged pairwise up a tree — no global
shuffle, and no more than N rows per stratum held by any task. Eligibility (phrases,
word counts) and strata use the very functions of :mod:`postkit.sample`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import PostkitError
from ..io import DEFAULT_BATCH_SIZE, open_table
from ..sample import (
    ADDED_COLUMNS,
    DEFAULT_PHRASES,
    REQUIRED,
    Funnel,
    SampleResult,
    _check_settings,
    _text_array,
    _write_sample,
    count_words,
    matched_phrases,
    sample_key,
    stratum_values,
)
from .base import Engine
from .consent_stage import _objects, first_duplicate, id_fingerprints


@dataclass
class SamplePart:
    """A partition's (or a merged group's) share: funnel counts, eligible word counts in input
    order, and the N smallest-key candidates per stratum as sorted ``(key, post_id, row)``."""

    funnel: dict[tuple[str, ...], list[int]] = field(default_factory=dict)  # stratum -> [total, phrase, length]
    word_counts: list[int] = field(default_factory=list)
    candidates: dict[tuple[str, ...], list[tuple[int, str, dict]]] = field(default_factory=dict)
    fingerprints: list[np.ndarray] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    rows_in: int = 0


def sample_partition(frame: pd.DataFrame, *, part: int, seed: int | str, phrases: Sequence[str], min_words: int,
                     per_stratum: int, by: Sequence[str]) -> SamplePart:
    """Eligibility, keys and the per-stratum N smallest of one partition (runs on a worker)."""
    result = SamplePart(rows_in=len(frame))
    if not len(frame):
        return result
    strata = stratum_values(frame, by)
    texts = _text_array(frame["text"].tolist())
    words = np.asarray(count_words(texts), dtype=np.int64)
    matches = matched_phrases(texts, phrases)
    has_phrase = pd.notna(np.array(matches, dtype=object))
    eligible = has_phrase & (words > min_words)
    codes, uniques = pd.factorize(_objects(strata))
    n = len(uniques)
    totals = np.bincount(codes, minlength=n)
    phrased = np.bincount(codes[has_phrase], minlength=n)
    long_enough = np.bincount(codes[eligible], minlength=n)
    for code, stratum in enumerate(uniques):
        result.funnel[stratum] = [int(totals[code]), int(phrased[code]), int(long_enough[code])]
    positions = np.flatnonzero(eligible)
    result.word_counts = words[positions].tolist()
    post_ids = frame["post_id"].tolist()
    ids = np.array([str(post_ids[i]).strip() for i in positions], dtype=object)
    result.fingerprints = [id_fingerprints(ids)]
    result.rows = [frame.index.to_numpy(dtype=np.int64)[positions] + 1]
    keys = [sample_key(seed, post_id) for post_id in ids]
    chosen: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    for position, key in zip(positions.tolist(), keys):
        chosen[codes[position]].append((key, position))
    for code, items in chosen.items():
        smallest = heapq.nsmallest(per_stratum, items)
        result.candidates[uniques[code]] = [
            (key, str(post_ids[p]).strip(),
             frame.iloc[p].to_dict() | {"word_count": int(words[p]), "matched_phrase": matches[p]})
            for key, p in smallest
        ]
    return result


def combine_parts(parts: Sequence[SamplePart], per_stratum: int) -> SamplePart:
    """Merge adjacent partial results, in order: sums, concatenations and the N smallest."""
    merged = SamplePart()
    for part in parts:
        merged.rows_in += part.rows_in
        for stratum, counts in part.funnel.items():
            into = merged.funnel.setdefault(stratum, [0, 0, 0])
            for i in range(3):
                into[i] += counts[i]
        merged.word_counts += part.word_counts
        merged.fingerprints += part.fingerprints
        merged.rows += part.rows
        for stratum, items in part.candidates.items():
            merged.candidates.setdefault(stratum, []).extend(items)
    for stratum, items in merged.candidates.items():
        merged.candidates[stratum] = heapq.nsmallest(per_stratum, items, key=lambda item: item[0])
    if len(merged.fingerprints) > 1:  # keep few arrays per result
        merged.fingerprints = [np.concatenate(merged.fingerprints)]
        merged.rows = [np.concatenate(merged.rows)]
    return merged


class _Combine:
    """``combine_parts`` with N bound (a picklable callable for Dask tasks)."""

    def __init__(self, per_stratum: int) -> None:
        self.per_stratum = per_stratum

    def __call__(self, parts: Sequence[SamplePart]) -> SamplePart:
        return combine_parts(parts, self.per_stratum)


def sample_file_partitioned(
    source: str | Path,
    output: str | Path,
    engine: Engine,
    *,
    per_stratum: int = 120,
    phrases: Sequence[str] = DEFAULT_PHRASES,
    min_words: int = 30,
    seed: int | str = 2024,
    by: Sequence[str] = ("forum",),
    manifest_path: str | Path | None = None,
    report_path: str | Path | None = None,
    column_map: Sequence[str] | dict | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
    labels: tuple[str, str] | None = None,
) -> SampleResult:
    """:func:`postkit.sample.sample_file` on an engine: the same sample, manifest and report."""
    source, output = Path(source), Path(output)
    phrases = list(dict.fromkeys(p.strip() for p in phrases if p.strip()))
    _check_settings(per_stratum, min_words, phrases)
    by = list(by)
    reader = open_table(source, batch_size=batch_size, column_map=column_map,
                        required=REQUIRED + tuple(c for c in by if c not in ("year",) and c not in REQUIRED))
    clash = [c for c in ADDED_COLUMNS if c in reader.columns]
    if clash:
        raise PostkitError(f"the input already has a '{clash[0]}' column", path=source,
                           fix="rename it; the sample adds sample_rank, word_count and matched_phrase")
    settings = {"seed": seed, "phrases": phrases, "min_words": min_words, "per_stratum": per_stratum, "by": by}
    shown_input, shown_output = labels or (str(source), str(output))
    result = SampleResult(settings=settings, input_path=Path(shown_input), output_path=Path(shown_output))
    shared = {"seed": seed, "phrases": phrases, "min_words": min_words, "per_stratum": per_stratum, "by": by}
    merged = engine.map_reduce(sample_partition, _Combine(per_stratum), reader.batches(on_progress),
                               shared=shared) or SamplePart()
    duplicate = first_duplicate(merged.fingerprints, merged.rows)
    if duplicate is not None:
        raise PostkitError(f"duplicate post_id (first at row {duplicate[0]})", path=source, row=duplicate[1],
                           column="post_id", fix="post ids must be unique")
    result.rows_in = merged.rows_in
    for stratum, (total, phrase, length) in merged.funnel.items():
        result.funnel[stratum] = Funnel(total, phrase, length)
    result.eligible_word_counts = merged.word_counts
    heaps = {stratum: [(-key, post_id, row) for key, post_id, row in items]
             for stratum, items in merged.candidates.items()}
    return _write_sample(result, heaps, reader, source, output, manifest_path, report_path)
