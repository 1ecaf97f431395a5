"""De-identification: what must be found, what must be left alone, operators, files."""

from __future__ import annotations

import json
import re
import socket

import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.deid.engine import DeidEngine
from postkit.deid.operators import Replacer
from postkit.deid.recognizers import PhraseIndex, nhs_checksum
from postkit.io import read_table, write_table


@pytest.fixture(scope="module")
def engine() -> DeidEngine:
    return DeidEngine()


def found(engine: DeidEngine, text: str) -> list[tuple[str, str]]:
    return [(text[f.start:f.end], f.entity_type) for f in engine.analyze([text])[0]]


def covered(engine: DeidEngine, text: str, target: str) -> set[str]:
    """Entity types of findings that cover every character of ``target`` in ``text``."""
    start = text.index(target)
    end = start + len(target)
    findings = engine.analyze([text])[0]
    return {f.entity_type for f in findings if f.start <= start and end <= f.end}


IDENTIFIERS = [
    # (text, identifier, expected type)
    ("email me on jo.smith@example.org please", "jo.smith@example.org", "EMAIL"),
    ("it's jo.smith [at] example [dot] org", "jo.smith [at] example [dot] org", "EMAIL"),
    ("write to sam at example dot com if you want", "sam at example dot com", "EMAIL"),
    ("text me on 07700 900123 any time", "07700 900123", "PHONE"),
    ("text me on 07700900123", "07700900123", "PHONE"),
    ("my number is +44 7700 900123", "+44 7700 900123", "PHONE"),
    ("ring +44 (0)7700 900456", "+44 (0)7700 900456", "PHONE"),
    ("the clinic is on (0161) 496 0123", "(0161) 496 0123", "PHONE"),
    ("call 0161 496 0123 for the team", "0161 496 0123", "PHONE"),
    ("london office 020 7946 0123", "020 7946 0123", "PHONE"),
    ("freephone 0800 123 4567", "0800 123 4567", "PHONE"),
    ("I live at M1 1AE now", "M1 1AE", "POSTCODE"),
    ("postcode is m11ae", "m11ae", "POSTCODE"),
    ("we're in SW1A 1AA", "SW1A 1AA", "POSTCODE"),
    ("sw1a1aa is where I am", "sw1a1aa", "POSTCODE"),
    ("I live near LS6 so it's close", "LS6", "POSTCODE"),
    ("my NHS number is 943 476 5919", "943 476 5919", "NHS_NUMBER"),
    ("number 9434765919 on the letter", "9434765919", "NHS_NUMBER"),
    ("it says 943-476-5919", "943-476-5919", "NHS_NUMBER"),
    ("my NI number is QQ 12 34 56 C", "QQ 12 34 56 C", "NI_NUMBER"),
    ("ni: qq123456c", "qq123456c", "NI_NUMBER"),
    ("see https://example.org/forum/thread/123 for more", "https://example.org/forum/thread/123", "URL"),
    ("go to www.example.com/help", "www.example.com/help", "URL"),
    ("it's at example.org/forum/thread/99", "example.org/forum/thread/99", "URL"),
    ("thanks @quietfox_88 for that", "@quietfox_88", "USERNAME"),
    ("user moonbeam22 said the same", "moonbeam22", "USERNAME"),
    ("Please be kind.\n– Mod kate_22", "kate_22", "USERNAME"),
    ("I moved to 12 Oak Road last year", "12 Oak Road", "ADDRESS"),
    ("Flat 3, 45 Mill Lane is tiny", "Flat 3, 45 Mill Lane", "ADDRESS"),
    ("post it to 23 station rd", "23 station rd", "ADDRESS"),
    ("I was born 14/03/1998 in a storm", "14/03/1998", "DATE"),
    ("my birthday is 3rd May and I dread it", "3rd May", "DATE"),
    ("it happened on 12 June 2023", "12 June 2023", "DATE"),
    ("I'm 19 and scared", "19", "AGE"),
    ("I am 19 years old", "19 years old", "AGE"),
    ("19yo here, first post", "19yo", "AGE"),
    ("my son, aged 7, is struggling", "7", "AGE"),
    ("I work at St Mary's High School as a TA", "St Mary's High School", "ORG"),
    ("seen at Parkside Medical Practice today", "Parkside Medical Practice", "ORG"),
    ("I'm at the uni of leeds", "uni of leeds", "ORG"),
]


