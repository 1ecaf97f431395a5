"""Consent as partition functions: one decision per (user, forum), joined to the posts.

Why: deciding post by post repeats the same policy work for every post of a user in a
forum, and ties the run to one process. Here each partition is reduced to its distinct
(user_id, forum) pairs (vectorised with ``pandas.factorize``), each pair is decided once
by the unchanged :class:`~postkit.consent.ConsentPolicy`, and the decisions are joined
back to the posts with array indexing — no Python loop per post for the decision. The
only per-post work left is writing each post's audit line, which runs on the workers.

The results equal :func:`postkit.consent.decide_batch`'s post for post (reason, deciding
records, pseudonym, forum label). Cells that are not all text (numbers from JSON, nulls
that are not NaN) are decided cell by cell exactly as the local run decides them, so odd
inputs take the slow path rather than a different one. Duplicate post ids are found across
partitions from 128-bit hashes of the normalised ids.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from .. import __version__
from ..audit import public_key_path, sign_head, signature_path
from ..audit_merkle import PartitionedAuditWriter, PartitionHead, write_partition
from ..consent import (
    CONSENT_REQUIRED,
    POLICY,
    POST_KEY_COLUMNS,
    ConsentCounts,
    ConsentPolicy,
    ConsentRecord,
    Decision,
    Reason,
    normalise_forum,
    parse_consent_records,
    unmatched_forums,
)
from ..errors import PostkitError
from ..hashing import sha256_path
from ..identity import clean_id
from ..io import DEFAULT_BATCH_SIZE, OutputSet, new_temp_beside, open_table, read_table
from ..pseudonym import PseudonymKey, Pseudonymizer
from ..signing import SigningKey, resolve_signing_key
from ..timestamps import is_blank, iso, now_utc
from .base import Engine, LocalEngine

_INVALID = Decision(Reason.INVALID_POST)
_HASH_KEYS = ("postkit-dup-id-a", "postkit-dup-id-b")  # two 64-bit hashes: a 128-bit fingerprint
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(ConsentRecord))


class PolicyParcel:
    """A consent policy as workers receive it: the records as columns, rebuilt once per worker.

    Why: a :class:`ConsentPolicy` over 200,000 records pickles to ~25 MB of small objects
    and takes seconds each way; plain columns of text and times travel in a fraction of
    that. Each worker rebuilds the policy on first use and keeps it (and its cache of
    decisions) for every partition it decides.
    """

    def __init__(self, records: Sequence[ConsentRecord], as_of: datetime, withdrawals_until: datetime | None) -> None:
        self.columns = {name: [getattr(r, name) for r in records] for name in _RECORD_FIELDS}
        self.as_of = as_of
        self.withdrawals_until = withdrawals_until
        self._policy: ConsentPolicy | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"columns": self.columns, "as_of": self.as_of, "withdrawals_until": self.withdrawals_until}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._policy = None
        self._lock = threading.Lock()

    def policy(self) -> ConsentPolicy:
        with self._lock:
            if self._policy is None:
                records = [ConsentRecord(*values) for values in zip(*(self.columns[f] for f in _RECORD_FIELDS))]
                self._policy = ConsentPolicy(records, self.as_of, withdrawals_until=self.withdrawals_until)
            return self._policy


def _objects(values: Sequence[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # (np.array would split list cells into dimensions)
        array[i] = value
    return array


def _is_text(values: np.ndarray) -> bool:
    """Every non-null cell is a str (then equal cells decide alike and factorize is exact)."""
    return infer_dtype(values, skipna=True) in ("string", "empty")


def map_unique(values: np.ndarray, fn: Callable[[Any], Any]) -> np.ndarray:
    """``fn`` per cell, computed once per distinct text value; nulls and non-text cell by cell."""
    if not _is_text(values):
        return _objects([fn(v) for v in values])
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = _objects([fn(u) for u in uniques] + [None])
    out = mapped[codes]  # code -1 (a null) picks the placeholder, replaced just below
    for i in np.flatnonzero(codes == -1):
        out[i] = fn(values[i])
    return out


def clean_post_ids(values: np.ndarray) -> np.ndarray:
    """:func:`postkit.identity.clean_id` of every cell; ASCII text (nearly every id) vectorised."""
    if not _is_text(values) or not len(values):
        return _objects([clean_id(v) for v in values])
    series = pd.Series(values, dtype=object)
    fast = series.str.isascii().fillna(False).to_numpy(dtype=bool)
    stripped = series.str.strip().to_numpy(dtype=object)
    out = np.where(fast & (stripped != ""), stripped, None).astype(object)
    for i in np.flatnonzero(~fast):
        out[i] = clean_id(values[i])
    return out


def decide_frame(frame: pd.DataFrame, policy: ConsentPolicy, post_ids: np.ndarray) -> tuple[np.ndarray, list[Decision]]:
    """(per-post index into the decisions, the decisions): one ``policy.decide`` per distinct pair."""
    decisions: list[Decision] = [_INVALID]
    codes = np.zeros(len(frame), dtype=np.int64)
    users = frame["user_id"].to_numpy(dtype=object)
    forums = frame["forum"].to_numpy(dtype=object)
    valid = pd.notna(post_ids)
    one_by_one = np.zeros(len(frame), dtype=bool)
    if _is_text(users) and _is_text(forums):
        nulls = pd.isna(users) | pd.isna(forums)
        pairs = valid & ~nulls
        one_by_one = valid & nulls
        if pairs.any():
            ucodes, uniq_users = pd.factorize(users[pairs])
            fcodes, uniq_forums = pd.factorize(forums[pairs])
            pcodes, uniq_pairs = pd.factorize(ucodes.astype(np.int64) * len(uniq_forums) + fcodes)
            offset = len(decisions)
            width = len(uniq_forums)
            decisions += [policy.decide(uniq_users[p // width], uniq_forums[p % width]) for p in uniq_pairs]
            codes[pairs] = pcodes + offset
    else:
        one_by_one = valid
    for i in np.flatnonzero(one_by_one):  # exactly the local run's call, cell by cell
        codes[i] = len(decisions)
        decisions.append(policy.decide(users[i], forums[i]))
    return codes, decisions


def forum_label(value: Any) -> str:
    return "" if is_blank(value) else str(value).strip()


def id_fingerprints(post_ids: np.ndarray) -> np.ndarray:
    """128-bit hashes (two uint64 columns) of normalised post ids, for duplicate detection."""
    if not len(post_ids):
        return np.zeros((0, 2), dtype=np.uint64)
    return np.stack([pd.util.hash_array(post_ids.astype(object), hash_key=key) for key in _HASH_KEYS], axis=1)


@dataclass
class ConsentPart:
    """What a worker sends back for one partition: kept rows, counts, id hashes, its chain's head."""

    part: int
    kept: pd.DataFrame
    counts: ConsentCounts
    fingerprints: np.ndarray
    rows: np.ndarray
    head: PartitionHead
    audit_file: str
    reasons: list[str] = field(default_factory=list)


