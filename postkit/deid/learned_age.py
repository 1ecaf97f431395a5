"""A learned second opinion on stated ages (AGE), beside the hand-written age rules.

Why: the age rules in ``patterns.yaml`` were written to the misses of the sets they were
tuned on, and real posters state ages in forms nobody listed ("Now I feel like I'm 16
again", "the 29th year of…"). A small logistic regression over the *context* of every
number a person's age could be generalises from many labelled examples at once; its
threshold is chosen by cross-validation (``scripts/train_deid_age.py``) so that it adds at
most about one false alarm per 100 posts. Its findings are added to the rules' (a union),
so it can only add ages, never remove one.

**Candidates** (:func:`candidates`): every number from 1 to 110 written in digits (not 111, a helpline)
("19", "2.5" only before a unit) or in words ("nineteen", "twenty-two"; "one" only with a
unit), with an attached unit ("24yo", "27 year old", "9 months old") or sex letter
("18F", "M24", "f/31"). Numbers glued to other letters ("50mg", "2am"), inside ratios,
times and decimals ("24/7", "2:30", "1.5"), after a currency sign, before "-something",
"ish", "am/pm", and ordinals ("3rd", "25th anniversary"; birthdays are the rules' job) are
not candidates, and two vetoes no weight can overrule drop a candidate near a clock time
("the bus at 12 … at 10:45") or before a temperature word ("26 F outside").
A found candidate's span follows ``tests/data/README.md``: an attached unit is inside
("27 year old", "24yo"), sex letters outside ("18" of "18F").

**Features** (:meth:`AgeModel.features`): the tokens in a ±4 window by relative position,
bags of the left and right words, bigrams around the number, brackets, commas and
slashes next to it, the sex-letter and unit forms, the number's range and form, sentence
start, whether a person word (I, my, he, she, son, mum, husband…) or a known given name
is near, age words (years, old, aged, turned, when, at…) and quantity words (mg, kg,
hours, days, %, £, am/pm, times…) near or next to it, and a few conjunctions of the
number's range with its neighbours.

**Privacy of the model file**: the weights are stored as data in
``rules/deid/age_model.json`` and name only (a) the fixed words listed in this module and
(b) a vocabulary of common English words found in at least five distinct training posts,
never inside a labelled identifier of any type, and present in the everyday-word list
(``common_words.txt`` without the gazetteers' names and places) or spaCy's stop words.
Every other word is reduced to its shape (``<Cap>``, ``<low>``, ``<name>`` for a given
name from ``first_names.txt``, ``<d2>`` for a two-digit number), so no identifier or rare
word of a training post can be read out of the file. Scoring is a plain dot product of
binary features with those weights: no scikit-learn at run time (it is imported only by
:func:`fit`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import PostkitError

#: The model file's format version; a file of another version is refused.
FORMAT = 1
MODEL_FILE = "age_model.json"

_UNITS = "one two three four five six seven eight nine".split()
_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD_VALUE = {w: n for n, w in enumerate(_UNITS, 1)} | {w: n for n, w in enumerate(_TEENS, 10)} \
    | {w: n for n, w in zip(range(20, 100, 10), _TENS)}
# Number words, factored by first letter (speed: the regex engine tries one branch, not 28).
_TENS_RE = r"t(?:wenty|hirty)|f(?:orty|ifty)|s(?:ixty|eventy)|eighty|ninety"
_TEENS_RE = r"t(?:hirteen|welve|en)|f(?:ourteen|ifteen)|s(?:ixteen|eventeen)|e(?:ighteen|leven)|nineteen"
_UNITS_RE = r"one|t(?:wo|hree)|f(?:our|ive)|s(?:ix|even)|eight|nine"
_NUMBER_WORD = "(?:(?:" + _TENS_RE + r")(?:[\s-]?(?:" + _UNITS_RE + "))?|" + _TEENS_RE + "|" + _UNITS_RE + ")"

#: One regex finds every candidate; its groups give the form. IGNORECASE: "18F", "M24".
_CANDIDATE = re.compile(
    # Speed: every candidate starts with a digit, a sex letter or a number word's first letter;
    # checking that first keeps the rest from being tried at most positions of a post.
    r"(?=[0-9mfotsenMFOTSEN])(?<![\w£$€#@+])(?<!\d[/:.,])"
    r"(?P<pre>[mf]/?(?=\d))?"
    r"(?P<num>\d{1,3}(?:\.\d)?|" + _NUMBER_WORD + r")"
    r"(?P<unit>[ \t]?-?[ \t]?(?:years?|yrs?|months?|mths?|weeks?|wks?)[ \t]*-?[ \t]*olds?"
    r"|[ \t]?y/o|[ \t]?y\.o\.?|[ \t]?yo|[ \t]?yrs?\.?o\.?)?"
    r"(?P<sex>(?<=[\do.])/?[mf])?"
    r"(?![\w£$€%])(?![.,:/]\d)"
    # not an approximation ("30-something", "40 ish") or a clock time ("at 12 pm", "7 o'clock")
    r"(?![ \t]*-?[ \t]*(?:somethings?|ish|odd|plus|am|pm|o['’]?clock)\b)",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"\d[:.]\d\d\b|\b\d{1,2}\s*(?:am|pm)\b|\b(?:noon|midday|midnight|o['’]?clock)\b", re.IGNORECASE)
#: Words, clitics apart ("mum's" -> "mum", "'s"; "i'm" -> "i", "'m"), numbers and single symbols.
_TOKEN = re.compile(r"[A-Za-z]+|['’](?:s|m|re|ve|d|ll|t)\b|\d+(?:[.,]\d+)?|[^\w\s]", re.IGNORECASE)

#: Fixed words the features may name whatever the training posts hold (written here by hand).
PERSON_WORDS = frozenset("""i 'm im me my myself mine he she hes shes him her his who they we our you your
    son daughter mum mom mam mummy mother dad daddy father husband wife hubby partner boyfriend girlfriend bf gf
    fiance fiancee brother sister bro sis kid kids child children boy boys girl girls baby toddler teen teenager
    grandson granddaughter grandma grandmother grandad grandfather nan nanna gran grandpa niece nephew cousin
    uncle aunt auntie stepson stepdaughter man woman male female guy lady friend mate sons daughters""".split())
AGE_WORDS = frozenset("""year years yr yrs old olds age aged ages turned turn turning turns when at since was
    born birthday bday until till from yo y o teens twenties thirties forties fifties""".split())
QUANTITY_WORDS = frozenset("""mg mcg ml kg kgs lb lbs stone st cm mm ft feet foot inch inches km miles mile
    hours hour hrs hr minutes minute mins min seconds secs days day weeks week months month times time am pm
    percent pounds pound dollars dollar k grand quid pages page people points point x per mph degrees tablets
    pills dose doses units unit sessions session dollars bucks score out of outside degrees cold hot warm
    freezing weather temperature bus train noon midnight""".split())
#: Words right after a number that make it a temperature, whatever else is near ("26 F outside").
WEATHER = frozenset("degrees degree outside weather temperature freezing celsius fahrenheit".split())
#: Words that make an age hypothetical or generic ("feel like I'm 80", "as if I were 12", "older than 30").
HYPOTHETICAL = frozenset("like if as than feel felt act acts acting pretend least under over must".split())
#: Words that may stand between a cue and an age ("she was barely 20", "at around 19").
HEDGES = frozenset("""about around almost nearly barely just only roughly approximately maybe probably still already
    now finally aged age like over under least most ish""".split())
SYMBOLS = frozenset("£ $ € % ( ) [ ] , . ! ? / - : ; \" ' + = * & ~ #".split())
FIXED_WORDS = PERSON_WORDS | AGE_WORDS | QUANTITY_WORDS | HEDGES | HYPOTHETICAL | frozenset("""m f and or the a an is
    was am are be been were will would after before because but so then than by for in on of to with young younger older
    again yet ago later since every each first last next this that these those here there lol x xx
    's 'm 're 've 'd 'll 't""".split())
