"""The review app's HTTP server: a few JSON endpoints and three static files, on 127.0.0.1.

Why the standard library (:class:`http.server.ThreadingHTTPServer`) and not a web
framework: the app has a few local users (reviewers and coders on one machine), a
handful of JSON endpoints and three static files. A framework would add a dependency
(and its own dependencies) to every postkit install for no feature we need; the few
things that matter here — binding to loopback only, checking ``Host``, tokens, bounds on
requests, JSON errors — are a dozen lines each and easier to audit written out.

Security, since the posts are sensitive even after de-identification:

* the server binds to ``127.0.0.1`` only (there is no option to change it);
* **who**: every API call needs the secret token of one reviewer's link
  (``Authorization: Bearer TOKEN``, see :mod:`postkit.review.identity`), else 401; the
  token decides whose decision it is — a ``reviewer``/``coder`` field in the body is
  optional and must name the same person (403 otherwise), and ``/api/excerpts`` shows
  only the caller's own code decisions (blind coding). The static page loads without a
  token; it reads the token from the link's ``#token=`` fragment, which never reaches a
  server or a ``Referer``. The links are printed once, on the terminal; with a single
  reviewer :func:`serve` opens the browser at the link, which puts it briefly on the
  browser's command line (visible to other users of a shared machine: use
  ``--no-browser`` there);
* requests whose ``Host`` header is not ``127.0.0.1:PORT`` or ``localhost:PORT`` are
  refused, so a web page using DNS rebinding cannot read the API;
* POSTs must be ``Content-Type: application/json`` (a cross-site HTML form cannot send
  that without a CORS preflight, which is never granted) and a foreign ``Origin`` is
  refused;
* **bounds**, so one client cannot stall the others: a POST needs a plain
  ``Content-Length`` (missing, negative, non-numeric, repeated or ``Transfer-Encoding``:
  400) of at most :data:`MAX_BODY_BYTES` (413); texts to check and notes are bounded by the
  study (422, see :mod:`postkit.disguise.study`); a body that is not a JSON object or is
  nested too deeply is a 400; a connection that stalls mid-request is dropped after
  :data:`SOCKET_TIMEOUT_S` (and a body must arrive within :data:`BODY_DEADLINE_S`);
* every response forbids caching, framing and external resources (Content-Security-
  Policy ``default-src 'none'``, scripts and styles from this server only), and the
  page itself puts post text into the DOM only as text, never as HTML.

API (all JSON, all need the token; errors are ``{"error": ..., "fix": ...}`` with a 4xx/5xx status):

==========================  ======================================================
``GET  /api/me``            ``{name, study}`` — whose link this is
``GET  /api/quotes``        ``{study, quotes: [...]}`` — every quote with candidates and status
``GET  /api/quotes/<id>``   ``{quote, history}`` (404 for an unknown id)
``POST /api/check``         ``{quote_id, text}`` → the traceability + meaning check of ``text``
                            (422: unknown quote or text too long; 503: the check took over
                            :data:`CHECK_TIMEOUT_S` or too many checks are waiting)
``POST /api/decide``        ``{quote_id, action: approve|reject, text, note}`` → the decision,
                            recorded under the token's reviewer
``GET  /api/excerpts``      ``{coder, excerpts, order, learning}``; each excerpt carries only
                            the caller's own decisions (coders judge independently, as
                            agreement needs), its suggestions with definitions and merged
                            evidence, and the codes the caller added. ``?order=sampled`` (as
                            stored) or ``?order=uncertainty`` (the caller's decided excerpts
                            first, then the rest most informative first); default: the app's
                            ``--order``. ``learning`` is :attr:`Learner.status`
``GET  /api/learning``      the retraining status alone (the page polls it while a retrain runs)
``GET  /api/codes``         ``{codes}`` — every codebook code with its definition and
                            include/exclude notes (to add a code that was not suggested)
``POST /api/code``          ``{unit_id, code_id, action: accept|reject|add|remove, memo}``; 422
                            for a unit not in the store or a code neither in the codebook nor
                            suggested
==========================  ======================================================

Threads: requests are handled on their own threads (a browser keeps idle connections
open). Every store call runs on one dedicated *study* thread, in arrival order (the
store's SQLite connection belongs to the thread that opened it, and a reviewer's
decisions are applied one at a time). Checks — the only slow call — run on a separate
*check* thread, so a long check never holds up another reviewer's page; a request waits
at most :data:`CHECK_TIMEOUT_S` for its check (then 503, and a check still queued is
dropped), and at most :data:`MAX_PENDING_CHECKS` checks may wait at once. A decision
first runs its check on the check thread (the study keeps the result), then records it
on the study thread. Pass ``make_server`` a callable that opens the study so it is
opened on the study thread. Retraining the ranker from the coders' decisions runs on a
*learning* thread of its own (:mod:`postkit.review.learner`): a coding decision only
tells it that one more decision exists, and the request returns at once.
"""

