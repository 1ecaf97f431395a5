"""Rule-based paraphrase operations that make a quote harder to search back to its post.

Each operation takes a text and returns ``(new_text, edits)``, where ``edits`` are short
human-readable notes ("felt → experienced", "clause order: because-clause first") a
reviewer can audit. The operations are deterministic and offline:

* :func:`generalise` — drops or blurs identifying details: de-identification tags
  ("[PERSON]" → "someone"), exact durations and counts ("3 years" → "a few years"),
  ages, weekdays, months, bracketed asides;
* :func:`restructure` — grammar and word order: fronting or back-shifting an adverbial
  clause ("…, because X" ↔ "Because X, …"), active → passive voice for simple
  subject–verb–object sentences, expanding or contracting auxiliaries ("I'm" ↔ "I am"),
  and swapping the first two sentences;
* :func:`substitute` — WordNet synonyms (part of speech and inflection kept, from the
  shipped lexicon) for the words that make the quote *findable*: the caller passes a
  weight per word (how much it contributes to the source's BM25 score and to shared
  runs), and the highest-weighted words are replaced first;
* :func:`break_runs` — replaces further words inside any run of ``run`` or more words
  still shared with the source, so no phrase search finds it.

Why hand-written rules and not a paraphrasing model: nothing may be downloaded at run
time and no CPU-sized offline paraphraser ships on PyPI; teams that have one plug it in
through :mod:`postkit.disguise.suggest`'s external-paraphraser hook and get the same
scoring.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from ..errors import PostkitError
from . import lexicon

Edit = str

# --------------------------------------------------------------------------- generalise

_NUMBER_WORDS = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty)"
_UNITS = r"(years?|months?|weeks?|days?|hours?|nights?|times)"
_WEEKDAYS = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_MONTHS = r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
_TAG = re.compile(r"\[(PERSON|USERNAME|LOCATION|PLACE|ADDRESS|POSTCODE|ORG|EMPLOYER|DATE|AGE|EMAIL|PHONE|URL|"
                  r"NHS_NUMBER|NI_NUMBER|FORUM)(?:_[0-9a-f]+)?\]")
_TAG_WORDS = {
    "PERSON": "someone", "USERNAME": "another member", "LOCATION": "my town", "PLACE": "my town",
    "ADDRESS": "my address", "POSTCODE": "my area", "ORG": "work", "EMPLOYER": "work", "DATE": "recently",
    "AGE": "my age", "EMAIL": "email", "PHONE": "phone", "URL": "a website", "NHS_NUMBER": "my details",
    "NI_NUMBER": "my details", "FORUM": "this forum",
}
_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str], str]
_GENERALISATIONS: list[_Rule] = [
    (re.compile(r"\b(i'm|i am|im|i was)\s+(\d\d)\b(?!\s*(?:%|percent))(?:\s*(?:years?|yrs?)[\s-]*old|\s*y/?o\b)?",
                re.I),
     lambda m: ("I was" if m.group(1).lower() == "i was" else "I'm") + f" in my {_decade(int(m.group(2)))}", "age"),
    (re.compile(r"\b(?:aged|age|at the age of)\s+(\d\d)\b", re.I),
     lambda m: f"in my {_decade(int(m.group(1)))}", "age"),
    (re.compile(r"\b(\d{1,2})[\s-]*(?:years?|yrs?)[\s-]*old\b", re.I),
     lambda m: _age_adjective(int(m.group(1))), "age"),
    (re.compile(r"\s*\(?\b\d\d\s?[mfMF]\b\)?(?=[\s,.;:!?]|$)"), lambda m: "", "age and sex"),
    (re.compile(r"\b(?:back in|in|since)\s+(?:19[5-9]\d|20[0-4]\d)\b", re.I),
     lambda m: "for some years" if m.group(0).lower().startswith("since") else "some years ago", "year"),
    (re.compile(rf"\b(?:(for|over|about|nearly|almost)\s+)?{_NUMBER_WORDS}\s+{_UNITS}\b", re.I),
     lambda m: (m.group(1) + " " if (m.group(1) or "").lower() in ("for", "over") else "")
     + ("a few " if m.group(2).lower() not in ("times",) else "several ")
     + (m.group(2) if m.group(2).endswith("s") else m.group(2) + "s"),
     "exact duration"),
    (re.compile(rf"\b(?:last|this|next|on)\s+{_WEEKDAYS}\b", re.I), lambda m: "recently", "weekday"),
    (re.compile(rf"\b(?:in|since|last|this)\s+{_MONTHS}\b(?:\s+\d{{4}})?", re.I), lambda m: "a while ago", "month"),
    (re.compile(r"\s*\([^()]{1,80}\)"), lambda m: "", "aside in brackets"),
]
# Identifiers a de-identified quote should not have, but a raw one may: every candidate
# drops them, whatever else it changes (fail closed).
_IDENTIFIERS: list[_Rule] = [
    (re.compile(r"\s*(?<![\w.])@[A-Za-z0-9_.]{2,}"), lambda m: "", "@-mention"),
    (re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), lambda m: "email", "email address"),
    (re.compile(r"(?:\+44\s?(?:\(0\)\s?)?|\b0)\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}\b"), lambda m: "my number",
     "phone number"),
    (re.compile(r"\b(?:https?://|www\.)\S*[^\s.,!?;:)]", re.I), lambda m: "a website", "web address"),
]


def _age_adjective(age: int) -> str:
    """An exact age as a loose one: "15 year old" -> "teenage", "34-year-old" -> "thirty-something"."""
    if age < 13:
        return "young"
    if age < 20:
        return "teenage"
    words = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy"}
    return f"{words[age // 10]}-something" if age // 10 in words else "older"


def _decade(age: int) -> str:
    names = {1: "teens", 2: "twenties", 3: "thirties", 4: "forties", 5: "fifties", 6: "sixties", 7: "seventies"}
    return names.get(age // 10, "later years")


@lru_cache(maxsize=1)
def _medications() -> re.Pattern[str] | None:
    """Medicine names from de-identification's allow-list (rules/deid/allow_medications.txt):
    a named drug is a rare word that makes a quote easy to search for."""
    from ..deid.rules import read_word_list, rules_root

    names = sorted({n.lower() for n in read_word_list(rules_root() / "deid" / "allow_medications.txt")
                    if n.strip()}, key=len, reverse=True)
    if not names:
        return None
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w-])", re.I)


@lru_cache(maxsize=1)
def _named_specifics() -> tuple[re.Pattern[str] | None, dict[str, str], str, str]:
    """Named services and UK places to generalise: one case-sensitive regex (longest name first),
    the service names' generic wordings, and the words for a place (rules/disguise/generalise.yaml)."""
    import yaml

    from ..deid.rules import read_word_list, rules_root

    path = rules_root() / "disguise" / "generalise.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PostkitError(f"cannot read the generalisation rules ({type(exc).__name__})", path=path,
                           fix="restore rules/disguise/generalise.yaml") from None
    unknown = sorted(set(data) - {"place", "place_after_to", "services"}) if isinstance(data, dict) else ["?"]
    services = data.get("services") if isinstance(data, dict) else None
    if unknown or not isinstance(services, dict) or not all(
            isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip() for k, v in services.items()):
        raise PostkitError("expected place, place_after_to and services (name: generic wording)", path=path,
                           fix="see the comments at the top of the file")
    place, after_to = str(data.get("place", "my town")), str(data.get("place_after_to", "another town"))
    deid = rules_root() / "deid"
    ambiguous = set(read_word_list(deid / "ambiguous_places.txt"))
    places = [p for p in read_word_list(deid / "uk_places.txt") if p not in ambiguous and p[:1].isupper()]
    names = sorted(set(services) | set(places), key=len, reverse=True)
    if not names:
        return None, {}, place, after_to
    pattern = re.compile(r"(?<![\w&'])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w&])")
    return pattern, dict(services), place, after_to


