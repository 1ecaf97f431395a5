"""Scoring rules of postkit.deid_eval on tiny hand-made posts, the labelled set's
well-formedness, and the report script end to end with a stand-in engine (fast:
no spaCy, no Presidio)."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from postkit.deid_eval import (
    ENTITY_TYPES,
    GoldFormatError,
    check_targets,
    coverage,
    is_caught,
    load_gold,
    score,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "deid_eval.jsonl"

MINIMUMS = {
    "PERSON": 60, "USERNAME": 25, "EMAIL": 15, "PHONE": 20, "POSTCODE": 20, "NHS_NUMBER": 12,
    "NI_NUMBER": 12, "ADDRESS": 15, "LOCATION": 30, "ORG": 25, "DATE": 15, "AGE": 15, "URL": 12,
}


def post(text: str, *labelled: tuple[str, str], post_id: str = "p1") -> dict:
    """A gold post whose spans are found by searching for each (string, type) in order."""
    spans, cursor = [], 0
    for value, entity_type in labelled:
        start = text.index(value, cursor)
        spans.append({"start": start, "end": start + len(value), "entity_type": entity_type, "text": value})
        cursor = start + len(value)
    return {"id": post_id, "text": text, "spans": spans}


def pred(text: str, value: str, entity_type: str = "X", occurrence: int = 0) -> dict:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(value, start + 1)
    return {"start": start, "end": start + len(value), "entity_type": entity_type}


@dataclass
class Finding:
    start: int
    end: int
    entity_type: str


# ----------------------------------------------------------------- catch rule


def test_fully_covered_span_is_caught_and_partial_is_missed():
    gold = post("ask Sarah Jones about it", ("Sarah Jones", "PERSON"))
    full = score([gold], [[pred(gold["text"], "Sarah Jones", "PERSON")]])
    partial = score([gold], [[pred(gold["text"], "Sarah", "PERSON")]])
    assert full["recall"] == 1.0
    assert partial["recall"] == 0.0
    assert partial["missed"]["PERSON"] == [{"id": "p1", "text": "Sarah Jones", "start": 4, "end": 15}]


def test_one_missing_letter_is_a_miss():
    text = "my NHS number is 9434765919 ok"
    gold = post(text, ("9434765919", "NHS_NUMBER"))
    almost = {"start": text.index("943"), "end": text.index("943") + 9, "entity_type": "NHS_NUMBER"}
    assert score([gold], [[almost]])["recall"] == 0.0


def test_any_predicted_type_counts():
    gold = post("I live near M1 1AE", ("M1 1AE", "POSTCODE"))
    result = score([gold], [[pred(gold["text"], "M1 1AE", "LOCATION")]])
    assert result["per_type"]["POSTCODE"] == {"gold": 1, "caught": 1, "recall": 1.0}


def test_several_predictions_may_cover_one_gold_span_together():
    gold = post("call 07700 900123 please", ("07700 900123", "PHONE"))
    halves = [pred(gold["text"], "07700", "PHONE"), pred(gold["text"], "900123", "NUMBER")]
    assert score([gold], [halves])["recall"] == 1.0


def test_punctuation_and_spaces_inside_a_span_need_not_be_covered():
    text = "at Flat 2, 9 Carlton Road now"
    gold = post(text, ("Flat 2, 9 Carlton Road", "ADDRESS"))
    pieces = [pred(text, "Flat 2"), pred(text, "9"), pred(text, "Carlton"), pred(text, "Road")]
    assert score([gold], [pieces])["recall"] == 1.0


def test_is_caught_directly():
    text = "943-476-5919"
    assert is_caught(text, 0, len(text), coverage(len(text), [{"start": 0, "end": 3}, {"start": 4, "end": 7},
                                                              {"start": 8, "end": 12}]))
    assert not is_caught(text, 0, len(text), coverage(len(text), [{"start": 0, "end": 7}]))
    # A span without letters or digits must be covered entirely.
    assert not is_caught("a -- b", 2, 4, coverage(6, [{"start": 2, "end": 3}]))


def test_recall_per_type_and_overall():
    a = post("Sam and Jo met in Leeds", ("Sam", "PERSON"), ("Jo", "PERSON"), ("Leeds", "LOCATION"),
             post_id="a")
    b = post("nothing here", post_id="b")
    result = score([a, b], [[pred(a["text"], "Sam"), pred(a["text"], "Leeds")], []])
    assert result["per_type"]["PERSON"] == {"gold": 2, "caught": 1, "recall": 0.5}
    assert result["per_type"]["LOCATION"]["recall"] == 1.0
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["missed"] == {"PERSON": [{"id": "a", "text": "Jo", "start": 8, "end": 10}]}
    assert list(result["per_type"]) == ["PERSON", "LOCATION"]  # report order


# -------------------------------------------------------- false alarms, precision


def test_false_alarms_are_predictions_touching_no_gold_span():
    text = "Hope you feel better, Sarah. Ring 111 or the GP."
    gold = post(text, ("Sarah", "PERSON"))
    predictions = [
        pred(text, "Hope", "PERSON"),        # false alarm
        pred(text, "Sarah.", "PERSON"),      # overlaps gold: not a false alarm, even if too long
        pred(text, "111", "PHONE"),          # false alarm
        pred(text, "GP", "ORG"),             # false alarm
    ]
    result = score([gold, post("GP again", post_id="p2")], [predictions, [pred("GP again", "GP", "ORG")]])
    assert result["false_alarms"] == 4
    assert result["false_alarms_per_100_posts"] == 200.0
    assert result["false_alarm_strings"][0] == {"text": "GP", "count": 2}
    assert result["false_alarms_by_predicted_type"] == {"ORG": 2, "PERSON": 1, "PHONE": 1}


def test_false_alarm_strings_collapse_whitespace():
    text = "see you\nsoon"
    result = score([post(text)], [[{"start": 4, "end": 12, "entity_type": "X"}]])
    assert result["false_alarm_strings"] == [{"text": "you soon", "count": 1}]


def test_char_precision_counts_the_union_of_predicted_characters():
    text = "Sarah went out"
    gold = post(text, ("Sarah", "PERSON"))
    # "Sarah went" (10 chars, 5 inside gold) and an overlapping duplicate "Sarah": union is 10 chars.
    result = score([gold], [[pred(text, "Sarah went"), pred(text, "Sarah")]])
    assert result["predicted_chars"] == 10
    assert result["predicted_chars_in_gold"] == 5
    assert result["char_precision"] == 0.5


def test_char_precision_is_none_when_nothing_is_predicted():
    result = score([post("Sarah", ("Sarah", "PERSON"))], [[]])
    assert result["char_precision"] is None
    assert result["recall"] == 0.0
    assert result["false_alarms"] == 0


def test_predictions_may_be_objects_or_dicts_and_empty_spans_are_ignored():
    gold = post("hi Jo", ("Jo", "PERSON"))
    result = score([gold], [[Finding(3, 5, "PERSON"), {"start": 0, "end": 0, "entity_type": "X"}]])
    assert result["recall"] == 1.0
    assert result["predicted_spans"] == 1


@pytest.mark.parametrize("bad", [
    {"start": 0, "end": 99, "entity_type": "X"},
    {"start": 3, "end": 1, "entity_type": "X"},
    {"start": -1, "end": 2, "entity_type": "X"},
    {"start": 0.0, "end": 2, "entity_type": "X"},
    {"end": 2, "entity_type": "X"},
])
def test_malformed_predictions_are_refused(bad):
    with pytest.raises(ValueError, match="post p1"):
        score([post("hi Jo")], [[bad]])


def test_prediction_lists_must_match_posts():
    with pytest.raises(ValueError, match="1 gold posts but 2"):
        score([post("hi")], [[], []])


def test_targets_pass_and_fail():
    gold = post("Sarah at sarah@example.com", ("Sarah", "PERSON"), ("sarah@example.com", "EMAIL"))
    both = [pred(gold["text"], "Sarah"), pred(gold["text"], "sarah@example.com")]
    perfect = check_targets(score([gold], [both]))
    by_name = {row["target"]: row for row in perfect}
    assert by_name["overall recall"]["passed"] and by_name["PERSON recall"]["passed"]
    assert by_name["EMAIL recall"]["passed"]
    assert not by_name["PHONE recall"]["passed"]  # not in the gold data: not measured, not met
    assert by_name["false alarms / 100 posts"]["passed"]

    noisy = [pred(gold["text"], "at")]
    rows = {row["target"]: row for row in check_targets(score([gold], [noisy]))}
    assert not rows["overall recall"]["passed"]
    assert rows["false alarms / 100 posts"]["value"] == 100.0
    assert not rows["false alarms / 100 posts"]["passed"]


# ------------------------------------------------------------------- load_gold


def write_lines(tmp_path: Path, *records) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n",
                    encoding="utf-8")
    return path


def test_load_gold_reads_valid_posts_and_sorts_spans(tmp_path):
    good = {"id": "a", "text": "Jo in Leeds 🙂", "spans": [
        {"start": 6, "end": 11, "entity_type": "LOCATION", "text": "Leeds"},
        {"start": 0, "end": 2, "entity_type": "PERSON", "text": "Jo"}]}
    emoji = {"id": "b", "text": "🙂 Sam",
             "spans": [{"start": 2, "end": 5, "entity_type": "PERSON", "text": "Sam"}]}
    posts = load_gold(write_lines(tmp_path, good, "", emoji))
    assert [p["id"] for p in posts] == ["a", "b"]
    assert [s["text"] for s in posts[0]["spans"]] == ["Jo", "Leeds"]


@pytest.mark.parametrize("record, message", [
    ({"id": "b", "text": "hi Jo", "spans": [{"start": 2, "end": 5, "entity_type": "PERSON", "text": "Jo"}]},
     r"row 2: post b, span 1: text\[2:5\] is ' Jo' but the span says 'Jo'"),
    ({"id": "b", "text": "hi Jo", "spans": [{"start": 3, "end": 9, "entity_type": "PERSON", "text": "Jo"}]},
     "row 2: post b, span 1: offsets 3..9 are outside the text"),
    ({"id": "b", "text": "hi Jo", "spans": [{"start": 3, "end": 5, "entity_type": "NAME", "text": "Jo"}]},
     "row 2: post b, span 1: unknown entity_type 'NAME'"),
    ({"id": "b", "text": "hi Jo", "spans": [{"start": "3", "end": 5, "entity_type": "PERSON", "text": "Jo"}]},
     "row 2: post b, span 1: 'start' and 'end' must be integers"),
    ({"id": "b", "text": "Jo Lee", "spans": [
        {"start": 0, "end": 6, "entity_type": "PERSON", "text": "Jo Lee"},
        {"start": 3, "end": 6, "entity_type": "PERSON", "text": "Lee"}]},
     "row 2: post b: spans 'Jo Lee' and 'Lee' overlap"),
    ({"id": "a", "text": "again", "spans": []}, "row 2: duplicate id 'a' \\(first on line 1\\)"),
    ({"id": "b", "text": "no spans key"}, "row 2: field 'spans' is missing"),
    ('{"id": "b", "text": ', "row 2: not valid JSON"),
])
def test_load_gold_names_the_line_of_a_bad_record(tmp_path, record, message):
    path = write_lines(tmp_path, {"id": "a", "text": "fine", "spans": []}, record)
    with pytest.raises(GoldFormatError, match=message) as info:
        load_gold(path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------ the labelled set


def nhs_checksum_ok(digits: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return len(digits) == 10 and check != 10 and check == int(digits[9])


def nino_ok(value: str) -> bool:
    match = re.fullmatch(r"([A-Z])([A-Z])\d{6}[A-D]", re.sub(r"\s", "", value).upper())
    if not match:
        return False
    first, second = match.groups()
    return (first not in "DFIQUV" and second not in "DFIOQUV"
            and first + second not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


# Ofcom's ranges for drama (numbers that reach nobody), plus 0808 157 0xxx freephone.
DRAMA_PHONE = re.compile(
    r"07700900\d{3}|01(?:1[3-8]|21|31|41|51|61)4960\d{3}|01914980\d{3}|02079460\d{3}"
    r"|02896496\d{3}|02920180\d{3}|01632960\d{3}|08081570\d{3}"
)


@pytest.fixture(scope="module")
def labelled() -> list[dict]:
    return load_gold(DATA)  # validates offsets, types, overlaps, ids


def test_labelled_set_is_large_enough_and_well_formed(labelled):
    assert len(labelled) >= 150
    for p in labelled:
        spans = p["spans"]
        for span in spans:
            assert 0 <= span["start"] < span["end"] <= len(p["text"])
            assert p["text"][span["start"]:span["end"]] == span["text"]
            assert span["text"] == span["text"].strip(), (p["id"], span)
        for before, after in zip(spans, spans[1:]):
            assert before["end"] <= after["start"], (p["id"], before, after)


def test_labelled_set_meets_the_minimum_per_type(labelled):
    counts = Counter(span["entity_type"] for p in labelled for span in p["spans"])
    short = {t: (counts[t], n) for t, n in MINIMUMS.items() if counts[t] < n}
    assert not short, f"types below their minimum (have, need): {short}"
    assert set(counts) <= set(ENTITY_TYPES)


def test_at_least_a_fifth_of_posts_have_no_identifiers(labelled):
    empty = sum(1 for p in labelled if not p["spans"])
    assert empty / len(labelled) >= 0.20
    assert empty >= 35


def test_labelled_values_are_fictitious(labelled):
    """Guard for future edits: only checksum-valid NHS numbers, valid NINO shapes,
    drama-range phone numbers and example domains."""
    for p in labelled:
        for span in p["spans"]:
            value, entity_type = span["text"], span["entity_type"]
            if entity_type == "NHS_NUMBER":
                assert nhs_checksum_ok(re.sub(r"\D", "", value)), (p["id"], value)
            elif entity_type == "NI_NUMBER":
                assert nino_ok(value), (p["id"], value)
            elif entity_type == "PHONE":
                digits = re.sub(r"\D", "", value.replace("(0)", ""))
                digits = "0" + digits[2:] if digits.startswith("44") else digits
                assert DRAMA_PHONE.fullmatch(digits), (p["id"], value)
            elif entity_type in ("EMAIL", "URL"):
                assert "example" in value.lower(), (p["id"], value)


# ------------------------------------------------------ the script, end to end


@pytest.fixture
def eval_script():
    spec = importlib.util.spec_from_file_location("eval_deid", ROOT / "scripts" / "eval_deid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_reports_and_writes_json_with_a_stand_in_engine(eval_script, monkeypatch, tmp_path, capsys):
    gold = load_gold(DATA)
    by_text = {p["text"]: p["spans"] for p in gold}

    def perfect(texts):
        found = [[Finding(s["start"], s["end"], s["entity_type"]) for s in by_text[t]] for t in texts]
        return found, 0.0, 0.0

    monkeypatch.setitem(eval_script.ENGINES, "postkit", perfect)
    out = tmp_path / "report.json"
    code = eval_script.main(["--engine", "postkit", "--json", str(out), "--check", "--show-misses"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "overall recall" in printed and "PASS" in printed and "FAIL" not in printed
    assert "Definitions:" in printed
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["posts"] == len(gold)
    assert payload["engines"]["postkit"]["result"]["recall"] == 1.0

    monkeypatch.setitem(eval_script.ENGINES, "postkit", lambda texts: ([[] for _ in texts], 0.0, 0.0))
    assert eval_script.main(["--engine", "postkit", "--check"]) == 1


def test_script_explains_an_unavailable_engine(eval_script, monkeypatch, capsys):
    def missing(texts):
        raise eval_script.EngineUnavailable("not written yet")

    monkeypatch.setitem(eval_script.ENGINES, "postkit", missing)
    assert eval_script.main(["--engine", "postkit"]) == 2
    assert "postkit: not written yet" in capsys.readouterr().err


def test_script_reports_a_bad_data_file(eval_script, tmp_path, capsys):
    bad = write_lines(tmp_path, {"id": "a", "text": "hi", "spans": [
        {"start": 0, "end": 2, "entity_type": "PERSON", "text": "no"}]})
    assert eval_script.main(["--data", str(bad), "--engine", "presidio"]) == 2
    assert "row 1" in capsys.readouterr().err


# ------------------------------------------------------------------ the real-post label file


def _real_files(tmp_path, text="Thanks Sunnyside22, I'm 34 too"):
    import hashlib

    posts = tmp_path / "posts.jsonl"
    posts.write_text(json.dumps({"post_id": "x-1", "forum": "f", "user_id": "u", "text": text}) + "\n",
                     encoding="utf-8")
    labels = tmp_path / "labels.jsonl"
    row = {"post_id": "x-1", "split": "tune",
           "text_sha256": hashlib.sha256("Thanks Sunnyside22, I'm 34 too".encode()).hexdigest(),
           "spans": [{"start": 7, "end": 18, "entity_type": "USERNAME"},
                     {"start": 24, "end": 26, "entity_type": "AGE"}]}
    labels.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return labels, posts


def test_real_labels_join_texts_from_shared_by_id_and_split(tmp_path):
    from postkit.deid_eval import load_real_gold

    labels, posts = _real_files(tmp_path)
    gold = load_real_gold("tune", labels, posts)
    assert [s["text"] for s in gold[0]["spans"]] == ["Sunnyside22", "34"]
    assert load_real_gold("score", labels, posts) == []


def test_real_labels_refuse_a_changed_text(tmp_path):
    from postkit.deid_eval import GoldFormatError, load_real_gold

    labels, posts = _real_files(tmp_path, text="Thanks Sunnyside22, I'm 35 too")
    with pytest.raises(GoldFormatError, match="changed since it was labelled"):
        load_real_gold("all", labels, posts)


def test_real_labels_absent_posts_raise_file_not_found(tmp_path):
    from postkit.deid_eval import load_real_gold

    labels, _ = _real_files(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_real_gold("tune", labels, tmp_path / "missing.jsonl")


def test_committed_real_labels_hold_no_text():
    """Real posts are not ours to redistribute: the label file carries offsets and hashes only."""
    path = Path(__file__).parent / "data" / "real_deid_labels.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert set(row) - {"round"} == {"post_id", "split", "text_sha256", "spans"}
        assert row.get("round", 4) == 4  # rounds 1-3 carry no field; round 4 names itself
        assert all(set(span) == {"start", "end", "entity_type"} for span in row["spans"])
