"""Audit logs written in partitions and joined by a Merkle tree under one signed head.

Why: on a cluster, partitions of the posts are decided at the same time on different
workers, so no worker knows the hash of the line before its first line, and a single
hash chain (:mod:`postkit.audit`) cannot be written in parallel. Instead each partition
is its own chain, and the footer commits to all of them at once:

    line 1      {"audit_layout":{"name":"partition-merkle","version":1},…,"prev":"000…0","seq":0,"type":"header"}
    partition k {"part":k,"seq":0,"prev":<header hash>,"type":"entry",…}
                {"part":k,"seq":1,"prev":<hash of the line before>,…}  …
    last line   {"entries":N,"merkle_root":R,"partitions":[{"entries":n0,"head":h0},…],
                 "prev":R,"seq":N+1,"type":"footer",…}

* Every line carries its own hash, computed exactly as in :mod:`postkit.audit`
  (canonical JSON without ``hash``), so an edited line is named by its line number.
* Partition ``k``'s chain starts from the header's hash; its *head* is the hash of its
  last line (the header's hash for an empty partition). Lines carry their partition
  number, so a line moved between partitions, or partitions swapped, is found.
* The Merkle root is RFC 6962's Merkle Tree Hash (leaves ``0x00``-prefixed, nodes
  ``0x01``-prefixed, split at the largest power of two) over one leaf per partition:
  the canonical JSON ``{"entries":n,"head":h,"partition":k}``. It is written in the
  footer with the table of partition heads, and is the footer's ``prev``.
* The footer's own hash is the log's head, as before: it is what ``<log>.sig`` signs
  (:func:`postkit.audit.sign_head`), so one signature covers the root and through it
  every line of every partition. ``postkit audit verify`` recognises the layout from the
  header and names the partition and line of any damage.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Sequence

from .audit import GENESIS, RESERVED, VerifyResult, _BadLine, _cut, _encode, _load, _open, _parse_line, line_hash
from .errors import PostkitError
from .hashing import sha256_path

LAYOUT = {"name": "partition-merkle", "version": 1}
LAYOUT_FIELD = "audit_layout"
PART_RESERVED = RESERVED | {"part"}
_sha256 = hashlib.sha256


# --------------------------------------------------------------------------- the tree


def leaf_data(partition: int, entries: int, head: str) -> bytes:
    """One partition's leaf: canonical JSON of its number, entry count and head hash."""
    return _encode({"entries": entries, "head": head, "partition": partition}).encode("utf-8")


def merkle_root(leaves: Sequence[bytes]) -> str:
    """RFC 6962 Merkle Tree Hash of ``leaves`` (hex)."""

    def tree(items: Sequence[bytes]) -> bytes:
        if len(items) == 1:
            return _sha256(b"\x00" + items[0]).digest()
        split = 1
        while split * 2 < len(items):
            split *= 2
        return _sha256(b"\x01" + tree(items[:split]) + tree(items[split:])).digest()

    return tree(leaves).hex() if leaves else _sha256(b"").hexdigest()


@dataclass(frozen=True)
class PartitionHead:
    """What the footer records of one partition's chain."""

    partition: int
    entries: int
    head: str

    def as_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "head": self.head}


def root_of(heads: Sequence[PartitionHead]) -> str:
    return merkle_root([leaf_data(h.partition, h.entries, h.head) for h in heads])


# --------------------------------------------------------------------------- writing


def encode_partition(entries: Iterable[dict[str, Any]], partition: int, start: str) -> tuple[str, PartitionHead]:
    """The lines of one partition's chain (text, each ending in a newline) and its head.

    Pure: a worker runs it on its partition knowing only the header's hash ``start``.
    Each line is encoded once with a random placeholder for its hash, as
    :class:`postkit.audit.AuditWriter` does.
    """
    slot = secrets.token_hex(32)
    member = f'"hash":"{slot}"'
    prev, seq, lines = start, 0, []
    for fields in entries:
        if not PART_RESERVED.isdisjoint(fields):
            raise ValueError("audit entries must not set " + ", ".join(sorted(PART_RESERVED & set(fields))))
        text = _encode({**fields, "part": partition, "type": "entry", "seq": seq, "prev": prev, "hash": slot})
        at = text.find(member)
        prev = _sha256(_cut(text, at, 73).encode("utf-8")).hexdigest()
        lines.append(f"{text[:at + 8]}{prev}{text[at + 72:]}\n")
        seq += 1
    return "".join(lines), PartitionHead(partition, seq, prev)


