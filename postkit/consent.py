"""Consent records → a keep/exclude decision, with a reason, for every post.

Policy ("latest applicable record"): a post by user U in forum F is kept only when,
among U's consent records for F or for every forum (``*``) recorded at or before the
as-of time, the latest one is an opt-in that has not expired. Everything else is
excluded with the reason a reviewer needs:

========== ==========================================================
OPTED_IN   kept: the deciding record is an unexpired opt-in
NO_RECORD  no record for this user applies to this forum
OPTED_OUT  the deciding record is an opt-out
WITHDRAWN  the deciding record is a withdrawal (covers past posts too)
CONFLICT   records with the same latest timestamp disagree
NOT_YET    records exist but all are later than the as-of time
EXPIRED    the deciding opt-in had expired at the as-of time
INVALID_POST the post lacks a post_id, user_id or forum
========== ==========================================================

Fail closed: an unreadable consent row stops the run (it could be an opt-out), forum
names match case-insensitively (a record for "robin" still covers "Robin"), and an
expiry on an opt-out or withdrawal is ignored (it never turns exclusion into consent).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from .errors import PostkitError
from .timestamps import is_blank, iso, parse_timestamp

CONSENT_REQUIRED = ("user_id", "status", "recorded_at")
CONSENT_OPTIONAL = ("forum", "expires_at", "notice_version", "source")
POST_KEY_COLUMNS = ("post_id", "user_id", "forum")
STATUSES = ("opt_in", "opt_out", "withdrawn")
ALL_FORUMS = "*"
POLICY = {
    "name": "latest-applicable-record",
    "version": 1,
    "rule": "keep a post only if the latest consent record at or before as_of that covers "
    "the post's user and forum (or '*') is an unexpired opt_in",
    "naive_timestamps": "UTC",
    "forum_match": "case-insensitive, surrounding whitespace ignored; empty or '*' = every forum",
    "user_match": "exact after trimming surrounding whitespace",
    "ties": "records at the same latest time that disagree exclude the post (CONFLICT)",
}


class Reason(str, Enum):
    OPTED_IN = "OPTED_IN"
    NO_RECORD = "NO_RECORD"
    OPTED_OUT = "OPTED_OUT"
    WITHDRAWN = "WITHDRAWN"
    CONFLICT = "CONFLICT"
    NOT_YET = "NOT_YET"
    EXPIRED = "EXPIRED"
    INVALID_POST = "INVALID_POST"


_STATUS_REASON = {"opt_in": Reason.OPTED_IN, "opt_out": Reason.OPTED_OUT, "withdrawn": Reason.WITHDRAWN}


def normalise_status(value: Any) -> str | None:
    """``Opt-In`` / ``OPT_IN`` / `` opt_in `` → ``opt_in``; anything else → None."""
    if not isinstance(value, str):
        return None
    status = value.strip().lower().replace("-", "_")
    return status if status in STATUSES else None


def normalise_forum(value: Any) -> str:
    if is_blank(value):
        return ALL_FORUMS
    text = str(value).strip()
    return ALL_FORUMS if text == ALL_FORUMS else text.casefold()


def clean_id(value: Any) -> str | None:
    """Ids compare as trimmed text (case matters); blank → None."""
    if is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


@dataclass(frozen=True)
class ConsentRecord:
    row: int  # 1-based record number in the consent file (header not counted)
    user_id: str
    status: str
    recorded_at: datetime
    forum: str  # normalised: "*" or a casefolded name
    forum_label: str
    expires_at: datetime | None = None
    notice_version: str | None = None
    source: str | None = None

    def for_audit(self) -> dict[str, Any]:
        """What a reviewer needs to find and read the record — never the raw user id."""
        return {
            "row": self.row,
            "status": self.status,
            "recorded_at": iso(self.recorded_at),
            "forum": self.forum_label,
            "expires_at": iso(self.expires_at) if self.expires_at else None,
            "notice_version": self.notice_version,
            "source": self.source,
        }


@dataclass(frozen=True)
class Decision:
    reason: Reason
    records: tuple[ConsentRecord, ...] = ()

    @property
    def kept(self) -> bool:
        return self.reason is Reason.OPTED_IN


def _optional_text(value: Any) -> str | None:
    return None if is_blank(value) else str(value).strip()


def parse_consent_records(frame: pd.DataFrame, path: str | Path = "consent") -> list[ConsentRecord]:
    """Validate every consent row; any invalid row stops everything (fail closed)."""
    missing = [c for c in CONSENT_REQUIRED if c not in frame.columns]
    if missing:
        from .io import require_columns

        require_columns(list(frame.columns), CONSENT_REQUIRED, path)
    records: list[ConsentRecord] = []
    problems: list[str] = []
    columns = {c: frame[c].tolist() if c in frame.columns else [None] * len(frame)
               for c in CONSENT_REQUIRED + CONSENT_OPTIONAL}
    for position, index in enumerate(frame.index):
        row = int(index) + 1
        user = clean_id(columns["user_id"][position])
        raw_status = columns["status"][position]
        status = normalise_status(raw_status)
        errors = []
        if user is None:
            errors.append("column 'user_id': missing user id — every consent record needs one")
        if status is None:
            shown = "" if is_blank(raw_status) else str(raw_status)
            errors.append(f"column 'status': unknown status '{shown}' — use opt_in, opt_out or withdrawn")
        recorded = expires = None
        try:
            recorded = parse_timestamp(columns["recorded_at"][position])
        except ValueError as exc:
            errors.append(f"column 'recorded_at': {exc} — use e.g. 2024-03-01T12:00:00Z")
        if not is_blank(columns["expires_at"][position]):
            try:
                expires = parse_timestamp(columns["expires_at"][position])
            except ValueError as exc:
                errors.append(f"column 'expires_at': {exc} — use ISO 8601 or leave it empty")
        if recorded is not None and expires is not None and expires < recorded:
            errors.append("column 'expires_at': expires before it was recorded — check both dates")
        if errors:
            problems.extend(f"row {row}, {error}" for error in errors)
            continue
        forum_value = columns["forum"][position]
        records.append(
            ConsentRecord(
                row=row,
                user_id=user,  # type: ignore[arg-type]
                status=status,  # type: ignore[arg-type]
                recorded_at=recorded,  # type: ignore[arg-type]
                forum=normalise_forum(forum_value),
                forum_label=ALL_FORUMS if is_blank(forum_value) else str(forum_value).strip(),
                expires_at=expires,
                notice_version=_optional_text(columns["notice_version"][position]),
                source=_optional_text(columns["source"][position]),
            )
        )
    if problems:
        count = len(problems)
        raise PostkitError(
            f"{count} problem{'s' if count > 1 else ''} in consent records, nothing was written "
            f"(first: {problems[0]})",
            path=path,
            fix="fix every listed row and rerun; consent is never guessed",
            details=problems,
        )
    return records


class ConsentPolicy:
    """Decides posts against a fixed set of records at a fixed as-of time."""

    def __init__(self, records: Iterable[ConsentRecord], as_of: datetime) -> None:
        self.as_of = as_of
        self.records_by_user: dict[str, list[ConsentRecord]] = defaultdict(list)
        for record in records:
            self.records_by_user[record.user_id].append(record)
        self.forums_in_records = {
            r.forum for rs in self.records_by_user.values() for r in rs if r.forum != ALL_FORUMS
        }
        self._cache: dict[tuple[str, str], Decision] = {}

    def decide(self, user_id: Any, forum: Any) -> Decision:
        user = clean_id(user_id)
        if user is None or is_blank(forum):
            return Decision(Reason.INVALID_POST)
        key = (user, normalise_forum(forum))
        decision = self._cache.get(key)
        if decision is None:
            decision = self._decide(*key)
            self._cache[key] = decision
        return decision

    def _decide(self, user: str, forum: str) -> Decision:
        applicable = [r for r in self.records_by_user.get(user, ()) if r.forum in (forum, ALL_FORUMS)]
        if not applicable:
            return Decision(Reason.NO_RECORD)
        past = [r for r in applicable if r.recorded_at <= self.as_of]
        if not past:
            first = min(applicable, key=lambda r: (r.recorded_at, r.row))
            return Decision(Reason.NOT_YET, (first,))
        latest_time = max(r.recorded_at for r in past)
        latest = tuple(sorted((r for r in past if r.recorded_at == latest_time), key=lambda r: r.row))
        statuses = {r.status for r in latest}
        if len(statuses) > 1:
            return Decision(Reason.CONFLICT, latest)
        status = statuses.pop()
        if status == "opt_in":
            expiries = [r.expires_at for r in latest if r.expires_at is not None]
            if expiries and min(expiries) <= self.as_of:
                return Decision(Reason.EXPIRED, latest)
        return Decision(_STATUS_REASON[status], latest)


@dataclass
class ConsentCounts:
    """Running totals for the summary and the audit footer."""

    total: int = 0
    by_reason: Counter = field(default_factory=Counter)
    by_forum: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    forums_seen: set[str] = field(default_factory=set)

    @property
    def kept(self) -> int:
        return self.by_reason[Reason.OPTED_IN.value]

    @property
    def excluded(self) -> int:
        return self.total - self.kept

    def add(self, forum_label: str, reason: Reason) -> None:
        self.total += 1
        self.by_reason[reason.value] += 1
        self.by_forum[forum_label][reason.value] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "posts": self.total,
            "kept": self.kept,
            "excluded": self.excluded,
            "by_reason": {r.value: self.by_reason[r.value] for r in Reason},
            "by_forum": {
                forum: {"kept": c[Reason.OPTED_IN.value], "excluded": sum(c.values()) - c[Reason.OPTED_IN.value]}
                for forum, c in sorted(self.by_forum.items())
            },
        }


class DuplicatePostIds:
    """Remembers post ids across batches; a repeat stops the run (decisions would be ambiguous)."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self._first_row: dict[str, int] = {}

    def check(self, post_id: str, row: int) -> None:
        first = self._first_row.setdefault(post_id, row)
        if first != row:
            raise PostkitError(
                f"duplicate post_id '{post_id}' (first seen at row {first}), nothing was written",
                path=self.path,
                row=row,
                column="post_id",
                fix="post ids must be unique; remove or renumber the duplicate",
            )


