"""Paraphrase suggestions for quotes, each scored by the traceability check and for meaning.

For every quote the suggester

1. measures what makes it findable: each word's contribution to the source post's BM25
   score (read from the index) plus a boost for words inside 5-word runs shared with
   the source (what a phrase search finds);
2. builds candidates with :mod:`postkit.disguise.paraphrase` at increasing strength —
   synonyms for the most findable third, two thirds or all replaceable words; grammar
   and word order only; and grammar plus synonyms — with identifying details generalised
   (ages, places, durations, named services), and any 5-word run still shared with the
   source broken. Grammar means clause order, voice and contractions inside sentences,
   never just swapping sentences. Two more strategies go beyond rewording: **shorten to
   the core** (the shortest span still carrying the code's evidence from the tagger, or
   without a code the most content-bearing sentence), generalised and reworded;
   synonyms are chosen in context: with sentence embeddings, each word's synonyms are
   tried in its sentence and the one keeping the sentence closest to the original wins,
   or none if even that one drifts (``swap_min_similarity`` in
   ``rules/disguise/meaning.yaml``) — so no wrong-sense swap ("affair nurse"). Risk
   statements (:mod:`postkit.disguise.risk`) are protected from every operation, and a
   candidate that still changes one is dropped;
3. adds the candidates of any external paraphraser (a Python callable, a command that
   reads the quote on stdin and writes one candidate per line, or a language model on
   this machine behind an OpenAI-compatible chat endpoint, see :mod:`postkit.disguise.llm`),
   scored the same way;
4. checks every candidate against the corpus index in one batch, scores meaning
   preservation (:mod:`postkit.disguise.meaning`), and ranks them: disguised before
   at risk before traceable (the verdict of the worst attacker), then by meaning score,
   then by fewer edits — except that a candidate whose only change is sentence order, or
   that keeps a run of ``long_run`` (8) words of the original, is never ranked first;
5. says so plainly when no rewording will do (``no_rewording`` and ``advice`` on the
   row): when no candidate is disguised with its meaning kept, a composite or a
   summarised report is the honest alternative to a quote.

The candidates are suggestions for a human reviewer (``postkit review serve``), never
published automatically.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PostkitError
from . import paraphrase
from .trace import NGRAM, VERDICTS, Thresholds, TraceIndex, longest_shared_run, shared_run_starts, words

Paraphraser = Callable[[str], "str | Sequence[str]"]
DEFAULT_CANDIDATES = 5
EXTERNAL_TIMEOUT_S = 120
RUN_BOOST = 0.5  # words in a shared 5-gram get half the top BM25 weight on top of their own
CANDIDATE_FIELDS = ("text", "verdict", "source_rank", "dense_rank", "longest_shared_run", "meaning_score",
                    "meaning_method", "edits")
NO_REWORDING = ("No rewording will do: every candidate can still be found by searching the forum. "
                "Quote less of it, choose another exemplar (postkit disguise rank), or report this point "
                "as a composite of several posts or in your own words (a summarised report) instead of a quote.")
MEANING_LOST = ("No rewording will do: the only candidates hidden from every attacker lose the quote's meaning "
                "(meaning score below {keeps}). Choose another exemplar (postkit disguise rank), or report this "
                "point as a composite of several posts or in your own words (a summarised report) instead of a quote.")


@dataclass(frozen=True)
class Plan:
    """One recipe for a candidate."""

    name: str
    generalise: bool
    restructure: bool
    share: float  # of replaceable words given synonyms, most findable first
    drop: bool = False  # drop the most findable sentence
    core: bool = False  # shorten to the core first (the code's evidence, or the most content-bearing sentence)


PLANS = (
    Plan("synonyms for the most findable third", False, False, 0.34),
    Plan("synonyms for the most findable two thirds", False, False, 0.67),
    Plan("synonyms throughout, details generalised", True, False, 1.0),
    Plan("grammar and word order", True, True, 0.0),
    Plan("grammar + synonyms for half", True, True, 0.5),
    Plan("grammar + synonyms throughout", True, True, 1.0),
    Plan("grammar + synonyms throughout, most findable sentence dropped", True, True, 1.0, drop=True),
    Plan("shortened to the core, details generalised", True, False, 0.0, core=True),
    Plan("shortened to the core, reworded", True, True, 1.0, core=True),
)


# --------------------------------------------------------------------------- external paraphrasers

@dataclass(frozen=True)
class External:
    """An external paraphraser and the label its candidates carry in ``edits``."""

    label: str
    run: Paraphraser


def python_paraphraser(spec: str) -> External:
    """``package.module:function`` → a callable taking the quote and returning text(s)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise PostkitError(f"paraphraser {spec!r} is not module:function", fix="e.g. my_team.paraphrase:rewrite")
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise PostkitError(f"cannot load paraphraser {spec!r} ({exc})",
                           fix="install the module in this environment or check the name") from None
    if not callable(function):
        raise PostkitError(f"paraphraser {spec!r} is not callable", fix="point at a function")
    return External(f"external: {spec}", function)


