"""The browser review app: disguise quotes for publication and confirm code suggestions.

``postkit review serve STUDY_DIR`` runs :func:`postkit.review.server.serve` on
127.0.0.1; the page (``static/``) talks to a small JSON API backed by
:class:`postkit.disguise.study.QuoteStudy`, and every decision lands in the study's
SQLite store next to the coders' decisions.
"""

from .server import ReviewServer, make_server, serve

__all__ = ["ReviewServer", "make_server", "serve"]
