#!/usr/bin/env python3
"""Benchmark: consent and sampling at scale, the local engine against Dask (2 workers).

For each corpus size it generates a corpus with scripts/make_demo_corpus.py (once, kept
in the work folder), then runs `postkit consent filter` and `postkit sample` as separate
processes with `--engine local` and with `--engine dask --workers 2` (a LocalCluster
of two worker processes). It records wall time and peak memory: the peak of the summed
resident memory of the whole process tree (client, scheduler, nanny and worker
processes), sampled every 0.1 s, since Dask's work happens in child processes. It also
checks that both engines wrote byte-identical kept posts and samples. Results go to
stdout as a Markdown table for docs/benchmarks.md.

    .venv/bin/python scripts/bench_scale.py --posts 100000 1000000 --workdir bench/scale
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import subprocess
import sys
import time
from pathlib import Path

from benchlib import ROOT, generated_corpus

ENGINES = {"local": [], "dask (2 workers)": ["--engine", "dask", "--workers", "2"]}


def _tree_rss(pid: int) -> int:
    """Bytes resident in ``pid`` and all its descendants, from /proc (0 once it is gone)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_tree_measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the peak summed RSS (MiB) of a command and every process it starts."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss(process.pid))
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{process.stderr.read().decode(errors='replace')[-2000:]}")
    return elapsed, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "scale")
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--stages", nargs="+", default=["consent", "sample"], choices=["consent", "sample"])
    args = parser.parse_args()

    env = {**os.environ, "POSTKIT_PSEUDONYM_KEY": secrets.token_hex(32),
           "POSTKIT_KEY_DIR": str(args.workdir / "keys"), "PYTHONPATH": str(ROOT)}
    python = [sys.executable, "-m", "postkit"]
    rows = []
    for size in args.posts:
        posts = generated_corpus(args.workdir, size, args.seed, "csv")
        corpus = posts.parent
        outputs: dict[str, dict[str, bytes]] = {}
        for engine, options in ENGINES.items():
            tag = "local" if engine == "local" else "dask"
            out = args.workdir / f"out-{size}-{tag}"
            out.mkdir(parents=True, exist_ok=True)
            if "consent" in args.stages:
                seconds, mib = run_tree_measured(
                    python + ["consent", "filter", str(posts), "--consent", str(corpus / "consent.csv"), "--output",
                              str(out / "kept.parquet"), "--audit", str(out / "audit.jsonl"), "--as-of",
                              "2025-01-01T00:00:00Z", "--ignore-later-withdrawals", "--quiet",
                              "--batch-size", str(args.batch_size)] + options, env)
                rows.append(("consent filter", size, engine, seconds, mib))
                outputs.setdefault(tag, {})["consent"] = (out / "kept.parquet").read_bytes()
            if "sample" in args.stages:
                seconds, mib = run_tree_measured(
                    python + ["sample", str(posts), "--output", str(out / "sample.csv"), "--per-forum", "120",
                              "--seed", "2024", "--quiet", "--batch-size", str(args.batch_size)] + options, env)
                rows.append(("sample", size, engine, seconds, mib))
                outputs.setdefault(tag, {})["sample"] = (out / "sample.csv").read_bytes()
            print(f"{size:,} posts, {engine}: done", file=sys.stderr)
        for stage in args.stages:
            same = outputs["local"][stage] == outputs["dask"][stage]
            print(f"{size:,} posts, {stage}: local and Dask outputs {'identical' if same else 'DIFFER'}",
                  file=sys.stderr)
            if not same:
                sys.exit(f"{stage}: the engines disagree on {size:,} posts")

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print()
    print("| stage | posts | engine | wall s | posts/s | peak RSS, process tree (MiB) |")
    print("|---|---:|---|---:|---:|---:|")
    for stage, size, engine, seconds, mib in rows:
        print(f"| {stage} | {size:,} | {engine} | {seconds:.1f} | {size / seconds:,.0f} | {mib:,.0f} |")
    print()
    print("Outputs of both engines compared byte for byte: identical.")


if __name__ == "__main__":
    main()
