"""A small real study folder for the review app's tests (API and browser).

Layout as :mod:`postkit.disguise.study` reads it: ``suggestions.jsonl``, ``index.json`` (the
key of a real trace index over a 40-post corpus, cached outside the folder) and
``coding.sqlite`` with two excerpts and their code suggestions. Candidates are checked for real when the fixture is built, so
their verdicts are the library's own: q1 has two traceable candidates (one verbatim) and
an at-risk one, q2 a traceable and a disguised one.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from pathlib import Path

from postkit.coding.store import CodingStore
from postkit.disguise.study import QuoteStudy, save_study_index
from postkit.disguise.trace import TraceIndex, load_thresholds
from postkit.review.server import make_server

SOURCE_1 = ("my gp finally referred me to talking therapies after eight months on the waiting list "
            "and the first session with the counsellor left me feeling lighter")
SOURCE_2 = "the night shift at the warehouse makes my sleep and my mood so much worse every single week"
# Shares no word with SOURCE_1 and keeps little of its meaning, so neither attacker finds the source
# (keyword search: not at all; meaning search: rank 30 of 40). A careful rewrite that keeps the
# meaning ("Someone at last listened: a long wait, then an hour of conversation made everything seem
# easier.") is found by the dense attacker at rank 3 here: only two posts of this forum are about health.
DISGUISED_1 = "It was a long road, yet that afternoon ended in a smile."
AT_RISK_1 = "🙂 Someone at last listened, and after a long wait an hour of conversation made everything seem easier."

FILLER = [
    "our dog chewed the sofa cushions again while we were at the allotment",
    "does anyone know a good recipe for lentil soup that freezes well",
    "the bus timetable changed and now i wait forty minutes every morning",
    "my daughter started secondary school and the uniform cost a fortune",
    "we painted the kitchen yellow and it looks brighter already",
    "football practice got rained off so the kids played board games instead",
    "i finally fixed the leaking tap with a new washer from the hardware shop",
    "the library has a knitting circle on thursdays which is lovely",
    "planted tomatoes and courgettes in the greenhouse this weekend",
    "our broadband keeps dropping out in the evenings so frustrating",
    "went swimming at the leisure centre and managed twenty lengths",
    "the cat brought in a frog and left it under the radiator",
    "booked a caravan near the coast for the half term holiday",
    "my mum is learning to use video calls on her new tablet",
    "made banana bread with the overripe bananas turned out well",
    "the neighbours are having an extension built and the noise is constant",
    "started a couch to five k programme week two done",
    "our car failed its mot because of the brake pads",
    "signed up for an evening class in pottery at the college",
    "the pharmacy changed its opening hours which is confusing",
    "watched a documentary about whales last night fascinating",
    "sorting out the loft and found my old school reports",
    "tried the new cafe on the high street the scones were great",
    "the boiler engineer is coming on friday between eight and one",
    "birthday party for my son went well fifteen children and one bouncy castle",
    "repotted the peace lily it was completely root bound",
    "read a novel set in iceland recommend it to anyone who likes crime fiction",
    "our street has a community litter pick on sunday morning",
    "the train was cancelled so i worked from home instead",
    "my sister drove me to the appointment and waited outside the whole time",
    "i started running again at the weekend and my head feels clearer",
    "university deadlines are piling up and i cannot face opening my laptop",
    "the panic attacks come at night and my cat sits with me",
    "thank you all for listening it really helped to write it down",
    "the waiting room was packed and i nearly walked out",
    "my manager let me change shifts after i explained how tired i was",
    "i tried the breathing exercise someone posted here and it helped a bit",
    "the group chat keeps me going on the bad days",
]

# (text, meaning_score, edits) per candidate, as `postkit disguise suggest` would give them.
QUOTES = [
    {"quote_id": "q1", "source_post_id": "p1", "text": SOURCE_1,
     "candidates": [(SOURCE_1.capitalize() + ".", 1.0, ["verbatim"]),
                    (("My GP finally sent me to talking therapy after eight months waiting, and the first "
                      "session left me feeling lighter."), 0.82, ["referred → sent", "therapies → therapy"]),
                    (AT_RISK_1, 0.41, ["rewritten by hand"])]},
    {"quote_id": "q2", "source_post_id": "p2", "text": SOURCE_2,
     "candidates": [("The night shift at the depot wrecks my sleep and how I feel, week after week.", 0.7,
                     ["warehouse → depot", "makes … worse → wrecks"]),
                    # disguised from both attackers only by no longer saying what the source says
                    ("Repainted the garden bench green on a dry afternoon.", 0.05, ["rewritten by hand"])]},
]

EXCERPTS = [
    {"unit_id": "p36", "post_id": "p36", "forum": "Robin", "text": FILLER[33]},
    {"unit_id": "p38", "post_id": "p38", "forum": "Robin", "text": FILLER[35]},
]
SUGGESTIONS = [
    {"unit_id": "p36", "code_id": "SE-C5", "score": 0.8,
     "evidence": [{"start": 0, "end": 27, "text": FILLER[33][:27]}]},
    {"unit_id": "p36", "code_id": "SE-C7", "score": 0.4, "evidence": []},
    {"unit_id": "p38", "code_id": "SE-C2", "score": 0.6, "evidence": []},
]


def make_study_folder(folder: Path) -> Path:
    """Write a complete study folder (index, suggestions with real verdicts, coding store)."""
    folder.mkdir(parents=True, exist_ok=True)
    post_ids = ["p1", "p2"] + [f"p{i + 3}" for i in range(len(FILLER))]
    index = TraceIndex.build(post_ids, [SOURCE_1, SOURCE_2, *FILLER])
    save_study_index(folder, index)  # the index in the private test cache, its key in index.json
    # Verdicts measured by the trace check itself (the meaning scores above are given: computing
    # them loads spaCy and the CMO tagger, ~2 s, which the tests of /api/check pay anyway).
    lines = []
    for quote in QUOTES:
        texts = [text for text, _, _ in quote["candidates"]]
        checked = index.check([{"quote_id": quote["quote_id"], "source_post_id": quote["source_post_id"],
                                "text": text} for text in texts], load_thresholds())
        lines.append({**quote, "candidates": [
            {"text": text, "verdict": row["verdict"], "source_rank": row["source_rank"],
             "dense_rank": row["dense_rank"], "longest_shared_run": row["longest_shared_run"],
             "meaning_score": meaning, "edits": edits}
            for (text, meaning, edits), row in zip(quote["candidates"], checked)]})
    (folder / "suggestions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in lines), encoding="utf-8")
    with CodingStore(folder / "coding.sqlite") as store:
        store.add_excerpts(EXCERPTS)
        store.add_suggestions(SUGGESTIONS, codebook_version="test")
    return folder


REVIEWERS = ("alice", "bob", "carol", "dave")


@contextmanager
def running_app(folder: Path | None = None, reviewers=REVIEWERS, *, study=None, warm_up=False, **options):
    """Serve the study in ``folder`` (or an open ``study``) on a free port in a background
    thread; yields the server (``server.link(name)`` is a reviewer's secret link).
    ``warm_up``: load the language models first, as ``postkit review serve`` does."""

    def open_study():  # on the study thread
        opened = QuoteStudy.open(folder)
        if warm_up:
            opened.warm_up()
        return opened

    opener = study if study is not None else open_study
    server = make_server(opener, 0, reviewers, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
