"""The consent stage over files: stream posts, decide, write kept rows and the audit log.

Both outputs are written to temporary files and published together only when every
post has been decided, so an error half-way (a duplicate post id, a bad file) leaves
neither a partial corpus nor a log that describes a corpus which does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping, Sequence

from . import __version__
from .audit import AuditWriter, public_key_path, sign_head, signature_path
from .consent import (
    CONSENT_REQUIRED,
    POLICY,
    POST_KEY_COLUMNS,
    ConsentCounts,
    ConsentPolicy,
    DuplicatePostIds,
    Reason,
    decide_batch,
    parse_consent_records,
    unmatched_forums,
)
from .hashing import sha256_path
from .io import DEFAULT_BATCH_SIZE, OutputSet, open_table, read_table
from .pseudonym import PseudonymKey, Pseudonymizer
from .signing import SigningKey, resolve_signing_key
from .summary import text_table
from .timestamps import iso, now_utc


@dataclass
class ConsentRunSummary:
    counts: ConsentCounts
    as_of: datetime
    output: Path
    audit: Path
    audit_head: str
    output_sha256: str
    key: PseudonymKey
    unmatched_forums: list[str]
    signing_key: SigningKey | None = None
    signature: Path | None = None
    public_key: Path | None = None

    def as_dict(self) -> dict:
        return {
            **self.counts.as_dict(),
            "as_of": iso(self.as_of),
            "audit_head": self.audit_head,
            "signing_key": self.signing_key.fingerprint if self.signing_key else None,
            "output_sha256": self.output_sha256,
            "key_id": self.key.key_id,
            "consent_forums_without_posts": self.unmatched_forums,
        }

    def unmatched_forums_warning(self) -> str:
        """Shown even with --quiet: a misspelt forum in an opt-out excludes only look-alikes."""
        return ("Warning: consent records name forums that no post belongs to (a typo? such records never "
                "keep a post): " + ", ".join(self.unmatched_forums))

    def render(self, warnings: bool = True) -> str:
        """The end-of-run summary a data steward reads: totals, reasons, forums, head hash
        (and the unmatched-forum warning, unless ``warnings`` is False: shown elsewhere)."""
        counts = self.counts
        lines = [
            f"Consent as of {iso(self.as_of)}: {counts.total:,} posts -> "
            f"{counts.kept:,} kept, {counts.excluded:,} excluded",
            "",
            text_table(["reason", "posts"], [[r.value, counts.by_reason[r.value]] for r in Reason]),
            "",
            text_table(
                ["forum", "posts", "kept", "excluded"],
                [
                    [forum or "(missing)", sum(c.values()), c[Reason.OPTED_IN.value],
                     sum(c.values()) - c[Reason.OPTED_IN.value]]
                    for forum, c in sorted(counts.by_forum.items())
                ],
            ),
            "",
        ]
        if self.unmatched_forums and warnings:
            lines.append(self.unmatched_forums_warning())
        lines += [
            f"Output:     {self.output} (sha256 {self.output_sha256[:16]}…)",
            f"Audit log:  {self.audit}",
            f"Audit head: {self.audit_head}",
            "  (record the head elsewhere; `postkit audit verify LOG --expect-head HEAD` checks it)",
        ]
        if self.signing_key is not None:
            lines += [
                f"Signature:  {self.signature} (Ed25519, key {self.signing_key.fingerprint})",
                f"Public key: {self.public_key} — reviewers check the log against their own copy of it:",
                f"  postkit audit verify {self.audit} --public-key STEWARD.pub",
            ]
        return "\n".join(lines)


def filter_consent_files(
    posts: str | Path,
    consent: str | Path,
    output: str | Path,
    audit: str | Path,
    key: PseudonymKey,
    *,
    as_of: datetime | None = None,
    column_map: Mapping[str, str] | Sequence[str] | None = None,
    consent_column_map: Mapping[str, str] | Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
    signing_key: SigningKey | None = None,
    before_publish: Callable[[], object] | None = None,
    ignore_later_withdrawals: bool = False,
    engine: object | None = None,
) -> ConsentRunSummary:
    """Keep only consented posts of ``posts`` in ``output``; log every decision to ``audit``.

    ``on_progress`` receives the bytes (CSV/JSONL) or rows (Parquet/datasets) read since
    its last call; ``open_table(posts).progress_unit`` / ``progress_total`` size a bar.

    The log's head is signed with ``signing_key`` (default: the steward's key in the key
    folder, created on first use); ``<audit>.sig`` and ``<audit stem>.pub`` are published
    with the output and the log. ``before_publish`` runs once everything is written and
    before anything is published (e.g. ``key.persist`` for a newly generated pseudonym key).

    Opt-outs and withdrawals recorded after ``as_of`` and before the run still exclude
    (WITHDRAWN_LATER) unless ``ignore_later_withdrawals``, which reproduces a run made
    before they were recorded and is written in the log's header.

    ``engine`` (a :mod:`postkit.engine` engine other than local, e.g. Dask) decides the
    partitions in parallel: the same kept rows and decisions, and a log of one chain per
    partition under a signed Merkle root (:mod:`postkit.audit_merkle`).
    """
    if engine is not None and getattr(engine, "name", "local") != "local":
        from .engine.consent_stage import filter_consent_partitioned

        return filter_consent_partitioned(
            posts, consent, output, audit, key, engine, as_of=as_of, column_map=column_map,
            consent_column_map=consent_column_map, batch_size=batch_size, on_progress=on_progress,
            signing_key=signing_key, before_publish=before_publish, ignore_later_withdrawals=ignore_later_withdrawals)
    posts, consent, output, audit = Path(posts), Path(consent), Path(output), Path(audit)
    signing_key = signing_key or resolve_signing_key(outputs=[output, audit])
    as_of = as_of or now_utc()
    reader = open_table(posts, batch_size=batch_size, column_map=column_map, required=POST_KEY_COLUMNS)
    consent_frame = read_table(consent, column_map=consent_column_map, required=CONSENT_REQUIRED,
                               mapping_option="--consent-column")
    run_at = now_utc()
    policy = ConsentPolicy(parse_consent_records(consent_frame, consent), as_of,
                           withdrawals_until=None if ignore_later_withdrawals else run_at)
    pseudonymize = Pseudonymizer(key)
    counts = ConsentCounts()
    duplicates = DuplicatePostIds(posts)

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
    }
    with OutputSet(inputs=[posts, consent]) as outputs:
        writer = outputs.table(output, schema_hint=reader.schema)
        _, audit_temp = outputs.file(audit)
        signature, signature_temp = outputs.file(signature_path(audit))
        public_key, public_key_temp = outputs.file(public_key_path(audit))
        with open(audit_temp, "wb") as handle:
            log = AuditWriter(handle, header)
            for frame in reader.batches(on_progress):
                decided = decide_batch(frame, policy, pseudonymize, counts, duplicates)
                writer.write(frame[decided.kept_mask])
                log.write_entries(decided.entries)
            if writer.columns is None:
                writer.set_empty_columns(reader.columns)
            output_sha256 = sha256_path(writer.finish())
            head = log.close(
                {
                    "counts": counts.as_dict(),
                    "output": {"path": output.name, "sha256": output_sha256},
                    "output_sha256": output_sha256,
                    # Known only once every post was read, so here rather than in the header.
                    "consent_forums_without_posts": unmatched_forums(policy, counts),
                }
            )
        signature_temp.write_text(sign_head(signing_key, head), encoding="utf-8")
        public_key_temp.write_bytes(signing_key.public_pem())
        signing_key.persist()  # a new key is saved only now, when every input has been read and decided
        if before_publish is not None:
            before_publish()
    return ConsentRunSummary(
        counts=counts,
        as_of=as_of,
        output=output,
        audit=audit,
        audit_head=head,
        output_sha256=output_sha256,
        key=key,
        unmatched_forums=unmatched_forums(policy, counts),
        signing_key=signing_key,
        signature=signature,
        public_key=public_key,
    )
