"""Choose the real "thank you for" posts for the CMO coding development set (issue 13).

Why a script: the choice and the tune/score split must be reproducible and fixed before
anyone codes a post, and must not depend on postkit's tagger. Eligible posts say "thank
you for" or "thanks for" and have more than 30 words (the study's sampling rule). Every
eligible post of the peer-support sources is taken (Beyond Blue, the mental-health
subreddits, CAMS Reddit, RallyPoint), plus a keyed-hash draw of CounselChat (therapists'
Q&A, a different genre, kept as a minority); the split is by the same keyed hash.

Reads ../shared/data/real_forum/posts.jsonl; writes only post ids (never text):

    python scripts/select_real_cmo_set.py OUT.jsonl            # {"post_id", "source", "split"}
    python scripts/select_real_cmo_set.py OUT.jsonl --round2   # more peer-support posts, see select_round2

Skips cleanly (exit 0, a message) when the real posts are absent.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTS = ROOT.parent / "shared" / "data" / "real_forum" / "posts.jsonl"
SEED = "postkit-real-cmo-2026-12"
TAKE_ALL = ("beyondblue", "ctreddit", "cams", "rallypoint")
DRAWN = {"counselchat": 32}
THANKS = re.compile(r"\bthank(?:s| you) for\b", re.IGNORECASE)
MIN_WORDS = 30  # eligible posts have MORE than this many words


def _rank(post_id: str) -> str:
    return hashlib.sha256(f"{SEED}:{post_id}".encode()).hexdigest()


def select(posts_path: Path) -> list[dict]:
    eligible: dict[str, list[tuple[str, str]]] = {}
    with open(posts_path, encoding="utf-8") as handle:
        for line in handle:
            post = json.loads(line)
            source = post["post_id"].split("-")[0]
            if (source in TAKE_ALL or source in DRAWN) and THANKS.search(post["text"]) \
                    and len(post["text"].split()) > MIN_WORDS:
                eligible.setdefault(source, []).append((_rank(post["post_id"]), post["post_id"]))
    chosen = []
    for source, posts in eligible.items():
        picked = sorted(posts)[: DRAWN[source]] if source in DRAWN else posts
        chosen += [{"post_id": post_id, "source": source, "split": "tune" if int(rank[-1], 16) % 2 == 0 else "score"}
                   for rank, post_id in picked]
    return sorted(chosen, key=lambda row: _rank(row["post_id"]))


GRATITUDE = re.compile(r"\b(?:thank|thanks|thx|grateful|appreciate)", re.IGNORECASE)
# Neutral surface cues of the minority pathways (peer reply, shared experience, hope). Round 1
# came out 75% catharsis, so minority areas had too few examples to learn or measure; these cues
# only choose which posts are coded, the coders never see them and code from the theory alone.
MINORITY_CUE = re.compile(
    r"not alone|same boat|been there|what helped me|helped me|my advice|I hope|you are not|you're not"
    r"|hang in|understand|relate|feel heard|same here|in my experience|I found that|give it a try",
    re.IGNORECASE)
ROUND2 = {"beyondblue": 90, "cams": 50, "ctreddit": 30, "rallypoint": 30}


def select_round2(posts_path: Path, earlier: set[str]) -> list[dict]:
    """Peer-support posts of more than 30 words with any gratitude word, not drawn before, two
    thirds with a minority-pathway cue; split half tune, half score by keyed hash before coding.
    They widen the set beyond the study's "thank you for" rule, so they are reported apart."""
    pools: dict[tuple[str, bool], list[tuple[str, str]]] = {}
    with open(posts_path, encoding="utf-8") as handle:
        for line in handle:
            post = json.loads(line)
            source = post["post_id"].split("-")[0]
            if source in ROUND2 and post["post_id"] not in earlier and GRATITUDE.search(post["text"]) \
                    and len(post["text"].split()) > MIN_WORDS:
                key = (source, bool(MINORITY_CUE.search(post["text"])))
                pools.setdefault(key, []).append((_rank("r2:" + post["post_id"]), post["post_id"]))
    chosen = []
    for source, count in ROUND2.items():
        cued = sorted(pools.get((source, True), []))[: 2 * count // 3]
        plain = sorted(pools.get((source, False), []))[: count - len(cued)]
        chosen += [{"post_id": post_id, "source": source, "round": 2, "cue": (rank, post_id) in cued,
                    "split": "tune" if int(_rank("r2split:" + post_id)[-1], 16) % 2 == 0 else "score"}
                   for rank, post_id in cued + plain]
    return sorted(chosen, key=lambda row: _rank(row["post_id"]))


def main(argv: list[str]) -> int:
    round2 = "--round2" in argv
    argv = [a for a in argv if a != "--round2"]
    if len(argv) != 2:
        print("usage: select_real_cmo_set.py OUT.jsonl [--round2]", file=sys.stderr)
        return 2
    if not POSTS.exists():
        print(f"real posts not found at {POSTS}: nothing to select (skipped)")
        return 0
    rows = select(POSTS)
    if round2:
        rows = select_round2(POSTS, {row["post_id"] for row in rows})
    Path(argv[1]).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    splits = {s: sum(r["split"] == s for r in rows) for s in ("tune", "score")}
    print(f"{len(rows)} posts; tune {splits['tune']}, score {splits['score']} -> {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