from __future__ import annotations

import errno
import json
import re
import sys
import threading
import time
import traceback
import webbrowser
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import PostkitError
from ..io import jsonable
from .identity import Reviewer, Reviewers, default_reviewer_name, normalise_name
from .learner import DEFAULT_RETRAIN_EVERY, ORDERS, Learner, study_settings

__all__ = ["DEFAULT_PORT", "HOST", "ReviewServer", "make_server", "serve"]

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# A quote and a note are at most a few thousand characters (escaped as JSON, a few tens of kB).
MAX_BODY_BYTES = 64 * 1024
DRAIN_LIMIT = 1024 * 1024  # a refused body up to this size is read and dropped, so the client sees the answer
SOCKET_TIMEOUT_S = 15.0  # a connection silent this long (mid-request or idle) is closed
BODY_DEADLINE_S = 30.0  # the whole body must arrive within this, however slowly it trickles
CHECK_TIMEOUT_S = 10.0  # a request waits this long for its check, then gets 503
STUDY_TIMEOUT_S = 60.0  # a read from the store waits this long (the store may be busy in another process)
MAX_PENDING_CHECKS = 8
_MAX_ID_IN_PATH = 200
_CONTENT_LENGTH = re.compile(r"[0-9]{1,12}")

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
_NO_TOKEN_FIX = ("open the link `postkit review serve` printed for you "
                 "(links change each time the app starts)")


class _ApiError(Exception):
    def __init__(self, status: HTTPStatus, error: str, fix: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.fix, self.headers = status, error, fix, headers or {}


def _static_file(name: str) -> bytes:
    return resources.files("postkit.review.static").joinpath(name).read_bytes()


def _text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string field of a JSON body; a required one must not be blank."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"'{name}' must be a string")
    if required and (value is None or not value.strip()):
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"'{name}' is missing", f"send '{name}' in the JSON body")
    return value


def _same_person(body: dict[str, Any], name: str, me: Reviewer) -> None:
    """A ``reviewer``/``coder`` field is optional; when sent, it must be the token's person."""
    value = body.get(name)
    if value is None:
        return
    try:
        same = isinstance(value, str) and normalise_name(value) == me.name
    except PostkitError:
        same = False
    if not same:
        raise _ApiError(HTTPStatus.FORBIDDEN, f"'{name}' is not the person this link belongs to",
                        "leave it out: decisions are recorded under the link's name")


