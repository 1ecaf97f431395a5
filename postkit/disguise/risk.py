"""Risk statements (suicide, self-harm, overdose, abuse) that a paraphrase must keep word for word.

Why a separate guard: a synonym swap that is harmless elsewhere ("commit" → "devote",
"cut" → "trim") turns a disclosure of risk into nonsense or into a different claim, and
no similarity score is sharp enough to catch that reliably (the sentence embedding of
"I was trying to devote suicide" is still close to the original). So the rule is
categorical and explainable: a risk statement of the original — a term of
``rules/disguise/risk_terms.yaml`` widened by the grammar to the verb a risk noun depends
on ("attempted suicide") and to the object of a risk verb ("abused me") — must appear in
the candidate unchanged, as often, with the same negation in front of it, and the
candidate may not add a risk statement the original did not make. A candidate breaking
any of these fails outright (:func:`RiskTerms.changed` gives the reason, never the words).

The paraphrase operations also receive the risk spans (:meth:`RiskTerms.spans`) as
protected character ranges, so they do not reword them in the first place; the check on
the finished candidate is the guarantee.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import PostkitError

KEYS = frozenset({"max_gap", "negation_window", "negations", "categories"})
_WORD_PART = re.compile(r"[a-z0-9']+\*?")
_SENTENCE_BREAK = re.compile(r"[.!?;\n]")
MAX_WIDENED_WORDS = 8  # a widened span longer than this falls back to the term's own words
_HEAD_PREPS = frozenset({"of", "at"})  # "thoughts of suicide", "an attempt at suicide"


@dataclass(frozen=True)
class _Slot:
    """One position of a term: exact words and word prefixes, or a gap."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    gap: bool = False

    def accepts(self, word: str) -> bool:
        return word in self.exact or any(word.startswith(p) for p in self.prefixes)


@dataclass(frozen=True)
class RiskSpan:
    """A risk statement in a text: its category, character range and normalised words."""

    category: str
    start: int
    end: int
    words: tuple[str, ...]


def _parse_term(term: Any, where: str, path: Path) -> tuple[_Slot, ...]:
    if not isinstance(term, str) or not term.strip():
        raise PostkitError(f"{where}: a term must be a non-empty string", path=path,
                           fix="write the words of the term, e.g. 'cut|cutting myself'")
    slots = []
    for part in term.lower().split():
        if part == "...":
            slots.append(_Slot(gap=True))
            continue
        exact, prefixes = set(), []
        for alternative in part.split("|"):
            if not alternative or not _WORD_PART.fullmatch(alternative) or alternative == "*":
                raise PostkitError(f"{where}: term {len(slots) + 1}. word is not letters/digits/apostrophes "
                                   "with an optional final *", path=path,
                                   fix="use word, a|b, word* or ... (see the comments at the top of the file)")
            if alternative.endswith("*"):
                prefixes.append(alternative[:-1])
            else:
                exact.add(alternative)
        slots.append(_Slot(frozenset(exact), tuple(prefixes)))
    if slots[0].gap or slots[-1].gap:
        raise PostkitError(f"{where}: a term may not start or end with ...", path=path,
                           fix="put ... between two words")
    return tuple(slots)


class RiskTerms:
    """The risk vocabulary, and the checks built on it."""

    def __init__(self, categories: dict[str, list[tuple[_Slot, ...]]], *, max_gap: int = 3,
                 negation_window: int = 4, negations: Sequence[str] = ()) -> None:
        self.categories = categories
        self.max_gap = max_gap
        self.negation_window = negation_window
        self.negations = frozenset(n.lower() for n in negations)

    # -- finding

    def _match_at(self, words: Sequence[str], i: int, slots: tuple[_Slot, ...]) -> int | None:
        """End index (exclusive) of the shortest match of ``slots`` starting at word ``i``."""
        if not slots:
            return i
        slot, rest = slots[0], slots[1:]
        if slot.gap:
            for skip in range(self.max_gap + 1):
                if i + skip > len(words):
                    break
                end = self._match_at(words, i + skip, rest)
                if end is not None:
                    return end
            return None
        if i < len(words) and slot.accepts(words[i]):
            return self._match_at(words, i + 1, rest)
        return None

    def matches(self, text: str) -> list[RiskSpan]:
        """Every term match (not widened), in text order."""
        from .trace import word_spans

        spans = word_spans(text) if isinstance(text, str) else []
        words = [w for _, _, w in spans]
        found = []
        for category, terms in self.categories.items():
            for slots in terms:
                for i in range(len(words)):
                    end = self._match_at(words, i, slots)
                    if end is not None and end > i:
                        found.append(RiskSpan(category, spans[i][0], spans[end - 1][1], tuple(words[i:end])))
        return sorted(set(found), key=lambda s: (s.start, s.end, s.category))

    def spans(self, text: str, nlp: Any = None) -> list[RiskSpan]:
        """Risk statements: term matches widened by the grammar (with ``nlp``), overlapping ones merged."""
        from .trace import word_spans

        found = self.matches(text)
        if not found:
            return []
        ranges = [(s.start, s.end, s.category) for s in found]
        if nlp is not None:
            doc = nlp(text)
            ranges = [_widen(doc, start, end) + (category,) for start, end, category in ranges]
        ranges.sort()
        merged: list[list[Any]] = []
        for start, end, category in ranges:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
                merged[-1][2].add(category)
            else:
                merged.append([start, end, {category}])
        out = []
        for start, end, categories in merged:
            words = tuple(w for s, e, w in word_spans(text) if s >= start and e <= end)
            out.append(RiskSpan("+".join(sorted(categories)), start, end, words))
        return out

    # -- checking

    def _negated(self, text: str, spans: list[tuple[int, int, str]], first: int) -> bool:
        """A negation among the few words before word ``first``, within its sentence."""
        k = first - 1
        while k >= 0 and first - k <= self.negation_window:
            if _SENTENCE_BREAK.search(text[spans[k][1] : spans[k + 1][0]]):
                return False
            if spans[k][2] in self.negations:
                return True
            k -= 1
        return False

    def changed(self, original: str, candidate: str, nlp: Any = None) -> str | None:
        """Why ``candidate`` changes a risk statement of ``original``, or None when it keeps them all.

        The reason names the category and what happened, never the words (they may be a
        person's disclosure, and the caller decides where reasons are shown).
        """
        from .trace import word_spans

        kept = self.spans(original, nlp)
        cand_spans = word_spans(candidate) if isinstance(candidate, str) else []
        cand_words = [w for _, _, w in cand_spans]
        orig_spans = word_spans(original)
        orig_words = [w for _, _, w in orig_spans]
        for span in kept:
            if not span.words:
                continue
            in_original = _occurrences(orig_words, span.words)
            in_candidate = _occurrences(cand_words, span.words)
            if len(in_candidate) < len(in_original):
                return f"a risk statement ({_label(span.category)}) was reworded or dropped"
            for a, b in zip(in_original, in_candidate):
                if self._negated(original, orig_spans, a) != self._negated(candidate, cand_spans, b):
                    return f"the negation of a risk statement ({_label(span.category)}) changed"
        before = Counter((s.category, s.words) for s in self.matches(original))
        after = Counter((s.category, s.words) for s in self.matches(candidate))
        added = after - before
        if added:
            category = next(iter(added))[0]
            return f"a risk statement ({_label(category)}) was added"
        return None


