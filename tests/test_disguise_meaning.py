"""Meaning-safe disguise: risk statements, negation, CMO flags, ranking rules, shortening, advice.

Every text here is hand-written for the test. The rule-based guards run without the
embedding model; tests that need it skip when the dense extra is not installed.
"""

from __future__ import annotations

import pandas as pd
import pytest

from postkit.disguise import embed, paraphrase
from postkit.disguise.meaning import MeaningScorer, MeaningSettings, load_nlp, load_settings
from postkit.disguise.risk import load_risk_terms
from postkit.disguise.suggest import MEANING_LOST, NO_REWORDING, Suggester, _order_only
from postkit.disguise.trace import TraceIndex, Thresholds
from postkit.errors import PostkitError

needs_embeddings = pytest.mark.skipif(not embed.available(), reason="the dense extra (sentence embeddings) is absent")

FORUM = [
    ("f1", "I joined this forum last spring after a bad week. Reading other people's stories here made me realise "
           "I was not alone. Thanks everyone."),
    ("f2", "My allotment is full of courgettes again and the slugs are winning this year."),
    ("f3", "Does anyone know if the bus timetable changes over the bank holiday weekend?"),
    ("f4", "I used to cut myself when the evenings got long, and I never told my sister about it."),
    ("f5", "The new kettle at work makes a strange noise but the tea still tastes fine."),
    ("f6", "Some days I sit in the car for ages before I can face going into the supermarket."),
    ("f7", "Painting the fence took all weekend because the brushes kept drying out."),
    ("f8", "Walking the dog in the rain is better than staying inside and thinking too much."),
]


@pytest.fixture(scope="module")
def nlp():
    return load_nlp()


@pytest.fixture(scope="module")
def risk():
    return load_risk_terms()


@pytest.fixture(scope="module")
def lexical(nlp):
    return MeaningScorer(nlp, method="lexical")


@pytest.fixture(scope="module")
def index():
    ids, texts = zip(*FORUM)
    return TraceIndex.build(list(ids), list(texts), dense=False)


@pytest.fixture(scope="module")
def suggester(index, nlp, lexical):
    return Suggester(index, Thresholds(), nlp=nlp, scorer=lexical)


# -- risk statements -------------------------------------------------------------------

@pytest.mark.parametrize("original, candidate", [
    ("I was trying to commit suicide last winter.", "I was trying to devote suicide last winter."),
    ("Last winter I kept trying to commit.", "Last winter I kept trying to devote."),
    ("I used to cut myself every night.", "I used to trimmed myself every night."),
    ("I used to cut myself every night.", "I used to trim myself every night."),
    ("My stepdad abused me for years.", "My stepdad mistreated me for years."),
    ("He hit my little sister when she was small.", "He struck my little sister when she was small."),
    ("I took too many pills that night.", "I took lots of tablets that night."),
    ("I felt better after talking to the nurse.", "I felt better after talking to the nurse. I wanted to die."),
])
def test_a_changed_risk_statement_fails(risk, nlp, original, candidate):
    assert risk.changed(original, candidate, nlp) is not None


def test_a_negation_change_in_front_of_a_risk_statement_fails(risk, nlp):
    assert "negation" in risk.changed("I never took an overdose.", "I took an overdose.", nlp)
    assert "negation" in risk.changed("I did not cut myself.", "Honestly I did cut myself.", nlp)


def test_risk_statements_kept_word_for_word_pass(risk, nlp):
    assert risk.changed("I was trying to commit suicide last winter.",
                        "Last winter I was trying to commit suicide.", nlp) is None
    assert risk.changed("I didn't cut myself, I just wanted to.", "I did not cut myself; I only wanted to.",
                        nlp) is None
    assert risk.changed("I had a lovely walk by the sea.", "I went for a nice stroll by the coast.", nlp) is None


def test_risk_spans_reach_the_verb_and_the_object(risk, nlp):
    spans = {s.words for s in risk.spans("My dad abused me and I had thoughts of suicide.", nlp)}
    assert ("abused", "me") in spans and ("thoughts", "of", "suicide") in spans


def test_a_changed_risk_statement_scores_zero_and_is_flagged(lexical):
    result = lexical.score("I was trying to commit suicide last winter.",
                           ["I was trying to devote suicide last winter."])[0]
    assert result["risk_changed"] is True and result["meaning_score"] == 0.0
    assert "suicide" in result["risk_reason"] and "devote" not in result["risk_reason"]


