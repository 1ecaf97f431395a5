#!/usr/bin/env python3
"""Evaluate theory-area and polarity suggestions on a labelled JSONL set, for postkit's
rule-based tagger and for a simple keyword baseline.

    .venv/bin/python scripts/eval_coding.py tests/data/cmo_forum_eval.jsonl
    .venv/bin/python scripts/eval_coding.py /work/shared/data/cmo_dev_interview_quotes.jsonl --no-targets
    .venv/bin/python scripts/eval_coding.py LABELLED.jsonl --engine tagger --show-misses
    .venv/bin/python scripts/eval_coding.py tests/data/cmo_forum_dev.jsonl --split tune
    .venv/bin/python scripts/eval_coding.py --real tune --engine all    # real posts (tune half)

Rows: ``{"id", "text", "area", "polarity"}``; ``--real SPLIT`` reads the real-post set
(``tests/data/real_cmo_labels.jsonl`` joined with the shared real posts; develop on
``tune``, ``score`` is read only to report). Scoring rules:

* areas are ranked by :func:`postkit.coding.tagger.area_scores` (``1 - prod(1 - score)``
  over each area's suggested codes); a text with no suggestion counts as wrong for
  top-1, top-2 and polarity (coverage reports how often that happens);
* **"none" (no area) is an outcome when the labelled set has it** (the real set: posts
  the coders gave no area). A suggestion is *strong* when its area scores at least the
  tagger's ``strong_score`` (``postkit.coding.tagger.STRONG_SCORE``, or the value the
  ranker file carries). The ranked outcomes of a post are its strong areas (best
  first), then ``none``, then its weak areas: so top-1 is right for a post coded none
  exactly when postkit makes no strong suggestion, and a weak suggestion is never right
  at top-1 for an area. Top-2 is the gold outcome among the first two. The same rule
  scores every engine, including the commonest-area baseline (``--engine commonest``:
  always one strong suggestion of the commonest area, so its ranking is that area then
  ``none``). On sets without ``none`` rows the ranking is the areas alone, as before;
* polarity is the tagger's pathway direction for the post (``Tagger.assess``: a
  kind-weighted vote of the directional codes plus the area ranker's polarity model),
  scored on rows whose gold polarity is positive or negative;
* with the area ranker loaded (the default; ``--ranker none`` for cues only), texts the
  ranker was trained on are counted and reported: numbers on them are training accuracy;
* the baseline counts a handful of obvious keywords per area and calls a text negative
  if it has a negative word.

Targets (forum-style set only): top-1 >= 0.75, top-2 >= 0.90, polarity >= 0.85.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

try:
    from postkit.coding.ranker import read_labelled, text_fingerprint
    from postkit.errors import PostkitError
    from postkit.coding.tagger import Tagger
except ImportError:  # pragma: no cover - wrong interpreter
    sys.exit("eval_coding.py: cannot import postkit; run it with the project's .venv/bin/python")

AREAS = ("self_efficacy", "understanding_acceptance", "helping_others", "catharsis_sense_making")
NO_AREA = "none"
OUTCOMES = AREAS + (NO_AREA,)
SHORT = {"self_efficacy": "SE", "understanding_acceptance": "UA", "helping_others": "HO",
         "catharsis_sense_making": "CS", NO_AREA: "none"}
COMMONEST = "catharsis_sense_making"
TARGETS = {"top1": 0.75, "top2": 0.90, "polarity": 0.85}

# The obvious words a coder might search for first; deliberately simple.
BASELINE_KEYWORDS = {
    "self_efficacy": ["advice", "tips", "tip", "strategy", "strategies", "technique", "cope", "coping",
                      "trigger", "triggering"],
    "understanding_acceptance": ["not alone", "same", "understood", "understand", "belong", "ignored",
                                 "no reply", "removed"],
    "helping_others": ["helped someone", "glad i could", "helping others", "help others", "useful",
                       "worried about"],
    "catharsis_sense_making": ["vent", "venting", "off my chest", "anonymous", "write", "writing", "diary"],
}
NEGATIVE_WORDS = ["not", "n't", "no", "never", "worse", "ignored", "removed", "triggering", "overwhelmed",
                  "drained", "worried", "scared", "afraid", "alone"]


def baseline_predict(text: str) -> tuple[list[str], str | None]:
    """Areas ranked by keyword hits (ties in a fixed order) and a polarity guess."""
    low = text.lower()
    hits = {}
    for area, words in BASELINE_KEYWORDS.items():
        n = sum(len(re.findall(r"(?<![a-z])" + re.escape(w) + r"(?![a-z])", low)) for w in words)
        if n:
            hits[area] = n
    ranked = sorted(hits, key=lambda a: (-hits[a], AREAS.index(a)))
    if not ranked:
        return [], None
    negative = any(re.search(r"(?<![a-z])" + re.escape(w) + r"(?![a-z])", low) for w in NEGATIVE_WORDS)
    return ranked, "negative" if negative else "positive"


def ranked_outcomes(scores: dict[str, float], strong_score: float) -> list[str]:
    """Strong areas best first, then "none", then weak areas (the scoring rule above)."""
    ordered = sorted(scores, key=lambda a: -scores[a])
    strong = [a for a in ordered if scores[a] >= strong_score]
    return strong + [NO_AREA] + [a for a in ordered if a not in strong]


def tagger_predict_all(tagger: Tagger, texts: list[str], *, no_area: bool = False,
                       docs: list[Any] | None = None) -> list[tuple[list[str], str | None]]:
    """Areas ranked by the tagger's area scores (with ``no_area``: ranked outcomes), and its
    pathway direction for the post. ``docs``: texts already parsed by ``tagger.nlp``."""
    assessed = tagger.assess(texts) if docs is None else [tagger._assess(doc) for doc in docs]
    if no_area:
        return [(ranked_outcomes(a["area_scores"], tagger.settings["strong_score"]), a["polarity"]) for a in assessed]
    return [(list(a["area_scores"]), a["polarity"]) for a in assessed]


def commonest_predict(rows: list[dict[str, Any]], area: str = COMMONEST, *,
                      no_area: bool = False) -> list[tuple[list[str], str | None]]:
    """Always one strong suggestion of ``area`` (positive): the baseline to beat."""
    return [(ranked_outcomes({area: 1.0}, 0.5) if no_area else [area], "positive") for _ in rows]


def evaluate(rows: list[dict[str, Any]], preds: list[tuple[list[str], str | None]]) -> dict[str, Any]:
    n = len(rows)
    top1 = top2 = pol = covered = directional = 0
    confusion: Counter = Counter()
    for row, (ranked, polarity) in zip(rows, preds):
        gold = row["area"]
        guess = ranked[0] if ranked else "(none)"
        confusion[(gold, guess)] += 1
        if ranked and ranked[0] != NO_AREA:
            covered += 1
        top1 += guess == gold
        top2 += gold in ranked[:2]
        if row["polarity"] in ("positive", "negative"):
            directional += 1
            pol += polarity is not None and polarity == row["polarity"]
    per_area = {}
    for area in OUTCOMES:
        if area == NO_AREA and not any(r["area"] == NO_AREA for r in rows):
            continue
        tp = confusion[(area, area)]
        predicted = sum(v for (g, p), v in confusion.items() if p == area)
        actual = sum(v for (g, p), v in confusion.items() if g == area)
        per_area[area] = {"precision": tp / predicted if predicted else 0.0,
                          "recall": tp / actual if actual else 0.0, "n": actual}
    return {"n": n, "top1": top1 / n, "top2": top2 / n, "polarity": pol / directional if directional else 0.0,
            "coverage": covered / n, "per_area": per_area, "confusion": confusion}


def print_report(name: str, result: dict[str, Any], targets: bool, seconds: float) -> bool:
    print(f"\n=== {name}  (n={result['n']}, {seconds:.2f}s) ===")
    ok = True
    for key, label in (("top1", "top-1 area accuracy"), ("top2", "top-2 area accuracy"),
                       ("polarity", "polarity accuracy (direction)"), ("coverage", "coverage")):
        line = f"  {label:<36} {result[key]:.3f}"
        if targets and key in TARGETS:
            passed = result[key] >= TARGETS[key]
            ok &= passed
            line += f"   target >= {TARGETS[key]:.2f}: {'PASS' if passed else 'FAIL'}"
        print(line)
    print("  per area:            precision  recall   n")
    for area, m in result["per_area"].items():
        print(f"    {area:<26} {m['precision']:.3f}   {m['recall']:.3f}  {m['n']:>3}")
    golds = list(result["per_area"])
    cols = golds + (["(none)"] if NO_AREA not in golds else [])
    print("  confusion (rows gold, columns top-1):")
    print("    " + " " * 6 + "".join(f"{SHORT.get(c, '-'):>6}" for c in cols))
    for gold in golds:
        print(f"    {SHORT[gold]:<6}" + "".join(f"{result['confusion'][(gold, c)]:>6}" for c in cols))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labelled", type=Path, nargs="?", help="JSONL with id, text, area, polarity")
    parser.add_argument("--real", choices=("tune", "score"),
                        help="score the real-post set's SPLIT instead of a labelled file (score: report only)")
    parser.add_argument("--engine", choices=("tagger", "baseline", "both", "commonest", "all"), default="both",
                        help="both = tagger and keyword baseline; all = those and the commonest-area baseline")
    parser.add_argument("--no-targets", action="store_true", help="do not print PASS/FAIL (e.g. interview quotes)")
    parser.add_argument("--show-misses", action="store_true", help="list texts the tagger got wrong")
    parser.add_argument("--check", action="store_true", help="exit 1 if the tagger misses a target")
    parser.add_argument("--ranker", default="default",
                        help="area ranker file, or 'none' for the codebook cues alone (default: the packaged one)")
    parser.add_argument("--round", dest="label_round", type=int, choices=(1, 2),
                        help="with --real: only round 1 (the study's 'thank you for' posts) or round 2 (a wider "
                             "gratitude draw enriched for minority areas); default both")
    parser.add_argument("--split", default=None,
                        help="keep only rows whose 'split' field equals this (e.g. tune, check)")
    args = parser.parse_args(argv)

    if (args.labelled is None) == (args.real is None):
        parser.error("give a labelled file or --real SPLIT (not both)")
    if args.real == "score" and args.show_misses:
        parser.error("the score half is read only to report: --show-misses is for --real tune")
    try:
        if args.real:
            from postkit.coding.realset import load_real_cmo

            rows = load_real_cmo(args.real)
            name = f"real posts ({args.real})"
            if args.label_round:
                rows = [row for row in rows if row["round"] == args.label_round]
                name = f"real posts ({args.real}, round {args.label_round})"
        else:
            rows = read_labelled(args.labelled if args.split is None else f"{args.labelled}:{args.split}")
            name = str(args.labelled)
    except FileNotFoundError as exc:
        sys.exit(f"eval_coding.py: {exc}")
    except PostkitError as exc:
        sys.exit(f"eval_coding.py: {exc}")
    rows = [r for r in rows if r.get("area") in OUTCOMES]
    no_area = any(r["area"] == NO_AREA for r in rows)
    print(f"{name}: {len(rows)} labelled texts "
          '(' + ', '.join(SHORT[a] + '=' + str(sum(r['area'] == a for r in rows)) for a in OUTCOMES
                          if a != NO_AREA or no_area) + ')')
    targets = not args.no_targets and not args.real
    ok = True
    if args.engine in ("tagger", "both", "all"):
        tagger = Tagger(ranker=None if args.ranker == "none" else args.ranker)
        if tagger.ranker is not None:
            seen = set(tagger.ranker.meta.get("fingerprints", ()))
            trained = sum(text_fingerprint(r["text"]) in seen for r in rows)
            if trained:
                print(f"  NOTE: {trained} of {len(rows)} texts were used to train the area ranker; "
                      "numbers on them are training accuracy (use --ranker none, or an unseen set)")
        started = time.perf_counter()
        preds = tagger_predict_all(tagger, [r["text"] for r in rows], no_area=no_area)
        seconds = time.perf_counter() - started
        result = evaluate(rows, preds)
        engine = f"codebook {tagger.version_hash[:12]}" + (
            f", ranker {tagger.ranker_version[:12]}" if tagger.ranker is not None else ", no ranker")
        ok = print_report(f"tagger ({engine})", result, targets, seconds)
        if args.show_misses:
            print("  misses:")
            for row, (ranked, pol) in zip(rows, preds):
                if not ranked or ranked[0] != row["area"] or pol != row["polarity"]:
                    print(f"    {row['id']} gold={SHORT[row['area']]}/{str(row['polarity'])[:3]} "
                          f"got={[SHORT[a] for a in ranked[:2]]}/{(pol or '-')[:3]}: {row['text'][:90]}")
    if args.engine in ("baseline", "both", "all"):
        started = time.perf_counter()
        preds = [baseline_predict(r["text"]) for r in rows]
        if no_area:  # keyword hits count as strong suggestions
            preds = [(ranked + [NO_AREA] if ranked else [NO_AREA], pol) for ranked, pol in preds]
        print_report("keyword baseline", evaluate(rows, preds), targets, time.perf_counter() - started)
    if args.engine in ("commonest", "all"):
        started = time.perf_counter()
        preds = commonest_predict(rows, no_area=no_area)
        print_report(f"commonest-area baseline (always {SHORT[COMMONEST]})", evaluate(rows, preds), targets,
                     time.perf_counter() - started)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
