"""Forum pseudonyms: "Robin" instead of the forum's real name, in the forum column and in text.

Published studies name forums by pseudonym (birds, say) so a quote cannot be traced to
its forum. The map is a small file the study keeps: CSV (``forum,pseudonym`` and
optionally ``aliases`` and ``urls``, several values joined by ``|``) or YAML
(``Real Name: Pseudonym`` or ``Real Name: {pseudonym: X, aliases: [...], urls: [...]}``).
When the file does not exist yet it is generated from the forums in the input and
saved, so every later run uses the same pseudonyms. A forum missing from an existing
map stops the run (fail closed) rather than leaking its name.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import yaml

from ..errors import PostkitError
from .engine import Finding

BIRDS = ["Robin", "Magpie", "Dunnock", "Sparrow", "Starling", "Chaffinch", "Jay", "Wren", "Blackbird", "Thrush",
         "Goldfinch", "Swift", "Kestrel", "Heron", "Linnet", "Nuthatch", "Siskin", "Skylark", "Swallow",
         "Treecreeper", "Wagtail", "Warbler", "Yellowhammer", "Bullfinch", "Fieldfare", "Greenfinch", "Lapwing",
         "Redstart", "Redwing", "Stonechat"]


@dataclass
class ForumEntry:
    forum: str
    pseudonym: str
    aliases: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


class ForumPseudonyms:
    def __init__(self, entries: Iterable[ForumEntry], path: Path | None = None) -> None:
        self.entries = list(entries)
        self.path = path
        self._by_name = {e.forum.strip().casefold(): e for e in self.entries}
        mentions: dict[str, str] = {}
        for entry in self.entries:
            for name in [entry.forum, *entry.aliases]:
                mentions[name.strip().casefold()] = entry.pseudonym
        self._mentions = mentions
        url_parts = [re.escape(_bare_url(u)) for e in self.entries for u in e.urls if _bare_url(u)]
        self._url_owner = {_bare_url(u).casefold(): e.pseudonym for e in self.entries for u in e.urls}
        names = sorted(mentions, key=len, reverse=True)
        parts = []
        if url_parts:
            parts.append(r"(?:https?://)?(?:www\.)?(?P<url>" + "|".join(sorted(url_parts, key=len, reverse=True))
                         + r")(?:/(?:[^\s<>\"')\]]*[^\s<>\"')\].,;:!?])?)?")
        if names:
            parts.append(r"(?<![\w@])(?P<name>" + "|".join(re.escape(n) for n in names) + r")(?!\w)")
        self._pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def pseudonym_for(self, forum: str) -> str:
        entry = self._by_name.get(str(forum).strip().casefold())
        if entry is None:
            raise PostkitError(
                f"forum '{forum}' has no pseudonym", path=self.path,
                fix="add a row for it to the forum pseudonym map (forum,pseudonym)",
            )
        return entry.pseudonym

    def find(self, text: str) -> list[Finding]:
        if self._pattern is None or not text:
            return []
        return [Finding(m.start(), m.end(), "FORUM", 1.0, "forum_pseudonym") for m in self._pattern.finditer(text)]

    def replacement(self, mention: str) -> str:
        """The pseudonym for a mention (a name, alias or URL, possibly inside a larger span)."""
        if self._pattern is None:
            return "[FORUM]"
        match = self._pattern.search(mention)
        if match is None:
            return "[FORUM]"
        groups = match.groupdict()
        if groups.get("url"):
            return self._url_owner.get(groups["url"].casefold(), "[FORUM]")
        return self._mentions.get((groups.get("name") or "").casefold(), "[FORUM]")

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["forum", "pseudonym", "aliases", "urls"])
        for e in self.entries:
            writer.writerow([e.forum, e.pseudonym, "|".join(e.aliases), "|".join(e.urls)])
        return out.getvalue()


def _bare_url(url: str) -> str:
    return re.sub(r"^(?:https?://)?(?:www\.)?", "", url.strip(), flags=re.IGNORECASE).rstrip("/")


def _split(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value or "").split("|") if v.strip()]


def load_forum_pseudonyms(path: str | Path) -> ForumPseudonyms:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    entries: list[ForumEntry] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise PostkitError("expected 'Forum Name: Pseudonym' lines", path=path)
        for forum, value in data.items():
            if isinstance(value, dict):
                entries.append(ForumEntry(str(forum), str(value.get("pseudonym", "")),
                                          _split(value.get("aliases")), _split(value.get("urls"))))
            else:
                entries.append(ForumEntry(str(forum), str(value)))
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
        for number, row in enumerate(rows, start=1):
            if not row.get("forum") or not row.get("pseudonym"):
                raise PostkitError("each row needs forum and pseudonym", path=path, row=number,
                                   fix="columns: forum,pseudonym[,aliases][,urls]")
            entries.append(ForumEntry(row["forum"].strip(), row["pseudonym"].strip(),
                                      _split(row.get("aliases")), _split(row.get("urls"))))
    for number, entry in enumerate(entries, start=1):
        if not entry.pseudonym.strip():
            raise PostkitError(f"forum '{entry.forum}' has an empty pseudonym", path=path, row=number)
    pseudonyms = [e.pseudonym.casefold() for e in entries]
    if len(set(pseudonyms)) != len(pseudonyms):
        raise PostkitError("two forums share a pseudonym", path=path, fix="give each forum its own pseudonym")
    return ForumPseudonyms(entries, path)


def generate_forum_pseudonyms(forums: Iterable[str], path: Path | None = None) -> ForumPseudonyms:
    """Birds in a fixed order for the forums sorted by name, so regenerating gives the same map."""
    names = sorted({str(f).strip() for f in forums if str(f).strip()}, key=str.casefold)
    if len(names) > len(BIRDS):
        extra = [f"Forum{i}" for i in range(len(names) - len(BIRDS))]
    else:
        extra = []
    birds = BIRDS + extra
    return ForumPseudonyms([ForumEntry(name, birds[i]) for i, name in enumerate(names)], path)
