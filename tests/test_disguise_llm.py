"""A local language model as paraphraser: an OpenAI-compatible chat endpoint, loopback only.

The "model" is a small standard-library HTTP server on 127.0.0.1 answering with canned
completions, so these tests need no model and no network.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from click.testing import CliRunner

from postkit.cli import main
from postkit.disguise.llm import is_loopback_host, load_prompt, parse_candidates, parse_endpoint
from postkit.disguise.suggest import Suggester, chat_paraphraser
from postkit.disguise.trace import Thresholds, TraceIndex
from postkit.errors import PostkitError
from postkit.io import write_table

QUOTE = ("I missed my appointment at the surgery because I couldn't face leaving the house, "
         "and the receptionist rang twice about the prescription for sertraline.")
REWRITES = [
    "Going out felt impossible, so my slot at the practice went by while reception kept phoning about my tablets.",
    "Staying indoors won out over seeing the doctor; the front desk called two times about my medication.",
]
CANNED = ("<think>They want three rewrites, keep meaning.</think>\nHere are three rewrites:\n"
          f"1. {REWRITES[0]}\n2) \"{REWRITES[1]}\"\n3. {QUOTE}\n")
FILLER = [
    "Our dog chewed the sofa cushions again while we were at the allotment.",
    "Does anyone know a good recipe for lentil soup that freezes well?",
    "The bus timetable changed and now I wait forty minutes every morning.",
    "My daughter started secondary school and the uniform cost a fortune.",
    "We painted the kitchen yellow and it looks brighter already.",
    "Football practice got rained off so the kids played board games instead.",
    "I finally fixed the leaking tap with a new washer from the hardware shop.",
    "The library has a knitting circle on Thursdays which is lovely.",
]


class FakeModel(BaseHTTPRequestHandler):
    """OpenAI-style endpoints; ``server.mode`` picks the answer, ``server.requests`` records bodies."""

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        mode = self.server.mode
        if self.path == "/v1/models" and mode != "no model list":
            models = [{"id": "tiny"}] if mode != "two models" else [{"id": "tiny"}, {"id": "small"}]
            self._send(200, {"object": "list", "data": models})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length))
        self.server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        mode = self.server.mode
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": "not found"}})
        elif mode == "not json":
            self._send(200, b"<html>hello</html>", "text/html")
        elif mode == "wrong json":
            self._send(200, {"result": "ok"})
        elif mode == "error":
            self._send(404, {"error": {"message": 'model "tiny" not found, try pulling it first'}})
        elif mode == "redirect":
            self.send_response(307)
            self.send_header("Location", "http://192.0.2.1/v1/chat/completions")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif mode == "slow":
            time.sleep(2)
            self._send(200, _completion(CANNED))
        else:
            self._send(200, _completion(CANNED))


def _completion(content):
    return {"id": "x", "object": "chat.completion", "model": "tiny",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


@contextmanager
def fake_model(mode="ok"):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeModel)
    server.mode, server.requests = mode, []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- where the quotes may go


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "[::1]", "[::ffff:127.0.0.1]",
                                  "LOCALHOST"])
def test_loopback_hosts_are_accepted(host):
    endpoint = parse_endpoint(f"http://{host}:11434/v1")
    assert endpoint.loopback and endpoint.chat_url.endswith(":11434/v1/chat/completions")


@pytest.mark.parametrize("url", ["http://10.0.0.5:11434/v1", "https://api.example.org/v1", "http://192.168.1.2:8080",
                                 "http://127.0.0.1.nip.io:8080/v1", "http://[2001:db8::1]:8000/v1",
                                 "http://0.0.0.0:11434/v1", "http://127.1:8080/v1"])
def test_a_host_that_is_not_this_machine_is_refused_unless_allowed(url):
    with pytest.raises(PostkitError, match="not on this machine.*sensitive") as info:
        parse_endpoint(url)
    assert "--allow-remote" in info.value.fix
    assert not parse_endpoint(url, allow_remote=True).loopback


def test_endpoint_forms_and_bad_urls():
    for url in ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1/chat/completions"):
        endpoint = parse_endpoint(url)
        assert endpoint.chat_url == "http://127.0.0.1:8080/v1/chat/completions"
        assert endpoint.models_url == "http://127.0.0.1:8080/v1/models"
    for url, message in [("ftp://127.0.0.1/v1", "http"), ("", "empty"), ("http://u:secret@127.0.0.1/v1", "password")]:
        with pytest.raises(PostkitError, match=message) as info:
            parse_endpoint(url)
        assert "secret" not in str(info.value)
    assert not is_loopback_host("localhost.example.org")


def test_the_cli_refuses_a_remote_paraphraser_before_any_work(tmp_path):
    result = CliRunner().invoke(main, ["disguise", "suggest", str(tmp_path / "missing.csv"), "--corpus",
                                       str(tmp_path / "missing.csv"), "--output", str(tmp_path / "o.jsonl"),
                                       "--paraphraser-url", "http://10.1.2.3:11434/v1"])
    assert result.exit_code == 1
    assert "not on this machine" in result.stderr and "--allow-remote" in result.stderr
    result = CliRunner().invoke(main, ["disguise", "suggest", str(tmp_path / "q.csv"), "--corpus",
                                       str(tmp_path / "c.csv"), "--output", str(tmp_path / "o.jsonl"),
                                       "--allow-remote"])
    assert result.exit_code == 1 and "go with --paraphraser-url" in result.stderr


# --------------------------------------------------------------------------- talking to the server


def test_rewrites_come_back_as_candidates():
    with fake_model() as (server, url):
        external = chat_paraphraser(url)
        assert external.run.model == "tiny" and "language model: tiny at http://127.0.0.1:" in external.label
        assert external.run(QUOTE) == REWRITES  # think section, intro, numbering, quotes and the quote dropped
    [request] = server.requests
    body = request["body"]
    prompt = load_prompt()
    assert body["model"] == "tiny" and body["stream"] is False
    assert body["temperature"] == prompt.temperature and body["seed"] == prompt.seed
    assert body["messages"][0] == {"role": "system", "content": prompt.system}
    assert QUOTE in body["messages"][-1]["content"] and "{quote}" not in body["messages"][-1]["content"]


def test_a_named_model_and_a_prompt_of_ones_own(tmp_path):
    prompt = tmp_path / "prompt.yaml"
    prompt.write_text("user: 'Reword {candidates} times: {quote}'\ncandidates: 2\nseed: null\n")
    with fake_model("no model list") as (server, url):
        external = chat_paraphraser(url, model="llama3.2", prompt_path=prompt)
        assert external.run(QUOTE) == REWRITES
    body = server.requests[0]["body"]
    assert body["model"] == "llama3.2" and "seed" not in body
    assert body["messages"] == [{"role": "user", "content": f"Reword 2 times: {QUOTE}"}]


def test_a_server_with_several_models_needs_a_name():
    with fake_model("two models") as (_, url):
        with pytest.raises(PostkitError, match="serves 2 models.*tiny, small") as info:
            chat_paraphraser(url)
        assert "--paraphraser-model" in info.value.fix
        assert chat_paraphraser(url, model="small").run.model == "small"


def test_a_server_that_is_down_is_a_clear_error():
    with pytest.raises(PostkitError, match="no paraphraser is answering at http://127.0.0.1:[0-9]+ "
                                           r"\(connection refused\)") as info:
        chat_paraphraser(f"http://127.0.0.1:{_closed_port()}/v1", model="tiny")
    assert "ollama serve" in info.value.fix


@pytest.mark.parametrize("mode, message", [
    ("not json", "not JSON"),
    ("wrong json", "not a chat completion"),
    ("error", 'HTTP 404 \\(model "tiny" not found'),
    ("redirect", "redirect \\(HTTP 307\\), which postkit does not follow"),
])
def test_garbage_answers_are_clear_errors(mode, message):
    with fake_model(mode) as (server, url):
        external = chat_paraphraser(url)
        with pytest.raises(PostkitError, match=message) as info:
            external.run(QUOTE)
    assert QUOTE not in str(info.value)


def test_a_slow_server_times_out():
    with fake_model("slow") as (_, url):
        external = chat_paraphraser(url, timeout=0.5)
        with pytest.raises(PostkitError, match="did not answer a paraphrase request within 0.5 s"):
            external.run(QUOTE)


def test_a_proxy_in_the_environment_is_not_used_for_this_machine(monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with fake_model() as (server, url):
        assert chat_paraphraser(url).run(QUOTE) == REWRITES
    assert len(server.requests) == 1


def test_an_api_key_comes_from_the_environment_never_the_url(monkeypatch):
    monkeypatch.setenv("POSTKIT_PARAPHRASER_API_KEY", "sk-test")
    with fake_model() as (server, url):
        chat_paraphraser(url).run(QUOTE)
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("text, message", [
    ("user: no placeholder\n", "\\{quote\\}"),
    ("user: '{quote}'\ncandidates: 0\n", "candidates"),
    ("user: '{quote}'\ntemprature: 1\n", "unknown key"),
    ("- a list\n", "mapping"),
])
def test_prompt_file_errors(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PostkitError, match=message):
        load_prompt(path)


def test_the_shipped_prompt_is_valid():
    prompt = load_prompt()
    assert prompt.candidates >= 1 and len(prompt.sha256) == 64
    assert "suicide" in prompt.user and "{quote}" in prompt.user


def test_parse_candidates_limits_and_skips():
    content = "- one rewrite here\n* two rewrite here\nRewrite 3: three rewrite here\n\n**4.** four\n"
    assert parse_candidates(content, "q", 3) == ["one rewrite here", "two rewrite here", "three rewrite here"]
    assert parse_candidates("", "q", 3) == []


# --------------------------------------------------------------------------- scored like any other


@pytest.fixture(scope="module")
def nlp():
    from postkit.disguise.meaning import load_nlp

    return load_nlp()


def test_model_candidates_are_checked_and_ranked_with_the_others(nlp):
    from postkit.disguise.meaning import MeaningScorer

    index = TraceIndex.build(["src"] + [f"f{i}" for i in range(len(FILLER))], [QUOTE] + FILLER)
    with fake_model() as (_, url):
        external = chat_paraphraser(url)
        suggester = Suggester(index, Thresholds(top_k=2, search_depth=5), nlp=nlp, scorer=MeaningScorer(nlp),
                              externals=[external], n_candidates=50)
        [row] = suggester.suggest([{"quote_id": "q1", "source_post_id": "src", "text": QUOTE}])
    from_model = [c for c in row["candidates"] if c["edits"] == [external.label]]
    assert sorted(c["text"] for c in from_model) == sorted(REWRITES)
    again = index.check([{"quote_id": "q", "source_post_id": "src", "text": c["text"]} for c in from_model],
                        Thresholds(top_k=2, search_depth=5))
    assert [c["verdict"] for c in from_model] == [r["verdict"] for r in again]
    assert all(0 <= c["meaning_score"] <= 1 for c in from_model)


def test_the_suggest_command_uses_the_model(tmp_path):
    write_table(pd.DataFrame({"post_id": ["src"] + [f"f{i}" for i in range(len(FILLER))], "text": [QUOTE] + FILLER}),
                tmp_path / "forum.csv")
    write_table(pd.DataFrame({"quote_id": ["q1"], "source_post_id": ["src"], "text": [QUOTE]}), tmp_path / "q.csv")
    with fake_model() as (server, url):
        result = CliRunner().invoke(main, ["disguise", "suggest", str(tmp_path / "q.csv"), "--corpus",
                                           str(tmp_path / "forum.csv"), "--output", str(tmp_path / "out.jsonl"),
                                           "--candidates", "50", "--paraphraser-url", url, "-q"])
    assert result.exit_code == 0, result.output + result.stderr
    [row] = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {c["text"] for c in row["candidates"] if c["edits"][0].startswith("language model: tiny")} == set(REWRITES)
    assert len(server.requests) == 1


def test_the_disguise_stage_takes_a_paraphraser_url(corpus, tmp_path):
    posts = pd.read_csv(corpus["posts"], dtype=str, keep_default_na=False)
    study = corpus["folder"] / "study.toml"
    base = ('[study]\nname = "llm"\noutput = "run"\nformat = "csv"\n[inputs]\nposts = "posts.csv"\n'
            'consent = "consent.csv"\n[pipeline]\nstages = ["consent", "disguise"]\n'
            '[consent]\nas_of = "2025-01-01T00:00:00Z"\n[disguise]\nquotes_from_sample = 1\n')
    study.write_text(base + 'paraphraser_url = "http://203.0.113.9:11434/v1"\n')
    result = CliRunner().invoke(main, ["run", str(study), "--output", str(tmp_path / "run")])
    assert result.exit_code == 1 and "[disguise] the paraphraser at http://203.0.113.9:11434" in result.stderr
    with fake_model() as (server, url):
        study.write_text(base + f'paraphraser_url = "{url}"\ncandidates = 20\n')
        result = CliRunner().invoke(main, ["run", str(study), "--output", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output + result.stderr
    assert len(server.requests) == 1 and len(posts) > 1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    [paraphraser] = manifest["stages"][-1]["paraphrasers"]
    assert paraphraser["model"] == "tiny" and paraphraser["on_this_machine"] is True
    assert paraphraser["prompt_sha256"] == load_prompt().sha256
    assert paraphraser["where"].startswith("http://127.0.0.1:")
    assert manifest["stages"][-1]["index_key"] == json.loads((tmp_path / "run" / "disguise" / "index.json")
                                                             .read_text())["key"]
