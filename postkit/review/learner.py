"""The review app learning from its coders: retrain the study's ranker in the background
after every N coding decisions, re-rank the suggestions of the excerpts nobody has coded
yet, and order the remaining excerpts most informative first.

Why it exists
-------------
:mod:`postkit.coding.learn` has the library calls (``retrain_from_store``,
``uncertainty``); this module runs them *beside* coders at work, which brings three
obligations the library calls do not have:

* **never block a coder.** Retraining loads spaCy and fits a model (seconds); it runs on
  one background thread of its own, so decisions, which go through the server's study
  thread, are never held up by it. It reads the store through its own read-only
  connection (SQLite's WAL lets it read while coders write) and writes only two things:
  the ranker file, atomically and under the file's exclusive lock (so a ``postkit code
  retrain`` in another process at the same moment stops with "in use"), and the new
  suggestions, which it hands to the study thread as one short store transaction;
* **never two at once.** One retrain runs at a time; decisions that arrive meanwhile
  only mark it to look again when it finishes;
* **never lose or hide a decision.** Retraining only reads decisions. A retrain that
  fails leaves the old ranker and suggestions in place and says why in one line
  (:attr:`Learner.status`). Suggestions of an excerpt anyone has decided on are never
  re-ranked (checked again on the study thread just before writing), so what a coder
  answered stays what they were shown; and re-ranked suggestions are *added* to the
  store (tagged with the codebook version plus ``+ranker:HASH``), never written over,
  as the store keeps every suggestion ever shown.

The swap is atomic: the new ranker and the uncertainty scores computed with it replace
the old pair under one lock, after the new suggestions are in the store, so a request
never mixes an old ranker's order with a new one's.

When is a retrain due: when the store holds at least ``every`` decisions (all coders')
more than the ranker file was trained on (its ``store_decisions``), and at least
``every`` more than the last attempt that found too few coded units (so a study that
cannot be trained yet is not retried after every single decision).
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..coding.codebook import Codebook
from ..coding.learn import NotEnoughCodings, default_ranker_path, retrain_from_store, uncertainty
from ..coding.ranker import AreaRanker, lemmatise, load_ranker
from ..errors import PostkitError
from ..timestamps import iso, now_utc

__all__ = ["APP_MIN_UNITS", "DEFAULT_RETRAIN_EVERY", "ORDERS", "Learner", "review_settings", "study_settings"]

DEFAULT_RETRAIN_EVERY = 25
# The app swaps in a study's own ranker only once it has this many coded excerpts: below about
# 50 coded posts such a ranker was worse than always suggesting the commonest area on real
# posts (learning curve, docs/benchmarks.md), so earlier retrains would make suggestions worse.
APP_MIN_UNITS = 50
ORDERS = ("sampled", "uncertainty")
_REVIEW_OPTIONS = {"retrain_every", "order"}
# Re-ranked suggestions are stored under the codebook version plus this and the ranker's hash.
RANKER_TAG = "+ranker:"


def review_settings(section: Any, where: str | Path | None = None) -> dict[str, Any]:
    """The ``[review]`` section of a study file, checked: ``retrain_every`` (whole number
    >= 0; 0 = off) and ``order`` (sampled or uncertainty), each only when given."""
    if not isinstance(section, dict):
        raise PostkitError("[review] must be a table of options", path=where,
                           fix="write e.g. [review] then retrain_every = 25 on the next line")
    unknown = sorted(set(section) - _REVIEW_OPTIONS)
    if unknown:
        raise PostkitError(f"[review] unknown option '{unknown[0]}'", path=where,
                           fix=f"known options: {', '.join(sorted(_REVIEW_OPTIONS))}")
    settings: dict[str, Any] = {}
    if "retrain_every" in section:
        every = section["retrain_every"]
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise PostkitError("[review] retrain_every must be a whole number of decisions, 0 or more", path=where,
                               fix="write retrain_every = 25 (retrain after every 25 decisions), or 0 for never")
        settings["retrain_every"] = every
    if "order" in section:
        if section["order"] not in ORDERS:
            raise PostkitError("[review] order must be sampled or uncertainty", path=where,
                               fix='write order = "sampled" or order = "uncertainty"')
        settings["order"] = section["order"]
    return settings


def study_settings(store_path: str | Path) -> dict[str, Any]:
    """The ``[review]`` settings of the study that made the run folder holding this store
    (recorded in its ``manifest.json``); empty outside a run folder or without the section."""
    import json

    from ..locks import run_folder_of

    run = run_folder_of(store_path)
    if run is None:
        return {}
    manifest = run / "manifest.json"
    try:
        config = json.loads(manifest.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError):
        return {}
    section = config.get("review") if isinstance(config, dict) else None
    return review_settings(section, manifest) if section is not None else {}


def _unit_text(row: Any) -> str:
    text = row.text if isinstance(row.text, str) else ""
    start = int(row.start) if row.start is not None and row.start == row.start else 0
    end = int(row.end) if row.end is not None and row.end == row.end else len(text)
    return text[start:end]


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, PostkitError):
        return exc.message
    return f"{type(exc).__name__} (a bug in postkit; the terminal shows the details)"


class Learner:
    """Background retraining and uncertainty order for one coding store.

    ``store_path``: the study's ``coding.sqlite``. ``every``: retrain after this many new
    decisions (0: never). ``order``: the excerpt order when a request names none.
    ``write(fn)``: runs ``fn(store)`` with the app's writable store on its study thread and
    returns the result (the server passes one; without it re-ranked suggestions are not
    written). ``min_units``: coded excerpts needed before a retrain (see :data:`APP_MIN_UNITS`).
    ``retrain``: the training call (:func:`retrain_from_store`'s signature).
    """

    def __init__(self, store_path: str | Path, *, every: int = DEFAULT_RETRAIN_EVERY, order: str = "sampled",
                 codebook: Codebook | None = None, write: Callable[[Callable[[Any], Any]], Any] | None = None,
                 min_units: int = APP_MIN_UNITS, retrain: Callable[..., Any] = retrain_from_store) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise PostkitError("retrain every must be a whole number of decisions, 0 or more",
                               fix="e.g. --retrain-every 25, or 0 to switch retraining off")
        if order not in ORDERS:
            raise PostkitError(f"unknown excerpt order {order!r}", fix=f"use one of: {', '.join(ORDERS)}")
        self.store_path = Path(store_path)
        self.ranker_path = default_ranker_path(self.store_path)
        self.every, self.order, self.min_units = every, order, min_units
        self._codebook = codebook
        self._write, self._retrain = write, retrain
        self._lock = threading.Lock()          # state below
        self._nlp_lock = threading.Lock()      # the spaCy pipeline is used by one thread at a time
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postkit-review-learn")
        self._running = self._pending = self._closed = False
        self._tagger: Any = None
        self._ranker: AreaRanker | None = None
        self._scores: dict[str, float] = {}    # unit_id -> margin under self._ranker
        self._texts: dict[str, str] = {}       # unit_id -> the unit's text
        self._lemmas: dict[str, list[str]] = {}
        self._last_attempt = 0
        self._trained = self._trained_on()        # decisions the ranker file was trained on
        self._decisions = self._count_decisions()  # kept up to date by decided(), re-read when retraining
        self._status: dict[str, Any] = {"state": "idle"}
        self._status = self._initial_status()

    # -- status -----------------------------------------------------------------

    def _initial_status(self) -> dict[str, Any]:
        if self.ranker_path.is_file():
            try:
                ranker = load_ranker(self.ranker_path)
                decisions = int(ranker.meta.get("store_decisions", 0))
                at = iso(datetime.fromtimestamp(self.ranker_path.stat().st_mtime, UTC))
                return {"state": "retrained", "decisions": decisions, "at": at,
                        "units": sum(int(n) for n in (ranker.meta.get("outcomes") or {}).values()),
                        "message": f"the study's ranker was trained on {decisions:,} decisions"}
            except (PostkitError, OSError, ValueError):
                pass
        return {"state": "idle", "message": ""}

    @property
    def status(self) -> dict[str, Any]:
        """What the page shows: ``state`` (off, idle, running, retrained, waiting, failed),
        ``every``, ``message`` and, once retrained, ``decisions``, ``units``, ``at`` and
        ``reranked`` (excerpts whose suggestions the new ranker re-ranked)."""
        with self._lock:
            status = dict(self._status)
            running = self._running
        if self.every == 0:
            return {**status, "state": "off", "every": 0, "message": "automatic retraining is off"}
        if running:
            status["state"], status["message"] = "running", "retraining the ranker on the coders' decisions…"
        return {**status, "every": self.every}

    def _set_status(self, **status: Any) -> None:
        with self._lock:
            self._status = status

    # -- retraining ---------------------------------------------------------------

    def _due(self) -> bool:
        return self._decisions - max(self._trained, self._last_attempt) >= self.every

    def decided(self) -> None:
        """Call after each recorded decision: when a retrain is due (see the module
        docstring) it starts in the background, and :attr:`status` says "running" from
        now on; returns at once."""
        with self._lock:
            self._decisions += 1
            if self.every == 0 or self._closed:
                return
            if self._running:
                self._pending = True  # look again when the running one finishes
                return
            if not self._due():
                return
            self._running = True
        self._executor.submit(self._loop)

    def _loop(self) -> None:
        while True:
            try:
                self._retrain_if_due()
            except Exception as exc:  # noqa: BLE001 - a failed retrain is reported, never fatal
                if not isinstance(exc, PostkitError):
                    traceback.print_exc(file=sys.stderr)
                self._set_status(state="failed", at=iso(now_utc()),
                                 message=f"retraining failed: {_one_line(exc)}; every decision is saved")
            with self._lock:
                if not self._pending or self._closed:
                    self._running = self._pending = False
                    return
                self._pending = False

    def _trained_on(self) -> int:
        if not self.ranker_path.exists():
            return 0
        try:
            return int(load_ranker(self.ranker_path).meta.get("store_decisions", 0))
        except (PostkitError, ValueError, TypeError):
            return 0

    def _count_decisions(self) -> int:
        from ..coding.store import CodingStore

        with CodingStore(self.store_path, read_only=True) as store:
            return len(store.decisions())

    def _retrain_if_due(self) -> None:
        decisions, trained = self._count_decisions(), self._trained_on()  # other processes may have added
        with self._lock:
            self._decisions, self._trained = decisions, trained
            if not self._due():
                return
            self._last_attempt = decisions
        try:
            with self._nlp_lock:
                result = self._retrain(self.store_path, output=self.ranker_path, codebook=self._codebook,
                                       nlp=self._get_tagger().nlp, min_units=self.min_units)
        except NotEnoughCodings as exc:
            self._set_status(state="waiting", decisions=decisions, units=exc.units,
                             message=f"not retrained yet: too few codings ({exc.units:,} coded excerpt"
                                     f"{'' if exc.units == 1 else 's'} in {exc.outcomes} outcome"
                                     f"{'' if exc.outcomes == 1 else 's'}; needs {exc.needed} in two)")
            return
        ranker = load_ranker(result.path)  # the file as written: its hash names the new suggestions
        reranked = self._rerank(ranker)
        with self._lock:
            known = list(self._lemmas)
        scores = self._margins(ranker, known)
        with self._lock:  # swap: ranker and its scores together
            self._ranker, self._scores = ranker, scores
            self._trained = int(ranker.meta.get("store_decisions", result.decisions))
            self._status = {"state": "retrained", "decisions": result.decisions, "units": result.units,
                            "reranked": reranked, "at": iso(now_utc()),
                            "message": f"ranker retrained on {result.decisions:,} decisions"}

    def _get_tagger(self) -> Any:
        if self._tagger is None:
            from ..coding.tagger import Tagger

            self._tagger = Tagger(self._codebook, ranker=None)
        return self._tagger

    def _rerank(self, ranker: AreaRanker) -> int:
        """New suggestions, from ``ranker``, for the excerpts nobody has decided on; returns
        how many excerpts were re-ranked. A code suggested before that the new ranker no
        longer suggests is kept with score 0 (listed last, its evidence gone)."""
        from ..coding.store import CodingStore

        if self._write is None:
            return 0
        with CodingStore(self.store_path, read_only=True) as store:
            excerpts = store.excerpts()
            decided = set(store.coded_units()["unit_id"])
            before = store.suggestions()
        todo = [row for row in excerpts.itertuples(index=False) if row.unit_id not in decided]
        if not todo:
            return 0
        shown: dict[str, set[str]] = {}
        for unit_id, code_id in before[["unit_id", "code_id"]].itertuples(index=False):
            shown.setdefault(unit_id, set()).add(code_id)
        with self._nlp_lock:
            tagger = self._get_tagger()
            tagger.ranker = ranker
            rows = []
            for row in todo:
                text = row.text if isinstance(row.text, str) else ""
                suggestions = self._suggest(tagger, text, row.start, row.end)
                if suggestions is None:
                    continue
                new = {s["code_id"] for s in suggestions}
                rows += [{"unit_id": row.unit_id, "code_id": s["code_id"], "score": s["score"],
                          "evidence": s.get("evidence", [])} for s in suggestions]
                rows += [{"unit_id": row.unit_id, "code_id": code_id, "score": 0.0, "evidence": []}
                         for code_id in sorted(shown.get(row.unit_id, set()) - new)]
            version = f"{tagger.version_hash}{RANKER_TAG}{ranker.version_hash[:16]}"
            tagger.ranker = None

        def add(store: Any) -> int:  # on the study thread: skip units decided meanwhile
            now_decided = set(store.coded_units()["unit_id"])
            keep = [r for r in rows if r["unit_id"] not in now_decided]
            store.add_suggestions(keep, codebook_version=version)
            return len({r["unit_id"] for r in keep})

        return int(self._write(add)) if rows else 0

    @staticmethod
    def _suggest(tagger: Any, text: str, start: Any, end: Any) -> list[dict[str, Any]] | None:
        """The tagger's suggestions for one excerpt: the whole post, or the sentence at
        ``start``..``end`` of it (None when the tagger's sentences do not include it)."""
        start = int(start) if start is not None and start == start else 0
        end = int(end) if end is not None and end == end else len(text)
        if start == 0 and end == len(text):
            return tagger.suggest([text])[0]
        for unit in tagger.suggest([text], unit="sentence")[0]:
            if unit["start"] == start and unit["end"] == end:
                return unit["suggestions"]
        return None

    # -- uncertainty order ----------------------------------------------------------

    def _current_ranker(self) -> AreaRanker:
        with self._lock:
            ranker = self._ranker
        if ranker is None:
            ranker = load_ranker(self.ranker_path) if self.ranker_path.is_file() else load_ranker()
            with self._lock:
                if self._ranker is None:
                    self._ranker = ranker
                ranker = self._ranker
        return ranker

    def _margins(self, ranker: AreaRanker, unit_ids: Sequence[str]) -> dict[str, float]:
        """Margins of units whose lemmas are cached, under ``ranker`` (no spaCy needed)."""
        with self._lock:
            ids = [u for u in unit_ids if u in self._lemmas]
            texts, lemmas = [self._texts[u] for u in ids], [self._lemmas[u] for u in ids]
        scores = uncertainty(ranker, texts, lemma_lists=lemmas)
        return {u: s["margin"] for u, s in zip(ids, scores)}

    def _load_texts(self, unit_ids: set[str]) -> None:
        """Cache the texts and lemmas of these units (a unit's text never changes: the store
        keeps the first text registered under an id)."""
        from ..coding.store import CodingStore

        with CodingStore(self.store_path, read_only=True) as store:
            texts = {row.unit_id: _unit_text(row) for row in store.excerpts().itertuples(index=False)
                     if row.unit_id in unit_ids}
        with self._nlp_lock:
            with self._lock:
                todo = [u for u in texts if u not in self._lemmas]
            lemmas = lemmatise([texts[u] for u in todo], self._get_tagger().nlp)
        with self._lock:
            self._texts.update(texts)
            self._lemmas.update(zip(todo, lemmas))

    def margins(self, unit_ids: Sequence[str]) -> dict[str, float]:
        """Each unit's margin (P(best) - P(second) outcome; small = unsure) under the current
        ranker: the study's ``ranker.json`` when it exists, else the packaged one."""
        ranker = self._current_ranker()
        with self._lock:
            known = {u: self._scores[u] for u in unit_ids if u in self._scores and self._ranker is ranker}
        missing = [u for u in unit_ids if u not in known]
        if missing:
            with self._lock:
                new_units = {u for u in missing if u not in self._lemmas}
            if new_units:
                self._load_texts(new_units)
            computed = self._margins(ranker, missing)
            with self._lock:
                if self._ranker is ranker:
                    self._scores.update(computed)
            known.update(computed)
        return known

    def ordered(self, excerpts: list[dict[str, Any]], order: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        """``(order used, excerpts in that order)`` for one coder's excerpt list (each with
        that coder's ``decisions``, each with ``decided_at``). ``sampled``: as given.
        ``uncertainty``: the excerpts the coder has decided on first, in the order they
        first decided on them (their coding history stays in view, and the excerpt just
        coded is the last of it, so "next" leads to the most informative one left), then
        the rest smallest margin first (ties by unit id)."""
        order = order or self.order
        if order not in ORDERS:
            raise PostkitError(f"unknown excerpt order {order!r}", fix=f"use one of: {', '.join(ORDERS)}")
        if order == "sampled":
            return order, list(excerpts)
        done = [e for e in excerpts if e.get("decisions")]
        todo = [e for e in excerpts if not e.get("decisions")]
        done.sort(key=lambda e: min(str(d.get("decided_at") or "") for d in e["decisions"].values()))
        margins = self.margins([e["unit_id"] for e in todo])
        todo.sort(key=lambda e: (margins.get(e["unit_id"], float("inf")), e["unit_id"]))
        return order, done + todo

    # -- lifetime ---------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no retrain is running or pending (for tests and a clean stop);
        True when idle."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._running:
                    return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def close(self) -> None:
        """Stop taking new retrains and wait for a running one (its write needs the study)."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
