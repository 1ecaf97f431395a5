"""A disguise review folder: suggested paraphrases, the attacker's index and the decisions.

This is the library behind ``postkit review serve`` and ``postkit disguise export``; the
web app is a thin client, so everything a reviewer can do is also scriptable and tested
without a browser.

Folder layout (written by ``postkit disguise suggest --study DIR`` or by the ``disguise``
stage of ``postkit run``, which puts it under ``RUN/disguise/``)::

    DIR/suggestions.jsonl   one quote per line: quote_id, source_post_id, text, candidates
    DIR/index/              the cached traceability index of the searched corpus
    DIR/coding.sqlite       decisions (unless the run has ``tag/coding.sqlite``, which is
                            then shared, so coding and disguise decisions live in one store)

Decisions are appended to the store's ``reviews`` table (kind ``quote``) with reviewer,
time, the exact text, its scores and a note; a quote's status is its latest decision.
Approval is refused unless the text is *disguised* when approved, and the export
re-checks every approved text, so a quote that stops passing (a bigger corpus, stricter
thresholds) is caught before publication.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import pandas as pd

from ..errors import PostkitError
from ..io import iter_json_lines
from .trace import NGRAM, Thresholds, TraceIndex, load_thresholds, shared_run_starts, word_spans

SUGGESTIONS_FILE = "suggestions.jsonl"
INDEX_DIR = "index"
STORE_FILE = "coding.sqlite"
REVIEW_KIND = "quote"
QUOTE_ACTIONS = ("approve", "reject")
SCORE_FIELDS = ("verdict", "source_rank", "longest_shared_run", "distinctive_overlap", "exact_5gram_hits",
                "meaning_score")
EXPORT_COLUMNS = ("quote_id", "source_post_id", "text", *SCORE_FIELDS, "reviewer", "approved_at", "note")


def _function_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


_FUNCTION_WORDS = _function_words()  # highlighting "me", "to", "after" would only hide the real overlap


def locate(folder: str | Path) -> tuple[Path, Path]:
    """(the folder holding suggestions.jsonl and index/, the store path) for a study or run folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PostkitError("the study folder does not exist", path=folder,
                           fix="pass the folder written by `postkit disguise suggest --study` or a run folder")
    for candidate in (folder, folder / "disguise"):
        if (candidate / SUGGESTIONS_FILE).is_file():
            if not (candidate / INDEX_DIR).is_dir():
                raise PostkitError(f"{SUGGESTIONS_FILE} has no {INDEX_DIR}/ beside it", path=candidate,
                                   fix="rerun `postkit disguise suggest --study DIR` (it saves the index)")
            shared = folder / "tag" / STORE_FILE
            return candidate, shared if shared.is_file() else candidate / STORE_FILE
    raise PostkitError(f"no {SUGGESTIONS_FILE} in the folder or its disguise/ subfolder", path=folder,
                       fix="create it with `postkit disguise suggest QUOTES --corpus CORPUS --study DIR`")


def read_suggestions(path: Path) -> list[dict[str, Any]]:
    quotes = []
    for number, row in iter_json_lines(path):
        missing = [k for k in ("quote_id", "source_post_id", "text") if row.get(k) in (None, "")]
        if missing:
            raise PostkitError(f"missing {', '.join(missing)}", path=path, row=number,
                               fix="each line needs quote_id, source_post_id and text")
        row["quote_id"], row["source_post_id"] = str(row["quote_id"]), str(row["source_post_id"])
        row.setdefault("candidates", [])
        quotes.append(row)
    return quotes


