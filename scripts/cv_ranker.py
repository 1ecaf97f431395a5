#!/usr/bin/env python3
"""Leave-one-file-out cross-validation of the area ranker with the tagger's current settings.

    .venv/bin/python scripts/cv_ranker.py tests/data/cmo_forum_dev.jsonl tests/data/cmo_forum_dev2.jsonl \\
        tests/data/cmo_forum_eval.jsonl tests/data/cmo_forum_dev3.jsonl:tune \\
        --external /work/shared/data/cmo_dev_interview_quotes.jsonl

For each FILE (optionally ``FILE:SPLIT``) a ranker is trained on all the other files and the
tagger with it is scored on that file (top-1 / top-2 area, direction), beside the cues
alone; ``--external`` files are scored with a ranker trained on every FILE. This is how the
tagger's blending constants were chosen, without touching the held-out sets.
"""

from __future__ import annotations

import argparse
import sys

try:
    from postkit.coding.ranker import lemma_tokens, read_labelled, train_ranker
    from postkit.coding.tagger import Tagger
    # Same folder as this script (on sys.path when run as a script): one scoring rule for both.
    from eval_coding import evaluate, tagger_predict_all
except ImportError:  # pragma: no cover - wrong interpreter
    sys.exit("cv_ranker.py: cannot import postkit; run it with the project's .venv/bin/python")


def score(tagger: Tagger, rows: list[dict]) -> tuple[float, float, float]:
    """Top-1, top-2 and direction accuracy, scored exactly as scripts/eval_coding.py does."""
    result = evaluate(rows, tagger_predict_all(tagger, [r["text"] for r in rows]))
    return result["top1"], result["top2"], result["polarity"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--external", nargs="*", default=[])
    args = parser.parse_args(argv)
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