@pytest.mark.parametrize("text, target, entity", IDENTIFIERS, ids=[t[2] + ":" + t[1] for t in IDENTIFIERS])
def test_identifiers_are_found(engine, text, target, entity):
    assert entity in covered(engine, text, target), found(engine, text)


NAMES = [
    ("Please be kind.\n– Mod Kate", "Kate"),
    ("Sarah Jones told me to post here", "Sarah Jones"),
    ("my mate dave said it gets better", "dave"),
    ("Will said I should ring them", "Will"),
    ("I saw Dr Patel on Monday", "Patel"),
    ("talked to my sister Hope about it", "Hope"),
    ("Thanks so much Priya, you're a star", "Priya"),
]


@pytest.mark.parametrize("text, name", NAMES)
def test_names_are_found_including_lowercase_and_word_names(engine, text, name):
    assert covered(engine, text, name), found(engine, text)


@pytest.mark.parametrize("text, place", [("we moved to leeds last year", "leeds"),
                                         ("I grew up in Didsbury", "Didsbury"),
                                         ("got a job at Tesco in Hulme", "Hulme")])
def test_places_are_found(engine, text, place):
    assert covered(engine, text, place), found(engine, text)


KEEP = [
    ("Please ring Samaritans on 116 123 if it gets bad", ["Samaritans", "116 123"]),
    ("You can text Shout on 85258 any time", ["Shout", "85258"]),
    ("I called NHS 111 and they were good", ["NHS 111"]),
    ("if you're in danger call 999", ["999"]),
    ("I'm on sertraline 50mg and propranolol", ["sertraline", "50mg", "propranolol"]),
    ("It's been 3 weeks, I wake at 2am every night", ["3 weeks", "2am"]),
    ("My GP referred me to CAMHS, then A&E sent me home, the NHS is stretched", ["GP", "CAMHS", "A&E", "NHS"]),
    ("Mind has good info on this", ["Mind"]),
    ("I hope you feel better. I will try too, feeling blue today", ["hope", "will", "blue"]),
]


@pytest.mark.parametrize("text, keep", KEEP, ids=[k[1][0] for k in KEEP])
def test_allow_listed_and_ordinary_words_are_kept(engine, text, keep):
    findings = engine.analyze([text])[0]
    for phrase in keep:
        start = text.index(phrase)
        end = start + len(phrase)
        assert not [f for f in findings if f.start < end and start < f.end], (phrase, found(engine, text))


def test_invalid_nhs_checksum_is_not_an_nhs_number(engine):
    assert nhs_checksum("943 476 5919") and not nhs_checksum("943 476 5918")
    assert "NHS_NUMBER" not in covered(engine, "ref 943 476 5918 on it", "943 476 5918") | {""} - {""}


def test_findings_do_not_overlap_and_are_sorted(engine):
    text = "Sarah Jones at 12 Oak Road, Leeds LS6 2AB, 07700 900123, sarah@example.com"
    findings = engine.analyze([text])[0]
    assert findings == sorted(findings, key=lambda f: f.start)
    assert all(a.end <= b.start for a, b in zip(findings, findings[1:]))


@pytest.mark.parametrize("value", ["", "   ", None, float("nan"), 12345])
def test_empty_and_non_string_text(engine, value):
    assert engine.analyze([value]) == [[]]


def test_very_long_post_is_analysed_in_pieces(engine):
    text = "I feel ok today. " * 20_000 + "Call me on 07700 900123."
    findings = engine.analyze([text])[0]
    assert [text[f.start:f.end] for f in findings] == ["07700 900123"]


# --------------------------------------------------------------------------- operators

POSTS = [
    "Dave said hi. Then dave said bye. Sarah was there too.",
    "Dave came back. My NHS number is 943 476 5919.",
]


def test_tag_operator(engine):
    replacer = Replacer("tag", b"k" * 32)
    text = POSTS[0]
    assert replacer.apply(text, engine.analyze([text])[0], "t1") == \
        "[PERSON] said hi. Then [PERSON] said bye. [PERSON] was there too."


