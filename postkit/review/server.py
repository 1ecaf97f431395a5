"""The review app's HTTP server: a few JSON endpoints and three static files, on 127.0.0.1.

Why the standard library (:class:`http.server.ThreadingHTTPServer`) and not a web
framework: the app has one local user (a reviewer or coder on their own machine), a
handful of JSON endpoints and three static files. A framework would add a dependency
(and its own dependencies) to every postkit install for no feature we need; the few
things that matter here — binding to loopback only, checking ``Host``, refusing
non-JSON POSTs, JSON errors — are a dozen lines each and easier to audit written out.

Security, since the posts are sensitive even after de-identification:

* the server binds to ``127.0.0.1`` only (there is no option to change it);
* requests whose ``Host`` header is not ``127.0.0.1:PORT`` or ``localhost:PORT`` are
  refused, so a web page using DNS rebinding cannot read the API;
* POSTs must be ``Content-Type: application/json`` (a cross-site HTML form cannot send
  that without a CORS preflight, which is never granted) and a foreign ``Origin`` is
  refused;
* every response forbids caching, framing and external resources (Content-Security-
  Policy ``default-src 'none'``, scripts and styles from this server only), and the
  page itself puts post text into the DOM only as text, never as HTML.

API (all JSON; errors are ``{"error": ..., "fix": ...}`` with a 4xx status):

==========================  ======================================================
``GET  /api/quotes``        ``{study, quotes: [...]}`` — every quote with candidates and status
``GET  /api/quotes/<id>``   ``{quote, history}``
``POST /api/check``         ``{quote_id, text}`` → the traceability + meaning check of ``text``
``POST /api/decide``        ``{quote_id, reviewer, action: approve|reject, text, note}`` → the decision
``GET  /api/excerpts``      ``?coder=NAME`` → ``{excerpts}``; each carries only *that* coder's
                            decisions (coders judge independently, as agreement needs)
``POST /api/code``          ``{unit_id, code_id, coder, action: accept|reject, memo}``
==========================  ======================================================

Requests are handled on their own threads (a browser keeps idle connections open), but
every call into the study runs on one dedicated thread, in arrival order: the study
need not be thread-safe (its SQLite connection belongs to the thread that opened it) and
a reviewer's decisions are applied one at a time. Pass ``make_server`` a callable that
opens the study so it is opened on that thread.
"""

from __future__ import annotations

import errno
import json
import sys
import traceback
import webbrowser
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import PostkitError
from ..io import jsonable

__all__ = ["DEFAULT_PORT", "HOST", "ReviewServer", "make_server", "serve"]

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_BODY_BYTES = 1_000_000  # a quote plus a note is a few kB; anything bigger is a mistake

# URL path -> file in postkit/review/static. The page routes itself with the URL hash.
_STATIC = {"/": "index.html", "/index.html": "index.html", "/static/app.js": "app.js",
           "/static/app.css": "app.css"}
_CONTENT_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
                  "css": "text/css; charset=utf-8"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _ApiError(Exception):
    def __init__(self, status: HTTPStatus, error: str, fix: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.fix = status, error, fix


def _static_file(name: str) -> bytes:
    return resources.files("postkit.review.static").joinpath(name).read_bytes()


_MISSING_FIX = {"reviewer": "enter your name at the top of the page",
                "coder": "enter your name at the top of the page"}


def _text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string field of a JSON body; a required one must not be blank."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"'{name}' must be a string")
    if required and (value is None or not value.strip()):
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"'{name}' is missing",
                        _MISSING_FIX.get(name, f"send '{name}' in the JSON body"))
    return value


