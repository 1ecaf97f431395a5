"""A disguise review folder: suggested paraphrases, the attacker's index and the decisions.

This is the library behind ``postkit review serve`` and ``postkit disguise export``; the
web app is a thin client, so everything a reviewer can do is also scriptable and tested
without a browser.

Folder layout (written by ``postkit disguise suggest --study DIR`` or by the ``disguise``
stage of ``postkit run``, which puts it under ``RUN/disguise/``)::

    DIR/suggestions.jsonl   one quote per line: quote_id, source_post_id, text, candidates
    DIR/index.json          which search index the quotes are checked against: its cache
                            key (the corpus's hash) and the corpus to rebuild it from
    DIR/coding.sqlite       decisions (unless the run has ``tag/coding.sqlite``, which is
                            then shared, so coding and disguise decisions live in one store)

The search index itself is never in the folder: it holds every word of every post of
the forum, consented or not, and the folder is what reviewers are given. It lives in a
private cache (:func:`postkit.disguise.trace.default_index_dir`, mode 0700) found by its
key, or is rebuilt from the recorded corpus when this machine has no copy
(:func:`open_index`).

Texts are checked in their search form (:mod:`postkit.identity`: invisible characters
removed, compatibility forms unfolded, look-alike letters folded), and a text that still
contains invisible characters, compatibility forms or look-alike letters of another
script can be neither approved nor exported: the published words would not be the ones
a reader's search sees (:func:`publication_problem`).

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
INDEX_RECORD = "index.json"
LEGACY_INDEX_DIR = "index"  # where postkit before the private cache kept the index (the whole forum)
STORE_FILE = "coding.sqlite"
REVIEW_KIND = "quote"
QUOTE_ACTIONS = ("approve", "reject")
SCORE_FIELDS = ("verdict", "source_rank", "dense_rank", "longest_shared_run", "distinctive_overlap",
                "exact_5gram_hits", "meaning_score")
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
    """(the folder holding suggestions.jsonl and index.json, the store path) for a study or run folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PostkitError("the study folder does not exist", path=folder,
                           fix="pass the folder written by `postkit disguise suggest --study` or a run folder")
    for candidate in (folder, folder / "disguise"):
        if (candidate / SUGGESTIONS_FILE).is_file():
            if (candidate / LEGACY_INDEX_DIR / "meta.json").is_file():
                raise PostkitError(
                    f"this review folder keeps the forum's search index inside it ({LEGACY_INDEX_DIR}/, made by an "
                    "older postkit): it holds the text of every post, excluded ones too, and must not be shared",
                    path=candidate / LEGACY_INDEX_DIR,
                    fix=f"delete {LEGACY_INDEX_DIR}/ and make the review folder again with `postkit disguise suggest "
                        "QUOTES --corpus CORPUS --study DIR` (the index now lives in a private cache)")
            if not (candidate / INDEX_RECORD).is_file():
                raise PostkitError(f"{SUGGESTIONS_FILE} has no {INDEX_RECORD} beside it (which corpus to search)",
                                   path=candidate,
                                   fix="rerun `postkit disguise suggest --study DIR` (it records the index)")
            shared = folder / "tag" / STORE_FILE
            return candidate, shared if shared.is_file() else candidate / STORE_FILE
    raise PostkitError(f"no {SUGGESTIONS_FILE} in the folder or its disguise/ subfolder", path=folder,
                       fix="create it with `postkit disguise suggest QUOTES --corpus CORPUS --study DIR`")


# --------------------------------------------------------------------------- the index record


def index_record(index: TraceIndex, folder: Path, *, corpus: str | Path | None = None,
                 column_map: dict[str, str] | None = None, corpus_sha256: str | None = None,
                 location: str | Path | None = None) -> dict[str, Any]:
    """What ``index.json`` says: the index's key, the corpus to rebuild it from, how.

    The corpus path is kept absolute and relative to the folder, so a moved checkout still
    finds it. ``location`` is a folder the user chose for the index (``--index``).
    """
    import os

    from .trace import CACHE_ENV, FORMAT_VERSION

    record: dict[str, Any] = {
        "about": "The search index of the corpus the quotes are checked against. It is NOT in this folder: it "
                 "holds the text of every post of the forum, excluded posts too. postkit finds it in a private "
                 f"cache (${CACHE_ENV} or ~/.cache/postkit/trace-index/KEY/) or rebuilds it from the corpus.",
        "format": FORMAT_VERSION, "key": index.fingerprint, "posts": len(index),
        "corpus": None, "location": str(Path(location).resolve()) if location is not None else None,
    }
    if corpus is not None:
        corpus = Path(corpus).resolve()
        record["corpus"] = {"path": str(corpus), "relative": os.path.relpath(corpus, Path(folder).resolve()),
                            "sha256": corpus_sha256, "columns": dict(column_map) if column_map else None}
        record["rebuild"] = ("automatic when this machine has no copy: `postkit review serve` and "
                             "`postkit disguise export` index the corpus again (same file, same sha256)")
    return record


