"""Scoring on real posts: "none" is an outcome, scored the same for postkit and the baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from eval_coding import commonest_predict, evaluate, ranked_outcomes  # noqa: E402

from postkit.coding.realset import LABELS, POSTS, load_real_cmo  # noqa: E402
from postkit.errors import PostkitError  # noqa: E402

ROWS = [{"area": "catharsis_sense_making", "polarity": "positive"}, {"area": "none", "polarity": "none"},
        {"area": "understanding_acceptance", "polarity": "negative"}]


def test_no_strong_suggestion_is_the_answer_none() -> None:
    assert ranked_outcomes({"catharsis_sense_making": 0.7, "self_efficacy": 0.3}, 0.5) == [
        "catharsis_sense_making", "none", "self_efficacy"]
    assert ranked_outcomes({"catharsis_sense_making": 0.4}, 0.5) == ["none", "catharsis_sense_making"]
    assert ranked_outcomes({}, 0.5) == ["none"]
    preds = [(ranked_outcomes({"catharsis_sense_making": 0.4}, 0.5), "positive")] * 3
    result = evaluate(ROWS, preds)
    # A weak suggestion is right for "none" at top-1, never for the area it names.
    assert result["top1"] == pytest.approx(1 / 3) and result["top2"] == pytest.approx(2 / 3)
    assert result["coverage"] == 0.0 and result["polarity"] == 0.5  # direction only where gold has one


def test_the_commonest_area_baseline_is_scored_by_the_same_rule() -> None:
    result = evaluate(ROWS, commonest_predict(ROWS, no_area=True))
    assert result["top1"] == pytest.approx(1 / 3) and result["top2"] == pytest.approx(2 / 3)
    assert commonest_predict(ROWS)[0] == (["catharsis_sense_making"], "positive")  # sets without "none"


def test_the_real_set_joins_by_id_and_checks_each_text(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    posts = tmp_path / "posts.jsonl"
    import hashlib

    text = "a post written for this test"
    labels.write_text(json.dumps({"post_id": "x-1", "split": "tune", "area": "none", "polarity": "none",
                                  "second_area": None, "text_sha256": hashlib.sha256(text.encode()).hexdigest()})
                      + "\n" + json.dumps({"post_id": "x-2", "split": "score", "area": "none", "polarity": "none",
                                           "text_sha256": "0" * 64}) + "\n")
    posts.write_text(json.dumps({"post_id": "x-1", "forum": "f", "text": text}) + "\n"
                     + json.dumps({"post_id": "x-2", "forum": "f", "text": "changed"}) + "\n")
    rows = load_real_cmo("tune", labels, posts)
    assert [(r["id"], r["text"], r["area"]) for r in rows] == [("x-1", text, "none")]
    with pytest.raises(PostkitError, match="changed since it was labelled"):
        load_real_cmo("all", labels, posts)
    with pytest.raises(PostkitError, match="unknown split"):
        load_real_cmo("train", labels, posts)
    with pytest.raises(FileNotFoundError):
        load_real_cmo("tune", labels, tmp_path / "absent.jsonl")


@pytest.mark.skipif(not POSTS.exists(), reason="the shared real posts are not on this machine")
def test_the_tune_half_loads_with_its_codes() -> None:
    rows = load_real_cmo("tune")
    assert len(rows) == 260 and {r["split"] for r in rows} == {"tune"}
    assert sum(r["round"] == 1 for r in rows) == 162
    assert sum(r["area"] == "catharsis_sense_making" for r in rows if r["round"] == 1) == 116
    assert LABELS.exists()
