#!/usr/bin/env python3
"""Benchmark: the quote traceability check on the generated corpus.

Builds the search index over the first N posts of the 1M-post corpus made for
scripts/bench_consent.py, then checks 1,000 quotes: 30-word excerpts of random posts,
every other one with its words shuffled (a crude "paraphrase"). Prints build, check,
save and load times and the verdicts.

    .venv/bin/python scripts/bench_trace.py --posts 1000000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from postkit.disguise.trace import Thresholds, TraceIndex, words

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--quotes", type=int, default=1_000)
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench" / "consent" / "corpus-1000000-7" / "posts.csv",
                        help="a posts CSV (generate it with scripts/bench_consent.py)")
    args = parser.parse_args()

    frame = pd.read_csv(args.corpus, nrows=args.posts, usecols=["post_id", "text"], dtype=str, keep_default_na=False)
    ids, texts = frame["post_id"].tolist(), frame["text"].tolist()
    start = time.perf_counter()
    index = TraceIndex.build(ids, texts)
    build = time.perf_counter() - start

    rng = random.Random(1)
    quotes = []
    for number in range(args.quotes):
        i = rng.randrange(len(ids))
        tokens = words(texts[i])
        if number % 2:
            rng.shuffle(tokens)
        quotes.append({"quote_id": str(number), "source_post_id": ids[i], "text": " ".join(tokens[:30])})
    start = time.perf_counter()
    rows = index.check(quotes, Thresholds())
    check = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        index.save(Path(folder) / "index")
        save = time.perf_counter() - start
        start = time.perf_counter()
        TraceIndex.load(Path(folder) / "index")
        load = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verdicts = pd.Series([r["verdict"] for r in rows]).value_counts().to_dict()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{len(ids):,} posts, {len(quotes):,} quotes (half verbatim excerpts, half word-shuffled)\n")
    print("| step | time |")
    print("|---|---|")
    print(f"| build index | {build:.1f} s |")
    print(f"| check {len(quotes):,} quotes | {check:.1f} s |")
    print(f"| save / load index | {save:.1f} s / {load:.1f} s |")
    print(f"\npeak memory {peak:,.0f} MiB; verdicts {verdicts}")


if __name__ == "__main__":
    main()