_BUCKETS = ((4, "1-4"), (9, "5-9"), (12, "10-12"), (17, "13-17"), (25, "18-25"), (39, "26-39"), (59, "40-59"),
            (89, "60-89"), (119, "90-119"))
_SENTENCE_END = ".!?\n"
WINDOW = 4
_CONTEXT_CHARS = 60


@dataclass(frozen=True)
class Candidate:
    """A number that could be someone's age: where it is, its value and its form."""

    start: int  # of the whole match (sex letters and unit included)
    end: int
    span_start: int  # of the AGE span it would be (number and unit; no sex letters)
    span_end: int
    value: float
    form: str  # digits1, digits2, digits3, decimal, word
    unit: str  # "", years, months, weeks, yo
    sex: str  # "", pre, post


def _value(number: str) -> float | None:
    low = number.lower()
    if low[0].isdigit():
        if low[0] == "0":
            return None
        return float(low)
    parts = re.split(r"[\s-]+", low)
    return float(sum(_WORD_VALUE[p] for p in parts))


def _unit(unit: str) -> str:
    low = unit.lower()
    if not low:
        return ""
    if "month" in low or "mth" in low:
        return "months"
    if "week" in low or "wk" in low:
        return "weeks"
    if "old" in low:
        return "years"
    return "yo"


