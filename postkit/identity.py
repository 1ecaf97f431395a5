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
