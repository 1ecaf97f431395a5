"""Checks for the national number formats of the locale packs (rules/deid/locales/).

A regular expression finds something shaped like a phone number, Medicare number, tax
file number or Social Security number; these functions decide whether it can be one.
Checksums and issuing rules turn most random digit runs (amounts, order numbers, years
run together) away, so a bare number is flagged only when it could really be an id.
Each check is named in a locale file as ``validator: NAME``; the names are registered in
:data:`postkit.deid.recognizers.VALIDATORS`. Pure functions, no dependencies, so the
rules loader and tests can use them without loading a model.
"""

from __future__ import annotations

import re
from typing import Callable

_NOT_DIGIT = re.compile(r"\D")


def _digits(text: str) -> str:
    return _NOT_DIGIT.sub("", text)


def au_phone(text: str) -> bool:
    """An Australian number: 10 digits from 02/03/07/08 (landline), 04 (mobile), 1300/1800.

    ``+61 4…`` and ``+61 (0)4…`` are read as ``04…``. Six-digit 13 numbers are service
    numbers, not people's, and are never matched.
    """
    digits = _digits(text)
    if text.lstrip("( ").startswith("+61") or (digits.startswith("61") and len(digits) in (11, 12)):
        digits = "0" + digits[2:].removeprefix("0")
    if len(digits) != 10 or len(set(digits[2:])) == 1:
        return False
    return digits[:2] in ("02", "03", "04", "07", "08") or digits[:4] in ("1300", "1800")


def us_phone(text: str) -> bool:
    """A North American number: area code and exchange start 2–9; an N11 area code is a service.

    ``+1`` or a leading ``1`` is dropped first.
    """
    digits = _digits(text)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10:
        return False
    area, exchange = digits[:3], digits[3:6]
    return area[0] in "23456789" and exchange[0] in "23456789" and area[1:] != "11" and len(set(digits)) > 1


def medicare_checksum(text: str) -> bool:
    """An Australian Medicare card number: 10 digits (+ an optional individual reference 1–9).

    The first digit is 2–6; the 9th is the check digit, the weighted sum (1, 3, 7, 9, 1, 3,
    7, 9) of the first eight modulo 10 (Services Australia's published algorithm).
    """
    digits = _digits(text)
    if len(digits) not in (10, 11) or digits[0] not in "23456":
        return False
    if len(digits) == 11 and digits[10] == "0":
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], (1, 3, 7, 9, 1, 3, 7, 9)))
    return total % 10 == int(digits[8])


def tfn_checksum(text: str) -> bool:
    """An Australian tax file number: 9 (or, for old ones, 8) digits whose weighted sum is a multiple of 11.

    Weights 1, 4, 3, 7, 5, 8, 6, 9, 10 for nine digits; 10, 7, 8, 4, 6, 3, 5, 1 for eight (ATO).
    """
    digits = _digits(text)
    if len(digits) == 9:
        weights: tuple[int, ...] = (1, 4, 3, 7, 5, 8, 6, 9, 10)
    elif len(digits) == 8:
        weights = (10, 7, 8, 4, 6, 3, 5, 1)
    else:
        return False
    if len(set(digits)) == 1 or digits.endswith("000000"):
        return False  # a round amount ("250 000 000"), not a TFN
    return sum(int(d) * w for d, w in zip(digits, weights)) % 11 == 0


# Numbers the Social Security Administration voided after they were printed in public
# (the 1938 Woolworth wallet card, a 1940s advertisement): they identify nobody.
_VOIDED_SSNS = frozenset({"078051120", "219099999"})


def ssn_valid(text: str) -> bool:
    """A US Social Security number as the SSA issues them (AAA-GG-SSSS).

    Never issued: area 000, 666 or 900–999, group 00, serial 0000.
    """
    digits = _digits(text)
    if len(digits) != 9 or digits in _VOIDED_SSNS:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


LOCALE_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "au_phone": au_phone,
    "us_phone": us_phone,
    "medicare_checksum": medicare_checksum,
    "tfn_checksum": tfn_checksum,
    "ssn_valid": ssn_valid,
}