def candidates(text: str) -> list[Candidate]:
    """Every number in ``text`` a person's age could be (see the module docstring)."""
    found = []
    for match in _CANDIDATE.finditer(text):
        number = match.group("num")
        value = _value(number)
        unit = _unit(match.group("unit") or "")
        if value is None or not 1 <= value <= 110:  # 111 is a helpline (NHS 111), not an age
            continue
        if "." in number and not unit:
            continue  # "1.5" is a measure; "2.5 years old" an age
        if value == 1 and not unit and not number[0].isdigit():
            continue  # "one" alone is a count or a pronoun ("one of my friends"); "one year old" an age
        if "." in number:
            form = "decimal"
        elif number[0].isdigit():
            form = f"digits{len(number)}"
        else:
            form = "word"
        span_start = match.start("num")
        span_end = match.end("unit") if match.group("unit") else match.end("num")
        sex = "pre" if match.group("pre") else "post" if match.group("sex") else ""
        found.append(Candidate(match.start(), match.end(), span_start, span_end, value, form, unit, sex))
    return found


def _bucket(value: float) -> str:
    for top, name in _BUCKETS:
        if value <= top:
            return name
    return "120+"


class AgeModel:
    """The learned age scorer: binary context features, weights from ``age_model.json``."""

    def __init__(self, data: Mapping[str, Any], names: Iterable[str] = ()) -> None:
        self.vocabulary = frozenset(data.get("vocabulary", ()))
        self.weights: dict[str, float] = dict(data.get("weights", {}))
        self.bias = float(data.get("bias", 0.0))
        self.threshold = float(data.get("threshold", 0.5))
        self.names = frozenset(n.lower() for n in names)

    # ----------------------------------------------------------------- features

    def _norm(self, token: str) -> str:
        low = token.lower().replace("’", "'")
        if low in self.vocabulary:
            return low
        if token[0].isdigit():
            if "." in token or "," in token:
                return "<dec>"
            return f"<d{min(len(token), 4)}>"
        if token[0].isalpha():
            if low in self.names:
                return "<name>" if token[0].isupper() else "<lowname>"
            return "<Cap>" if token[0].isupper() else "<low>"
        return token if token in SYMBOLS else "<p>"

    def features(self, text: str, cand: Candidate) -> list[str]:
        """The binary features of one candidate (strings; the model's weights are keyed by them)."""
        left_text = text[max(0, cand.start - _CONTEXT_CHARS):cand.start]
        right_text = text[cand.end:cand.end + _CONTEXT_CHARS]
        left = [self._norm(t) for t in _TOKEN.findall(left_text)[-WINDOW:]]
        right = [self._norm(t) for t in _TOKEN.findall(right_text)[:WINDOW]]
        left = ["<s>"] * (WINDOW - len(left)) + left
        right = right + ["</s>"] * (WINDOW - len(right))
        bucket = _bucket(cand.value)
        feats = [f"form={cand.form}", f"bucket={bucket}", f"unit={cand.unit}", f"sex={cand.sex}",
                 f"form|unit={cand.form}|{cand.unit}"]
        for i, token in enumerate(reversed(left), 1):
            feats.append(f"w-{i}={token}")
            feats.append(f"L={token}")
        for i, token in enumerate(right, 1):
            feats.append(f"w+{i}={token}")
            feats.append(f"R={token}")
        feats += [f"b-2-1={left[-2]}_{left[-1]}", f"b+1+2={right[0]}_{right[1]}", f"b-1+1={left[-1]}_{right[0]}",
                  f"bucket|w-1={bucket}|{left[-1]}", f"bucket|w+1={bucket}|{right[0]}",
                  f"unit|w-1={cand.unit}|{left[-1]}", f"form|w+1={cand.form}|{right[0]}"]
        before = left_text.rstrip(" \t")
        after = right_text.lstrip(" \t")
        char_before = before[-1:] or "^"
        char_after = after[:1] or "$"
        feats.append(f"cb={char_before if char_before in SYMBOLS or char_before == chr(10) else '<c>'}")
        feats.append(f"ca={char_after if char_after in SYMBOLS or char_after == chr(10) else '<c>'}")
        if not before or before[-1] in _SENTENCE_END:
            feats.append("sentence_start")
        if left_text[-1:] in ("(", "[") or (char_after in (")", "]") and char_before in ("(", "[", ",", "/")):
            feats.append("bracketed")
        near = set(left) | set(right)
        if near & PERSON_WORDS:
            feats.append("person_near")
        if set(left[-2:]) & PERSON_WORDS:
            feats.append("person_left2")
        if near & {"<name>", "<lowname>"}:
            feats.append("name_near")
        if near & AGE_WORDS:
            feats.append("ageword_near")
        if right[0] in QUANTITY_WORDS or char_after in ("%",) or char_before in ("£", "$", "€"):
            feats.append("quantity_next")
        elif near & QUANTITY_WORDS:
            feats.append("quantity_near")
        if any(t.startswith("<d") or t == "<dec>" for t in near):
            feats.append("number_near")
        if _CLOCK.search(left_text[-40:]) or _CLOCK.search(right_text[:40]):
            feats.append("clock_near")
        if set(left) & HYPOTHETICAL:
            feats.append("hypothetical_left")
        # the nearest words that are not hedges ("she was barely 20" -> was; "20 or so when" -> when)
        cue_left = next((t for t in reversed(left) if t not in HEDGES), "<s>")
        cue_right = next((t for t in right if t not in HEDGES), "</s>")
        feats += [f"cue-1={cue_left}", f"cue+1={cue_right}", f"cue-1|cue+1={cue_left}|{cue_right}",
                  f"bucket|cue-1={bucket}|{cue_left}"]
        if left[-1] in HEDGES:
            feats.append(f"hedge-1={left[-1]}")
        if cue_left in PERSON_WORDS:
            feats.append("person_cue-1")
        return feats

    # ----------------------------------------------------------------- scoring

    def score(self, feats: Iterable[str]) -> float:
        """The probability that the candidate is a stated age (a dot product and a sigmoid)."""
        get = self.weights.get
        z = self.bias + sum(get(f, 0.0) for f in set(feats))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @staticmethod
    def vetoed(text: str, cand: Candidate) -> bool:
        """Numbers no weight may make an age: near a clock time ("at 12 … at 10:45"), or a temperature."""
        if _CLOCK.search(text[max(0, cand.start - 40):cand.start]) or _CLOCK.search(text[cand.end:cand.end + 40]):
            return True
        after = [t.lower() for t in _TOKEN.findall(text[cand.end:cand.end + 30])[:3]]
        return bool(WEATHER.intersection(after))

    def find(self, text: str, taken: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int, float]]:
        """AGE spans (start, end, probability) the model finds, skipping any touching a ``taken`` span.

        The engine passes its other findings as ``taken``, except AGE ones: a model span
        that overlaps a rules age ("38" of "38 y.o.") is merged with it, not skipped.
        """
        found = []
        for cand in candidates(text):
            if any(a < cand.end and cand.start < b for a, b in taken) or self.vetoed(text, cand):
                continue
            probability = self.score(self.features(text, cand))
            if probability >= self.threshold:
                found.append((cand.span_start, cand.span_end, probability))
        return found


