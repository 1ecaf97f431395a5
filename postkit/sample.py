"""Reproducible per-forum samples of posts that contain a phrase and are long enough.

Eligibility
    A post is eligible when it contains one of the phrases and has MORE than
    ``min_words`` words. Phrases match case-insensitively, as whole words, tolerant of
    extra spaces and line breaks between words and of curly or straight apostrophes:
    "Thank you for…" and "thank you\\nfor," match "thank you for"; "thank you formally",
    "thankyou for" and "thanks for" do not.

    **A word is a whitespace-separated token containing at least one letter or digit**
    (:data:`WORD_DEFINITION`), so punctuation, dashes and emoji on their own do not count
    and "don't" counts once. :func:`count_words` is the one implementation, used for
    eligibility, the ``word_count`` column and the report.

Sampling
    Each eligible post gets a key: HMAC-SHA256 of its ``post_id`` with the seed as key.
    The N smallest keys per stratum (forum by default) are the sample. A key depends
    only on (seed, post_id), so the same inputs and seed give the same sample whatever
    the input order, batch size, number of processes or engine; and adding posts to a
    forum never reshuffles which of the old ones are chosen relative to each other.

Both are computed with Arrow's vectorised string functions (RE2 regular expressions),
so a million posts take seconds; only eligible posts reach Python.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import __version__
from .errors import PostkitError
from .hashing import sha256_path
from .io import DEFAULT_BATCH_SIZE, OutputSet, open_table
from .summary import text_table
from .timestamps import iso, now_utc

WORD_DEFINITION = "a word is a whitespace-separated token containing at least one letter or digit"
_WORD_RE2 = r"\S*[\pL\pN]\S*"
_BOUNDARY_BEFORE = r"(?:^|[^\pL\pN_])"
_BOUNDARY_AFTER = r"(?:$|[^\pL\pN_])"
_APOSTROPHES = "’‘ʼ`´"
DEFAULT_PHRASES = ("thank you for",)  # used when rules/sampling/phrases.txt is missing
SAMPLING_METHOD = "keyed hash (HMAC-SHA256, key = seed) of post_id; the N smallest keys per stratum"
ADDED_COLUMNS = ("sample_rank", "word_count", "matched_phrase")
REQUIRED = ("post_id", "forum", "text")


def _normalise_apostrophes(array: pa.Array) -> pa.Array:
    for mark in _APOSTROPHES:
        array = pc.replace_substring(array, mark, "'")
    return array


def _text_array(values: Iterable[Any]) -> pa.Array:
    """Post texts as an Arrow string array; missing or non-text values count as empty."""
    cleaned = [v if isinstance(v, str) else "" for v in values]
    return pa.array(cleaned, type=pa.string())


def count_words(texts: Sequence[Any] | pa.Array) -> list[int]:
    """Words per text, by :data:`WORD_DEFINITION`."""
    array = texts if isinstance(texts, pa.Array) else _text_array(texts)
    return pc.count_substring_regex(array, _WORD_RE2).fill_null(0).to_pylist()


def phrase_pattern(phrase: str) -> str:
    """RE2 pattern: the phrase's words in order, any whitespace between, whole words."""
    words = [w for w in re.split(r"\s+", phrase.strip().lower()) if w]
    if not words:
        raise PostkitError("an empty phrase was given", fix="pass --phrase with some words")
    words = [re.sub(f"[{_APOSTROPHES}]", "'", w) for w in words]
    return _BOUNDARY_BEFORE + r"\s+".join(re.escape(w) for w in words) + _BOUNDARY_AFTER


def matched_phrases(texts: Sequence[Any] | pa.Array, phrases: Sequence[str]) -> list[str | None]:
    """The first of ``phrases`` each text contains (None when none does)."""
    array = texts if isinstance(texts, pa.Array) else _text_array(texts)
    array = _normalise_apostrophes(array)
    result: list[str | None] = [None] * len(array)
    for phrase in phrases:
        hits = pc.match_substring_regex(array, phrase_pattern(phrase), ignore_case=True).fill_null(False)
        for i, hit in enumerate(hits.to_pylist()):
            if hit and result[i] is None:
                result[i] = phrase
    return result


def default_phrases() -> list[str]:
    """The study's phrases from rules/sampling/phrases.txt (one per line), else DEFAULT_PHRASES."""
    from .deid.rules import read_word_list, rules_root

    return read_word_list(rules_root() / "sampling" / "phrases.txt") or list(DEFAULT_PHRASES)


def sample_key(seed: int | str, post_id: str) -> int:
    digest = hmac.new(str(seed).encode("utf-8"), str(post_id).encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest, "big")


# --------------------------------------------------------------------------- strata