def _generalise_names(text: str, edits: list[Edit]) -> str:
    """Named services become their generic wording; UK places become "my town"."""
    pattern, services, place, after_to = _named_specifics()
    if pattern is None:
        return text

    def swap(match: re.Match[str]) -> str:
        name = match.group(0)
        if name in services:
            new, what = services[name], "named service"
        else:
            before = text[: match.start()].rstrip().lower()
            new, what = (after_to if re.search(r"\bto$", before) else place), "place"
            if re.search(r"\b(?:my|the|a|an)$", before):
                new = new.split(" ", 1)[-1]  # "the Leeds branch" -> "the town branch"
        if _at_sentence_start(text, match.start()):
            new = _upper_first(new)
        edits.append(f"generalised {what}: {name!r} → {new!r}")
        return new

    return pattern.sub(swap, text)


def _at_sentence_start(text: str, position: int) -> bool:
    before = text[:position].rstrip()
    return not before or before[-1] in ".!?"


def _generalise_medications(text: str, edits: list[Edit]) -> str:
    pattern = _medications()
    if pattern is None:
        return text

    def swap(match: re.Match[str]) -> str:
        before = text[: match.start()].rstrip().lower()
        word = "my medication"
        if re.search(r"\b(?:my|the|on|of|this|that|some|new)$", before):
            word = "medication"
        if _at_sentence_start(text, match.start()):
            word = _upper_first(word)
        edits.append(f"generalised medicine name: {match.group(0)!r} → {word!r}")
        return word

    return pattern.sub(swap, text)


