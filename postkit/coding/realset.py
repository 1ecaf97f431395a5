"""The real-post CMO set: consensus codes in the repository, texts outside it.

Real posts are not ours to redistribute, so ``tests/data/real_cmo_labels.jsonl`` holds
only post ids, the split, a sha256 of each coded text and the coders' consensus; the
texts are joined in from the shared real-forum folder at run time. A text whose sha256
differs from the one coded stops the load (its codes may no longer fit it). Develop on
the ``tune`` split only; ``score`` is read only to report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[2]
LABELS = ROOT / "tests" / "data" / "real_cmo_labels.jsonl"
POSTS = ROOT.parent / "shared" / "data" / "real_forum" / "posts.jsonl"
# Outcome for a post the coders gave no theory area.
NO_AREA = "none"


def load_real_cmo(split: str, labels: str | Path = LABELS, posts: str | Path = POSTS) -> list[dict[str, Any]]:
    """Rows ``{"id", "text", "area", "polarity", "second_area", "forum", "split", "round"}`` of one split
    (``tune``, ``score`` or ``all``), in the labels file's order.

    ``area`` is a theory area or ``"none"``; ``polarity`` is positive, negative or
    ``"none"``. Raises FileNotFoundError when the posts file is absent (callers skip) and
    :class:`PostkitError` when a text changed since it was coded.
    """
    from ..realdata import join_real_posts

    return [{"id": row["post_id"], "text": post["text"], "area": row["area"], "polarity": row["polarity"],
             "second_area": row.get("second_area"), "forum": post.get("forum"), "split": row["split"],
             "round": row.get("round", 1)}
            for row, post in join_real_posts(split, labels, posts)]
