"""The CMO codebook: the shipped file is valid and complete; every mistake is located."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from postkit.coding.codebook import (
    KINDS,
    Codebook,
    load_codebook,
    parse_codebook,
    render_codebook,
)
from postkit.errors import PostkitError

AREAS = {"self_efficacy", "understanding_acceptance", "helping_others", "catharsis_sense_making"}


@pytest.fixture(scope="module")
def codebook() -> Codebook:
    return load_codebook()


@pytest.fixture(scope="module")
def raw(codebook: Codebook) -> dict:
    return codebook.to_dict()


def _write(tmp_path: Path, data: dict) -> Path:
    data = dict(data)
    data.pop("version_hash", None)
    path = tmp_path / "cb.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _error(tmp_path: Path, data: dict) -> PostkitError:
    with pytest.raises(PostkitError) as info:
        load_codebook(_write(tmp_path, data))
    return info.value


# ---------------------------------------------------------------- the shipped codebook

def test_shipped_codebook_loads(codebook: Codebook) -> None:
    assert codebook.version and codebook.name
    assert {a.id for a in codebook.areas} == AREAS
    assert sum(1 for _ in codebook.codes()) >= 40


def test_every_area_has_both_polarities(codebook: Codebook) -> None:
    for area in codebook.areas:
        assert {c.polarity for c in area.configurations} == {"positive", "negative"}, area.id


def test_initial_cmos_present(codebook: Codebook) -> None:
    for cmo in ("CMO1", "CMO2", "CMO3", "CMO4", "CMO5"):
        assert codebook.configuration(cmo).codes


def test_every_kind_appears(codebook: Codebook) -> None:
    assert {code.kind for _, _, code in codebook.codes()} == set(KINDS)


def test_ids_unique_and_cues_present(codebook: Codebook) -> None:
    ids = [a.id for a in codebook.areas]
    ids += [c.id for a in codebook.areas for c in a.configurations]
    ids += [code.id for _, _, code in codebook.codes()]
    assert len(ids) == len(set(ids))
    for _, _, code in codebook.codes():
        assert len(code.cues.phrases) + len(code.cues.patterns) >= 3, code.id
        assert all(p == p.lower() for p in code.cues.phrases)


def test_exclude_cross_references_exist(codebook: Codebook) -> None:
    for _, _, code in codebook.codes():
        for ref in re.findall(r"\b[A-Z]{2}-C\d+\b", code.exclude):
            assert codebook.code(ref).id == ref


def test_code_lookup(codebook: Codebook) -> None:
    area, conf, first = next(codebook.codes())
    assert codebook.code(first.id) is first
    assert first.area_id == area.id and first.configuration_id == conf.id
    with pytest.raises(PostkitError, match="unknown code id"):
        codebook.code("ZZ-C999")


def test_version_hash_stable_and_content_sensitive(codebook: Codebook, raw: dict, tmp_path: Path) -> None:
    assert load_codebook().version_hash == codebook.version_hash
    # Same content, different layout/comments: same hash.
    assert load_codebook(_write(tmp_path, raw)).version_hash == codebook.version_hash
    changed = yaml.safe_load(yaml.safe_dump(raw))
    changed.pop("version_hash")
    changed["areas"][0]["configurations"][0]["codes"][0]["cues"]["phrases"].append("a new cue")
    assert load_codebook(_write(tmp_path, changed)).version_hash != codebook.version_hash


# ---------------------------------------------------------------- validation errors

def _copy(raw: dict) -> dict:
    data = yaml.safe_load(yaml.safe_dump(raw))
    data.pop("version_hash", None)
    return data


def test_missing_field(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    code = data["areas"][1]["configurations"][0]["codes"][3]
    del code["definition"]
    err = _error(tmp_path, data)
    assert "areas[1].configurations[0].codes[3]" in str(err)
    assert code["id"] in str(err) and "definition" in str(err)


def test_bad_kind(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    data["areas"][0]["configurations"][1]["codes"][0]["kind"] = "mechanism"
    err = _error(tmp_path, data)
    assert "areas[0].configurations[1].codes[0]" in str(err) and "unknown kind 'mechanism'" in str(err)


def test_bad_polarity(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    data["areas"][2]["configurations"][0]["polarity"] = "neutral"  # neutral is for codes only
    err = _error(tmp_path, data)
    assert "areas[2].configurations[0]" in str(err) and "unknown polarity 'neutral'" in str(err)


def test_bad_negation(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    data["areas"][0]["configurations"][0]["codes"][0]["cues"]["negation"] = "invert"
    assert "unknown negation 'invert'" in str(_error(tmp_path, data))


def test_duplicate_id(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    first = data["areas"][0]["configurations"][0]["codes"][0]["id"]
    data["areas"][3]["configurations"][0]["codes"][1]["id"] = first
    err = _error(tmp_path, data)
    assert "areas[3].configurations[0].codes[1]" in str(err)
    assert f"duplicate id '{first}'" in str(err) and "areas[0].configurations[0].codes[0]" in str(err)


def test_empty_cues(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    data["areas"][0]["configurations"][0]["codes"][2]["cues"] = {"phrases": [], "negation": "flip"}
    err = _error(tmp_path, data)
    assert "areas[0].configurations[0].codes[2]" in str(err) and "empty cue lists" in str(err)


def test_bad_matcher_pattern(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    data["areas"][1]["configurations"][1]["codes"][0]["cues"]["patterns"] = [[{"LEMMA": "reply", "OP": "sometimes"}]]
    err = _error(tmp_path, data)
    assert "areas[1].configurations[1].codes[0]" in str(err)
    assert "cues.patterns[0]: invalid spaCy Matcher pattern" in str(err)


def test_every_problem_listed(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    data["areas"][0]["configurations"][0]["codes"][0]["kind"] = "bad"
    data["areas"][3]["configurations"][0]["codes"][0]["polarity"] = "bad"
    err = _error(tmp_path, data)
    assert len(err.details) == 2 and "1 more problem" in str(err)
    assert err.path and err.path.endswith("cb.yaml") and err.fix


def test_bad_yaml_line_number(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text('version: "1.0"\nname: x\nareas:\n  - id: a\n   name: misindented\n', encoding="utf-8")
    with pytest.raises(PostkitError) as info:
        load_codebook(path)
    message = str(info.value)
    assert "invalid YAML at line 5" in message and "\n" not in message
    assert "broken.yaml" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PostkitError, match="codebook not found"):
        load_codebook(tmp_path / "nope.yaml")


def test_unknown_field_caught() -> None:
    text = Path(load_codebook().path).read_text(encoding="utf-8").replace("    include:", "    includes:", 1)
    with pytest.raises(PostkitError) as info:
        parse_codebook(text)
    assert any("unknown field 'includes'" in line for line in info.value.details)


# ---------------------------------------------------------------- area and polarity lexicons

def test_shipped_lexicons(codebook: Codebook) -> None:
    for area in codebook.areas:
        assert area.lexicon is not None and area.lexicon.phrases, area.id
        for polarity, code_id in area.lexicon.report_as.items():
            code = codebook.code(code_id)
            assert code.area_id == area.id and code.polarity == polarity
    assert codebook.polarity_lexicon is not None
    assert codebook.polarity_lexicon.positive.phrases and codebook.polarity_lexicon.negative.phrases


def test_lexicon_report_as_checked(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    other_area_code = data["areas"][1]["configurations"][0]["codes"][0]["id"]
    data["areas"][0]["lexicon"]["report_as"]["positive"] = other_area_code
    negative_code = next(c["id"] for conf in data["areas"][0]["configurations"] for c in conf["codes"]
                         if c["polarity"] == "negative")
    data["areas"][2]["lexicon"]["report_as"] = {"positive": data["areas"][2]["lexicon"]["report_as"]["positive"]}
    data["areas"][3]["lexicon"]["cue"] = ["typo"]
    err = _error(tmp_path, data)
    problems = "\n".join(err.details)
    assert f"areas[0] (self_efficacy).lexicon.report_as.positive: '{other_area_code}' is not a code of this area" \
        in problems
    assert "areas[2] (helping_others).lexicon.report_as: must map positive and negative" in problems
    assert "areas[3] (catharsis_sense_making).lexicon: unknown field 'cue'" in problems
    data = _copy(raw)
    data["areas"][0]["lexicon"]["report_as"]["positive"] = negative_code
    assert "has polarity 'negative', not 'positive'" in str(_error(tmp_path, data))


def test_lexicon_cue_lists_checked(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    data["areas"][1]["lexicon"]["phrases"].append("Reply")
    data["areas"][1]["lexicon"]["patterns"] = [[{"LEMMA": "reply", "OP": "often"}]]
    data["polarity_lexicon"]["negative"]["phrases"] = []
    data["polarity_lexicon"]["negative"].pop("patterns", None)
    data["polarity_lexicon"]["neutral"] = {"phrases": ["ok"]}
    err = _error(tmp_path, data)
    problems = "\n".join(err.details)
    assert "'Reply' must be lowercase" in problems
    assert "lexicon.patterns[0]: invalid spaCy Matcher pattern" in problems
    assert "polarity_lexicon.negative: empty cue lists" in problems
    assert "polarity_lexicon: unknown field 'neutral'" in problems


def test_lexicons_are_optional(raw: dict, tmp_path: Path) -> None:
    data = _copy(raw)
    data.pop("polarity_lexicon")
    for area in data["areas"]:
        area.pop("lexicon")
    codebook = load_codebook(_write(tmp_path, data))
    assert codebook.polarity_lexicon is None and all(a.lexicon is None for a in codebook.areas)


# ---------------------------------------------------------------- rendering

@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_render_contains_everything(codebook: Codebook, fmt: str) -> None:
    out = render_codebook(codebook, fmt=fmt)
    for area in codebook.areas:
        assert area.name in out
        for conf in area.configurations:
            assert conf.id in out
    for _, _, code in codebook.codes():
        assert code.id in out
    assert codebook.version_hash[:12] in out
    assert "lexicon" in out


def test_render_markdown_headings(codebook: Codebook) -> None:
    out = render_codebook(codebook, fmt="markdown")
    assert out.startswith("# ") and "\n## " in out and "\n### " in out


def test_render_bad_format(codebook: Codebook) -> None:
    with pytest.raises(PostkitError):
        render_codebook(codebook, fmt="html")
