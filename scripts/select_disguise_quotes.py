"""Choose the real quotes of the disguise benchmark (issue 14): which posts, and which words of each.

Why a script: a researcher quoting a forum picks a post's opening words as an illustration,
and the benchmark must pick them the same way every time, before anyone rewrites a quote
and without looking at postkit's suggester. Eligible posts come from the peer-support
sources (Beyond Blue, the mental-health subreddits, CAMS Reddit, RallyPoint), say "thank
you for" or "thanks for" and have more than 30 words (the study's sampling rule); posts in
the ``score`` split of a labelled real set (tests/data/real_*_labels.jsonl) are left out, so
nobody reads them for this. Forty posts are drawn in keyed-hash order. Each quote is the
post's opening: whole sentences (split at whitespace after ``.``, ``!`` or ``?``) until it
holds at least 18 words; when that would pass 45 words it ends instead at the last comma
between word 18 and 45, else at word 45.

Reads ../shared/data/real_forum/posts.jsonl; writes only post ids and word offsets (never
text), words being the post's whitespace-separated tokens:

    python scripts/select_disguise_quotes.py OUT.jsonl   # {"quote_id", "post_id", "word_start", "word_end"}

The quote's text is ``" ".join(text.split()[word_start:word_end])``. Skips cleanly (exit 0,
a message) when the real posts are absent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTS = ROOT.parent / "shared" / "data" / "real_forum" / "posts.jsonl"
LABELLED = (ROOT / "tests" / "data" / "real_cmo_labels.jsonl", ROOT / "tests" / "data" / "real_deid_labels.jsonl")
KEY = b"postkit-disguise-real-2026-14"
SOURCES = ("beyondblue", "ctreddit", "cams", "rallypoint")
THANKS = re.compile(r"\bthank(?:s| you) for\b", re.IGNORECASE)
MIN_POST_WORDS = 30  # eligible posts have MORE than this many words
MIN_WORDS, MAX_WORDS = 18, 45
N_QUOTES = 40


def _rank(post_id: str) -> str:
    return hmac.new(KEY, post_id.encode(), hashlib.sha256).hexdigest()


def opening(tokens: list[str]) -> int:
    """How many of the post's words its quoted opening takes (see the module docstring)."""
    for end in range(MIN_WORDS, min(len(tokens), MAX_WORDS) + 1):
        if re.search(r"[.!?][\"')\]]*$", tokens[end - 1]):
            return end
    if len(tokens) <= MAX_WORDS:
        return len(tokens)
    for end in range(MAX_WORDS, MIN_WORDS - 1, -1):
        if tokens[end - 1].endswith((",", ";", ":")):
            return end
    return MAX_WORDS


def score_split(paths: tuple[Path, ...] = LABELLED) -> set[str]:
    """Post ids held back for scoring by any labelled real set (never read for development)."""
    held: set[str] = set()
    for path in paths:
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                held |= {row["post_id"] for row in map(json.loads, handle) if row.get("split") == "score"}
    return held


def select(posts_path: Path, n: int = N_QUOTES) -> list[dict]:
    held = score_split()
    pool = []
    with open(posts_path, encoding="utf-8") as handle:
        for line in handle:
            post = json.loads(line)
            tokens = post["text"].split()
            if post["post_id"].split("-")[0] in SOURCES and post["post_id"] not in held \
                    and THANKS.search(post["text"]) and len(tokens) > MIN_POST_WORDS:
                pool.append((_rank(post["post_id"]), post["post_id"], opening(tokens)))
    pool.sort()
    return [{"quote_id": f"R{k + 1:02d}", "post_id": post_id, "word_start": 0, "word_end": end}
            for k, (_, post_id, end) in enumerate(pool[:n])]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: select_disguise_quotes.py OUT.jsonl", file=sys.stderr)
        return 2
    if not POSTS.exists():
        print(f"real posts not found at {POSTS}: nothing to select (skipped)")
        return 0
    rows = select(POSTS)
    Path(argv[1]).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    sources = {}
    for row in rows:
        sources[row["post_id"].split("-")[0]] = sources.get(row["post_id"].split("-")[0], 0) + 1
    print(f"{len(rows)} quotes ({', '.join(f'{s} {n}' for s, n in sorted(sources.items()))}) -> {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
