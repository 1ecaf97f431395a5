"""The real-post CMO set: consensus codes in the repository, texts outside it.

Real posts are not ours to redistribute, so ``tests/data/real_cmo_labels.jsonl`` holds
only post ids, the split, a sha256 of each coded text and the coders' consensus; the
texts are joined in from the shared real-forum folder at run time. A text whose sha256
differs from the one coded stops the load (its codes may no longer fit it). Develop on
the ``tune`` split only; ``score`` is read only to report.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import PostkitError

ROOT = Path(__file__).resolve().parents[2]
LABELS = ROOT / "tests" / "data" / "real_cmo_labels.jsonl"
POSTS = ROOT.parent / "shared" / "data" / "real_forum" / "posts.jsonl"
# Outcome for a post the coders gave no theory area.
NO_AREA = "none"


def load_real_cmo(split: str, labels: str | Path = LABELS, posts: str | Path = POSTS) -> list[dict[str, Any]]:
    """Rows ``{"id", "text", "area", "polarity", "second_area", "forum", "split"}`` of one split
    (``tune``, ``score`` or ``all``), in the labels file's order.

    ``area`` is a theory area or ``"none"``; ``polarity`` is positive, negative or
    ``"none"``. Raises FileNotFoundError when the posts file is absent (callers skip) and
    :class:`PostkitError` when a text changed since it was coded.
    """
    if split not in ("tune", "score", "all"):
        raise PostkitError(f"unknown split {split!r}", fix="use tune, score or all")
    labels, posts = Path(labels), Path(posts)
    wanted: dict[str, dict[str, Any]] = {}
    with labels.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                if split in ("all", row["split"]):
                    wanted[row["post_id"]] = row
    if not posts.exists():
        raise FileNotFoundError(f"real posts not found at {posts}")
    found: dict[str, dict[str, Any]] = {}
    with posts.open(encoding="utf-8") as handle:
        for line in handle:
            post = json.loads(line)
            row = wanted.get(post.get("post_id"))
            if row is None:
                continue
            text = post["text"]
            if hashlib.sha256(text.encode("utf-8")).hexdigest() != row["text_sha256"]:
                raise PostkitError("a coded post's text changed since it was coded", path=posts,
                                   fix="restore the original posts file or recode the post")
            found[row["post_id"]] = {"id": row["post_id"], "text": text, "area": row["area"],
                                     "polarity": row["polarity"], "second_area": row.get("second_area"),
                                     "forum": post.get("forum"), "split": row["split"]}
    missing = [pid for pid in wanted if pid not in found]
    if missing:
        raise PostkitError(f"{len(missing)} coded post(s) are missing from the posts file", path=posts,
                           fix="restore the original posts file")
    return [found[pid] for pid in wanted]
