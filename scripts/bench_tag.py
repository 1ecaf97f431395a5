#!/usr/bin/env python3
"""Tagging speed and suggestion load on a posts table (default: the 3,000 demo posts).

    .venv/bin/python scripts/bench_tag.py [corpora/demo/posts.csv]

One core (spaCy's tagger/lemmatiser, no parser or NER); the model load is timed apart.
Prints posts per minute per unit, with and without the area ranker, and how many
suggestions a coder would see per post (and how many of those only the ranker made).
"""

from __future__ import annotations

import statistics
import sys
import time

try:
    from postkit.coding.tagger import Tagger
    from postkit.io import read_table
except ImportError:  # pragma: no cover - wrong interpreter
    sys.exit("bench_tag.py: cannot import postkit; run it with the project's .venv/bin/python")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else "corpora/demo/posts.csv"
    texts = read_table(path)["text"].tolist()
    print(f"{path}: {len(texts):,} posts, {sum(map(len, texts)) / len(texts):.0f} characters on average")
    for ranker in (None, "default"):
        started = time.perf_counter()
        tagger = Tagger(ranker=ranker)
        load = time.perf_counter() - started
        label = "with ranker" if ranker else "cues only"
        for unit in ("post", "sentence"):
            started = time.perf_counter()
            tagger.assess(texts, unit=unit)
            seconds = time.perf_counter() - started
            print(f"  {label:<12} {unit:<9} {len(texts) / seconds * 60:>8,.0f} posts/min (load {load:.1f} s)")
        per_post = [a["suggestions"] for a in tagger.assess(texts)]
        print(f"  {label:<12} suggestions per post {statistics.mean(map(len, per_post)):.2f}; "
              f"posts with any {sum(map(bool, per_post)) / len(per_post):.1%}; "
              f"ranker-only per post {sum(s['rule_score'] == 0 for p in per_post for s in p) / len(per_post):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
