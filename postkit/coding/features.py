"""Post-level evidence: what kind of post this is, beside which words it contains.

Why it exists
-------------
On real forum posts the codebook's cue phrases rarely fire. Coders still code a long
first-person disclosure that ends "thanks for reading" as catharsis and sense-making, a
reply full of "you should" and "have you tried" as helping others, and a plain question
with "thanks for any advice" as no area at all. What decides those codes is the *shape*
of the post — a disclosure, a reply or advice, a request, a thanks — not a phrase a cue
list could anticipate. This module measures that shape as a handful of named numbers,
each with the text spans that produced it, so a suggestion driven by them can still
show the coder why ("thanks for reading", "have you tried", 14% first-person words).

What it is
----------
:func:`post_features` returns ``{name: value}`` (values roughly in 0..1, so one
regularisation strength suits them and the TF-IDF features they sit beside in the area
ranker) and :func:`feature_spans` the character spans behind each span-based feature.
Everything is plain regular expressions over the raw text: no model, deterministic,
and the same on training and tagging. The patterns are deliberately generic forum
English, written from the programme theory's description of post types, not from
individual posts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

_FLAGS = re.IGNORECASE
_THANK = r"(?:thank(?:s|\s+you|\s+u|x)?|thx|thanx|ty|cheers)(?:\s+(?:so|very)\s+much|\s+heaps|\s+again|\s+all|\s+everyone|\s+guys)?"

# name -> pattern; each match is a span of evidence for the feature.
SPAN_FEATURES: dict[str, re.Pattern[str]] = {
    # A disclosure's closing thanks: for being heard, not for an answer.
    "thanks_reading": re.compile(
        _THANK + r"\s+(?:\w+\s+)?for\s+(?:reading|listening|(?:taking\s+the\s+time\s+to\s+)?(?:read|listen)\w*|"
        r"(?:letting|allowing)\s+me\s+(?:\w+\s+){0,2}(?:vent|rant|share|talk|get|say|pop|write|express)\w*|"
        r"hearing\s+me\s+out|your\s+(?:time|patience|ears?)|(?:the|this)\s+(?:space|place|forum|platform)|"
        r"(?:being|just)\s+(?:here|there))", _FLAGS),
    # A request's thanks: for an answer that has not come yet.
    "thanks_for_help": re.compile(
        _THANK + r"\s+(?:in\s+advance\s+)?(?:\w+\s+)?for\s+(?:any|all\s+(?:the\s+)?|your|the)?\s*(?:help\w*|advice|suggestions?|"
        r"tips?|input|guidance|thoughts|ideas|insights?|replies|responses?|answers?|feedback|info\w*)"
        r"|(?:thanks|thank\s+you)\s+in\s+advance|(?:would|will|I'?d)\s+(?:really\s+|greatly\s+)?appreciate\s+(?:any|some|your)",
        _FLAGS),
    # Thanks to other members for what they shared: replies and community.
    "thanks_for_sharing": re.compile(
        _THANK + r"\s+(?:\w+\s+)?for\s+(?:sharing|posting|writing\s+this|(?:your|this|the|these|all\s+the|such\s+an?)\s+"
        r"(?:\w+\s+)?(?:post|story|stories|thread|words|replies|reply|response|support|kindness|encouragement|"
        r"message|comments?|experiences?|service))", _FLAGS),
    # A professional's or moderator's reply to a question sent to them.
    "thanks_for_question": re.compile(
        _THANK + r"\s+(?:\w+\s+)?for\s+(?:your\s+question|asking|(?:reaching|writing)\s+(?:out|in)|"
        r"(?:your\s+)?(?:honesty|courage)|being\s+(?:so\s+)?(?:open|honest))", _FLAGS),
    # Asking the forum for something.
    "request": re.compile(
        r"\b(?:does|has|can|could|would|did|is)\s+any(?:one|body)\b|\bany\s+(?:advice|suggestions?|tips?|ideas|"
        r"thoughts|help|recommendations?|insights?)\b|\b(?:what|how)\s+(?:should|do|can|would)\s+(?:i|we|others|people)\b|"
        r"\bshould\s+i\b|\bi\s+need\s+(?:some\s+)?(?:advice|help|suggestions)\b|\bwhat\s+do\s+you\s+(?:guys\s+)?think\b|"
        r"\bhow\s+do\s+(?:others|people|you\s+all)\b", _FLAGS),
    # Advice addressed to someone else.
    "you_advice": re.compile(
        r"\byou\s+(?:should|could|might\s+(?:want|try|consider|find)|may\s+(?:want|find)|need\s+to|must|can\s+try)\b|"
        r"\bhave\s+you\s+(?:tried|considered|thought|spoken|talked|looked)\b|\bi\s+(?:would\s+)?(?:suggest|recommend|"
        r"encourage)\b|\bmy\s+advice\b|\btry\s+(?:to|and)\b|\bmake\s+sure\s+(?:you|to)\b|\bdon'?t\s+be\s+afraid\b|"
        r"\b(?:it|this)\s+(?:may|might|could)\s+help\b|\breach\s+out\s+to\b|\bif\s+you\s+(?:can|need|feel|are|want)\b",
        _FLAGS),
    # A reply to another member: sympathy, welcome, encouragement.
    "peer_reply": re.compile(
        r"\b(?:i'?m|i\s+am|so)\s+(?:so\s+|really\s+|very\s+)?sorry\s+(?:to\s+hear|you|for\s+what|that\s+you)|"
        r"\bsorry\s+you(?:'re|\s+are|\s+have|'ve)\b|\bwelcome\s+to\s+(?:the\s+)?(?:forums?|bb|beyond\s*blue|the\s+community)|"
        r"\b(?:i\s+)?hope\s+(?:this|it|that)\s+helps\b|\bi\s+hope\s+you\b|\bhang\s+in\s+there\b|"
        r"\byou(?:'re|\s+are)\s+not\s+alone\b|\b(?:sending|big)\s+(?:you\s+)?(?:hugs|love)\b|\btake\s+care\s+of\s+yourself\b|"
        r"\b(?:you'?ve|you\s+have)\s+(?:done|got|been)\b|\bwell\s+done\b|\bproud\s+of\s+you\b|^\s*@\w+|\bdear\s+\w+", _FLAGS),
    # Feeling less alone, understood, in the same boat.
    "not_alone": re.compile(
        r"\bnot\s+(?:the\s+only\s+one|alone)\b|\bsame\s+boat\b|\b(?:others|people|you\s+all|everyone)\s+(?:here\s+)?"
        r"(?:get|understand)s?\b|\bfeel\s+(?:so\s+)?(?:understood|less\s+alone|heard|normal)\b|\bi\s+can\s+relate\b|"
        r"\bknowing\s+(?:that\s+)?(?:others|i'?m\s+not)\b", _FLAGS),
    # Sharing one's own experience to help another.
    "own_experience": re.compile(
        r"\b(?:in\s+my\s+(?:own\s+)?experience|i'?ve\s+been\s+(?:there|through)|i\s+(?:also|too)\s+(?:had|have|was|went)|"
        r"(?:something|what)\s+(?:that\s+)?(?:helped|helps|worked\s+for)\s+me|i\s+found\s+that|when\s+i\s+was\s+going\s+through)\b",
        _FLAGS),
    # Hope, a strategy learned, a new way of seeing it.
    "hope_strategy": re.compile(
        r"\b(?:i\s+(?:will|'ll|am\s+going\s+to|'m\s+going\s+to|can)\s+(?:try|give\s+it\s+a\s+go|start))\b|"
        r"\b(?:learn(?:ed|t)|realis(?:ed|ing)|realiz(?:ed|ing)|made\s+me\s+(?:think|realise|realize|see))\b|"
        r"\bfeel(?:ing)?\s+(?:more\s+)?(?:hopeful|positive|stronger|better|empowered|motivated)\b|"
        r"\bvery\s+helpful\s+to\s+me\b|\b(?:great|good|useful)\s+(?:advice|tips|ideas|idea|suggestion)", _FLAGS),
}

_WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
_FIRST = frozenset({"i", "me", "my", "mine", "myself", "i'm", "im", "i've", "ive", "i'd", "i'll", "i’m", "i’ve",
                    "i’d", "i’ll"})
_SECOND = frozenset({"you", "your", "yours", "yourself", "you're", "youre", "you've", "you'd", "you'll", "u", "ur",
                     "you’re", "you’ve", "you’d", "you’ll"})
_PAST = frozenset({"was", "were", "had", "did", "went", "felt", "got", "said", "told", "started", "became",
                   "took", "came", "left", "thought", "tried", "wanted"})

# Features without spans (shares and sizes) come after the span features, in this order.
SHAPE_FEATURES = ("first_person", "second_person", "past_narrative", "questions", "question_at_end", "length",
                  "thanks_at_end")
FEATURE_NAMES: tuple[str, ...] = tuple(SPAN_FEATURES) + SHAPE_FEATURES


def feature_spans(text: str) -> dict[str, list[tuple[int, int]]]:
    """Character spans ``[start, end)`` behind each span feature (empty features omitted)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for name, pattern in SPAN_FEATURES.items():
        spans = [(m.start(), m.end()) for m in pattern.finditer(text) if m.end() > m.start()]
        if spans:
            out[name] = spans
    return out