def write_partition(path: str | Path, entries: Iterable[dict[str, Any]], partition: int, start: str) -> PartitionHead:
    """Write one partition's chain to ``path`` (a scratch file the client joins later)."""
    text, head = encode_partition(entries, partition, start)
    Path(path).write_bytes(text.encode("utf-8"))
    return head


def _line(fields: dict[str, Any]) -> tuple[str, str]:
    obj = dict(fields)
    obj["hash"] = digest = line_hash(obj)
    return _encode(obj) + "\n", digest


class PartitionedAuditWriter:
    """Joins partition chains into one log: header now, partitions in order, then the footer.

    The caller owns the (binary) handle and its atomic publication, as with
    :class:`postkit.audit.AuditWriter`.
    """

    def __init__(self, handle: IO[bytes], header: dict[str, Any]) -> None:
        if not PART_RESERVED.isdisjoint(header) or LAYOUT_FIELD in header:
            raise ValueError("audit header must not set type, seq, prev, hash, part or audit_layout")
        self._handle = handle
        text, self.header_hash = _line({**header, LAYOUT_FIELD: LAYOUT, "type": "header", "seq": 0,
                                        "prev": GENESIS})
        handle.write(text.encode("utf-8"))
        self.heads: list[PartitionHead] = []
        self.entries = 0
        self.head: str | None = None

    def append(self, head: PartitionHead, part_file: str | Path | None) -> None:
        """Copy partition ``head.partition``'s lines (must be the next partition) into the log."""
        if head.partition != len(self.heads):
            raise ValueError(f"partition {head.partition} arrived after {len(self.heads) - 1}: order is required")
        if part_file is not None:
            with open(part_file, "rb") as source:
                while chunk := source.read(1 << 20):
                    self._handle.write(chunk)
        self.heads.append(head)
        self.entries += head.entries

    def close(self, footer: dict[str, Any]) -> str:
        """Write the footer (entry count, partition heads, Merkle root) and return the head."""
        clash = {"entries", "partitions", "merkle_root"} & set(footer)
        if clash or not PART_RESERVED.isdisjoint(footer):
            raise ValueError("audit footer must not set entries, partitions, merkle_root or reserved fields")
        root = root_of(self.heads)
        text, self.head = _line({**footer, "entries": self.entries, "partitions": [h.as_dict() for h in self.heads],
                                 "merkle_root": root, "type": "footer", "seq": self.entries + 1, "prev": root})
        self._handle.write(text.encode("utf-8"))
        self._handle.flush()
        return self.head


# --------------------------------------------------------------------------- verifying


