"""The de-identification rules (rules/deid/): patterns, gazetteers and allow-lists as data.

Rules are found in the installed package (``postkit.rules``) or, when running from a
source checkout, in the repository's ``rules/`` folder. Everything loaded is hashed,
so an export can record exactly which rules made it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import PostkitError

WORD_LISTS = (
    "first_names", "ambiguous_names", "surnames", "uk_places", "ambiguous_places", "employers",
    "org_suffixes", "street_suffixes", "allow_services", "allow_medications", "allow_words",
    "deny_usernames", "deny_names", "allow_medications_international", "allow_places", "allow_regions",
    "acronyms", "common_words",
)


def rules_root() -> Path:
    """The folder holding ``deid/`` etc.: ``postkit/rules`` when installed, else the checkout's ``rules/``."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "rules"
    if (installed / "deid").is_dir():
        return installed
    return package.parent / "rules"


def read_word_list(path: Path) -> list[str]:
    """One entry per line; ``#`` starts a comment line; blank lines ignored."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(line)
    return entries


@dataclass(frozen=True)
class DeidRules:
    folder: Path
    patterns: dict[str, Any]
    lists: dict[str, tuple[str, ...]]
    sha256: str  # of every file read, in a fixed order
    extra_deny_usernames: tuple[str, ...] = field(default=())

    def words(self, name: str) -> tuple[str, ...]:
        return self.lists.get(name, ())


@lru_cache(maxsize=8)
def load_rules(folder: str | None = None) -> DeidRules:
    path = Path(folder) if folder else rules_root() / "deid"
    patterns_file = path / "patterns.yaml"
    if not patterns_file.exists():
        raise PostkitError("de-identification rules not found", path=patterns_file,
                           fix="reinstall postkit, or point --rules at a folder holding patterns.yaml")
    digest = hashlib.sha256()
    try:
        text = patterns_file.read_text(encoding="utf-8")
        patterns = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PostkitError(f"invalid YAML ({exc})".replace("\n", " "), path=patterns_file) from None
    digest.update(b"patterns.yaml\0" + text.encode())
    lists = {}
    for name in WORD_LISTS:
        entries = read_word_list(path / f"{name}.txt")
        lists[name] = tuple(entries)
        digest.update(f"{name}.txt\0".encode() + "\n".join(entries).encode())
    _check_patterns(patterns, patterns_file)
    return DeidRules(path, patterns, lists, digest.hexdigest())


def _check_patterns(patterns: Any, path: Path) -> None:
    if not isinstance(patterns, dict) or not isinstance(patterns.get("recognizers"), list):
        raise PostkitError("expected a mapping with a 'recognizers' list", path=path)
    for index, recognizer in enumerate(patterns["recognizers"], start=1):
        for key in ("name", "entity", "patterns"):
            if key not in recognizer:
                raise PostkitError(f"recognizer {index} has no '{key}'", path=path,
                                   fix="each recognizer needs name, entity and patterns")