def consent_counts(labels: np.ndarray, reasons: np.ndarray) -> ConsentCounts:
    counts = ConsentCounts()
    counts.total = len(labels)
    if len(labels):
        sizes = pd.DataFrame({"forum": labels, "reason": reasons}).groupby(["forum", "reason"], sort=False).size()
        for (label, reason), n in sizes.items():
            counts.by_reason[reason] += int(n)
            counts.by_forum[label][reason] += int(n)
        counts.forums_seen = {normalise_forum(label) for label in pd.unique(labels) if label}
    return counts


def merge_counts(total: ConsentCounts, part: ConsentCounts) -> None:
    total.total += part.total
    total.by_reason.update(part.by_reason)
    for label, counter in part.by_forum.items():
        total.by_forum[label].update(counter)
    total.forums_seen |= part.forums_seen


def consent_partition(frame: pd.DataFrame, *, part: int, policy: ConsentPolicy | PolicyParcel,
                      pseudonymize: Callable[[str], str] | None, start: str, scratch: str) -> ConsentPart:
    """Decide one partition and write its audit chain to ``scratch`` (runs on a worker)."""
    if isinstance(policy, PolicyParcel):
        policy = policy.policy()
    post_ids = clean_post_ids(frame["post_id"].to_numpy(dtype=object))
    codes, decisions = decide_frame(frame, policy, post_ids)
    kept_of = np.array([d.kept for d in decisions], dtype=bool)
    reason_of = _objects([d.reason.value for d in decisions])
    audit_of: dict[int, dict[str, Any]] = {}  # one audit form per consent record, as decide_batch does
    records_of = [[audit_of[r.row] if r.row in audit_of else audit_of.setdefault(r.row, r.for_audit())
                   for r in d.records] for d in decisions]
    kept = kept_of[codes]
    reasons = reason_of[codes]
    labels = map_unique(frame["forum"].to_numpy(dtype=object), forum_label)

    def pseudonym(value: Any) -> str | None:
        user = clean_id(value)
        return pseudonymize(user) if (pseudonymize and user is not None) else None

    users = map_unique(frame["user_id"].to_numpy(dtype=object), pseudonym)
    rows = frame.index.to_numpy(dtype=np.int64) + 1
    entries = (
        {"row": int(row), "post_id": pid, "forum": label or None, "user": user,
         "decision": "kept" if keep else "excluded", "reason": reason, "records": records_of[code]}
        for row, pid, label, user, keep, reason, code in zip(
            rows.tolist(), post_ids.tolist(), labels.tolist(), users.tolist(), kept.tolist(), reasons.tolist(),
            codes.tolist())
    )
    audit_file = str(Path(scratch) / f"part-{part:08d}.jsonl")
    head = write_partition(audit_file, entries, part, start)
    valid = pd.notna(post_ids)
    return ConsentPart(part, frame[kept], consent_counts(labels, reasons), id_fingerprints(post_ids[valid]),
                       rows[valid], head, audit_file)