def test_risk_terms_file_is_validated(tmp_path):
    path = tmp_path / "risk.yaml"
    for body, message in [
        ("categories: {suicide: ['... suicide']}\n", "start or end"),
        ("categories: {suicide: ['kill my$elf']}\n", "letters"),
        ("categories: {suicide: []}\n", "non-empty list"),
        ("categories: {suicide: [suicid*]}\ncolour: red\n", "unknown key"),
        ("max_gap: -1\ncategories: {suicide: [suicid*]}\n", "max_gap"),
    ]:
        path.write_text(body, encoding="utf-8")
        with pytest.raises(PostkitError, match=message):
            load_risk_terms(path)
    path.write_text("max_gap: 1\ncategories: {abuse: [hit ... me]}\n", encoding="utf-8")
    terms = load_risk_terms(path)
    assert [m.words for m in terms.matches("He hit me. He hit all of me.")] == [("hit", "me")]


def test_paraphrase_operations_never_reword_a_protected_risk_statement(nlp, risk):
    text = "I was trying to commit suicide when the nights felt long."
    protect = lambda t: [(s.start, s.end) for s in risk.spans(t, nlp)]  # noqa: E731
    weights = {"commit": 9.0, "trying": 5.0, "nights": 1.0}
    free, _ = paraphrase.substitute(text, nlp, weights, share=1.0)
    assert "trying to commit suicide" not in free  # without protection the heaviest words are swapped
    kept, edits = paraphrase.substitute(text, nlp, weights, share=1.0, protect=protect)
    assert "trying to commit suicide" in kept and edits == ["nights → nighttime"]
    found = lambda seq: [(0, 4)]  # noqa: E731  a phrase search finds the opening words
    broken, _ = paraphrase.break_runs(text, nlp, found, words=str.split, protect=protect)
    assert "trying to commit suicide" in broken


# -- negation, CMO, settings -----------------------------------------------------------

def test_a_negation_change_costs_the_configured_multiplier(lexical):
    original = "The group helped me a lot this year."
    same, flipped = lexical.score(original, ["This year the group helped me a lot.",
                                             "This year the group did not help me a lot."])
    assert same["negation_kept"] and not flipped["negation_kept"]
    settings = load_settings()
    assert flipped["meaning_score"] < same["meaning_score"]
    assert flipped["meaning_score"] <= round(flipped["similarity"] * settings.lexical_negation_multiplier, 3) + 0.001


def test_a_cmo_area_change_is_flagged_with_both_areas(lexical):
    original = "Helping other people on here gives me a reason to keep going, I like being useful."
    result = lexical.score(original, ["Writing it all down here helped me let it out and I felt lighter."])[0]
    assert result["cmo_changed"] is True and result["cmo_same"] is False
    assert result["cmo_area"] == "helping_others" and result["candidate_cmo_area"] == "catharsis_sense_making"
    same = lexical.score(original, ["Helping other people here gives me a reason to carry on, I like being useful."])[0]
    assert same["cmo_changed"] is False and same["cmo_area"] == same["candidate_cmo_area"]


def test_meaning_settings_are_data_and_validated(tmp_path, nlp):
    path = tmp_path / "meaning.yaml"
    path.write_text("lexical: {negation_multiplier: 0.25, cmo_change_multiplier: 1}\nkeeps_meaning: 0.5\n",
                    encoding="utf-8")
    settings = load_settings(path)
    assert settings.lexical_negation_multiplier == 0.25 and settings.keeps_meaning == 0.5
    scorer = MeaningScorer(nlp, method="lexical", settings=settings)
    flipped = scorer.score("The group helped me.", ["The group did not help me."])[0]
    assert flipped["meaning_score"] == pytest.approx(flipped["similarity"] * 0.25, abs=0.002)
    for body, message in [("keeps_meaning: 1.5\n", "0 to 1"), ("demand: 0.9\n", "unknown setting"),
                          ("lexical: {weight: 1}\n", "unknown setting"), ("long_run: 0\n", ">= 1")]:
        path.write_text(body, encoding="utf-8")
        with pytest.raises(PostkitError, match=message):
            load_settings(path)
    assert MeaningSettings().keeps_meaning == load_settings().keeps_meaning == 0.6  # don't demand 0.9


def test_the_method_is_reported_and_lexical_is_the_fallback(nlp, monkeypatch):
    monkeypatch.setattr(embed, "available", lambda: False)
    scorer = MeaningScorer(nlp)
    assert scorer.method == "lexical"
    assert scorer.score("I like the rain.", ["I enjoy the rain."])[0]["meaning_method"] == "lexical"


