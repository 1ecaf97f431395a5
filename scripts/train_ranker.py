#!/usr/bin/env python3
"""Train the area ranker (``rules/cmo_ranker.json``) from labelled JSONL files.

    .venv/bin/python scripts/train_ranker.py --output rules/cmo_ranker.json \\
        tests/data/cmo_forum_dev.jsonl tests/data/cmo_forum_dev2.jsonl tests/data/cmo_forum_eval.jsonl \\
        tests/data/cmo_forum_dev3.jsonl:tune

Each FILE may end in ``:SPLIT`` to keep only rows whose ``split`` field equals SPLIT.
Rows need ``text``, ``area`` and ``polarity`` (positive/negative). The output records the
training files, their sha256 and row counts, so ``scripts/eval_coding.py`` can warn when
asked to evaluate on training data. Training is deterministic (lbfgs on fixed data).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from postkit.coding.ranker import train_file_rows
except ImportError:  # pragma: no cover - wrong interpreter
    sys.exit("train_ranker.py: cannot import postkit; run it with the project's .venv/bin/python")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="labelled JSONL, optionally FILE:SPLIT")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--c", type=float, default=4.0, help="inverse regularisation strength (default 4)")
    args = parser.parse_args(argv)
    from postkit.errors import PostkitError

    try:
        ranker = train_file_rows(args.files, c=args.c)
        ranker.save(args.output)
    except PostkitError as exc:
        print(f"train_ranker.py: {exc}", file=sys.stderr)
        return 1
    meta = ranker.meta
    print(f"Trained on {meta['rows']} rows from {len(meta['training'])} files; "
          f"{len(ranker.vocabulary):,} terms; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
