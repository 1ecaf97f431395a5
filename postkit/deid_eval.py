"""Scoring a de-identification engine against the hand-labelled set in tests/data/.

The question a de-identification evaluation has to answer is "after the engine ran,
is anything identifying still readable?", not "did the engine name every entity
correctly". The definitions follow from that:

* **caught** -- a gold span is caught when every letter/digit character in it is
  covered by some predicted span, of *any* entity type. Calling a postcode a
  LOCATION still removes it; covering "Sarah" but not "Jones" leaves a surname
  behind, so partial coverage is a miss. Punctuation and spaces inside a gold span
  ("943 476 5919", "Flat 2, 9 Carlton Road") need not be covered: leaving a space
  or a comma behind reveals nothing.
* **recall** -- per gold type: caught / gold spans of that type. Overall: caught /
  all gold spans (so frequent types weigh more, as they do in a real corpus).
* **false alarm** -- a predicted span that shares no character with any gold span.
  Reported per 100 posts (a rate a reader can picture: "how much ordinary text does
  it destroy?"), with the most frequent false-alarm strings so they can be fixed.
  A predicted span that overlaps a gold span is never a false alarm, even when it is
  too long; over-long spans show up in character precision instead.
* **character precision** -- per post, take the union of predicted characters
  (overlapping predictions count once); precision = predicted characters inside
  some gold span / all predicted characters, summed over posts. It measures how
  much non-identifying text the engine would redact.

This module is pure Python with no heavy imports, so tests and the report script
can import it without loading spaCy or Presidio.
"""

from __future__ import annotations

import json
import operator
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import PostkitError

#: Entity types of the labelled set, in report order.
ENTITY_TYPES: tuple[str, ...] = (
    "PERSON",
    "USERNAME",
    "EMAIL",
    "PHONE",
    "POSTCODE",
    "NHS_NUMBER",
    "NI_NUMBER",
    "ADDRESS",
    "LOCATION",
    "ORG",
    "DATE",
    "AGE",
    "URL",
    "ID_NUMBER",  # other national/health/account ids (SSN, Medicare, service numbers), real-post set
)

#: Minimum recall the postkit engine must reach: overall, then per gold type.
OVERALL_RECALL_TARGET = 0.95
TYPE_RECALL_TARGETS: dict[str, float] = {
    "EMAIL": 0.98,
    "PHONE": 0.98,
    "POSTCODE": 0.98,
    "NHS_NUMBER": 0.98,
    "NI_NUMBER": 0.98,
    "URL": 0.98,
    "USERNAME": 0.98,
    "PERSON": 0.92,
}
#: At most this many false alarms per 100 posts.
MAX_FALSE_ALARMS_PER_100 = 30.0

#: The definitions above, short enough to print under a report.
DEFINITIONS: tuple[str, ...] = (
    "caught: every letter/digit of a gold span is covered by predicted spans of any type "
    "(partial coverage is a miss; punctuation/spaces inside the span need not be covered)",
    "recall: caught / gold spans (per type, and overall over all gold spans)",
    "false alarm: a predicted span sharing no character with any gold span; rate per 100 posts",
    "char precision: predicted characters (union per post) inside gold spans / all predicted characters",
)


class GoldFormatError(PostkitError):
    """The labelled file is malformed; the message names the file and line."""


# --------------------------------------------------------------------------- gold


