"""Traceability check: can a paraphrased quote be searched back to its forum post?

Ethics guidance for forum research asks that published quotes be *disguised*: a reader
who pastes a quote into the forum's search box (or a web search engine) must not land
on the author's post. This module plays that reader. For every quote it measures

* ``source_rank`` — the source post's rank when the quote is used as a BM25 keyword
  query over the corpus (what a search box does). Ties are resolved in the attacker's
  favour: the rank is 1 + the number of posts scoring *strictly* higher than the source,
  so a source tied for first is rank 1. ``None`` when that rank exceeds ``search_depth``.
* ``longest_shared_run`` — the longest run of consecutive words shared with the source
  (a quoted-phrase search finds any long verbatim run).
* ``distinctive_overlap`` — share of the source's *distinctive* words still present in
  the quote. Distinctive = the source's distinct non-stopword words whose corpus IDF is
  in the top third of that post's own words (at least one word), so the figure adapts to
  each post instead of relying on a corpus-wide IDF cut-off that shifts with corpus size.
* ``exact_5gram_hits`` — the number of corpus posts containing any 5 consecutive words
  of the quote verbatim (phrase search), via a hashed 5-gram → posts index.
* ``dense_rank`` — the source post's rank when the forum is searched by *meaning*
  (:mod:`postkit.disguise.dense`: sentence embeddings of passages of up to three sentences,
  same tie rule). A careful rewording beats BM25 but rarely this attacker. ``dense`` says
  whether it ran; without it (its extra not installed) no quote is called disguised.

and turns them into a verdict — the worst of the attackers — with the thresholds in
``rules/disguise/thresholds.yaml`` (see :class:`Thresholds`). The search is only as good
as the corpus: index the whole forum, not just the sampled posts, or a rank of "not found"
means little.

Normalisation (identical for index, queries, runs and 5-grams): first the text a search
that ignores hiding tricks would see (:func:`postkit.identity.search_form`: invisible
characters such as soft hyphens and zero-width spaces removed, NFKD so fullwidth letters
and ligatures become plain ones, accents dropped), so a verbatim quote with a soft hyphen
inside a word is still a verbatim quote; curly and modifier apostrophes become ``'``;
words are runs of letters/digits, optionally joined by inner apostrophes (``don't``,
``i'm``); everything else separates words; a word typed with look-alike letters of
another script is folded to Latin (:func:`postkit.identity.fold_look_alikes`, Unicode
TR39), then case-folded. BM25 also drops bm25s's English stopword list; runs and 5-grams
keep every word, like a phrase search. No stemming (PyStemmer is not a dependency), so
"felt" and "feel" are different words — which makes the check slightly *lenient* on
inflected paraphrases.

Where the index lives: it holds every word of every post of the forum, consented or not,
so it never goes into a folder that is shared with reviewers. By default it is cached in
a private folder (mode 0700) outside any run or study folder — ``$POSTKIT_CACHE_DIR/trace-index/KEY/``
or ``~/.cache/postkit/trace-index/KEY/`` — keyed by the corpus's hash
(:func:`fingerprint_file`), so every run over the same forum reuses it; a folder chosen
with ``--index`` is refused inside a run or review folder (:func:`refuse_shared_location`).

Everything runs offline: bm25s is used only for its in-memory index and save/load,
never its Hugging Face hub features.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # defensive: bm25s must never reach the hub
os.environ.setdefault("DISABLE_TQDM", "1")  # bm25s progress bars would clutter the CLI

import difflib
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..errors import PostkitError
from ..identity import fold_look_alikes, search_form, search_form_of_char
from ..io import publish

FORMAT_VERSION = 2  # bump when normalisation or the saved layout changes: old caches rebuild
NGRAM = 5
VERDICTS = ("traceable", "at risk", "disguised")
OUTPUT_COLUMNS = (
    "quote_id", "source_post_id", "source_rank", "dense_rank", "dense", "longest_shared_run",
    "distinctive_overlap", "exact_5gram_hits", "verdict",
)
DENSE_RAN = "ran"
DENSE_NOT_RUN = "not run"

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "`": "'"})
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


STOPWORDS = _stopwords()


def _fold(word: str) -> str:
    """One word of the search form: look-alike letters folded to Latin, then case-folded."""
    if word.isascii():
        return word.lower()
    folded = fold_look_alikes(word)
    return folded.lower() if folded.isascii() else search_form(folded.casefold())


def words(text: Any) -> list[str]:
    """The normalised words of a text (see the module docstring); non-strings give []."""
    if not isinstance(text, str):
        return []
    if text.isascii():  # nearly every post of an English forum: no Unicode work at all
        return _WORD.findall(text.lower().translate(_APOSTROPHES))
    plain = search_form(text).translate(_APOSTROPHES)
    if plain.isascii():
        return _WORD.findall(plain.lower())
    return [_fold(word) for word in _WORD.findall(plain)]


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, normalised word) for each word; the words are exactly :func:`words`'s.

    Offsets index the original text: the search form is built character by character,
    remembering which original character each of its characters came from, so a word
    with a soft hyphen inside spans the hyphen too.
    """
    if text.isascii():
        translated = text.translate(_APOSTROPHES)
        return [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(translated)]
    pieces, origin = [], []
    for position, char in enumerate(text):
        plain = search_form_of_char(char) if not char.isascii() else char
        pieces.append(plain)
        origin.extend([position] * len(plain))
    plain = "".join(pieces).translate(_APOSTROPHES)
    return [(origin[m.start()], origin[m.end() - 1] + 1, _fold(m.group())) for m in _WORD.finditer(plain)]