class ReviewServer(ThreadingHTTPServer):
    """A :class:`ThreadingHTTPServer` on 127.0.0.1 serving one study to named reviewers.

    ``study`` is an open study or a zero-argument callable that opens one (e.g.
    ``lambda: QuoteStudy.open(folder)``); a study the server opened it also closes.
    ``reviewers``: names (normalised, see :mod:`postkit.review.identity`); each gets a
    fresh secret token, see :meth:`link`. None: one reviewer named after the
    operating-system user. ``retrain_every``: retrain the study's ranker after every N
    coding decisions (0: never); ``order``: the excerpt order when the page asks for none
    (sampled or uncertainty). None for either: the study's ``[review]`` setting (from the
    run folder's manifest), else 25 and sampled. A study without a coding store on disk
    (``store_path``) gets neither.
    """

    daemon_threads = True  # Ctrl+C never waits for a browser's keep-alive connection

    def __init__(self, study: Any, port: int = DEFAULT_PORT, reviewers: Sequence[str] | None = None, *,
                 check_timeout: float = CHECK_TIMEOUT_S, retrain_every: int | None = 0,
                 order: str | None = "sampled") -> None:
        self.study, self._owns_study, self._worker, self._checker = None, False, None, None  # for server_close()
        self.learner: Learner | None = None
        if order is not None and order not in ORDERS:
            raise PostkitError(f"unknown excerpt order {order!r}", fix=f"use one of: {', '.join(ORDERS)}")
        # Names first: a bad --reviewers list fails before the port is bound or the study opened.
        self.reviewers = Reviewers(reviewers if reviewers is not None else [default_reviewer_name()])
        self.check_timeout = check_timeout
        super().__init__((HOST, port), _Handler)  # bind first: a taken port fails before a slow open
        self.port = int(self.server_address[1])
        self.allowed_hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self.allowed_origins = {f"http://{host}" for host in self.allowed_hosts}
        # Every store call runs on this one thread: the study's SQLite connection is never used
        # concurrently nor from a thread that did not open it. Checks get their own thread.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postkit-review-study")
        self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postkit-review-check")
        self._check_slots = threading.BoundedSemaphore(MAX_PENDING_CHECKS)
        self._owns_study = callable(study) and not hasattr(study, "quotes")
        try:
            self.study = self._worker.submit(study).result() if self._owns_study else study
            self.learner = self._make_learner(retrain_every, order)
        except BaseException:
            if self._owns_study and self.study is not None:
                self._worker.submit(self.study.close).result()
            self._worker.shutdown()
            self._checker.shutdown()
            self.socket.close()
            raise

    def _make_learner(self, every: int | None, order: str | None) -> Learner | None:
        store_path = getattr(self.study, "store_path", None)
        if store_path is None or getattr(self.study, "store", None) is None:
            return None
        settings = study_settings(store_path) if every is None or order is None else {}
        every = every if every is not None else settings.get("retrain_every", DEFAULT_RETRAIN_EVERY)
        order = order if order is not None else settings.get("order", "sampled")
        return Learner(store_path, every=every, order=order, write=self.write)

    def write(self, function: Callable[[Any], Any]) -> Any:
        """``function(store)`` with the study's writable coding store, on the study thread."""
        return self._worker.submit(lambda: function(self.study.store)).result()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def link(self, reviewer: Reviewer | str) -> str:
        """The secret link of one reviewer (by :class:`Reviewer` or name)."""
        if isinstance(reviewer, str):
            name = normalise_name(reviewer)
            found = [r for r in self.reviewers if r.name == name]
            if not found:
                raise PostkitError("no such reviewer in this app", fix="use a name given to --reviewers")
            reviewer = found[0]
        return f"{self.url}#token={reviewer.token}"

    def _wait(self, future: Future, timeout: float | None, what: str) -> Any:
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            if future.cancel():  # still queued: never run it
                raise _ApiError(HTTPStatus.SERVICE_UNAVAILABLE, f"the app is busy: {what} did not start in time",
                                "try again in a moment") from None
            if future.done():
                return future.result()
            raise _ApiError(HTTPStatus.SERVICE_UNAVAILABLE, f"{what} took longer than {timeout:g} s",
                            "try again in a moment; shorter texts check faster") from None

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """``study.method(*args)`` on the study thread; a timeout (reads only) gives a 503."""
        future = self._worker.submit(getattr(self.study, method), *args)
        return self._wait(future, timeout, "reading the study")

    def check(self, quote_id: str, text: str) -> Any:
        """``study.check(quote_id, text)`` on the check thread, waiting at most ``check_timeout``."""
        if not self._check_slots.acquire(blocking=False):
            raise _ApiError(HTTPStatus.SERVICE_UNAVAILABLE, f"{MAX_PENDING_CHECKS} checks are already waiting",
                            "try again in a moment")
        try:
            future = self._checker.submit(self.study.check, quote_id, text)
        except BaseException:
            self._check_slots.release()
            raise
        future.add_done_callback(lambda _: self._check_slots.release())
        return self._wait(future, self.check_timeout, "the check")

    def server_close(self) -> None:
        super().server_close()
        if self.learner is not None:  # first: a running retrain may still write through the study
            self.learner.close()
        if self._checker is not None:
            self._checker.shutdown(cancel_futures=True)
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
    timeout = SOCKET_TIMEOUT_S  # socket reads: a client that stalls mid-request cannot hold a thread forever

    # -- plumbing -------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet terminal; and URLs, headers and bodies are never logged

    def _send(self, status: HTTPStatus, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**_SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(jsonable(payload), ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _error(self, status: HTTPStatus, error: str, fix: str | None = None,
               headers: dict[str, str] | None = None) -> None:
        if self.command == "POST" and self._body_pending:
            self._drain()  # the body was never read: drop it and close, or it would be read as a request
            self.close_connection = True
        self._json(status, {"error": error, "fix": fix}, headers)

    def _check_host(self) -> None:
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.server.allowed_hosts:
            raise _ApiError(HTTPStatus.FORBIDDEN, "unexpected Host header", f"open the app at {self.server.url}")

    def _reviewer(self) -> Reviewer:
        """The reviewer whose token the request carries; 401 without a valid one."""
        scheme, _, token = (self.headers.get("Authorization") or "").strip().partition(" ")
        reviewer = self.server.reviewers.by_token(token.strip()) if scheme.lower() == "bearer" else None
        if reviewer is None:
            raise _ApiError(HTTPStatus.UNAUTHORIZED, "no valid reviewer link", _NO_TOKEN_FIX,
                            {"WWW-Authenticate": 'Bearer realm="postkit-review"'})
        return reviewer

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding") is not None:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "chunked request bodies are not accepted",
                            "send the body with a Content-Length")
        values = [v.strip() for v in self.headers.get_all("Content-Length") or []]
        if not values:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Content-Length is missing", "send the body's length")
        if len(set(values)) != 1 or not _CONTENT_LENGTH.fullmatch(values[0]):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "bad Content-Length",
                            "send one Content-Length: the body's size in bytes")
        self._declared_length = int(values[0])
        return self._declared_length

    def _drain(self) -> None:
        """Read and drop a refused body of known, modest size (best effort, bounded in time)."""
        self._body_pending = False
        remaining = self._declared_length
        if remaining is None or remaining > DRAIN_LIMIT:
            return
        deadline = time.monotonic() + 5.0
        try:
            while remaining > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(remaining, 65536))
                if not chunk:
                    return
                remaining -= len(chunk)
        except OSError:
            return

    def _read(self, length: int) -> bytes:
        deadline = time.monotonic() + BODY_DEADLINE_S
        chunks, remaining = [], length
        while remaining > 0:
            if time.monotonic() > deadline:
                self.close_connection = True
                raise _ApiError(HTTPStatus.REQUEST_TIMEOUT, "the request body arrived too slowly")
            chunk = self.rfile.read1(min(remaining, 65536))  # a silent client times out (SOCKET_TIMEOUT_S)
            if not chunk:
                self.close_connection = True
                raise _ApiError(HTTPStatus.BAD_REQUEST, "the request body is shorter than its Content-Length")
            chunks.append(chunk)
            remaining -= len(chunk)
        self._body_pending = False
        return b"".join(chunks)

    def _body(self) -> dict[str, Any]:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "POST bodies must be application/json",
                            "send JSON with Content-Type: application/json")
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in self.server.allowed_origins:
            raise _ApiError(HTTPStatus.FORBIDDEN, "requests from other web sites are not allowed",
                            f"use the app at {self.server.url}")
        length = self._content_length()
        if length > MAX_BODY_BYTES:
            raise _ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body over {MAX_BODY_BYTES:,} bytes",
                            "a quote, its rewording and a note are a few thousand characters at most")
        raw = self._read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except RecursionError:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "the request body is nested too deeply") from None
        except (UnicodeDecodeError, ValueError) as exc:
            where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            raise _ApiError(HTTPStatus.BAD_REQUEST, f"the request body is not valid JSON{where}") from None
        if not isinstance(body, dict):
            raise _ApiError(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
        return body

    def _handle(self, route: Callable[[], None]) -> None:
        from ..coding.store import StoreReplacedError
        from ..disguise.study import ReviewInputError

        self._declared_length: int | None = None
        self._body_pending = self.command == "POST"
        try:
            self._check_host()
            route()
        except _ApiError as exc:
            self._error(exc.status, exc.error, exc.fix, exc.headers)
        except ReviewInputError as exc:
            self._error(HTTPStatus.UNPROCESSABLE_ENTITY, exc.message, exc.fix)
        except StoreReplacedError as exc:  # a rerun or a copy replaced the store: nothing more is written
            self._error(HTTPStatus.CONFLICT, exc.message, exc.fix)
        except PostkitError as exc:
            self._error(HTTPStatus.BAD_REQUEST, exc.message, exc.fix)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client went away or stalled (socket timeout): nothing to answer
        except Exception as exc:  # noqa: BLE001 - a bug: say so in the page, keep serving, log it
            traceback.print_exc(file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}",
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
            return
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
            return
        if not path.startswith("/api/"):
            raise _ApiError(HTTPStatus.NOT_FOUND, "no such page", f"open {self.server.url}")
        me = self._reviewer()
        if path == "/api/me":
            self._json(HTTPStatus.OK, {"name": me.name, "study": self.server.study.folder.name})
        elif path == "/api/quotes":
            quotes = self.server.call("quotes", timeout=STUDY_TIMEOUT_S)
            self._json(HTTPStatus.OK, {"study": self.server.study.folder.name, "quotes": quotes})
        elif path.startswith("/api/quotes/"):
            quote_id = unquote(path[len("/api/quotes/"):])
            try:
                if len(quote_id) > _MAX_ID_IN_PATH:
                    raise PostkitError("unknown quote_id", fix="pick a quote listed by the study")
                quote = self.server.call("quote", quote_id, timeout=STUDY_TIMEOUT_S)
            except PostkitError as exc:
                raise _ApiError(HTTPStatus.NOT_FOUND, exc.message, exc.fix) from None
            history = self.server.call("history", quote_id, timeout=STUDY_TIMEOUT_S)
            self._json(HTTPStatus.OK, {"quote": quote, "history": history})
        elif path == "/api/excerpts":
            query = parse_qs(url.query)
            for asked in query.get("coder", []):
                _same_person({"coder": asked}, "coder", me)  # nobody reads another coder's decisions
            asked_order = (query.get("order") or [None])[-1]
            if asked_order is not None and asked_order not in ORDERS:
                raise _ApiError(HTTPStatus.BAD_REQUEST, "unknown excerpt order",
                                f"use order={' or order='.join(ORDERS)}")
            learner = self.server.learner
            if learner is None and asked_order == "uncertainty":
                raise _ApiError(HTTPStatus.BAD_REQUEST, "this study cannot order excerpts by uncertainty",
                                "use order=sampled")
            excerpts = self.server.call("excerpts", me.name, timeout=STUDY_TIMEOUT_S)
            order, learning = "sampled", {"state": "off", "every": 0, "message": ""}
            if learner is not None:
                order, excerpts = learner.ordered(excerpts, asked_order)
                learning = learner.status
            self._json(HTTPStatus.OK, {"coder": me.name, "excerpts": excerpts, "order": order,
                                       "learning": learning})
        elif path == "/api/learning":
            learner = self.server.learner
            self._json(HTTPStatus.OK, learner.status if learner is not None else
                       {"state": "off", "every": 0, "message": ""})
        elif path == "/api/codes":
            self._json(HTTPStatus.OK, {"codes": self.server.call("codes", timeout=STUDY_TIMEOUT_S)})
        else:
            raise _ApiError(HTTPStatus.NOT_FOUND, "no such endpoint", f"open {self.server.url}")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        if path not in ("/api/check", "/api/decide", "/api/code"):
            raise _ApiError(HTTPStatus.NOT_FOUND, "no such endpoint")
        me = self._reviewer()  # before the body is read: no token, no work
        body = self._body()
        if path == "/api/check":
            self._json(HTTPStatus.OK, self.server.check(_text_field(body, "quote_id"),
                                                        _text_field(body, "text", required=False) or ""))
        elif path == "/api/decide":
            _same_person(body, "reviewer", me)
            quote_id, action = _text_field(body, "quote_id"), _text_field(body, "action")
            text = _text_field(body, "text", required=False) or ""
            note = _text_field(body, "note", required=False) or None
            self.server.check(quote_id, text)  # the slow part, on the check thread; the study keeps the result
            decision = self.server.call("decide", quote_id, me.name, action, text, note)
            self._json(HTTPStatus.OK, decision)
        else:
            _same_person(body, "coder", me)
            self.server.call("decide_code", _text_field(body, "unit_id"), _text_field(body, "code_id"),
                             me.name, _text_field(body, "action"), _text_field(body, "memo", required=False) or None)
            if self.server.learner is not None:
                self.server.learner.decided()  # a retrain, if due, starts in the background
            self._json(HTTPStatus.OK, {"ok": True})


# --------------------------------------------------------------------------- entry points


def make_server(study: Any, port: int = DEFAULT_PORT, reviewers: Sequence[str] | None = None, *,
                check_timeout: float = CHECK_TIMEOUT_S, retrain_every: int | None = 0,
                order: str | None = "sampled") -> ReviewServer:
    """A server for ``study`` on 127.0.0.1:``port`` (0 = any free port), not yet serving.

    ``study``: an open study, or a callable opening one on the server's study thread
    (see :class:`ReviewServer`, also for ``retrain_every`` and ``order``; retraining is
    off unless asked for here, while ``postkit review serve`` retrains every 25 decisions).
    ``reviewers``: their names (None: the operating-system user). Raises
    :class:`PostkitError` for a bad reviewer list or a taken port.
    """
    try:
        return ReviewServer(study, port, reviewers, check_timeout=check_timeout, retrain_every=retrain_every,
                            order=order)
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

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)


def serve(study: Any, port: int = DEFAULT_PORT, *, reviewers: Sequence[str] | None = None,
          open_browser: bool = True, on_ready: Callable[[ReviewServer], None] | None = None,
          retrain_every: int | None = None, order: str | None = None) -> None:
    """Serve ``study`` until Ctrl+C (or SIGTERM); ``on_ready(server)`` is called once the port is bound
    (print :meth:`ReviewServer.link` of each reviewer there). The browser is opened at the
    reviewer's link only when there is one reviewer: links of several people are theirs to open.
    ``retrain_every``/``order``: see :class:`ReviewServer` (None: the study's ``[review]``
    settings, else every 25 decisions and the sampled order)."""
    _stop_on_signals()
    server = make_server(study, port, reviewers, retrain_every=retrain_every, order=order)
    try:
        if on_ready is not None:
            on_ready(server)
        if open_browser and len(server.reviewers) == 1:
            webbrowser.open(server.link(next(iter(server.reviewers))))
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
