"""Sentence-boundary repair: put back the space real posts leave out after a full stop.

Real forum text often runs sentences together ("…right now.I was…", "the debt.The…",
"so bad.i am"). Read as written, "now.I" looks like a handle or a domain and the NER
sees one long sentence. The engine analyses a repaired copy with a space inserted at
each such boundary and maps every finding back to the original offsets, so what is
replaced is always the original text.

A boundary is ``word.Word`` (a capitalised word or "I" after a full stop, ``!`` or
``?``), or ``word.word`` when both words are everyday English words ("family.members").
Web addresses are left alone: a right-hand side that is a top-level domain
("example.com", "gov.uk", "bit.ly/x", "Site.Com"), or a token that holds ``www.``,
``://``, ``@`` or a digit, or that continues with ``/``; and the local part of an
e-mail address written out ("rainy.cloud at example dot net"). A quote may follow the
full stop ('the UK."Is that'), and the pronoun "I" glued to an everyday word before it
("HiI want") is split off too.
"""

from __future__ import annotations

import bisect
import re
from typing import Collection

# Top-level and common second-level domains seen in posts; a right-hand side equal to
# one of these is a domain, never a sentence start.
TLDS = frozenset("""
com org net edu gov mil int info biz io co uk au nz ca us ie de fr es it nl be ch at se no dk fi pl pt gr ru
cn jp kr in za br mx ar me tv ly gl gg to fm am ai app dev xyz online site store blog news page link live
shop web wiki club uk.co ac sch nhs mod police health""".split())

#: what follows the local part of an e-mail address written out to dodge filters
#: ("rainy.cloud at example dot net", "kez.b(at)example.com"): the dot before it is no sentence end
_OBFUSCATED_AT = re.compile(r"\s*(?:\[at\]|\(at\)|\{at\}|\s+at\s+)[a-z0-9-]+\s*(?:\.|\[dot\]|\(dot\)|\s+dot\s+)",
                            re.IGNORECASE)
_CANDIDATE = re.compile(r"(?<![\w.@/:])([A-Za-z][A-Za-z'’]*[A-Za-z)\"'’])([.!?]+[\"“”'’]?)([A-Za-z][a-z'’]*)(?=([\w./@:-]?))")
#: the pronoun glued to a greeting or word before it: "HiI want", "ThanksI was"
_GREETINGS = frozenset({"hi", "hey", "hiya", "heya", "hello", "thanks", "thx", "ok", "okay", "yeah", "yes", "no"})
_GLUED_I = re.compile(r"\b([A-Z]?[a-z]{2,})I(?=['’]?[a-z]{0,2}\s)")


def repair_boundaries(text: str, known: Collection[str]) -> tuple[str, list[int]]:
    """(repaired text, sorted offsets in the repaired text of every inserted space).

    ``known`` holds lowercase everyday words; both sides of a lowercase "word.word" must
    be in it for the dot to count as a sentence end.
    """
    cuts: list[int] = [m.end(1) for m in _GLUED_I.finditer(text)
                       if m.group(1).lower() in known or m.group(1).lower() in _GREETINGS]
    for match in _CANDIDATE.finditer(text) if "." in text or "!" in text or "?" in text else ():
        left, punct, right, after = match.group(1), match.group(2), match.group(3), match.group(4)
        punct = punct.rstrip("\"“”'’")  # a quote after the full stop: 'in the UK."Is that'

        if after and after not in " ":
            # "site.co.uk", "bit.ly/x", "name.surname@", "x.y2": part of an address or handle
            if after in "./@:" or after.isalnum() or after == "_":
                continue
        if len(left) < 2:
            continue
        low_right = right.lower()
        titled = right[0].isupper() and (len(right) == 1 or right[1:].islower())
        # "example.com", "Site.Com" are domains; "decision.It", "there.In" are sentence ends.
        if low_right in TLDS and punct == "." and not (titled and low_right in known):
            continue
        token_start = text.rfind(" ", 0, match.start()) + 1
        token = text[token_start:match.end()].lower()
        if "www." in token or "://" in token or "@" in token:
            continue
        if _OBFUSCATED_AT.match(text, match.end()):
            continue
        if punct != "." or right == "I" or low_right == "i" or low_right.startswith(("i'", "i’")):
            cuts.append(match.end(2))
        elif titled:
            cuts.append(match.end(2))
        elif left.lower() in known and low_right in known:
            cuts.append(match.end(2))
    if not cuts:
        return text, []
    cuts.sort()
    pieces, inserted, last = [], [], 0
    for n, cut in enumerate(cuts):
        pieces.append(text[last:cut])
        pieces.append(" ")
        inserted.append(cut + n)  # position of the space in the repaired text
        last = cut
    pieces.append(text[last:])
    return "".join(pieces), inserted


def to_original(offset: int, inserted: list[int]) -> int:
    """An offset in the repaired text, as an offset in the original text."""
    return offset - bisect.bisect_left(inserted, offset)