def stratum_values(frame: pd.DataFrame, by: Sequence[str]) -> list[tuple[str, ...]]:
    """Each row's stratum: values of the ``by`` columns; ``year`` comes from created_at if absent."""
    parts = []
    for name in by:
        if name in frame.columns:
            parts.append(["" if pd.isna(v) else str(v) for v in frame[name].tolist()])
        elif name == "year":
            years = []
            for value in frame["created_at"].tolist() if "created_at" in frame.columns else [None] * len(frame):
                text = str(value) if value is not None and not (isinstance(value, float) and value != value) else ""
                years.append(text[:4] if re.match(r"^\d{4}", text) else "unknown")
            parts.append(years)
        else:
            raise PostkitError(f"--by {name}: no such column", fix="use column names, or 'year' (from created_at)")
    return list(zip(*parts)) if parts else [()] * len(frame)


# --------------------------------------------------------------------------- the sample


@dataclass
class Funnel:
    total: int = 0
    phrase: int = 0
    length: int = 0
    sampled: int = 0


@dataclass
class SampleResult:
    settings: dict[str, Any]
    funnel: dict[tuple[str, ...], Funnel] = field(default_factory=lambda: defaultdict(Funnel))
    eligible_word_counts: list[int] = field(default_factory=list)
    sampled_word_counts: list[int] = field(default_factory=list)
    input_path: Path | None = None
    output_path: Path | None = None
    input_sha256: str = ""
    output_sha256: str = ""
    rows_in: int = 0
    rows_out: int = 0

    @property
    def per_stratum(self) -> int:
        return self.settings["per_stratum"]

    def stratum_label(self, key: tuple[str, ...]) -> str:
        return " / ".join(key) if key else "(all)"

    def totals(self) -> Funnel:
        total = Funnel()
        for f in self.funnel.values():
            total.total += f.total
            total.phrase += f.phrase
            total.length += f.length
            total.sampled += f.sampled
        return total

    def funnel_rows(self) -> list[dict[str, Any]]:
        return [
            {"stratum": self.stratum_label(key), "total": f.total, "phrase": f.phrase, "length": f.length,
             "sampled": f.sampled, "short": f.length < self.per_stratum}
            for key, f in sorted(self.funnel.items())
        ]

    def render(self) -> str:
        rows = self.funnel_rows()
        totals = self.totals()
        by = ", ".join(self.settings["by"])
        table = text_table(
            [by, "posts", "with phrase", f"> {self.settings['min_words']} words", "sampled", "note"],
            [[r["stratum"], r["total"], r["phrase"], r["length"], r["sampled"],
              f"only {r['length']} eligible" if r["short"] else ""] for r in rows]
            + [["total", totals.total, totals.phrase, totals.length, totals.sampled, ""]],
        )
        phrases = ", ".join(f'"{p}"' for p in self.settings["phrases"])
        lines = [f"Sample: {totals.sampled:,} of {totals.total:,} posts ({self.per_stratum} per {by}; "
                 f"phrases {phrases}; more than {self.settings['min_words']} words; seed {self.settings['seed']})",
                 "", table]
        short = [r["stratum"] for r in rows if r["short"]]
        if short:
            lines += ["", f"{len(short)} of {len(rows)} strata had fewer than {self.per_stratum} eligible posts "
                          f"and contribute all of them: {', '.join(short)}"]
        if not rows:
            lines += ["", "The input has no posts: the output is empty (with its columns)."]
        return "\n".join(lines)

    def manifest(self) -> dict[str, Any]:
        return {
            "postkit_version": __version__,
            "created_at": iso(now_utc()),
            "input": {"path": str(self.input_path), "sha256": self.input_sha256, "rows": self.rows_in},
            "output": {"path": str(self.output_path), "sha256": self.output_sha256, "rows": self.rows_out},
            **self.settings,
            "word_definition": WORD_DEFINITION,
            "sampling_method": SAMPLING_METHOD,
            "funnel": self.funnel_rows(),
            "totals": vars(self.totals()),
        }

    def report(self, title: str = "Sample of forum posts") -> dict[str, Any]:
        """What the HTML report needs (see postkit.report.sampling)."""
        manifest = self.manifest()
        return {
            "title": title, "created_at": manifest["created_at"], "postkit_version": __version__,
            "input": manifest["input"], "output": manifest["output"], "seed": self.settings["seed"],
            "phrases": self.settings["phrases"], "min_words": self.settings["min_words"],
            "per_stratum": self.per_stratum, "by": self.settings["by"], "word_definition": WORD_DEFINITION,
            "sampling_method": SAMPLING_METHOD, "funnel": self.funnel_rows(), "totals": manifest["totals"],
            "word_counts": {"eligible": self.eligible_word_counts, "sampled": self.sampled_word_counts},
        }


