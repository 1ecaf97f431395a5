#!/usr/bin/env python3
"""Cross-validation of the area ranker: on the real tune half (``--real``), or leave-one-file-out.

    PYTHONPATH=. .venv/bin/python scripts/cv_ranker.py --real              # chosen settings
    PYTHONPATH=. .venv/bin/python scripts/cv_ranker.py --real --grid       # how they were chosen
    PYTHONPATH=. .venv/bin/python scripts/cv_ranker.py --real --synthetic 0.3
    .venv/bin/python scripts/cv_ranker.py tests/data/cmo_forum_dev.jsonl tests/data/cmo_forum_dev2.jsonl \\
        tests/data/cmo_forum_eval.jsonl tests/data/cmo_forum_dev3.jsonl:tune

``--real``: stratified 5-fold cross-validation on the **tune half only** of the real-post
set, repeated with 3 seeds; each fold trains a ranker (TF-IDF + post-level features) on
the other folds and scores the tagger with it on the held-out fold (scripts/eval_coding.py's
rule: "none" is an outcome), beside the ranker's probabilities alone and the
commonest-area baseline. ``--grid`` also tries other regularisation, feature weights and
blending settings and prints the best; ``--synthetic W`` adds the synthetic sets to every
fold's training rows with sample weight W. The score half is never read here.

With FILEs: for each FILE (optionally ``FILE:SPLIT``) a ranker is trained on all the other
files and the tagger with it is scored on that file (top-1 / top-2 area, direction), beside
the cues alone; ``--external`` files are scored with a ranker trained on every FILE.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

try:
    from postkit.coding.ranker import lemma_tokens, read_labelled, train_ranker
    from postkit.coding.tagger import Tagger
    # Same folder as this script (on sys.path when run as a script): one scoring rule for both.
    from eval_coding import evaluate, tagger_predict_all
except ImportError:  # pragma: no cover - wrong interpreter
    sys.exit("cv_ranker.py: cannot import postkit; run it with the project's .venv/bin/python")

ROOT = Path(__file__).resolve().parents[1]


def score(tagger: Tagger, rows: list[dict]) -> tuple[float, float, float]:
    """Top-1, top-2 and direction accuracy, scored exactly as scripts/eval_coding.py does."""
    result = evaluate(rows, tagger_predict_all(tagger, [r["text"] for r in rows]))
    return result["top1"], result["top2"], result["polarity"]


def real_main(args: argparse.Namespace) -> int:
    import realcv

    tagger = Tagger(ranker=None)
    try:
        data = realcv.load_tune(tagger)
    except FileNotFoundError as exc:
        print(f"cv_ranker.py: {exc}", file=sys.stderr)
        return 1
    synthetic = realcv.load_synthetic(tagger, str(ROOT)) if args.synthetic else None
    print(f"real tune half: {len(data.rows)} posts; stratified 5-fold CV x 3 seeds"
          + (f"; synthetic sets added with weight {args.synthetic}" if synthetic else ""))
    result = realcv.cross_validate(tagger, data, synthetic=synthetic, synthetic_weight=args.synthetic or 1.0)
    print(f"{'':<24} top-1  top-2  direction")
    for name, r in result.items():
        direction = f"{r['polarity']:.3f}" if not name.startswith("model alone") else "  -"
        print(f"{name:<24} {r['top1']:.3f}  {r['top2']:.3f}  {direction}")
    if args.grid:
        print("\ngrid (tagger top-1 / top-2; best first):")
        found = []
        for c, fw in itertools.product((0.5, 1.0, 2.0), (None, 1.0, 2.0, 3.0)):
            for blend, weight, everywhere, strong in itertools.product((0.6, 1.0), (0.25, 1.0), (0.0, 1.0),
                                                                       (0.2, 0.35, 0.5, 0.65)):
                settings = dict(realcv.REAL_SETTINGS, ranker_blend=blend, model_only_weight=weight,
                                model_everywhere=everywhere, strong_score=strong)
                r = realcv.cross_validate(tagger, data, c=c, feature_weight=fw, settings=settings,
                                          seeds=(0,))["tagger"]
                found.append((r["top1"], r["top2"], c, fw, blend, weight, everywhere, strong))
        found.sort(key=lambda t: (-t[0], -t[1]))
        for t in found[:15]:
            print("  {:.3f} / {:.3f}  C={} features={} blend={} model_weight={} everywhere={} strong={}".format(*t))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--external", nargs="*", default=[])
    parser.add_argument("--real", action="store_true", help="cross-validate on the real tune half")
    parser.add_argument("--grid", action="store_true", help="with --real: also search the settings (slow)")
    parser.add_argument("--synthetic", type=float, default=0.0, metavar="W",
                        help="with --real: add the synthetic sets to training with sample weight W")
    args = parser.parse_args(argv)
    if args.real:
        return real_main(args)
    if not args.files:
        parser.error("give labelled FILEs, or --real")
    tagger = Tagger(ranker=None)
    sets = {spec: read_labelled(spec) for spec in args.files + args.external}
    lemmas = {spec: [[lemma for lemma, _ in lemma_tokens(d)] for d in tagger.nlp.pipe(r["text"] for r in rows)]
              for spec, rows in sets.items()}

    def fit(specs: list[str]):
        return train_ranker([x for s in specs for x in lemmas[s]], [r["area"] for s in specs for r in sets[s]],
                            [r["polarity"] for s in specs for r in sets[s]])

    print(f"{'held out':<48} {'n':>4}  cues only (top-1/top-2/direction)  with ranker")
    totals, total_n = [0.0, 0.0, 0.0], 0
    for spec in args.files + args.external:
        rows = sets[spec]
        tagger.ranker = None
        plain = score(tagger, rows)
        tagger.ranker = fit([s for s in args.files if s != spec])
        ranked = score(tagger, rows)
        if spec in args.files:
            totals = [t + v * len(rows) for t, v in zip(totals, ranked)]
            total_n += len(rows)
        print(f"{spec:<48} {len(rows):>4}  {plain[0]:.3f} / {plain[1]:.3f} / {plain[2]:.3f}"
              f"             {ranked[0]:.3f} / {ranked[1]:.3f} / {ranked[2]:.3f}"
              + ("  (external)" if spec not in args.files else ""))
    print(f"{'cross-validated, all folds':<48} {total_n:>4}  {'':<34}"
          f"{totals[0] / total_n:.3f} / {totals[1] / total_n:.3f} / {totals[2] / total_n:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