@dataclass
class BatchDecisions:
    kept_mask: list[bool]
    entries: list[dict[str, Any]]


def decide_batch(
    frame: pd.DataFrame,
    policy: ConsentPolicy,
    pseudonymize: Callable[[str], str] | None,
    counts: ConsentCounts,
    duplicates: DuplicatePostIds,
) -> BatchDecisions:
    """Decide every post of one batch; returns the keep mask and one audit entry per post."""
    kept_mask: list[bool] = []
    entries: list[dict[str, Any]] = []
    record_cache: dict[int, dict[str, Any]] = {}
    rows = frame.index.tolist()
    for row, post_id, user_id, forum in zip(
        rows, frame["post_id"].tolist(), frame["user_id"].tolist(), frame["forum"].tolist()
    ):
        pid = clean_id(post_id)
        if pid is not None:
            duplicates.check(pid, int(row) + 1)
        decision = policy.decide(user_id, forum) if pid is not None else Decision(Reason.INVALID_POST)
        user = clean_id(user_id)
        forum_label = "" if is_blank(forum) else str(forum).strip()
        counts.add(forum_label, decision.reason)
        if forum_label:
            counts.forums_seen.add(normalise_forum(forum_label))
        kept_mask.append(decision.kept)
        records = []
        for record in decision.records:
            audit = record_cache.get(record.row)
            if audit is None:
                audit = record_cache[record.row] = record.for_audit()
            records.append(audit)
        entries.append(
            {
                "row": int(row) + 1,
                "post_id": pid,
                "forum": forum_label or None,
                "user": pseudonymize(user) if (pseudonymize and user is not None) else None,
                "decision": "kept" if decision.kept else "excluded",
                "reason": decision.reason.value,
                "records": records,
            }
        )
    return BatchDecisions(kept_mask, entries)


