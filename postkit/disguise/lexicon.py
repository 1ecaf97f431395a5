"""Offline synonym lexicon for quote disguise: WordNet synonyms by part of speech, inflected.

``postkit disguise suggest`` rewords quotes so that they cannot be searched back to the
forum. This module proposes the words: for a spaCy token it looks up synonyms of the
token's lemma in the same part of speech and inflects them to the token's tag and case
("Helped" -> "Assisted", "Aided").

Everything is local. The synonyms come from ``rules/disguise/synonyms.tsv``, built once
from Princeton WordNet 3.0 by ``scripts/build_synonyms.py`` and installed with postkit
(licence: ``rules/disguise/WORDNET_LICENSE.txt``); inflection uses lemminflect's bundled
data. Nothing is downloaded at run time.

Which synonyms (the reasons are in the build script): only from the lemma's frequent
WordNet senses, ranked by how exclusively each candidate means that sense, without rare,
archaic, slang or offensive words. Words in ``rules/disguise/synonym_stoplist.txt``
(function words, and mental-health words whose synonyms change meaning or stigmatise)
are never replaced or offered; that file is read at run time, so researchers can edit it.

WordNet knows senses, not context: a suggestion is a candidate for a human to accept,
never an automatic rewrite.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import PostkitError

POS_TAGS = {  # spaCy UPOS -> the Penn Treebank tags (token.tag_) it inflects to
    "NOUN": ("NN", "NNS"),
    "VERB": ("VB", "VBD", "VBG", "VBN", "VBP", "VBZ"),
    "ADJ": ("JJ", "JJR", "JJS"),
    "ADV": ("RB", "RBR", "RBS"),
}
BASE_TAG = {"NOUN": "NN", "VERB": "VB", "ADJ": "JJ", "ADV": "RB"}
# Tags whose form is the lemma itself. VBP is the lemma for every verb except "be",
# which is stoplisted; NNP is listed so inflect() stays total over noun tags.
BASE_TAGS = frozenset({"VB", "VBP", "NN", "NNP", "JJ", "RB"})
DEGREE_TAGS = {"JJR": "more", "RBR": "more", "JJS": "most", "RBS": "most"}
KNOWN_TAGS = frozenset(tag for tags in POS_TAGS.values() for tag in tags) | {"NNP", "NNPS"}
# Tokens inside these named entities are names of people, places, organisations or
# works, even when spaCy tags a word in them as a common noun ("Mind" the charity).
NAME_ENTITIES = frozenset({"PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT",
                           "WORK_OF_ART", "LAW", "LANGUAGE"})
DEFAULT_LIMIT = 8


def data_dir() -> Path:
    """``rules/disguise``: in the installed package (postkit/rules) or the source checkout."""
    from ..deid.rules import rules_root

    return rules_root() / "disguise"


@lru_cache(maxsize=1)
def _lexicon() -> dict[tuple[str, str], tuple[str, ...]]:
    """(lemma, UPOS) -> synonyms, best first, read once from synonyms.tsv."""
    path = data_dir() / "synonyms.tsv"
    if not path.is_file():
        raise PostkitError("synonym lexicon not found", path=path,
                           fix="reinstall postkit, or rebuild it with scripts/build_synonyms.py")
    table: dict[tuple[str, str], tuple[str, ...]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3 or fields[1] not in POS_TAGS:
                raise PostkitError("malformed synonym lexicon line (want lemma<TAB>POS<TAB>a|b|c)",
                                   path=path, row=number, fix="rebuild it with scripts/build_synonyms.py")
            table[(fields[0], fields[1])] = tuple(fields[2].split("|"))
    return table


@lru_cache(maxsize=1)
def _stoplist() -> frozenset[str]:
    from ..deid.rules import read_word_list

    return frozenset(word.lower() for word in read_word_list(data_dir() / "synonym_stoplist.txt"))


def _normal(lemma: str) -> str:
    return " ".join(lemma.replace("_", " ").lower().split())


def is_stoplisted(lemma: str) -> bool:
    """True if *lemma* is never replaced nor offered (synonym_stoplist.txt).

    A multiword lemma is stoplisted when any of its words is: "get by" contains the light
    verb "get", "calm down" the mood word "down"; both would carry that word's problem.
    """
    words = _normal(lemma).split()
    stop = _stoplist()
    return not words or " ".join(words) in stop or any(word in stop for word in words)


def synonyms(lemma: str, pos: str, limit: int = DEFAULT_LIMIT) -> list[str]:
    """Synonyms of *lemma* in part of speech *pos* (spaCy UPOS: NOUN, VERB, ADJ or ADV).

    Best first, at most *limit*, as lemmas (not inflected); a multiword synonym is written
    with a space ("give up"). Empty for a stoplisted lemma, another part of speech, or a
    word the lexicon does not have. Stoplisted synonyms are left out.
    """
    pos = pos.upper()
    key = _normal(lemma)
    if pos not in POS_TAGS or limit <= 0 or is_stoplisted(key):
        return []
    found = _lexicon().get((key, pos), ())
    return [word for word in found if not is_stoplisted(word)][:limit]


def _lemminflect(word: str, tag: str, oov: bool) -> str | None:
    import lemminflect

    forms = lemminflect.getInflection(word, tag=tag, inflect_oov=oov)
    return forms[0] if forms else None


def inflect(lemma: str, tag: str) -> str | None:
    """*lemma* inflected to the Penn Treebank *tag* (spaCy ``token.tag_``), or None if unknown.

    VB, VBP, NN, NNP, JJ and RB give the lemma itself. Other forms come from lemminflect's
    dictionary, then its rules for words the dictionary lacks; a comparative or
    superlative it does not list becomes "more X" / "most X" (its rules would say
    "beautifuler"). In a multiword lemma the verb of a phrasal verb is inflected
    ("give up" + VBD -> "gave up") and the head, last word, of a compound noun
    ("panic attack" + NNS -> "panic attacks"). None for a tag that is not a noun, verb,
    adjective or adverb tag (MD, PRP, ...).
    """
    lemma = " ".join(lemma.replace("_", " ").split())
    if not lemma or tag not in KNOWN_TAGS:
        return None
    if tag in BASE_TAGS:
        return lemma
    words = lemma.split(" ")
    if tag in DEGREE_TAGS:
        form = _lemminflect(words[0], tag, oov=False) if len(words) == 1 else None
        return form or f"{DEGREE_TAGS[tag]} {lemma}"
    index = len(words) - 1 if tag.startswith("NN") else 0
    form = _lemminflect(words[index], tag, oov=False) or _lemminflect(words[index], tag, oov=True)
    if form is None:
        return None
    words[index] = form
    return " ".join(words)


def match_case(word: str, model: str) -> str:
    """*word* in the case of *model*: UPPER (two or more capitals), Title, or as given."""
    if len(model) > 1 and model.isupper():
        return word.upper()
    if model[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def replacements(token, limit: int = DEFAULT_LIMIT) -> list[str]:
    """Words that could stand for a spaCy *token*: synonyms inflected to its tag, in its case.

    Empty for tokens that must stay as written: proper nouns and words inside named
    entities (names), numbers, punctuation, stoplisted words, and parts of speech other
    than noun, verb, adjective and adverb. When spaCy's tag does not belong to its part
    of speech (an adjective tagged VBN, "exhausted"; a noun tagged VBG, "crying"), the
    word as written is looked up as the lemma, uninflected.
    """
    pos = token.pos_
    if (pos not in POS_TAGS or token.tag_ in ("NNP", "NNPS") or token.like_num or token.is_punct
            or token.is_space or token.ent_type_ in NAME_ENTITIES):
        return []
    text = token.text
    if is_stoplisted(token.lemma_) or is_stoplisted(text):
        return []
    if token.tag_ in POS_TAGS[pos]:
        lemma, tag = token.lemma_, token.tag_
    else:
        lemma, tag = text, BASE_TAG[pos]
    out: list[str] = []
    for synonym in synonyms(lemma, pos, limit):
        form = inflect(synonym, tag)
        if form is None:
            continue
        form = match_case(form, text)
        if form.lower() != text.lower() and form not in out:
            out.append(form)
    return out
