#!/usr/bin/env python3
"""Benchmark: de-identification throughput, three ways, on the same posts, in one run.

(a) Presidio's default AnalyzerEngine (same spaCy model), called post by post;
(b) bare spaCy ``nlp.pipe`` with NER only (every other component disabled);
(c) postkit: ``DeidEngine.analyze`` + the tag operator, one process, batched;
then ``postkit deid`` on a file with 1 and 2 processes (multi-process scaling,
including file reading and writing).

    .venv/bin/python scripts/bench_deid.py --posts 3000
    .venv/bin/python scripts/bench_deid.py --posts 3000 --corpus tests/data/deid_eval.jsonl
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_texts(path: Path, n: int) -> list[str]:
    """Post texts from a corpus CSV, or from a labelled JSONL such as tests/data/deid_eval.jsonl."""
    if path.suffix == ".jsonl":
        import json

        texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        import pandas as pd

        texts = pd.read_csv(path, dtype=str, keep_default_na=False)["text"].tolist()
    while len(texts) < n:
        texts += texts
    return texts[:n]


def timed(label: str, work, n: int, results: list) -> float:
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    results.append((label, seconds, n / seconds))
    print(f"{label}: {seconds:.1f} s, {n / seconds:,.0f} posts/s", file=sys.stderr)
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--presidio-posts", type=int, default=None,
                        help="posts for (a), which is slow (default: same as --posts)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpora" / "demo" / "posts.csv")
    parser.add_argument("--memory", type=int, nargs="+", metavar="N",
                        help="instead: peak memory of `postkit deid` on the first N posts of --corpus, per N")
    args = parser.parse_args()
    if args.memory:
        memory_profile(args.corpus, args.memory)
        return

    import spacy

    from postkit.deid.baseline import presidio_default_analyzer
    from postkit.deid.engine import DeidEngine
    from postkit.deid.model import DEFAULT_MODEL
    from postkit.deid.operators import Replacer

    texts = load_texts(args.corpus, args.posts)
    presidio_n = args.presidio_posts or args.posts
    words = sum(len(t.split()) for t in texts)
    results: list = []

    presidio = presidio_default_analyzer()
    presidio.analyze(texts[0], language="en")  # warm up
    rate_a = timed("(a) Presidio default AnalyzerEngine, post by post",
                   lambda: [presidio.analyze(t, language="en") for t in texts[:presidio_n]], presidio_n, results)

    nlp = spacy.load(DEFAULT_MODEL, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer",
                                             "senter"])
    list(nlp.pipe(texts[:50]))
    rate_b = timed("(b) spaCy nlp.pipe, NER only", lambda: list(nlp.pipe(texts, batch_size=256)), len(texts),
                   results)

    engine = DeidEngine()
    replacer = Replacer("tag", b"k" * 32)
    engine.analyze(texts[:50])

    def postkit_run() -> None:
        for start in range(0, len(texts), 2000):
            chunk = texts[start:start + 2000]
            for text, found in zip(chunk, engine.analyze(chunk)):
                replacer.apply(text, found, "p")

    rate_c = timed("(c) postkit DeidEngine + tag operator, 1 process", postkit_run, len(texts), results)

    with tempfile.TemporaryDirectory() as tmp:
        import pandas as pd

        source = Path(tmp) / "posts.csv"
        pd.DataFrame({"post_id": [f"p{i}" for i in range(len(texts))], "text": texts}).to_csv(source, index=False)
        env = {**os.environ, "POSTKIT_PSEUDONYM_KEY": secrets.token_hex(32)}
        postkit = str(Path(sys.executable).parent / "postkit")
        for processes in (1, 2):
            command = [postkit, "deid", str(source), "--output", str(Path(tmp) / f"out{processes}.csv"),
                       "--processes", str(processes), "--quiet"]
            timed(f"postkit deid (CLI, file to file, incl. start-up), {processes} process(es)",
                  lambda: subprocess.run(command, env=env, check=True), len(texts), results)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"posts: {len(texts):,} from {args.corpus} ({words / len(texts):.0f} words on average);"
          f" (a) on the first {presidio_n:,}\n")
    print("| configuration | wall time | posts/s |")
    print("|---|---|---|")
    for label, seconds, rate in results:
        print(f"| {label} | {seconds:.1f} s | {rate:,.0f} |")
    share = engine.stats["ner_chars"] / max(1, engine.stats["chars"])
    print(f"\nthe NER gate sent {share:.0%} of the text through spaCy's NER in (c)")
    print(f"postkit (c) vs (a): {rate_c / rate_a:.1f}x (target >= 5x); "
          f"vs (b): {rate_c / rate_b:.2f}x (target >= 0.75x)")


def memory_profile(corpus: Path, sizes: list[int]) -> None:
    """Streaming check: peak memory should not grow with the number of posts."""
    import pandas as pd

    from benchlib import run_measured

    env = {**os.environ, "POSTKIT_PSEUDONYM_KEY": secrets.token_hex(32)}
    postkit = str(Path(sys.executable).parent / "postkit")
    print("| posts | processes | wall time | posts/s | peak memory (main process) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            source = Path(tmp) / f"posts{n}.csv"
            pd.read_csv(corpus, dtype=str, keep_default_na=False, nrows=n).to_csv(source, index=False)
            seconds, peak = run_measured([postkit, "deid", str(source), "--output", str(Path(tmp) / "out.parquet"),
                                          "--processes", "1", "--quiet"], env)
            print(f"| {n:,} | 1 | {seconds:.0f} s | {n / seconds:,.0f} | {peak:,.0f} MiB |")


if __name__ == "__main__":
    main()
