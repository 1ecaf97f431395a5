#!/usr/bin/env python3
"""Benchmark: consent filtering (and audit verification) of a large generated corpus.

Generates the corpus with scripts/make_demo_corpus.py when it is not there yet, then
times `postkit consent filter` and `postkit audit verify` as separate processes and
reads each one's peak resident memory from the kernel (wait4 rusage), so the numbers
are what a user running the CLI would see. Results go to stdout as a Markdown table
for docs/benchmarks.md.

    .venv/bin/python scripts/bench_consent.py --posts 1000000 --workdir bench/consent
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
from pathlib import Path

from benchlib import ROOT, generated_corpus, run_measured



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "consent")
    parser.add_argument("--format", default="csv", choices=["csv", "jsonl", "parquet"])
    parser.add_argument("--output-format", default="parquet", choices=["csv", "jsonl", "parquet"])
    parser.add_argument("--batch-size", type=int, default=50_000)
    args = parser.parse_args()

    posts = generated_corpus(args.workdir, args.posts, args.seed, args.format)
    corpus = posts.parent
    out = args.workdir / f"kept.{args.output_format}"
    audit = args.workdir / "audit.jsonl"
    env = {**os.environ, "POSTKIT_PSEUDONYM_KEY": secrets.token_hex(32)}
    postkit = str(Path(sys.executable).parent / "postkit")
    filter_s, filter_mb = run_measured(
        [postkit, "consent", "filter", str(posts), "--consent", str(corpus / "consent.csv"), "--output",
         str(out), "--audit", str(audit), "--as-of", "2025-01-01T00:00:00Z", "--quiet",
         "--batch-size", str(args.batch_size)],
        env,
    )
    verify_s, verify_mb = run_measured([postkit, "audit", "verify", str(audit), "--output", str(out)], env)
    size_mb = posts.stat().st_size / 1e6
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"input: {args.posts:,} posts, {args.format} ({size_mb:,.0f} MB), batch size {args.batch_size:,}\n")
    print("| step | wall time | posts/s | peak memory |")
    print("|---|---|---|---|")
    print(f"| consent filter → {args.output_format} + audit log | {filter_s:.1f} s | "
          f"{args.posts / filter_s:,.0f} | {filter_mb:,.0f} MiB |")
    print(f"| audit verify (chain + output hash) | {verify_s:.1f} s | {args.posts / verify_s:,.0f} | "
          f"{verify_mb:,.0f} MiB |")


if __name__ == "__main__":
    main()