def load_age_model(folder: str | Path, names: Iterable[str] = ()) -> AgeModel:
    """The model in ``folder/age_model.json``; a missing or malformed file is an error (fail closed)."""
    path = Path(folder) / MODEL_FILE
    return AgeModel(read_model_file(path), names)


def read_model_file(path: Path) -> dict[str, Any]:
    """The parsed model file, checked for its format and keys."""
    if not path.exists():
        raise PostkitError("the learned age model is missing", path=path,
                           fix="reinstall postkit, copy rules/deid/age_model.json into the rules folder, "
                               "or rebuild it with scripts/train_deid_age.py")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise PostkitError("the learned age model is not valid JSON", path=path,
                           fix="rebuild it with scripts/train_deid_age.py") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("weights"), dict):
        raise PostkitError(f"the learned age model is not format {FORMAT}", path=path,
                           fix="rebuild it with scripts/train_deid_age.py")
    return data


# --------------------------------------------------------------------------- training (offline)


def build_vocabulary(posts: Sequence[Mapping[str, Any]], allowed: Iterable[str], min_posts: int = 5,
                     always: Iterable[str] = ()) -> list[str]:
    """Words the model may name: in ≥ ``min_posts`` distinct posts, never inside a labelled span, and allowed;
    plus the fixed words of this module and ``always`` (a published stop-word list), whatever the posts hold.

    ``allowed`` is the everyday-word list (names and places removed) plus stop words; see
    the module docstring for why this keeps identifiers and rare words out of the file.
    """
    allowed = {w.lower() for w in allowed}
    counts: dict[str, int] = {}
    inside: set[str] = set()
    for post in posts:
        text = post["text"]
        words = {t.lower().replace("’", "'") for t in _TOKEN.findall(text) if t[0].isalpha()}
        for word in words:
            counts[word] = counts.get(word, 0) + 1
        for span in post.get("spans", []):
            inside.update(t.lower().replace("’", "'") for t in _TOKEN.findall(text[span["start"]:span["end"]]))
    found = {w for w, n in counts.items() if n >= min_posts and w not in inside and w in allowed}
    return sorted(found | FIXED_WORDS | {w.lower() for w in always})