def save_study_index(folder: str | Path, index: TraceIndex, **record: Any) -> Path:
    """Cache ``index`` privately (or at ``location``) and write the folder's ``index.json``.

    For studies whose index was built in memory (``index_record``'s keywords pass through);
    :func:`postkit.disguise.suggest.suggest_file` does the same for a corpus file.
    """
    from ..io import write_atomic
    from .trace import default_index_dir, refuse_shared_location

    folder = Path(folder)
    location = record.get("location")
    if location is not None:
        refuse_shared_location(location, folder)
    index.save(location if location is not None else default_index_dir(index.fingerprint))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / INDEX_RECORD
    write_atomic(path, json.dumps(index_record(index, folder, **record), indent=2) + "\n")
    return path


def open_index(folder: Path, notify: Any = None) -> TraceIndex:
    """The index ``folder/index.json`` names: from the chosen location or the private cache,
    else rebuilt from the recorded corpus (``notify`` is told why it takes a while).

    Fails closed when the corpus is missing or changed: a quote can only be checked
    against the forum its suggestions were checked against.
    """
    from .trace import FORMAT_VERSION, default_index_dir, fingerprint_file, load_index

    path = folder / INDEX_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise PostkitError(f"{INDEX_RECORD} is unreadable", path=path,
                           fix="rerun `postkit disguise suggest --study DIR`") from None
    if not isinstance(record, dict):
        record = {}
    key = record.get("key")
    if record.get("format") != FORMAT_VERSION or not isinstance(key, str):
        raise PostkitError(f"{INDEX_RECORD} was written by another postkit version", path=path,
                           fix="make the review folder again with `postkit disguise suggest --study DIR`")
    places = [Path(record["location"])] if record.get("location") else []
    places.append(default_index_dir(key))
    for place in places:
        if TraceIndex.cached_fingerprint(place) == key:
            return TraceIndex.load(place)
    corpus = record.get("corpus") if isinstance(record.get("corpus"), dict) else {}
    candidates = [folder / corpus["relative"]] if corpus.get("relative") else []
    candidates += [Path(corpus["path"])] if corpus.get("path") else []
    found = next((c.resolve() for c in candidates if c.exists()), None)
    if found is None:
        where = f" ({corpus['path']})" if corpus.get("path") else ""
        raise PostkitError(
            f"the search index is not in this machine's cache and the corpus it was built from{where} is not there",
            path=path,
            fix=f"copy the corpus file to that place (sha256 {corpus.get('sha256') or 'as recorded'}) so it can be "
                "indexed again, or point POSTKIT_CACHE_DIR at a cache that holds the index")
    columns = corpus.get("columns")
    if fingerprint_file(found, columns) != key:
        raise PostkitError(
            "the corpus changed since the quotes were checked (its sha256 differs), so the study's index "
            "cannot be rebuilt from it", path=found,
            fix="restore the corpus the study was made with, or make the review folder again with "
                "`postkit disguise suggest --study DIR` against the current corpus")
    if notify is not None:
        notify(f"The search index is not in this machine's cache; indexing {found} again "
               "(once: it is then cached privately)…")
    index, _ = load_index(found, None, column_map=columns, fingerprint=key)
    return index


# --------------------------------------------------------------------------- publication checks


