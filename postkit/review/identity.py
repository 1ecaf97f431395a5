"""Who is using the review app: one secret link (token) per reviewer, made when the app starts.

Why tokens and not a typed name: a name box lets anyone act as anyone, and read
another coder's decisions, which breaks blind coding. ``postkit review serve
--reviewers alice,bob`` instead makes one random token per person
(:func:`secrets.token_urlsafe`, 256 bits) and prints one link each; decisions are
recorded under the name the token belongs to, whatever the request says.

* Tokens live in memory only, for one run of the server: they are never written to
  disk or logs, and a restart makes new ones (old links stop working).
* The token rides in the link's fragment (``/#token=...``), which browsers never send
  to a server nor put in a ``Referer``; the page moves it into ``sessionStorage`` (this
  tab only), removes it from the address bar and sends it as ``Authorization: Bearer``.
* Tokens are compared with :func:`hmac.compare_digest`, against every reviewer's token.

Names are normalised for identity — invisible characters (zero-width spaces, soft
hyphens, BOM) removed, Unicode NFKC, surrounding spaces trimmed
(:func:`postkit.identity.normalise_text`, as for user ids), then case folded —
so ``Bob``, ``bob`` and ``bob\\u200b`` are one person, and two of them in one
``--reviewers`` list are refused. The store records the normalised name (the
identity), so the same person keeps one name across runs of the app.
"""

from __future__ import annotations

import getpass
import hmac
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import PostkitError
from ..identity import normalise_text

__all__ = ["MAX_NAME_CHARS", "Reviewer", "Reviewers", "default_reviewer_name", "normalise_name",
           "parse_reviewer_list"]

MAX_NAME_CHARS = 64
TOKEN_BYTES = 32


def normalise_name(name: str) -> str:
    """The identity of a reviewer name: :func:`~postkit.identity.normalise_text`, then case-folded.

    Returns "" for a name that is empty after this; raises :class:`PostkitError` for
    control characters or a name over :data:`MAX_NAME_CHARS` characters.
    """
    text = normalise_text(str(name))
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise PostkitError("a reviewer name contains control characters", fix="use letters, digits and spaces")
    if len(text) > MAX_NAME_CHARS:
        raise PostkitError(f"a reviewer name is longer than {MAX_NAME_CHARS} characters",
                           fix="use a shorter name or initials")
    return unicodedata.normalize("NFKC", text.casefold())


def parse_reviewer_list(text: str | Sequence[str]) -> list[str]:
    """Normalised names from ``"alice,bob"`` (or a list); empty names and duplicates are errors.

    Errors name the position in the list, not the name (names may be personal).
    """
    raw = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for number, name in enumerate(raw, start=1):
        normal = normalise_name(name)
        if not normal:
            raise PostkitError(f"reviewer {number} in the list is empty",
                               fix="list names separated by commas, e.g. --reviewers alice,bob")
        if normal in names:
            raise PostkitError(
                f"reviewers {names.index(normal) + 1} and {number} in the list are the same person "
                "(names are compared ignoring case, width and invisible characters)",
                fix="list each reviewer once")
        names.append(normal)
    if not names:
        raise PostkitError("no reviewers given", fix="list names separated by commas, e.g. --reviewers alice,bob")
    return names


def default_reviewer_name() -> str:
    """The operating-system user's name, normalised: the single reviewer when none are listed."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):
        user = ""
    name = normalise_name(user) if user else ""
    if not name:
        raise PostkitError("cannot tell who is reviewing (no operating-system user name)",
                           fix="name the reviewers, e.g. --reviewers alice")
    return name


@dataclass(frozen=True)
class Reviewer:
    """One person using the app: a normalised ``name`` and the secret ``token`` of their link."""

    name: str
    token: str = field(repr=False)


class Reviewers:
    """The reviewers of one run of the app, each with a fresh token."""

    def __init__(self, names: Iterable[str]) -> None:
        normal = parse_reviewer_list(list(names))
        self.members = [Reviewer(name, secrets.token_urlsafe(TOKEN_BYTES)) for name in normal]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def by_token(self, token: str | None) -> Reviewer | None:
        """The reviewer whose token this is, or None; compares against every token in constant time."""
        if not token:
            return None
        given = token.encode("utf-8", "surrogateescape")
        found = None
        for reviewer in self.members:
            if hmac.compare_digest(given, reviewer.token.encode("ascii")):
                found = reviewer
        return found