def _label(category: str) -> str:
    return category.replace("_", "-").replace("+", ", ")


def _occurrences(words: Sequence[str], seq: Sequence[str]) -> list[int]:
    n = len(seq)
    return [i for i in range(len(words) - n + 1) if tuple(words[i : i + n]) == tuple(seq)]


def _widen(doc: Any, start: int, end: int) -> tuple[int, int]:
    """The match's character range widened to the verb a risk noun depends on and the object of
    a risk verb; unchanged when the widened range would be longer than :data:`MAX_WIDENED_WORDS`."""
    tokens = [t for t in doc if t.idx < end and t.idx + len(t.text) > start]
    if not tokens:
        return start, end
    extra = []
    for token in tokens:
        if token.pos_ in ("NOUN", "PROPN", "ADJ") and token.dep_ in ("dobj", "pobj", "attr", "nsubjpass", "compound",
                                                                     "amod"):
            head = token.head
            if head.pos_ in ("VERB", "NOUN") and token.dep_ != "pobj":
                extra.append(head)
            elif token.dep_ == "pobj" and head.lower_ in _HEAD_PREPS and head.head.pos_ in ("NOUN", "VERB"):
                extra += [head, head.head]
        if token.pos_ == "VERB":
            for child in token.children:
                if child.dep_ in ("dobj", "dative", "iobj"):
                    subtree = sorted(child.subtree, key=lambda t: t.i)
                    extra += subtree if len(subtree) <= 4 else [child]
    every = tokens + extra
    lo = min(t.idx for t in every)
    hi = max(t.idx + len(t.text) for t in every)
    if len(doc.char_span(lo, hi, alignment_mode="expand") or ()) > MAX_WIDENED_WORDS:
        return start, end
    return lo, hi


def default_path() -> Path:
    from ..deid.rules import rules_root

    return rules_root() / "disguise" / "risk_terms.yaml"


def load_risk_terms(path: str | Path | None = None) -> RiskTerms:
    """Read and validate ``rules/disguise/risk_terms.yaml`` (or ``path``); errors name the fix."""
    if path is None:
        return _default_terms()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _default_terms() -> RiskTerms:
    return _load(default_path())


def _whole(data: dict[str, Any], key: str, default: int, path: Path) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PostkitError(f"'{key}' must be a whole number >= 0", path=path, fix=f"e.g. {key}: {default}")
    return value


def _load(path: Path) -> RiskTerms:
    if not path.is_file():
        raise PostkitError("risk terms file not found", path=path, fix="restore rules/disguise/risk_terms.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PostkitError(f"not valid YAML ({str(exc).splitlines()[0]})", path=path) from None
    if not isinstance(data, dict):
        raise PostkitError("expected a mapping with 'categories'", path=path)
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise PostkitError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
                           path=path, fix=f"known: {', '.join(sorted(KEYS))}")
    raw = data.get("categories")
    if not isinstance(raw, dict) or not raw:
        raise PostkitError("'categories' must map each category to a list of terms", path=path,
                           fix="e.g. categories: {suicide: [suicid*]}")
    categories: dict[str, list[tuple[_Slot, ...]]] = {}
    for name, terms in raw.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z_]+", name):
            raise PostkitError("a category name must be lowercase letters and _", path=path)
        if not isinstance(terms, list) or not terms:
            raise PostkitError(f"category {name!r} needs a non-empty list of terms", path=path)
        categories[name] = [_parse_term(term, f"category {name!r}, term {k}", path)
                            for k, term in enumerate(terms, start=1)]
    negations = data.get("negations", [])
    if not isinstance(negations, list) or not all(isinstance(n, str) and n.strip() for n in negations):
        raise PostkitError("'negations' must be a list of words", path=path)
    return RiskTerms(categories, max_gap=_whole(data, "max_gap", 3, path),
                     negation_window=_whole(data, "negation_window", 4, path), negations=negations)