def load_gold(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a labelled JSONL file: one post per line.

    Each line is ``{"id", "text", "spans": [{"start", "end", "entity_type", "text"}]}``
    with code-point offsets, end exclusive. Every span's ``text`` must equal
    ``text[start:end]``: a silently shifted offset would score a perfect engine as
    missing things, so any mismatch stops the load with the line number. Spans must
    have a known entity type, must not overlap each other, and ids must be unique.
    Blank lines are skipped. Spans are returned sorted by start.
    """
    path = Path(path)
    posts: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue

            def fail(message: str, fix: str | None = None) -> GoldFormatError:
                return GoldFormatError(message, path=path, row=line_no, fix=fix)

            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise fail(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise fail("expected a JSON object per line")
            for key, kind in (("id", str), ("text", str), ("spans", list)):
                if not isinstance(record.get(key), kind):
                    raise fail(f"field '{key}' is missing or not a {kind.__name__}")
            post_id, text = record["id"], record["text"]
            if post_id in seen_ids:
                raise fail(f"duplicate id {post_id!r} (first on line {seen_ids[post_id]})")
            seen_ids[post_id] = line_no
            spans = []
            for n, span in enumerate(record["spans"], 1):
                where = f"post {post_id}, span {n}"
                if not isinstance(span, dict):
                    raise fail(f"{where}: expected an object")
                start, end = span.get("start"), span.get("end")
                if not (type(start) is int and type(end) is int):
                    raise fail(f"{where}: 'start' and 'end' must be integers")
                if not 0 <= start < end <= len(text):
                    raise fail(f"{where}: offsets {start}..{end} are outside the text (length {len(text)})")
                if span.get("entity_type") not in ENTITY_TYPES:
                    raise fail(f"{where}: unknown entity_type {span.get('entity_type')!r}",
                               fix=f"use one of {', '.join(ENTITY_TYPES)}")
                if text[start:end] != span.get("text"):
                    raise fail(
                        f"{where}: text[{start}:{end}] is {text[start:end]!r} but the span says "
                        f"{span.get('text')!r}",
                        fix="recompute the offsets (code points, end exclusive)",
                    )
                spans.append({"start": start, "end": end, "entity_type": span["entity_type"],
                              "text": span["text"]})
            spans.sort(key=lambda s: (s["start"], s["end"]))
            for before, after in zip(spans, spans[1:]):
                if after["start"] < before["end"]:
                    raise fail(f"post {post_id}: spans {before['text']!r} and {after['text']!r} overlap")
            posts.append({"id": post_id, "text": text, "spans": spans})
    return posts


def load_real_gold(split: str, labels: str | Path, posts: str | Path) -> list[dict[str, Any]]:
    """The labelled real-post set: offsets from ``labels`` (post ids, split, offsets and a
    sha256 of each text; never the text), joined with the texts in ``posts``.

    Real posts are not ours to redistribute, so the repository holds only the labels;
    a text whose sha256 differs from the one labelled stops the load (offsets into a
    changed text would score nonsense). ``split`` is ``tune``, ``score`` or ``all``.
    Raises FileNotFoundError when the posts are absent (callers skip).
    """
    from .realdata import join_real_posts

    return [{"id": row["post_id"], "text": post["text"],
             "spans": [dict(span, text=post["text"][span["start"]:span["end"]]) for span in row["spans"]]}
            for row, post in join_real_posts(split, labels, posts, error=GoldFormatError)]


# -------------------------------------------------------------------- predictions


def load_demo_gold(folder: str | Path) -> list[dict[str, Any]]:
    """Gold posts from a corpus made by scripts/make_demo_corpus.py (every post, spans or not).

    The generator records the exact span of every identifier it planted, so its corpora
    give a second, larger (if more regular) measurement beside the hand-written set.
    """
    import csv

    folder = Path(folder)
    spans: dict[str, list[dict[str, Any]]] = {}
    with open(folder / "identifiers.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                spans[record["post_id"]] = record["spans"]
    with open(folder / "posts.csv", encoding="utf-8", newline="") as handle:
        return [{"id": row["post_id"], "text": row["text"], "spans": spans.get(row["post_id"], [])}
                for row in csv.DictReader(handle)]


def _field(finding: Any, name: str) -> Any:
    if isinstance(finding, Mapping):
        return finding.get(name)
    return getattr(finding, name, None)


def normalise_predictions(findings: Iterable[Any], text: str, post_id: str = "?") -> list[dict[str, Any]]:
    """Turn one post's findings (dicts or objects with ``start``, ``end``,
    ``entity_type``) into plain dicts.

    Offsets outside the text, or an end before the start, are engine bugs that
    would otherwise be scored silently as partial coverage, so they raise
    ValueError. Empty spans (start == end) cover nothing and are dropped.
    """
    out = []
    for finding in findings:
        entity_type = _field(finding, "entity_type")
        try:  # operator.index also accepts numpy integers, refuses floats and None
            start, end = operator.index(_field(finding, "start")), operator.index(_field(finding, "end"))
        except TypeError:
            raise ValueError(f"post {post_id}: prediction {finding!r} has no integer start/end") from None
        if not 0 <= start <= end <= len(text):
            raise ValueError(
                f"post {post_id}: prediction {start}..{end} ({entity_type}) is outside the text "
                f"(length {len(text)})"
            )
        if start == end:
            continue
        out.append({"start": start, "end": end, "entity_type": str(entity_type)})
    return out


def coverage(length: int, spans: Iterable[Mapping[str, Any]]) -> list[bool]:
    """Which character positions of a text of ``length`` some span covers."""
    covered = [False] * length
    for span in spans:
        for i in range(max(0, span["start"]), min(length, span["end"])):
            covered[i] = True
    return covered


def is_caught(text: str, start: int, end: int, covered: Sequence[bool]) -> bool:
    """True when every letter/digit of ``text[start:end]`` is covered.

    Only letters and digits must be covered: a redaction that leaves the spaces of
    "943 476 5919" or the comma of "Flat 2, 9 Carlton Road" hides nothing less. A
    span with no letter or digit at all (not expected in gold data) must be covered
    entirely.
    """
    positions = [i for i in range(start, end) if text[i].isalnum()] or list(range(start, end))
    return all(covered[i] for i in positions)


def _overlaps(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def _display(snippet: str) -> str:
    return " ".join(snippet.split())


# --------------------------------------------------------------------------- score


def score(
    gold_posts: Sequence[Mapping[str, Any]],
    predictions: Sequence[Iterable[Any]],
    *,
    top_false_alarms: int = 20,
) -> dict[str, Any]:
    """Score predictions against gold posts (same order, one list per post).

    Returns a JSON-serialisable dict: ``recall`` and ``per_type`` (gold, caught,
    recall), ``missed`` (per type: post id, text, offsets), ``false_alarms``,
    ``false_alarms_per_100_posts``, ``false_alarm_strings`` (most common first),
    ``false_alarms_by_predicted_type``, ``char_precision`` (None when nothing was
    predicted) and the raw counts behind each rate. See the module docstring for
    why each is defined the way it is.
    """
    if len(gold_posts) != len(predictions):
        raise ValueError(f"{len(gold_posts)} gold posts but {len(predictions)} prediction lists")

    gold_count: Counter[str] = Counter()
    caught_count: Counter[str] = Counter()
    missed: dict[str, list[dict[str, Any]]] = {}
    false_alarm_strings: Counter[str] = Counter()
    false_alarm_types: Counter[str] = Counter()
    false_alarms = predicted_spans = predicted_chars = predicted_chars_in_gold = 0

    for post, findings in zip(gold_posts, predictions):
        text, post_id, gold = post["text"], post["id"], post["spans"]
        predicted = normalise_predictions(findings, text, post_id)
        predicted_spans += len(predicted)
        covered = coverage(len(text), predicted)
        in_gold = coverage(len(text), gold)

        for span in gold:
            entity_type = span["entity_type"]
            gold_count[entity_type] += 1
            if is_caught(text, span["start"], span["end"], covered):
                caught_count[entity_type] += 1
            else:
                missed.setdefault(entity_type, []).append(
                    {"id": post_id, "text": text[span["start"]:span["end"]],
                     "start": span["start"], "end": span["end"]}
                )

        for pred in predicted:
            if not any(_overlaps(pred, span) for span in gold):
                false_alarms += 1
                false_alarm_strings[_display(text[pred["start"]:pred["end"]])] += 1
                false_alarm_types[pred["entity_type"]] += 1

        predicted_chars += sum(covered)
        predicted_chars_in_gold += sum(1 for c, g in zip(covered, in_gold) if c and g)

    types = [t for t in ENTITY_TYPES if gold_count[t]] + sorted(set(gold_count) - set(ENTITY_TYPES))
    total, caught = sum(gold_count.values()), sum(caught_count.values())
    n_posts = len(gold_posts)
    return {
        "posts": n_posts,
        "gold_spans": total,
        "caught": caught,
        "recall": caught / total if total else None,
        "per_type": {
            t: {"gold": gold_count[t], "caught": caught_count[t], "recall": caught_count[t] / gold_count[t]}
            for t in types
        },
        "missed": {t: missed[t] for t in types if t in missed},
        "predicted_spans": predicted_spans,
        "false_alarms": false_alarms,
        "false_alarms_per_100_posts": 100 * false_alarms / n_posts if n_posts else None,
        "false_alarm_strings": [
            {"text": s, "count": c} for s, c in false_alarm_strings.most_common(top_false_alarms)
        ],
        "false_alarms_by_predicted_type": dict(false_alarm_types.most_common()),
        "predicted_chars": predicted_chars,
        "predicted_chars_in_gold": predicted_chars_in_gold,
        "char_precision": predicted_chars_in_gold / predicted_chars if predicted_chars else None,
    }


def check_targets(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The project's targets, each with the measured value and PASS/FAIL.

    A type absent from the gold data is reported with value None and counts as a
    failure: a target nobody measured is not met.
    """
    rows = [{"target": "overall recall", "op": ">=", "threshold": OVERALL_RECALL_TARGET,
             "value": result["recall"]}]
    for entity_type, threshold in TYPE_RECALL_TARGETS.items():
        per_type = result["per_type"].get(entity_type)
        rows.append({"target": f"{entity_type} recall", "op": ">=", "threshold": threshold,
                     "value": per_type["recall"] if per_type else None})
    rows.append({"target": "false alarms / 100 posts", "op": "<=", "threshold": MAX_FALSE_ALARMS_PER_100,
                 "value": result["false_alarms_per_100_posts"]})
    for row in rows:
        value = row["value"]
        if value is None:
            row["passed"] = False
        elif row["op"] == ">=":
            row["passed"] = value >= row["threshold"]
        else:
            row["passed"] = value <= row["threshold"]
    return rows