def is_partitioned(path: str | Path) -> bool:
    """Does the log's first line declare the partition-Merkle layout? (Unreadable: no.)"""
    try:
        with open(path, "rb") as handle:
            first = handle.readline()
        obj = _load(first.decode("utf-8").rstrip("\n"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and obj.get(LAYOUT_FIELD) == LAYOUT


@dataclass
class _Part:
    partition: int
    first_line: int
    last_line: int
    entries: int = 0
    head: str = ""


def _part_of(raw: bytes) -> int | None:
    try:
        obj = _load(raw.decode("utf-8").rstrip("\n"))
    except (ValueError, RecursionError):
        return None
    part = obj.get("part") if isinstance(obj, dict) else None
    return part if type(part) is int else None


def verify_partitioned_audit(path: str | Path, output: str | Path | None = None,
                             expected_head: str | None = None) -> VerifyResult:
    """Check a partition-Merkle log line by line; the problem names the partition and line.

    Same contract as :func:`postkit.audit.verify_audit` (which calls this for such logs).
    """
    path = Path(path)
    if output is not None and not Path(output).exists():
        raise PostkitError("output file not found", path=output, fix="check the --output path")
    header: dict[str, Any] | None = None
    footer: dict[str, Any] | None = None
    parts: list[_Part] = []
    entries = 0
    start = ""

    def fail(number: int, problem: str) -> VerifyResult:
        return VerifyResult(False, None, entries, header, footer, problem, number)

    def where(number: int, part: int | None) -> str:
        return f"partition {part}, line {number}" if part is not None else f"line {number}"

    number = 0
    prev, seq = "", 0
    with _open(path, "audit log") as handle:
        for number, raw in enumerate(handle, start=1):
            current = parts[-1].partition if parts else None
            if footer is not None:
                return fail(number, f"line {number}: text after the footer — the log must end with its footer")
            try:
                obj = _parse_line(number, raw)
            except _BadLine as problem:
                part = _part_of(raw)
                text = str(problem)
                label = part if part is not None else current
                return fail(number, f"partition {label}, {text}" if label is not None and number > 1 else text)
            kind = obj.get("type")
            if number == 1:
                if kind != "header" or obj.get("seq") != 0 or obj.get("prev") != GENESIS:
                    return fail(1, "line 1: not a valid header (type, seq or prev changed) — the log was edited")
                header, start = obj, obj["hash"]
                continue
            if kind == "header":
                return fail(number, f"line {number}: a second header — lines were inserted or reordered")
            if kind == "footer":
                footer = obj
                if parts:
                    parts[-1].head = prev
                continue
            if kind != "entry":
                return fail(number, f"line {number}: unknown line type {kind!r}")
            part, line_seq = obj.get("part"), obj.get("seq")
            if type(part) is not int or type(line_seq) is not int:
                return fail(number, f"line {number}: part or seq is not a whole number — the line was edited")
            if part != current:
                if current is not None and part <= current:
                    return fail(number, f"{where(number, part)}: comes after partition {current} — partitions "
                                        "were reordered, or a line was moved between partitions")
                if parts:
                    parts[-1].head = prev
                for empty in range((current + 1) if current is not None else 0, part):
                    parts.append(_Part(empty, number, number - 1, 0, start))  # an empty partition has no lines
                parts.append(_Part(part, number, number))
                prev, seq = start, 0
            if line_seq != seq:
                cause = ("a line was deleted or reordered before it" if line_seq > seq
                         else "a line was inserted (or duplicated) or reordered before it")
                return fail(number, f"{where(number, part)}: expected seq {seq} in partition {part}, found "
                                    f"{line_seq} — {cause}")
            if obj.get("prev") != prev:
                if seq == 0:
                    return fail(number, f"{where(number, part)}: the partition's first line does not start from "
                                        "the header's hash — the header was changed, or lines were moved")
                return fail(number, f"{where(number, part)}: prev does not match the hash of line {number - 1} — "
                                    f"line {number - 1} was changed (and its hash recomputed), or a line was "
                                    "removed or inserted there")
            prev, seq = obj["hash"], seq + 1
            parts[-1].entries, parts[-1].last_line = seq, number
            entries += 1
    if number == 0:
        return fail(1, "line 1: the file is empty — no header (the log was truncated or never written)")
    if footer is None:
        return fail(number + 1, f"line {number + 1}: log ends without a footer — it was truncated after line "
                                f"{number}")
    recorded = footer.get("partitions")
    if not isinstance(recorded, list) or not all(isinstance(r, dict) for r in recorded):
        return fail(number, f"line {number}: the footer has no table of partition heads")
    if len(recorded) < len(parts):
        return fail(number, f"line {number}: the footer records {len(recorded)} partitions, but the log has "
                            f"{len(parts)} — lines of partition {len(recorded)} were added")
    for k in range(len(parts), len(recorded)):  # trailing empty partitions have no lines
        parts.append(_Part(k, number, number - 1, 0, start))
    for part, rec in zip(parts, recorded):
        if rec.get("entries") != part.entries or rec.get("head") != part.head:
            lines = (f"lines {part.first_line}–{part.last_line}" if part.entries else "no lines")
            return fail(part.last_line if part.entries else number,
                        f"partition {part.partition} ({lines}): its chain has {part.entries} entries ending in "
                        f"{part.head[:16]}…, but the footer records {rec.get('entries')!r} entries ending in "
                        f"{str(rec.get('head'))[:16]}… — lines of partition {part.partition} were removed, added "
                        "or re-chained")
    root = root_of([PartitionHead(p.partition, p.entries, p.head) for p in parts])
    if footer.get("merkle_root") != root or footer.get("prev") != root:
        return fail(number, f"line {number}: the footer's Merkle root is not the root of the partition heads — "
                            "the footer was edited")
    if type(footer.get("entries")) is not int or footer["entries"] != entries or footer.get("seq") != entries + 1:
        return fail(number, f"line {number}: the footer counts {footer.get('entries')!r} entries, but the log "
                            f"has {entries}")
    head = footer["hash"]
    if expected_head is not None and head != expected_head.strip().lower():
        return fail(number, f"head hash {head} is not the expected {expected_head.strip()} — "
                            "the log was rewritten, or this is a different run's log")
    if output is not None:
        recorded_sha = footer.get("output_sha256")
        if not isinstance(recorded_sha, str):
            return fail(number, f"line {number}: the footer records no output_sha256 to check the output against")
        actual = sha256_path(output)
        if actual != recorded_sha:
            return fail(number, f"output file does not match the log: sha256 {actual} expected {recorded_sha}")
    return VerifyResult(True, head, entries, header, footer)