@needs_embeddings
def test_embedding_meaning_rewards_a_rewrite_in_other_words(nlp):
    scorer = MeaningScorer(nlp)
    assert scorer.method == "embedding"
    original = "Some days I sit in the car for ages before I can face going into the supermarket."
    reworded, unrelated = scorer.score(original, [
        "There are days when I stay parked for a long time before I manage to walk into the shop.",
        "Painting the fence took all weekend because the brushes kept drying out."])
    assert reworded["meaning_method"] == "embedding" and "lemma_overlap" not in reworded
    assert reworded["similarity"] > 0.55 > 0.3 > unrelated["similarity"]
    lexical = MeaningScorer(nlp, method="lexical").score(original, [
        "There are days when I stay parked for a long time before I manage to walk into the shop."])[0]
    assert reworded["similarity"] > lexical["similarity"] + 0.2  # words changed, meaning kept


@needs_embeddings
def test_synonyms_are_chosen_in_context_and_wrong_senses_refused(index, nlp):
    suggester = Suggester(index, Thresholds(), nlp=nlp, scorer=MeaningScorer(nlp))
    doc = nlp("My case worker was really kind to me.")
    case = next(t for t in doc if t.text == "case")
    assert suggester.chooser is not None
    assert suggester.chooser(doc, [(case, ["affair", "instance"])]) == {case.i: None}
    doc = nlp("I cried in the car before going into the shop today.")
    shop = next(t for t in doc if t.text == "shop")
    assert suggester.chooser(doc, [(shop, ["workshop", "store"])]) == {shop.i: "store"}


# -- generalising ----------------------------------------------------------------------

def test_identifying_specifics_are_generalised():
    text, edits = paraphrase.generalise(
        "I am 23 years old and my 15 year old son sees CAMHS in Leeds since 2019. I moved to Manchester.")
    assert text == ("I'm in my twenties and my teenage son sees the young people's mental health service in my town "
                    "for some years. I moved to another town.")
    assert len(edits) == 6
    text, _ = paraphrase.generalise("Never mind, I was 19 (34F) when I went to A&E.")
    assert text == "Never mind, I was in my teens when I went to hospital."


# -- ranking ---------------------------------------------------------------------------

def _candidate(text, verdict="at risk", meaning=0.8, edits=2, demoted=None):
    return {"text": text, "verdict": verdict, "meaning_score": meaning, "edits": ["e"] * edits, "demoted": demoted}


def test_order_only_and_long_runs_are_detected(suggester):
    original = "I joined last spring. Nobody here judges me. It helps."
    assert _order_only(original, "Nobody here judges me. I joined last spring. It helps.")
    assert not _order_only(original, "Nobody here judges me. I signed up last spring. It helps.")
    why, _, order_only = suggester._demotion(original, "Nobody here judges me. I joined last spring. It helps.")
    assert order_only and "order" in why
    long = "Reading other people's stories here made me realise I was not alone."
    why, run, _ = suggester._demotion(long,
                                      "Honestly, reading other people's stories here made me see I was not alone.")
    assert run == 7 and why is None
    why, run, _ = suggester._demotion(long, "Reading other people's stories here made me realise I was not lonely.")
    assert run == 11 and "run of 11" in why


def test_demoted_candidates_are_never_ranked_first(suggester):
    ranked = suggester.rank([
        _candidate("order only", verdict="disguised", meaning=0.99, edits=1, demoted="only the sentence order"),
        _candidate("long run", verdict="disguised", meaning=0.95, edits=1, demoted="keeps a run of 9 words"),
        _candidate("honest rewrite", verdict="at risk", meaning=0.5, edits=6),
    ])
    assert ranked[0]["text"] == "honest rewrite"
    ranked = suggester.rank([_candidate("b", meaning=0.7, edits=1), _candidate("a", verdict="disguised", meaning=0.3),
                             _candidate("c", meaning=0.7, edits=5), _candidate("d", meaning=0.9, edits=9)])
    assert [c["text"] for c in ranked] == ["a", "d", "b", "c"]  # verdict, then meaning, then fewer edits


def order_swapper(text: str) -> list[str]:
    """A team's paraphraser that only swaps the first two sentences, or copies a long run."""
    first, _, rest = text.partition(". ")
    return [f"{rest.rstrip('.')}. {first}.", "So, " + text[0].lower() + text[1:]]


