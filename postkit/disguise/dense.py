"""The dense-retrieval attacker: can a reworded quote be found by its meaning?

BM25 (:mod:`postkit.disguise.trace`) plays a reader who pastes a quote into a search box.
A reworded quote that keeps its meaning escapes that reader but not a semantic search:
on careful human rewrites of real quotes, a sentence-embedding search still found 29 of 40
sources in its top 20 (Agarwal et al. 2023 use the same success rule with DPR). This module
plays that second attacker, exactly as ``shared/tools/dense_attacker.py`` does:

* every post of the forum is cut into **passages**: split into sentences at
  ``(?<=[.!?])\\s+|\\n+`` (empty pieces dropped), then consecutive, non-overlapping windows
  of up to 3 sentences joined by a space; a post with no sentence is one passage of its
  whole text. Passages, not whole posts: a whole long post's embedding drifts away from any
  one quote, so even a verbatim opening can rank in the hundreds;
* passages and quotes are embedded with all-MiniLM-L6-v2 (:mod:`postkit.disguise.embed`),
  in their search form (:func:`dense_form`: invisible characters, compatibility forms and
  look-alike letters undone, as the BM25 side sees them);
* a post scores by its best passage (cosine similarity), and the source's ``dense_rank``
  is 1 + the number of posts scoring *strictly* higher (ties favour the attacker).

Embedding a forum is slow (about 100 passages a second on 2 cores), so the passage
embeddings are built once per forum and model and cached in the private cache
(``cache_root()/dense-index/KEY/``, mode 0700, beside ``trace-index/``), keyed by the
corpus fingerprint (:func:`postkit.disguise.trace.fingerprint_file`, the BM25 index's key)
and :data:`~postkit.disguise.embed.MODEL_SHA256`. They are float16 (half the size; rank
changes only for near-ties) and memory-mapped when read. They never go into a run or
review folder: embeddings of excluded posts are still about those posts.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PostkitError
from ..identity import fold_look_alikes, search_form
from . import embed

FORMAT_VERSION = 2  # bump when the passage rule, the text form or the saved layout changes
WINDOW = 3  # sentences per passage
SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[^\W_]+")
CACHE_SUBDIR = "dense-index"
CHUNK = 16_384  # passages embedded (and sorted by length) at a time
SCORE_ROWS = 65_536  # passage rows scored at a time (bounds the float32 copy)

ProgressFn = Callable[[int], Any]


def dense_form(text: Any) -> str:
    """The text the dense attacker embeds: its search form, with words typed in look-alike
    letters of another script folded to Latin (as the BM25 side folds them), so hiding tricks
    change neither attacker's view."""
    plain = search_form(text) if isinstance(text, str) else ""
    if plain.isascii():
        return plain
    return _WORD.sub(lambda m: fold_look_alikes(m.group()), plain)


def passages(text: Any) -> list[str]:
    """The passages of one post (see the module docstring); the text as given, not its search form."""
    text = text if isinstance(text, str) else ""
    sentences = [piece for piece in SPLIT.split(text) if piece.strip()] or [text]
    return [" ".join(sentences[j : j + WINDOW]) for j in range(0, len(sentences), WINDOW)]


def split_corpus(texts: Sequence[Any]) -> tuple[list[str], np.ndarray]:
    """Every post's passages in search form, and ``starts`` (posts + 1): post ``i`` owns
    passages ``starts[i]:starts[i+1]`` (at least one each)."""
    flat: list[str] = []
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    for i, text in enumerate(texts):
        pieces = passages(dense_form(text))
        flat.extend(pieces)
        starts[i + 1] = len(flat)
    return flat, starts


def cache_key(fingerprint: str) -> str:
    """The dense cache key for a corpus fingerprint: it also names the model and the passage rule."""
    return hashlib.sha256(
        f"postkit-dense-v{FORMAT_VERSION}\n{fingerprint}\n{embed.MODEL_SHA256}".encode()).hexdigest()


def default_dense_dir(fingerprint: str) -> Path:
    """``cache_root()/dense-index/KEY`` with its parent created private (0700)."""
    from .trace import _private_folder, cache_root

    if not re.fullmatch(r"[0-9a-f]{64}", fingerprint or ""):
        raise PostkitError("not a corpus fingerprint (64 hexadecimal digits expected)")
    parent = cache_root() / CACHE_SUBDIR
    _private_folder(parent)
    return parent / cache_key(fingerprint)


