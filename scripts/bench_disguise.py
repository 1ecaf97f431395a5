#!/usr/bin/env python3
"""Benchmark: paraphrase suggestions for verbatim quotes on the generated corpus.

Takes 200 verbatim quotes (the opening 15–45 words of random posts of at least 20 words,
as a researcher would quote them), checks them against an index of the first N posts
of the 1M-post corpus made for scripts/bench_consent.py, suggests candidates for each,
and reports: the share traceable before, the share whose best candidate is disguised,
and that candidate's meaning score (mean, median, share ≥ 0.7), plus timings.

    .venv/bin/python scripts/bench_disguise.py --posts 1000000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT  # noqa: E402

from postkit.disguise.suggest import Suggester, excerpt, summarise  # noqa: E402
from postkit.disguise.trace import Thresholds, TraceIndex  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--quotes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench" / "consent" / "corpus-1000000-7" / "posts.csv",
                        help="a posts CSV (generate it with scripts/bench_consent.py)")
    parser.add_argument("--show", type=int, default=3, help="print this many examples")
    args = parser.parse_args()

    frame = pd.read_csv(args.corpus, nrows=args.posts, usecols=["post_id", "text"], dtype=str, keep_default_na=False)
    ids, texts = frame["post_id"].tolist(), frame["text"].tolist()
    del frame
    start = time.perf_counter()
    index = TraceIndex.build(ids, texts)
    build = time.perf_counter() - start

    rng = random.Random(args.seed)
    quotes = []
    while len(quotes) < args.quotes:
        i = rng.randrange(len(ids))
        if len(texts[i].split()) >= 20:
            quotes.append({"quote_id": f"Q{len(quotes) + 1:03d}", "source_post_id": ids[i], "text": excerpt(texts[i])})
    del texts

    start = time.perf_counter()
    suggester = Suggester(index, Thresholds())
    load = time.perf_counter() - start
    start = time.perf_counter()
    rows = suggester.suggest(quotes)
    suggest = time.perf_counter() - start

    summary = summarise(rows)
    best = [r["candidates"][0] for r in rows if r["candidates"]]
    disguised_best = [c for c in best if c["verdict"] == "disguised"]
    meaning = [c["meaning_score"] for c in disguised_best]
    any_disguised = sum(any(c["verdict"] == "disguised" for c in r["candidates"]) for r in rows)
    n = len(rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{len(ids):,} posts indexed in {build:.1f} s; {n} verbatim quotes; models loaded in {load:.1f} s; "
          f"suggestions in {suggest:.1f} s ({suggest / n:.2f} s per quote); peak memory {peak:,.0f} MiB\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| verbatim quotes traceable before | {summary['before']['traceable'] / n:.1%} "
          f"(at risk {summary['before']['at risk'] / n:.1%}) |")
    print(f"| best candidate disguised | {len(disguised_best) / n:.1%} |")
    print(f"| some candidate disguised | {any_disguised / n:.1%} |")
    if meaning:
        print(f"| meaning score of the best disguised candidate: mean / median | "
              f"{statistics.mean(meaning):.3f} / {statistics.median(meaning):.3f} |")
        print(f"| ... share with meaning score >= 0.7 | {sum(m >= 0.7 for m in meaning) / len(meaning):.1%} |")
        print(f"| ... CMO suggestion unchanged | {sum(c['cmo_same'] for c in disguised_best) / len(disguised_best):.1%} |")
    print(f"\nbest-candidate verdicts: {dict(Counter(c['verdict'] for c in best))}")
    thresholds = Thresholds()
    blockers = Counter()
    for c in best:
        if c["verdict"] == "disguised":
            continue
        if c["source_rank"] is not None and c["source_rank"] <= thresholds.top_k:
            blockers["source in top 20"] += 1
        if c["longest_shared_run"] > thresholds.max_shared_run:
            blockers["shared run of 5+"] += 1
        if c["exact_5gram_hits"] > thresholds.max_exact_5gram_hits:
            blockers["5-gram found in corpus"] += 1
    print(f"what keeps the other best candidates from disguised (a candidate may have several): {dict(blockers)}")
    for row in rows[: args.show]:
        top = row["candidates"][0] if row["candidates"] else None
        print(f"\n{row['quote_id']} ({row['verdict']}, rank {row['source_rank']}): {row['text']}")
        if top:
            print(f"  → ({top['verdict']}, rank {top['source_rank']}, run {top['longest_shared_run']}, "
                  f"meaning {top['meaning_score']}): {top['text']}")


if __name__ == "__main__":
    main()