@dataclass
class ConsentResult:
    """In-memory result: the kept rows (all columns, input order) and every decision."""

    kept: pd.DataFrame
    decisions: pd.DataFrame
    counts: ConsentCounts


def filter_posts(
    posts: pd.DataFrame,
    consent: pd.DataFrame | Sequence[ConsentRecord],
    as_of: datetime | str,
    *,
    pseudonymize: Callable[[str], str] | None = None,
) -> ConsentResult:
    """Library entry point for data already in memory.

    ``decisions`` has one row per post: ``row, post_id, forum, user, decision,
    reason, records`` (``user`` is the pseudonym when ``pseudonymize`` is given,
    otherwise the raw user id — it is the caller's own data).
    """
    from .io import require_columns

    require_columns(list(posts.columns), POST_KEY_COLUMNS, "posts")
    moment = parse_timestamp(as_of) if isinstance(as_of, str) else as_of
    records = consent if not isinstance(consent, pd.DataFrame) else parse_consent_records(consent)
    policy = ConsentPolicy(records, moment)
    counts = ConsentCounts()
    frame = posts.reset_index(drop=True)
    result = decide_batch(frame, policy, pseudonymize or (lambda u: u), counts, DuplicatePostIds("posts"))
    kept = posts[pd.Series(result.kept_mask, index=posts.index)] if len(posts) else posts.copy()
    return ConsentResult(kept, pd.DataFrame(result.entries), counts)


def unmatched_forums(policy: ConsentPolicy, counts: ConsentCounts) -> list[str]:
    """Forums named in consent records that no post belongs to: often a typo worth a look."""
    return sorted(policy.forums_in_records - counts.forums_seen)


def records_from_mapping(rows: Iterable[Mapping[str, Any]]) -> list[ConsentRecord]:
    """Convenience for library callers holding plain dicts."""
    return parse_consent_records(pd.DataFrame(list(rows)))