class DenseIndex:
    """Passage embeddings of a forum (``embeddings``, float16, one row per passage) and
    ``starts``, which passages belong to which post (in the corpus's post order)."""

    def __init__(self, embeddings: np.ndarray, starts: np.ndarray, *, fingerprint: str | None = None) -> None:
        if embeddings.ndim != 2 or embeddings.shape[1] != embed.DIMENSION:
            raise PostkitError("dense index embeddings have the wrong shape",
                               fix="delete the dense-index cache folder; it is rebuilt")
        if len(starts) < 2 or int(starts[-1]) != len(embeddings) or np.any(np.diff(starts) < 1):
            raise PostkitError("dense index passages do not match its posts",
                               fix="delete the dense-index cache folder; it is rebuilt")
        self.embeddings = embeddings
        self.starts = starts
        self.fingerprint = fingerprint

    @property
    def posts(self) -> int:
        return len(self.starts) - 1

    @property
    def passages(self) -> int:
        return len(self.embeddings)

    @classmethod
    def build(cls, texts: Sequence[Any], on_progress: ProgressFn | None = None, *,
              fingerprint: str | None = None) -> DenseIndex:
        """Embed every passage of ``texts``; ``on_progress(n)`` counts passages embedded."""
        embed.require()
        if not len(texts):
            raise PostkitError("the corpus is empty", fix="index the forum's posts")
        flat, starts = split_corpus(texts)
        vectors = np.zeros((len(flat), embed.DIMENSION), dtype=np.float16)
        for start in range(0, len(flat), CHUNK):
            vectors[start : start + CHUNK] = embed.encode(flat[start : start + CHUNK], on_progress=on_progress)
        return cls(vectors, starts, fingerprint=fingerprint)

    # -- cache

    def save(self, folder: str | Path) -> None:
        """Write to ``folder`` atomically, under its lock (another writer of the same cache wins)."""
        from ..io import new_temp_beside, publish, remove_stale_temps
        from ..locks import PathLock

        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = PathLock(folder, purpose="postkit dense index cache")
        try:
            lock.acquire()
        except PostkitError:
            return  # another process is writing this very cache; it is only a cache
        try:
            remove_stale_temps(folder)
            temp = new_temp_beside(folder, folder=True)
            try:
                np.save(temp / "embeddings.npy", np.asarray(self.embeddings, dtype=np.float16))
                np.save(temp / "starts.npy", self.starts)
                meta = {"format": FORMAT_VERSION, "model_sha256": embed.MODEL_SHA256,
                        "fingerprint": self.fingerprint, "posts": self.posts, "passages": self.passages}
                (temp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
                publish(temp, folder)
            finally:
                shutil.rmtree(temp, ignore_errors=True)
        finally:
            lock.release()

    @staticmethod
    def cached_fingerprint(folder: str | Path) -> str | None:
        """The corpus fingerprint a cache folder holds, or None (absent, unreadable, other model/format)."""
        try:
            meta = json.loads((Path(folder) / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION
                or meta.get("model_sha256") != embed.MODEL_SHA256):
            return None
        return meta.get("fingerprint")

    @classmethod
    def load(cls, folder: str | Path) -> DenseIndex:
        """Read a cache written by :meth:`save`; the embeddings are memory-mapped."""
        folder = Path(folder)
        fingerprint = cls.cached_fingerprint(folder)
        if fingerprint is None:
            raise PostkitError("not a dense index (or built by another postkit version)", path=folder,
                               fix="delete the folder; it is rebuilt on the next run")
        try:
            embeddings = np.load(folder / "embeddings.npy", mmap_mode="r")
            starts = np.load(folder / "starts.npy")
        except (OSError, ValueError):
            raise PostkitError("the dense index cache is damaged", path=folder,
                               fix="delete the folder; it is rebuilt on the next run") from None
        return cls(embeddings, starts, fingerprint=fingerprint)

    # -- attacking

    def post_scores(self, queries: np.ndarray) -> np.ndarray:
        """(posts, queries): each post's best passage similarity to each query vector."""
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, embed.DIMENSION)
        best = np.empty((self.posts, len(queries)), dtype=np.float32)
        starts = self.starts
        post = 0
        while post < self.posts:
            # whole posts per slice, about SCORE_ROWS passages each
            end = int(np.searchsorted(starts, starts[post] + SCORE_ROWS, side="right")) - 1
            end = max(end, post + 1)
            lo, hi = int(starts[post]), int(starts[end])
            scores = np.asarray(self.embeddings[lo:hi], dtype=np.float32) @ queries.T
            best[post:end] = np.maximum.reduceat(scores, (starts[post:end] - lo), axis=0)
            post = end
        return best

    def ranks(self, texts: Sequence[str], sources: Sequence[int]) -> list[int]:
        """``dense_rank`` of post position ``sources[i]`` for quote ``texts[i]``."""
        if len(texts) != len(sources):
            raise PostkitError(f"{len(texts)} quotes but {len(sources)} sources")
        if not len(texts):
            return []
        vectors = embed.encode([dense_form(t) for t in texts])
        return self.ranks_for_vectors(vectors, sources)

    def ranks_for_vectors(self, vectors: np.ndarray, sources: Sequence[int]) -> list[int]:
        """``dense_rank`` of post ``sources[i]`` for query vector ``vectors[i]``: 1 + the posts
        whose best passage scores strictly higher than the source's (ties favour the attacker)."""
        best = self.post_scores(vectors)
        out = []
        for column, source in enumerate(sources):
            scores = best[:, column]
            out.append(1 + int(np.count_nonzero(scores > scores[source])))
        return out


def load_or_build(fingerprint: str, texts: Callable[[], Sequence[Any]] | Sequence[Any], *,
                  on_progress: ProgressFn | None = None, cache: bool = True,
                  expected_posts: int | None = None) -> tuple[DenseIndex, str]:
    """The forum's dense index from the private cache, else built (and cached).

    ``texts`` is the corpus's texts in post order, or a function returning them (so a cache
    hit never reads the corpus). Returns ``(index, "cached" | "built")``.
    """
    folder = default_dense_dir(fingerprint) if cache else None
    if folder is not None and DenseIndex.cached_fingerprint(folder) == fingerprint:
        try:
            found = DenseIndex.load(folder)
        except PostkitError:
            found = None  # damaged: rebuild below
        if found is not None and (expected_posts is None or found.posts == expected_posts):
            return found, "cached"
    corpus = texts() if callable(texts) else texts
    built = DenseIndex.build(corpus, on_progress, fingerprint=fingerprint)
    if folder is not None:
        built.save(folder)
    return built, "built"


def count_passages(texts: Sequence[Any]) -> int:
    """How many passages a corpus has (for a progress bar's total)."""
    return sum(len(passages(dense_form(t))) for t in texts)
