"""A tamper-evident audit log of consent decisions (``AUDIT.jsonl``).

An ethics reviewer must be able to check, long after a run, that the log of "which
post was kept and why" is the log the run wrote, and that it describes the corpus
they were given. The log is JSON Lines: a header, one entry per post, a footer::

    {"hash":"…","prev":"000…0","seq":0,"type":"header", …caller fields…}
    {"hash":"…","prev":"<hash of line 1>","seq":1,"type":"entry", …}
    …
    {"entries":N,"hash":"<head>","prev":"…","seq":N+1,"type":"footer", …}

Design choices, and why:

* **Canonical JSON** (sorted keys, no spaces, UTF-8, no ``\\uXXXX`` escapes for
  non-ASCII). A line's hash is over the canonical encoding of its *content*, so
  anyone can recompute it with a few lines of any language, and the same content
  always gives the same hash. Lines are also written in exactly that form, and the
  verifier insists on it, so a line cannot be read two ways (duplicate keys, say).
* **Each line carries its own hash** and ``prev``, the hash of the line before.
  The self-hash lets the verifier say *which* line was edited; ``prev`` and the
  running ``seq`` catch lines deleted, inserted or reordered, and name where.
* **The footer's hash is the head**: it depends on every line before it. Recorded
  elsewhere (the run summary prints it), it catches even a wholly rewritten chain.
  The footer also counts the entries and records the output's sha256, tying the
  log to the corpus file it describes.

* **Signed, in a detached file.** The head proves nothing to someone who can re-make
  the whole log (flip a decision, fix the counts and output hash, re-chain), and the
  head recorded in ``manifest.json`` sits in the same editable folder. So the data
  steward's Ed25519 key (:mod:`postkit.signing`) signs the head, and the signature goes
  in ``<log>.sig`` beside the log (``audit.jsonl.sig``), the public key in
  ``<log stem>.pub`` (``audit.pub``, PEM). The signature file is one line of canonical
  JSON::

      {"algorithm":"ed25519","head":"<head>","key":"sha256:<fingerprint>","purpose":"postkit audit log","signature":"<base64>","version":1}

  and the signed message is the canonical JSON of that object without ``signature``
  (the rule a line's hash uses): it covers the head, hence every line, the footer's
  counts and input/output hashes, and the signing key's fingerprint. Why detached
  rather than a last line after the footer: the signature covers the head, so it cannot
  be part of the chain it signs; as a line in the log it would be the one line every
  reader and the chain verifier must skip. Detached, the log format and the verifier
  are unchanged, old logs still read, and the signature can be checked on its own with
  ``jq`` and ``openssl`` (the README shows how). The writer of the log publishes log,
  signature and public key together; a missing signature fails verification.
  The ``.pub`` beside the log only proves integrity: a forger can re-sign with a fresh
  key and replace it. Authorship is proven only against the steward's public key as the
  reviewer received it (:func:`verify_signature` with ``public_key``).

The writer streams (a million posts must not sit in memory) and leaves atomic
publication (temp file + rename) to its caller.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from .errors import PostkitError
from .hashing import sha256_path
from .signing import SigningKey, encode_signature, fingerprint, load_public_key, verify

SIGNATURE_PURPOSE = "postkit audit log"
SIGNATURE_VERSION = 1
GENESIS = "0" * 64  # the header's ``prev``: there is no line before it
RESERVED = frozenset({"type", "seq", "prev", "hash"})  # set by the writer, never by callers
_KINDS = ("header", "entry", "footer")
_BATCH = 10_000  # lines joined into one write() by write_entries


# The canonical JSON encoder: sorted keys, compact, UTF-8 as is. NaN and Infinity are
# refused because they are not JSON: jq or a reviewer's script could not read the log.
# (Only the public json API is used; the consent benchmark meets its target with it.)
_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
).encode
_decode = json.JSONDecoder().raw_decode
_sha256 = hashlib.sha256


def line_hash(obj: dict[str, Any]) -> str:
    """The definition: sha256 hex of the canonical UTF-8 JSON of ``obj`` without its ``hash`` key."""
    if "hash" in obj:
        obj = {k: v for k, v in obj.items() if k != "hash"}
    return _sha256(_encode(obj).encode("utf-8")).hexdigest()


def _cut(text: str, at: int, length: int) -> str:
    """``text`` without the member at ``at`` (``length`` chars) and the comma that joined it."""
    if text[at - 1] == ",":
        return text[: at - 1] + text[at + length:]
    return text[:at] + text[at + length + 1:]  # the first member: drop the comma after it


def _check_fields(fields: dict[str, Any], what: str) -> None:
    clash = RESERVED.intersection(fields)
    if clash:
        raise ValueError(f"audit {what} must not set {', '.join(sorted(clash))}: the writer sets them")


class AuditWriter:
    """Streams a hash-chained log to an open file handle (binary, or text opened as UTF-8 with
    ``newline="\\n"``). The header is written at once; :meth:`close` writes the footer.

    The caller owns the handle and its atomic publication; the writer never flushes per
    line (that would dominate the run time) — only :meth:`close` flushes.
    Field names must be strings and values plain JSON (str, int, float, bool, None, list, dict).
    """

    def __init__(self, handle: IO[bytes] | IO[str], header: dict[str, Any]) -> None:
        _check_fields(header, "header")
        # Placeholder for each line's hash while the line is encoded (see _chain). Random,
        # so no caller value can contain it by accident.
        self._slot = secrets.token_hex(32)
        self._handle = handle
        self._binary = not isinstance(handle, io.TextIOBase)
        self._seq = 0
        self._prev = GENESIS
        self._closed = False
        self.entries = 0
        self.head: str | None = None
        self._chain("header", (header,))

    def _chain(self, kind: str, items: Iterable[dict[str, Any]]) -> None:
        """Append lines of one kind, joined into few large writes.

        Each line is encoded once, with the random placeholder in its ``hash`` slot; the
        hash is taken over that text minus the placeholder member (which is exactly the
        canonical JSON without ``hash``) and then put into the slot. Encoding twice, with
        and without the hash, would double the cost. If an item is refused (a reserved
        field, a value JSON cannot hold), the lines before it are still written, so the
        file stays a valid chain.
        """
        if self._closed:
            raise ValueError("audit log is closed: no lines may follow the footer")
        slot, seq, prev, first = self._slot, self._seq, self._prev, self._seq
        member = f'"hash":"{slot}"'
        lines: list[str] = []
        try:
            for fields in items:
                if not RESERVED.isdisjoint(fields):
                    _check_fields(fields, kind)
                text = _encode({**fields, "type": kind, "seq": seq, "prev": prev, "hash": slot})
                at = text.find(member)
                prev = _sha256(_cut(text, at, 73).encode("utf-8")).hexdigest()
                lines.append(f"{text[:at + 8]}{prev}{text[at + 72:]}")  # '"hash":"' is 8 chars
                seq += 1
                if len(lines) == _BATCH:
                    self._write(lines)
                    lines = []
        finally:
            self._seq, self._prev = seq, prev
            if kind == "entry":
                self.entries += seq - first
            if lines:
                self._write(lines)

    def _write(self, lines: list[str]) -> None:
        text = "\n".join(lines) + "\n"
        self._handle.write(text.encode("utf-8") if self._binary else text)

    def write_entry(self, entry: dict[str, Any]) -> None:
        """Append one entry line."""
        self._chain("entry", (entry,))

    def write_entries(self, entries: Iterable[dict[str, Any]]) -> None:
        """Append many entry lines: the fast path for batches."""
        self._chain("entry", entries)

    def close(self, footer: dict[str, Any]) -> str:
        """Write the footer (with the entry count added), flush, and return the head hash."""
        if "entries" in footer:
            raise ValueError("audit footer must not set entries: the writer counts them")
        self._chain("footer", ({**footer, "entries": self.entries},))
        self._handle.flush()
        self._closed = True
        self.head = self._prev
        return self.head


@dataclass
class VerifyResult:
    """The outcome of :func:`verify_audit`; ``problem`` and ``line`` name the first bad line."""

    ok: bool
    head: str | None  # the footer's hash, when the log is intact
    entries: int  # entry lines read (up to the first problem)
    header: dict[str, Any] | None
    footer: dict[str, Any] | None
    problem: str | None = None
    line: int | None = None


def _open(path: Path, what: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise PostkitError(f"{what} not found", path=path, fix="check the path") from None
    except IsADirectoryError:
        raise PostkitError(f"{what} is a folder, not a file", path=path) from None
    except OSError as error:
        raise PostkitError(f"cannot read the {what}: {error.strerror or error}", path=path) from None


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _load(line: str) -> Any:
    """``json.loads``, minus its whitespace handling on the usual compact line."""
    try:
        obj, end = _decode(line)
        if end == len(line):
            return obj
    except ValueError:
        pass
    return json.loads(line)  # raises the proper error, or accepts surrounding spaces


class _BadLine(Exception):
    """The first problem found, as the one line the verifier reports."""


def _parse_line(number: int, raw: bytes) -> dict[str, Any]:
    """Parse one line and check its own hash."""
    if raw.isspace():
        raise _BadLine(f"line {number}: blank line — the log was edited")
    try:
        line = raw.decode("utf-8")
        line = line[:-1] if line.endswith("\n") else line
        obj = _load(line)
    except (ValueError, RecursionError) as error:
        if not raw.endswith(b"\n"):
            raise _BadLine(f"line {number}: log ends without a footer — it was truncated "
                           "(this last line is cut off)") from None
        if isinstance(error, json.JSONDecodeError):
            raise _BadLine(f"line {number}: not valid JSON ({error.msg}, at character {error.colno})") from None
        raise _BadLine(f"line {number}: not valid JSON (not UTF-8, or nested too deeply)") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("hash"), str):
        raise _BadLine(f"line {number}: not an audit log line (it has no hash)")
    claimed = obj["hash"]
    # Fast path: the line is canonical, so its hash is over the line minus its hash member.
    if _encode(obj) == line:
        member = f'"hash":"{claimed}"'
        at = line.find(member)
        if at > 0 and _sha256(_cut(line, at, len(member)).encode("utf-8")).hexdigest() == claimed:
            return obj
    if line_hash(obj) != claimed:
        what = obj.get("type") if obj.get("type") in _KINDS else "line"
        raise _BadLine(f"line {number}: {what} was modified (its hash does not match its content)")
    why = "it has Windows (CRLF) line endings" if line.endswith("\r") else "it was re-formatted or has a repeated key"
    raise _BadLine(f"line {number}: content intact but not written as canonical JSON — {why}")


def _check_place(number: int, obj: dict[str, Any], prev: str) -> None:
    """Is this (self-consistent) line where it belongs: right type, next seq, chained to prev?"""
    kind, seq = obj.get("type"), obj.get("seq")
    if kind not in _KINDS:
        raise _BadLine(f"line {number}: unknown line type {kind!r}")
    if number == 1 and kind != "header":
        raise _BadLine(f"line 1: expected the header, found {_article(kind)} — "
                       "the header was deleted or lines were reordered")
    if number > 1 and kind == "header":
        raise _BadLine(f"line {number}: a second header — lines were inserted or reordered")
    if type(seq) is not int:
        raise _BadLine(f"line {number}: seq is not a whole number")
    if seq != number - 1:
        cause = ("a line was deleted or reordered before it" if seq > number - 1
                 else "a line was inserted (or duplicated) or reordered before it")
        raise _BadLine(f"line {number}: expected seq {number - 1}, found {seq} — {cause}")
    if obj.get("prev") != prev:
        if number == 1:
            raise _BadLine("line 1: the header's prev is not all zeros — the log was edited")
        raise _BadLine(f"line {number}: prev does not match the hash of line {number - 1} — line {number - 1} "
                       "was changed (and its hash recomputed), or a line was removed or inserted there")


def verify_audit(
    path: str | Path, output: str | Path | None = None, expected_head: str | None = None
) -> VerifyResult:
    """Check the hash chain of the audit log at ``path``, streaming it line by line.

    Optionally also check that ``output`` is the file (or folder) the footer describes,
    and that the head hash equals ``expected_head`` (recorded elsewhere at run time;
    the only defence against a log rewritten from scratch). Returns a result naming
    the first bad line; raises :class:`PostkitError` only when a file cannot be read.
    """
    path = Path(path)
    from .audit_merkle import is_partitioned, verify_partitioned_audit

    if is_partitioned(path):  # written in partitions (the Dask engine): one chain each, a Merkle root
        return verify_partitioned_audit(path, output, expected_head)
    if output is not None and not Path(output).exists():
        raise PostkitError("output file not found", path=output, fix="check the --output path")
    header: dict[str, Any] | None = None
    footer: dict[str, Any] | None = None
    entries = 0

    def fail(number: int, problem: str) -> VerifyResult:
        return VerifyResult(False, None, entries, header, footer, problem, number)

    prev = GENESIS
    number = 0
    with _open(path, "audit log") as handle:
        for number, raw in enumerate(handle, start=1):
            if footer is not None:
                return fail(number, f"line {number}: text after the footer — the log must end with its footer")
            try:
                obj = _parse_line(number, raw)
                _check_place(number, obj, prev)
            except _BadLine as problem:
                return fail(number, str(problem))
            prev = obj["hash"]
            kind = obj["type"]
            if kind == "entry":
                entries += 1
            elif kind == "header":
                header = obj
            else:
                footer = obj
    if number == 0:
        return fail(1, "line 1: the file is empty — no header (the log was truncated or never written)")
    if footer is None:
        return fail(number + 1, f"line {number + 1}: log ends without a footer — it was truncated after line {number}")
    if type(footer.get("entries")) is not int or footer["entries"] != entries:
        return fail(number, f"line {number}: the footer counts {footer.get('entries')!r} entries, "
                            f"but the log has {entries}")
    head = footer["hash"]
    if expected_head is not None and head != expected_head.strip().lower():
        return fail(number, f"head hash {head} is not the expected {expected_head.strip()} — "
                            "the log was rewritten, or this is a different run's log")
    if output is not None:
        recorded = footer.get("output_sha256")
        if not isinstance(recorded, str):
            return fail(number, f"line {number}: the footer records no output_sha256 to check the output against")
        actual = sha256_path(output)
        if actual != recorded:
            return fail(number, f"output file does not match the log: sha256 {actual} expected {recorded}")
    return VerifyResult(True, head, entries, header, footer)


def read_audit(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield each line of an audit log, parsed, for reports. Does not verify: use
    :func:`verify_audit` first."""
    path = Path(path)
    with _open(path, "audit log") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield json.loads(raw)
            except ValueError as error:
                raise PostkitError(f"not valid JSON ({error})", path=path, row=number,
                                   fix="run `postkit audit verify` on the log") from None


