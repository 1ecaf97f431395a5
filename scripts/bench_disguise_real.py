#!/usr/bin/env python3
"""Benchmark: quote disguise on real forum posts, against two attackers (issue 14).

Forty real quotes (the opening 18–45 words of peer-support posts, chosen by
``scripts/select_disguise_quotes.py``) are searched for in the whole real forum
(``../shared/data/real_forum/posts.jsonl``) in three forms:

* ``original``  the verbatim quote;
* ``human``     a careful human rewrite (keeps the meaning, no run of 4+ words of the
                original, ages, places, names, durations and named services generalised,
                risk statements kept);
* ``postkit``   the best candidate of postkit's suggester (:mod:`postkit.disguise.suggest`).

Each is scored by postkit's own check (BM25 and phrase rules; plus postkit's dense attacker
when present) and by the project's reference scorer ``../shared/tools/dense_attacker.py``
(all-MiniLM-L6-v2 over 3-sentence passages, run in its own virtualenv), which also judges
meaning (embedding similarity to the original). The headline is the share of quotes whose
text postkit calls disguised AND the reference dense attacker ranks outside its top 20,
with meaning >= 0.6 (issue 14's target for postkit: 30%; careful human rewrites about 5%).
"Unsafe" counts texts postkit calls disguised that the reference attacker still finds in
its top 20 (must be 0).

The real quotes and rewrites never enter the repository: they are read from the bench
folder (``$POSTKIT_BENCH_DIR``, else ``~/.cache/postkit/bench/disguise-real/``) as
``quotes.jsonl`` (``quote_id``, ``source_post_id``, ``original``) and
``human_rewrites.jsonl`` (the same plus ``text``). The reference scorer's forum embeddings
are cached there too (the first run embeds the forum: 15–40 minutes on 2 cores).

    .venv/bin/python scripts/bench_disguise_real.py              # markdown table on stdout
    .venv/bin/python scripts/bench_disguise_real.py --json out.json --postkit-dense off

Skips cleanly (exit 0, a message) when the forum, the quotes or the reference scorer is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DEFAULT_FORUM = SHARED / "data" / "real_forum" / "posts.jsonl"
DEFAULT_REFERENCE = SHARED / "tools" / "dense_attacker.py"
DEFAULT_ST_PYTHON = ROOT.parent / "venv-st" / "bin" / "python"
QUOTES_FILE = "quotes.jsonl"
REWRITES_FILE = "human_rewrites.jsonl"
SETS = ("original", "human", "postkit")
TOP = 20  # an attacker finds the source when it ranks in its top 20 (Agarwal et al. 2023)
MEANING_FLOOR = 0.6  # careful human rewrites score about 0.6 on the reference judge
MAX_RUN = 3  # a careful rewrite keeps no run of 4+ words of the original

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def bench_dir() -> Path:
    """``$POSTKIT_BENCH_DIR``, else ``~/.cache/postkit/bench/disguise-real`` (private: real text)."""
    env = os.environ.get("POSTKIT_BENCH_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "postkit" / "bench" / "disguise-real"


# --------------------------------------------------------------------------- pure parts

def norm_words(text: Any) -> list[str]:
    """Lower-case words after NFKC and apostrophe folding; punctuation and case never break a run."""
    if not isinstance(text, str):
        return []
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    return _WORD.findall(text)


def longest_shared_run(original: str, text: str) -> int:
    """The longest run of consecutive words ``text`` shares with ``original``."""
    a, b = norm_words(original), norm_words(text)
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def run_violations(rows: Iterable[Mapping[str, Any]], max_run: int = MAX_RUN) -> list[tuple[str, int]]:
    """``(quote_id, run)`` for every rewrite keeping a run of more than ``max_run`` words of its original."""
    found = []
    for row in rows:
        run = longest_shared_run(row["original"], row["text"])
        if run > max_run:
            found.append((str(row["quote_id"]), run))
    return found


_RISK = {
    "suicide": r"suicid\w*|kill(?:ing|ed|s)? myself|end(?:ing|ed|s)? (?:my life|it all)|take my own life"
               r"|want(?:ed)? to die|better off dead|unalive\w*",
    "self-harm": r"self[- ]?harm\w*|self[- ]?injur\w*|cut(?:ting|s)? myself|hurt(?:ing|s)? myself|harm(?:ing|ed)? myself",
    "overdose": r"overdos\w*|\bod(?:'d|ed)?\b|too many (?:pills|tablets)",
    "abuse": r"abus\w*|rap(?:e|ed|ing)\b|molest\w*",
}
_RISK_RE = {name: re.compile(rf"\b(?:{pattern})", re.IGNORECASE) for name, pattern in _RISK.items()}
_NEGATION = re.compile(r"\b(?:not|never|no|n't|don't|didn't|haven't|wasn't)\b", re.IGNORECASE)


def simple_risk_changed(original: str, text: str) -> str | None:
    """A plain stand-in for postkit's risk guard: a risk category mentioned a different number of
    times, or a negation count changed in a text that mentions risk. Returns the category."""
    for name, pattern in _RISK_RE.items():
        if len(pattern.findall(original or "")) != len(pattern.findall(text or "")):
            return name
    if any(p.search(original or "") for p in _RISK_RE.values()) and \
            len(_NEGATION.findall(original or "")) != len(_NEGATION.findall(text or "")):
        return "negation"
    return None


def found(rank: Any, top: int = TOP) -> bool:
    """True when an attacker ranked the source within ``top`` (None = beyond its search depth)."""
    return rank is not None and int(rank) <= top


def disguised_by_both(row: Mapping[str, Any], top: int = TOP) -> bool:
    """Postkit calls it disguised and the reference dense attacker does not find it."""
    return row.get("postkit_verdict") == "disguised" and row.get("dense_rank") is not None \
        and not found(row["dense_rank"], top)


def summarise_set(rows: Sequence[Mapping[str, Any]], top: int = TOP,
                  floor: float = MEANING_FLOOR) -> dict[str, Any]:
    """Counts for one set of texts (one row per quote; ``text`` None = no candidate).

    ``headline`` is the share of ALL quotes (a missing candidate counts as a failure) disguised by
    both attackers with reference meaning >= ``floor``; ``unsafe`` counts postkit "disguised"
    verdicts the reference dense attacker still finds in its top ``top``.
    """
    n = len(rows)
    scored = [r for r in rows if r.get("text") is not None]
    meanings = [float(r["meaning"]) for r in scored if r.get("meaning") is not None]
    both = [r for r in scored if disguised_by_both(r, top)]
    keep = [r for r in both if r.get("meaning") is not None and float(r["meaning"]) >= floor]
    return {
        "quotes": n,
        "no_candidate": n - len(scored),
        "dense_scored": sum(r.get("dense_rank") is not None for r in scored),
        "bm25_found": sum(found(r.get("bm25_rank"), top) for r in scored),
        "dense_found": sum(found(r.get("dense_rank"), top) for r in scored),
        "dense_rank_1": sum(r.get("dense_rank") == 1 for r in scored),
        "postkit_disguised": sum(r.get("postkit_verdict") == "disguised" for r in scored),
        "disguised_both": len(both),
        "disguised_both_meaning": len(keep),
        "headline": round(len(keep) / n, 4) if n else None,
        "meaning_median": round(statistics.median(meanings), 3) if meanings else None,
        "meaning_mean": round(statistics.fmean(meanings), 3) if meanings else None,
        "unsafe": sum(r.get("postkit_verdict") == "disguised" and found(r.get("dense_rank"), top) for r in scored),
        "risk_changed": sum(bool(r.get("risk_changed")) for r in scored),
        "longest_run_median": statistics.median([r["longest_run"] for r in scored]) if scored else None,
    }


def render_table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """The markdown table of :func:`summarise_set` results, one line per set."""
    head = ("| set | quotes | BM25 finds (top 20) | dense finds (top 20) | postkit says disguised "
            "| disguised by both | median meaning | **disguised by both, meaning ≥ 0.6** "
            "| unsafe verdicts | risk changed | no candidate |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in summaries.items():
        n = s["quotes"]
        dense = bool(s.get("dense_scored"))  # without the reference scorer its columns are blank

        def ref(value: Any) -> str:
            return str(value) if dense else "–"

        median = "–" if s["meaning_median"] is None else f"{s['meaning_median']:.2f}"
        headline = f"{s['disguised_both_meaning']}/{n} ({s['headline']:.0%})" if dense and n else "–"
        lines.append(f"| {name} | {n} | {s['bm25_found']} | {ref(s['dense_found'])} | {s['postkit_disguised']} "
                     f"| {ref(s['disguised_both'])} | {median} | **{headline}** | {ref(s['unsafe'])} "
                     f"| {s['risk_changed']} | {s['no_candidate']} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- reading

def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- attackers

def postkit_check(index: Any, thresholds: Any, rows: list[dict[str, Any]]) -> None:
    """Fill ``postkit_verdict``, ``bm25_rank`` and ``postkit_dense_rank`` from postkit's own check
    (its verdict is the worst of its attackers; the dense rank is None when it has none)."""
    todo = [r for r in rows if r.get("text") is not None]
    if not todo:
        return
    checked = index.check([{"quote_id": r["quote_id"], "source_post_id": r["source_post_id"], "text": r["text"]}
                           for r in todo], thresholds)
    for row, check in zip(todo, checked):
        row.update(postkit_verdict=check["verdict"], bm25_rank=check["source_rank"],
                   postkit_dense_rank=check.get("dense_rank"))


def reference_scores(rows: list[dict[str, Any]], forum: Path, workdir: Path, python: Path,
                     scorer: Path) -> None:
    """Fill ``dense_rank`` and ``meaning`` with the project's reference scorer (a subprocess in its own venv)."""
    todo = [r for r in rows if r.get("text") is not None]
    inp, out = workdir / "reference_in.jsonl", workdir / "reference_out.jsonl"
    with open(inp, "w", encoding="utf-8") as handle:
        for k, row in enumerate(todo):
            handle.write(json.dumps({"quote_id": f"{k}", "source_post_id": row["source_post_id"],
                                     "original": row["original"], "text": row["text"]}, ensure_ascii=False) + "\n")
    cache = workdir / f"forum-{sha256_file(forum)[:16]}.minilm.npy"
    if not cache.exists():
        say(f"reference scorer: embedding the forum once (cached in {cache}; 15–40 minutes on 2 cores) …")
    done = subprocess.run([str(python), str(scorer), str(forum), str(inp), str(out), "--cache", str(cache)],
                          stdout=sys.stderr, check=False)
    if done.returncode != 0:
        sys.exit(f"the reference scorer failed (exit {done.returncode})")
    for line in read_jsonl(out):
        row = todo[int(line["quote_id"])]
        row["dense_rank"], row["meaning"] = int(line["dense_rank"]), round(float(line["meaning"]), 4)