def command_paraphraser(command: str, timeout: float = EXTERNAL_TIMEOUT_S) -> External:
    """A command that reads the quote on stdin and writes one candidate per line on stdout."""
    argv = shlex.split(command)
    if not argv:
        raise PostkitError("the paraphraser command is empty", fix="e.g. --paraphraser-cmd './my_model.sh'")

    def run(text: str) -> list[str]:
        try:
            done = subprocess.run(argv, input=text, capture_output=True, text=True, encoding="utf-8",
                                  timeout=timeout, check=False)
        except FileNotFoundError:
            raise PostkitError(f"paraphraser command not found: {argv[0]}",
                               fix="give the full path or put it on PATH") from None
        except subprocess.TimeoutExpired:
            raise PostkitError(f"paraphraser command timed out after {timeout:.0f} s: {command}",
                               fix="make it faster or raise the timeout") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
            raise PostkitError(f"paraphraser command failed with exit code {done.returncode}: {last}",
                               fix="run it by hand with a quote on stdin to see why")
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]

    return External(f"external: {argv[0]}", run)


def chat_paraphraser(url: str, *, model: str | None = None, prompt_path: str | Path | None = None,
                     allow_remote: bool = False, timeout: float | None = None) -> External:
    """A language model behind an OpenAI-compatible chat endpoint (Ollama, llama.cpp, vLLM).

    Refuses a host that is not this machine unless ``allow_remote``; checks at once that the
    server answers (before any slow indexing) and picks its model when it serves just one.
    The prompt comes from ``rules/disguise/paraphraser_prompt.yaml`` unless ``prompt_path``.
    """
    from .llm import DEFAULT_TIMEOUT_S, ChatParaphraser, load_prompt

    client = ChatParaphraser(url, model=model, prompt=load_prompt(prompt_path), allow_remote=allow_remote,
                             timeout=DEFAULT_TIMEOUT_S if timeout is None else timeout).connect()
    return External(client.label, client)


def describe_external(external: External) -> dict[str, Any]:
    """What a run records about a paraphraser: its label, and for a language model where, which
    model and the prompt's sha256."""
    describe = getattr(external.run, "describe", None)
    return {"label": external.label} | (describe() if callable(describe) else {})


def _external_texts(external: External, text: str) -> list[str]:
    try:
        produced = external.run(text)
    except PostkitError:
        raise
    except Exception as exc:  # a team's own code: report it as theirs, in one line
        raise PostkitError(f"{external.label} raised {type(exc).__name__}: {exc}",
                           fix="fix the paraphraser or leave it out") from None
    if isinstance(produced, str):
        produced = [produced]
    if not isinstance(produced, (list, tuple)) or not all(isinstance(p, str) for p in produced):
        raise PostkitError(f"{external.label} must return a string or a list of strings",
                           fix="return the paraphrase text(s)")
    return [p.strip() for p in produced if p.strip()]


