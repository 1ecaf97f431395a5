"""A language model on this machine as a paraphraser: an OpenAI-compatible chat endpoint.

Ollama (``ollama serve``: ``http://127.0.0.1:11434/v1``), llama.cpp's ``llama-server``
(``http://127.0.0.1:8080/v1``) and vLLM (``http://127.0.0.1:8000/v1``) all answer
``POST …/v1/chat/completions``. postkit sends each quote with the prompt kept in
``rules/disguise/paraphraser_prompt.yaml`` (researchers edit it) and reads one rewrite
per line of the answer; :mod:`postkit.disguise.suggest` then checks and ranks those
candidates like its own.

The quotes are sensitive (mental-health posts), so only a server on this machine is used
unless the caller explicitly allows another: the host must be ``localhost`` or a
loopback address (127.0.0.0/8, ::1), written as such — names are not resolved, since a
name that resolves to loopback today may not tomorrow. Requests to a loopback server
bypass any HTTP proxy set in the environment, redirects are never followed (a local
server could otherwise forward the quotes elsewhere), and credentials never go in the
URL (an API key for a remote server is read from :data:`API_KEY_ENV`).

Only the standard library is used (``urllib``), with a timeout on every request.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import PostkitError

DEFAULT_TIMEOUT_S = 120.0  # a small model on two CPU cores can take a minute for three rewrites
MAX_RESPONSE_BYTES = 1 << 20
PROMPT_FILE = "paraphraser_prompt.yaml"
API_KEY_ENV = "POSTKIT_PARAPHRASER_API_KEY"
_PROMPT_KEYS = {"system", "user", "candidates", "temperature", "max_tokens", "seed"}


# --------------------------------------------------------------------------- the prompt


@dataclass(frozen=True)
class Prompt:
    """The researcher-edited prompt (see ``rules/disguise/paraphraser_prompt.yaml``)."""

    system: str
    user: str
    candidates: int = 3
    temperature: float = 0.7
    max_tokens: int = 800
    seed: int | None = 2024
    sha256: str = ""

    def messages(self, quote: str) -> list[dict[str, str]]:
        user = self.user.replace("{candidates}", str(self.candidates)).replace("{quote}", quote)
        return ([{"role": "system", "content": self.system}] if self.system.strip() else []) + \
            [{"role": "user", "content": user}]


def default_prompt_path() -> Path:
    from ..deid.rules import rules_root

    return rules_root() / "disguise" / PROMPT_FILE


def load_prompt(path: str | Path | None = None) -> Prompt:
    """Read and validate a prompt file (default ``rules/disguise/paraphraser_prompt.yaml``)."""
    path = Path(path) if path is not None else default_prompt_path()
    try:
        raw = path.read_bytes()
    except OSError:
        raise PostkitError("paraphraser prompt file not found", path=path, fix="check the path") from None
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PostkitError(f"not valid UTF-8 YAML ({str(exc).splitlines()[0]})", path=path) from None
    if not isinstance(data, dict):
        raise PostkitError("expected a mapping with system, user, candidates…", path=path)
    unknown = sorted(set(data) - _PROMPT_KEYS)
    if unknown:
        raise PostkitError(f"unknown key {unknown[0]!r}", path=path, fix=f"known: {', '.join(sorted(_PROMPT_KEYS))}")
    user, system = data.get("user"), data.get("system", "")
    if not isinstance(user, str) or "{quote}" not in user:
        raise PostkitError("'user' must be text containing {quote}", path=path,
                           fix="{quote} marks where the quote goes")
    if not isinstance(system, str):
        raise PostkitError("'system' must be text", path=path)
    checks = {"candidates": (int, 1, 20), "max_tokens": (int, 16, 32_768), "temperature": ((int, float), 0, 2)}
    values: dict[str, Any] = {}
    for key, (kind, low, high) in checks.items():
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
                raise PostkitError(f"'{key}' must be a number from {low} to {high}", path=path)
            values[key] = value
    seed = data.get("seed", Prompt.seed)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise PostkitError("'seed' must be a whole number or null", path=path)
    return Prompt(system=system, user=user, seed=seed, sha256=hashlib.sha256(raw).hexdigest(), **values)


# --------------------------------------------------------------------------- the endpoint


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP literal (127.0.0.0/8, ::1, ::ffff:127.x); names are not resolved."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@dataclass(frozen=True)
class Endpoint:
    """Where the chat completions go. ``where`` (scheme, host, port) is what messages show:
    never the whole URL, which could carry a token in its query."""

    chat_url: str
    models_url: str
    where: str
    loopback: bool


def parse_endpoint(url: str, *, allow_remote: bool = False) -> Endpoint:
    """Validate ``url`` and derive the chat completions and model list URLs.

    ``http://127.0.0.1:11434``, ``…/v1`` and ``…/v1/chat/completions`` all mean the same
    endpoint. A host that is not loopback is refused unless ``allow_remote``.
    """
    if not isinstance(url, str) or not url.strip():
        raise PostkitError("the paraphraser URL is empty", fix="e.g. --paraphraser-url http://127.0.0.1:11434/v1")
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PostkitError("the paraphraser URL must start with http:// or https:// and name a host",
                           fix="e.g. --paraphraser-url http://127.0.0.1:11434/v1 (Ollama)")
    if parts.username is not None or parts.password is not None:
        raise PostkitError("the paraphraser URL may not carry a user name or password",
                           fix=f"put an API key in the {API_KEY_ENV} environment variable instead")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise PostkitError("the paraphraser URL has an invalid port", fix="e.g. http://127.0.0.1:8080/v1") from None
    host = parts.hostname
    where = f"{parts.scheme}://{'[' + host + ']' if ':' in host else host}:{port}"
    loopback = is_loopback_host(host)
    if not loopback and not allow_remote:
        raise PostkitError(
            f"the paraphraser at {where} is not on this machine: the quotes are sensitive forum posts, so postkit "
            "only sends them to a server on this machine (localhost, 127.0.0.0/8 or ::1)",
            fix="run the model locally (e.g. `ollama serve`, then --paraphraser-url http://127.0.0.1:11434/v1), "
                "or add --allow-remote if your ethics approval covers sending the quotes to that server",
        )
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        base = path[: -len("/chat/completions")]
    elif path == "":
        base = "/v1"
    else:
        base = path
    netloc = parts.netloc
    chat = urllib.parse.urlunsplit((parts.scheme, netloc, base + "/chat/completions", parts.query, ""))
    models = urllib.parse.urlunsplit((parts.scheme, netloc, base + "/models", parts.query, ""))
    return Endpoint(chat, models, where, loopback)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


# --------------------------------------------------------------------------- the client


_THINKING = re.compile(r"<think>.*?(?:</think>|\Z)", re.S | re.I)
_LABEL = re.compile(r"^\s*(?:[-*•]\s+|\(?\d{1,2}[.):]\s*|(?:rewrite|paraphrase|version|option)\s*\d*\s*[:.)-]\s*)",
                    re.I)
_QUOTES = "\"'“”‘’«»"


def parse_candidates(content: str, quote: str, limit: int) -> list[str]:
    """The rewrites in a model's answer: one per line, numbering, bullets, wrapping quotes and
    any ``<think>`` section removed; intros ("Here are three rewrites:"), the quote itself and
    repeats skipped; at most ``limit``."""
    found: list[str] = []
    for line in _THINKING.sub("", content).splitlines():
        line = line.strip().strip("*").strip()
        line = _LABEL.sub("", line, count=1).strip().strip("*").strip()
        if len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
            line = line[1:-1].strip()
        if not line or line.endswith(":") or line == quote.strip() or line in found:
            continue
        found.append(line)
    return found[:limit]


class ChatParaphraser:
    """Asks a chat model for rewrites of a quote; call it with the quote's text.

    :meth:`connect` (run by :func:`postkit.disguise.suggest.chat_paraphraser` before any
    indexing) checks the server answers and picks the model when the server serves one.
    """

    def __init__(self, url: str, *, model: str | None = None, prompt: Prompt | None = None,
                 allow_remote: bool = False, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise PostkitError("the paraphraser timeout must be a positive number of seconds")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise PostkitError("the paraphraser model name is empty", fix="e.g. --paraphraser-model llama3.2")
        self.endpoint = parse_endpoint(url, allow_remote=allow_remote)
        self.prompt = prompt or load_prompt()
        self.model = model.strip() if model else None
        self.timeout = float(timeout)
        handlers: list[Any] = [_NoRedirect()]
        if self.endpoint.loopback:
            handlers.append(urllib.request.ProxyHandler({}))  # never via a proxy: the quotes stay here
        self._opener = urllib.request.build_opener(*handlers)

    @property
    def label(self) -> str:
        return f"language model: {self.model or '?'} at {self.endpoint.where}"

    def describe(self) -> dict[str, Any]:
        """What a run records: where, which model, which prompt (by hash)."""
        return {"where": self.endpoint.where, "model": self.model, "prompt_sha256": self.prompt.sha256,
                "on_this_machine": self.endpoint.loopback}

    # -- HTTP

    def _request(self, url: str, body: dict[str, Any] | None, what: str) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        key = os.environ.get(API_KEY_ENV)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=data, headers=headers, method="POST" if body else "GET")
        where = self.endpoint.where
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if 300 <= exc.code < 400:
                raise PostkitError(f"the paraphraser at {where} answered {what} with a redirect (HTTP {exc.code}), "
                                   "which postkit does not follow", fix="give the endpoint's own URL") from None
            raise _HTTPStatus(exc.code, f"the paraphraser at {where} refused {what}: HTTP {exc.code}{detail}") \
                from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ConnectionRefusedError):
                raise PostkitError(f"no paraphraser is answering at {where} (connection refused)",
                                   fix="start the model server (e.g. `ollama serve` or `llama-server -m MODEL`) "
                                       "or check --paraphraser-url") from None
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise self._timed_out(what) from None
            raise PostkitError(f"cannot reach the paraphraser at {where} ({reason})",
                               fix="check --paraphraser-url and that the server is running") from None
        except (TimeoutError, socket.timeout):
            raise self._timed_out(what) from None
        except (http.client.HTTPException, ConnectionError) as exc:
            raise PostkitError(f"the paraphraser at {where} broke off or did not answer in HTTP "
                               f"({type(exc).__name__})", fix="check that the URL is an OpenAI-compatible "
                                                                  "server (Ollama, llama.cpp, vLLM)") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise PostkitError(f"the paraphraser at {where} answered {what} with over {MAX_RESPONSE_BYTES:,} bytes",
                               fix="lower max_tokens in the prompt file")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise PostkitError(f"the paraphraser at {where} answered {what} with something that is not JSON",
                               fix="check that the URL is an OpenAI-compatible chat endpoint (…/v1)") from None

    def _timed_out(self, what: str) -> PostkitError:
        return PostkitError(f"the paraphraser at {self.endpoint.where} did not answer {what} within "
                            f"{self.timeout:g} s", fix="use a smaller model or raise --paraphraser-timeout")

    # -- use

    def connect(self) -> ChatParaphraser:
        """Check the server answers; pick its model when none was named and it serves exactly one."""
        try:
            listing = self._request(self.endpoint.models_url, None, "the model list")
        except _HTTPStatus as exc:
            if self.model is not None and exc.status in (404, 405, 501):
                return self  # no model list on this server; the chat request will tell
            raise PostkitError(exc.message, fix="name the model with --paraphraser-model") from None
        names = [item.get("id") for item in listing.get("data", []) if isinstance(item, dict)] \
            if isinstance(listing, dict) and isinstance(listing.get("data"), list) else None
        if names is None or not all(isinstance(n, str) for n in names):
            raise PostkitError(f"the paraphraser at {self.endpoint.where} answered the model list with something "
                               "that is not an OpenAI-style list", fix="check --paraphraser-url")
        if self.model is None:
            if len(names) != 1:
                shown = ", ".join(names[:8]) + (" …" if len(names) > 8 else "")
                raise PostkitError(f"the paraphraser at {self.endpoint.where} serves {len(names)} models"
                                   + (f" ({shown})" if names else ""),
                                   fix="choose one with --paraphraser-model NAME")
            self.model = names[0]
        return self

    def __call__(self, text: str) -> list[str]:
        body: dict[str, Any] = {
            "model": self.model or "default", "messages": self.prompt.messages(text),
            "temperature": self.prompt.temperature, "max_tokens": self.prompt.max_tokens, "stream": False,
        }
        if self.prompt.seed is not None:
            body["seed"] = self.prompt.seed
        try:
            answer = self._request(self.endpoint.chat_url, body, "a paraphrase request")
        except _HTTPStatus as exc:
            raise PostkitError(exc.message, fix="check the model name (--paraphraser-model) and the server's log") \
                from None
        choices = answer.get("choices") if isinstance(answer, dict) else None
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        message = first.get("message")
        content = message.get("content", False) if isinstance(message, dict) else False
        if content is None:
            content = ""  # some servers send null content when the model wrote nothing
        if not isinstance(content, str):
            raise PostkitError(f"the paraphraser at {self.endpoint.where} answered with JSON that is not a chat "
                               "completion (no choices[0].message.content)",
                               fix="check that the URL is an OpenAI-compatible chat endpoint (…/v1)")
        return parse_candidates(content, text, self.prompt.candidates)


class _HTTPStatus(PostkitError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The server's own short error message (e.g. Ollama's "model not found"), if it gave one."""
    try:
        body = json.loads(exc.read(4096).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str) or not message.strip():
        return ""
    message = " ".join(message.split())
    return f" ({message[:160]}{'…' if len(message) > 160 else ''})"