def test_suggest_never_puts_an_order_only_or_long_run_candidate_first(index, nlp, lexical):
    from postkit.disguise.suggest import python_paraphraser

    suggester = Suggester(index, Thresholds(), nlp=nlp, scorer=lexical, n_candidates=30,
                          externals=[python_paraphraser(f"{__name__}:order_swapper")])
    quote = {"quote_id": "q1", "source_post_id": "f6",
             "text": "Some days I sit in the car for ages. Then I face going into the supermarket."}
    row = suggester.suggest([quote])[0]
    texts = [c["text"] for c in row["candidates"]]
    swapped = next(c for c in row["candidates"] if c["order_only"])
    long = next(c for c in row["candidates"] if c["text"].startswith("So, "))
    assert swapped["demoted"] and long["demoted"] and swapped["meaning_score"] >= row["candidates"][0]["meaning_score"]
    assert row["candidates"][0]["demoted"] is None and texts.index(swapped["text"]) > 0
    assert all(not c["order_only"] for c in row["candidates"] if "plan:" in c["edits"][0])  # plans never swap order


def test_no_candidate_rewords_a_risk_statement(suggester):
    quote = {"quote_id": "q1", "source_post_id": "f4",
             "text": "I used to cut myself when the evenings got long, and I never told my sister about it."}
    row = suggester.suggest([quote])[0]
    assert row["candidates"]
    for candidate in row["candidates"]:
        assert "cut myself" in candidate["text"], candidate


# -- strategies beyond rewording ---------------------------------------------------------

def test_shorten_to_the_core_keeps_the_codes_evidence(nlp):
    text = FORUM[0][1]
    start = text.index("not alone")
    core, edits = paraphrase.core(text, nlp, [(start, start + 9)])
    assert core == "Reading other people's stories here made me realise I was not alone." and edits
    plain = "Hi all. Reading other people's honest stories here finally made me realise I was not alone. Thanks."
    assert paraphrase.core(plain, nlp)[0] == plain[8:-8]  # without a code: the most content-bearing sentence
    text = "Thank you all. I started to talk to my GP about how I felt, because you told me to."
    start = text.index("talk to my GP")
    assert paraphrase.core(text, nlp, [(start, start + 13)])[0] == "I started to talk to my GP about how I felt."
    assert paraphrase.core("Too short here.", nlp) == ("Too short here.", [])


def test_suggest_offers_the_core_for_a_quote_with_a_code(suggester):
    quote = {"quote_id": "q1", "source_post_id": "f1", "text": FORUM[0][1], "code_id": "UA-C3"}
    assert suggester.evidence(quote["text"], "UA-C3")
    made = dict(suggester.candidates(quote["text"], "f1", code_id="UA-C3"))
    cores = [text for text, edits in made.items() if edits[0].startswith("plan: shortened to the core")]
    assert "Reading other people's stories here made me realise I was not alone." in cores
    assert all("spring" not in text and "Thanks" not in text for text in cores)


def test_the_row_says_when_no_rewording_will_do(suggester):
    quote = {"quote_id": "q1", "source_post_id": "f2",
             "text": "My allotment is full of courgettes again and the slugs are winning this year."}
    row = suggester.suggest([quote])[0]  # no dense attacker here: nothing can be called disguised
    assert all(c["verdict"] != "disguised" for c in row["candidates"])
    assert row["no_rewording"] is True and row["advice"] == NO_REWORDING
    assert "composite" in row["advice"] and "summarised report" in row["advice"]
    assert suggester.advice([_candidate("x", verdict="disguised", meaning=0.9)]) is None
    assert suggester.advice([_candidate("x", verdict="disguised", meaning=0.3)]) == MEANING_LOST.format(keeps=0.6)


def test_suggest_file_reads_the_code_column_and_reports_no_rewording(tmp_path):
    from postkit.disguise.suggest import render_summary, suggest_file
    from postkit.io import read_table, write_table

    write_table(pd.DataFrame(FORUM, columns=["post_id", "text"]), tmp_path / "forum.csv")
    write_table(pd.DataFrame([{"quote_id": "q1", "source_post_id": "f1", "text": FORUM[0][1], "code_id": "UA-C3"}]),
                tmp_path / "quotes.csv")
    summary = suggest_file(tmp_path / "quotes.csv", tmp_path / "forum.csv", tmp_path / "out.jsonl", n_candidates=20)
    rows = read_table(tmp_path / "out.jsonl").to_dict("records")
    assert any(c["edits"][0].startswith("plan: shortened to the core") for c in rows[0]["candidates"])
    assert rows[0]["no_rewording"] == (rows[0]["advice"] is not None)
    assert summary["no_rewording"] == int(rows[0]["no_rewording"])
    assert ("no rewording will do" in render_summary(summary)) == bool(rows[0]["no_rewording"])
