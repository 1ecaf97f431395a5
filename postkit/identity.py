"""Who is who: user ids and forum names compared the way a person reads them.

Consent records are typed by people (moderators, sign-up forms, spreadsheets) and
forum exports are made by software, so the same user can appear as ``alice``,
``alice`` + a zero-width space, ``\\ufeffalice`` or an NFD ``josé``. Those are the same
id once **normalised** (:func:`normalise_text`: invisible format characters removed,
NFKC, surrounding space trimmed) and match normally.

Ids that differ only by case (``ALICE``) or by look-alike letters (Cyrillic ``аlice``,
TR39 "confusables") may or may not be the same person. They are **look-alikes**
(:func:`look_alike_keys`): consent matching treats them as ambiguous, which can
exclude a post but never keep one (see :mod:`postkit.consent`).

The confusables table is Unicode's own (UTS #39), shipped as data in
``rules/unicode_confusables.json`` with its source and version: no maintained Python
package offers TR39's ``skeleton()`` offline (``confusable-homoglyphs`` keeps only an
undirected list of look-alikes and ``confusables`` none at all), and the function is
ten lines once the table is there. ``scripts/build_confusables.py`` rebuilds it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from typing import Any

# Default-ignorable characters that are not category Cf but render as nothing
# (combining grapheme joiner, Hangul fillers, Mongolian and standard variation
# selectors): removed together with every format (Cf) character.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0100, 0xE01EF),
)

WILDCARD = "*"
# Words a person may write for "every forum"; the wildcard is "*" and these are refused.
WILDCARD_WORDS = ("all", "any", "every", "everything", "all forums", "any forum", "every forum",
                  "everywhere")


def _invisible(char: str) -> bool:
    if unicodedata.category(char) == "Cf":
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def normalise_text(value: str) -> str:
    """Invisible characters removed, then NFKC, then surrounding whitespace trimmed.

    ASCII text (nearly every id) needs none of it but the trim, and skips the work.
    """
    if value.isascii():
        return value.strip()
    text = "".join(ch for ch in value if not _invisible(ch))
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if not _invisible(ch)).strip()


def has_invisible(value: str) -> bool:
    """True when ``value`` carries format/ignorable characters (shown escaped in messages)."""
    return not value.isascii() and any(_invisible(ch) for ch in value)


@lru_cache(maxsize=1)
def _confusables() -> dict[int, str]:
    """TR39 source code point → prototype string, as a ``str.translate`` table."""
    from .deid.rules import rules_root

    data = json.loads((rules_root() / "unicode_confusables.json").read_text(encoding="utf-8"))
    return {
        int(source, 16): "".join(chr(int(code, 16)) for code in target.split())
        for source, target in data["map"].items()
    }


def confusables_version() -> str:
    """The Unicode version of the confusables table (recorded in the consent policy)."""
    from .deid.rules import rules_root

    data = json.loads((rules_root() / "unicode_confusables.json").read_text(encoding="utf-8"))
    return str(data.get("unicode_version"))


def skeleton(text: str) -> str:
    """UTS #39 skeleton: NFD, each character to its prototype, NFD again.

    Two strings are confusable exactly when their skeletons are equal.
    """
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", decomposed.translate(_confusables()))


def look_alike_keys(normalised: str) -> frozenset[str]:
    """Keys under which ids that a reader could take for one another collide.

    Case is folded as well as confusables (``ALICE``, ``аlice``, ``AL1CE`` all meet
    ``alice`` or ``ALICE``); ids sharing a key with a different normalised id are
    look-alikes.
    """
    folded = normalised.casefold()
    return frozenset({skeleton(normalised), skeleton(folded), skeleton(folded).casefold()})


def clean_id(value: Any) -> str | None:
    """The normalised text of an id cell (``42.0`` → ``"42"``); blank → None."""
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            value = int(value)
    text = normalise_text(value if isinstance(value, str) else str(value))
    return text or None


_SPACES = re.compile(r"\s+")


def forum_exact_key(value: str) -> str:
    """How forum names match for consent: trimmed and case-insensitive (as before)."""
    return value.strip().casefold()


def forum_look_alike_keys(value: str) -> frozenset[str]:
    """Keys under which forum names meet after normalisation or confusable folding."""
    text = _SPACES.sub(" ", normalise_text(value))
    return look_alike_keys(text)


@lru_cache(maxsize=1)
def _wildcard_keys() -> frozenset[str]:
    keys: set[str] = set()
    for word in WILDCARD_WORDS + (WILDCARD,):
        keys |= forum_look_alike_keys(word)
    return frozenset(keys)


def looks_like_wildcard(value: str) -> bool:
    """``all``, ``ANY``, ``аll`` (Cyrillic а), ``∗``…: meant as "every forum", but only ``*`` is."""
    return value.strip() != WILDCARD and bool(forum_look_alike_keys(value) & _wildcard_keys())


def shown(value: str) -> str:
    """A forum name for a message: invisible characters escaped so a reader sees them."""
    return "".join(f"\\u{ord(ch):04x}" if _invisible(ch) or not ch.isprintable() else ch for ch in value)


# --------------------------------------------------------------------------- text as a search sees it
#
# The quote disguise check (postkit.disguise.trace) must not be fooled by text that looks the
# same to a reader but not to a naive comparison: a soft hyphen or zero-width space inside a
# word, fullwidth letters, ligatures, Cyrillic look-alikes. These helpers give the text a
# search engine that ignores such tricks would see, and list the tricks a quote for
# publication may not carry.

# Spaces narrower than an ordinary one: inside a word they are all but invisible, so the
# search form drops them and a quote for publication may not contain them.
NARROW_SPACES = "\u2006\u2008\u2009\u200a\u202f\u205f"

# Planes holding every format character and combining mark (planes 2-3 hold only CJK
# ideographs, the rest are unassigned or private use), scanned once to build the
# character classes below (about half a second, once per process).
_SCANNED = ((0x0000, 0x1FFFF), (0xE0000, 0xE0FFF))


@lru_cache(maxsize=1)
def _search_classes() -> tuple[re.Pattern[str], re.Pattern[str], frozenset[int]]:
    """(narrow spaces and BMP invisibles, BMP invisibles and combining marks, astral ones).

    Combining marks are categories Mn and Me plus every character with a non-zero canonical
    combining class, so that dropping them makes the result independent of canonical
    reordering (see :func:`search_form`). Characters beyond the BMP are kept as a set, not
    a regex class: Python's regex engine tests such a class range by range, which made
    stripping 50 times slower on posts with emoji.
    """
    invisible: list[int] = []
    marks: list[int] = []
    for low, high in _SCANNED:
        for code in range(low, high + 1):
            char = chr(code)
            category = unicodedata.category(char)
            if category == "Cn":
                continue
            if _invisible(char):
                invisible.append(code)
            elif category in ("Mn", "Me") or unicodedata.combining(char):
                marks.append(code)
    bmp = [c for c in invisible + marks if c <= 0xFFFF]
    astral = frozenset(c for c in invisible + marks if c > 0xFFFF)
    before = [ord(ch) for ch in NARROW_SPACES] + [c for c in invisible if c <= 0xFFFF]
    return _char_class(before), _char_class(bmp), astral


_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


def _char_class(codes: list[int]) -> re.Pattern[str]:
    codes = sorted(set(codes))
    parts, start = [], 0
    while start < len(codes):
        end = start
        while end + 1 < len(codes) and codes[end + 1] == codes[end] + 1:
            end += 1
        low, high = codes[start], codes[end]
        parts.append(re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}")
        start = end + 1
    return re.compile(f"[{''.join(parts)}]+")


def search_form(text: str) -> str:
    """The text as a search that ignores hiding tricks sees it; case is kept.

    Invisible characters and narrow spaces removed, compatibility forms unfolded (NFKD:
    fullwidth ``ａ`` → ``a``, ligature ``ﬁ`` → ``fi``), accents and other combining marks
    dropped (``café`` → ``cafe``: a reader's search finds either). It works character by
    character — ``search_form(a + b) == search_form(a) + search_form(b)`` — so callers can
    map positions in the result back to the original (:func:`search_form_of_char`).
    """
    if text.isascii():
        return text
    before, strip, astral = _search_classes()
    # Narrow spaces go before NFKD, which would turn them into ordinary spaces.
    text = strip.sub("", unicodedata.normalize("NFKD", before.sub("", text)))
    if not text.isascii() and _ASTRAL.search(text):
        text = _ASTRAL.sub(lambda m: "" if ord(m.group()) in astral else m.group(), text)
    return text


@lru_cache(maxsize=4096)
def search_form_of_char(char: str) -> str:
    """:func:`search_form` of one character (cached: quotes repeat their characters)."""
    return search_form(char)


@lru_cache(maxsize=1)
def _latin_look_alikes() -> dict[int, str]:
    """Non-ASCII character → the ASCII letters it looks like (from the TR39 table)."""
    table = {}
    for code, prototype in _confusables().items():
        if code < 0x80 or not prototype.isascii() or not prototype.isalnum():
            continue
        if prototype == "l" and chr(code).isupper():
            prototype = "I"  # TR39 merges I and l; an upper-case look-alike stands for I
        elif prototype == "rn":
            prototype = "m"
        table[code] = prototype
    return table


def fold_look_alikes(word: str) -> str:
    """A word typed with look-alike letters of other scripts, in Latin letters
    (Cyrillic ``dеpressіоn`` → ``depression``); unchanged unless every letter folds to ASCII,
    so a genuine word of another script stays as it is."""
    if word.isascii():
        return word
    folded = word.translate(_latin_look_alikes())
    return folded if folded.isascii() else word


def _script(char: str) -> str:
    """The first word of a letter's Unicode name (LATIN, CYRILLIC, GREEK…): its script, near enough."""
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


def character_label(char: str) -> str:
    """``U+00AD SOFT HYPHEN``: how messages name a character without showing it."""
    return f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed character')}"


_LETTER_RUN = re.compile(r"[^\W\d_]+")


_EMOJI_CATEGORIES = ("So", "Sk")
# Letters, decimal digits and symbols (circled letters) whose NFKC form is a plain letter or digit.
_COMPATIBLE_CATEGORIES = ("Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "So")


def _part_of_emoji(text: str, position: int) -> bool:
    """A variation selector after a symbol (``❤️``, keycap ``1️⃣``) or a zero-width joiner between
    symbols (``👩‍💻``): how emoji are written, not a hiding trick (no word can hide there)."""
    char = text[position]
    before = text[position - 1] if position else ""
    after = text[position + 1] if position + 1 < len(text) else ""
    if char in "\ufe0e\ufe0f":
        return bool(before) and (unicodedata.category(before) in _EMOJI_CATEGORIES
                                 or (before in "0123456789#*" and after == "\u20e3"))
    if char == "\u200d":
        return (bool(before) and bool(after) and unicodedata.category(after) in _EMOJI_CATEGORIES
                and (unicodedata.category(before) in _EMOJI_CATEGORIES or before == "\ufe0f"))
    return False


def hidden_characters(text: str) -> list[tuple[int, str, str]]:
    """What a quote for publication may not contain: ``(position, character, why)`` in text order.

    * invisible format characters (soft hyphen, zero-width space/joiner/non-joiner, BOM,
      bidi marks, every other category Cf and default-ignorable character) and narrow spaces;
    * compatibility forms of letters and digits (fullwidth, mathematical, ligatures,
      circled letters), which NFKC turns into plain ones;
    * letters of another script that look like Latin ones, inside a Latin word or making
      up a word that reads as Latin (Cyrillic ``а`` in ``dаy``).

    A reader cannot see the first, and all of them hide words from a plain search, so the
    published text would not be the one that was checked.
    """
    if text.isascii():
        return []
    found: dict[int, tuple[int, str, str]] = {}
    for position, char in enumerate(text):
        if char in NARROW_SPACES:
            found[position] = (position, char, "a narrow space, invisible inside a word")
        elif _invisible(char) and not _part_of_emoji(text, position):
            found[position] = (position, char, "an invisible character")
        elif not char.isascii() and unicodedata.category(char) in _COMPATIBLE_CATEGORIES:
            plain = unicodedata.normalize("NFKC", char)
            if plain != char and plain.isalnum():
                found[position] = (position, char, f"a compatibility form of {plain!r}")
    look_alikes = _latin_look_alikes()
    visible = "".join(" " if position in found else char for position, char in enumerate(text))
    for match in _LETTER_RUN.finditer(visible):
        word = match.group()
        if word.isascii():
            continue
        scripts = {_script(ch) for ch in word}
        foreign = [i for i, ch in enumerate(word) if ord(ch) in look_alikes and _script(ch) != "LATIN"]
        if foreign and ("LATIN" in scripts or fold_look_alikes(word).isascii()):
            for i in foreign:
                position = match.start() + i
                char = text[position]
                found[position] = (position, char,
                                   f"a {_script(char).lower()} look-alike of Latin {look_alikes[ord(char)]!r}")
    return [found[p] for p in sorted(found)]