def _check_settings(per_stratum: int, min_words: int, phrases: Sequence[str]) -> None:
    if per_stratum < 1:
        raise PostkitError("--per-forum must be at least 1")
    if min_words < 0:
        raise PostkitError("--min-words must be 0 or more")
    if not phrases:
        raise PostkitError("no phrases to look for", fix="pass --phrase or keep rules/sampling/phrases.txt")
    for phrase in phrases:
        phrase_pattern(phrase)


def sample_file(
    source: str | Path,
    output: str | Path,
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
    engine: Any = None,
) -> SampleResult:
    """Stream ``source``, keep the N smallest-key eligible posts per stratum, write them in order.

    ``labels`` names the input and output in the manifest and report when the files are
    written somewhere temporary first (a study run); default: the paths as given.
    ``engine`` (a :mod:`postkit.engine` engine other than local) draws the same sample
    as a tree reduction over partitions.
    """
    if engine is not None and engine.name != "local":
        from .engine.sample_stage import sample_file_partitioned

        return sample_file_partitioned(
            source, output, engine, per_stratum=per_stratum, phrases=phrases, min_words=min_words, seed=seed,
            by=by, manifest_path=manifest_path, report_path=report_path, column_map=column_map,
            batch_size=batch_size, on_progress=on_progress, labels=labels)
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
    heaps: dict[tuple[str, ...], list] = defaultdict(list)
    seen_eligible: set[str] = set()

    for frame in reader.batches(on_progress):
        result.rows_in += len(frame)
        strata = stratum_values(frame, by)
        texts = _text_array(frame["text"].tolist())
        words = count_words(texts)
        matches = matched_phrases(texts, phrases)
        post_ids = frame["post_id"].tolist()
        for position, (stratum, count, phrase) in enumerate(zip(strata, words, matches)):
            funnel = result.funnel[stratum]
            funnel.total += 1
            if phrase is None:
                continue
            funnel.phrase += 1
            if count <= min_words:
                continue
            funnel.length += 1
            post_id = str(post_ids[position]).strip()
            if post_id in seen_eligible:
                raise PostkitError(f"duplicate post_id '{post_id}'", path=source, row=int(frame.index[position]) + 1,
                                   column="post_id", fix="post ids must be unique")
            seen_eligible.add(post_id)
            result.eligible_word_counts.append(count)
            key = sample_key(seed, post_id)
            heap = heaps[stratum]
            if len(heap) < per_stratum or -heap[0][0] > key:
                # Only rows that enter the sample so far are materialised (most never do).
                row = frame.iloc[position].to_dict() | {"word_count": count, "matched_phrase": phrase}
                item = (-key, post_id, row)  # keys are unique per post_id, so rows are never compared
                if len(heap) < per_stratum:
                    heapq.heappush(heap, item)
                else:
                    heapq.heapreplace(heap, item)

    return _write_sample(result, heaps, reader, source, output, manifest_path, report_path)


def _write_sample(result: SampleResult, heaps: dict[tuple[str, ...], list], reader: Any, source: Path, output: Path,
                  manifest_path: str | Path | None, report_path: str | Path | None) -> SampleResult:
    """Rank the chosen posts of each stratum (smallest key first), write them, the manifest and report.

    ``heaps`` holds ``(-key, post_id, row)`` items per stratum, whichever engine chose them.
    """
    rows = []
    for stratum in sorted(heaps):
        chosen = sorted(heaps[stratum], key=lambda item: -item[0])
        result.funnel[stratum].sampled = len(chosen)
        for rank, (_, _, row) in enumerate(chosen, start=1):
            rows.append(row | {"sample_rank": rank})
            result.sampled_word_counts.append(row["word_count"])
    columns = list(reader.columns) + list(ADDED_COLUMNS)
    sample = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame({c: [] for c in columns})
    if rows:
        sample["sample_rank"] = sample["sample_rank"].astype("int64")
        sample["word_count"] = sample["word_count"].astype("int64")
    result.rows_out = len(sample)
    result.input_sha256 = sha256_path(source)

    manifest_path = Path(manifest_path) if manifest_path else output.with_name(output.name + ".manifest.json")
    with OutputSet(inputs=[source]) as outputs:
        writer = outputs.table(output, schema_hint=_output_schema(reader.schema))
        if len(sample):
            writer.write(sample)
        else:
            writer.set_empty_columns(columns)
        result.output_sha256 = sha256_path(writer.finish())
        _, manifest_temp = outputs.file(manifest_path)
        manifest_temp.write_text(json.dumps(result.manifest(), indent=2, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
        if report_path is not None:
            from .report.sampling import render_sampling_report

            _, report_temp = outputs.file(report_path)
            report_temp.write_text(render_sampling_report(result.report()), encoding="utf-8")
    return result


def _output_schema(schema: pa.Schema | None) -> pa.Schema | None:
    if schema is None:
        return None
    return schema.append(pa.field("sample_rank", pa.int64())).append(pa.field("word_count", pa.int64())) \
        .append(pa.field("matched_phrase", pa.string()))