def test_surrogates_are_consistent_within_a_thread_and_distinct_per_name(engine):
    replacer = Replacer("surrogate", b"k" * 32)
    found_0, found_1 = engine.analyze(POSTS)
    first = replacer.apply(POSTS[0], found_0, "thread:t1")
    second = replacer.apply(POSTS[1], found_1, "thread:t1")
    names = re.findall(r"(\w+) said", first)
    assert names[0].lower() == names[1].lower()  # "Dave" and "dave" are one person
    assert names[0] not in ("Dave", "dave") and "Sarah" not in first
    assert second.split()[0] == names[0]  # the same surrogate later in the thread
    sarah = first.split(". ")[-1].split()[0]
    assert sarah.lower() != names[0].lower()
    nhs = re.search(r"\d{3} \d{3} \d{4}", second).group(0)
    assert nhs != "943 476 5919" and nhs.startswith("999") and nhs_checksum(nhs)


def test_hash_operator_is_keyed_and_consistent_across_posts(engine):
    found_0, found_1 = engine.analyze(POSTS)
    a = Replacer("hash", b"k" * 32)
    first, second = a.apply(POSTS[0], found_0, "p1"), a.apply(POSTS[1], found_1, "p2")
    tag = re.match(r"\[PERSON_[0-9a-f]{8}\]", first).group(0)
    assert second.startswith(tag)
    other_key = Replacer("hash", b"j" * 32).apply(POSTS[0], found_0, "p1")
    assert not other_key.startswith(tag)


# --------------------------------------------------------------------------- files and CLI

def corpus_frame(n: int = 12) -> pd.DataFrame:
    rows = []
    for i in range(n):
        rows.append({
            "post_id": f"p{i:03d}", "forum": "Robin", "user_id": f"u{i % 3}", "thread_id": f"t{i // 4}",
            "text": f"Post {i}: ring Sarah on 07700 900{i:03d} or email sarah{i}@example.org. I hope it helps.",
            "created_at": "2021-01-01T00:00:00Z", "likes": str(i),
        })
    return pd.DataFrame(rows)


def run_deid(*args):
    return CliRunner().invoke(main, ["deid", *[str(a) for a in args]])


def test_deid_file_replaces_text_and_user_ids_and_keeps_other_columns(tmp_path):
    source = tmp_path / "posts.csv"
    write_table(corpus_frame(), source)
    out, spans = tmp_path / "deid.csv", tmp_path / "spans.jsonl"
    result = run_deid(source, "--output", out, "--spans-out", spans, "--processes", 1)
    assert result.exit_code == 0, result.output
    frame = read_table(out)
    original = corpus_frame()
    assert frame.columns.tolist() == original.columns.tolist()
    assert frame["likes"].tolist() == original["likes"].tolist()
    assert frame["text"][0] == "Post 0: ring [PERSON] on [PHONE] or email [EMAIL]. I hope it helps."
    assert frame["user_id"][0].startswith("user_") and frame["user_id"][0] == frame["user_id"][3]
    assert "u0" not in out.read_text()
    lines = [json.loads(line) for line in spans.read_text().splitlines()]
    assert len(lines) == 12 and lines[0]["post_id"] == "p000" and lines[0]["column"] == "text"
    for span in lines[0]["spans"]:
        assert set(span) == {"start", "end", "entity_type", "score", "recognizer"}
    types = {original["text"][0][s["start"]:s["end"]]: s["entity_type"] for s in lines[0]["spans"]}
    assert types["07700 900000"] == "PHONE" and types["sarah0@example.org"] == "EMAIL"
    assert "PHONE" in result.output and "posts/s" in result.output


def test_same_output_whatever_batch_size_or_processes(tmp_path):
    source = tmp_path / "posts.jsonl"
    write_table(corpus_frame(20), source)
    outputs = []
    for args in (["--batch-size", 3, "--processes", 1], ["--batch-size", 1000, "--processes", 1],
                 ["--batch-size", 2, "--processes", 2]):
        out = tmp_path / f"out{len(outputs)}.jsonl"
        assert run_deid(source, "--output", out, "--operator", "surrogate", *args).exit_code == 0
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] == outputs[2]