def risk_guard() -> tuple[str, Any]:
    """Postkit's risk guard when present, else :func:`simple_risk_changed`."""
    try:
        from postkit.disguise.risk import load_risk_terms
    except ImportError:
        return "simple check in this script", None
    return "postkit.disguise.risk", load_risk_terms()


# --------------------------------------------------------------------------- main

def main(argv: Sequence[str] | None = None) -> int:
    here = bench_dir()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forum", type=Path, default=DEFAULT_FORUM, help="the whole forum (JSONL post_id, text)")
    parser.add_argument("--bench-dir", type=Path, default=here, help=f"work folder (default {here})")
    parser.add_argument("--quotes", type=Path, help=f"default BENCH_DIR/{QUOTES_FILE}")
    parser.add_argument("--rewrites", type=Path, help=f"default BENCH_DIR/{REWRITES_FILE}")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE, help="the reference dense attacker")
    parser.add_argument("--reference-python", type=Path,
                        default=Path(os.environ.get("POSTKIT_ST_PYTHON", DEFAULT_ST_PYTHON)),
                        help="python of a venv with sentence-transformers (default ../venv-st or $POSTKIT_ST_PYTHON)")
    parser.add_argument("--postkit-dense", choices=("auto", "off"), default="auto",
                        help="postkit's own dense attacker: auto = postkit's default (when its extra is "
                             "installed; the first run embeds the forum into postkit's private cache)")
    parser.add_argument("--json", type=Path, help="result JSON (default BENCH_DIR/result.json)")
    parser.add_argument("--limit", type=int, help="only the first N quotes (a quick trial)")
    parser.add_argument("--no-reference", action="store_true",
                        help="postkit's check only (no dense ranks, no meaning, no headline): a quick trial")
    args = parser.parse_args(argv)

    quotes_path = args.quotes or args.bench_dir / QUOTES_FILE
    rewrites_path = args.rewrites or args.bench_dir / REWRITES_FILE
    needed = [("forum", args.forum), ("quotes", quotes_path)]
    if not args.no_reference:
        needed += [("reference scorer", args.reference), ("reference scorer's python", args.reference_python)]
    for what, path in needed:
        if not path.exists():
            print(f"{what} not found at {path}: real-text disguise benchmark skipped")
            return 0
    args.bench_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    quotes = read_jsonl(quotes_path)[: args.limit]
    wanted = {q["quote_id"]: q for q in quotes}
    rewritten = [r for r in read_jsonl(rewrites_path) if r["quote_id"] in wanted] if rewrites_path.exists() else []
    rewrites = {r["quote_id"]: r["text"] for r in rewritten}
    if not rewrites:
        say(f"no human rewrites at {rewrites_path}: that set is left out")
    violations = run_violations([r | {"original": wanted[r["quote_id"]]["original"]} for r in rewritten])
    if violations:
        say(f"warning: human rewrites keeping a run of 4+ words: {', '.join(q for q, _ in violations)}")

    sys.path.insert(0, str(ROOT))
    from postkit.disguise.suggest import Suggester
    from postkit.disguise.trace import fingerprint_file, load_index, load_thresholds
    from postkit.progress import progress_bar

    timings: dict[str, float] = {}
    started = time.perf_counter()
    fingerprint = fingerprint_file(args.forum)
    options: dict[str, Any] = {}
    if "dense" in inspect.signature(load_index).parameters:  # a postkit with the dense attacker
        options["dense"] = None if args.postkit_dense == "auto" else False
    with progress_bar("postkit dense index", unit="passages") as advance:
        if "on_dense_progress" in inspect.signature(load_index).parameters:
            options["on_dense_progress"] = advance
        index, how = load_index(args.forum, fingerprint=fingerprint, **options)
    timings["postkit_index"] = round(time.perf_counter() - started, 1)
    thresholds = load_thresholds()
    postkit_dense = getattr(index, "dense", None) is not None

    started = time.perf_counter()
    suggester = Suggester(index, thresholds)
    records = [{"quote_id": q["quote_id"], "source_post_id": q["source_post_id"], "text": q["original"]} for q in quotes]
    with progress_bar("suggesting", total=len(records), unit="quotes") as advance:
        suggested = {row["quote_id"]: row for row in suggester.suggest(records, on_progress=advance)}
    timings["suggest"] = round(time.perf_counter() - started, 1)

    guard_name, guard = risk_guard()
    rows: list[dict[str, Any]] = []
    for q in quotes:
        best = (suggested[q["quote_id"]]["candidates"] or [None])[0]
        texts = {"original": q["original"], "human": rewrites.get(q["quote_id"]),
                 "postkit": best["text"] if best else None}
        for name in SETS:
            if name == "human" and not rewrites:
                continue
            text = texts[name]
            row = {"set": name, "quote_id": q["quote_id"], "source_post_id": q["source_post_id"],
                   "original": q["original"], "text": text,
                   "longest_run": longest_shared_run(q["original"], text) if text is not None else None}
            if text is not None:
                reason = guard.changed(q["original"], text, suggester.nlp) if guard is not None \
                    else simple_risk_changed(q["original"], text)
                row["risk_changed"] = reason
            if name == "postkit" and best:
                row["postkit_meaning"] = best.get("meaning_score")
                row["edits"] = [e for e in best.get("edits", []) if str(e).startswith("plan:")]
            rows.append(row)

    started = time.perf_counter()
    postkit_check(index, thresholds, rows)
    timings["postkit_check"] = round(time.perf_counter() - started, 1)
    if not args.no_reference:
        started = time.perf_counter()
        reference_scores(rows, args.forum, args.bench_dir, args.reference_python, args.reference)
        timings["reference"] = round(time.perf_counter() - started, 1)

    present = [s for s in SETS if any(r["set"] == s for r in rows)]
    summaries = {s: summarise_set([r for r in rows if r["set"] == s]) for s in present}
    result = {
        "forum": {"posts": len(index), "sha256": sha256_file(args.forum)},
        "quotes": len(quotes),
        "reference": None if args.no_reference else "shared/tools/dense_attacker.py",
        "postkit_verdict": "BM25 + phrase rules" + (
            " + postkit dense" if postkit_dense else
            " (postkit dense not run: this postkit then calls nothing disguised)" if "dense" in options else ""),
        "bm25_index": how,
        "risk_guard": guard_name,
        "human_rewrite_run_violations": len(violations),
        "top": TOP, "meaning_floor": MEANING_FLOOR,
        "sets": summaries,
        "timings_s": timings,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "rows": [{k: v for k, v in r.items() if k not in ("original", "text")} for r in rows],
    }
    out = args.json or args.bench_dir / "result.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.bench_dir / "rows.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")  # with text: stays private

    print(f"Real-text disguise: {len(quotes)} quotes, forum of {len(index):,} real posts; "
          f"postkit's verdict: {result['postkit_verdict']}; reference: all-MiniLM-L6-v2 passages, top {TOP}; "
          f"risk guard: {guard_name}\n")
    print(render_table(summaries))
    print(f"\nmachine: {result['machine']}; timings (s): "
          + ", ".join(f"{k} {v}" for k, v in timings.items()) + f"; result: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