def post_features(text: Any, spans: dict[str, list[tuple[int, int]]] | None = None) -> dict[str, float]:
    """Named post-level features of a text, each roughly in 0..1 (see module docstring).

    Span features are ``min(hits, 3) / 3``; ``first_person``/``second_person``/
    ``past_narrative`` are word shares scaled so a typical disclosure is near 1;
    ``questions`` counts question marks (capped), ``question_at_end`` is 1 when the last
    fifth of the post asks something, ``length`` is log-words over log(1000), and
    ``thanks_at_end`` is 1 when a thanks sits in the last fifth (a closing thanks).
    """
    text = text if isinstance(text, str) else ""
    spans = feature_spans(text) if spans is None else spans
    values = {name: min(len(spans.get(name, ())), 3) / 3.0 for name in SPAN_FEATURES}
    words = [w.lower() for w in _WORD.findall(text)]
    n = len(words)
    tail = len(text) - max(len(text) // 5, 120)
    values["first_person"] = min(1.0, 6.0 * sum(w in _FIRST for w in words) / n) if n else 0.0
    values["second_person"] = min(1.0, 12.0 * sum(w in _SECOND for w in words) / n) if n else 0.0
    values["past_narrative"] = min(1.0, 20.0 * sum(w in _PAST for w in words) / n) if n else 0.0
    values["questions"] = min(text.count("?"), 3) / 3.0
    values["question_at_end"] = 1.0 if "?" in text[max(tail, 0):] else 0.0
    values["length"] = min(1.0, math.log1p(n) / math.log(1000.0))
    thanks_at = [m.start() for m in re.finditer(r"\bthank|\bthanx|\bthx\b|\bcheers\b", text, _FLAGS)]
    values["thanks_at_end"] = 1.0 if any(p >= tail for p in thanks_at) else 0.0
    return {name: round(values[name], 6) for name in FEATURE_NAMES}


def feature_vector(text: Any, names: Sequence[str] = FEATURE_NAMES) -> list[float]:
    """:func:`post_features` as a list in ``names`` order (for training matrices)."""
    values = post_features(text)
    return [values.get(name, 0.0) for name in names]