def test_extra_text_columns(tmp_path):
    frame = corpus_frame(3).assign(title=["Hi from Sarah", "no names", "call 07700 900999"])
    source = tmp_path / "posts.parquet"
    write_table(frame, source)
    out = tmp_path / "out.parquet"
    assert run_deid(source, "--output", out, "--text-column", "text", "--text-column", "title",
                    "--processes", 1).exit_code == 0
    assert read_table(out)["title"].tolist() == ["Hi from [PERSON]", "no names", "call [PHONE]"]


def test_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "posts.csv"
    bad.write_bytes(b"post_id,text\np1,caf\xe9 in Leeds\n")
    result = run_deid(bad, "--output", tmp_path / "o.csv", "--processes", 1)
    assert result.exit_code == 1 and "not UTF-8" in result.stderr and not (tmp_path / "o.csv").exists()
    nocol = tmp_path / "n.csv"
    nocol.write_text("post_id,body\np1,hello\n")
    result = run_deid(nocol, "--output", tmp_path / "o.csv", "--processes", 1)
    assert result.exit_code == 1 and "missing column 'text'" in result.stderr
    result = run_deid(nocol, "--output", tmp_path / "o.csv", "--entities", "PERSON,SHOESIZE")
    assert result.exit_code == 2 and "unknown entity type SHOESIZE" in result.stderr


def test_unknown_model_is_a_clear_error(tmp_path):
    source = tmp_path / "posts.csv"
    write_table(corpus_frame(2), source)
    result = run_deid(source, "--output", tmp_path / "o.csv", "--model", "en_core_web_nonexistent")
    assert result.exit_code == 1 and "is not installed" in result.stderr and "never downloads" in result.stderr


