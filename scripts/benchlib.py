"""Shared by the benchmark scripts: run a command as a child process and measure it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB, from the kernel's wait4 rusage) of one child."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}")
    return elapsed, usage.ru_maxrss / 1024


def generated_corpus(workdir: Path, posts: int, seed: int, fmt: str = "csv") -> Path:
    """The posts file of a generated benchmark corpus, generating it on first use.

    Benchmarks share one corpus per (size, seed), so the 1M-post corpus is made once.
    """
    corpus = workdir / f"corpus-{posts}-{seed}"
    path = corpus / f"posts.{fmt}"
    if not path.exists():
        print(f"generating {posts:,} posts into {corpus} …", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_corpus.py"), "--posts", str(posts),
                        "--seed", str(seed), "--out", str(corpus), "--format", fmt, "--force"], check=True)
    return path