# --------------------------------------------------------------------------- signatures


def signature_path(log: str | Path) -> Path:
    """Where the detached signature of ``log`` lives: ``audit.jsonl`` → ``audit.jsonl.sig``."""
    log = Path(log)
    return log.with_name(log.name + ".sig")


def public_key_path(log: str | Path) -> Path:
    """Where the signer's public key is written beside ``log``: ``audit.jsonl`` → ``audit.pub``."""
    return Path(log).with_suffix(".pub")


def _signed_message(document: dict[str, Any]) -> bytes:
    return _encode({k: v for k, v in document.items() if k != "signature"}).encode("utf-8")


def sign_head(key: SigningKey, head: str) -> str:
    """The signature file's text (one canonical JSON line) signing ``head`` and the key's fingerprint."""
    document: dict[str, Any] = {"algorithm": "ed25519", "head": head, "key": key.fingerprint,
                                "purpose": SIGNATURE_PURPOSE, "version": SIGNATURE_VERSION}
    document["signature"] = encode_signature(key.sign(_signed_message(document)))
    return _encode(document) + "\n"


@dataclass
class SignatureResult:
    """The outcome of :func:`verify_signature`.

    ``authenticated``: checked against a public key the caller supplied (the steward's
    published key), not merely the ``.pub`` beside the log, which anyone could replace.
    """

    ok: bool
    problem: str | None
    key: str | None  # the fingerprint of the key checked against
    key_source: Path | None  # the public key file used
    authenticated: bool