# --------------------------------------------------------------------------- suggester

class Suggester:
    """Builds and ranks candidates for quotes against one corpus index; reuse it across quotes."""

    def __init__(self, index: TraceIndex, thresholds: Thresholds, *, nlp: Any = None, scorer: Any = None,
                 externals: Sequence[External] = (), n_candidates: int = DEFAULT_CANDIDATES,
                 settings: Any = None) -> None:
        from .meaning import MeaningScorer, load_nlp, load_settings

        self.index = index
        self.thresholds = thresholds
        self.nlp = nlp if nlp is not None else load_nlp()
        self.scorer = scorer if scorer is not None else MeaningScorer(self.nlp)
        self.settings = settings or getattr(self.scorer, "settings", None) or load_settings()
        self.risk = getattr(self.scorer, "risk", None)
        if self.risk is None:
            from .risk import load_risk_terms

            self.risk = load_risk_terms()
        self.externals = list(externals)
        self.n_candidates = n_candidates
        self.run = thresholds.max_shared_run + 1
        self._protected: dict[str, list[tuple[int, int]]] = {}

    def weights(self, text: str, source_post_id: str) -> dict[str, float]:
        """How much each word of the quote makes the source findable (0 = not at all)."""
        quote = words(text)
        weights = self.index.term_contributions(source_post_id, quote)
        source = self.index.source_words(source_post_id).tolist()
        ids = [self.index.vocab.get(w, -1) for w in quote]
        boost = RUN_BOOST * max(list(weights.values()) + [1.0])
        for k in shared_run_starts(ids, source, NGRAM):
            for word in quote[k : k + NGRAM]:
                weights[word] = weights.get(word, 0.0) + boost
        return weights

    @cached_property
    def _words_by_id(self) -> dict[int, str]:
        return {i: w for w, i in self.index.vocab.items()}

    def _source_vocabulary(self, source_post_id: str) -> tuple[list[str], frozenset[str]]:
        source = [self._words_by_id[i] for i in self.index.source_words(source_post_id).tolist()]
        return source, frozenset(source)

    def _run_finder(self, source_words: list[str]) -> Callable[[list[str]], list[tuple[int, int]]]:
        """Runs a phrase search would find: ``run`` words shared with the source, or a 5-gram in any post."""
        run = self.run

        def find(seq: list[str]) -> list[tuple[int, int]]:
            found = [(k, run) for k in shared_run_starts(seq, source_words, run)]
            if self.thresholds.max_exact_5gram_hits == 0:
                found += [(k, NGRAM) for k in self.index.found_ngrams(seq)]
            return sorted(found)

        return find

    # -- meaning-safe operations

    def protect(self, text: str) -> list[tuple[int, int]]:
        """Character ranges of the text's risk statements (never reworded); cached per text."""
        found = self._protected.get(text)
        if found is None:
            found = [(span.start, span.end) for span in self.risk.spans(text, self.nlp)]
            if len(self._protected) > 2_000:
                self._protected.clear()
            self._protected[text] = found
        return found

    @property
    def chooser(self) -> paraphrase.Chooser | None:
        """Synonyms chosen in context by sentence embeddings, or None (the lexicon's first
        synonym) when the meaning score is lexical."""
        return self._choose if getattr(self.scorer, "method", "lexical") == "embedding" else None

    def _choose(self, doc: Any, items: list[tuple[Any, list[str]]]) -> dict[int, str | None]:
        """For each token, the synonym whose sentence stays closest to the sentence without the
        swap, if at least ``swap_min_similarity``; embedded in one batch."""
        from .meaning import embed_texts

        k = self.settings.swap_choices
        texts: list[str] = []
        plan: list[tuple[int, list[str], int, int]] = []  # token.i, choices, base row, first variant row
        for token, choices in items:
            sent = token.sent
            base = sent.text
            at = token.idx - sent.start_char
            choices = choices[:k]
            plan.append((token.i, choices, len(texts), len(texts) + 1))
            texts.append(base)
            texts += [base[:at] + choice + base[at + len(token.text):] for choice in choices]
        if not texts:
            return {}
        vectors = embed_texts(texts)
        picked: dict[int, str | None] = {}
        for i, choices, base_row, first in plan:
            sims = vectors[first : first + len(choices)] @ vectors[base_row]
            best = int(np.argmax(sims)) if len(choices) else -1
            picked[i] = choices[best] if best >= 0 and sims[best] >= self.settings.swap_min_similarity else None
        return picked

    def evidence(self, text: str, code_id: str | None) -> list[tuple[int, int]]:
        """The tagger's evidence spans for the quote's code (empty without a code or evidence)."""
        tagger = getattr(self.scorer, "tagger", None)
        if not code_id or tagger is None:
            return []
        for suggestion in tagger.suggest([text])[0]:
            if suggestion.get("code_id") == code_id:
                return [(int(ev["start"]), int(ev["end"])) for ev in suggestion.get("evidence", [])]
        return []

    def candidates(self, text: str, source_post_id: str, *, code_id: str | None = None
                   ) -> list[tuple[str, list[str]]]:
        """Rule-based and external candidate texts with their edits (unscored, de-duplicated)."""
        weights = self.weights(text, source_post_id)
        source_words, source_set = self._source_vocabulary(source_post_id)
        choose, protect = self.chooser, self.protect
        evidence: list[tuple[int, int]] | None = None
        made: dict[str, list[str]] = {}
        for plan in PLANS:
            current, edits = text, []
            if plan.core:
                if evidence is None:
                    evidence = self.evidence(text, code_id)
                current, more = paraphrase.core(current, self.nlp, evidence, keep=protect(current))
                if not more:
                    continue
                edits += more
            if plan.drop:
                current, more = paraphrase.drop_sentence(current, self.nlp, weights)
                if not more:
                    continue
                edits += more
            current, more = paraphrase.generalise(current, details=plan.generalise)
            edits += more
            if plan.restructure:
                current, more = paraphrase.restructure(current, self.nlp, sentence_order=False)
                edits += more
            if plan.share >= 0.5:
                current, more = paraphrase.swap_phrases(current, protect=protect)
                edits += more
            if plan.share > 0:
                current, more = paraphrase.substitute(current, self.nlp, weights, share=plan.share, avoid=source_set,
                                                      choose=choose, protect=protect)
                edits += more
                current, more = paraphrase.break_runs(current, self.nlp, self._run_finder(source_words),
                                                      avoid=source_set, words=words, choose=choose, protect=protect)
                edits += more
            if edits and current.strip() and current != text and current not in made:
                made[current] = [f"plan: {plan.name}"] + edits
        for external in self.externals:
            for produced in _external_texts(external, text):
                if produced != text and produced not in made:
                    made[produced] = [external.label]
        return list(made.items())

    # -- ranking

    def _demotion(self, original: str, candidate: str) -> tuple[str | None, int, bool]:
        """(why the candidate may not be ranked first or None, its longest run of the original's
        words, whether only its sentence order changed)."""
        run = longest_shared_run(words(original), words(candidate))
        order_only = _order_only(original, candidate)
        if order_only:
            return "only the sentence order changed", run, True
        if run >= self.settings.long_run:
            return f"keeps a run of {run} words of the original", run, False
        return None, run, False

    def _rank_key(self, candidate: dict[str, Any]) -> tuple:
        """Never first when demoted; then disguised before at risk before traceable (the verdict of
        the worst attacker), then by meaning, then by fewer edits."""
        order = VERDICTS[::-1].index(candidate["verdict"])
        return (candidate.get("demoted") is not None, order, -candidate["meaning_score"], len(candidate["edits"]))

    def rank(self, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Candidates best first (see :meth:`_rank_key`)."""
        return sorted(candidates, key=self._rank_key)

    def advice(self, candidates: Sequence[dict[str, Any]]) -> str | None:
        """The plain "no rewording will do" message when no candidate is disguised with its
        meaning kept, else None."""
        disguised = [c for c in candidates if c["verdict"] == "disguised"]
        if any(c.get("meaning_score", 0.0) >= self.settings.keeps_meaning for c in disguised):
            return None
        if disguised:
            return MEANING_LOST.format(keeps=self.settings.keeps_meaning)
        return NO_REWORDING

    def suggest(self, quotes: Sequence[dict[str, Any]],
                on_progress: Callable[[int], Any] | None = None) -> list[dict[str, Any]]:
        """One row per quote: the original's own check and its ranked candidates."""
        rows = []
        for quote in quotes:
            text = quote["text"] if isinstance(quote.get("text"), str) else ""
            source = str(quote["source_post_id"])
            code_id = quote.get("code_id") if isinstance(quote.get("code_id"), str) else None
            made = self.candidates(text, source, code_id=code_id) if text.strip() else []
            batch = [{"quote_id": quote["quote_id"], "source_post_id": source, "text": t}
                     for t in [text] + [m[0] for m in made]]
            checked = self.index.check(batch, self.thresholds, n_threads=1)
            meaning = self.scorer.score(text, [m[0] for m in made]) if made else []
            candidates = []
            dropped = 0
            for (candidate_text, edits), check, sense in zip(made, checked[1:], meaning):
                if sense.get("risk_changed"):
                    dropped += 1  # a changed risk statement is never suggested
                    continue
                demoted, run, order_only = self._demotion(text, candidate_text)
                candidates.append({
                    "text": candidate_text, "verdict": check["verdict"], "source_rank": check["source_rank"],
                    "dense_rank": check.get("dense_rank"),
                    "longest_shared_run": check["longest_shared_run"],
                    "exact_5gram_hits": check["exact_5gram_hits"],
                    "distinctive_overlap": check["distinctive_overlap"],
                    "meaning_score": sense["meaning_score"],
                    "meaning_method": sense.get("meaning_method", "lexical"),
                    "meaning_kept": sense.get("meaning_kept", sense["meaning_score"] >= self.settings.keeps_meaning),
                    "cmo_same": sense["cmo_same"], "cmo_changed": sense.get("cmo_changed", not sense["cmo_same"]),
                    "negation_kept": sense.get("negation_kept", True),
                    "original_run": run, "order_only": order_only, "demoted": demoted, "edits": edits,
                })
            candidates = self.rank(candidates)
            advice = self.advice(candidates)
            before = checked[0]
            rows.append({"quote_id": quote["quote_id"], "source_post_id": source, "text": text,
                         "verdict": before["verdict"], "source_rank": before["source_rank"],
                         "dense_rank": before.get("dense_rank"),
                         "longest_shared_run": before["longest_shared_run"],
                         "candidates": candidates[: self.n_candidates],
                         "no_rewording": advice is not None, "advice": advice, "risk_dropped": dropped})
            if on_progress:
                on_progress(1)
        return rows


def _sentence_words(text: str) -> list[tuple[str, ...]]:
    return [tuple(words(piece)) for piece in _SENTENCE_END.split(" ".join(text.split())) if words(piece)]


def _order_only(original: str, candidate: str) -> bool:
    """True when the candidate has exactly the original's sentences (words), in another order."""
    a, b = _sentence_words(original), _sentence_words(candidate)
    return len(a) > 1 and a != b and sorted(a) == sorted(b)


# --------------------------------------------------------------------------- files

OUTPUT_COLUMNS = ("quote_id", "source_post_id", "text", "verdict", "source_rank", "dense_rank", "longest_shared_run",
                  "candidates", "no_rewording", "advice")


def suggest_file(
    quotes_path: str | Path,
    corpus_path: str | Path,
    output_path: str | Path | None = None,
    *,
    study_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    thresholds: Thresholds | None = None,
    externals: Sequence[External] = (),
    n_candidates: int = DEFAULT_CANDIDATES,
    on_index_progress: Callable[[int], Any] | None = None,
    on_quote_progress: Callable[[int], Any] | None = None,
    corpus_columns: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Suggest candidates for every quote; write OUT and/or a review folder (``study_dir``).

    A review folder holds ``suggestions.jsonl`` and ``index.json``, which names the index
    that ``postkit review serve`` and ``postkit disguise export`` need. The index itself
    is cached privately (or in ``index_dir``, never inside the review or a run folder): it
    holds the text of every post of the corpus. Nothing is written unless every quote
    was processed.
    """
    import shutil

    import pandas as pd

    from ..hashing import sha256_path
    from ..io import OutputSet, jsonable
    from .study import INDEX_RECORD, LEGACY_INDEX_DIR, SUGGESTIONS_FILE, index_record
    from .trace import errors_at_file_rows, fingerprint_file, load_index, load_thresholds, read_quotes
    from .trace import refuse_shared_location

    if output_path is None and study_dir is None:
        raise PostkitError("nowhere to write the suggestions", fix="pass --output FILE and/or --study DIR")
    if index_dir is not None:
        refuse_shared_location(index_dir, study_dir)
    thresholds = thresholds or load_thresholds()
    frame, records = read_quotes(quotes_path)
    started = time.perf_counter()
    corpus_sha256 = sha256_path(corpus_path) if Path(corpus_path).exists() else None
    fingerprint = fingerprint_file(corpus_path, corpus_columns, file_sha256=corpus_sha256) \
        if corpus_sha256 else None
    index, how = load_index(corpus_path, index_dir, on_index_progress, corpus_columns, fingerprint=fingerprint)
    index_seconds = time.perf_counter() - started
    with errors_at_file_rows(quotes_path, frame):
        index.source_keys(records)  # every source known, before the slow part
    if "code_id" in frame.columns:  # the code a quote illustrates: its evidence is the core to keep
        for record, code_id in zip(records, frame["code_id"].tolist()):
            record["code_id"] = str(code_id).strip() if isinstance(code_id, str) and code_id.strip() else None

    started = time.perf_counter()
    suggester = Suggester(index, thresholds, externals=externals, n_candidates=n_candidates)
    rows = suggester.suggest(records, on_progress=on_quote_progress)
    suggest_seconds = time.perf_counter() - started

    inputs = [quotes_path, corpus_path]
    with OutputSet(inputs=inputs) as outputs:
        if output_path is not None:
            result = pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))
            result["source_rank"] = result["source_rank"].astype("Int64")
            result["dense_rank"] = result["dense_rank"].astype("Int64")
            writer = outputs.table(output_path)
            writer.write(result)
            if writer.columns is None:
                writer.set_empty_columns(list(OUTPUT_COLUMNS))
        if study_dir is not None:
            Path(study_dir).mkdir(parents=True, exist_ok=True)
            _, temp = outputs.file(Path(study_dir) / SUGGESTIONS_FILE)
            with open(temp, "w", encoding="utf-8", newline="\n") as handle:
                for row in rows:
                    handle.write(json.dumps(jsonable(row), ensure_ascii=False) + "\n")
            _, temp = outputs.file(Path(study_dir) / INDEX_RECORD)
            record = index_record(index, Path(study_dir), corpus=corpus_path, column_map=corpus_columns,
                                  corpus_sha256=corpus_sha256, location=index_dir)
            Path(temp).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    legacy = Path(study_dir) / LEGACY_INDEX_DIR if study_dir is not None else None
    if legacy is not None and (legacy / "meta.json").is_file():
        shutil.rmtree(legacy)  # an older postkit's copy of the whole forum, now cached privately
    return summarise(rows) | {"posts": len(index), "index": how, "index_key": index.fingerprint,
                              "timings": {"index": round(index_seconds, 3), "suggest": round(suggest_seconds, 3)}}


def summarise(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Verdict counts before and for each quote's best candidate, and that candidate's mean meaning score."""
    rows = list(rows)
    before = {v: 0 for v in VERDICTS}
    best = {v: 0 for v in VERDICTS} | {"no candidate": 0}
    meaning = []
    for row in rows:
        before[row["verdict"]] += 1
        if row["candidates"]:
            top = row["candidates"][0]
            best[top["verdict"]] += 1
            meaning.append(top["meaning_score"])
        else:
            best["no candidate"] += 1
    return {"quotes": len(rows), "before": before, "best": best,
            "best_meaning_mean": round(sum(meaning) / len(meaning), 3) if meaning else None,
            "no_rewording": sum(1 for row in rows if row.get("no_rewording"))}


def render_summary(summary: dict[str, Any]) -> str:
    lines = [f"Paraphrase suggestions: {summary['quotes']} quote{'s' if summary['quotes'] != 1 else ''}"]
    lines.append(f"  {'verdict':<13}{'original':>9}{'best candidate':>16}")
    for verdict in (*VERDICTS, "no candidate"):
        lines.append(f"  {verdict:<13}{summary['before'].get(verdict, 0):>9}{summary['best'].get(verdict, 0):>16}")
    if summary.get("best_meaning_mean") is not None:
        lines.append(f"  mean meaning score of the best candidates: {summary['best_meaning_mean']:.3f}")
    if summary.get("no_rewording"):
        n = summary["no_rewording"]
        lines.append(f"  no rewording will do for {n} quote{'s' if n != 1 else ''}: quote less, choose another "
                     "exemplar (postkit disguise rank), or use a composite or a summarised report")
    if "posts" in summary:
        lines.append(f"  searched {summary['posts']} posts (index {summary.get('index', '?')})")
    lines.append("  Candidates are suggestions: review and approve them in `postkit review serve`.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- quotes from a sample

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def excerpt(text: str, max_words: int = 45, min_words: int = 15) -> str:
    """The opening sentences of a post, as a researcher might quote it: whole sentences,
    at least ``min_words`` words when the post has them, at most ``max_words`` (a single
    longer first sentence is cut at a word boundary)."""
    chosen: list[str] = []
    count = 0
    text = " ".join(text.split())  # a printed quote is one paragraph
    for sentence in _SENTENCE_END.split(text):
        n = len(sentence.split())
        if chosen and count + n > max_words:
            break
        chosen.append(sentence)
        count += n
        if count >= min_words:
            break
    quote = " ".join(chosen)
    tokens = quote.split()
    return " ".join(tokens[:max_words]) if len(tokens) > max_words else quote


def quotes_from_posts(posts: Iterable[dict[str, Any]], n: int, max_words: int = 45) -> list[dict[str, Any]]:
    """Verbatim excerpts of the first ``n`` posts (by ``sample_rank`` when present), as quotes to disguise.

    For demos and for a first pass: in a real study the researchers choose the
    illustrative quotes themselves and pass them as a file.
    """
    ordered = sorted(posts, key=lambda p: (p.get("sample_rank") is None, p.get("sample_rank") or 0))
    quotes = []
    for post in ordered:
        text = post.get("text")
        if not isinstance(text, str) or not text.strip():
            continue
        quotes.append({"quote_id": f"Q{len(quotes) + 1:03d}", "source_post_id": str(post["post_id"]),
                       "text": excerpt(text, max_words)})
        if len(quotes) == n:
            break
    return quotes
