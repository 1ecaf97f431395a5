"""Choose another exemplar: a code's excerpts ranked least findable first (hand-written text only)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.coding.store import CodingStore
from postkit.disguise import embed
from postkit.disguise.exemplars import code_excerpts, find_store, rank_exemplars, render_ranking
from postkit.disguise.meaning import load_nlp
from postkit.disguise.trace import TraceIndex, Thresholds
from postkit.errors import PostkitError
from postkit.io import write_table

CODE = "HO-C3"
GENERIC = "Helping other people here gives me a reason to keep going."
SAMPLE = {
    # a long post whose code sentence is common on the forum: hard to find
    "s1": ("Hello again. The weather turned cold and my hands ache in the mornings now. " + GENERIC
           + " My neighbour brought round some soup, the bins were late, the cat knocked a plant over and "
             "the washing machine is making a grinding noise that worries me."),
    # a short post with rare words: the first hit for its own words
    "s2": "Answering questions on the allotment courgette thread gives me a reason to keep going.",
    "s3": "Since I started replying to new members I feel useful, and that keeps me going.",
    "s4": "Being useful to someone here is what keeps me going through the winter.",
}
FILLER = {f"x{k}": text for k, text in enumerate([
    "Helping other people gives me a reason to keep going.",
    "Helping people gives me a reason to keep going most days.",
    "Other people here give me a reason to keep going.",
    "The bus was late again and I missed my appointment.",
    "Does anyone have tips for sleeping when the street lights are so bright?",
    "I painted the kitchen yellow and it already feels warmer.",
])}


def _evidence(text: str, phrase: str) -> str:
    start = text.index(phrase)
    return json.dumps([{"start": start, "end": start + len(phrase), "text": phrase}])


@pytest.fixture
def study(tmp_path):
    store_path = tmp_path / "run" / "tag" / "coding.sqlite"
    store_path.parent.mkdir(parents=True)
    with CodingStore(store_path) as store:
        store.add_excerpts([{"unit_id": f"u{k}", "post_id": post_id, "text": text, "start": 0, "end": len(text)}
                            for k, (post_id, text) in enumerate(SAMPLE.items(), start=1)])
        store.add_suggestions([
            {"unit_id": "u1", "code_id": CODE, "score": 0.9,
             "evidence": _evidence(SAMPLE["s1"], "reason to keep going")},
            {"unit_id": "u2", "code_id": CODE, "score": 0.8,
             "evidence": _evidence(SAMPLE["s2"], "reason to keep going")},
            {"unit_id": "u3", "code_id": CODE, "score": 0.7, "evidence": _evidence(SAMPLE["s3"], "feel useful")},
            {"unit_id": "u3", "code_id": "CS-C4", "score": 0.5, "evidence": "[]"},
        ], codebook_version="test-1")
        store.decide("u3", CODE, "alice", "reject")  # the coder said no: not an exemplar
        store.decide("u4", CODE, "alice", "add")  # the coder added it: an exemplar without tagger evidence
    corpus = tmp_path / "forum.csv"
    write_table(pd.DataFrame([{"post_id": k, "text": v} for k, v in {**SAMPLE, **FILLER}.items()]), corpus)
    return {"store": store_path, "run": tmp_path / "run", "corpus": corpus}


@pytest.fixture(scope="module")
def index():
    posts = {**SAMPLE, **FILLER}
    return TraceIndex.build(list(posts), list(posts.values()), dense=False)


def test_the_excerpts_carrying_a_code_are_found(study):
    found = {e["unit_id"]: e for e in code_excerpts(study["store"], CODE)}
    assert sorted(found) == ["u1", "u2", "u4"]
    assert found["u1"]["carried_by"] == "tagger" and found["u4"]["carried_by"] == "coder"
    assert found["u1"]["evidence"] and not found["u4"]["evidence"]
    assert find_store(study["run"]) == study["store"]
    with pytest.raises(PostkitError, match="no coding store"):
        find_store(study["run"] / "nowhere")


def test_exemplars_are_ranked_least_findable_first(study, index):
    rows = rank_exemplars(code_excerpts(study["store"], CODE), index, Thresholds(), nlp=load_nlp())
    by_unit = {r["unit_id"]: r for r in rows}
    assert by_unit["u1"]["text"] == GENERIC  # quoted as the shortest span holding the evidence
    assert by_unit["u2"]["source_rank"] == 1 and by_unit["u1"]["source_rank"] > 1
    assert [r["unit_id"] for r in rows].index("u1") < [r["unit_id"] for r in rows].index("u2")
    assert all(r["dense"] == "not run" and r["verdict"] != "disguised" for r in rows)  # fail closed
    text = render_ranking({"code_id": CODE, "excerpts": rows, "posts": len(index), "dense": "not run",
                           "note": "the dense extra is not installed"})
    assert "least findable first" in text and "no exemplar can be called disguised" in text
    assert text.index("u1:") < text.index("u2:")


def test_an_excerpt_whose_post_is_not_in_the_corpus_fails_closed(study):
    other = TraceIndex.build(list(FILLER), list(FILLER.values()), dense=False)
    with pytest.raises(PostkitError, match="not in the corpus"):
        rank_exemplars(code_excerpts(study["store"], CODE), other, Thresholds(), nlp=load_nlp())


def test_rank_command_prints_a_table_and_json(study):
    result = CliRunner().invoke(main, ["disguise", "rank", str(study["run"]), "--code", CODE,
                                       "--corpus", str(study["corpus"]), "--json"])
    assert result.exit_code == 0, result.output + str(result.exception)
    data = json.loads(result.output)
    assert data["code_id"] == CODE and data["posts"] == len(SAMPLE) + len(FILLER)
    units = [r["unit_id"] for r in data["excerpts"]]
    assert sorted(units) == ["u1", "u2", "u4"] and units.index("u1") < units.index("u2")
    assert data["dense"] == ("ran" if embed.available() else "not run")
    if embed.available():
        assert all(isinstance(r["dense_rank"], int) for r in data["excerpts"])
    result = CliRunner().invoke(main, ["disguise", "rank", str(study["store"]), "--code", CODE,
                                       "--corpus", str(study["corpus"])])
    assert result.exit_code == 0, result.output
    assert f"Exemplars of {CODE}: 3 excerpts, least findable first" in result.output
    assert "BM25 rank" in result.output and "dense rank" in result.output
    result = CliRunner().invoke(main, ["disguise", "rank", str(study["store"]), "--code", "NO-SUCH",
                                       "--corpus", str(study["corpus"])])
    assert result.exit_code == 0 and "No excerpt of the sample carries this code" in result.output
