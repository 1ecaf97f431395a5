#!/usr/bin/env python3
"""Learning curve: how suggestions improve as a study's coders code more real posts.

    PYTHONPATH=. .venv/bin/python scripts/learning_curve.py            # tune half, cross-validated
    PYTHONPATH=. .venv/bin/python scripts/learning_curve.py --draws 5 --sizes 25 50 100 200

Simulates coders on the real-post set's **tune half only** (the score half is never read
here; the lead reports it separately). For each of 5 stratified folds, the other 4 folds
are the pool of posts the coders might code; from it the simulation takes

* **random** draws of N posts (``--draws`` different random orders), and
* **uncertainty-ordered** draws: 10 random posts, then repeatedly the ``--batch`` posts
  the current ranker is least sure of (smallest margin between its two likeliest
  outcomes; ``postkit.coding.learn.uncertainty``), as ``uncertainty_order`` would put
  them before a coder,

trains a ranker on those N coded posts alone (TF-IDF + post-level features, as
``postkit code retrain`` does from a coding store; no other training data) and scores the
tagger with it on the held-out fold (scripts/eval_coding.py's rule: "none" is an
outcome). "all" is the whole pool (4/5 of tune). Prints mean top-1 / top-2 over folds and
draws, beside the commonest-area baseline.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys

try:
    import realcv
    from postkit.coding.learn import uncertainty
    from postkit.coding.tagger import Tagger
except ImportError:  # pragma: no cover - wrong interpreter
    sys.exit("learning_curve.py: cannot import postkit; run it with PYTHONPATH=. .venv/bin/python")


def _score(tagger: Tagger, data: realcv.Prepared, train: list[int], test: list[int]) -> tuple[float, float]:
    if len({data.rows[i]["area"] for i in train}) < 2:  # one outcome: nothing to learn yet
        preds = [([data.rows[train[0]]["area"], "none"], "positive") for _ in test]
    else:
        ranker = realcv.fit(data, train, c=realcv.REAL_C, feature_weight=realcv.REAL_FEATURE_WEIGHT,
                            settings=realcv.REAL_SETTINGS)
        preds = realcv.score_tagger(tagger, ranker, data, test)
    result = realcv.summarise([data.rows[i] for i in test], preds)
    return result["top1"], result["top2"]


def _uncertainty_draw(data: realcv.Prepared, pool: list[int], size: int, batch: int, rng: random.Random) -> list[int]:
    order = pool[:]
    rng.shuffle(order)
    chosen, rest = order[:10], order[10:]
    while len(chosen) < size and rest:
        if len({data.rows[i]["area"] for i in chosen}) < 2:
            chosen.append(rest.pop(0))
            continue
        ranker = realcv.fit(data, chosen, c=realcv.REAL_C, feature_weight=realcv.REAL_FEATURE_WEIGHT)
        margins = uncertainty(ranker, [data.rows[i]["text"] for i in rest], lemma_lists=[data.lemmas[i] for i in rest])
        ranked = sorted(range(len(rest)), key=lambda n: (margins[n]["margin"], rest[n]))
        take = set(ranked[:min(batch, size - len(chosen))])
        chosen += [rest[n] for n in sorted(take)]
        rest = [i for n, i in enumerate(rest) if n not in take]
    return chosen[:size]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--draws", type=int, default=3, help="random draws per fold and size (default 3)")
    parser.add_argument("--batch", type=int, default=10, help="posts added per uncertainty step (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tagger = Tagger(ranker=None)
    try:
        data = realcv.load_tune(tagger)
    except FileNotFoundError as exc:
        print(f"learning_curve.py: {exc}", file=sys.stderr)
        return 1
    labels = [r["area"] for r in data.rows]
    folds = realcv.folds(labels, 5, args.seed)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    base = realcv.baseline(data.rows)
    for fold, (pool, test) in enumerate(folds):
        pool, test = [int(i) for i in pool], [int(i) for i in test]
        for size in args.sizes + [len(pool)]:
            key = str(size) if size < len(pool) else "all (4/5 of tune)"
            if size >= len(pool):
                results.setdefault((key, "random"), []).append(_score(tagger, data, pool, test))
                continue
            for draw in range(args.draws):
                rng = random.Random(f"{args.seed}-{fold}-{size}-{draw}")
                results.setdefault((key, "random"), []).append(_score(tagger, data, rng.sample(pool, size), test))
                chosen = _uncertainty_draw(data, pool, size, args.batch, rng)
                results.setdefault((key, "uncertainty"), []).append(_score(tagger, data, chosen, test))
        print(f"fold {fold + 1}/5 done", file=sys.stderr, flush=True)
    print(f"Learning curve on the real tune half ({len(data.rows)} posts; 5-fold CV, {args.draws} draws per size)")
    print(f"commonest-area baseline: top-1 {base['top1']:.3f}, top-2 {base['top2']:.3f}\n")
    print("| coded posts | draw | top-1 (mean ± sd) | top-2 (mean ± sd) |")
    print("|---|---|---|---|")
    for (key, kind), values in results.items():
        t1, t2 = [v[0] for v in values], [v[1] for v in values]
        sd1 = statistics.stdev(t1) if len(t1) > 1 else 0.0
        sd2 = statistics.stdev(t2) if len(t2) > 1 else 0.0
        print(f"| {key} | {kind} | {statistics.mean(t1):.3f} ± {sd1:.3f} | {statistics.mean(t2):.3f} ± {sd2:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
