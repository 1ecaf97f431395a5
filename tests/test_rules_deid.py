"""The de-identification word lists in rules/deid/: format, sizes and the rules between files.

Fast: reads text files only (and spaCy's English stop-word list, which loads no model).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

import pytest

DEID = Path(__file__).resolve().parent.parent / "rules" / "deid"

LISTS = (
    "first_names", "ambiguous_names", "surnames", "uk_places", "ambiguous_places", "employers",
    "org_suffixes", "street_suffixes", "allow_services", "allow_medications", "allow_words",
    "deny_usernames", "deny_names", "allow_regions", "acronyms",
)
# Derived by scripts/build_deid_wordlists.py from a maintained source named in the header.
DERIVED = ("allow_medications_international", "allow_places", "common_words")
GAZETTEERS = ("first_names", "surnames", "uk_places", "employers")
ALLOW_LISTS = ("allow_services", "allow_medications", "allow_words", "allow_regions",
               "allow_medications_international", "allow_places")
PER_DEPLOYMENT = ("deny_usernames", "deny_names")


def sort_key(entry: str) -> tuple[str, str]:
    """Sorted ignoring case and accents (Áine sits with Aine), then as written."""
    base = "".join(c for c in unicodedata.normalize("NFKD", entry) if not unicodedata.combining(c))
    return base.casefold(), entry


@lru_cache(maxsize=None)
def raw_lines(name: str) -> tuple[str, ...]:
    text = (DEID / f"{name}.txt").read_bytes().decode("utf-8")  # strict: must be valid UTF-8
    assert "\r" not in text, f"{name}.txt: use \\n line endings"
    assert text.endswith("\n"), f"{name}.txt: must end with a newline"
    return tuple(text[:-1].split("\n"))


@lru_cache(maxsize=None)
def entries(name: str) -> tuple[str, ...]:
    return tuple(line for line in raw_lines(name) if not line.startswith("#"))


def folded(name: str) -> set[str]:
    return {e.casefold() for e in entries(name)}


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize("name", LISTS)
def test_file_exists_and_parses(name):
    lines = raw_lines(name)
    assert lines[0].startswith("#"), f"{name}.txt must open with a comment header"
    for number, line in enumerate(lines, start=1):
        if line.startswith("#"):
            assert line == line.rstrip(), f"{name}.txt:{number}: trailing whitespace"
            continue
        assert line, f"{name}.txt:{number}: empty line (use '#' for spacing)"
        assert line == line.strip(), f"{name}.txt:{number}: leading/trailing whitespace in {line!r}"
        assert "\t" not in line and "  " not in line, f"{name}.txt:{number}: stray whitespace in {line!r}"


@pytest.mark.parametrize("name", LISTS)
def test_header_says_what_how_and_licence(name):
    header = " ".join(line for line in raw_lines(name) if line.startswith("#"))
    assert f"{name}.txt" in header
    assert "How it is used" in header
    assert "MIT licence" in header
    if name not in PER_DEPLOYMENT:
        assert "general knowledge" in header


@pytest.mark.parametrize("name", LISTS)
def test_no_duplicates_ignoring_case(name):
    seen: dict[str, str] = {}
    for entry in entries(name):
        key = entry.casefold()
        assert key not in seen, f"{name}.txt: {entry!r} duplicates {seen[key]!r}"
        seen[key] = entry


@pytest.mark.parametrize("name", LISTS)
def test_sorted(name):
    items = list(entries(name))
    assert items == sorted(items, key=sort_key), f"{name}.txt is not sorted (ignoring case and accents)"


@pytest.mark.parametrize("name", PER_DEPLOYMENT)
def test_per_deployment_lists_ship_with_a_header_only(name):
    assert entries(name) == ()
    header = " ".join(raw_lines(name))
    assert "Per deployment" in header and "Format" in header


def test_readme_describes_every_file():
    readme = (DEID / "README.md").read_text(encoding="utf-8")
    for name in LISTS:
        assert f"`{name}.txt`" in readme, f"README.md does not describe {name}.txt"


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("name, minimum", [
    ("first_names", 1200), ("uk_places", 1000), ("employers", 200), ("allow_medications", 200),
    ("surnames", 500), ("ambiguous_names", 50), ("ambiguous_places", 20), ("allow_services", 100),
    ("allow_words", 100), ("org_suffixes", 30), ("street_suffixes", 30),
])
def test_minimum_sizes(name, minimum):
    assert len(entries(name)) >= minimum


# --------------------------------------------------------------------------- rules between files


@pytest.mark.parametrize("ambiguous, gazetteer", [
    ("ambiguous_names", "first_names"), ("ambiguous_places", "uk_places"),
])
def test_ambiguous_entries_are_in_their_gazetteer(ambiguous, gazetteer):
    missing = [e for e in entries(ambiguous) if e.casefold() not in folded(gazetteer)]
    assert not missing, f"in {ambiguous}.txt but not in {gazetteer}.txt: {missing}"


@pytest.mark.parametrize("ambiguous, gazetteer", [
    ("ambiguous_names", "first_names"), ("ambiguous_places", "uk_places"),
])
def test_stop_words_in_a_gazetteer_are_ambiguous(ambiguous, gazetteer):
    """A gazetteer entry that is an English stop word ("Will", "May") must need evidence."""
    from spacy.lang.en.stop_words import STOP_WORDS

    loose = [e for e in entries(gazetteer) if e.casefold() in STOP_WORDS and e.casefold() not in folded(ambiguous)]
    assert not loose, f"stop words in {gazetteer}.txt missing from {ambiguous}.txt: {loose}"


@pytest.mark.parametrize("word", [
    "Hope", "Will", "Mark", "May", "June", "April", "Grace", "Faith", "Joy", "Rose", "Jack",
    "Bill", "Pat", "Sue", "Ray", "Rob", "Bob", "Frank", "Don", "Guy", "Nick", "Summer", "Dawn",
    "Jade", "Amber", "Ruby", "Holly", "Ivy", "Lily", "Poppy", "Hazel", "Robin", "Jay", "Ana", "Mia",
])
def test_known_word_names_are_ambiguous(word):
    assert word.casefold() in folded("first_names")
    assert word.casefold() in folded("ambiguous_names")


@pytest.mark.parametrize("word", [
    "Bath", "Reading", "Sale", "Wells", "Street", "March", "Hope", "Deal", "Rugby", "Wool", "Ware",
    "Flint", "Mold", "Cheddar", "Bury", "Hull", "Derby", "Boston", "Nelson", "Washington",
])
def test_known_word_places_are_ambiguous(word):
    assert word.casefold() in folded("uk_places")
    assert word.casefold() in folded("ambiguous_places")


def test_carl_is_a_name_but_not_ambiguous():
    assert "carl" in folded("first_names") and "carl" not in folded("ambiguous_names")


@pytest.mark.parametrize("allow", ALLOW_LISTS)
@pytest.mark.parametrize("gazetteer", GAZETTEERS)
def test_allow_lists_never_shield_an_identifier(allow, gazetteer):
    """Allow-lists are matched ignoring case, so an entry equal to a name, place or employer
    would stop that identifier from ever being removed."""
    clash = sorted(folded(allow) & folded(gazetteer))
    assert not clash, f"in both {allow}.txt and {gazetteer}.txt: {clash}"


def test_no_allow_service_is_an_employer():
    clash = sorted(folded("allow_services") & folded("employers"))
    assert not clash


@pytest.mark.parametrize("other", ["first_names", "uk_places"])
def test_employers_do_not_relabel_names_or_places(other):
    clash = sorted(folded("employers") & folded(other))
    assert not clash, f"in both employers.txt and {other}.txt: {clash}"


@pytest.mark.parametrize("service", ["NHS", "NHS 111", "111", "999", "Samaritans", "116 123", "Shout",
                                     "85258", "Childline", "Mind", "GP", "A&E", "CAMHS", "crisis team",
                                     "Universal Credit", "PIP", "DWP", "CBT", "DBT"])
def test_key_services_are_allowed(service):
    assert service.casefold() in folded("allow_services")


@pytest.mark.parametrize("not_employer", ["NHS", "Mind", "Samaritans", "Shout", "Google", "Facebook"])
def test_services_and_platforms_are_not_employers(not_employer):
    assert not_employer.casefold() not in folded("employers")


@pytest.mark.parametrize("medicine", ["sertraline", "Lustral", "fluoxetine", "mirtazapine", "quetiapine",
                                      "lithium", "sodium valproate", "Elvanse", "co-codamol", "melatonin"])
def test_key_medications_are_allowed(medicine):
    assert medicine.casefold() in folded("allow_medications")


def test_month_names_that_are_given_names_are_not_allow_words():
    for month in ("April", "May", "June"):
        assert month.casefold() not in folded("allow_words")
        assert month.casefold() in folded("ambiguous_names")
    assert "january" in folded("allow_words") and "christmas" in folded("allow_words")


def test_street_and_org_suffixes_have_the_basics():
    for suffix in ("Road", "Rd", "Street", "St", "Avenue", "Ave", "Lane", "Close", "Drive", "Way", "Crescent",
                   "Mews"):
        assert suffix.casefold() in folded("street_suffixes")
    for suffix in ("School", "Academy", "College", "University", "Hospital", "Surgery", "Medical Centre",
                   "Council", "Church", "Mosque", "Gurdwara", "Ltd", "Group"):
        assert suffix.casefold() in folded("org_suffixes")


@pytest.mark.parametrize("name", DERIVED)
def test_derived_lists_name_source_licence_and_script(name):
    lines = raw_lines(name)
    header = " ".join(line for line in lines if line.startswith("#"))
    assert f"{name}.txt" in header and "How it is used" in header
    assert "Source:" in header and "Licence:" in header and "MIT licence" in header
    assert "scripts/build_deid_wordlists.py" in header
    items = list(entries(name))
    assert items == sorted(items, key=sort_key), f"{name}.txt is not sorted"
    assert len({e.casefold() for e in items}) == len(items), f"{name}.txt has duplicates"
    readme = (DEID / "README.md").read_text(encoding="utf-8")
    assert f"`{name}.txt`" in readme


@pytest.mark.parametrize("name, minimum", [
    ("allow_medications_international", 5000), ("allow_places", 300), ("common_words", 30000),
    ("acronyms", 300), ("allow_regions", 150),
])
def test_derived_and_new_list_sizes(name, minimum):
    assert len(entries(name)) >= minimum


@pytest.mark.parametrize("medicine", ["zoloft", "lexapro", "cymbalta", "endone", "seroquel", "wellbutrin",
                                      "vyvanse", "ozempic"])
def test_international_medicines_are_allowed(medicine):
    assert medicine in folded("allow_medications_international") | folded("allow_medications")


def test_acronyms_are_written_in_capitals():
    lower = [e for e in entries("acronyms") if e != e.upper()]
    assert not lower, f"acronyms.txt entries must be in capitals: {lower}"


@pytest.mark.parametrize("place", ["Queensland", "Texas", "Ontario", "Germany", "New South Wales"])
def test_countries_and_states_are_allowed_places(place):
    assert place.casefold() in folded("allow_places")


@pytest.mark.parametrize("city_or_name", ["new york", "washington", "georgia", "victoria"])
def test_cities_and_given_names_are_not_allowed_places(city_or_name):
    assert city_or_name not in folded("allow_places")


def test_engine_loads_every_list_with_the_same_entries():
    """postkit's loader reads the same entries as this test's parser."""
    from postkit.deid.rules import WORD_LISTS, read_word_list

    assert set(WORD_LISTS) == set(LISTS) | set(DERIVED)
    for name in LISTS + DERIVED:
        assert tuple(read_word_list(DEID / f"{name}.txt")) == entries(name)


# --------------------------------------------------------------------------- patterns.yaml


def _pattern_specs() -> list[dict]:
    import yaml

    patterns = yaml.safe_load((DEID / "patterns.yaml").read_text(encoding="utf-8"))
    specs = list(patterns.get("cued_patterns", []))
    for recognizer in patterns.get("recognizers", []):
        specs.extend(recognizer["patterns"])
    return specs


def test_every_placeholder_in_a_pattern_is_defined():
    """A ``{NAME}`` left in a regex would silently never match (or match the braces)."""
    import re

    from postkit.deid.recognizers import REGEX_FRAGMENTS

    known = set(REGEX_FRAGMENTS) | {"ORG_SUFFIXES", "STREET_SUFFIXES"}
    for spec in _pattern_specs():
        for key in ("regex", "not_before", "not_after"):
            for name in re.findall(r"\{([A-Z_]+)\}", spec.get(key, "")):
                assert name in known, f"{spec['name']}: unknown placeholder {{{name}}}"


def test_cued_patterns_compile_and_flag_a_value_group():
    import re

    from postkit.deid.recognizers import expand_fragments

    import yaml

    for spec in yaml.safe_load((DEID / "patterns.yaml").read_text(encoding="utf-8"))["cued_patterns"]:
        regex = re.compile(expand_fragments(spec["regex"]))
        assert any(g.startswith("value") for g in regex.groupindex), spec["name"]
        for key in ("not_before", "not_after"):
            if spec.get(key):
                re.compile(expand_fragments(spec[key]))


def test_greeting_words_for_everyone_are_not_names():
    import yaml

    cues = yaml.safe_load((DEID / "patterns.yaml").read_text(encoding="utf-8"))["gazetteers"]["handle_cues"]
    not_names = {str(w).lower() for w in cues["greeting_not_names"]}
    assert {"all", "everyone", "everybody", "guys", "folks", "there", "forum"} <= not_names
    assert not not_names & folded("first_names") - {"love", "sunshine", "honey", "babe"}