def generalise(text: str, details: bool = True) -> tuple[str, list[Edit]]:
    """Drop identifiers (de-identification tags, @-mentions, emails, web addresses) and, with
    ``details``, blur identifying details (durations, ages, days, months, asides); each
    change is listed as an edit."""
    edits: list[Edit] = []

    def tag_word(match: re.Match[str]) -> str:
        word = _TAG_WORDS.get(match.group(1), "someone")
        edits.append(f"generalised {match.group(0)} → {word}")
        return word

    text = _TAG.sub(tag_word, text)
    if details:
        text = _generalise_medications(text, edits)
        text = _generalise_names(text, edits)
    for pattern, replace, what in _IDENTIFIERS + (_GENERALISATIONS if details else []):
        def apply(match: re.Match[str], replace=replace, what=what) -> str:
            new = replace(match)
            edits.append(f"generalised {what}: {match.group(0).strip()!r} → {new!r}" if new
                         else f"dropped {what}: {match.group(0).strip()!r}")
            lead = " " if match.group(0)[:1].isspace() and new else ""
            if new and _at_sentence_start(match.string, match.start()):
                new = _upper_first(new)
            return lead + new

        text = pattern.sub(apply, text)
    return _tidy(text), edits


# --------------------------------------------------------------------------- restructure

_CONTRACTIONS = [
    ("I'm", "I am"), ("I've", "I have"), ("I'll", "I will"), ("you're", "you are"), ("you've", "you have"),
    ("we're", "we are"), ("they're", "they are"), ("it's", "it is"), ("that's", "that is"),
    ("there's", "there is"), ("don't", "do not"), ("doesn't", "does not"), ("didn't", "did not"),
    ("can't", "cannot"), ("couldn't", "could not"), ("won't", "will not"), ("wouldn't", "would not"),
    ("isn't", "is not"), ("aren't", "are not"), ("wasn't", "was not"), ("weren't", "were not"),
    ("haven't", "have not"), ("hasn't", "has not"), ("hadn't", "had not"), ("shouldn't", "should not"),
]
_FRONTABLE = {"because", "when", "since", "after", "before", "although", "though", "if", "until", "while",
              "once", "whenever"}
_SUBJECT_TO_OBJECT = {"i": "me", "he": "him", "she": "her", "we": "us", "they": "them", "you": "you", "it": "it"}
_OBJECT_TO_SUBJECT = {"me": "I", "him": "he", "her": "she", "us": "we", "them": "they", "you": "you", "it": "it"}