def _short(fp: str) -> str:
    return fp[: len("sha256:") + 16] + "…"


def verify_signature(log: str | Path, head: str, public_key: str | Path | None = None) -> SignatureResult:
    """Check ``<log>.sig`` signs ``head`` (the log's verified head) with ``public_key``.

    Without ``public_key``, the ``.pub`` beside the log is used: that proves the log was
    not altered after signing, not who signed it. Raises :class:`PostkitError` only when
    a given public key file cannot be read.
    """
    log = Path(log)
    sig_path = signature_path(log)
    given = public_key is not None
    key_path = Path(public_key) if given else public_key_path(log)

    def fail(problem: str, key: str | None = None) -> SignatureResult:
        return SignatureResult(False, problem, key, key_path, given)

    try:
        text = sig_path.read_bytes()
    except FileNotFoundError:
        return fail(f"no signature: {sig_path.name} is missing — the log is unsigned, or its signature was removed")
    except OSError as error:
        return fail(f"cannot read the signature file {sig_path.name}: {error.strerror or error}")
    try:
        document = _load(text.decode("utf-8").strip())
    except (ValueError, RecursionError):
        document = None
    fields = ("algorithm", "head", "key", "purpose", "signature", "version")
    if (not isinstance(document, dict) or set(document) != set(fields)
            or not all(isinstance(document[f], str) for f in fields if f != "version")
            or document["algorithm"] != "ed25519" or document["purpose"] != SIGNATURE_PURPOSE
            or document["version"] != SIGNATURE_VERSION):
        return fail(f"the signature file {sig_path.name} is malformed (not a postkit Ed25519 audit signature)")
    if document["head"] != head:
        return fail(f"the signature is for head {document['head'][:16]}…, not this log's head {head[:16]}… — "
                    "the log was re-made or changed after it was signed")
    if not given and not key_path.exists():
        return fail(f"no public key: {key_path.name} is missing beside the log — pass --public-key with the "
                    "data steward's published public key")
    public = load_public_key(key_path)
    expected = fingerprint(public)
    if document["key"] != expected:
        if given:
            return fail(f"the log was signed by another key ({_short(document['key'])}), not the given public key "
                        f"({_short(expected)}) — it was not signed by that key's holder", expected)
        return fail(f"the log was signed by key {_short(document['key'])}, but {key_path.name} beside it is "
                    f"{_short(expected)}", expected)
    if not verify(public, document["signature"], _signed_message(document)):
        return fail("the signature does not match the log's head and key — the signature file was altered "
                    "or made with another key", expected)
    return SignatureResult(True, None, expected, key_path, given)
