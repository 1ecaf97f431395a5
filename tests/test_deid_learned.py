"""The learned age model (postkit/deid/learned_age.py, rules/deid/age_model.json).

Every sentence here was written for these tests (none is copied from a labelled set or a
real post): ages in forms the hand-written age rules do not list, and numbers that are
doses, money, durations, times and counts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from postkit.deid.learned_age import (FIXED_WORDS, AgeModel, build_vocabulary, candidates, fit,
                                      labelled_candidates, read_model_file)
from postkit.deid.rules import load_rules, rules_root
from postkit.errors import PostkitError

# (sentence, the age as the span should read)
FRESH_AGES = [
    ("I'm a 38 y.o. dad of two", "38 y.o."),
    ("She was barely 20 when she had me", "20"),
    ("Me? 57, retired teacher, widowed last year", "57"),
    ("my brother's only 16 and already drinking", "16"),
    ("Hi everyone, 29/F, long time lurker", "29"),
    ("I had my first child at nineteen and my second at twenty-one", "nineteen"),
    ("i'm turning 40 next month and i feel like a failure", "40"),
    ("Mum's 72 and lives alone which worries me", "72"),
    ("He's a 15-year-old boy and thinks he knows everything", "15-year-old"),
    ("When I hit 30 everything fell apart", "30"),
    ("I'm nearly 50 and still can't hold down a job", "50"),
    ("My wife (41) has just been diagnosed with MS", "41"),
    ("I'm 23, male, and I've never had a girlfriend", "23"),
    ("My son is six and has autism", "six"),
    ("Male, 35, first time posting here", "35"),
    ("I (32M) have no idea how to tell my parents", "32"),
    ("I'm 66 and my GP says it is just old age", "66"),
    ("I was 25 when I got my diagnosis", "25"),
    ("My partner is fifty-two and won't see a doctor", "fifty-two"),
    ("I'm a 19 yr old student and struggling", "19 yr old"),
    ("My baby girl is 8 weeks old and I can't bond with her", "8 weeks old"),
    ("I'm only 18 but I feel ancient", "18"),
    ("Started therapy at 27, best decision ever", "27"),
]

#: Of FRESH_AGES, the ones postkit's age rules missed when the model was trained.
RULES_MISSED = [
    "I'm a 38 y.o. dad of two",
    "She was barely 20 when she had me",
    "my brother's only 16 and already drinking",
    "Mum's 72 and lives alone which worries me",
    "When I hit 30 everything fell apart",
    "My son is six and has autism",
]

NOT_AGES = [
    "I'm on 20mg of citalopram and upping to 30 next week",
    "Paid £45 for a private session, 3 sessions so far",
    "Waited 18 weeks for a referral and then 6 more for the letter",
    "Took 2 paracetamol at 11pm and slept 9 hours straight",
    "Scored 21 on the PHQ-9, up from 15 last month",
    "There were 12 people in the group and 3 facilitators",
    "I lost 7 kg in two months without trying",
    "It's been 3 years since I drank, 1,100 days",
    "rated my mood 4 out of 10 today",
    "Page 37 of the workbook is the useful bit",
    "My shift is 7 till 3 tomorrow",
    "I've read it 5 times and still cry",
    "about 30 percent better than last year",
    "Room 14 on the second floor",
    "It took 45 minutes to get through on the phone",
    "I must have sent 20 emails to the council",
    "Top 10 tips for sleeping better",
    "My rent went up by 50 a month",
    "Season 2 episode 5 is where it gets good",
    "I have 3 kids and 2 dogs, so it is chaos",
    "Day 12 of no self harm",
    "You must be 18 or over to join this group",
    "She acts like a 5 year old when she doesn't get her way",
    "I walked 8 miles on Sunday for charity",
    "I've been on the waiting list for 14 months",
    "He was on 75mg venlafaxine for 6 months",
    "It's the 3rd time this year I've relapsed",
    "Charged 15 quid for a prescription",
    "We were 5 minutes late and they cancelled",
    "1 in 4 people will have a mental health problem",
    "I'd give it 8/10, open 24/7, 50/50 chance",
    "NHS 111 told me to go to A&E at 2:30",
]


@pytest.fixture(scope="module")
def model() -> AgeModel:
    rules = load_rules()
    return AgeModel(rules.learned["age"], rules.words("first_names"))


def _found(model: AgeModel, text: str) -> list[str]:
    return [text[start:end] for start, end, _ in model.find(text)]


# --------------------------------------------------------------------------- candidates and spans


@pytest.mark.parametrize("text, expected", [
    ("a 27 year old male", ["27 year old"]),
    ("[18 F] and 18F and (29F)", ["18", "18", "29"]),
    ("M24, f/31, 24yo, 9 months old", ["24", "31", "24yo", "9 months old"]),
    ("twenty-two, forty one, nineteen", ["twenty-two", "forty one", "nineteen"]),
    ("my 30th, 2.5 years old", ["2.5 years old"]),
])
def test_candidates_follow_the_span_conventions(text, expected):
    """Attached units are inside the span, sex letters outside (tests/data/README.md)."""
    assert [text[c.span_start:c.span_end] for c in candidates(text)] == expected


@pytest.mark.parametrize("text", ["50mg", "2am", "24/7", "£50", "1.5", "2:30", "1,000", "2019", "NHS 111",
                                  "one of my friends", "someone", "often", "B29", "a 30-something", "40 ish",
                                  "at 12 pm", "3rd in the race"])
def test_numbers_glued_to_units_ratios_times_money_are_not_candidates(text):
    assert candidates(text) == []


# --------------------------------------------------------------------------- the packaged model


@pytest.mark.parametrize("text, age", FRESH_AGES)
def test_the_model_finds_fresh_age_forms(model, text, age):
    start = text.index(age)
    assert any(s <= start and start + len(age) <= e for s, e, _ in model.find(text)), _found(model, text)


@pytest.mark.parametrize("text", NOT_AGES)
def test_the_model_leaves_doses_money_durations_times_and_counts(model, text):
    assert _found(model, text) == []


@pytest.mark.parametrize("text", ["The train leaves at 12 and gets in at 14:30", "It was 31 degrees on the beach"])
def test_clock_times_and_temperatures_are_vetoed(model, text):
    assert any(model.vetoed(text, c) for c in candidates(text))
    assert _found(model, text) == []


def test_the_model_skips_numbers_another_finding_holds(model):
    text = "I'm 34 and my son is 9"
    assert _found(model, text) == ["34"]  # "9": the rules' one-digit age, say; "34" is free
    assert [text[s:e] for s, e, _ in model.find(text, taken=[(21, 22)])] == ["34"]
    assert model.find(text, taken=[(4, 6)]) == []


def test_the_model_file_loads_and_is_in_the_rules_hash(tmp_path):
    same, changed = tmp_path / "same", tmp_path / "changed"
    for folder in (same, changed):
        shutil.copytree(rules_root() / "deid", folder)
    original = load_rules(str(same))
    assert original.learned["age"]["format"] == 1 and original.learned["age"]["weights"]
    assert original.sha256 == load_rules().sha256
    data = json.loads((changed / "age_model.json").read_text(encoding="utf-8"))
    data["threshold"] = 0.99
    (changed / "age_model.json").write_text(json.dumps(data), encoding="utf-8")
    edited = load_rules(str(changed))
    assert edited.learned["age"]["threshold"] == 0.99
    assert edited.sha256 != original.sha256


@pytest.mark.parametrize("content, message", [
    ("not json", "not valid JSON"),
    ('{"format": 99, "weights": {}}', "not format 1"),
])
def test_a_malformed_model_file_is_refused(tmp_path, content, message):
    path = tmp_path / "age_model.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PostkitError, match=message):
        read_model_file(path)


def test_the_model_file_names_no_rare_word(model):
    """Every word in a feature is in the vocabulary; every vocabulary word is an everyday word."""
    from spacy.lang.en.stop_words import STOP_WORDS

    rules = load_rules()
    data = rules.learned["age"]
    vocabulary = set(data["vocabulary"])
    names = {w.lower() for list_name in ("first_names", "surnames", "uk_places", "employers")
             for w in rules.words(list_name)}
    everyday = {w for w in rules.words("common_words") if w.lower() not in names}
    assert vocabulary <= everyday | set(STOP_WORDS) | FIXED_WORDS
    shapes = {"<s>", "</s>", "<Cap>", "<low>", "<name>", "<lowname>", "<p>", "<dec>", "<d1>", "<d2>", "<d3>",
              "<d4>", "<c>", "^", "$", "\n"}
    for feature in data["weights"]:
        if "=" not in feature:
            assert feature.replace("_", "").replace("-", "").isalnum(), feature  # a named flag
            continue
        value = feature.split("=", 1)[1]
        for part in value.replace("|", "_").split("_"):
            assert (part in vocabulary or part in shapes or len(part) <= 1 or part.startswith("digits")
                    or part in {"word", "ordinal", "decimal", "years", "months", "weeks", "yo", "pre", "post"}
                    or part[:1].isdigit()), feature


# --------------------------------------------------------------------------- training

TINY = [
    ("I'm 24 and I have had anxiety for 3 years", ["24"]),
    ("My son is 12 and takes 10mg of melatonin", ["12"]),
    ("I have 2 cats and 1 dog", []),
    ("She was 31 when she left", ["31"]),
    ("I waited 14 weeks and paid 20 quid", []),
    ("a 45 year old woman with 2 kids", ["45 year old"]),
    ("We meet 3 times a week at 10", []),
    ("my daughter is 16 and I am 44", ["16", "44"]),
    ("scored 18 on the test, 4 days in a row", []),
    ("He is 70 and still works 5 days a week", ["70"]),
    ("Top 5 books about grief", []),
    ("I was 19 when my dad died", ["19"]),
]


def _tiny_posts():
    posts = []
    for number, (text, ages) in enumerate(TINY):
        spans, at = [], 0
        for age in ages:
            start = text.index(age, at)
            spans.append({"start": start, "end": start + len(age), "entity_type": "AGE"})
            at = start + len(age)
        posts.append({"id": f"t{number}", "text": text, "spans": spans})
    return posts


def test_training_is_deterministic_and_learns_the_difference():
    posts = _tiny_posts()
    vocabulary = build_vocabulary(posts, allowed={"and", "have", "is", "was", "when"}, min_posts=2)
    assert "24" not in vocabulary and "cats" not in vocabulary  # rare words stay out
    featurizer = AgeModel({"vocabulary": vocabulary})
    rows = labelled_candidates(posts, featurizer)
    assert sum(r[3] for r in rows) == 8
    first = fit(rows, c=1.0)
    assert fit(rows, c=1.0) == first
    weights, bias = first
    trained = AgeModel({"vocabulary": vocabulary, "weights": weights, "bias": bias})
    text = "my brother is 33 and has 3 dogs"
    scores = {text[c.span_start:c.span_end]: trained.score(trained.features(text, c)) for c in candidates(text)}
    assert scores["33"] > scores["3"]


def test_a_word_inside_a_labelled_span_never_enters_the_vocabulary():
    posts = [{"id": str(n), "text": "we met at Willowbrook again", "spans": [
        {"start": 10, "end": 21, "entity_type": "ORG"}]} for n in range(6)]
    assert "willowbrook" not in build_vocabulary(posts, allowed={"willowbrook", "again"}, min_posts=5)
    assert "again" in build_vocabulary(posts, allowed={"willowbrook", "again"}, min_posts=5)


# --------------------------------------------------------------------------- in the engine


@pytest.fixture(scope="module")
def engines():
    from postkit.deid.engine import DeidEngine
    from postkit.deid.model import load_model

    loaded = load_model(None)
    return DeidEngine(loaded_model=loaded), DeidEngine(loaded_model=loaded, learned_age=False)


@pytest.mark.slow
def test_the_engine_adds_the_models_ages_to_the_rules(engines):
    on, off = engines
    texts = RULES_MISSED
    ages = {text: next(age for t, age in FRESH_AGES if t == text) for text in texts}

    def caught(findings, text):
        start = text.index(ages[text])
        return any(f.start <= start and start + len(ages[text]) <= f.end and f.entity_type == "AGE"
                   for f in findings)

    with_model = on.analyze(texts)
    assert all(caught(found, text) for found, text in zip(with_model, texts))
    assert any(f.recognizer.endswith("learned_age") for found in with_model for f in found)
    # without the model the rules miss some of them (how many depends on the rules of the day)
    assert not all(caught(found, text) for found, text in zip(off.analyze(texts), texts))


@pytest.mark.slow
def test_the_engine_adds_no_age_to_non_age_numbers(engines):
    on, _ = engines
    for text, found in zip(NOT_AGES, on.analyze(NOT_AGES)):
        assert not [f for f in found if f.recognizer == "learned_age"], text


@pytest.mark.slow
def test_a_rules_folder_without_the_model_is_refused(tmp_path, engines):
    from postkit.deid.engine import DeidEngine

    folder = tmp_path / "deid"
    shutil.copytree(rules_root() / "deid", folder)
    (folder / "age_model.json").unlink()
    loaded = engines[0].model
    with pytest.raises(PostkitError, match="learned age model is missing"):
        DeidEngine(loaded_model=loaded, rules_folder=str(folder))
    # turned off, or with AGE not asked for, the folder is usable
    DeidEngine(loaded_model=loaded, rules_folder=str(folder), learned_age=False)
    DeidEngine(loaded_model=loaded, rules_folder=str(folder), entities=["PHONE"])