def first_duplicate(fingerprints: Sequence[np.ndarray], rows: Sequence[np.ndarray]) -> tuple[int, int] | None:
    """(first row, repeating row) of the earliest post id seen twice, in input order, or None."""
    if not fingerprints:
        return None
    ids = np.concatenate(fingerprints)
    where = np.concatenate(rows)
    if len(ids) < 2:
        return None
    order = np.lexsort((where, ids[:, 1], ids[:, 0]))
    ids, where = ids[order], where[order]
    same = np.all(ids[1:] == ids[:-1], axis=1)
    if not same.any():
        return None
    repeats = np.flatnonzero(same) + 1
    at = repeats[np.argmin(where[repeats])]
    start = at
    while start > 0 and same[start - 1]:
        start -= 1
    return int(where[start]), int(where[at])


def filter_consent_partitioned(
    posts: str | Path,
    consent: str | Path,
    output: str | Path,
    audit: str | Path,
    key: PseudonymKey,
    engine: Engine,
    *,
    as_of: datetime | None = None,
    column_map: Mapping[str, str] | Sequence[str] | None = None,
    consent_column_map: Mapping[str, str] | Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
    signing_key: SigningKey | None = None,
    before_publish: Callable[[], object] | None = None,
    ignore_later_withdrawals: bool = False,
):
    """:func:`postkit.consent_filter.filter_consent_files` on an engine; the log is partitioned.

    Same inputs, same kept rows in the same order, the same decision for every post; the
    audit log holds one chain per partition under a signed Merkle root
    (:mod:`postkit.audit_merkle`).
    """
    from ..consent_filter import ConsentRunSummary

    posts, consent, output, audit = Path(posts), Path(consent), Path(output), Path(audit)
    signing_key = signing_key or resolve_signing_key(outputs=[output, audit])
    as_of = as_of or now_utc()
    reader = open_table(posts, batch_size=batch_size, column_map=column_map, required=POST_KEY_COLUMNS)
    consent_frame = read_table(consent, column_map=consent_column_map, required=CONSENT_REQUIRED,
                               mapping_option="--consent-column")
    run_at = now_utc()
    records = parse_consent_records(consent_frame, consent)
    until = None if ignore_later_withdrawals else run_at
    policy = ConsentPolicy(records, as_of, withdrawals_until=until)  # here: for the forums no post belongs to
    parcel = PolicyParcel(records, as_of, until)
    del consent_frame, records
    counts = ConsentCounts()
    header = {
        "postkit_version": __version__,
        "created_at": iso(run_at),
        "as_of": iso(as_of),
        "ignore_later_withdrawals": ignore_later_withdrawals,
        "policy": POLICY,
        "inputs": {
            "posts": {"path": posts.name, "sha256": sha256_path(posts)},
            "consent": {"path": consent.name, "sha256": sha256_path(consent)},
        },
        "key_id": key.key_id,
        # The partitions are batches of this many posts, whichever engine or how many workers
        # decide them: the same inputs, time and keys give the same log, byte for byte.
        "partition_rows": batch_size,
    }
    fingerprints: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    with OutputSet(inputs=[posts, consent]) as outputs:
        writer = outputs.table(output, schema_hint=reader.schema)
        _, audit_temp = outputs.file(audit)
        signature, signature_temp = outputs.file(signature_path(audit))
        public_key, public_key_temp = outputs.file(public_key_path(audit))
        scratch = new_temp_beside(audit, folder=True)
        try:
            with open(audit_temp, "wb") as handle:
                log = PartitionedAuditWriter(handle, header)
                in_process = isinstance(engine, LocalEngine)  # nothing to ship: use the policy built here
                shared = {"policy": policy if in_process else parcel, "pseudonymize": Pseudonymizer(key),
                          "start": log.header_hash,
                          "scratch": str(scratch)}
                for result in engine.map_partitions(consent_partition, reader.batches(on_progress), shared=shared):
                    writer.write(result.kept)
                    log.append(result.head, result.audit_file)
                    Path(result.audit_file).unlink()
                    merge_counts(counts, result.counts)
                    fingerprints.append(result.fingerprints)
                    rows.append(result.rows)
                duplicate = first_duplicate(fingerprints, rows)
                if duplicate is not None:
                    raise PostkitError(f"duplicate post_id (first seen at row {duplicate[0]}), nothing was written",
                                       path=posts, row=duplicate[1], column="post_id",
                                       fix="post ids must be unique; remove or renumber the duplicate")
                del fingerprints[:], rows[:]
                if writer.columns is None:
                    writer.set_empty_columns(reader.columns)
                output_sha256 = sha256_path(writer.finish())
                head = log.close(
                    {
                        "counts": counts.as_dict(),
                        "output": {"path": output.name, "sha256": output_sha256},
                        "output_sha256": output_sha256,
                        "consent_forums_without_posts": unmatched_forums(policy, counts),
                    }
                )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        signature_temp.write_text(sign_head(signing_key, head), encoding="utf-8")
        public_key_temp.write_bytes(signing_key.public_pem())
        signing_key.persist()
        if before_publish is not None:
            before_publish()
    return ConsentRunSummary(
        counts=counts, as_of=as_of, output=output, audit=audit, audit_head=head, output_sha256=output_sha256,
        key=key, unmatched_forums=unmatched_forums(policy, counts), signing_key=signing_key,
        signature=signature, public_key=public_key,
    )
