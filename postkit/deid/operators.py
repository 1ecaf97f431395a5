"""Replacing what was found: ``tag``, ``surrogate`` or ``hash``, via Presidio's AnonymizerEngine.

* ``tag`` — ``[PERSON]``, ``[POSTCODE]`` …: plain, and obviously redacted.
* ``surrogate`` — a realistic fictitious value of the same kind, chosen by a keyed hash
  of (scope, type, value): the same name always becomes the same surrogate within a
  post — or within a thread when a ``thread_id`` is given — so a conversation still
  reads naturally; distinct values within one post never share a surrogate.
* ``hash`` — ``[PERSON_3f9a2c1b]``: a keyed hash, the same across the whole corpus, so
  a researcher can count mentions of one (unknown) person without learning who.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Callable, Sequence

from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

from .engine import ENTITY_TYPES, Finding

OPERATORS = ("tag", "surrogate", "hash")

_FIRST = ["Alex", "Jamie", "Sam", "Charlie", "Robin", "Morgan", "Casey", "Jordan", "Taylor", "Riley", "Avery",
          "Frankie", "Jesse", "Kit", "Rowan", "Sasha", "Toni", "Ashley", "Billie", "Dani", "Elliot", "Harper",
          "Jules", "Lee", "Max", "Nico", "Pat", "Quinn", "Reese", "Skye"]
_LAST = ["Ashdown", "Brierley", "Calloway", "Denholm", "Everley", "Fairburn", "Garside", "Hartley", "Ingram",
         "Kettering", "Lockwood", "Merriman", "Norwood", "Oakley", "Pemberton", "Radcliffe", "Stanhope",
         "Thornbury", "Underwood", "Whitlock"]
_PLACES = ["Northbridge", "Eastwick", "Westfield", "Southmoor", "Kingsford", "Ashby Vale", "Millbrook",
           "Oakhurst", "Riverton", "Stonegate", "Fernley", "Brookside", "Hollins Green", "Larkhill", "Woodbury"]
_ORGS = ["Northbridge", "Eastwick", "Westfield", "Millbrook", "Oakhurst", "Riverton", "Stonegate", "Fernley"]
_STREETS = ["Acacia Avenue", "Beech Road", "Chapel Lane", "Dale Street", "Elm Close", "Field Way", "Garden Row",
            "Holly Drive", "Mill Lane", "Orchard Grove"]
_HANDLES = ["bluefinch", "quietriver", "paperboat", "sunnyside", "nightowl", "greenleaf", "softrain", "tinystar"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def _nhs_surrogate(n: int) -> str:
    """A number in the never-issued 999 range with a valid check digit."""
    while True:
        body = f"999{n % 1_000_000:06d}"
        total = sum(int(d) * w for d, w in zip(body, range(10, 1, -1)))
        check = (11 - total % 11) % 11
        if check != 10:
            digits = body + str(check)
            return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
        n += 1


def _surrogate_value(entity: str, original: str, n: int) -> str:
    """A fictitious value of the same kind; ``n`` (from a keyed hash) picks which."""
    pick = lambda options: options[n % len(options)]  # noqa: E731
    if entity == "PERSON":
        first = pick(_FIRST)
        if original[:1].islower():
            first = first.lower()
        return f"{first} {_LAST[(n // 7) % len(_LAST)]}" if " " in original.strip() else first
    if entity == "USERNAME":
        return f"{'@' if original.startswith('@') else ''}{pick(_HANDLES)}_{n % 90 + 10}"
    if entity == "EMAIL":
        return f"{pick(_FIRST).lower()}.{_LAST[(n // 7) % len(_LAST)].lower()}@example.org"
    if entity == "PHONE":
        return f"07700 900{n % 1000:03d}"
    if entity == "POSTCODE":
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        outward = f"ZZ{n % 9 + 1}"
        return outward if len(original.replace(" ", "")) <= 4 else \
            f"{outward} {n % 9 + 1}{letters[n % 20]}{letters[(n // 20) % 20]}"
    if entity == "NHS_NUMBER":
        return _nhs_surrogate(n)
    if entity == "NI_NUMBER":
        return f"QQ {n % 100:02d} {(n // 100) % 100:02d} {(n // 10_000) % 100:02d} C"
    if entity == "ADDRESS":
        return f"{n % 98 + 2} {pick(_STREETS)}"
    if entity == "LOCATION":
        place = pick(_PLACES)
        return place.lower() if original.islower() else place
    if entity == "ORG":
        words = original.split()
        suffix = " ".join(words[-2:]) if len(words) > 2 else (words[-1] if len(words) > 1 else "")
        return f"{pick(_ORGS)} {suffix}".strip() if suffix and suffix[:1].isupper() else f"{pick(_ORGS)} Ltd"
    if entity == "DATE":
        day, month = n % 28 + 1, n % 12
        if re.search(r"\d+[/.\-]\d+[/.\-]\d+", original):
            return f"{day:02d}/{month + 1:02d}/19{n % 50 + 50}"
        return f"{day} {_MONTHS[month]}"
    if entity == "AGE":
        return re.sub(r"\d+", str(n % 40 + 18), original, count=1)
    if entity == "URL":
        return f"https://example.org/page/{n % 10_000}"
    return f"[{entity}]"


class Replacer:
    """Applies one operator to texts and their findings."""

    def __init__(self, operator: str, key: bytes, forums=None) -> None:
        if operator not in OPERATORS:
            raise ValueError(f"unknown operator {operator!r}")
        self.operator = operator
        self._key = key
        self._engine = AnonymizerEngine()
        # Forum mentions always become the forum's pseudonym, whatever the operator.
        self._forum = OperatorConfig("custom", {"lambda": forums.replacement if forums else lambda _: "[FORUM]"})

    def _digest(self, *parts: str) -> int:
        message = "\x1f".join(parts).encode("utf-8")
        return int.from_bytes(hmac.new(self._key, message, hashlib.sha256).digest()[:8], "big")

    def _operators(self, scope: str) -> dict[str, OperatorConfig]:
        if self.operator == "tag":
            chosen = {e: OperatorConfig("replace", {"new_value": f"[{e}]"}) for e in ENTITY_TYPES}
        elif self.operator == "hash":
            chosen = {e: OperatorConfig("custom", {"lambda": self._hasher(e)}) for e in ENTITY_TYPES}
        else:
            used: dict[str, str] = {}  # surrogate → original, to keep distinct values distinct in this text
            chosen = {e: OperatorConfig("custom", {"lambda": self._surrogator(e, scope, used)}) for e in ENTITY_TYPES}
        return chosen | {"FORUM": self._forum}

    def _hasher(self, entity: str) -> Callable[[str], str]:
        return lambda value: f"[{entity}_{self._digest('hash', entity, _normal(value)) >> 32:08x}]"

    def _surrogator(self, entity: str, scope: str, used: dict[str, str]) -> Callable[[str], str]:
        def replace(value: str) -> str:
            normal = _normal(value)
            n = self._digest("surrogate", scope, entity, normal)
            for attempt in range(50):
                candidate = _surrogate_value(entity, value, n + attempt * 7919)
                if used.setdefault(candidate, normal) == normal:
                    return candidate
            return f"[{entity}]"

        return replace

    def apply(self, text: str, findings: Sequence[Finding], scope: str) -> str:
        if not findings:
            return text
        results = [RecognizerResult(f.entity_type, f.start, f.end, f.score) for f in findings]
        return self._engine.anonymize(text=text, analyzer_results=results,
                                      operators=self._operators(scope)).text


def _normal(value: str) -> str:
    """Case and spacing do not make a different person/number: "Dave" = "dave", "M1 1AE" = "m11ae"."""
    return re.sub(r"\s+", "", value.casefold())