def test_nothing_touches_the_network(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    source = tmp_path / "posts.csv"
    write_table(corpus_frame(4), source)
    for operator in ("tag", "surrogate", "hash"):
        result = CliRunner().invoke(main, ["deid", str(source), "--output", str(tmp_path / f"{operator}.csv"),
                                           "--operator", operator, "--processes", "1"],
                                    catch_exceptions=False)
        assert result.exit_code == 0


def test_forum_pseudonyms_generated_saved_and_applied(tmp_path):
    frame = corpus_frame(4)
    frame["forum"] = ["Calm Harbour", "Calm Harbour", "Night Owls", "Night Owls"]
    frame.loc[0, "text"] = "I found Calm Harbour via calmharbour.example.org/join, better than night owls"
    source = tmp_path / "posts.csv"
    write_table(frame, source)
    mapping = tmp_path / "study" / "forums.csv"
    out = tmp_path / "out.csv"
    result = run_deid(source, "--output", out, "--forum-pseudonyms", mapping, "--processes", 1)
    assert result.exit_code == 0, result.output
    assert mapping.read_text().splitlines()[:3] == ["forum,pseudonym,aliases,urls", "Calm Harbour,Robin,,",
                                                    "Night Owls,Magpie,,"]
    assert read_table(out)["forum"].tolist() == ["Robin", "Robin", "Magpie", "Magpie"]
    # Without the forum's URL in the map, the URL is still removed as a URL.
    assert read_table(out)["text"][0] == "I found Robin via [URL], better than Magpie"
    mapping.write_text("forum,pseudonym,aliases,urls\nCalm Harbour,Wren,CH,calmharbour.example.org\n"
                       "Night Owls,Jay,,\n")
    assert run_deid(source, "--output", out, "--forum-pseudonyms", mapping, "--processes", 1).exit_code == 0
    assert read_table(out)["text"][0] == "I found Wren via Wren, better than Jay"  # URL in the map
    mapping.write_text("forum,pseudonym\nCalm Harbour,Wren\n")
    result = run_deid(source, "--output", out, "--forum-pseudonyms", mapping, "--processes", 1)
    assert result.exit_code == 1 and "forum 'Night Owls' has no pseudonym" in result.stderr


@pytest.mark.parametrize("text", ["it's a 10 minute walk from here", "I have 2 really close friends",
                                  "3 hours each way on the bus", "3 nights in a row now",
                                  "got some new boots today"])
def test_everyday_phrases_are_not_addresses_or_employers(engine, text):
    assert found(engine, text) == []


def test_normal_run_prints_no_warnings(tmp_path):
    source = tmp_path / "posts.csv"
    write_table(corpus_frame(3), source)
    result = run_deid(source, "--output", tmp_path / "o.csv", "--processes", 1, "--quiet")
    assert result.exit_code == 0 and result.stderr == "" and result.output == ""


def test_spans_do_not_include_surrounding_punctuation(engine):
    text = "Take care all.\n\n- Lee"
    assert found(engine, text) == [("Lee", "PERSON")]


# --------------------------------------------------------------------------- speed (same findings, less work)


class _CountingTokenizer:
    """Wraps a spaCy tokenizer, counting calls (its special cases are what PhraseIndex reads)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.rules, self.calls = tokenizer, tokenizer.rules, 0

    def __call__(self, text):
        self.calls += 1
        return self.tokenizer(text)


def test_phrase_index_keys_match_the_tokenizer_without_calling_it_for_plain_phrases(engine):
    tokenizer = _CountingTokenizer(engine.nlp.tokenizer)
    plain = ["Sertraline", "insulin glargine", "Ashby de la Zouch", "Royal Mail"]
    other = ["Stoke-on-Trent", "Sainsbury's", "cannot", "New  York", "St. Helens", "Zoë Ball", "A1 Taxis"]
    index = PhraseIndex(tokenizer, plain + other)
    assert tokenizer.calls == len(other)  # plain words joined by single spaces need no tokenizer
    for entry in plain + other:
        assert tuple(t.lower_ for t in engine.nlp.tokenizer(entry)) in index.phrases, entry


class _CountingDict(dict):
    gets = 0

    def get(self, *args):
        type(self).gets += 1
        return super().get(*args)


def test_phrase_index_finds_longest_phrases_and_skips_tokens_that_start_none(engine):
    index = PhraseIndex(engine.nlp.tokenizer, ["Royal Mail", "Royal Mail Group Pension Scheme Trustees Ltd",
                                               "royal", "mail group", "Leeds"])
    doc = engine.nlp.make_doc("I worked for royal mail group then Royal Mail, in Leeds, royal blue " + "and so on " * 200)
    assert [doc[s:e].text for s, e, _ in index.find(doc)] == ["royal mail", "Royal Mail", "Leeds", "royal"]
    index.phrases = _CountingDict(index.phrases)
    _CountingDict.gets = 0
    index.find(engine.nlp.make_doc("and so on " * 200))
    assert _CountingDict.gets == 0  # no token starts a phrase: no phrase lookups at all


def test_only_the_ner_component_is_loaded(engine):
    assert engine.nlp.component_names == ["ner"]  # tagger, parser, lemmatizer… are never loaded


@pytest.mark.parametrize("listener, expected", [
    (None, ["tok2vec", "tagger"]),
    ('[components.ner.model.tok2vec]\n@architectures = "spacy.Tok2VecListener.v1"\nwidth = 96\nupstream = "*"\n',
     ["tagger"]),
    ('[components.ner.model.tok2vec]\n@architectures = "spacy.Tok2VecListener.v1"\nwidth = 96\n'
     'upstream = "tok2vec"\n', ["tagger"]),
])
def test_components_ner_does_not_read_are_excluded_from_loading(tmp_path, listener, expected):
    from postkit.deid.model import _not_needed_by_ner

    config = ('[nlp]\nlang = "en"\npipeline = ["tok2vec","tagger","ner"]\n\n[components]\n\n'
              '[components.tok2vec]\nfactory = "tok2vec"\n\n[components.tagger]\nfactory = "tagger"\n\n'
              '[components.ner]\nfactory = "ner"\n\n[components.ner.model]\n'
              '@architectures = "spacy.TransitionBasedParser.v2"\n\n' + (listener or ""))
    (tmp_path / "config.cfg").write_text(config, encoding="utf-8")
    assert _not_needed_by_ner(tmp_path) == expected
    (tmp_path / "config.cfg").write_text("not a config [", encoding="utf-8")
    assert _not_needed_by_ner(tmp_path) == []  # unreadable: load everything, disable after


def test_lazy_nlp_artifacts_equal_presidios(engine):
    from presidio_analyzer.nlp_engine import NlpArtifacts

    from postkit.deid.engine import _Artifacts

    doc = engine.nlp.make_doc("My NHS number is 943 476 5919 and we moved round LS6, the patient said.")
    lazy = _Artifacts(doc, engine._presidio_nlp)
    assert "keywords" not in vars(lazy) and "tokens_indices" not in vars(lazy)  # nothing computed up front
    eager = NlpArtifacts(entities=list(doc.ents), tokens=doc, tokens_indices=[t.idx for t in doc],
                         lemmas=[t.lower_ for t in doc], nlp_engine=engine._presidio_nlp, language="en")
    assert (lazy.keywords, lazy.tokens_indices, lazy.lemmas, lazy.entities, lazy.scores) == \
        (eager.keywords, eager.tokens_indices, eager.lemmas, eager.entities, eager.scores)


def test_context_words_still_raise_pattern_scores(engine):
    # the keywords Presidio's context enhancer reads are computed lazily (engine._Artifacts)
    (plain,), (cued,) = engine.analyze(["it was 14/03/1998 then"]), engine.analyze(["I was born 14/03/1998 then"])
    assert (plain[0].entity_type, cued[0].entity_type) == ("DATE", "DATE") and cued[0].score > plain[0].score


def test_patterns_are_compiled_once_with_their_recognizers_flags(engine):
    from presidio_analyzer import PatternRecognizer

    from postkit.deid.recognizers import CompiledPattern

    recognizers = [r for r in engine.analyzer.registry.recognizers if isinstance(r, PatternRecognizer)]
    compiled = {id(p): p.compiled_regex for r in recognizers for p in r.patterns}
    assert compiled and all(p.compiled_with_flags == r.global_regex_flags for r in recognizers for p in r.patterns)
    engine.analyze(["call 07700 900123 or jo@example.org, 12 Oak Road, M1 1AE, 14/03/1998"])
    assert all(p.compiled_regex is compiled[id(p)] for r in recognizers for p in r.patterns)  # not recompiled
    with pytest.raises(ValueError, match="Invalid regex"):
        CompiledPattern("bad", "(unclosed", 0.5, 0)
    with pytest.raises(ValueError, match="Invalid score"):
        CompiledPattern("bad", "x", 1.5, 0)


def test_a_sentence_repeated_in_a_batch_goes_through_the_ner_once(engine):
    post = "Thanks so much Tommo. We met at Greggs in Wakefield!\nTake care Tommo x"
    alone = engine.analyze([post])[0]
    before = dict(engine.stats)
    assert engine.analyze([post, "Hello.", post, post]) == [alone, [], alone, alone]
    read = engine.stats["ner_chars"] - before["ner_chars"]
    run = engine.stats["ner_run_chars"] - before["ner_run_chars"]
    assert read > 0 and run * 3 == read  # the gate chose three copies; the NER read one


def test_recognizers_run_in_the_order_they_were_added(engine):
    # Presidio picks them through a set (memory-address order); the name kept for two identical
    # findings, and so --spans-out, must not change from run to run.
    registry = engine.analyzer.registry
    for entities in (engine.entities, ["PERSON", "POSTCODE", "AGE"]):
        chosen = registry.get_recognizers(language="en", entities=entities)
        assert chosen == [r for r in registry.recognizers if r in chosen]
    # "Royal Mail": the employer list and the NER find the same span, type and score
    assert [f.recognizer for f in engine.analyze(["My manager at Royal Mail has been great"])[0]] \
        == ["gazetteer:gazetteer"]


def test_deid_command_collects_garbage_less_often_after_start_up(tmp_path, monkeypatch):
    import gc

    source = tmp_path / "posts.csv"
    write_table(corpus_frame(2), source)
    threshold = gc.get_threshold()
    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))  # the test process keeps collecting as usual
    gc.set_threshold(700, 10, 10)  # Python's default (an earlier `postkit deid` in this process raised it)
    try:
        assert run_deid(source, "--output", tmp_path / "o.csv", "--processes", 1, "--quiet").exit_code == 0
        assert gc.get_threshold()[0] > 700 and frozen == [True]
    finally:
        gc.set_threshold(*threshold)
