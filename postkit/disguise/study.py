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

Reviewer and coder names are recorded normalised (:func:`postkit.review.identity.normalise_name`:
NFKC, invisible characters removed, trimmed, case-folded), so ``Bob`` and ``bob`` are one
person. Requests are validated before any work: unknown quote, unit or code ids and texts
over :data:`MAX_TEXT_CHARS` / :data:`MAX_NOTE_CHARS` raise :class:`ReviewInputError` (the
review app answers 422), since a check costs time in proportion to the text's length.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
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
# A quote is at most a few hundred words. Longer texts are refused before checking: the check's
# time grows with the text (200,000 characters took 16 s and held every other check up).
MAX_TEXT_CHARS = 2_000
MAX_NOTE_CHARS = 2_000
MAX_ID_CHARS = 200
CHECK_CACHE_SIZE = 256  # recent (quote, text) checks; decide() reuses the check the page just made


class ReviewInputError(PostkitError):
    """A review request names something that does not exist or exceeds a bound.

    Separate from other :class:`PostkitError` so the review app can answer 422
    (well-formed but unacceptable) rather than 400.
    """


def _bounded(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ReviewInputError(f"the {what} must be text")
    if len(value) > limit:
        raise ReviewInputError(f"the {what} is longer than {limit:,} characters",
                               fix=f"shorten it to {limit:,} characters or fewer")
    return value


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
        self._units: dict[str, set[str]] | None = None
        # check() may run on another thread than the store's (the review app runs checks on
        # their own worker so they never hold up quick calls): one check at a time, and a
        # small cache of results that decide() reuses instead of checking the text again.
        self._check_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._checked: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
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
        quote = self._quotes.get(quote_id) if isinstance(quote_id, str) else None
        if quote is None:
            raise ReviewInputError("unknown quote_id", fix="pick a quote listed by the study")
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

    def max_text_chars(self, quote_id: str) -> int:
        """The longest text accepted for a quote: :data:`MAX_TEXT_CHARS`, or twice a longer original."""
        return max(MAX_TEXT_CHARS, 2 * len(self._get(quote_id)["text"]))

    def check(self, quote_id: str, text: str) -> dict[str, Any]:
        """Run the traceability check and meaning score on a reviewer's text, with highlights.

        Thread-safe (one check at a time); never touches the store. Raises
        :class:`ReviewInputError` for an unknown quote or a text over :meth:`max_text_chars`.
        """
        quote = self._get(quote_id)
        _bounded(text, "text", self.max_text_chars(quote_id))
        if not text.strip():
            raise PostkitError("the text is empty", fix="type the paraphrase to check")
        key = (quote["quote_id"], text)
        with self._cache_lock:
            cached = self._checked.get(key)
            if cached is not None:
                self._checked.move_to_end(key)
        if cached is None:
            with self._check_lock:
                row = self.index.check([{"quote_id": quote["quote_id"], "source_post_id": quote["source_post_id"],
                                         "text": text}], self.thresholds, n_threads=1)[0]
                meaning = self._meaning(quote["text"], [text])[0]
                result = {k: row[k] for k in SCORE_FIELDS if k in row} | meaning
                cached = result | self._highlights(quote["source_post_id"], text)
            with self._cache_lock:
                self._checked[key] = cached
                while len(self._checked) > CHECK_CACHE_SIZE:
                    self._checked.popitem(last=False)
        return copy.deepcopy(cached)  # callers may change theirs

    # -- deciding

    def decide(self, quote_id: str, reviewer: str, action: str, text: str, note: str | None = None) -> dict[str, Any]:
        """Record a reviewer's approve/reject of a text; approval only for a text that is disguised now.

        ``reviewer`` is recorded normalised (see the module docstring).
        """
        from ..review.identity import normalise_name

        self._get(quote_id)
        action = (action or "").strip().lower() if isinstance(action, str) else ""
        if action not in QUOTE_ACTIONS:
            raise PostkitError("unknown action", fix=f"use one of: {', '.join(QUOTE_ACTIONS)}")
        name = normalise_name(reviewer) if isinstance(reviewer, str) else ""
        if not name:
            raise PostkitError("the reviewer name is empty", fix="enter your name or initials")
        if note is not None:
            _bounded(note, "note", MAX_NOTE_CHARS)
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
        self.store.add_review(REVIEW_KIND, self._get(quote_id)["quote_id"], name, action,
                              text=text, scores=scores, note=(note or None))
        return self.history(quote_id)[-1]

    # -- coding suggestions (the same store)

    def _codebook(self) -> dict[str, Any]:
        if self._codes is None:
            from ..coding.codebook import load_codebook

            self._codes = {code.id: (area, code) for area, _, code in load_codebook().codes()}
        return self._codes

    def _suggested_codes(self, unit_id: str) -> set[str] | None:
        """The codes suggested for a unit, or None when the store has no such unit.

        Cached; read again from the store when a unit is not in the cache (another
        process may have added excerpts since).
        """
        if self._units is None or unit_id not in self._units:
            units: dict[str, set[str]] = {unit: set() for unit in self.store.excerpts()["unit_id"]}
            for unit, code in self.store.suggestions()[["unit_id", "code_id"]].itertuples(index=False):
                if unit in units:
                    units[unit].add(code)
            self._units = units
        return self._units.get(unit_id)

    def excerpts(self, coder: str) -> list[dict[str, Any]]:
        """Excerpts with their code suggestions (codebook names, areas, polarity) and *one* coder's decisions.

        ``decisions`` maps code_id to that coder's latest decision: coders judge
        independently (blind coding, as agreement needs), so nobody is shown another's.
        """
        from ..review.identity import normalise_name

        coder = normalise_name(coder) if isinstance(coder, str) else ""
        if not coder:
            raise PostkitError("the coder name is empty", fix="enter your name or initials")
        codes = self._codebook()
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
            if row["coder"] == coder:
                decisions.setdefault(row["unit_id"], {})[row["code_id"]] = {
                    "action": row["action"], "memo": row["memo"], "decided_at": row["decided_at"]}
        out = []
        for row in self.store.excerpts().to_dict("records"):
            unit = row["unit_id"]
            ranked = sorted(suggestions.get(unit, []), key=lambda s: -(s["score"] or 0))
            out.append({"unit_id": unit, "post_id": row["post_id"], "forum": row["forum"], "text": row["text"],
                        "suggestions": ranked, "decisions": decisions.get(unit, {})})
        return out

    def decide_code(self, unit_id: str, code_id: str, coder: str, action: str, memo: str | None = None) -> None:
        """Record a coder's decision on a code for a unit; ``coder`` is recorded normalised.

        The unit must be in the store, and the code in the codebook or among the codes
        suggested for that unit (a suggestion made with an older codebook can still be
        answered); anything else raises :class:`ReviewInputError`.
        """
        from ..coding.store import ACTIONS
        from ..review.identity import normalise_name

        _bounded(unit_id, "unit_id", MAX_ID_CHARS)
        _bounded(code_id, "code_id", MAX_ID_CHARS)
        if memo is not None:
            _bounded(memo, "memo", MAX_NOTE_CHARS)
        suggested = self._suggested_codes(unit_id)
        if suggested is None:
            raise ReviewInputError("unknown unit_id", fix="pick an excerpt listed by the study")
        if code_id not in self._codebook() and code_id not in suggested:
            raise ReviewInputError("unknown code_id: not in the codebook nor suggested for this unit",
                                   fix="pick one of the unit's suggested codes or a code of the codebook")
        if not isinstance(action, str) or action.strip().lower() not in ACTIONS:
            raise PostkitError("unknown action", fix=f"use one of: {', '.join(ACTIONS)}")
        name = normalise_name(coder) if isinstance(coder, str) else ""
        if not name:
            raise PostkitError("the coder name is empty", fix="enter your name or initials")
        self.store.decide(unit_id, code_id, name, action, memo)

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