def _case_like(word: str, model: str) -> str:
    if model[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def toggle_contractions(text: str) -> tuple[str, list[Edit]]:
    """Expand contractions if the text has any, otherwise contract what can be contracted."""
    normalised = text.replace("\u2019", "'")
    expand = any(re.search(rf"\b{re.escape(short)}\b", normalised, re.I) for short, _ in _CONTRACTIONS)
    edits: list[Edit] = []
    for short, long in _CONTRACTIONS:
        src, dst = (short, long) if expand else (long, short)
        pattern = re.compile(rf"\b{re.escape(src)}\b", re.I)

        def swap(match: re.Match[str], dst=dst) -> str:
            return dst if dst.startswith("I") else _case_like(dst, match.group(0))

        normalised, n = pattern.subn(swap, normalised)
        if n:
            edits.append(f"{'expanded' if expand else 'contracted'} {src!r} → {dst!r}")
    return (normalised if edits else text), edits


def _sentence_text(tokens: list[Any]) -> str:
    return "".join(t.text_with_ws for t in tokens).strip()


def _lower_first(text: str, first_token: Any) -> str:
    if first_token.text == "I" or first_token.pos_ == "PROPN" or first_token.text.isupper():
        return text
    return text[:1].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _body_and_end(sent: Any) -> tuple[list[Any], str]:
    """A sentence's tokens without its final punctuation mark, and that mark ("" if none)."""
    tokens = list(sent)
    end_punct = tokens[-1].text if tokens[-1].is_punct else ""
    return (tokens[:-1] if end_punct else tokens), end_punct


def _reorder_clause(sent: Any) -> tuple[str, Edit] | None:
    """Front a final adverbial clause ("X because Y." → "Because Y, X.") or move a fronted one back."""
    body, end_punct = _body_and_end(sent)
    for mark in (t for t in body if t.dep_ in ("mark", "advmod") and t.lower_ in _FRONTABLE
                 and t.head.dep_ == "advcl"):
        clause = sorted(mark.head.subtree, key=lambda t: t.i)
        first, last = clause[0].i - sent.start, clause[-1].i - sent.start
        if first != mark.i - sent.start:
            continue
        if last == len(body) - 1 and first > 0:  # final clause → front
            main = body[:first]
            while main and main[-1].is_punct:
                main = main[:-1]
            if len(main) < 2:
                return None
            clause_text = _upper_first(_sentence_text(body[first:]))
            main_text = _lower_first(_sentence_text(main), main[0])
            return f"{clause_text}, {main_text}{end_punct}", f"clause order: '{mark.lower_}' clause moved to the front"
        if first == 0 and last < len(body) - 2:  # fronted clause → back
            rest = body[last + 1 :]
            while rest and rest[0].is_punct:
                rest = rest[1:]
            if len(rest) < 2:
                return None
            main_text = _upper_first(_sentence_text(rest))
            clause_text = _lower_first(_sentence_text(body[: last + 1]), body[0])
            return f"{main_text} {clause_text}{end_punct}", f"clause order: '{mark.lower_}' clause moved to the end"
    return None


def _be_form(word: str, tag: str, tense: str) -> str:
    """The form of "be" agreeing with a subject (its lowercase head word and PTB tag)."""
    plural = word in ("we", "they", "you") or tag in ("NNS", "NNPS")
    if tense == "past":
        return "were" if plural else "was"
    return "am" if word == "i" else "are" if plural else "is"


def _passive(sent: Any) -> tuple[str, Edit] | None:
    """Active → passive for a plain subject–verb–object sentence ("X helped me" → "I was helped by X")."""
    root = sent.root
    if root.pos_ != "VERB" or root.tag_ not in ("VBD", "VBZ", "VBP"):
        return None
    children = list(root.children)
    blocking = ("aux", "auxpass", "neg", "nsubjpass", "dative", "ccomp", "xcomp", "conj", "prt")
    if any(c.dep_ in blocking for c in children):
        return None
    subjects = [c for c in children if c.dep_ == "nsubj"]
    objects = [c for c in children if c.dep_ == "dobj"]
    if len(subjects) != 1 or len(objects) != 1:
        return None
    subject, obj = subjects[0], objects[0]
    if not (subject.i < root.i < obj.i):
        return None
    participle = lexicon.inflect(root.lemma_.lower(), "VBN")
    if not participle:
        return None
    subj_tokens = sorted(subject.subtree, key=lambda t: t.i)
    obj_tokens = sorted(obj.subtree, key=lambda t: t.i)
    if subj_tokens[0].i != sent.start:
        return None  # something precedes the subject (an adverbial): keep it simple, skip
    body, end_punct = _body_and_end(sent)
    tail = [t for t in body if t.i > obj_tokens[-1].i]
    if obj.lower_ in _OBJECT_TO_SUBJECT and len(obj_tokens) == 1:
        new_subject = _OBJECT_TO_SUBJECT[obj.lower_]
    elif obj.pos_ in ("NOUN", "PROPN"):
        new_subject = _sentence_text(obj_tokens)
    else:
        return None
    if subject.lower_ in _SUBJECT_TO_OBJECT and len(subj_tokens) == 1:
        agent = _SUBJECT_TO_OBJECT[subject.lower_]
    elif subject.pos_ in ("NOUN", "PROPN"):
        agent = _lower_first(_sentence_text(subj_tokens), subj_tokens[0])
    else:
        return None
    tense = "past" if root.tag_ == "VBD" else "present"
    pronoun = obj.lower_ in _OBJECT_TO_SUBJECT
    be = _be_form(new_subject.lower() if pronoun else obj.lower_, "PRP" if pronoun else obj.tag_, tense)
    parts = [_upper_first(new_subject), be, participle]
    if tail:
        parts.append(_sentence_text(tail))
    parts += ["by", agent]
    return " ".join(parts) + end_punct, "voice: active → passive"


_FRONTABLE_PREPS = frozenset({"at", "in", "on", "after", "before", "during", "since", "around", "throughout",
                              "within"})


def _front_adverbial(sent: Any) -> tuple[str, Edit] | None:
    """Move a phrase that follows the verb to the front ("I'm awake at 3am again" →
    "At 3am again, I'm awake"): a change of word order that breaks shared runs."""
    root = sent.root
    body, end_punct = _body_and_end(sent)
    if not body or body[0].i != sent.start or any(c.dep_ == "conj" for c in root.children):
        return None
    for child in root.children:
        # Time and place phrases read naturally at the front; "to"/"for"/"of" phrases do not.
        frontable = child.dep_ == "npadvmod" or (child.dep_ == "prep" and child.lower_ in _FRONTABLE_PREPS)
        if child.i <= root.i or not frontable:
            continue
        phrase = sorted(child.subtree, key=lambda t: t.i)
        first, last = phrase[0].i - sent.start, phrase[-1].i - sent.start
        if last - first < 1 or last - first > 6 or first < 2 or last >= len(body):
            continue
        rest = body[:first] + body[last + 1 :]
        while rest and rest[-1].is_punct:
            rest = rest[:-1]
        if len(rest) < 3:
            continue
        moved = _sentence_text(body[first : last + 1])
        main = _lower_first(_sentence_text(rest), rest[0])
        return f"{_upper_first(moved)}, {main}{end_punct}", f"word order: '{moved}' moved to the front"
    return None


def restructure(text: str, nlp: Any, *, voice: bool = True, clauses: bool = True, contractions: bool = True,
                sentence_order: bool = True) -> tuple[str, list[Edit]]:
    """Change grammar and word order without changing the words' meaning."""
    edits: list[Edit] = []
    doc = nlp(text)
    sentences = []
    for sent in doc.sents:
        new = None
        if clauses:
            new = _reorder_clause(sent)
        if new is None and voice:
            new = _passive(sent)
        if new is None and clauses:
            new = _front_adverbial(sent)
        if new is None:
            sentences.append(sent.text.strip())
        else:
            sentences.append(new[0])
            edits.append(new[1])
    sentences = [s for s in sentences if s]
    if sentence_order and len(sentences) >= 2 and not _starts_with_reference(sentences[1]):
        sentences[0], sentences[1] = sentences[1], sentences[0]
        edits.append("sentence order: first two sentences swapped")
    result = " ".join(sentences)
    if contractions:
        result, more = toggle_contractions(result)
        edits += more
    return _tidy(result), edits


_REFERENCES = re.compile(r"^(?:it|this|that|they|these|those|he|she|so|but|and|then|also|which|because)\b", re.I)


def _starts_with_reference(sentence: str) -> bool:
    """A sentence opening with a pronoun or connective leans on the one before; keep their order."""
    return bool(_REFERENCES.match(sentence))


def drop_sentence(text: str, nlp: Any, weights: Mapping[str, float], min_words: int = 8
                  ) -> tuple[str, list[Edit]]:
    """Drop the sentence that makes the quote most findable (highest total word weight),
    if at least ``min_words`` words remain: a shorter quote is a weaker search query."""
    sentences = [sent for sent in nlp(text).sents if sent.text.strip()]
    if len(sentences) < 2:
        return text, []
    scored = [(sum(weights.get(_normal(t.text), 0.0) for t in sent), k) for k, sent in enumerate(sentences)]
    _, worst = max(scored)
    kept = [sent.text.strip() for k, sent in enumerate(sentences) if k != worst]
    if sum(len(s.split()) for s in kept) < min_words:
        return text, []
    dropped = sentences[worst].text.strip()
    return _tidy(" ".join(kept)), [f"dropped sentence: {dropped[:40]!r}{'…' if len(dropped) > 40 else ''}"]


# --------------------------------------------------------------------------- shorten to the core

_CLAUSE_DEPS = frozenset({"ROOT", "ccomp", "advcl", "conj", "xcomp", "relcl", "parataxis"})
_SIDE_DEPS = frozenset({"advcl", "conj", "cc", "parataxis"})
MIN_CORE_WORDS = 5


def _content_words(tokens: Any) -> int:
    return sum(1 for t in tokens if t.is_alpha and not t.is_stop and t.pos_ in ("NOUN", "VERB", "ADJ", "ADV", "PROPN"))


def _covers(lo: int, hi: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return all(lo <= a and b <= hi for a, b in ranges)


def core(text: str, nlp: Any, evidence: Sequence[tuple[int, int]] = (), keep: Sequence[tuple[int, int]] = ()
         ) -> tuple[str, list[Edit]]:
    """The shortest span of the quote that still carries its point: the sentences holding the
    code's ``evidence`` (character ranges), or without evidence the sentence with the most
    content words; narrowed to one clause when the evidence sits in one. ``keep`` ranges (risk
    statements) are always inside the span. Returns ``(text, [])`` when nothing can be cut."""
    doc = nlp(text)
    sentences = [sent for sent in doc.sents if sent.text.strip()]
    if not sentences:
        return text, []
    if evidence:
        held = [k for k, sent in enumerate(sentences)
                if any(sent.start_char < e and b < sent.end_char for b, e in evidence)]
        why = "the sentences carrying the code's evidence"
    else:
        held = [max(range(len(sentences)), key=lambda k: (_content_words(sentences[k]), -k))]
        why = "the most content-bearing sentence"
    held += [k for k, sent in enumerate(sentences) if any(sent.start_char < e and b < sent.end_char for b, e in keep)]
    if not held:
        return text, []
    first, last = min(held), max(held)
    chosen = sentences[first : last + 1]
    must = list(evidence) + list(keep)
    if len(chosen) == 1 and must:
        clause = _smallest_clause(chosen[0], must)
        if clause is not None:
            lo, hi = clause
            piece = doc.text[lo:hi].strip().rstrip(",;:-")
            if len(piece.split()) >= MIN_CORE_WORDS and len(piece.split()) <= len(chosen[0].text.split()) - 3:
                end = chosen[0].text.rstrip()[-1:]
                piece = _upper_first(piece) + (end if end in ".!?" else ".")
                return _tidy(piece), [f"shortened to the core: one clause of {why}"]
    result = " ".join(sent.text.strip() for sent in chosen)
    if len(result.split()) >= len(text.split()) or len(result.split()) < MIN_CORE_WORDS:
        return text, []
    return _tidy(result), [f"shortened to the core: {why} ({len(chosen)} of {len(sentences)} sentences kept)"]


def _smallest_clause(sent: Any, ranges: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """Character range of the smallest clause (a verb's subtree) of ``sent`` covering every range."""
    best = None
    for token in sent:
        if token.dep_ not in _CLAUSE_DEPS or token.pos_ not in ("VERB", "AUX"):
            continue
        if not any(c.dep_ in ("nsubj", "nsubjpass") for c in token.children):
            continue  # a clause with its own subject reads as a sentence; "to talk to my GP" does not
        subtree = [t for t in token.subtree if not t.is_punct or t.i not in (token.left_edge.i, token.right_edge.i)]
        # side clauses without evidence ("..., because you told me to") are cut off at the edges
        for child in token.children:
            if child.dep_ not in _SIDE_DEPS:
                continue
            side = list(child.subtree)
            lo_c, hi_c = side[0].idx, side[-1].idx + len(side[-1].text)
            if any(lo_c < e and b < hi_c for b, e in ranges):
                continue
            rest = [t for t in subtree if t not in side]
            if rest and (side[0].i > max(t.i for t in rest) or side[-1].i < min(t.i for t in rest)):
                subtree = rest
        subtree = [t for t in subtree if not (t.is_punct or t.dep_ == "cc")] or subtree
        lo = min(t.idx for t in subtree)
        hi = max(t.idx + len(t.text) for t in subtree)
        if _covers(lo, hi, ranges) and (best is None or hi - lo < best[1] - best[0]):
            best = (lo, hi)
    return best


# --------------------------------------------------------------------------- phrase swaps

@lru_cache(maxsize=1)
def _phrase_swaps() -> tuple[dict[str, str], re.Pattern[str] | None]:
    """rules/disguise/phrase_swaps.tsv as a map and one alternation regex, longest phrase first."""
    from ..deid.rules import rules_root

    path = rules_root() / "disguise" / "phrase_swaps.tsv"
    swaps: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise PostkitError("malformed phrase swap (want phrase<TAB>replacement)", path=path, row=number,
                               fix="one phrase and its rewording per line, separated by a tab")
        swaps[parts[0].strip().lower()] = parts[1].strip()
    if not swaps:
        return swaps, None
    ordered = sorted(swaps, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w'])(?:" + "|".join(re.escape(p) for p in ordered) + r")(?![\w'])", re.I)
    return swaps, pattern


def swap_phrases(text: str, within: tuple[int, int] | None = None, limit: int | None = None,
                 protect: Protector | None = None) -> tuple[str, list[Edit]]:
    """Reword everyday phrases from the swap table in one pass (so a swap is never swapped back).

    ``within`` limits swaps to phrases overlapping that character range; ``limit`` to the
    first N swaps; phrases overlapping a ``protect(text)`` range are left alone.
    """
    protected = list(protect(text)) if protect is not None else []
    swaps, pattern = _phrase_swaps()
    if pattern is None:
        return text, []
    normalised = text.replace("\u2019", "'")
    edits: list[Edit] = []

    def swap(match: re.Match[str]) -> str:
        if within is not None and (match.end() <= within[0] or match.start() >= within[1]):
            return match.group(0)
        if any(match.start() < hi and match.end() > lo for lo, hi in protected):
            return match.group(0)
        if limit is not None and len(edits) >= limit:
            return match.group(0)
        new = swaps[match.group(0).lower()]
        new = ("I" + new[1:]) if new.startswith(("i ", "i'")) else new
        new = new.replace(" i ", " I ").replace(" i'", " I'")
        if _at_sentence_start(match.string, match.start()):  # capitalise like any first word
            new = _upper_first(new)
        edits.append(f"{match.group(0)} → {new}")
        return new

    result = pattern.sub(swap, normalised)
    return (result, edits) if edits else (text, [])


# --------------------------------------------------------------------------- substitute

def _replacements(token: Any) -> list[str]:
    """Synonyms for a token, except verbs with a particle ("gave up" must not become "afforded up")
    and capitalised words inside a sentence, which are usually names NER missed ("Talking
    Therapies"): renaming a service would misreport it, so they are left alone (fail closed)."""
    if any(child.dep_ == "prt" for child in token.children):
        return []
    if token.text[:1].isupper() and not token.is_sent_start and token.text != "I":
        return []
    return lexicon.replacements(token)


def _normal(word: str) -> str:
    return word.lower().replace("\u2019", "'")


# choose(doc, [(token, synonyms), ...]) -> {token.i: the synonym to use, or None to leave it}
Chooser = Callable[[Any, list[tuple[Any, list[str]]]], dict[int, "str | None"]]
# protect(text) -> character ranges that no operation may reword (risk statements)
Protector = Callable[[str], Sequence[tuple[int, int]]]


def _inside(token: Any, ranges: Sequence[tuple[int, int]]) -> bool:
    start, end = token.idx, token.idx + len(token.text)
    return any(start < hi and end > lo for lo, hi in ranges)


def substitute(
    text: str,
    nlp: Any,
    weights: Mapping[str, float],
    *,
    share: float,
    avoid: set[str] | frozenset[str] = frozenset(),
    choose: Chooser | None = None,
    protect: Protector | None = None,
) -> tuple[str, list[Edit]]:
    """Replace the ``share`` (0–1) of replaceable words with the highest ``weights`` by synonyms.

    ``weights`` maps normalised words to how much they make the quote findable (0 for
    words the source does not contain). A synonym whose words appear in ``avoid`` (the
    source's words) is skipped, since swapping one shared word for another gains nothing.
    ``choose`` picks each word's synonym in context (or refuses them all); without it the
    lexicon's first synonym is used. Words inside ``protect(text)`` ranges are never replaced.
    """
    doc = nlp(text)
    protected = list(protect(text)) if protect is not None else []
    found = []
    for token in doc:
        weight = weights.get(_normal(token.text), 0.0)
        if weight <= 0 or _inside(token, protected):
            continue
        choices = [c for c in _replacements(token) if not (set(_normal(c).split()) & avoid)]
        if choices:
            found.append((weight, token, choices))
    if choose is not None and found:
        picked = choose(doc, [(token, choices) for _, token, choices in found])
        options = [(weight, token.i, picked[token.i]) for weight, token, _ in found if picked.get(token.i)]
    else:
        options = [(weight, token.i, choices[0]) for weight, token, choices in found]
    if not options:
        return text, []
    options.sort(key=lambda o: (-o[0], o[1]))
    count = max(1, round(share * len(options)))
    chosen = {i: word for _, i, word in options[:count]}
    return _rebuild(doc, chosen)


def _article(word: str) -> str:
    """'a' or 'an' before a word, by its sound as far as spelling tells."""
    lower = word.lower()
    if lower.startswith(("uni", "use", "usu", "uti", "eu", "one", "once", "ur")):
        return "a"
    if lower.startswith(("hour", "honest", "honour", "heir")):
        return "an"
    return "an" if lower[:1] in "aeiou" else "a"


def _rebuild(doc: Any, chosen: Mapping[int, str]) -> tuple[str, list[Edit]]:
    """The doc's text with tokens replaced; an 'a'/'an' before a replaced word is re-agreed."""
    words = {t.i: t.text for t in doc}
    edits = []
    for i, new in chosen.items():
        edits.append(f"{doc[i].text} → {new}")
        words[i] = new
        if i > 0 and doc[i - 1].lower_ in ("a", "an") and i - 1 not in chosen:
            article = _article(new)
            words[i - 1] = _case_like(article, doc[i - 1].text)
    return "".join(words[t.i] + t.whitespace_ for t in doc), edits


_DROPPABLE = frozenset({"just", "really", "so", "very", "even", "actually", "honestly", "literally", "totally",
                        "completely", "basically", "quite", "pretty", "still", "exactly", "definitely", "truly"})


def _break_window(doc: Any, window: list[Any], avoid: frozenset[str] | set[str], inserted: set[str],
                  choose: Chooser | None = None, protected: Sequence[tuple[int, int]] = ()
                  ) -> tuple[str, list[Edit]] | None:
    """One change inside the window: a synonym, a phrase swap, a dropped filler word or a
    contraction toggled; ``None`` when none applies. Protected words are never touched."""
    free = [t for t in window if not _inside(t, protected)]
    for token in sorted(free, key=lambda t: (t.is_stop, -len(t.text))):
        if _normal(token.text) in inserted:
            continue
        options = _replacements(token)
        choices = [c for c in options if not (set(_normal(c).split()) & avoid)] or options
        if choices and choose is not None:
            picked = choose(doc, [(token, choices)]).get(token.i)
            choices = [picked] if picked else []
        if choices:
            inserted.update(_normal(choices[0]).split())
            return _rebuild(doc, {token.i: choices[0]})
    window_touches_risk = len(free) < len(window)
    span = (window[0].idx, window[-1].idx + len(window[-1].text))
    text, edits = swap_phrases(doc.text, within=span, limit=1, protect=lambda _: protected)
    if edits:
        return text, edits
    if window_touches_risk:
        window = free  # only single-word changes outside the protected words from here on
        if not window:
            return None
        span = (window[0].idx, window[-1].idx + len(window[-1].text))
        if any(span[0] < hi and span[1] > lo for lo, hi in protected):
            return _intensify(doc, window)
    for token in window:
        if token.lower_ in _DROPPABLE and token.dep_ == "advmod":
            kept = "".join(t.text_with_ws for t in doc if t.i != token.i)
            return kept, [f"dropped '{token.text}'"]
    piece = doc.text[span[0] : span[1]]
    toggled, edits = toggle_contractions(piece)
    if edits:
        return doc.text[: span[0]] + toggled + doc.text[span[1] :], edits
    for token in window:  # "I thought that I was" -> "I thought I was"
        if token.lower_ == "that" and token.dep_ == "mark" and token.i > 0:
            return "".join(t.text_with_ws for t in doc if t.i != token.i), ["dropped 'that'"]
    return _intensify(doc, window)


# Inserted before an adjective or a main verb, these barely change what is said (spaCy
# counts them as stopwords, so the meaning score ignores them) but break a verbatim run.
_INTENSIFIERS = {"ADJ": ("really", "quite"), "VERB": ("really", "actually")}
_MAX_INSERTIONS = 2
_NOT_GRADABLE = frozenset({"only", "same", "other", "own", "first", "last", "next", "whole", "main", "such", "few",
                           "many", "several", "more", "most", "less", "least", "previous", "entire", "single"})


def _intensify(doc: Any, window: list[Any]) -> tuple[str, list[Edit]] | None:
    """Insert an intensifier inside the window, at most twice per text, never twice in a row."""
    inserted = sum(1 for t in doc if t.lower_ in ("really", "quite", "actually"))
    if inserted >= _MAX_INSERTIONS:
        return None
    for token in window[1:]:
        options = _INTENSIFIERS.get(token.pos_)
        if token.lower_ in _NOT_GRADABLE:
            continue
        if not options or token.dep_ in ("aux", "auxpass") or token.tag_ in ("VBG", "VBN") and token.pos_ == "VERB":
            continue
        previous = doc[token.i - 1]
        if previous.pos_ == "ADV" or previous.is_punct:
            continue
        word = options[inserted % len(options)]
        text = "".join(t.text_with_ws if t.i != token.i else f"{word} {t.text_with_ws}" for t in doc)
        return text, [f"added '{word}' before '{token.text}'"]
    return None


def break_runs(
    text: str,
    nlp: Any,
    find_runs: Callable[[list[str]], list[tuple[int, int]]],
    *,
    avoid: set[str] | frozenset[str] = frozenset(),
    words: Callable[[str], list[str]],
    choose: Chooser | None = None,
    protect: Protector | None = None,
) -> tuple[str, list[Edit]]:
    """Change a word inside each findable run until none is left (or nothing more can change).

    ``find_runs`` gets the text's normalised words and returns ``(start, length)`` of the
    runs a phrase search would find (shared with the source, or anywhere in the corpus).
    ``choose`` and ``protect`` as for :func:`substitute`.
    """
    edits: list[Edit] = []
    inserted: set[str] = set()  # never re-replace our own replacements (synonym of a synonym drifts)
    stuck: set[tuple[str, ...]] = set()
    for _ in range(40):  # each pass changes one run; a long quote needs a few
        doc = nlp(text)
        # Compare by the trace check's normalised words so a run here is a run there.
        word_tokens = [t for t in doc if words(t.text)]
        seq = [words(t.text)[0] for t in word_tokens]
        runs = [(s, n) for s, n in find_runs(seq) if tuple(seq[s : s + n]) not in stuck]
        if not runs:
            return _tidy(text), edits
        start, length = runs[0]
        protected = list(protect(text)) if protect is not None else []
        changed = _break_window(doc, word_tokens[start : start + length], avoid, inserted, choose, protected)
        if changed is None:
            stuck.add(tuple(seq[start : start + length]))
            continue
        text, more = changed
        edits += more
    return _tidy(text), edits


def _tidy(text: str) -> str:
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"([.!?])\s+([a-z])", lambda m: f"{m.group(1)} {m.group(2).upper()}", text)
    return text.strip()