def publication_problem(text: str) -> str | None:
    """Why ``text`` may not be published as it is (invisible characters, compatibility forms,
    look-alike letters of another script), or None. Names code points and positions, never
    the text."""
    from ..identity import character_label, hidden_characters

    found = hidden_characters(text) if isinstance(text, str) else []
    if not found:
        return None
    shown = "; ".join(f"{character_label(char)} at character {position + 1} ({why})"
                      for position, char, why in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return f"the text contains {shown}{more}"


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
            raise PostkitError(f"source post {unknown[0]!r} is not in the saved index", path=folder / INDEX_RECORD,
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
    def open(cls, folder: str | Path, thresholds: Thresholds | None = None, *, notify: Any = None) -> QuoteStudy:
        """Open a review or run folder; the index comes from the private cache or is rebuilt
        from the recorded corpus (``notify(message)`` is told, since that takes a while)."""
        found, store_path = locate(folder)
        quotes = read_suggestions(found / SUGGESTIONS_FILE)
        index = open_index(found, notify)
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
                result["hidden_characters"] = _hidden_list(text)
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
        problem = publication_problem(text)
        if action == "approve" and problem is not None:
            raise PostkitError(
                f"quote {quote_id}: cannot approve: {problem}; the check reads the text without them, "
                "but the published words would not be the ones a reader's search sees",
                fix="retype the marked words with plain letters and ordinary spaces, then check again",
            )
        if action == "approve" and checked["verdict"] != "disguised":
            raise PostkitError(
                f"quote {quote_id}: cannot approve a text that is '{checked['verdict']}' "
                f"(source rank {checked['source_rank']}, meaning search rank {checked.get('dense_rank') or 'not run'}, "
                f"longest shared run {checked['longest_shared_run']}, "
                f"5-word matches {checked['exact_5gram_hits']})",
                fix="reword the highlighted words until the verdict is disguised",
            )
        if action == "approve" and checked.get("risk_changed"):
            # A disguised text must still report a person's disclosure of risk as they made it.
            raise PostkitError(
                f"quote {quote_id}: cannot approve: {checked.get('risk_reason') or 'a risk statement changed'}",
                fix="keep the risk statement as the person wrote it (reword the rest), then check again",
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

    def _code_info(self, code_id: str) -> dict[str, Any]:
        """What a coder needs to judge a code: its name, definition and include/exclude notes.

        A code not in the codebook (suggested with an older one) keeps its id as its name
        and has no definition: the page says so rather than guessing.
        """
        area, code = self._codebook().get(code_id, (None, None))
        return {"code_id": code_id, "name": code.name if code else code_id,
                "area": area.id if area else None, "area_name": area.name if area else None,
                "kind": code.kind if code else None, "polarity": code.polarity if code else None,
                "definition": code.definition if code else None, "include": code.include if code else None,
                "exclude": code.exclude if code else None}

    def codes(self) -> list[dict[str, Any]]:
        """Every code of the codebook in file order (see :meth:`_code_info`), for adding a code
        that was not suggested."""
        return [self._code_info(code_id) for code_id in self._codebook()]

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
        """Excerpts with their code suggestions and *one* coder's decisions.

        Each suggestion carries the codebook's name, area, polarity, definition and
        include/exclude notes, and its evidence merged (:func:`merge_evidence`). A code
        suggested by several tagging runs (codebook versions) is listed once, as the
        latest run suggested it. ``decisions`` maps code_id to that coder's latest
        decision: coders judge independently (blind coding, as agreement needs), so nobody
        is shown another's. ``added`` lists, with their codebook entries, the codes this
        coder decided on that were not suggested (added by hand).
        """
        from ..review.identity import normalise_name

        coder = normalise_name(coder) if isinstance(coder, str) else ""
        if not coder:
            raise PostkitError("the coder name is empty", fix="enter your name or initials")
        texts = {row["unit_id"]: row for row in self.store.excerpts().to_dict("records")}
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.store.suggestions().to_dict("records"):
            key = (row["unit_id"], row["code_id"])
            seen = latest.get(key)
            if seen is None or (str(row["created_at"] or ""), str(row["codebook_version"])) >= \
                    (str(seen["created_at"] or ""), str(seen["codebook_version"])):
                latest[key] = row
        suggestions: dict[str, list[dict[str, Any]]] = {}
        for (unit, code_id), row in latest.items():
            text = texts[unit]["text"] if unit in texts else ""
            suggestions.setdefault(unit, []).append({
                **self._code_info(code_id), "score": row["score"],
                "evidence": merge_evidence(text if isinstance(text, str) else "", _evidence_list(row["evidence"])),
            })
        decisions: dict[str, dict[str, dict[str, Any]]] = {}
        for row in self.store.codings().to_dict("records"):
            if row["coder"] == coder:
                decisions.setdefault(row["unit_id"], {})[row["code_id"]] = {
                    "action": row["action"], "memo": row["memo"], "decided_at": row["decided_at"]}
        out = []
        for unit, row in texts.items():
            ranked = sorted(suggestions.get(unit, []), key=lambda s: (-(s["score"] or 0), s["code_id"]))
            mine = decisions.get(unit, {})
            suggested = {s["code_id"] for s in ranked}
            added = [self._code_info(code_id) for code_id in mine if code_id not in suggested]
            out.append({"unit_id": unit, "post_id": row["post_id"], "forum": row["forum"], "text": row["text"],
                        "suggestions": ranked, "added": added, "decisions": mine})
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


def _evidence_list(raw: Any) -> list[Any]:
    """A suggestion's stored evidence (JSON text) as a list; anything unreadable counts as none."""
    if not isinstance(raw, str) or not raw.strip():
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def merge_evidence(text: str, evidence: Sequence[Any]) -> list[dict[str, Any]]:
    """One suggestion's evidence as sorted, non-overlapping spans of ``text``, each with its words.

    Taggers may give the same words twice (a phrase and a pattern matching "only one"
    and "only"), or spans that overlap or touch; shown as they are, the page would read
    "onlyonly one". Spans whose code-point offsets do not point at their quoted words
    (e.g. made on another version of the text) are placed at the quoted words' first
    occurrence, or kept as words without a place when they are not in the text.
    Overlapping and touching spans are merged and their words taken from ``text``.
    """
    spans: list[list[int]] = []
    unplaced: list[str] = []
    for item in evidence:
        if not isinstance(item, dict):
            continue
        start, end, words = item.get("start"), item.get("end"), item.get("text")
        words = words if isinstance(words, str) else None
        placed = (isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool)
                  and not isinstance(end, bool) and 0 <= start < end <= len(text)
                  and (words is None or text[start:end] == words))
        if placed:
            spans.append([start, end])
        elif words and words.strip():
            at = text.find(words)
            if at >= 0:
                spans.append([at, at + len(words)])
            elif words not in unplaced:
                unplaced.append(words)
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return ([{"start": s, "end": e, "text": text[s:e]} for s, e in merged]
            + [{"start": None, "end": None, "text": words} for words in unplaced])


def _hidden_list(text: str) -> list[dict[str, Any]]:
    """The live check's list of characters that block publication, for the app to mark."""
    from ..identity import character_label, hidden_characters

    return [{"start": position, "end": position + 1, "character": character_label(char), "why": why}
            for position, char, why in hidden_characters(text)]


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
        problem = publication_problem(decision["text"])
        if problem is not None:  # approved before postkit refused them, or written to the store by hand
            failing.append(f"{quote['quote_id']} ({problem})")
            continue
        checked = study.check(quote["quote_id"], decision["text"])
        if checked["verdict"] != "disguised":
            failing.append(f"{quote['quote_id']} ({checked['verdict']})")
            continue
        if checked.get("risk_changed"):
            failing.append(f"{quote['quote_id']} (a risk statement changed)")
            continue
        rows.append({"quote_id": quote["quote_id"], "source_post_id": quote["source_post_id"],
                     "text": decision["text"], **{k: checked[k] for k in SCORE_FIELDS},
                     "reviewer": decision["reviewer"], "approved_at": decision["decided_at"],
                     "note": decision["note"]})
    if failing:
        raise PostkitError(
            f"{len(failing)} approved quote(s) no longer pass the traceability check or may not be "
            f"published as typed: {', '.join(failing[:10])}"
            + (" …" if len(failing) > 10 else ""),
            path=study.folder,
            fix="reopen them in `postkit review serve`, reword until disguised (plain letters and spaces only) "
                "and approve again",
        )
    frame = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))
    frame["source_rank"] = frame["source_rank"].astype("Int64")
    frame["dense_rank"] = frame["dense_rank"].astype("Int64")
    with OutputSet(inputs=[study.store_path, study.folder / SUGGESTIONS_FILE]) as outputs:
        writer = outputs.table(output)
        writer.write(frame)
        if writer.columns is None:
            writer.set_empty_columns(list(EXPORT_COLUMNS))
    return {"exported": len(rows), "quotes": len(statuses), "rejected": statuses.count("reject"),
            "pending": statuses.count("pending")}