class QuoteStudy:
    """Quotes, candidates and decisions of one review folder; open once per process."""

    def __init__(self, folder: Path, store_path: Path, quotes: list[dict[str, Any]], index: TraceIndex,
                 thresholds: Thresholds) -> None:
        from ..coding.store import CodingStore

        self.folder = folder
        self.store_path = store_path
        self.index = index
        self.thresholds = thresholds
        self._quotes = {q["quote_id"]: q for q in quotes}
        unknown = [q["source_post_id"] for q in quotes if q["source_post_id"] not in index.position]
        if unknown:
            raise PostkitError(f"source post {unknown[0]!r} is not in the saved index", path=folder / INDEX_DIR,
                               fix="rebuild the study with the corpus that holds every source post")
        self.store = CodingStore(store_path)
        self._scorer: Any = None
        self._codes: dict[str, Any] | None = None
        for quote in quotes:
            for candidate in quote["candidates"]:
                candidate.update(self._highlights(quote["source_post_id"], candidate["text"]))

    @classmethod
    def open(cls, folder: str | Path, thresholds: Thresholds | None = None) -> QuoteStudy:
        found, store_path = locate(folder)
        quotes = read_suggestions(found / SUGGESTIONS_FILE)
        index = TraceIndex.load(found / INDEX_DIR)
        return cls(found, store_path, quotes, index, thresholds or load_thresholds())

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- quotes

    def _get(self, quote_id: Any) -> dict[str, Any]:
        quote = self._quotes.get(str(quote_id))
        if quote is None:
            raise PostkitError(f"unknown quote_id {quote_id!r}", fix="pick a quote listed by the study")
        return quote

    def _latest(self) -> dict[str, dict[str, Any]]:
        frame = self.store.reviews(REVIEW_KIND)
        return {row["item_id"]: _decision(row) for row in frame.to_dict("records")}

    def quotes(self) -> list[dict[str, Any]]:
        """Every quote in file order with its candidates and current ``status`` (latest decision or None)."""
        latest = self._latest()
        return [{**q, "status": latest.get(q["quote_id"])} for q in self._quotes.values()]

    def quote(self, quote_id: str) -> dict[str, Any]:
        quote = self._get(quote_id)
        return {**quote, "status": self._latest().get(quote["quote_id"])}

    def history(self, quote_id: str) -> list[dict[str, Any]]:
        """Every decision on the quote, oldest first (the audit trail)."""
        quote_id = self._get(quote_id)["quote_id"]
        frame = self.store.reviews(REVIEW_KIND)
        return [_decision(r) for r in frame.to_dict("records") if r["item_id"] == quote_id]

    # -- checking

    def _highlights(self, source_post_id: str, text: str) -> dict[str, list[list[int]]]:
        """Char spans of content words shared with the source, and of shared runs of NGRAM+ words."""
        spans = word_spans(text)
        ids = [self.index.vocab.get(w, -1) for _, _, w in spans]
        source = self.index.source_words(source_post_id).tolist()
        present = set(source)
        shared = [[s, e] for (s, e, w), i in zip(spans, ids)
                  if i >= 0 and i in present and not self.index.is_stop[i] and w not in _FUNCTION_WORDS]
        in_run = [False] * len(spans)
        for k in shared_run_starts(ids, source, NGRAM):
            in_run[k : k + NGRAM] = [True] * NGRAM
        # Consecutive words inside shared runs merge into one highlighted span.
        merged, open_run = [], None
        for (s, e, _), flag in zip(spans, in_run):
            if flag:
                open_run = [open_run[0], e] if open_run else [s, e]
            elif open_run:
                merged.append(open_run)
                open_run = None
        if open_run:
            merged.append(open_run)
        return {"shared": shared, "runs": merged}

    def _meaning(self, original: str, texts: Sequence[str]) -> list[dict[str, Any]]:
        if self._scorer is None:
            from .meaning import default_scorer

            self._scorer = default_scorer()
        return self._scorer.score(original, texts)

    def warm_up(self) -> None:
        """Load the language models now (a few seconds) rather than on the reviewer's first keystroke."""
        if self._quotes:
            quote = next(iter(self._quotes.values()))
            self.check(quote["quote_id"], quote["text"])

    def check(self, quote_id: str, text: str) -> dict[str, Any]:
        """Run the traceability check and meaning score on a reviewer's text, with highlights."""
        quote = self._get(quote_id)
        if not isinstance(text, str) or not text.strip():
            raise PostkitError("the text is empty", fix="type the paraphrase to check")
        row = self.index.check([{"quote_id": quote["quote_id"], "source_post_id": quote["source_post_id"],
                                 "text": text}], self.thresholds, n_threads=1)[0]
        meaning = self._meaning(quote["text"], [text])[0]
        result = {k: row[k] for k in SCORE_FIELDS if k in row} | meaning
        return result | self._highlights(quote["source_post_id"], text)

    # -- deciding

    def decide(self, quote_id: str, reviewer: str, action: str, text: str, note: str | None = None) -> dict[str, Any]:
        """Record a reviewer's approve/reject of a text; approval only for a text that is disguised now."""
        action = (action or "").strip().lower()
        if action not in QUOTE_ACTIONS:
            raise PostkitError(f"unknown action {action!r}", fix=f"use one of: {', '.join(QUOTE_ACTIONS)}")
        if not isinstance(reviewer, str) or not reviewer.strip():
            raise PostkitError("the reviewer name is empty", fix="enter your name or initials")
        checked = self.check(quote_id, text)
        scores = {k: checked[k] for k in (*SCORE_FIELDS, "lemma_overlap", "cmo_same", "negation_kept")
                  if k in checked}
        if action == "approve" and checked["verdict"] != "disguised":
            raise PostkitError(
                f"quote {quote_id}: cannot approve a text that is '{checked['verdict']}' "
                f"(source rank {checked['source_rank']}, longest shared run {checked['longest_shared_run']}, "
                f"5-word matches {checked['exact_5gram_hits']})",
                fix="reword the highlighted words until the verdict is disguised",
            )
        self.store.add_review(REVIEW_KIND, self._get(quote_id)["quote_id"], reviewer.strip(), action,
                              text=text, scores=scores, note=(note or None))
        return self.history(quote_id)[-1]

    # -- coding suggestions (the same store)

    def excerpts(self) -> list[dict[str, Any]]:
        """Excerpts with their code suggestions (codebook names, areas, polarity) and coders' decisions."""
        if self._codes is None:
            from ..coding.codebook import load_codebook

            self._codes = {code.id: (area, code) for area, _, code in load_codebook().codes()}
        codes = self._codes
        suggestions: dict[str, list[dict[str, Any]]] = {}
        for row in self.store.suggestions().to_dict("records"):
            area, code = codes.get(row["code_id"], (None, None))
            suggestions.setdefault(row["unit_id"], []).append({
                "code_id": row["code_id"], "name": code.name if code else row["code_id"],
                "area": area.id if area else None, "polarity": code.polarity if code else None,
                "score": row["score"], "evidence": json.loads(row["evidence"]) if row["evidence"] else [],
            })
        decisions: dict[str, dict[str, dict[str, Any]]] = {}
        for row in self.store.codings().to_dict("records"):
            decisions.setdefault(row["unit_id"], {}).setdefault(row["coder"], {})[row["code_id"]] = {
                "action": row["action"], "memo": row["memo"], "decided_at": row["decided_at"]}
        out = []
        for row in self.store.excerpts().to_dict("records"):
            unit = row["unit_id"]
            ranked = sorted(suggestions.get(unit, []), key=lambda s: -(s["score"] or 0))
            out.append({"unit_id": unit, "post_id": row["post_id"], "forum": row["forum"], "text": row["text"],
                        "suggestions": ranked, "decisions": decisions.get(unit, {})})
        return out

    def decide_code(self, unit_id: str, code_id: str, coder: str, action: str, memo: str | None = None) -> None:
        self.store.decide(unit_id, code_id, coder, action, memo)

    # -- export


