"""Locale packs (rules/deid/locales/): AU and US phone numbers, postcodes/ZIP codes and national ids.

Every number here is fictitious: ACMA's fictional ranges (0491 570 156–159, 0491 570 110,
(02)/(03)/(07)/(08) 5550 xxxx, 1300/1800 975 707–711, 1800 160 401), the US 555-0100–0199
range, and Medicare, tax file and Social Security numbers built here to pass (or fail)
their checks. Each identifier is checked with its locale on and off; decoys (years,
prices, bare 4/5-digit numbers, helplines) must stay untouched with every locale on.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.deid.locale_checks import au_phone, medicare_checksum, ssn_valid, tfn_checksum, us_phone
from postkit.deid.rules import DEFAULT_LOCALES, available_locales, choose_locales, load_rules, rules_root
from postkit.errors import PostkitError
from postkit.io import read_table

# --------------------------------------------------------------------------- fictitious numbers


def medicare(body: str, issue: str = "1", irn: str = "") -> str:
    """A Medicare number with a correct check digit, printed as on the card (4-5-1)."""
    digits = body.replace(" ", "")
    check = sum(int(d) * w for d, w in zip(digits, (1, 3, 7, 9, 1, 3, 7, 9))) % 10
    number = digits + str(check) + issue
    return f"{number[:4]} {number[4:9]} {number[9]}" + (f" {irn}" if irn else "")


def tfn(body: str) -> str:
    """A nine-digit tax file number: the last digit solved so the weighted sum is a multiple of 11."""
    weights = (1, 4, 3, 7, 5, 8, 6, 9, 10)
    partial = sum(int(d) * w for d, w in zip(body, weights))
    last = (-partial * 10) % 11  # 10 is its own inverse modulo 11
    assert last < 10, "choose another body"
    number = body + str(last)
    return f"{number[:3]} {number[3:6]} {number[6:]}"


MEDICARE = medicare("2953 1748")
# the same card with its check digit off by one: a typo, still someone's number after the cue
MEDICARE_TYPO = MEDICARE[:9] + str((int(MEDICARE[9]) + 1) % 10) + MEDICARE[10:]
MEDICARE_IRN = medicare("3172 6405", issue="2", irn="3")
TFN = tfn("86421357")
SSN = "412-34-5678"


def test_constructed_numbers_pass_their_checks_and_near_misses_fail():
    assert medicare_checksum(MEDICARE) and medicare_checksum(MEDICARE_IRN)
    assert not medicare_checksum(MEDICARE_TYPO)
    assert not medicare_checksum("7" + MEDICARE[1:])  # first digit must be 2–6
    assert not medicare_checksum(MEDICARE + " 0")  # individual reference 0 is not issued
    assert tfn_checksum(TFN) and tfn_checksum("123 456 782")
    assert not tfn_checksum(TFN[:-1] + str((int(TFN[-1]) + 1) % 10))
    assert not tfn_checksum("250 000 000")  # a round amount passes the sum but is no TFN
    old = "1234567" + str(-sum(int(d) * w for d, w in zip("1234567", (10, 7, 8, 4, 6, 3, 5))) % 11)
    assert len(old) == 8 and tfn_checksum(old)  # an old 8-digit TFN
    assert not tfn_checksum(old[:-1] + str((int(old[-1]) + 1) % 10))
    assert ssn_valid(SSN) and ssn_valid("412 34 5678")


@pytest.mark.parametrize("number", ["000-12-3456", "666-12-3456", "900-12-3456", "987-65-4321",
                                    "234-00-7012", "234-56-0000", "078-05-1120", "219-09-9999"])
def test_ssn_ranges_the_ssa_never_issues_are_refused(number):
    assert not ssn_valid(number)


@pytest.mark.parametrize("number, valid", [
    ("0491 570 156", True), ("+61 491 570 159", True), ("+61 (0)491 570 110", True),
    ("(02) 5550 1234", True), ("08 5550 9876", True), ("1300 975 707", True), ("1800 160 401", True),
    ("0591 570 156", False), ("0491 570 15", False), ("0400 000 000", False),
])
def test_au_phone_shape(number, valid):
    assert au_phone(number) is valid


@pytest.mark.parametrize("number, valid", [
    ("(212) 555-0143", True), ("312-555-0199", True), ("+1 415 555 0100", True), ("1-646-555-0123", True),
    ("(112) 555-0143", False), ("(212) 155-0143", False), ("(411) 555-0143", False), ("555-0143", False),
])
def test_us_phone_shape(number, valid):
    assert us_phone(number) is valid


# --------------------------------------------------------------------------- choosing and loading


def test_packs_shipped_and_uk_is_the_default():
    assert available_locales() == ("au", "uk", "us")
    assert DEFAULT_LOCALES == ("uk",)
    assert load_rules().locales == ("uk",)


def test_choice_is_case_and_order_insensitive_and_hashed():
    assert choose_locales(["US", " uk", "us"]) == ("uk", "us")
    assert load_rules(None, ["us", "uk"]).sha256 == load_rules(None, ["uk", "us"]).sha256
    choices = (["uk"], ["au"], ["us"], ["uk", "au"], ["au", "uk", "us"])
    hashes = {load_rules(None, chosen).sha256 for chosen in choices}
    assert len(hashes) == 5


@pytest.mark.parametrize("chosen", [["fr"], ["uk", "nz"], [], ["", " "]])
def test_unknown_or_empty_locale_is_a_clear_error(chosen):
    with pytest.raises(PostkitError) as caught:
        load_rules(None, chosen)
    assert "au, uk, us" in str(caught.value)


def test_a_string_instead_of_a_list_is_refused():
    with pytest.raises(PostkitError, match="list"):
        choose_locales("uk")


def _names(rules, section="recognizers"):
    return {spec["name"] for spec in rules.patterns[section]}


def test_packs_merge_into_patterns_and_uk_rules_leave_with_uk():
    uk_only, au_only = load_rules(None, ["uk"]), load_rules(None, ["au"])
    every = load_rules(None, ["au", "uk", "us"])
    assert {"uk_phone", "nhs_number", "ni_number", "uk_postcode"} <= _names(uk_only)
    assert not {"uk_phone", "nhs_number", "ni_number", "uk_postcode"} & _names(au_only)
    assert "outward_postcode_after_cue" not in _names(au_only, "cued_patterns")
    assert {"au_phone", "au_medicare", "au_tfn"} <= _names(au_only) and "us_phone" not in _names(au_only)
    assert {"au_phone", "us_phone", "us_ssn", "uk_phone"} <= _names(every)
    assert {"email", "url", "date_exact"} <= _names(au_only)  # what belongs to no country stays
    regexes = [item["regex"] for spec in every.patterns["recognizers"] for item in spec["patterns"]]
    regexes += [spec["regex"] for spec in every.patterns["cued_patterns"]]
    assert not [r for r in regexes if "{HELPLINES}" in r]
    # helplines are never identifiers, whichever locales are chosen
    assert {"1800 55 1800", "0477 13 11 14", "1-866-488-7386"} <= set(uk_only.words("allow_services"))


def test_every_name_a_pack_owns_exists_in_patterns_yaml():
    """Guards the hand-over: renaming a UK recognizer in patterns.yaml must update uk.yaml too."""
    import yaml

    folder = rules_root() / "deid"
    base = yaml.safe_load((folder / "patterns.yaml").read_text(encoding="utf-8"))
    for code in available_locales():
        pack = yaml.safe_load((folder / "locales" / f"{code}.yaml").read_text(encoding="utf-8"))
        for section, names in (pack.get("owns") or {}).items():
            assert set(names) <= {spec["name"] for spec in base[section]}, (code, section)


def _copy_rules(tmp_path: Path) -> Path:
    folder = tmp_path / "deid"
    shutil.copytree(rules_root() / "deid", folder)
    return folder


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("entity: ID_NUMBER", "entity: ID_NUMBERS", 1), "unknown entity type"),
    (lambda t: t.replace("validator: medicare_checksum", "validator: medicare", 1), "unknown validator"),
    (lambda t: t + "\nextra: 1\n", "unknown key 'extra'"),
    (lambda t: t.replace("locale: au", "locale: nz", 1), "'locale' must be 'au'"),
    (lambda t: t.replace("name: au_tfn\n", "name: au_medicare\n", 1), "used twice"),
    (lambda t: t.replace("regex: '(?<![\\w+\\-.(]){HELPLINES}\\(?0", "regex: '((?<![\\w+\\-.(]){HELPLINES}\\(?0",
                         1), "invalid regex"),
])
def test_a_broken_pack_names_its_file(tmp_path, edit, message):
    folder = _copy_rules(tmp_path)
    pack = folder / "locales" / "au.yaml"
    text = pack.read_text(encoding="utf-8")
    changed = edit(text)
    assert changed != text
    pack.write_text(changed, encoding="utf-8")
    with pytest.raises(PostkitError) as caught:
        load_rules(str(folder), ["au"])
    assert message in str(caught.value) and "au.yaml" in str(caught.value)


def test_a_rules_folder_without_packs_says_what_to_do(tmp_path):
    folder = _copy_rules(tmp_path)
    shutil.rmtree(folder / "locales")
    with pytest.raises(PostkitError, match="no locale packs"):
        load_rules(str(folder))


# --------------------------------------------------------------------------- the engine, locales on and off

TYPES = ("PHONE", "POSTCODE", "ID_NUMBER", "NHS_NUMBER", "NI_NUMBER")


@pytest.fixture(scope="module")
def engines():
    from postkit.deid.engine import DeidEngine
    from postkit.deid.model import load_model

    model = load_model(None)
    return {code: DeidEngine(loaded_model=model, entities=TYPES, locales=code.split("+"))
            for code in ("uk", "au", "us", "au+uk+us")}


def covering(engine, text: str, target: str) -> set[str]:
    start = text.index(target)
    end = start + len(target)
    return {f.entity_type for f in engine.analyze([text])[0] if f.start <= start and end <= f.end}


def flagged(engine, text: str) -> list[tuple[str, str]]:
    return [(text[f.start:f.end], f.entity_type) for f in engine.analyze([text])[0]]


AU_IDENTIFIERS = [
    ("text me on 0491 570 156 tonight", "0491 570 156", "PHONE"),
    ("my new mobile is 0491570158", "0491570158", "PHONE"),
    ("call +61 491 570 157 if you're in Perth", "+61 491 570 157", "PHONE"),
    ("or +61 (0)491 570 110 on weekends", "+61 (0)491 570 110", "PHONE"),
    ("the clinic is on (02) 5550 1234", "(02) 5550 1234", "PHONE"),
    ("ring 07 5550 4321 after five", "07 5550 4321", "PHONE"),
    ("our practice line is 1300 975 708", "1300 975 708", "PHONE"),
    ("I'm in Parramatta NSW 2150 now", "2150", "POSTCODE"),
    ("we moved to Sydney 2000 last spring", "2000", "POSTCODE"),
    ("send it to Fitzroy VIC 3065", "3065", "POSTCODE"),
    ("postcode 3000 if you need it", "3000", "POSTCODE"),
    ("it's Hobart, 7000", "7000", "POSTCODE"),
    (f"my medicare number is {MEDICARE}", MEDICARE, "ID_NUMBER"),
    (f"the card says {MEDICARE_IRN} on it", MEDICARE_IRN, "ID_NUMBER"),
    (f"found card {MEDICARE.replace(' ', '')} in the drawer", MEDICARE.replace(" ", ""), "ID_NUMBER"),
    (f"medicare no: {MEDICARE_TYPO}", MEDICARE_TYPO, "ID_NUMBER"),  # after the cue, even mistyped
    (f"they asked for my {TFN} again", TFN, "ID_NUMBER"),
    ("my TFN is 123 456 78", "123 456 78", "ID_NUMBER"),
    ("driver licence number AB1234 expired", "AB1234", "ID_NUMBER"),
]

US_IDENTIFIERS = [
    ("call me at (212) 555-0143 tonight", "(212) 555-0143", "PHONE"),
    ("or 312-555-0199 after six", "312-555-0199", "PHONE"),
    ("my cell 415.555.0100", "415.555.0100", "PHONE"),
    ("+1 646 555 0123 is my work line", "+1 646 555 0123", "PHONE"),
    ("text me at 2125550177", "2125550177", "PHONE"),
    ("we live in Plano, TX 75024 now", "75024", "POSTCODE"),
    ("ship it to NY 10001-1234 please", "10001-1234", "POSTCODE"),
    ("zip code is 60601", "60601", "POSTCODE"),
    ("it's Chicago 60614 if you must know", "60614", "POSTCODE"),
    (f"my SSN is {SSN}", SSN, "ID_NUMBER"),
    ("they printed 412 34 5678 on the form", "412 34 5678", "ID_NUMBER"),
    ("social security number: 412345678", "412345678", "ID_NUMBER"),
    ("ssn 900-12-3456 was typed wrong", "900-12-3456", "ID_NUMBER"),  # after the cue, valid or not
]

UK_IDENTIFIERS = [
    ("text me on 07700 900123 any time", "07700 900123", "PHONE"),
    ("my NHS number is 943 476 5919", "943 476 5919", "NHS_NUMBER"),
    ("I live at M1 1AE now", "M1 1AE", "POSTCODE"),
]


@pytest.mark.slow
@pytest.mark.parametrize("text, target, entity", AU_IDENTIFIERS)
def test_au_identifiers_found_only_with_au(engines, text, target, entity):
    assert entity in covering(engines["au"], text, target)
    assert entity in covering(engines["au+uk+us"], text, target)
    assert not covering(engines["us"], text, target)


@pytest.mark.slow
@pytest.mark.parametrize("text, target, entity", US_IDENTIFIERS)
def test_us_identifiers_found_only_with_us(engines, text, target, entity):
    assert entity in covering(engines["us"], text, target)
    assert entity in covering(engines["au+uk+us"], text, target)
    assert not covering(engines["au"], text, target)
    assert not covering(engines["uk"], text, target)


@pytest.mark.slow
@pytest.mark.parametrize("text, target, entity", UK_IDENTIFIERS)
def test_uk_rules_run_only_with_uk(engines, text, target, entity):
    assert entity in covering(engines["uk"], text, target)
    assert entity in covering(engines["au+uk+us"], text, target)
    # (a 3-3-4 NHS number is also shaped like a US phone number: only the UK type goes)
    assert entity not in covering(engines["au"], text, target) | covering(engines["us"], text, target)


DECOYS = [
    "I was born in 1987, moved in 2004 and again in 2019",
    "It cost $1300 and then 1800 more, about 2000 in total",
    "I walked 10000 steps and 75001 people watched the stream",
    "order 12345, ref 123456, and 987654321 views",
    "Call Lifeline on 13 11 14 or text 0477 13 11 14",
    "Beyond Blue 1300 22 4636 (or 1300 224 636) and Kids Helpline 1800 55 1800",
    "1800RESPECT is 1800 737 732 and MensLine 1300 78 99 78",
    "call 988, or 911, or the old 1-800-273-8255 line, (800) 273-8255 or +1 800 273 8255",
    "the Trevor Project 1-866-488-7386 and SAMHSA 1-800-662-4357",
    "the Sydney 2000 Olympics and the NSW 2019-20 bushfires",
    "we went to Melbourne 2019 for the tennis",
    "it was 250 000 000 dollars over budget",
    "ISBN 978-3-16-148410-0, version 10.2.3",
    "the Woolworth card number 078-05-1120 was printed everywhere",
    "invalid: 000-12-3456, 666-12-3456, 912-34-5678, 234-00-7012, 234-56-0000",
    "between 9:30 and 10:45 I took 50mg",
    "GAVE ME 50000 BUCKS and my student ID 12345",
    "my licence is valid and my driving licence took 2 years",
    "the 2150 bus and the 3000 club",
]


@pytest.mark.slow
@pytest.mark.parametrize("text", DECOYS)
def test_decoys_stay_with_every_locale(engines, text):
    for engine in engines.values():
        assert flagged(engine, text) == []


@pytest.mark.slow
def test_id_numbers_are_replaced_by_every_operator(engines):
    from postkit.deid.operators import Replacer

    text = f"my SSN is {SSN} and medicare {MEDICARE}"
    findings = engines["au+uk+us"].analyze([text])[0]
    tagged = Replacer("tag", b"k" * 32).apply(text, findings, "post:1")
    assert tagged == "my SSN is [ID_NUMBER] and medicare [ID_NUMBER]"
    for operator in ("hash", "surrogate"):
        replaced = Replacer(operator, b"k" * 32).apply(text, findings, "post:1")
        assert SSN not in replaced and MEDICARE not in replaced


# --------------------------------------------------------------------------- CLI and study


def _posts(tmp_path: Path) -> Path:
    import pandas as pd

    path = tmp_path / "posts.csv"
    pd.DataFrame({"post_id": ["a1", "a2"],
                  "text": ["text me on 0491 570 156, I'm in Parramatta NSW 2150",
                           f"call (212) 555-0143; my SSN is {SSN}"]}).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_cli_locale_option(tmp_path):
    source = _posts(tmp_path)
    out, spans = tmp_path / "out.csv", tmp_path / "spans.jsonl"
    result = CliRunner().invoke(main, ["deid", str(source), "--output", str(out), "--spans-out", str(spans),
                                       "--processes", "1", "--locale", "US", "--locale", "au"])
    assert result.exit_code == 0, result.output
    assert "Locales: au, us" in result.output
    texts = read_table(out)["text"].tolist()
    assert texts[0].startswith("text me on [PHONE], I'm in ") and texts[0].endswith(" NSW [POSTCODE]")
    assert texts[1] == "call [PHONE]; my SSN is [ID_NUMBER]"
    types = {s["entity_type"] for line in spans.read_text().splitlines() for s in json.loads(line)["spans"]}
    assert {"PHONE", "POSTCODE", "ID_NUMBER"} <= types


def test_cli_unknown_locale_lists_the_available_ones(tmp_path):
    result = CliRunner().invoke(main, ["deid", str(tmp_path / "x.csv"), "--output", str(tmp_path / "o.csv"),
                                       "--locale", "uk", "--locale", "fr"])
    assert result.exit_code == 2
    assert "unknown locale 'fr'" in result.output and "au, uk, us" in result.output
    assert not (tmp_path / "o.csv").exists()


STUDY = """\
[study]
name = "locales"
output = "run"
format = "csv"

