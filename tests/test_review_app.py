"""The review app's HTTP API against a small real study: checks, decisions, coding, identity, limits."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner
from review_fixtures import DISGUISED_1, SOURCE_1, make_study_folder, running_app

from postkit.cli import main
from postkit.coding.codebook import load_codebook
from postkit.coding.learn import retrain_from_store, uncertainty_order
from postkit.coding.ranker import load_ranker
from postkit.coding.store import CodingStore
from postkit.disguise.study import MAX_NOTE_CHARS, MAX_TEXT_CHARS, QuoteStudy, merge_evidence
from postkit.errors import PostkitError
from postkit.pipeline import load_study
from postkit.review import server as server_module
from postkit.review.identity import Reviewers, normalise_name, parse_reviewer_list
from postkit.review.learner import Learner, review_settings, study_settings
from postkit.review.server import MAX_BODY_BYTES, make_server


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_study_folder(tmp_path_factory.mktemp("template") / "study")


@pytest.fixture
def study_dir(template, tmp_path):
    """A fresh copy of the study for tests that record decisions."""
    return Path(shutil.copytree(template, tmp_path / "study"))


@pytest.fixture(scope="module")
def app(template, tmp_path_factory):
    """One server for the tests that record nothing (the first check loads spaCy and the tagger, ~2 s)."""
    with running_app(Path(shutil.copytree(template, tmp_path_factory.mktemp("shared") / "study"))) as server:
        yield server


@pytest.fixture
def own_app(study_dir):
    with running_app(study_dir) as server:
        yield server


def token(server, name):
    return next(r.token for r in server.reviewers if r.name == name)


def call(server, method, path, body=None, *, headers=None, raw=None, as_="alice"):
    """(status, JSON body, response headers) of one request to the app, with ``as_``'s token."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    sent = {"Host": f"127.0.0.1:{server.port}"}
    if as_ is not None:
        sent["Authorization"] = f"Bearer {token(server, as_)}"
    if body is not None:
        raw = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    connection.request(method, path, body=raw, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    kind = response.getheader("Content-Type", "")
    return response.status, (json.loads(data) if kind.startswith("application/json") else data), response


def decide(server, quote_id, reviewer, action, text, note=None):
    """A decision by ``reviewer`` (their token; the body names nobody)."""
    return call(server, "POST", "/api/decide", {"quote_id": quote_id, "action": action, "text": text, "note": note},
                as_=reviewer)


def raw_request(server, data: bytes, timeout=5.0) -> bytes:
    """Send bytes as they are (e.g. a broken Content-Length); the raw answer, read until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def post_head(server, length_header: str, name="alice") -> bytes:
    return (f"POST /api/check HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {token(server, name)}\r\nContent-Type: application/json\r\n"
            f"{length_header}\r\n").encode()


# --------------------------------------------------------------------------- pages and quotes


def test_page_and_static_files_load_nothing_from_outside(app):
    status, page, response = call(app, "GET", "/", as_=None)  # the page itself needs no token
    assert status == 200 and b"/static/app.js" in page
    assert "default-src 'none'" in response.getheader("Content-Security-Policy")
    assert response.getheader("Cache-Control") == "no-store"
    assert response.getheader("Referrer-Policy") == "no-referrer"
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        status, _, response = call(app, "GET", f"/static/{name}", as_=None)
        assert status == 200 and response.getheader("Content-Type").startswith(kind)
    for name in ("index.html", "app.js", "app.css"):  # offline: no URL to any other server
        text = resources.files("postkit.review.static").joinpath(name).read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", text), name
    assert call(app, "GET", "/static/../server.py")[0] == 404


def test_quotes_come_with_candidates_verdicts_and_highlights(app):
    status, data, _ = call(app, "GET", "/api/quotes")
    assert status == 200 and data["study"] == "study" and data["quotes"][0]["status"] is None
    q1, q2 = data["quotes"]
    assert (q1["quote_id"], q1["source_post_id"], q1["text"], q1["status"]) == ("q1", "p1", SOURCE_1, None)
    verbatim = q1["candidates"][0]
    assert verbatim["verdict"] == "traceable" and verbatim["source_rank"] == 1 and verbatim["edits"]
    assert verbatim["runs"] and verbatim["shared"]  # spans for the page to highlight
    assert {c["verdict"] for c in q2["candidates"]} == {"traceable", "disguised"}

    status, data, _ = call(app, "GET", "/api/quotes/q2")
    assert status == 200 and data["quote"]["quote_id"] == "q2" and data["history"] == []


def test_unknown_quote_is_a_json_404(app):
    status, data, _ = call(app, "GET", "/api/quotes/nope")
    assert status == 404 and "unknown quote_id" in data["error"] and data["fix"]
    status, data, _ = call(app, "GET", "/api/nothing-here")
    assert status == 404 and data["error"]


def test_check_measures_the_typed_text(app):
    status, traced, _ = call(app, "POST", "/api/check", {"quote_id": "q1", "text": SOURCE_1})
    assert status == 200 and traced["verdict"] == "traceable" and traced["source_rank"] == 1
    assert traced["runs"] == [[0, len(SOURCE_1)]] and traced["exact_5gram_hits"] >= 1
    assert "meaning_score" in traced and "distinctive_overlap" in traced
    status, safe, _ = call(app, "POST", "/api/check", {"quote_id": "q1", "text": DISGUISED_1})
    assert status == 200 and safe["verdict"] == "disguised" and safe["shared"] == [] and safe["runs"] == []
    status, error, _ = call(app, "POST", "/api/check", {"quote_id": "q1", "text": "  "})
    assert status == 400 and error["error"]


# --------------------------------------------------------------------------- decisions


def test_approval_is_refused_unless_the_text_is_disguised(app):
    status, error, _ = decide(app, "q1", "alice", "approve", SOURCE_1)
    assert status == 400 and "traceable" in error["error"] and error["fix"]
    assert call(app, "GET", "/api/quotes/q1")[1]["history"] == []  # nothing recorded


def test_decisions_persist_in_the_study_store(study_dir):
    with running_app(study_dir) as server:
        status, decision, _ = decide(server, "q1", "alice", "approve", DISGUISED_1, "no shared words left")
        assert status == 200 and decision["action"] == "approve" and decision["scores"]["verdict"] == "disguised"
        assert decide(server, "q2", "bob", "reject", "anything", None)[0] == 200
    with running_app(study_dir) as server:  # a new server, a new connection: still there
        q1, q2 = call(server, "GET", "/api/quotes")[1]["quotes"]
        assert q1["status"]["action"] == "approve" and q1["status"]["note"] == "no shared words left"
        assert q1["status"]["text"] == DISGUISED_1 and q1["status"]["reviewer"] == "alice"
        assert q2["status"]["action"] == "reject" and q2["status"]["reviewer"] == "bob"
        assert [h["action"] for h in call(server, "GET", "/api/quotes/q1")[1]["history"]] == ["approve"]
    with CodingStore(study_dir / "coding.sqlite") as store:  # the same store as coding decisions
        assert sorted(store.reviews("quote")["item_id"]) == ["q1", "q2"]


@pytest.mark.parametrize("body, field", [
    ({"quote_id": "q1", "text": "x"}, "action"),
    ({"action": "reject", "text": "x"}, "quote_id"),
    ({"quote_id": "q1", "action": 3, "text": "x"}, "action"),
    ({"quote_id": "q1", "action": "reject", "text": "x", "note": ["x"]}, "note"),
])
def test_incomplete_decisions_are_refused(app, body, field):
    status, error, _ = call(app, "POST", "/api/decide", body)
    assert status == 400 and field in error["error"]
    assert call(app, "GET", "/api/quotes/q1")[1]["history"] == []


def test_unknown_action_is_refused_by_the_library(app):
    status, error, _ = decide(app, "q1", "alice", "publish", DISGUISED_1)
    assert status == 400 and "unknown action" in error["error"] and "approve" in error["fix"]


# --------------------------------------------------------------------------- coding


def excerpts_of(app, name, query=""):
    status, data, _ = call(app, "GET", f"/api/excerpts{query}", as_=name)
    assert status == 200 and data["coder"] == name
    return {e["unit_id"]: e for e in data["excerpts"]}


def test_code_decisions_are_recorded_and_each_coder_sees_only_their_own(own_app, study_dir):
    app = own_app
    body = {"unit_id": "p36", "code_id": "SE-C5", "action": "accept", "memo": "peers helped"}
    assert call(app, "POST", "/api/code", body, as_="alice")[0] == 200
    excerpts = excerpts_of(app, "alice")
    assert [s["code_id"] for s in excerpts["p36"]["suggestions"]] == ["SE-C5", "SE-C7"]  # best first
    assert excerpts["p36"]["suggestions"][0]["evidence"][0]["text"]
    mine = excerpts["p36"]["decisions"]
    assert list(mine) == ["SE-C5"] and mine["SE-C5"]["action"] == "accept" and mine["SE-C5"]["memo"] == "peers helped"
    # Blind coding: bob sees none of alice's decisions, and cannot ask for them.
    assert all(e["decisions"] == {} for e in excerpts_of(app, "bob").values())
    status, error, _ = call(app, "GET", "/api/excerpts?coder=alice", as_="bob")
    assert status == 403 and "alice" not in json.dumps(error)
    assert call(app, "POST", "/api/code", {**body, "action": "reject", "memo": "not peers"}, as_="bob")[0] == 200
    assert excerpts_of(app, "alice")["p36"]["decisions"]["SE-C5"]["action"] == "accept"
    assert excerpts_of(app, "bob")["p36"]["decisions"]["SE-C5"]["memo"] == "not peers"
    assert excerpts_of(app, "alice", "?coder=Alice")["p36"]["decisions"]["SE-C5"]["memo"] == "peers helped"
    with CodingStore(study_dir / "coding.sqlite") as store:
        codings = store.codings()
    assert codings[["unit_id", "coder", "code_id", "action"]].values.tolist() == [
        ["p36", "alice", "SE-C5", "accept"], ["p36", "bob", "SE-C5", "reject"]]


def test_unknown_units_and_codes_are_refused(own_app, study_dir):
    app = own_app
    body = {"unit_id": "p36", "code_id": "SE-C5", "action": "accept"}
    for change in ({"unit_id": "nope"}, {"code_id": "NOPE-C1"}, {"code_id": "se-c5"}):
        status, error, _ = call(app, "POST", "/api/code", {**body, **change})
        assert status == 422 and "unknown" in error["error"] and error["fix"], change
        assert "nope" not in json.dumps(error).lower()  # the raw value is not echoed
    status, error, _ = call(app, "POST", "/api/code", {**body, "code_id": "x" * 500})
    assert status == 422 and "longer than" in error["error"]
    status, error, _ = call(app, "POST", "/api/code", {**body, "action": "approve"})
    assert status == 400 and "accept" in error["fix"]
    # Any code of the codebook is valid, not only the unit's suggestions (a coder may add one).
    assert call(app, "POST", "/api/code", {**body, "code_id": "SE-C2", "action": "add"})[0] == 200
    with CodingStore(study_dir / "coding.sqlite") as store:
        assert store.decisions()[["unit_id", "code_id", "action"]].values.tolist() == [["p36", "SE-C2", "add"]]


def test_codes_come_with_definitions_and_include_exclude_notes(app):
    book = load_codebook()
    status, data, _ = call(app, "GET", "/api/codes")
    assert status == 200
    assert [c["code_id"] for c in data["codes"]] == [code.id for _, _, code in book.codes()]
    five = next(c for c in data["codes"] if c["code_id"] == "SE-C5")
    code = book.code("SE-C5")
    assert (five["name"], five["definition"], five["include"], five["exclude"]) == (
        code.name, code.definition, code.include, code.exclude)
    assert five["area"] == "self_efficacy" and five["area_name"] == "Self-efficacy"
    suggested = excerpts_of(app, "alice")["p36"]["suggestions"][0]
    assert suggested["code_id"] == "SE-C5" and suggested["definition"] == code.definition
    assert suggested["include"] == code.include and suggested["exclude"] == code.exclude


def test_a_coder_can_add_a_code_that_was_not_suggested(own_app, study_dir):
    app = own_app
    body = {"unit_id": "p36", "code_id": "UA-C2", "action": "add", "memo": "could have written it"}
    assert call(app, "POST", "/api/code", body, as_="alice")[0] == 200
    mine = excerpts_of(app, "alice")["p36"]
    assert [s["code_id"] for s in mine["suggestions"]] == ["SE-C5", "SE-C7"]  # not made a suggestion
    assert [(a["code_id"], a["name"], a["definition"]) for a in mine["added"]] == [
        ("UA-C2", "Posts that resonate", load_codebook().code("UA-C2").definition)]
    assert mine["decisions"]["UA-C2"]["action"] == "add"
    assert excerpts_of(app, "bob")["p36"]["added"] == []  # blind: bob does not see alice's addition
    # Taken back: still listed for alice (as removed), and the store keeps both decisions.
    assert call(app, "POST", "/api/code", {**body, "action": "remove", "memo": None}, as_="alice")[0] == 200
    mine = excerpts_of(app, "alice")["p36"]
    assert [a["code_id"] for a in mine["added"]] == ["UA-C2"] and mine["decisions"]["UA-C2"]["action"] == "remove"
    with CodingStore(study_dir / "coding.sqlite") as store:
        assert store.decisions()[["code_id", "action"]].values.tolist() == [["UA-C2", "add"], ["UA-C2", "remove"]]
        assert store.codings()["applied"].tolist() == [False]


def test_evidence_spans_are_merged_and_each_code_listed_once(study_dir):
    text = "There was only one person who got it, and they had been through it too."
    with CodingStore(study_dir / "coding.sqlite") as store:
        store.add_excerpts([{"unit_id": "p40", "post_id": "p40", "forum": "Jay", "text": text}])
        store.add_suggestions([{"unit_id": "p40", "code_id": "SE-C5", "score": 0.7, "evidence": [
            {"start": 10, "end": 14, "text": "only"}, {"start": 10, "end": 18, "text": "only one"},
            {"start": 10, "end": 18, "text": "only one"}, {"start": 14, "end": 25, "text": " one person"},
            {"start": 0, "end": 4, "text": "been through it"}]}], codebook_version="old")
        # The same code again from a later tagging run: listed once, as the later run made it.
        store.add_suggestions([{"unit_id": "p40", "code_id": "SE-C5", "score": 0.6, "evidence": [
            {"start": 10, "end": 18, "text": "only one"}, {"start": 10, "end": 14, "text": "only"},
            {"start": 51, "end": 66, "text": "been through it"}]}], codebook_version="new")
    with running_app(study_dir) as app:
        suggestions = excerpts_of(app, "alice")["p40"]["suggestions"]
    assert len(suggestions) == 1 and suggestions[0]["score"] == 0.6
    assert suggestions[0]["evidence"] == [{"start": 10, "end": 18, "text": "only one"},
                                          {"start": 51, "end": 66, "text": "been through it"}]


def test_merge_evidence_merges_overlaps_and_places_misplaced_words():
    text = "I am the only one, only one."
    spans = merge_evidence(text, [
        {"start": 9, "end": 13, "text": "only"}, {"start": 9, "end": 17, "text": "only one"},  # inside, duplicate
        {"start": 9, "end": 17, "text": "only one"}, {"start": 5, "end": 12, "text": "the onl"},  # overlapping
        {"start": 17, "end": 18, "text": ","},  # touching
        {"start": 0, "end": 3, "text": "only one"},  # wrong offsets: placed at the first occurrence
        {"start": 2, "end": 99, "text": "am"},  # offsets past the end: placed by its words
        {"start": None, "end": None, "text": "not in the text"}, {"text": "not in the text"},  # kept once, unplaced
        "junk", {"start": True, "end": 3}, {"start": 3, "end": 1},  # ignored
    ])
    assert spans == [{"start": 2, "end": 4, "text": "am"}, {"start": 5, "end": 18, "text": "the only one,"},
                     {"start": None, "end": None, "text": "not in the text"}]
    assert merge_evidence("", []) == []


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_evidence_colours_have_accessible_contrast():
    css = resources.files("postkit.review.static").joinpath("app.css").read_text()
    ink = re.search(r"--ink: (#[0-9a-f]{6})", css).group(1)
    pairs = re.findall(r"\.c(\d) \{ --ev-bg: (#[0-9a-f]{6}); --ev-ink: (#[0-9a-f]{6}); \}", css)
    js = resources.files("postkit.review.static").joinpath("app.js").read_text()
    assert len(pairs) == int(re.search(r"CODE_COLOURS = (\d+)", js).group(1)) == 8
    assert len({bg for _, bg, _ in pairs}) == len({dark for _, _, dark in pairs}) == 8  # one colour per code
    for number, background, dark in pairs:
        assert _contrast(ink, background) >= 7, number  # the excerpt's text on its highlight
        assert _contrast("#ffffff", dark) >= 4.5, number  # the white number on its badge
        assert _contrast(dark, background) >= 3, number  # the underline against the highlight
    assert sorted(re.findall(r"\.also-c(\d) \{ --ev-also: (#[0-9a-f]{6}); \}", css)) == sorted(
        (number, dark) for number, _, dark in pairs)


def test_a_suggested_code_from_an_older_codebook_can_still_be_answered(study_dir):
    with CodingStore(study_dir / "coding.sqlite") as store:
        store.add_suggestions([{"unit_id": "p38", "code_id": "OLD-C9", "score": 0.5, "evidence": []}],
                              codebook_version="old")
    with QuoteStudy.open(study_dir) as study:
        study.decide_code("p38", "OLD-C9", "alice", "reject")
        with pytest.raises(PostkitError, match="unknown code_id"):
            study.decide_code("p36", "OLD-C9", "alice", "reject")  # suggested for another unit only


# --------------------------------------------------------------------------- safety


def test_listens_on_loopback_only(app):
    assert app.server_address[0] == "127.0.0.1"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "", "0.0.0.0:{port}"])
def test_foreign_host_headers_are_refused(app, host):
    status, error, _ = call(app, "GET", "/api/quotes", headers={"Host": host.format(port=app.port)})
    assert status == 403 and "Host" in error["error"]


def test_localhost_host_header_is_accepted(app):
    assert call(app, "GET", "/api/quotes", headers={"Host": f"localhost:{app.port}"})[0] == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None])
def test_posts_must_be_json(app, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    raw = b'{"quote_id": "q2", "action": "reject", "text": "x"}'
    status, error, _ = call(app, "POST", "/api/decide", headers=headers, raw=raw)
    assert status == 415 and error["fix"]
    assert call(app, "GET", "/api/quotes/q2")[1]["history"] == []


def test_cross_site_origins_and_bad_json_are_refused(app):
    body = {"quote_id": "q2", "action": "reject", "text": "x"}
    status, _, _ = call(app, "POST", "/api/decide", body, headers={"Origin": "https://evil.example"})
    assert status == 403
    ok_origin = {"Origin": f"http://localhost:{app.port}"}
    assert call(app, "POST", "/api/check", {"quote_id": "q1", "text": "hello"}, headers=ok_origin)[0] == 200
    status, error, _ = call(app, "POST", "/api/check", headers={"Content-Type": "application/json"}, raw=b"{nope")
    assert status == 400 and "JSON" in error["error"]
    status, error, _ = call(app, "POST", "/api/check", headers={"Content-Type": "application/json"}, raw=b"[1]")
    assert status == 400


def test_a_taken_port_is_a_one_line_error(app):
    with pytest.raises(PostkitError) as caught:
        make_server(lambda: pytest.fail("the study must not be opened"), app.port)
    assert "already in use" in str(caught.value) and "--port" in caught.value.fix


# --------------------------------------------------------------------------- concurrency


def test_concurrent_reviewers_lose_nothing(study_dir):
    """Two reviewers on two servers (two store connections, as two processes would have),
    deciding the same and different quotes and codes at once: every decision is kept."""
    rounds = 8
    errors: list[str] = []

    def work(server, reviewer, quote_ids):
        for n in range(rounds):
            for quote_id in quote_ids:
                approve = quote_id == "q1" and n % 2
                action, text = ("approve", DISGUISED_1) if approve else ("reject", f"{reviewer} {n}")
                status, body, _ = decide(server, quote_id, reviewer, action, text, f"{reviewer} round {n}")
                if status != 200:
                    errors.append(f"{reviewer} {quote_id}: {body}")
            code = {"unit_id": "p36", "code_id": "SE-C5", "coder": reviewer, "action": "accept", "memo": str(n)}
            if call(server, "POST", "/api/code", code, as_=reviewer)[0] != 200:
                errors.append(f"{reviewer} code {n}")

    with running_app(study_dir) as one, running_app(study_dir) as two:
        threads = [threading.Thread(target=work, args=(one, "alice", ["q1", "q2"])),
                   threading.Thread(target=work, args=(two, "bob", ["q1"]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        history = call(one, "GET", "/api/quotes/q1")[1]["history"]
    assert sorted(h["reviewer"] for h in history) == ["alice"] * rounds + ["bob"] * rounds
    assert {h["note"] for h in history if h["reviewer"] == "bob"} == {f"bob round {n}" for n in range(rounds)}
    with CodingStore(study_dir / "coding.sqlite") as store:
        assert len(store.reviews("quote")) == 3 * rounds
        assert sorted(store.decisions()["coder"]) == ["alice"] * rounds + ["bob"] * rounds


# --------------------------------------------------------------------------- CLI


def start_cli(study_dir, *options):
    """``postkit review serve`` in a subprocess; (process, {name: link}) once it prints its links."""
    process = subprocess.Popen(
        [sys.executable, "-m", "postkit.cli", "review", "serve", str(study_dir), "--port", "0", "--no-browser",
         *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines, links = [], {}
    while True:
        line = process.stdout.readline()
        lines.append(line)
        if not line or line.strip() == "Ctrl+C to stop":
            break
        match = re.fullmatch(r"  (\S+) +(http://127\.0\.0\.1:\d+/#token=[A-Za-z0-9_-]{43})", line.rstrip("\n"))
        if match:
            links[match.group(1)] = match.group(2)
    if not links:
        process.kill()
        raise AssertionError("".join(lines) + process.stderr.read())
    return process, links, "".join(lines)


def get_with_link(link, path):
    port, token = re.search(r":(\d+)/#token=(.*)", link).groups()
    connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    response = connection.getresponse()
    data = json.loads(response.read())
    connection.close()
    return response.status, data


def stop_cli(process):
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Stopped." in out and "Traceback" not in err
    return out, err


def test_cli_serves_until_interrupted(study_dir):
    """Without --reviewers: one reviewer, named after the login name, with one secret link."""
    import getpass

    process, links, printed = start_cli(study_dir)
    try:
        assert list(links) == [normalise_name(getpass.getuser())]
        link = links[normalise_name(getpass.getuser())]
        assert get_with_link(link, "/api/quotes")[0] == 200
        assert get_with_link(link.split("#")[0] + "#token=", "/api/quotes")[0] == 401
    finally:
        out, err = stop_cli(process)
    token = link.split("#token=")[1]
    assert token not in err  # the link is printed once, on stdout, and nowhere else
    assert not [f for f in study_dir.rglob("*") if f.is_file() and token.encode() in f.read_bytes()]


def test_cli_prints_one_link_per_reviewer(study_dir):
    process, links, printed = start_cli(study_dir, "--reviewers", " Alice ,bob")
    try:
        assert list(links) == ["alice", "bob"] and len(set(links.values())) == 2
        assert get_with_link(links["alice"], "/api/me")[1]["name"] == "alice"
        assert get_with_link(links["bob"], "/api/me")[1]["name"] == "bob"
    finally:
        stop_cli(process)


@pytest.mark.parametrize("names, message", [("Bob,bob", "reviewers 1 and 2"), ("alice,,bob", "reviewer 2"),
                                            ("alice, \u200b", "reviewer 2"), ("", "reviewer 1")])
def test_cli_refuses_a_bad_reviewer_list_in_one_line(study_dir, names, message):
    result = CliRunner().invoke(main, ["review", "serve", str(study_dir), "--port", "0", "--no-browser",
                                       "--reviewers", names])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr and "Bob" not in result.stderr


def test_cli_reports_a_taken_port_and_a_bad_folder_in_one_line(study_dir, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["review", "serve", str(study_dir), "--port", str(port), "--no-browser"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: port {port} on 127.0.0.1 is already in use — stop the other server "
                                     f"or pick another port, e.g. --port {port + 1}")
    result = CliRunner().invoke(main, ["review", "serve", str(tmp_path / "missing"), "--port", "0", "--no-browser"])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "study folder does not exist" in result.stderr


# --------------------------------------------------------------------------- identity


API_CALLS = [("GET", "/api/me", None), ("GET", "/api/quotes", None), ("GET", "/api/quotes/q1", None),
             ("GET", "/api/excerpts", None), ("GET", "/api/codes", None),
             ("POST", "/api/check", {"quote_id": "q1", "text": "hello"}),
             ("POST", "/api/decide", {"quote_id": "q2", "action": "reject", "text": "x"}),
             ("POST", "/api/code", {"unit_id": "p36", "code_id": "SE-C5", "action": "accept"})]


@pytest.mark.parametrize("method, path, body", API_CALLS)
def test_the_api_needs_a_reviewer_token(app, method, path, body):
    wrong = ["", "Bearer", "Bearer nope", f"Basic {token(app, 'alice')}", f"Bearer {token(app, 'alice')}x",
             f"Bearer {token(app, 'alice')[:-1]}"]
    for header in [None, *wrong]:
        status, error, response = call(app, method, path, body, as_=None,
                                       headers={"Authorization": header} if header is not None else None)
        assert status == 401 and error["fix"] and "link" in error["fix"], header
        assert response.getheader("WWW-Authenticate").startswith("Bearer")
    with CodingStore(app.study.store_path) as store:
        assert store.reviews("quote").empty and store.decisions().empty


def test_a_token_from_another_run_of_the_app_is_refused(study_dir, app):
    with running_app(study_dir) as other:
        assert token(other, "alice") != token(app, "alice")
        status, _, _ = call(app, "GET", "/api/quotes", as_=None,
                            headers={"Authorization": f"Bearer {token(other, 'alice')}"})
        assert status == 401


def test_me_names_the_tokens_reviewer(app):
    for name in ("alice", "bob"):
        status, me, _ = call(app, "GET", "/api/me", as_=name)
        assert status == 200 and me == {"name": name, "study": "study"}


def test_decisions_are_recorded_under_the_tokens_reviewer(own_app, study_dir):
    app = own_app
    body = {"quote_id": "q2", "action": "reject", "text": "too close"}
    status, error, _ = call(app, "POST", "/api/decide", {**body, "reviewer": "alice"}, as_="bob")
    assert status == 403 and error["fix"]
    status, error, _ = call(app, "POST", "/api/code", {"unit_id": "p36", "code_id": "SE-C5", "action": "accept",
                                                       "coder": "alice"}, as_="bob")
    assert status == 403
    assert call(app, "POST", "/api/decide", body, as_="bob")[0] == 200  # no name: the token's
    status, decision, _ = call(app, "POST", "/api/decide", {**body, "reviewer": " BOB\u200b"}, as_="bob")
    assert status == 200 and decision["reviewer"] == "bob"  # the same person, written the same way
    with CodingStore(study_dir / "coding.sqlite") as store:
        assert store.reviews("quote")["reviewer"].tolist() == ["bob", "bob"] and store.decisions().empty


def test_names_that_differ_only_in_case_width_or_invisible_characters_are_one_person(study_dir):
    assert {normalise_name(n) for n in ("Bob", "bob", " BOB ", "Ｂｏｂ", "b\u200bob", "\ufeffbob")} == {"bob"}
    assert parse_reviewer_list("Alice, Bob") == ["alice", "bob"]
    for names in (["Bob", "bob"], ["bob", "Ｂｏｂ"], ["alice", ""], ["alice", "\u200b"], ["a\x07"], ["x" * 65]):
        with pytest.raises(PostkitError):
            Reviewers(names)
    with pytest.raises(PostkitError):
        make_server(lambda: pytest.fail("the study must not be opened"), 0, ["Bob", "bob"])
    with running_app(study_dir, ["Bob"]) as server:  # the link's name is the normalised one
        assert [r.name for r in server.reviewers] == ["bob"]
        body = {"unit_id": "p36", "code_id": "SE-C5", "action": "accept"}
        assert call(server, "POST", "/api/code", body, as_="bob")[0] == 200
    with QuoteStudy.open(study_dir) as study:  # the library normalises too: one coder, not three
        study.decide_code("p36", "SE-C7", "Bob", "reject")
        study.decide_code("p38", "SE-C2", "BOB\u200b", "accept")
        assert set(study.store.decisions()["coder"]) == {"bob"}
        assert len([e for e in study.excerpts("Bob") if e["decisions"]]) == 2


def test_no_reviewers_means_the_login_name(study_dir, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "  Dana\u200b ")
    server = make_server(lambda: QuoteStudy.open(study_dir), 0)
    try:
        assert [r.name for r in server.reviewers] == ["dana"]
        assert server.link("Dana").startswith(f"http://127.0.0.1:{server.port}/#token=")
    finally:
        server.server_close()

    def no_user():
        raise OSError("no user")

    monkeypatch.setattr("getpass.getuser", no_user)
    with pytest.raises(PostkitError, match="--reviewers"):
        make_server(lambda: pytest.fail("the study must not be opened"), 0)


# --------------------------------------------------------------------------- limits


def test_a_big_body_is_refused_with_413_quickly(app):
    started = time.monotonic()
    status, error, _ = call(app, "POST", "/api/check", {"quote_id": "q1", "text": "word " * 180_000})  # ~900 kB
    assert status == 413 and error["error"] and time.monotonic() - started < 5
    answer = raw_request(app, post_head(app, f"Content-Length: {10**9}\r\n"))  # announced, never sent
    assert answer.startswith(b"HTTP/1.1 413")
    assert call(app, "GET", "/api/quotes")[0] == 200  # still serving


@pytest.mark.parametrize("path, body, field", [
    ("/api/check", {"quote_id": "q1", "text": "word " * (MAX_TEXT_CHARS // 5 + 1)}, "text"),
    ("/api/decide", {"quote_id": "q2", "action": "reject", "text": "word " * (MAX_TEXT_CHARS // 5 + 1)}, "text"),
    ("/api/decide", {"quote_id": "q2", "action": "reject", "text": "x", "note": "n" * (MAX_NOTE_CHARS + 1)},
     "note"),
    ("/api/code", {"unit_id": "p36", "code_id": "SE-C5", "action": "accept", "memo": "m" * (MAX_NOTE_CHARS + 1)},
     "memo"),
])
def test_long_texts_are_refused_with_422(app, path, body, field):
    assert len(json.dumps(body)) < MAX_BODY_BYTES  # refused for its length, not the body's size
    status, error, _ = call(app, "POST", path, body)
    assert status == 422 and f"the {field} is longer than 2,000 characters" in error["error"] and error["fix"]
    with CodingStore(app.study.store_path) as store:
        assert store.reviews("quote").empty and store.decisions().empty


def test_a_text_of_the_maximum_length_is_checked(app):
    text = ("a walk helped " * 200)[:MAX_TEXT_CHARS]
    status, result, _ = call(app, "POST", "/api/check", {"quote_id": "q1", "text": text})
    assert status == 200 and result["verdict"]


@pytest.mark.parametrize("header", ["Content-Length: -1\r\n", "Content-Length: abc\r\n", "Content-Length: +5\r\n",
                                    "Content-Length: 1e3\r\n", "", "Content-Length: 2\r\nContent-Length: 3\r\n",
                                    "Transfer-Encoding: chunked\r\n"])
def test_a_malformed_content_length_is_a_quick_400(app, header):
    started = time.monotonic()
    answer = raw_request(app, post_head(app, header) + b"{}")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"Connection: close" in answer and time.monotonic() - started < 3


@pytest.mark.parametrize("raw", [b'{"a":' * 10_000 + b"1" + b"}" * 10_000, b"[" * 30_000 + b"]" * 30_000,
                                 b"\xff\xfe", b'{"quote_id": "q1", "text": "x"', b"1" * 5000, b""])
def test_bodies_that_are_not_a_json_object_are_a_400(app, raw):
    assert len(raw) < MAX_BODY_BYTES
    status, error, _ = call(app, "POST", "/api/check", headers={"Content-Type": "application/json"}, raw=raw)
    assert status == 400 and error["error"], error


def test_a_client_that_stalls_is_dropped(app, monkeypatch):
    monkeypatch.setattr(server_module._Handler, "timeout", 0.5)
    started = time.monotonic()
    answer = raw_request(app, post_head(app, "Content-Length: 100\r\n") + b'{"quote_id"')  # then silence
    assert answer == b"" and time.monotonic() - started < 3  # closed, nothing half-answered
    started = time.monotonic()
    assert raw_request(app, b"GET /api/quotes HTTP/1.1\r\nHost: 127.0.0.1\r\n") == b""  # headers never end
    assert time.monotonic() - started < 3
    assert call(app, "GET", "/api/quotes")[0] == 200


def test_an_unauthorised_body_is_never_parsed(app):
    """No token, no work: the body (here one too big to accept) is dropped unread."""
    status, _, _ = call(app, "POST", "/api/check", as_=None, headers={"Content-Type": "application/json"},
                        raw=b"[" * 200_000)
    assert status == 401


class SlowStudy:
    """A stand-in study whose check waits until released (as a check of a huge text would)."""

    folder = Path("slow")

    def __init__(self):
        self.release, self.started, self.checks = threading.Event(), threading.Event(), []

    def quotes(self):
        return []

    def excerpts(self, coder):
        return []

    def check(self, quote_id, text):
        self.checks.append(text)
        self.started.set()
        self.release.wait(20)
        return {"verdict": "disguised"}


def test_a_slow_check_does_not_block_other_reviewers():
    study = SlowStudy()
    with running_app(study=study) as server:
        results = {}
        slow = threading.Thread(target=lambda: results.update(
            check=call(server, "POST", "/api/check", {"quote_id": "q1", "text": "slow"}, as_="alice")))
        slow.start()
        try:
            assert study.started.wait(10)
            started = time.monotonic()
            assert call(server, "GET", "/api/quotes", as_="bob")[0] == 200
            assert call(server, "GET", "/api/excerpts", as_="bob")[0] == 200
            assert time.monotonic() - started < 1.5  # answered while the check is still running
            assert slow.is_alive()
        finally:
            study.release.set()
            slow.join(20)
        assert results["check"][0] == 200


def test_a_check_that_takes_too_long_is_a_503_and_queued_checks_are_dropped():
    study = SlowStudy()
    with running_app(study=study, check_timeout=0.5) as server:
        try:
            started = time.monotonic()
            status, error, _ = call(server, "POST", "/api/check", {"quote_id": "q1", "text": "first"})
            assert status == 503 and "0.5 s" in error["error"] and time.monotonic() - started < 3
            status, error, _ = call(server, "POST", "/api/check", {"quote_id": "q1", "text": "second"})
            assert status == 503 and error["fix"]  # waited behind the first, then dropped unrun
        finally:
            study.release.set()
        deadline = time.monotonic() + 5
        while study.checks == ["first"] and time.monotonic() < deadline:
            status, result, _ = call(server, "POST", "/api/check", {"quote_id": "q1", "text": "third"})
            if status == 200:
                break
        assert study.checks == ["first", "third"]  # "second" never ran


def test_a_replaced_store_stops_the_app_accepting_decisions(own_app, study_dir, tmp_path):
    """A rerun or a copy that replaces coding.sqlite under a running app must not lose decisions
    silently: the app answers 409 and writes nothing into either file."""
    import sqlite3

    body = {"unit_id": "p36", "code_id": "SE-C5", "action": "accept"}
    assert call(own_app, "POST", "/api/code", body, as_="alice")[0] == 200
    store = study_dir / "coding.sqlite"
    shutil.copy(store, tmp_path / "copy.sqlite")
    os.replace(tmp_path / "copy.sqlite", store)
    status, error, _ = call(own_app, "POST", "/api/code", {**body, "action": "reject"}, as_="alice")
    assert status == 409 and "replaced" in error["error"]
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT count(*) FROM decisions").fetchone()[0] == 1


# --------------------------------------------------------------------------- learning from the coders

# Written for these tests: first-person posts about writing things out, and plain questions.
VENTS = [f"I just needed to write this all out somewhere, day {n} of feeling flat and tired, thanks for reading."
         for n in range(10)]
QUESTIONS = [f"Does anyone know how long the waiting list is for clinic {n}? Thanks for any advice." for n in range(10)]
CODED = [f"v{n}" for n in range(8)] + [f"q{n}" for n in range(8)]  # 16 decisions: enough to retrain


@pytest.fixture
def learning_dir(study_dir):
    """The study plus 20 excerpts (v0-v9 vents, q0-q9 questions), each suggested CS-C2."""
    units = [(f"v{n}", t) for n, t in enumerate(VENTS)] + [(f"q{n}", t) for n, t in enumerate(QUESTIONS)]
    with CodingStore(study_dir / "coding.sqlite") as store:
        store.add_excerpts([{"unit_id": u, "post_id": u, "forum": "Robin", "text": t} for u, t in units])
        store.add_suggestions([{"unit_id": u, "code_id": "CS-C2", "score": 0.4, "evidence": []} for u, _ in units],
                              codebook_version="test")
    return study_dir


def code_unit(server, unit_id, as_="alice"):
    """A vent's CS-C2 accepted, a question's rejected (its only suggestion: no area)."""
    action = "accept" if unit_id.startswith("v") else "reject"
    status, data, _ = call(server, "POST", "/api/code", {"unit_id": unit_id, "code_id": "CS-C2", "action": action},
                           as_=as_)
    assert status == 200, data


def learning(server):
    status, data, _ = call(server, "GET", "/api/learning")
    assert status == 200
    return data


@pytest.mark.slow
def test_the_ranker_retrains_after_every_n_decisions_and_reranks_what_nobody_coded(learning_dir):
    store_path = learning_dir / "coding.sqlite"
    with running_app(learning_dir, retrain_every=8) as app:
        app.learner.min_units = 10  # the app waits for 50 coded excerpts; this study has 20
        assert learning(app) == {"state": "idle", "message": "", "every": 8}
        for unit_id in CODED[:7]:
            code_unit(app, unit_id)
        assert app.learner.wait(30) and learning(app)["state"] == "idle"  # 7 decisions: not due
        code_unit(app, CODED[7])
        assert learning(app)["state"] in ("running", "waiting")  # due at once, trained in the background
        assert app.learner.wait(60)
        waiting = learning(app)
        assert waiting["state"] == "waiting" and "too few codings (8 coded excerpts in 1 outcome" in waiting["message"]
        assert not (learning_dir / "ranker.json").exists()
        for unit_id in CODED[8:15]:
            code_unit(app, unit_id)
        assert app.learner.wait(30) and learning(app)["state"] == "waiting"  # 7 more since the last try
        code_unit(app, CODED[15])
        assert app.learner.wait(60)
        done = learning(app)
        assert done["state"] == "retrained" and done["decisions"] == 16 and done["units"] == 16
        assert done["message"] == "ranker retrained on 16 decisions" and done["at"]
        status, data, _ = call(app, "GET", "/api/excerpts")
        assert data["learning"] == done
        shown = {e["unit_id"]: e["suggestions"] for e in data["excerpts"]}
    ranker = load_ranker(learning_dir / "ranker.json")  # beside the store, where `code retrain` puts it
    assert ranker.meta["store_decisions"] == 16
    with CodingStore(store_path, read_only=True) as store:
        suggestions = store.suggestions()
        assert len(store.decisions()) == 16
    new = suggestions[suggestions["codebook_version"].str.endswith(f"+ranker:{ranker.version_hash[:16]}")]
    # Every excerpt nobody decided on was re-ranked by the new ranker; none that was coded.
    assert set(new["unit_id"]) == {"p36", "p38", "v8", "v9", "q8", "q9"} == {
        u for u in shown if u not in CODED} and done["reranked"] == 6
    assert {e["code_id"]: e["score"] for e in shown["q0"]} == {"CS-C2": 0.4}
    # The new ranker learnt that a question has no area: its CS-C2 drops to the bottom, a vent's rises.
    question = {s["code_id"]: s["score"] for s in shown["q9"]}
    vent = {s["code_id"]: s["score"] for s in shown["v9"]}
    assert question["CS-C2"] == 0 and vent["CS-C2"] > 0.4


@pytest.mark.slow
def test_retraining_never_runs_twice_at_once_nor_holds_up_a_decision(learning_dir):
    active, most, calls, release = [0], [0], [], threading.Event()

    def slow_retrain(store, **options):  # the real call, held until released
        active[0] += 1
        most[0] = max(most[0], active[0])
        calls.append(1)
        try:
            release.wait(20)
            return retrain_from_store(store, **options)
        finally:
            active[0] -= 1

    with running_app(learning_dir) as app:
        app.learner = Learner(learning_dir / "coding.sqlite", every=1, write=app.write, retrain=slow_retrain,
                              min_units=10)
        try:
            started = time.monotonic()
            for unit_id in CODED[:6]:
                code_unit(app, unit_id)  # each decision is due; the first retrain is still held
            assert time.monotonic() - started < 5  # decisions are answered while it runs
            deadline = time.monotonic() + 30  # (the learning thread loads spaCy first)
            while not calls and time.monotonic() < deadline:
                time.sleep(0.05)
            assert learning(app)["state"] == "running" and calls == [1]
        finally:
            release.set()
        assert app.learner.wait(60)
        assert most == [1] and len(calls) == 2  # the held one, then one more look for the decisions meanwhile
        assert learning(app)["state"] == "waiting"  # 6 coded excerpts are too few to train on
        with CodingStore(learning_dir / "coding.sqlite", read_only=True) as store:
            assert len(store.decisions()) == 6


@pytest.mark.slow
def test_a_failed_retrain_keeps_every_decision_and_says_why_in_one_line(learning_dir):
    (learning_dir / "ranker.json").mkdir()  # the ranker file cannot be written
    with running_app(learning_dir, retrain_every=16) as app:
        app.learner.min_units = 10
        for unit_id in CODED:
            code_unit(app, unit_id)
        assert app.learner.wait(60)
        failed = learning(app)
        assert failed["state"] == "failed" and "\n" not in failed["message"]
        assert failed["message"].startswith("retraining failed: ") and "every decision is saved" in failed["message"]
        code_unit(app, "v8")  # the app still records decisions
        status, data, _ = call(app, "GET", "/api/excerpts")
        assert status == 200 and data["learning"]["state"] == "failed"
        assert {e["unit_id"]: e["suggestions"][0]["score"] for e in data["excerpts"]}["v9"] == 0.4  # not re-ranked
    with CodingStore(learning_dir / "coding.sqlite", read_only=True) as store:
        assert len(store.decisions()) == 17
        assert not store.suggestions()["codebook_version"].str.contains("ranker").any()


@pytest.mark.slow
def test_excerpts_can_be_ordered_most_informative_first(learning_dir):
    with running_app(learning_dir, order="sampled") as app:
        sampled = [e["unit_id"] for e in excerpts_list(app, "")]
        assert sampled == sorted(sampled)  # as stored
        by_default = excerpts_list(app, "")
        ordered = excerpts_list(app, "?order=uncertainty")
        assert [e["unit_id"] for e in by_default] == sampled
        order = [e["unit_id"] for e in ordered]
        assert sorted(order) == sampled and order != sampled
        with CodingStore(learning_dir / "coding.sqlite", read_only=True) as store:  # the library's own order
            assert order == uncertainty_order(store, coder="alice")
        # What alice codes stays in view: first, in the order she coded it; the rest, most informative first.
        code_unit(app, order[3])
        code_unit(app, "v0")
        after = [e["unit_id"] for e in excerpts_list(app, "?order=uncertainty")]
        assert after[:2] == [order[3], "v0"] and after[2:] == [u for u in order if u not in (order[3], "v0")]
        assert [e["unit_id"] for e in excerpts_list(app, "?order=uncertainty", as_="bob")] == order  # bob coded none
        status, error, _ = call(app, "GET", "/api/excerpts?order=coin")
        assert status == 400 and "order" in error["error"]
    with running_app(learning_dir, order="uncertainty") as app:  # `review serve --order uncertainty`
        status, data, _ = call(app, "GET", "/api/excerpts")
        assert data["order"] == "uncertainty" and [e["unit_id"] for e in data["excerpts"]] == after
        assert [e["unit_id"] for e in excerpts_list(app, "?order=sampled")] == sampled


def excerpts_list(app, query, as_="alice"):
    status, data, _ = call(app, "GET", f"/api/excerpts{query}", as_=as_)
    assert status == 200, data
    return data["excerpts"]


def test_review_settings_come_from_the_study_file(tmp_path, learning_dir):
    given = {"retrain_every": 0, "order": "uncertainty"}
    assert review_settings(given) == given
    for bad, message in (({"retrain_every": -1}, "0 or more"), ({"retrain_every": True}, "whole number"),
                         ({"order": "random"}, "sampled or uncertainty"), ({"retrain": 5}, "unknown option")):
        with pytest.raises(PostkitError, match=message):
            review_settings(bad)
    # `postkit run` checks the section when it loads the study file, hours before the app starts.
    (tmp_path / "posts.csv").write_text("post_id,text\n1,hello\n")
    study_file = tmp_path / "study.toml"
    head = '[inputs]\nposts = "posts.csv"\n[pipeline]\nstages = ["consent"]\n[review]\n'
    study_file.write_text(head + "retrain_every = 5\n")
    assert load_study(study_file).section("review") == {"retrain_every": 5}
    study_file.write_text(head + 'retrain_every = "x"\n')
    with pytest.raises(PostkitError, match="retrain_every"):
        load_study(study_file)
    # A run folder's manifest records the study's config: the app reads [review] from it.
    run = tmp_path / "run"
    shutil.copytree(learning_dir, run / "tag")
    settings = {"retrain_every": 3, "order": "uncertainty"}
    (run / "manifest.json").write_text(json.dumps({"config": {"review": settings}}))
    assert study_settings(run / "tag" / "coding.sqlite") == {"retrain_every": 3, "order": "uncertainty"}
    with running_app(run / "tag", retrain_every=None, order=None) as app:  # neither option given
        assert app.learner.every == 3 and app.learner.order == "uncertainty"
    with running_app(run / "tag", retrain_every=7, order=None) as app:  # an option given wins
        assert app.learner.every == 7 and app.learner.order == "uncertainty"
    with running_app(learning_dir, retrain_every=None, order=None) as app:  # no run folder: the defaults
        assert app.learner.every == 25 and app.learner.order == "sampled" and app.learner.min_units == 50
        assert learning(app)["message"] == ""


@pytest.mark.slow
def test_cli_takes_the_learning_options(learning_dir):
    process, links, printed = start_cli(learning_dir, "--retrain-every", "3", "--order", "uncertainty")
    try:
        status, data = get_with_link(links[next(iter(links))], "/api/excerpts")
        assert status == 200 and data["order"] == "uncertainty" and data["learning"]["every"] == 3
    finally:
        stop_cli(process)
    for option in (["--retrain-every", "-1"], ["--order", "random"]):
        result = CliRunner().invoke(main, ["review", "serve", str(learning_dir), "--no-browser", *option])
        assert result.exit_code == 2 and option[0] in result.output
