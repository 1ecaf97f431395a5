#!/usr/bin/env python3
"""Benchmark: `postkit sample` on a large generated corpus (time and peak memory).

Uses the corpus scripts/bench_consent.py generates (or generates it), then samples it
twice with different batch sizes: peak memory should follow the batch size, not the
corpus size, and both runs must produce the identical sample.

    .venv/bin/python scripts/bench_sample.py --posts 1000000
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

from benchlib import ROOT, generated_corpus, run_measured



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "consent")
    parser.add_argument("--format", default="csv", choices=["csv", "parquet"])
    args = parser.parse_args()

    posts = generated_corpus(args.workdir, args.posts, args.seed)
    corpus = posts.parent
    source = posts
    if args.format == "parquet":
        source = corpus / "posts.parquet"
        if not source.exists():
            subprocess.run([str(Path(sys.executable).parent / "postkit"), "convert", str(posts), str(source)],
                           check=True)
    postkit = str(Path(sys.executable).parent / "postkit")
    rows = []
    outputs = []
    for batch in (50_000, 10_000):
        out = args.workdir / f"sample-{batch}.csv"
        seconds, peak = run_measured([postkit, "sample", str(source), "--output", str(out), "--per-forum", "120",
                                      "--seed", "2024", "--batch-size", str(batch), "--quiet"], dict(os.environ))
        rows.append((batch, seconds, peak))
        outputs.append(out.read_bytes())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"input: {args.posts:,} posts, {source.suffix[1:]} ({source.stat().st_size / 1e6:,.0f} MB)\n")
    print("| batch size | wall time | posts/s | peak memory |")
    print("|---|---|---|---|")
    for batch, seconds, peak in rows:
        print(f"| {batch:,} | {seconds:.1f} s | {args.posts / seconds:,.0f} | {peak:,.0f} MiB |")
    print(f"\nidentical samples across batch sizes: {outputs[0] == outputs[1]}")


if __name__ == "__main__":
    main()
