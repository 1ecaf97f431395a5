"""Labelled real posts: labels in the repository, texts outside it, joined at run time.

Real forum posts are not ours to redistribute, so the label files in ``tests/data/``
(de-identification offsets, CMO codes) hold only post ids, a split, the sha256 of the text
that was labelled and the labels. This joins them with the texts of the shared posts file.
One reader serves every labelled set, so each checks texts the same way: a text whose
sha256 differs from the one labelled stops the load (labels on a changed text would score
nonsense), and so does a labelled post missing from the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .errors import PostkitError

SPLITS = ("tune", "score", "all")


def join_real_posts(split: str, labels: str | Path, posts: str | Path, *,
                    error: type[PostkitError] = PostkitError) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(label row, post)`` pairs of one split (``tune``, ``score`` or ``all``), in the labels' order.

    Raises FileNotFoundError when the posts file is absent (callers skip), and ``error``
    when a labelled text changed or is missing.
    """
    if split not in SPLITS:
        raise error(f"unknown split {split!r}", fix="use tune, score or all")
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
            if hashlib.sha256(post["text"].encode("utf-8")).hexdigest() != row["text_sha256"]:
                raise error(f"post {row['post_id']}: its text changed since it was labelled", path=posts,
                            fix="restore the original posts file, or label the post again")
            found[row["post_id"]] = post
    missing = [post_id for post_id in wanted if post_id not in found]
    if missing:
        raise error(f"{len(missing)} labelled post(s) are missing from the posts file", path=posts,
                    fix="restore the original posts file")
    return [(wanted[post_id], found[post_id]) for post_id in wanted]