def _decision(row: dict[str, Any]) -> dict[str, Any]:
    return {"action": row["action"], "reviewer": row["reviewer"], "text": row["text"], "note": row["note"],
            "decided_at": row["decided_at"], "scores": row["scores"]}


def export_approved(study: QuoteStudy, output: str | Path) -> dict[str, int]:
    """Write approved quotes that still pass the check; refuse (nothing written) if any does not.

    Every approved text is re-checked against the study's index with the current
    thresholds: publication is the last point at which a traceable quote can be stopped.
    """
    from ..io import OutputSet

    quotes = study.quotes()  # one read of the decisions serves the export and the counts
    statuses = [q["status"]["action"] if q["status"] else "pending" for q in quotes]
    rows, failing = [], []
    for quote, status in zip(quotes, statuses):
        if status != "approve":
            continue
        decision = quote["status"]
        checked = study.check(quote["quote_id"], decision["text"])
        if checked["verdict"] != "disguised":
            failing.append(f"{quote['quote_id']} ({checked['verdict']})")
            continue
        rows.append({"quote_id": quote["quote_id"], "source_post_id": quote["source_post_id"],
                     "text": decision["text"], **{k: checked[k] for k in SCORE_FIELDS},
                     "reviewer": decision["reviewer"], "approved_at": decision["decided_at"],
                     "note": decision["note"]})
    if failing:
        raise PostkitError(
            f"{len(failing)} approved quote(s) no longer pass the traceability check: {', '.join(failing[:10])}"
            + (" …" if len(failing) > 10 else ""),
            path=study.folder,
            fix="reopen them in `postkit review serve`, reword until disguised and approve again",
        )
    frame = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))
    frame["source_rank"] = frame["source_rank"].astype("Int64")
    with OutputSet(inputs=[study.store_path, study.folder / SUGGESTIONS_FILE]) as outputs:
        writer = outputs.table(output)
        writer.write(frame)
        if writer.columns is None:
            writer.set_empty_columns(list(EXPORT_COLUMNS))
    return {"exported": len(rows), "quotes": len(statuses), "rejected": statuses.count("reject"),
            "pending": statuses.count("pending")}