class ReviewServer(ThreadingHTTPServer):
    """A :class:`ThreadingHTTPServer` on 127.0.0.1 serving one study.

    ``study`` is an open study or a zero-argument callable that opens one (e.g.
    ``lambda: QuoteStudy.open(folder)``); a study the server opened it also closes.
    """

    daemon_threads = True  # Ctrl+C never waits for a browser's keep-alive connection

    def __init__(self, study: Any, port: int = DEFAULT_PORT) -> None:
        self.study, self._owns_study, self._worker = None, False, None  # server_close() may run early
        super().__init__((HOST, port), _Handler)  # bind first: a taken port fails before a slow open
        self.port = int(self.server_address[1])
        self.allowed_hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self.allowed_origins = {f"http://{host}" for host in self.allowed_hosts}
        # Every study call runs on this one thread: the study (its SQLite connection, the
        # spaCy pipeline) is never used concurrently nor from a thread that did not open it.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postkit-review-study")
        self._owns_study = callable(study) and not hasattr(study, "quotes")
        try:
            self.study = self._worker.submit(study).result() if self._owns_study else study
        except BaseException:
            self._worker.shutdown()
            self.socket.close()
            raise

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def call(self, method: str, *args: Any) -> Any:
        """``study.method(*args)`` on the study thread."""
        return self._worker.submit(getattr(self.study, method), *args).result()

    def server_close(self) -> None:
        super().server_close()
        if self._owns_study and self.study is not None:
            self._worker.submit(self.study.close).result()
            self.study = None
        if self._worker is not None:
            self._worker.shutdown()


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "postkit-review"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # -- plumbing -------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        pass  # URLs carry quote ids only, but a quiet terminal is what a reviewer wants

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in _SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, payload: Any) -> None:
        body = json.dumps(jsonable(payload), ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8")

    def _error(self, status: HTTPStatus, error: str, fix: str | None = None) -> None:
        self._json(status, {"error": error, "fix": fix})

    def _check_host(self) -> None:
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.server.allowed_hosts:
            raise _ApiError(HTTPStatus.FORBIDDEN, f"unexpected Host header {host!r}",
                            f"open the app at {self.server.url}")

    def _body(self) -> dict[str, Any]:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "POST bodies must be application/json",
                            "send JSON with Content-Type: application/json")
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in self.server.allowed_origins:
            raise _ApiError(HTTPStatus.FORBIDDEN, f"requests from {origin!r} are not allowed",
                            f"use the app at {self.server.url}")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if length > MAX_BODY_BYTES:
            raise _ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"request body over {MAX_BODY_BYTES:,} bytes")
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _ApiError(HTTPStatus.BAD_REQUEST, f"the request body is not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
        return body

    def _handle(self, route: Callable[[], None]) -> None:
        try:
            self._check_host()
            route()
        except _ApiError as exc:
            self._error(exc.status, exc.error, exc.fix)
        except PostkitError as exc:
            self._error(HTTPStatus.BAD_REQUEST, exc.message, exc.fix)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (e.g. a superseded check); nothing to answer
        except Exception as exc:  # noqa: BLE001 - a bug: say so in the page, keep serving, log it
            traceback.print_exc(file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}: {exc}",
                        "this is a bug in postkit; the terminal shows the details")

    # -- routes ---------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self._handle(self._get)

    def do_POST(self) -> None:
        self._handle(self._post)

    def _get(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path in _STATIC:
            name = _STATIC[path]
            self._send(HTTPStatus.OK, _static_file(name), _CONTENT_TYPES[name.rsplit(".", 1)[1]])
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
        elif path == "/api/quotes":
            quotes = self.server.call("quotes")
            self._json(HTTPStatus.OK, {"study": self.server.study.folder.name, "quotes": quotes})
        elif path.startswith("/api/quotes/"):
            quote_id = unquote(path[len("/api/quotes/"):])
            try:
                quote = self.server.call("quote", quote_id)
            except PostkitError as exc:
                raise _ApiError(HTTPStatus.NOT_FOUND, exc.message, exc.fix) from None
            self._json(HTTPStatus.OK, {"quote": quote, "history": self.server.call("history", quote_id)})
        elif path == "/api/excerpts":
            coder = (parse_qs(url.query).get("coder") or [""])[0].strip()
            excerpts = self.server.call("excerpts")
            for excerpt in excerpts:  # blind coding: nobody sees another coder's decisions
                excerpt["decisions"] = (excerpt.get("decisions") or {}).get(coder, {}) if coder else {}
            self._json(HTTPStatus.OK, {"coder": coder or None, "excerpts": excerpts})
        else:
            raise _ApiError(HTTPStatus.NOT_FOUND, f"no such page: {path}", f"open {self.server.url}")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        if path not in ("/api/check", "/api/decide", "/api/code"):
            raise _ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
        body = self._body()
        if path == "/api/check":
            result = self.server.call("check", _text_field(body, "quote_id"),
                                      _text_field(body, "text", required=False) or "")
            self._json(HTTPStatus.OK, result)
        elif path == "/api/decide":
            reviewer = _text_field(body, "reviewer")
            decision = self.server.call(
                "decide", _text_field(body, "quote_id"), reviewer.strip(), _text_field(body, "action"),
                _text_field(body, "text", required=False) or "",
                _text_field(body, "note", required=False) or None)
            self._json(HTTPStatus.OK, decision)
        else:
            coder = _text_field(body, "coder")
            self.server.call("decide_code", _text_field(body, "unit_id"), _text_field(body, "code_id"),
                             coder.strip(), _text_field(body, "action"),
                             _text_field(body, "memo", required=False) or None)
            self._json(HTTPStatus.OK, {"ok": True})


# --------------------------------------------------------------------------- entry points


def make_server(study: Any, port: int = DEFAULT_PORT) -> ReviewServer:
    """A server for ``study`` on 127.0.0.1:``port`` (0 = any free port), not yet serving.

    ``study``: an open study, or a callable opening one on the server's study thread
    (see :class:`ReviewServer`). Raises :class:`PostkitError` when the port is taken.
    """
    try:
        return ReviewServer(study, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PostkitError(
                f"port {port} on 127.0.0.1 is already in use",
                fix=f"stop the other server or pick another port, e.g. --port {port + 1}") from None
        if exc.errno == errno.EACCES:
            raise PostkitError(f"not allowed to listen on port {port}",
                               fix="pick a port above 1024, e.g. --port 8765") from None
        raise


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """Ctrl+C and SIGTERM stop the server cleanly (store closed), even when the process was
    started with SIGINT ignored, as background jobs of a non-interactive shell are."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)


def serve(study: Any, port: int = DEFAULT_PORT, *, open_browser: bool = True,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``study`` until Ctrl+C (or SIGTERM); ``on_ready(url)`` is called once the port is bound."""
    _stop_on_signals()
    server = make_server(study, port)
    try:
        if on_ready is not None:
            on_ready(server.url)
        if open_browser:
            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
