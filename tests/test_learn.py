"""Learning from the study's coders: labels from decisions, retraining, uncertainty order."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.coding.learn import (
    NotEnoughCodings,
    coded_units,
    default_ranker_path,
    retrain_from_store,
    retrain_if_due,
    uncertainty,
    uncertainty_order,
)
from postkit.coding.ranker import load_ranker
from postkit.coding.store import CodingStore
from postkit.coding.tagger import Tagger

# Written for these tests: first-person posts about writing things out, and plain questions.
VENTS = [f"I just needed to write this all out somewhere, day {n} of feeling flat and tired, thanks for reading."
         for n in range(8)]
QUESTIONS = [f"Does anyone know how long the waiting list is for clinic {n}? Thanks for any advice." for n in range(8)]


@pytest.fixture(scope="module")
def nlp():
    return Tagger(ranker=None).nlp


def _store(path, vents=VENTS, questions=QUESTIONS):
    texts = list(vents) + list(questions)
    with CodingStore(path) as store:
        store.add_excerpts([{"unit_id": f"u{n:02d}", "post_id": f"p{n:02d}", "forum": "Robin", "text": t,
                             "start": 0, "end": len(t)} for n, t in enumerate(texts)])
        store.add_suggestions([{"unit_id": f"u{n:02d}", "code_id": "CS-C2", "score": 0.4, "evidence": []}
                               for n in range(len(texts))], codebook_version="v1")
    return path


def _code(path, coder="alice", vents=range(8), questions=range(8, 16)):
    with CodingStore(path) as store:
        for n in vents:
            store.decide(f"u{n:02d}", "CS-C2", coder, "accept")
        for n in questions:
            store.decide(f"u{n:02d}", "CS-C2", coder, "reject")


def test_labels_come_from_decisions_and_rejecting_everything_means_none(tmp_path) -> None:
    path = _store(tmp_path / "coding.sqlite")
    with CodingStore(path) as store:
        store.add_suggestions([{"unit_id": "u09", "code_id": "UA-C3", "score": 0.3, "evidence": []}],
                              codebook_version="v1")
        store.decide("u00", "CS-C2", "alice", "accept")
        store.decide("u01", "UA-C3", "alice", "add")            # a code nobody suggested
        store.decide("u08", "CS-C2", "alice", "reject")         # its only suggestion rejected: no area
        store.decide("u09", "CS-C2", "alice", "reject")         # UA-C3 still undecided: not used yet
        store.decide("u02", "CS-C2", "alice", "accept")         # alice and bob disagree evenly: left out
        store.decide("u02", "CS-C2", "bob", "reject")
        rows, ties = coded_units(store)
    labels = {r["unit_id"]: (r["area"], r["polarity"]) for r in rows}
    assert labels == {"u00": ("catharsis_sense_making", "positive"), "u01": ("understanding_acceptance", "positive"),
                      "u08": ("none", "none")}
    assert ties == 1
    assert next(r for r in rows if r["unit_id"] == "u00")["text"] == VENTS[0]


def test_retrain_writes_a_ranker_beside_the_store_that_tag_can_use(tmp_path, nlp) -> None:
    path = _store(tmp_path / "coding.sqlite")
    _code(path)
    result = retrain_from_store(path, nlp=nlp)
    assert result.path == default_ranker_path(path) == tmp_path / "ranker.json"
    assert result.units == 16 and result.outcomes == {"catharsis_sense_making": 8, "none": 8}
    ranker = load_ranker(result.path)
    assert set(ranker.areas) == {"catharsis_sense_making", "none"} and ranker.feature_names
    assert ranker.meta["store_decisions"] == 16 and ranker.meta["training"][0]["chain_head"]
    tagger = Tagger(model=nlp, ranker=result.path)
    vent, question = tagger.assess(["I needed to write this out tonight, feeling flat, thanks for reading.",
                                    "Does anyone know how long the waiting list is? Thanks for any advice."])
    assert vent["outcome"] == "catharsis_sense_making" and question["outcome"] == "none"
    assert vent["model"]["catharsis_sense_making"] > question["model"]["catharsis_sense_making"]
    top = vent["suggestions"][0]
    assert top["evidence"] and top["features"] and all(set(f) == {"name", "weight"} for f in top["features"])


def test_too_few_codings_say_so(tmp_path, nlp) -> None:
    path = _store(tmp_path / "coding.sqlite")
    _code(path, vents=range(3), questions=range(8, 10))
    with pytest.raises(NotEnoughCodings, match="5 coded unit"):
        retrain_from_store(path, nlp=nlp)
    _code(tmp_path / "coding.sqlite", vents=range(8), questions=())
    with pytest.raises(NotEnoughCodings, match="at least 20 in two outcomes"):
        retrain_from_store(path, nlp=nlp, min_units=20)
    assert not default_ranker_path(path).exists()


def test_retrain_if_due_waits_for_every_n_decisions(tmp_path, nlp) -> None:
    path = _store(tmp_path / "coding.sqlite")
    _code(path, vents=range(4), questions=range(8, 12))
    assert retrain_if_due(path, every=10, nlp=nlp) is None          # 8 decisions: not due
    _code(path, vents=range(4, 8), questions=range(12, 16))
    first = retrain_if_due(path, every=10, nlp=nlp)                  # 16: due
    assert first is not None and first.decisions == 16
    with CodingStore(path) as store:
        store.decide("u00", "CS-C2", "bob", "accept")
        assert retrain_if_due(store, every=10, nlp=nlp) is None      # 1 since the last: not due
    with pytest.raises(Exception, match="at least 1"):
        retrain_if_due(path, every=0)


def test_uncertainty_order_puts_unsure_units_first_and_skips_decided_ones(tmp_path, nlp) -> None:
    path = _store(tmp_path / "coding.sqlite")
    _code(path, vents=range(6), questions=range(8, 14))
    ranker = retrain_from_store(path, nlp=nlp, min_units=10).ranker
    mixed = "I needed to write this out. Does anyone know how long the waiting list is? Thanks for reading."
    with CodingStore(path) as store:
        store.add_excerpts([{"unit_id": "u99", "text": mixed, "start": 0, "end": len(mixed)}])
        order = uncertainty_order(store, ranker)
        by_entropy = uncertainty_order(store, ranker, method="entropy")
        for_bob = uncertainty_order(store, ranker, coder="bob")
    assert set(order) == {"u06", "u07", "u14", "u15", "u99"}        # what alice decided is done
    assert order[0] == "u99" and by_entropy[0] == "u99"              # the post that is both
    assert len(for_bob) == 17                                        # bob has decided nothing
    margins = uncertainty(ranker, [VENTS[6], mixed], nlp=nlp)
    assert margins[1]["margin"] < margins[0]["margin"] and margins[0]["top"] == "catharsis_sense_making"
    with pytest.raises(Exception, match="unknown uncertainty method"):
        uncertainty_order(CodingStore(path, read_only=True), ranker, method="coin")


def test_code_retrain_command_and_tag_with_the_result(tmp_path) -> None:
    path = _store(tmp_path / "coding.sqlite")
    runner = CliRunner()
    refused = runner.invoke(main, ["code", "retrain", str(path)])
    assert refused.exit_code != 0 and "0 coded unit" in refused.output and not (tmp_path / "ranker.json").exists()
    _code(path)
    out = tmp_path / "study-ranker.json"
    done = runner.invoke(main, ["code", "retrain", str(path), "--output", str(out)])
    assert done.exit_code == 0, done.output
    assert "trained on 16 coded units (catharsis_sense_making 8, none 8)" in done.output and out.exists()
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,text\nq1,Does anyone know how long the waiting list is? Thanks for any advice.\n")
    tagged = tmp_path / "tagged.jsonl"
    result = runner.invoke(main, ["tag", str(posts), "--output", str(tagged), "--ranker", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    row = json.loads(tagged.read_text().splitlines()[0])
    assert row["suggested_area"] == "none" and row["ranker_version"] == load_ranker(out).version_hash