def labelled_candidates(posts: Sequence[Mapping[str, Any]],
                        model: AgeModel) -> list[tuple[str, Candidate, list[str], int]]:
    """(post id, candidate, features, label) for training: label 1 when it overlaps a gold AGE span.

    Candidates inside a gold span of another type (a phone number's digits, a date's day)
    are left out: the engine's other recognizers own them, and at run time a candidate
    touching any other finding is skipped.
    """
    rows = []
    for post in posts:
        text = post["text"]
        spans = post.get("spans", [])
        for cand in candidates(text):
            if model.vetoed(text, cand):
                continue
            hits = [s for s in spans if s["start"] < cand.span_end and cand.span_start < s["end"]]
            if any(s["entity_type"] != "AGE" for s in hits):
                continue
            label = int(any(s["entity_type"] == "AGE" for s in hits))
            rows.append((str(post["id"]), cand, model.features(text, cand), label))
    return rows


def fit(rows: Sequence[tuple[str, Candidate, list[str], int]], *, c: float = 0.5) -> tuple[dict[str, float], float]:
    """Weights and bias of an L2 logistic regression over the rows' binary features (deterministic)."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    index: dict[str, int] = {}
    indptr, indices = [0], []
    for _, _, feats, _ in rows:
        for f in sorted(set(feats)):
            indices.append(index.setdefault(f, len(index)))
        indptr.append(len(indices))
    labels = np.array([r[3] for r in rows])
    matrix = csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(rows), len(index)))
    model = LogisticRegression(C=c, solver="liblinear", random_state=0, max_iter=1000)
    model.fit(matrix, labels)
    coef = model.coef_[0]
    weights = {f: round(float(coef[i]), 5) for f, i in sorted(index.items()) if abs(coef[i]) >= 1e-5}
    return weights, round(float(model.intercept_[0]), 5)
