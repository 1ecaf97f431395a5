"""Choose the real posts for the de-identification development set (issue 12).

Why a script: the choice must be reproducible and must not depend on postkit's own
detector (choosing posts where postkit finds something would hide its misses). Posts are
drawn per source by a keyed hash of their id; about half are drawn from posts with a
*neutral* surface cue that an identifier may be present (a digit run, an @ or a web
address, an age-like form, a capitalised word inside a sentence, a sign-off line), the
other half from the rest, so the set has both identifier-rich and identifier-free posts.
The tune/score split is also by hash, fixed before anyone labels a post.

Reads ../shared/data/real_forum/posts.jsonl; writes only post ids (never text):

    python scripts/select_real_deid_set.py OUT.jsonl           # round 1: {"post_id", "source", "split", "cue"}
    python scripts/select_real_deid_set.py OUT.jsonl --round2  # round 2: strong-cue posts not in round 1
    python scripts/select_real_deid_set.py OUT.jsonl --round3  # round 3: more tune-only posts, cue and plain
    python scripts/select_real_deid_set.py OUT.jsonl --round4  # round 4: fresh posts, half tune, half score

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
SEED = "postkit-real-deid-2026-12"
PER_SOURCE = {"beyondblue": 110, "ctreddit": 50, "cams": 50, "counselchat": 50, "rallypoint": 50,
              "mse": 30, "askreddit": 20}
MIN_WORDS, MAX_WORDS = 15, 220

_CUE = re.compile(
    r"\d{3,}|@\w|https?://|www\.|\.(?:com|org|net|au|uk)\b"
    r"|\b\d{1,2}\s*(?:yo|y/o|years?\s+old|[MFmf]\b)|[(\[]\d{1,2}\s*[MFmf][)\]]"
    r"|(?<=[a-z,] )[A-Z][a-z]{2,}"
    r"|\n\s*[-~]?\s*[A-Z][a-z]*\s*$"
)


# Round 2 (drawn after round 1 came out with identifiers in only ~20% of posts): cues that more
# often go with a person-level identifier, still neutral (no postkit detector involved).
_STRONG_CUE = re.compile(
    r"@\w|https?://|www\.|\b\d{1,2}\s*(?:yo|y/o|years?\s+old|[MFmf]\b)|[(\[]\d{1,2}\s*[MFmf][)\]]"
    r"|\b(?i:I am|I'm|Im|aged?|turned?|turning)\s+\d{1,2}\b"
    r"|\b(?i:my (?:name|husband|wife|son|daughter|partner|friend|boyfriend|girlfriend|mum|mom|dad|brother|sister)"
    r"(?: is| called|,)?) [A-Z][a-z]+"
    r"|^(?i:hi|hey|dear|hello|thanks|thank you)[ ,]+[A-Z]\w+"
    r"|\n\s*[-~]?\s*[A-Z][a-z]*\s*$",
    re.MULTILINE,
)
ROUND2_PER_SOURCE = {"beyondblue": 70, "ctreddit": 30, "cams": 40, "counselchat": 40, "rallypoint": 40,
                     "mse": 20}


def _rank(post_id: str) -> str:
    return hashlib.sha256(f"{SEED}:{post_id}".encode()).hexdigest()


def _posts_of_length(posts_path: Path, exclude: set[str] = frozenset()):
    """(source, post id, text) of every post of MIN_WORDS..MAX_WORDS words not in ``exclude``."""
    with open(posts_path, encoding="utf-8") as handle:
        for line in handle:
            post = json.loads(line)
            if post["post_id"] not in exclude and MIN_WORDS <= len(post["text"].split()) <= MAX_WORDS:
                yield post["post_id"].split("-")[0], post["post_id"], post["text"]


def select(posts_path: Path) -> list[dict]:
    pools: dict[tuple[str, bool], list[tuple[str, str]]] = {}
    for source, post_id, text in _posts_of_length(posts_path):
        if source in PER_SOURCE:
            pools.setdefault((source, bool(_CUE.search(text))), []).append((_rank(post_id), post_id))
    chosen = []
    for source, count in PER_SOURCE.items():
        with_cue = sorted(pools.get((source, True), []))[: (count + 1) // 2]
        without = sorted(pools.get((source, False), []))[: count - len(with_cue)]
        for rank, post_id in with_cue + without:
            chosen.append({"post_id": post_id, "source": source,
                           "split": "tune" if int(rank[-1], 16) % 2 == 0 else "score",
                           "cue": (rank, post_id) in with_cue})
    return sorted(chosen, key=lambda row: _rank(row["post_id"]))


def select_round2(posts_path: Path, round1: set[str]) -> list[dict]:
    """Posts with a strong cue only, not drawn in round 1; same keyed ranks and split rule."""
    pools: dict[str, list[tuple[str, str]]] = {}
    for source, post_id, text in _posts_of_length(posts_path, round1):
        if source in ROUND2_PER_SOURCE and _STRONG_CUE.search(text):
            pools.setdefault(source, []).append((_rank(post_id), post_id))
    chosen = [{"post_id": post_id, "source": source, "split": "tune" if int(rank[-1], 16) % 2 == 0 else "score",
               "cue": True, "round": 2}
              for source, count in ROUND2_PER_SOURCE.items() for rank, post_id in sorted(pools.get(source, []))[:count]]
    return sorted(chosen, key=lambda row: _rank(row["post_id"]))


ROUND3_CUE = {"beyondblue": 60, "ctreddit": 30, "cams": 40, "counselchat": 40, "rallypoint": 30}
ROUND3_PLAIN = {"beyondblue": 40, "cams": 20, "counselchat": 20, "rallypoint": 20}


def select_round3(posts_path: Path, earlier: set[str]) -> list[dict]:
    """More development posts (all in the tune split, decided before labelling): strong-cue posts
    and plain ones not drawn before, so rules meet more real text without touching the score split."""
    cue_pools: dict[str, list[tuple[str, str]]] = {}
    plain_pools: dict[str, list[tuple[str, str]]] = {}
    for source, post_id, text in _posts_of_length(posts_path, earlier):
        pools = cue_pools if _STRONG_CUE.search(text) else plain_pools
        pools.setdefault(source, []).append((_rank("r3:" + post_id), post_id))
    chosen = []
    for counts, pools, cue in ((ROUND3_CUE, cue_pools, True), (ROUND3_PLAIN, plain_pools, False)):
        for source, count in counts.items():
            chosen += [{"post_id": post_id, "source": source, "split": "tune", "cue": cue, "round": 3}
                       for _, post_id in sorted(pools.get(source, []))[:count]]
    return sorted(chosen, key=lambda row: _rank(row["post_id"]))


ROUND4_CUE = {"beyondblue": 50, "ctreddit": 20, "cams": 25, "counselchat": 25, "rallypoint": 25, "mse": 15}
ROUND4_PLAIN = {"beyondblue": 35, "ctreddit": 10, "cams": 15, "counselchat": 15, "rallypoint": 15, "mse": 10}


def select_round4(posts_path: Path, earlier: set[str]) -> list[dict]:
    """Fresh posts never drawn before, split half tune, half score by a keyed hash fixed before
    labelling: the score split had been read (to report) several times while rules changed, so a
    fresh score half shows whether the rules generalise beyond what the developers saw."""
    cue_pools: dict[str, list[tuple[str, str]]] = {}
    plain_pools: dict[str, list[tuple[str, str]]] = {}
    for source, post_id, text in _posts_of_length(posts_path, earlier):
        pools = cue_pools if _STRONG_CUE.search(text) else plain_pools
        pools.setdefault(source, []).append((_rank("r4:" + post_id), post_id))
    chosen = []
    for counts, pools, cue in ((ROUND4_CUE, cue_pools, True), (ROUND4_PLAIN, plain_pools, False)):
        for source, count in counts.items():
            chosen += [{"post_id": post_id, "source": source,
                        "split": "tune" if int(_rank("r4split:" + post_id)[-1], 16) % 2 == 0 else "score",
                        "cue": cue, "round": 4}
                       for _, post_id in sorted(pools.get(source, []))[:count]]
    return sorted(chosen, key=lambda row: _rank(row["post_id"]))


def main(argv: list[str]) -> int:
    round2, round3, round4 = "--round2" in argv, "--round3" in argv, "--round4" in argv
    argv = [a for a in argv if a not in ("--round2", "--round3", "--round4")]
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], "\nusage: select_real_deid_set.py OUT.jsonl [--round2|--round3|--round4]",
              file=sys.stderr)
        return 2
    if not POSTS.exists():
        print(f"real posts not found at {POSTS}: nothing to select (skipped)")
        return 0
    rows = select(POSTS)
    if round2 or round3 or round4:
        second = select_round2(POSTS, {row["post_id"] for row in rows})
        if round2:
            rows = second
        else:
            third = select_round3(POSTS, {row["post_id"] for row in rows + second})
            rows = third if round3 else select_round4(POSTS, {row["post_id"] for row in rows + second + third})
    Path(argv[1]).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    splits = {s: sum(r["split"] == s for r in rows) for s in ("tune", "score")}
    print(f"{len(rows)} posts ({sum(r['cue'] for r in rows)} with a cue); tune {splits['tune']}, "
          f"score {splits['score']} -> {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
