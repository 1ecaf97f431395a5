"""The de-identification rules (rules/deid/): patterns, gazetteers and allow-lists as data.

Rules are found in the installed package (``postkit.rules``) or, when running from a
source checkout, in the repository's ``rules/`` folder. Everything loaded is hashed,
so an export can record exactly which rules made it.

Country-specific formats (phone numbers, postcodes, national ids) come in *locale packs*,
``deid/locales/<code>.yaml``: a study chooses its locales (default ``uk``) and the loader
merges the chosen packs into ``patterns.yaml``'s rules. A pack may also name entries of
``patterns.yaml`` it owns (``owns``); those are left out when the pack is not chosen.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..errors import PostkitError
from .learned_age import read_model_file

WORD_LISTS = (
    "first_names", "ambiguous_names", "surnames", "uk_places", "ambiguous_places", "employers",
    "org_suffixes", "street_suffixes", "allow_services", "allow_medications", "allow_words",
    "deny_usernames", "deny_names", "allow_medications_international", "allow_places", "allow_regions",
    "acronyms", "common_words",
)


#: Learned models stored as data beside the word lists: name -> file (see learned_age.py).
LEARNED_MODELS = {"age": "age_model.json"}

#: Locales used when a study chooses none.
DEFAULT_LOCALES: tuple[str, ...] = ("uk",)
_LOCALE_KEYS = {"locale", "description", "owns", "recognizers", "cued_patterns", "helplines"}


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
    locales: tuple[str, ...] = DEFAULT_LOCALES
    #: learned models stored as data (``age_model.json`` -> "age"), parsed; hashed like every rules file
    learned: dict[str, Any] = field(default_factory=dict)

    def words(self, name: str) -> tuple[str, ...]:
        return self.lists.get(name, ())


def available_locales(folder: str | Path | None = None) -> tuple[str, ...]:
    """The locale packs in ``deid/locales/`` (file names without ``.yaml``), sorted."""
    path = (Path(folder) if folder else rules_root() / "deid") / "locales"
    return tuple(sorted(p.stem for p in path.glob("*.yaml"))) if path.is_dir() else ()


def choose_locales(locales: Iterable[str] | None, folder: str | Path | None = None) -> tuple[str, ...]:
    """Chosen locale codes, lowercased, unique and sorted (so the order given changes nothing).

    ``None`` means the default (``uk``); an unknown or empty choice is an error naming
    the available packs.
    """
    if locales is None:
        chosen: tuple[str, ...] = DEFAULT_LOCALES
    elif isinstance(locales, str):
        raise PostkitError("locales must be a list of locale codes", fix='e.g. locales = ["uk", "au"]')
    else:
        chosen = tuple(sorted({str(code).strip().lower() for code in locales if str(code).strip()}))
    available = available_locales(folder)
    if not chosen:
        raise PostkitError("no locale chosen", fix=f"choose one or more of {', '.join(available) or 'uk'}")
    for code in chosen:
        if code not in available:
            shown = code if re.fullmatch(r"[a-z0-9_\-]{1,20}", code) else "(a value)"
            where = (Path(folder) if folder else rules_root() / "deid") / "locales"
            raise PostkitError(f"unknown locale '{shown}'",
                               fix=f"choose from {', '.join(available)}" if available
                               else f"no locale packs in {where}; copy rules/deid/locales/ there")
    return chosen


def load_rules(folder: str | None = None, locales: Iterable[str] | None = None) -> DeidRules:
    """The rules in ``folder`` (default: postkit's own) with the chosen locale packs merged in."""
    return _load_rules(folder, choose_locales(locales, folder))


@lru_cache(maxsize=8)
def _load_rules(folder: str | None, locales: tuple[str, ...]) -> DeidRules:
    path = Path(folder) if folder else rules_root() / "deid"
    patterns_file = path / "patterns.yaml"
    if not patterns_file.exists():
        raise PostkitError("de-identification rules not found", path=patterns_file,
                           fix="reinstall postkit, or point --rules at a folder holding patterns.yaml")
    digest = hashlib.sha256()
    text, patterns = _read_yaml(patterns_file)
    digest.update(b"patterns.yaml\0" + text.encode())
    lists = {}
    for name in WORD_LISTS:
        entries = read_word_list(path / f"{name}.txt")
        lists[name] = tuple(entries)
        digest.update(f"{name}.txt\0".encode() + "\n".join(entries).encode())
    _check_patterns(patterns, patterns_file)
    learned = {}
    for name, file_name in LEARNED_MODELS.items():
        model_file = path / file_name
        if model_file.exists():  # a missing model is refused by the engine that needs it (fail closed)
            digest.update(f"{file_name}\0".encode() + model_file.read_bytes())
            learned[name] = read_model_file(model_file)
    patterns, helplines = _merge_locales(path, patterns, locales, digest)
    # Helplines and crisis lines are services, never identifiers, whichever locales are chosen.
    lists["allow_services"] = lists["allow_services"] + helplines
    digest.update(b"locales\0" + ",".join(locales).encode())
    return DeidRules(path, patterns, lists, digest.hexdigest(), locales=locales, learned=learned)


def _read_yaml(path: Path) -> tuple[str, Any]:
    """The text (for the hash) and its data; libyaml's safe loader when present (10× faster start-up)."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise PostkitError(f"invalid YAML ({exc})".replace("\n", " "), path=path) from None


def _merge_locales(path: Path, base: dict[str, Any], locales: tuple[str, ...],
                   digest: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``patterns.yaml`` + the chosen packs' recognizers and cued patterns, minus what unchosen packs own.

    Returns the merged patterns and every pack's helplines. Every pack file is hashed: an
    unchosen one still decides what is left out and which helplines are spared.
    """
    patterns = copy.deepcopy(base)
    patterns.setdefault("cued_patterns", [])
    packs = {code: _read_locale(path / "locales" / f"{code}.yaml") for code in available_locales(path)}
    dropped = sorted({name for code, (_, pack) in packs.items() if code not in locales
                      for section in ("recognizers", "cued_patterns")
                      for name in (pack.get("owns") or {}).get(section, [])})
    for section in ("recognizers", "cued_patterns"):
        patterns[section] = [spec for spec in patterns[section] or [] if spec.get("name") not in dropped]
    helplines: list[str] = []
    for code, (text, pack) in packs.items():
        digest.update(f"locales/{code}.yaml\0".encode() + text.encode())
        helplines.extend(str(h) for h in pack.get("helplines") or [])
    not_helpline = _helpline_lookahead(helplines)
    names = {spec["name"] for section in ("recognizers", "cued_patterns") for spec in patterns[section]}
    for code in locales:
        locale_file = path / "locales" / f"{code}.yaml"
        pack = packs[code][1]
        for section in ("recognizers", "cued_patterns"):
            for spec in pack.get(section) or []:
                if spec["name"] in names:
                    raise PostkitError(f"the name '{spec['name']}' is used twice", path=locale_file,
                                       fix="give every recognizer and cued pattern a name of its own")
                names.add(spec["name"])
                spec = copy.deepcopy(spec)
                if section == "recognizers":
                    for item in spec["patterns"]:
                        item["regex"] = item["regex"].replace("{HELPLINES}", not_helpline)
                else:
                    spec["regex"] = spec["regex"].replace("{HELPLINES}", not_helpline)
                patterns[section].append(spec)
    return patterns, tuple(helplines)


def _helpline_lookahead(helplines: Iterable[str]) -> str:
    """A regex that refuses to start a match on a listed helpline, however its digits are spaced.

    "1300 22 4636", "1300224636" and "1300-224-636" are one number, and "+1 (800) 273-8255"
    is "1-800-273-8255". Numbers under six digits (988, 000) and ones written with letters
    ("1800RESPECT") are too short or too odd for a phone pattern; the allow-list has them.
    """
    numbers = set()
    for helpline in helplines:
        if re.search(r"[A-Za-z]", helpline):
            continue
        digits = re.sub(r"\D", "", helpline)
        if len(digits) >= 6:
            numbers.add(r"[\s\-.()]*".join(digits.removeprefix("1") if len(digits) == 11 else digits))
    if not numbers:
        return ""
    # An optional leading +1/1 (the North American country code) before any listed number.
    return r"(?![+(]?(?:1[\s\-.()]*)?(?:" + "|".join(sorted(numbers, key=len, reverse=True)) + r")(?!\d))"


def _read_locale(path: Path) -> tuple[str, dict[str, Any]]:
    text, pack = _read_yaml(path)
    if not isinstance(pack, dict):
        raise PostkitError("expected a mapping (locale, recognizers, cued_patterns, helplines, owns)",
                           path=path)
    unknown = sorted(set(pack) - _LOCALE_KEYS)
    if unknown:
        raise PostkitError(f"unknown key '{unknown[0]}'", path=path,
                           fix=f"known keys: {', '.join(sorted(_LOCALE_KEYS))}")
    if pack.get("locale") != path.stem:
        raise PostkitError(f"'locale' must be '{path.stem}', the file's name", path=path)
    _check_patterns({"recognizers": pack.get("recognizers") or []}, path)
    # Imported here: the engine imports this module (and has loaded both by the time it calls it).
    from .engine import ENTITY_TYPES
    from .recognizers import VALIDATORS

    for section in ("recognizers", "cued_patterns"):
        specs = pack.get(section) or []
        if not isinstance(specs, list):
            raise PostkitError(f"'{section}' must be a list", path=path)
        for index, spec in enumerate(specs, start=1):
            needed = ("name", "entity", "patterns" if section == "recognizers" else "regex")
            for key in needed:
                if not isinstance(spec, dict) or key not in spec:
                    raise PostkitError(f"{section} entry {index} has no '{key}'", path=path,
                                       fix=f"each entry needs {', '.join(needed)}")
            if spec["entity"] not in ENTITY_TYPES:
                raise PostkitError(f"{section} entry '{spec['name']}' has an unknown entity type", path=path,
                                   fix=f"use one of {', '.join(ENTITY_TYPES)}")
            if spec.get("validator") and spec["validator"] not in VALIDATORS:
                raise PostkitError(f"{section} entry '{spec['name']}' names an unknown validator", path=path,
                                   fix=f"use one of {', '.join(sorted(VALIDATORS))}")
            if section == "recognizers":
                regexes = [item.get("regex", "") for item in spec["patterns"]]
            else:
                regexes = [spec["regex"]]
            for regex in regexes:
                try:
                    re.compile(regex.replace("{HELPLINES}", ""))
                except re.error as exc:
                    raise PostkitError(f"{section} entry '{spec['name']}' has an invalid regex ({exc})",
                                       path=path) from None
    owns = pack.get("owns") or {}
    if not isinstance(owns, dict) or set(owns) - {"recognizers", "cued_patterns"}:
        raise PostkitError("'owns' must map recognizers/cued_patterns to lists of names in patterns.yaml",
                           path=path)
    return text, pack


def _check_patterns(patterns: Any, path: Path) -> None:
    if not isinstance(patterns, dict) or not isinstance(patterns.get("recognizers"), list):
        raise PostkitError("expected a mapping with a 'recognizers' list", path=path)
    for index, recognizer in enumerate(patterns["recognizers"], start=1):
        for key in ("name", "entity", "patterns"):
            if key not in recognizer:
                raise PostkitError(f"recognizer {index} has no '{key}'", path=path,
                                   fix="each recognizer needs name, entity and patterns")