def shared_run_starts(quote: Sequence[Any], source: Sequence[Any], n: int) -> list[int]:
    """Start positions of the quote's ``n``-item runs that also occur in the source."""
    grams = {tuple(source[k : k + n]) for k in range(len(source) - n + 1)}
    return [k for k in range(len(quote) - n + 1) if tuple(quote[k : k + n]) in grams]


def longest_shared_run(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest run of consecutive equal items in two token lists."""
    if not a or not b:
        return 0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return matcher.find_longest_match(0, len(a), 0, len(b)).size


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Thresholds:
    """Verdict rule; documented field by field in ``rules/disguise/thresholds.yaml``."""

    top_k: int = 20
    search_depth: int = 100
    max_shared_run: int = 4
    max_exact_5gram_hits: int = 0
    traceable_rank: int = 1
    traceable_run: int = 8
    max_distinctive_overlap: float | None = None
    dense_top_k: int = 20

    def __post_init__(self) -> None:
        for name in ("top_k", "search_depth", "traceable_rank", "traceable_run", "dense_top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PostkitError(f"threshold '{name}' must be a whole number >= 1 (got {value!r})")
        for name in ("max_shared_run", "max_exact_5gram_hits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise PostkitError(f"threshold '{name}' must be a whole number >= 0 (got {value!r})")
        if self.search_depth < self.top_k:
            raise PostkitError(
                f"search_depth ({self.search_depth}) must be >= top_k ({self.top_k})",
                fix="search at least as deep as the ranks you judge",
            )
        if self.traceable_rank > self.top_k:
            raise PostkitError(f"traceable_rank ({self.traceable_rank}) must be <= top_k ({self.top_k})")
        if self.traceable_rank > self.dense_top_k:
            raise PostkitError(
                f"traceable_rank ({self.traceable_rank}) must be <= dense_top_k ({self.dense_top_k})")
        if self.traceable_run <= self.max_shared_run:
            raise PostkitError(
                f"traceable_run ({self.traceable_run}) must be > max_shared_run ({self.max_shared_run})"
            )
        value = self.max_distinctive_overlap
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1
        ):
            raise PostkitError(f"threshold 'max_distinctive_overlap' must be null or 0-1 (got {value!r})")

    def verdict(self, row: Mapping[str, Any]) -> str:
        """``traceable`` / ``disguised`` / ``at risk`` for one measured quote: the worst of the
        BM25 attacker, the phrase search and the dense attacker (``dense_rank``).

        Fail closed: a row without a ``dense_rank`` (the dense attacker did not run, e.g. its
        extra is not installed) is never ``disguised``.
        """
        rank = row["source_rank"]
        run = row["longest_shared_run"]
        dense_rank = row.get("dense_rank")
        if dense_rank is not None and pd.isna(dense_rank):
            dense_rank = None
        if ((rank is not None and rank <= self.traceable_rank) or run >= self.traceable_run
                or (dense_rank is not None and dense_rank <= self.traceable_rank)):
            return "traceable"
        if (
            dense_rank is not None and dense_rank > self.dense_top_k
            and (rank is None or rank > self.top_k)
            and run <= self.max_shared_run
            and row["exact_5gram_hits"] <= self.max_exact_5gram_hits
            and (self.max_distinctive_overlap is None
                 or row["distinctive_overlap"] <= self.max_distinctive_overlap)
        ):
            return "disguised"
        return "at risk"


def default_thresholds_path() -> Path:
    from ..deid.rules import rules_root

    return rules_root() / "disguise" / "thresholds.yaml"


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """Read the verdict thresholds (default ``rules/disguise/thresholds.yaml``).

    Unknown keys are refused (a typo would otherwise silently keep a default).
    """
    path = Path(path) if path is not None else default_thresholds_path()
    if not path.exists():
        raise PostkitError("thresholds file not found", path=path, fix="check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PostkitError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PostkitError("expected a mapping of threshold: value", path=path)
    known = {f.name for f in fields(Thresholds)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PostkitError(
            f"unknown threshold{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            path=path,
            fix=f"known: {', '.join(sorted(known))}",
        )
    try:
        return Thresholds(**data)
    except PostkitError as exc:
        raise PostkitError(exc.message, path=path, fix=exc.fix) from None


# --------------------------------------------------------------------------- hashing


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (vectorised, wrapping uint64 arithmetic)."""
    h = h ^ (h >> np.uint64(30))
    h = h * _M1
    h = h ^ (h >> np.uint64(27))
    h = h * _M2
    return h ^ (h >> np.uint64(31))


def _ngram_hashes(tokens: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """64-bit hash of ``tokens[s:s+NGRAM]`` for every start ``s`` (vocabulary ids)."""
    with np.errstate(over="ignore"):
        h = np.zeros(len(starts), dtype=np.uint64)
        for j in range(NGRAM):
            h = _mix(h ^ (tokens[starts + j].astype(np.uint64) + _GOLD))
    return h


def fingerprint_texts(post_ids: Iterable[Any], texts: Iterable[Any]) -> str:
    """sha256 of the ids and texts (and the index format), so a stale cache is detected."""
    digest = hashlib.sha256(f"postkit-trace-v{FORMAT_VERSION}\n".encode())
    for post_id, text in zip(post_ids, texts):
        digest.update(str(post_id).encode("utf-8", "surrogatepass") + b"\0")
        digest.update((text if isinstance(text, str) else "").encode("utf-8", "surrogatepass") + b"\1")
    return digest.hexdigest()


def fingerprint_file(path: str | Path, column_map: Mapping[str, str] | None = None, *,
                     file_sha256: str | None = None) -> str:
    """Cheaper fingerprint for a corpus on disk: sha256 of its bytes, the index format and the
    column mapping (the same file read with other columns is another corpus). It is the
    index's cache key. ``file_sha256`` saves hashing the file again when it is known."""
    from ..hashing import sha256_path

    digest = file_sha256 or sha256_path(path)
    columns = f"\n{json.dumps(dict(sorted(column_map.items())))}" if column_map else ""
    return hashlib.sha256(f"postkit-trace-v{FORMAT_VERSION}\n{digest}{columns}".encode()).hexdigest()


# --------------------------------------------------------------------------- where the index lives

CACHE_ENV = "POSTKIT_CACHE_DIR"
CACHE_SUBDIR = "trace-index"


def cache_root() -> Path:
    """postkit's private cache: ``$POSTKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/postkit``,
    else ``~/.cache/postkit``."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen:
        return Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "postkit"


def _private_folder(folder: Path) -> None:
    """Create ``folder`` (and missing parents) with mode 0700; tighten it when it is ours but open."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass
    mode = folder.stat().st_mode & 0o777
    if mode & 0o077:
        if folder.stat().st_uid != os.getuid():
            raise PostkitError("the index cache folder is open to other users and not yours to change",
                               path=folder, fix=f"set {CACHE_ENV} to a folder of your own")
        folder.chmod(0o700)


def default_index_dir(key: str) -> Path:
    """The private cache folder of the index with this key (:func:`fingerprint_file`),
    its parent created with mode 0700."""
    if not re.fullmatch(r"[0-9a-f]{64}", key or ""):
        raise PostkitError("not an index cache key (64 hexadecimal digits expected)")
    parent = cache_root() / CACHE_SUBDIR
    _private_folder(parent)
    return parent / key


def _shared_folder_holding(path: Path) -> Path | None:
    """The run folder (``manifest.json``) or review folder (``suggestions.jsonl``) that holds ``path``."""
    from ..locks import run_folder_of

    found = run_folder_of(path, levels=6)
    if found is not None:
        return found
    current = path.absolute()
    for folder in [current, *current.parents][:7]:
        if (folder / "suggestions.jsonl").is_file():
            return folder
    return None


def refuse_shared_location(index_dir: str | Path, *shared: str | Path | None) -> None:
    """Refuse an index folder inside a run folder, a review folder or any of ``shared``.

    The index rebuilds the text of every post of the corpus (excluded ones too), and
    those folders are handed to reviewers.
    """
    target = Path(index_dir).expanduser().resolve()
    holders = [Path(f).expanduser().resolve() for f in shared if f is not None]
    holders = [h for h in holders if target == h or h in target.parents]
    found = holders[0] if holders else _shared_folder_holding(target)
    if found is not None:
        raise PostkitError(
            "the search index may not be kept inside a run or review folder: it holds the text of every "
            "post of the forum, excluded posts too, and that folder is shared with reviewers",
            path=index_dir,
            fix=f"leave out --index (it is then cached privately in {cache_root() / CACHE_SUBDIR}) or choose "
                "a private folder outside the run",
        )


# --------------------------------------------------------------------------- index


ProgressFn = Callable[[int], Any]


class TraceIndex:
    """BM25 + phrase index over a corpus, built once and cached on disk.

    Holds the bm25s retriever (its vocabulary is the full word vocabulary, stopwords
    included, so one id space serves BM25, runs and 5-grams), every post's word ids
    (``tokens`` split by ``offsets``) for shared runs and distinctive words, the corpus
    IDF, and the 5-gram index as two parallel arrays sorted by hash (``gram_hash``,
    ``gram_post``; one row per distinct (5-gram, post)) searched with ``searchsorted``.
    """

    def __init__(
        self,
        *,
        retriever: Any,
        post_ids: list[str],
        tokens: np.ndarray,
        offsets: np.ndarray,
        gram_hash: np.ndarray,
        gram_post: np.ndarray,
        fingerprint: str,
    ) -> None:
        self.retriever = retriever
        self.post_ids = post_ids
        self.tokens = tokens
        self.offsets = offsets
        self.gram_hash = gram_hash
        self.gram_post = gram_post
        self.fingerprint = fingerprint
        # The dense-retrieval attacker (postkit.disguise.dense), when attached; without it no
        # quote is called disguised, and dense_note says why it did not run.
        self.dense: Any = None
        self.dense_note = "the dense attacker was not set up for this index"
        self.vocab: dict[str, int] = retriever.vocab_dict
        self.position = {post_id: i for i, post_id in enumerate(post_ids)}
        if len(self.position) != len(post_ids):
            raise PostkitError("the corpus has duplicate post_id values",
                               fix="each post must have a unique post_id")
        n_vocab = max(self.vocab.values()) + 1 if self.vocab else 1
        self.is_stop = np.zeros(n_vocab, dtype=bool)
        for word in STOPWORDS:
            if word in self.vocab:
                self.is_stop[self.vocab[word]] = True
        # IDF (bm25s's Lucene formula) from document frequencies = column lengths of its CSC matrix.
        indptr = np.asarray(retriever.scores["indptr"])
        df = np.zeros(n_vocab, dtype=np.float64)
        counts = np.diff(indptr)
        df[: len(counts)] = counts[:n_vocab]
        n_docs = len(post_ids)
        self.idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))

    def __len__(self) -> int:
        return len(self.post_ids)

    # -- building

    @classmethod
    def build(
        cls,
        post_ids: Sequence[Any],
        texts: Sequence[Any],
        on_progress: ProgressFn | None = None,
        *,
        fingerprint: str | None = None,
        batch_size: int = 50_000,
        dense: bool | None = None,
    ) -> TraceIndex:
        """Index a corpus. ``on_progress(n)`` is called with posts tokenised since the last call.

        ``fingerprint`` identifies the corpus (default: :func:`fingerprint_texts`);
        :func:`check_file` passes the corpus file's hash instead, so it can test a cache
        without reading the corpus.

        ``dense``: also embed every passage for the dense attacker, in memory (None = when
        the dense extra is installed). That takes about a second per 100 passages, so a big
        forum should go through :func:`load_index`, which caches the embeddings.
        """
        import bm25s

        post_ids = [str(p) for p in post_ids]
        texts = list(texts)
        if len(post_ids) != len(texts):
            raise PostkitError(f"{len(post_ids)} post ids but {len(texts)} texts")
        if not post_ids:
            raise PostkitError("the corpus is empty", fix="index the forum's posts")
        if fingerprint is None:
            fingerprint = fingerprint_texts(post_ids, texts)

        vocab: dict[str, int] = {}
        chunks: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            batch = [words(t) for t in texts[start : start + batch_size]]
            lengths.append(np.fromiter((len(b) for b in batch), dtype=np.int64, count=len(batch)))
            flat = list(chain.from_iterable(batch))
            if flat:
                codes, uniques = pd.factorize(np.asarray(flat, dtype=object))
                lut = np.fromiter((vocab.setdefault(u, len(vocab)) for u in uniques),
                                  dtype=np.int32, count=len(uniques))
                chunks.append(lut[codes])
            if on_progress is not None:
                on_progress(len(batch))
        tokens = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
        lens = np.concatenate(lengths)
        offsets = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])

        # BM25 over non-stopwords, with the full vocabulary (stopword columns stay empty).
        is_stop = np.zeros(max(len(vocab), 1), dtype=bool)
        for word in STOPWORDS:
            if word in vocab:
                is_stop[vocab[word]] = True
        keep = ~is_stop[tokens] if len(tokens) else np.zeros(0, dtype=bool)
        content = tokens[keep]
        token_post = np.repeat(np.arange(len(lens)), lens)
        content_offsets = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(np.bincount(token_post[keep], minlength=len(lens)), out=content_offsets[1:])
        del token_post
        doc_ids = [content[a:b].tolist() for a, b in zip(content_offsets[:-1], content_offsets[1:])]
        bm25_vocab = dict(vocab) if vocab else {"": 0}
        retriever = bm25s.BM25(backend="numpy")
        retriever.index((doc_ids, bm25_vocab), show_progress=False)
        del doc_ids

        gram_hash, gram_post = _build_gram_index(tokens, lens, offsets)
        index = cls(retriever=retriever, post_ids=post_ids, tokens=tokens, offsets=offsets,
                    gram_hash=gram_hash, gram_post=gram_post, fingerprint=fingerprint)
        from . import embed

        if dense is None:
            dense = embed.available()
        if dense:
            from .dense import DenseIndex

            index.attach_dense(DenseIndex.build(texts, fingerprint=fingerprint))
        else:
            index.dense_note = _dense_absent_note()
        return index

    def attach_dense(self, dense_index: Any) -> None:
        """Use ``dense_index`` (a :class:`postkit.disguise.dense.DenseIndex` of this very
        corpus, same post order) as the second attacker in :meth:`check`."""
        if dense_index.posts != len(self):
            raise PostkitError(f"the dense index has {dense_index.posts} posts, the corpus {len(self)}",
                               fix="delete the dense-index cache folder; it is rebuilt")
        self.dense = dense_index
        self.dense_note = ""

    # -- cache

    def save(self, folder: str | Path) -> None:
        """Write the index to ``folder`` (replaced atomically: a crash leaves the old cache).

        Under the folder's lock: what a killed save left beside it is removed first, and
        when another process is saving the same cache this one leaves it to them. The
        folder is created with mode 0700: it holds the words of every post.
        """
        from ..errors import PostkitError
        from ..io import new_temp_beside, remove_stale_temps
        from ..locks import PathLock

        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = PathLock(folder, purpose="postkit index cache")
        try:
            lock.acquire()
        except PostkitError:
            return  # another process is writing this very cache; it is only a cache
        try:
            remove_stale_temps(folder)
            temp = new_temp_beside(folder, folder=True)
            try:
                self.retriever.save(str(temp / "bm25"), show_progress=False)
                np.save(temp / "tokens.npy", self.tokens)
                np.save(temp / "offsets.npy", self.offsets)
                np.save(temp / "gram_hash.npy", self.gram_hash)
                np.save(temp / "gram_post.npy", self.gram_post)
                (temp / "post_ids.json").write_text(json.dumps(self.post_ids), encoding="utf-8")
                meta = {"format": FORMAT_VERSION, "fingerprint": self.fingerprint, "posts": len(self)}
                (temp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
                publish(temp, folder)
            finally:
                shutil.rmtree(temp, ignore_errors=True)
        finally:
            lock.release()
        self._save_dense()

    def _save_dense(self) -> None:
        """Keep attached passage embeddings in the private dense cache (never beside the BM25
        folder, which may be one the user chose), so :meth:`load` finds them again."""
        if self.dense is None:
            return
        from .dense import DenseIndex, default_dense_dir

        folder = default_dense_dir(self.fingerprint)
        if DenseIndex.cached_fingerprint(folder) != self.fingerprint:
            self.dense.fingerprint = self.fingerprint
            self.dense.save(folder)

    @staticmethod
    def cached_fingerprint(folder: str | Path) -> str | None:
        """The fingerprint a cache folder was built for, or None if absent/unreadable/old format."""
        try:
            meta = json.loads((Path(folder) / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            return None
        return meta.get("fingerprint")

    @classmethod
    def load(cls, folder: str | Path) -> TraceIndex:
        """Read an index written by :meth:`save`."""
        import bm25s

        folder = Path(folder)
        fingerprint = cls.cached_fingerprint(folder)
        if fingerprint is None:
            raise PostkitError("not a trace index (or built by another postkit version)", path=folder,
                               fix="delete the folder; it is rebuilt on the next run")
        retriever = bm25s.BM25.load(str(folder / "bm25"), show_progress=False, verbosity=0)
        index = cls(
            retriever=retriever,
            post_ids=json.loads((folder / "post_ids.json").read_text(encoding="utf-8")),
            tokens=np.load(folder / "tokens.npy"),
            offsets=np.load(folder / "offsets.npy"),
            gram_hash=np.load(folder / "gram_hash.npy"),
            gram_post=np.load(folder / "gram_post.npy"),
            fingerprint=fingerprint,
        )
        index.attach_cached_dense()
        return index

    def attach_cached_dense(self) -> bool:
        """Attach the dense attacker from the private cache when it holds this corpus's
        embeddings (never builds them: that needs the texts, see :func:`load_index`)."""
        from . import embed

        if not embed.available():
            self.dense_note = _dense_absent_note()
            return False
        from .dense import DenseIndex, default_dense_dir

        try:
            folder = default_dense_dir(self.fingerprint)
        except PostkitError:
            return False
        if DenseIndex.cached_fingerprint(folder) != self.fingerprint:
            self.dense_note = "the forum's passage embeddings are not built yet (run `postkit disguise check` once)"
            return False
        try:
            self.attach_dense(DenseIndex.load(folder))
        except PostkitError as exc:
            self.dense_note = exc.message
            return False
        return True

    # -- checking

    def _ids(self, quote_words: list[str]) -> np.ndarray:
        """Vocabulary ids; words the corpus never uses get distinct negative ids (never match)."""
        return np.fromiter(
            (self.vocab.get(w, -1 - i) for i, w in enumerate(quote_words)), dtype=np.int64,
            count=len(quote_words),
        )

    def _source_rank(self, query: np.ndarray, doc: int, depth: int) -> int | None:
        """1 + posts scoring strictly above the source (ties favour the attacker); None beyond depth."""
        if len(query) == 0:
            return None  # an empty query finds nothing
        scores = self.retriever.get_scores_from_ids(query.astype(np.int32))
        own = scores[doc]
        if own <= 0:
            return None  # the source shares no searchable word with the quote
        rank = 1 + int(np.count_nonzero(scores > own))
        return rank if rank <= depth else None

    def _gram_matches(self, ids: np.ndarray) -> list[tuple[int, int, int]]:
        """(start, lo, hi) per 5-word window of ``ids`` found in the corpus: ``gram_post[lo:hi]``
        are the posts holding it."""
        if len(ids) < NGRAM:
            return []
        starts = np.arange(len(ids) - NGRAM + 1)
        window_ok = np.lib.stride_tricks.sliding_window_view(ids >= 0, NGRAM).all(axis=1)
        starts = starts[window_ok]  # a 5-gram with an unseen word cannot be in the corpus
        if len(starts) == 0:
            return []
        hashes = _ngram_hashes(ids, starts)
        lo = np.searchsorted(self.gram_hash, hashes, side="left")
        hi = np.searchsorted(self.gram_hash, hashes, side="right")
        return [(int(s), int(a), int(b)) for s, a, b in zip(starts, lo, hi) if b > a]

    def _exact_hits(self, ids: np.ndarray) -> int:
        posts = [self.gram_post[a:b] for _, a, b in self._gram_matches(ids)]
        return len(np.unique(np.concatenate(posts))) if posts else 0

    def found_ngrams(self, quote_words: Sequence[str]) -> list[int]:
        """Start positions of the quote's 5-word runs that some corpus post contains verbatim."""
        return [start for start, _, _ in self._gram_matches(self._ids(list(quote_words)))]

    def _distinctive_overlap(self, source: np.ndarray, quote_ids: np.ndarray) -> float:
        content = np.unique(source[~self.is_stop[source]]) if len(source) else source
        if len(content) == 0:
            return 0.0
        idf = self.idf[content]
        n = max(1, -(-len(content) // 3))  # top third, rounded up
        cutoff = np.sort(idf)[::-1][n - 1]
        distinctive = content[idf >= cutoff]  # ties at the cut-off all count
        return float(np.isin(distinctive, quote_ids).mean())

    def source_words(self, source_post_id: str) -> np.ndarray:
        """The source post's word ids, in order."""
        doc = self.position[source_post_id]
        return self.tokens[self.offsets[doc] : self.offsets[doc + 1]]

    def term_contributions(self, source_post_id: str, quote_words: Sequence[str]) -> dict[str, float]:
        """Each quote word's share of the source's BM25 score when the quote is the query.

        Read straight from the BM25 matrix (one column per word, one entry per post that
        uses it), so the words that make the source findable can be targeted first.
        Stopwords and words the source lacks contribute 0.
        """
        doc = self.position[source_post_id]
        indptr = self.retriever.scores["indptr"]
        indices = self.retriever.scores["indices"]
        data = self.retriever.scores["data"]
        out: dict[str, float] = {}
        for word in set(quote_words):
            term = self.vocab.get(word)
            if term is None or self.is_stop[term] or term + 1 >= len(indptr):
                out[word] = 0.0
                continue
            lo, hi = int(indptr[term]), int(indptr[term + 1])
            hit = np.flatnonzero(indices[lo:hi] == doc)
            out[word] = float(data[lo + hit[0]]) if len(hit) else 0.0
        return out

    def source_keys(self, quotes: Sequence[Mapping[str, Any]]) -> list[str]:
        """Each quote's source post id; a :class:`PostkitError` (with the 1-based row) for the
        first source the corpus lacks (fail closed: a quote whose source cannot be searched
        for cannot be declared disguised)."""
        keys = []
        for number, quote in enumerate(quotes, start=1):
            source_id = quote.get("source_post_id")
            source_key = "" if source_id is None or (isinstance(source_id, float) and np.isnan(source_id)) \
                else str(source_id)
            if source_key not in self.position:
                raise PostkitError(
                    f"quote {quote.get('quote_id')!r}: source_post_id {source_key!r} is not in the corpus",
                    row=number,
                    column="source_post_id",
                    fix="index the corpus that contains the source post (the check cannot vouch for a "
                        "quote whose source it cannot search for)",
                )
            keys.append(source_key)
        return keys

    def check(
        self,
        quotes: Sequence[Mapping[str, Any]],
        thresholds: Thresholds | None = None,
        *,
        n_threads: int | None = None,
    ) -> list[dict[str, Any]]:
        """Measure and judge every quote (``quote_id``, ``source_post_id``, ``text``).

        Every quote is validated before any search, so an unknown source fails the whole
        batch (fail closed: a quote we cannot check cannot be declared disguised). BM25
        scoring runs for all quotes together over a thread pool (numpy releases the GIL);
        each query scores the whole corpus so the source's rank is exact even with ties.
        """
        thresholds = thresholds or Thresholds()
        prepared = []
        for quote, source_key in zip(quotes, self.source_keys(quotes)):
            quote_words = words(quote.get("text"))
            ids = self._ids(quote_words)
            known = ids[ids >= 0]
            query = known[~self.is_stop[known]] if len(known) else known
            prepared.append((quote, source_key, self.position[source_key], ids, query))

        depth = min(thresholds.search_depth, len(self))
        workers = n_threads or min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            ranks = list(pool.map(lambda p: self._source_rank(p[4], p[2], depth), prepared))
        if self.dense is not None and prepared:
            dense_ranks: list[int | None] = self.dense.ranks(
                [p[0].get("text") if isinstance(p[0].get("text"), str) else "" for p in prepared],
                [p[2] for p in prepared])
            dense_status = DENSE_RAN
        else:
            dense_ranks, dense_status = [None] * len(prepared), DENSE_NOT_RUN

        rows = []
        for (quote, source_key, doc, ids, _), rank, dense_rank in zip(prepared, ranks, dense_ranks):
            source = self.tokens[self.offsets[doc] : self.offsets[doc + 1]]
            row = {
                "quote_id": quote.get("quote_id"),
                "source_post_id": source_key,
                "source_rank": rank,
                "dense_rank": dense_rank,
                "dense": dense_status,
                "longest_shared_run": longest_shared_run(ids.tolist(), source.tolist()),
                "distinctive_overlap": round(self._distinctive_overlap(source, ids), 4),
                "exact_5gram_hits": self._exact_hits(ids),
            }
            row["verdict"] = thresholds.verdict(row)
            rows.append(row)
        return rows


def _dense_absent_note() -> str:
    from . import embed

    if embed.available():
        return "the dense attacker was not asked for"
    return f"the dense extra is not installed ({embed.INSTALL_FIX})"


def _build_gram_index(tokens: np.ndarray, lens: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hash, post) for every distinct 5-gram per post, sorted by hash then post."""
    n_grams = np.maximum(lens - NGRAM + 1, 0)
    total = int(n_grams.sum())
    if total == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int32)
    post = np.repeat(np.arange(len(lens), dtype=np.int32), n_grams)
    first = np.zeros(len(n_grams) + 1, dtype=np.int64)
    np.cumsum(n_grams, out=first[1:])
    starts = offsets[:-1][post] + (np.arange(total, dtype=np.int64) - first[:-1][post])
    hashes = _ngram_hashes(tokens, starts)
    del starts
    order = np.argsort(hashes, kind="stable")  # stable: posts stay ascending within a hash
    hashes = hashes[order]
    post = post[order]
    del order
    keep = np.ones(total, dtype=bool)
    keep[1:] = (hashes[1:] != hashes[:-1]) | (post[1:] != post[:-1])
    return hashes[keep], post[keep]


# --------------------------------------------------------------------------- files


def _read_corpus(reader: Any, on_progress: ProgressFn | None) -> tuple[list[str], list[Any]]:
    post_ids: list[str] = []
    texts: list[Any] = []
    for frame in reader.batches(on_progress):
        ids = frame["post_id"]
        missing = ids.isna()
        if missing.any():
            row = int(frame.index[missing.to_numpy()][0]) + 1
            raise PostkitError("empty post_id", path=reader.path, row=row, column="post_id")
        post_ids.extend(ids.astype(str).tolist())
        texts.extend(frame["text"].tolist())
    return post_ids, texts


def load_index(
    corpus_path: str | Path,
    index_dir: str | Path | None = None,
    on_progress: ProgressFn | None = None,
    column_map: Mapping[str, str] | None = None,
    *,
    cache: bool = True,
    fingerprint: str | None = None,
    dense: bool | None = None,
    on_dense_progress: ProgressFn | None = None,
) -> tuple[TraceIndex, str]:
    """The corpus's index: from ``index_dir`` when it was built from this exact file, else built
    (and saved there). Returns ``(index, "cached" | "built")``. ``column_map`` maps postkit's
    names (post_id, text) to the corpus's own columns.

    Without ``index_dir`` the index is cached in the private cache (:func:`default_index_dir`)
    unless ``cache`` is false. ``fingerprint`` saves hashing the corpus again when known.

    The dense attacker is attached too (``dense``: None = when its extra is installed): its
    passage embeddings come from the private cache (``dense-index/``, keyed by the same
    fingerprint and the model), else are embedded once and cached there — also when
    ``index_dir`` is given, which holds only the BM25 side. ``on_dense_progress(n)`` counts
    passages embedded; without it a progress bar shows on a terminal.
    """
    from ..io import open_table
    from . import embed

    corpus_reader = open_table(corpus_path, required=("post_id", "text"),
                               column_map=dict(column_map) if column_map else None)
    fingerprint = fingerprint or fingerprint_file(corpus_path, column_map)
    if index_dir is None and cache:
        index_dir = default_index_dir(fingerprint)
    texts: list[Any] | None = None
    if index_dir is not None and TraceIndex.cached_fingerprint(index_dir) == fingerprint:
        index, how = TraceIndex.load(index_dir), "cached"
    else:
        post_ids, texts = _read_corpus(corpus_reader, on_progress)
        index = TraceIndex.build(post_ids, texts, fingerprint=fingerprint, dense=False)
        if index_dir is not None:
            index.save(index_dir)
        how = "built"
    if dense is None:
        dense = embed.available()
    if not dense:
        index.dense, index.dense_note = None, _dense_absent_note()
    elif index.dense is None:
        _attach_dense(index, texts if texts is not None else (lambda: _read_corpus(corpus_reader, None)[1]),
                      cache=cache or index_dir is not None, on_progress=on_dense_progress)
    return index, how


def _attach_dense(index: TraceIndex, texts: Any, *, cache: bool, on_progress: ProgressFn | None) -> None:
    """Embed (or load from the private cache) the forum's passages and attach them to ``index``."""
    from ..progress import progress_bar
    from .dense import load_or_build

    if on_progress is not None:
        dense_index, _ = load_or_build(index.fingerprint, texts, on_progress=on_progress, cache=cache,
                                       expected_posts=len(index))
    else:
        with progress_bar("Embedding forum passages", unit="passages") as advance:
            dense_index, _ = load_or_build(index.fingerprint, texts, on_progress=advance, cache=cache,
                                           expected_posts=len(index))
    index.attach_dense(dense_index)


def read_quotes(quotes_path: str | Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The quotes table and its records; every quote must name its source post."""
    from ..io import open_table

    frame = open_table(quotes_path, required=("quote_id", "source_post_id", "text")).read_all()
    records = frame[["quote_id", "source_post_id", "text"]].to_dict("records")
    for number, record in zip(frame.index, records):
        if record["source_post_id"] is None or pd.isna(record["source_post_id"]):
            raise PostkitError(f"quote {record['quote_id']!r} has no source_post_id", path=quotes_path,
                               row=int(number) + 1, column="source_post_id",
                               fix="every quote must name the post it paraphrases")
    return frame, records


@contextmanager
def errors_at_file_rows(quotes_path: str | Path, frame: pd.DataFrame) -> Iterator[None]:
    """Re-raise a row-numbered :class:`PostkitError` about quote records at the quotes file's row."""
    try:
        yield
    except PostkitError as exc:
        if exc.row is None:
            raise
        raise PostkitError(exc.message, path=quotes_path, row=int(frame.index[exc.row - 1]) + 1,
                           column=exc.column, fix=exc.fix) from None


def check_file(
    quotes_path: str | Path,
    corpus_path: str | Path,
    output_path: str | Path,
    *,
    index_dir: str | Path | None = None,
    thresholds: Thresholds | None = None,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Check a quotes table against a corpus table and write one result row per quote.

    The corpus index is cached in ``index_dir`` (default: the private cache, see
    :func:`default_index_dir`; never inside a run or review folder) keyed by the corpus
    file's hash, so re-checking revised quotes is fast and an edited corpus is re-indexed.
    Every quote is also searched by the dense attacker (``dense_rank``; its passage
    embeddings are cached privately the same way); without the dense extra the check still
    runs but calls no quote disguised (``dense`` is "not run" and ``dense_note`` says why).
    Returns ``{"counts": {verdict: n}, "quotes": n, "posts": n, "index": "built"|"cached",
    "dense": "ran"|"not run", "dense_note": str, "timings": {...seconds}}``.
    """
    from ..io import OutputSet

    thresholds = thresholds or load_thresholds()
    timings: dict[str, float] = {}
    if index_dir is not None:
        refuse_shared_location(index_dir)
    frame, records = read_quotes(quotes_path)  # a bad quotes file fails before any indexing

    started = time.perf_counter()
    index, how = load_index(corpus_path, index_dir, on_progress)
    timings["index"] = round(time.perf_counter() - started, 3)

    started = time.perf_counter()
    with errors_at_file_rows(quotes_path, frame):
        rows = index.check(records, thresholds)
    timings["check"] = round(time.perf_counter() - started, 3)

    result = pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))
    result["source_rank"] = result["source_rank"].astype("Int64")
    result["dense_rank"] = result["dense_rank"].astype("Int64")
    with OutputSet(inputs=[quotes_path, corpus_path]) as outputs:
        writer = outputs.table(output_path)
        writer.write(result)
        if writer.columns is None:
            writer.set_empty_columns(list(OUTPUT_COLUMNS))
    counts = {verdict: int((result["verdict"] == verdict).sum()) for verdict in VERDICTS}
    return {"counts": counts, "quotes": len(result), "posts": len(index), "index": how,
            "dense": DENSE_RAN if index.dense is not None else DENSE_NOT_RUN, "dense_note": index.dense_note,
            "thresholds": asdict(thresholds), "timings": timings}


def render_summary(counts: Mapping[str, Any]) -> str:
    """A few lines for the terminal; accepts :func:`check_file`'s result or a bare verdict count."""
    verdicts = counts.get("counts", counts)
    total = sum(int(verdicts.get(v, 0)) for v in VERDICTS)
    lines = [f"Traceability check: {total} quote{'s' if total != 1 else ''}"]
    for verdict in VERDICTS:
        lines.append(f"  {verdict:<10} {int(verdicts.get(verdict, 0))}")
    if "posts" in counts:
        lines.append(f"  searched {counts['posts']} posts (index {counts.get('index', '?')})")
    if counts.get("dense") == DENSE_NOT_RUN:
        lines.append(f"  Dense attacker not run, so no quote is called disguised: {counts.get('dense_note')}.")
    elif counts.get("dense") == DENSE_RAN:
        lines.append("  attackers: BM25 keyword search (source_rank) and dense passage search (dense_rank); "
                     "the verdict is the worse of the two")
    if verdicts.get("traceable") or verdicts.get("at risk"):
        lines.append("  Rewrite the traceable and at-risk quotes, then check again.")
    else:
        lines.append("  Every quote is disguised under the current thresholds.")
    return "\n".join(lines)