[inputs]
posts = "posts.csv"

[pipeline]
stages = ["deid"]

[deid]
processes = 1
{locales}
"""


@pytest.mark.slow
def test_study_locales_reach_the_run_and_the_manifest(tmp_path):
    _posts(tmp_path)
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(locales='locales = ["us", "uk"]'))
    result = CliRunner().invoke(main, ["run", str(study), "--output", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "Locales: uk, us" in result.output
    [stage] = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert stage["locales"] == ["uk", "us"] and stage["counts"]["locales"] == ["uk", "us"]
    assert "ID_NUMBER" in stage["counts"]["entities"]
    texts = read_table(tmp_path / "run" / "deid" / "posts.csv")["text"].tolist()
    assert texts[1] == "call [PHONE]; my SSN is [ID_NUMBER]"
    assert "2150" in texts[0]  # no AU pack: a postcode after NSW is not known


@pytest.mark.parametrize("line, message", [
    ('locales = ["uk", "xx"]', "unknown locale 'xx'"),
    ('locales = "au"', "must be a list"),
    ("locales = []", "no locale chosen"),
])
def test_study_with_a_bad_locale_names_the_study_file(tmp_path, line, message):
    _posts(tmp_path)
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(locales=line))
    result = CliRunner().invoke(main, ["run", str(study), "--output", str(tmp_path / "run")])
    assert result.exit_code != 0
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert message in output and "study.toml" in output
    assert not (tmp_path / "run").exists()
