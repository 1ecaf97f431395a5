#!/usr/bin/env python3
"""Benchmark: de-identification throughput, three ways, on the same posts, in one run.

(a) Presidio's default AnalyzerEngine (same spaCy model), called post by post;
(b) bare spaCy ``nlp.pipe`` with NER only (every other component disabled);
(c) postkit: ``DeidEngine.analyze`` + the tag operator, one process, batched;
then ``postkit deid`` on a file with 1 and 2 processes (multi-process scaling,
including file reading and writing).

    .venv/bin/python scripts/bench_deid.py --posts 3000
    .venv/bin/python scripts/bench_deid.py --posts 3000 --corpus tests/data/deid_eval.jsonl
    .venv/bin/python scripts/bench_deid.py --whole-runs 1500   # what a user waits for, start-up included

``--whole-runs N`` times whole commands, each a fresh process from start to exit: ``postkit
deid --processes 1`` on N posts and on one post, against a script doing what a Presidio
user writes (default AnalyzerEngine + AnonymizerEngine on the same model, read the CSV,
replace every finding, write the CSV), best of ``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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
    parser.add_argument("--whole-runs", type=int, metavar="N",
                        help="instead: whole postkit deid vs whole Presidio-default runs on N posts, start-up included")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command for --whole-runs (best counts)")
    parser.add_argument("--memory", type=int, nargs="+", metavar="N",
                        help="instead: peak memory of `postkit deid` on the first N posts of --corpus, per N")
    args = parser.parse_args()
    if args.memory:
        memory_profile(args.corpus, args.memory)
        return
    if args.whole_runs:
        whole_runs(load_texts(args.corpus, args.whole_runs), args.corpus, args.repeat)
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
    run = engine.stats["ner_run_chars"] / max(1, engine.stats["chars"])
    print(f"\nthe NER gate sent {share:.0%} of the text through spaCy's NER in (c) "
          f"({run:.0%} once sentences repeated within a batch were read once)")
    print(f"postkit (c) vs (a): {rate_c / rate_a:.1f}x (target >= 5x); "
          f"vs (b): {rate_c / rate_b:.2f}x (target >= 0.75x)")


# What a Presidio user runs to de-identify a CSV: the default engines, one post at a time.
_PRESIDIO_SCRIPT = """
import csv, sys
sys.path.insert(0, {scripts!r})
from postkit.deid.baseline import presidio_default_analyzer
from presidio_anonymizer import AnonymizerEngine
analyzer, anonymizer = presidio_default_analyzer(), AnonymizerEngine()
with open(sys.argv[1], newline="", encoding="utf-8") as source, open(sys.argv[2], "w", newline="", encoding="utf-8") as out:
    writer = csv.writer(out)
    for row in csv.DictReader(source):
        found = analyzer.analyze(row["text"], language="en")
        writer.writerow([row["post_id"], anonymizer.anonymize(row["text"], found).text])
"""


def whole_runs(texts: list[str], corpus: Path, repeat: int) -> None:
    """Wall time of whole commands (fresh process, start-up and I/O included), best of ``repeat``."""
    import pandas as pd

    env = {**os.environ, "POSTKIT_PSEUDONYM_KEY": secrets.token_hex(32)}
    postkit = str(Path(sys.executable).parent / "postkit")
    words = sum(len(t.split()) for t in texts) / len(texts)
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        many, one = Path(tmp) / "posts.csv", Path(tmp) / "one.csv"
        frame = pd.DataFrame({"post_id": [f"p{i}" for i in range(len(texts))], "text": texts})
        frame.to_csv(many, index=False)
        frame.head(1).to_csv(one, index=False)
        script = Path(tmp) / "presidio_run.py"
        script.write_text(_PRESIDIO_SCRIPT.format(scripts=str(ROOT)), encoding="utf-8")
        commands = [
            (f"postkit deid --processes 1, {len(texts):,} posts",
             [postkit, "deid", str(many), "--output", str(Path(tmp) / "a.csv"), "--processes", "1", "--quiet"]),
            (f"Presidio default (analyzer + anonymizer), {len(texts):,} posts",
             [sys.executable, str(script), str(many), str(Path(tmp) / "b.csv")]),
            ("postkit deid --processes 1, 1 post",
             [postkit, "deid", str(one), "--output", str(Path(tmp) / "c.csv"), "--processes", "1", "--quiet"]),
            ("Presidio default, 1 post", [sys.executable, str(script), str(one), str(Path(tmp) / "d.csv")]),
        ]
        for label, command in commands:
            best, best_cpu = float("inf"), float("inf")
            for _ in range(repeat):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
                best = min(best, time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                best_cpu = min(best_cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            rows.append((label, best, best_cpu))
            print(f"{label}: {best:.2f} s (CPU {best_cpu:.2f} s)", file=sys.stderr)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"posts: {len(texts):,} from {corpus} ({words:.0f} words on average); best of {repeat} runs\n")
    print("| whole command (fresh process) | wall time | CPU time |")
    print("|---|---|---|")
    for label, seconds, cpu in rows:
        print(f"| {label} | {seconds:.2f} s | {cpu:.2f} s |")
    print(f"\nwhole run, postkit vs Presidio default: {rows[1][1] / rows[0][1]:.1f}x (target >= 5x; "
          f"{rows[1][2] / rows[0][2]:.1f}x in CPU time); postkit on one post: {rows[2][1]:.2f} s (target < 2.5 s)")
    print("(CPU time, user + system, is what to compare when other work shares the machine)")


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
