"""The review app's HTTP API against a small real study: checks, decisions, coding, safety."""

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
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner
from review_fixtures import DISGUISED_1, SOURCE_1, make_study_folder, running_app

from postkit.cli import main
from postkit.coding.store import CodingStore
from postkit.errors import PostkitError
from postkit.review.server import make_server


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


def call(server, method, path, body=None, *, headers=None, raw=None):
    """(status, JSON body, response headers) of one request to the app."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    sent = {"Host": f"127.0.0.1:{server.port}"}
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
    return call(server, "POST", "/api/decide",
                {"quote_id": quote_id, "reviewer": reviewer, "action": action, "text": text, "note": note})


# --------------------------------------------------------------------------- pages and quotes


def test_page_and_static_files_load_nothing_from_outside(app):
    status, page, response = call(app, "GET", "/")
    assert status == 200 and b"/static/app.js" in page
    assert "default-src 'none'" in response.getheader("Content-Security-Policy")
    assert response.getheader("Cache-Control") == "no-store"
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        status, _, response = call(app, "GET", f"/static/{name}")
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
    assert status == 404 and "nope" in data["error"] and data["fix"]
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
    ({"quote_id": "q1", "reviewer": " ", "action": "reject", "text": "x"}, "reviewer"),
    ({"quote_id": "q1", "action": "reject", "text": "x"}, "reviewer"),
    ({"reviewer": "alice", "action": "reject", "text": "x"}, "quote_id"),
    ({"quote_id": "q1", "reviewer": "alice", "action": 3, "text": "x"}, "action"),
])
def test_incomplete_decisions_are_refused(app, body, field):
    status, error, _ = call(app, "POST", "/api/decide", body)
    assert status == 400 and field in error["error"]
    assert call(app, "GET", "/api/quotes/q1")[1]["history"] == []


def test_unknown_action_is_refused_by_the_library(app):
    status, error, _ = decide(app, "q1", "alice", "publish", DISGUISED_1)
    assert status == 400 and "publish" in error["error"] and "approve" in error["fix"]


# --------------------------------------------------------------------------- coding


def test_code_decisions_are_recorded_and_each_coder_sees_only_their_own(own_app, study_dir):
    app = own_app
    body = {"unit_id": "p36", "code_id": "SE-C5", "coder": "alice", "action": "accept", "memo": "peers helped"}
    assert call(app, "POST", "/api/code", body)[0] == 200
    excerpts = {e["unit_id"]: e for e in call(app, "GET", "/api/excerpts?coder=alice")[1]["excerpts"]}
    assert [s["code_id"] for s in excerpts["p36"]["suggestions"]] == ["SE-C5", "SE-C7"]  # best first
    assert excerpts["p36"]["suggestions"][0]["evidence"][0]["text"]
    mine = excerpts["p36"]["decisions"]
    assert list(mine) == ["SE-C5"] and mine["SE-C5"]["action"] == "accept" and mine["SE-C5"]["memo"] == "peers helped"
    for query in ("?coder=bob", ""):  # blind: nobody else's decisions are shown
        assert all(e["decisions"] == {} for e in call(app, "GET", f"/api/excerpts{query}")[1]["excerpts"])
    with CodingStore(study_dir / "coding.sqlite") as store:
        codings = store.codings()
    assert codings[["unit_id", "coder", "code_id", "action"]].values.tolist() == [
        ["p36", "alice", "SE-C5", "accept"]]

    status, error, _ = call(app, "POST", "/api/code", {**body, "unit_id": "nope"})
    assert status == 400 and "nope" in error["error"]


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
    raw = b'{"quote_id": "q2", "reviewer": "mallory", "action": "reject", "text": "x"}'
    status, error, _ = call(app, "POST", "/api/decide", headers=headers, raw=raw)
    assert status == 415 and error["fix"]
    assert call(app, "GET", "/api/quotes/q2")[1]["history"] == []


def test_cross_site_origins_and_bad_json_are_refused(app):
    body = {"quote_id": "q2", "reviewer": "mallory", "action": "reject", "text": "x"}
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
            if call(server, "POST", "/api/code", code)[0] != 200:
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


def test_cli_serves_until_interrupted(study_dir):
    process = subprocess.Popen(
        [sys.executable, "-m", "postkit.cli", "review", "serve", str(study_dir), "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = [process.stdout.readline()]
        if lines[0].startswith("Loading"):  # the models load before the URL is announced
            lines.append(process.stdout.readline())
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", lines[-1])
        if not match:
            process.kill()
            raise AssertionError("".join(lines) + process.stderr.read())
        assert process.stdout.readline().strip() == "Ctrl+C to stop"
        port = int(match.group(1))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/api/quotes")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Stopped." in out and "Traceback" not in err


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
