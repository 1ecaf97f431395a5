"""Consent records → a keep/exclude decision, with a reason, for every post.

Policy ("latest applicable record"): a post by user U in forum F is kept only when,
among U's consent records for F or for every forum (``*``) recorded at or before the
as-of time, the latest one is an opt-in that has not expired, no opt-out or withdrawal
was recorded after the as-of time (up to the run), and no record of a look-alike id
or forum could change that. Everything else is excluded with the reason a reviewer needs:

=============== ==========================================================
OPTED_IN        kept: the deciding record is an unexpired opt-in
NO_RECORD       no record for this user applies to this forum
OPTED_OUT       the deciding record is an opt-out
WITHDRAWN       the deciding record is a withdrawal (covers past posts too)
WITHDRAWN_LATER an opt-out or withdrawal was recorded after the as-of time, before
                the run (withdrawal wins; ``ignore_later_withdrawals`` turns this off)
CONFLICT        records with the same latest timestamp disagree
AMBIGUOUS_ID    a record for an id that differs from the author's only by case or
                look-alike characters (``ALICE``, Cyrillic ``аlice``) would exclude the
                post if it were the author's, or is the only record there is
NOT_YET         records exist but all are later than the as-of time
EXPIRED         the deciding opt-in had expired at the as-of time
INVALID_POST    the post lacks a post_id, user_id or forum
=============== ==========================================================

Fail closed:

* an unreadable consent row stops the run (it could be an opt-out), and so does a
  forum written as a word for "every forum" (``all``, ``any``…: the wildcard is ``*``);
* ids are compared after removing invisible format characters (zero-width space, BOM,
  soft hyphen, bidi marks), NFKC and trimming (:mod:`postkit.identity`): ``alice`` and
  ``alice`` + a zero-width space are the same user. Ids equal only after case folding
  or Unicode TR39 confusable folding are *look-alikes*: their records can exclude a
  post (the post is kept only if it would be kept whether or not each look-alike is
  the author) but never keep one;
* forum names match case-insensitively (a record for "robin" covers "Robin"); a forum
  name equal to the post's only after normalisation or confusable folding counts as
  that forum for exclusions, never for inclusion;
* an expiry on an opt-out or withdrawal is ignored (it never turns exclusion into consent).
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
from .identity import (
    WILDCARD,
    clean_id,
    forum_exact_key,
    forum_look_alike_keys,
    look_alike_keys,
    looks_like_wildcard,
    shown,
)
from .timestamps import is_blank, iso, now_utc, parse_timestamp

CONSENT_REQUIRED = ("user_id", "status", "recorded_at")
CONSENT_OPTIONAL = ("forum", "expires_at", "notice_version", "source")
POST_KEY_COLUMNS = ("post_id", "user_id", "forum")
STATUSES = ("opt_in", "opt_out", "withdrawn")
ALL_FORUMS = WILDCARD
POLICY = {
    "name": "latest-applicable-record",
    "version": 2,
    "rule": "keep a post only if the latest consent record at or before as_of that covers "
    "the post's user and forum (or '*') is an unexpired opt_in, no opt_out or withdrawal of "
    "that user covering that forum was recorded after as_of (up to the run's time), and no "
    "record of a look-alike id or forum could exclude it",
    "naive_timestamps": "UTC",
    "forum_match": "case-insensitive, surrounding whitespace ignored; empty or '*' = every forum; "
    "'all', 'any', 'every' and look-alikes of '*' are errors",
    "forum_look_alikes": "a forum equal to the post's only after removing format characters, NFKC "
    "or Unicode TR39 confusable folding counts as that forum for exclusions, never for inclusion",
    "user_match": "exact after removing Unicode format characters (zero-width, BOM, soft hyphen, "
    "bidi marks), NFKC and trimming surrounding whitespace",
    "user_look_alikes": "ids equal only after case folding or Unicode TR39 confusable folding "
    "(skeleton) are ambiguous: the post is kept only if it would be kept whether or not each "
    "look-alike is the author, and a look-alike's records alone never keep a post (AMBIGUOUS_ID)",
    "later_withdrawals": "an opt_out or withdrawal recorded after as_of and at or before the run's "
    "time excludes the post (WITHDRAWN_LATER), unless ignore_later_withdrawals is set",
    "ties": "records at the same latest time that disagree exclude the post (CONFLICT)",
}


class Reason(str, Enum):
    OPTED_IN = "OPTED_IN"
    NO_RECORD = "NO_RECORD"
    OPTED_OUT = "OPTED_OUT"
    WITHDRAWN = "WITHDRAWN"
    WITHDRAWN_LATER = "WITHDRAWN_LATER"
    CONFLICT = "CONFLICT"
    AMBIGUOUS_ID = "AMBIGUOUS_ID"
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
    """The exact-match key of a forum cell: ``*`` for blank or ``*``, else the casefolded name."""
    if is_blank(value):
        return ALL_FORUMS
    text = str(value).strip()
    return ALL_FORUMS if text == ALL_FORUMS else forum_exact_key(text)


@dataclass(frozen=True)
class ConsentRecord:
    row: int  # 1-based record number in the consent file (header not counted)
    user_id: str  # normalised (see postkit.identity.clean_id)
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
    """Validate every consent row; any invalid row stops everything (fail closed).

    Messages name the row and column, never the cell's value (it may be a user id).
    """
    missing = [c for c in CONSENT_REQUIRED if c not in frame.columns]
    if missing:
        from .io import require_columns

        require_columns(list(frame.columns), CONSENT_REQUIRED, path)
    if frame.columns.duplicated().any():
        name = str(frame.columns[frame.columns.duplicated()][0])
        raise PostkitError(f"column '{name}' appears twice, so its records are ambiguous", path=path,
                           column=name, fix="keep one column of each name")
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
            what = "empty status" if is_blank(raw_status) else "unknown status"
            errors.append(f"column 'status': {what} — use opt_in, opt_out or withdrawn")
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
        forum_value = columns["forum"][position]
        if not is_blank(forum_value) and looks_like_wildcard(str(forum_value)):
            errors.append("column 'forum': a word for every forum (all/any/every or a look-alike of *) "
                          "— write * for every forum, or the forum's name")
        if errors:
            problems.extend(f"row {row}, {error}" for error in errors)
            continue
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


@dataclass(frozen=True)
class LookAlikeIds:
    """Consent records whose user ids differ only by case or look-alike characters."""

    rows: tuple[tuple[int, ...], ...]  # one tuple of record rows per distinct id


def look_alike_id_groups(records: Sequence[ConsentRecord]) -> list[LookAlikeIds]:
    """Groups of ≥ 2 distinct ids in the records that a reader could take for one another.

    Described by record rows only, so a report can list them without showing ids.
    """
    rows_by_id: dict[str, list[int]] = defaultdict(list)
    for record in records:
        rows_by_id[record.user_id].append(record.row)
    parent = {user: user for user in rows_by_id}

    def find(user: str) -> str:
        while parent[user] != user:
            parent[user] = parent[parent[user]]
            user = parent[user]
        return user

    owner: dict[str, str] = {}
    for user in rows_by_id:
        for key in look_alike_keys(user):
            other = owner.setdefault(key, user)
            if other != user:
                parent[find(user)] = find(other)
    groups: dict[str, list[str]] = defaultdict(list)
    for user in rows_by_id:
        groups[find(user)].append(user)
    found = [
        LookAlikeIds(tuple(sorted((tuple(sorted(rows_by_id[u])) for u in users), key=lambda rows: rows[0])))
        for users in groups.values() if len(users) > 1
    ]
    return sorted(found, key=lambda group: group.rows[0][0])


def look_alike_forums(records: Sequence[ConsentRecord]) -> list[list[str]]:
    """Forum names in the records that differ only by invisible or look-alike characters."""
    labels = sorted({r.forum_label for r in records if r.forum != ALL_FORUMS})
    exact: dict[str, str] = {}
    for label in labels:
        exact.setdefault(forum_exact_key(label), label)
    owner: dict[str, str] = {}
    groups: dict[str, set[str]] = defaultdict(set)
    for key_label in exact.values():
        for key in forum_look_alike_keys(key_label):
            first = owner.setdefault(key, key_label)
            groups[first].add(key_label)
    return [sorted(shown(v) for v in group) for group in groups.values() if len(group) > 1]


class ConsentPolicy:
    """Decides posts against a fixed set of records at a fixed as-of time.

    ``withdrawals_until`` is the run's time: opt-outs and withdrawals recorded after
    ``as_of`` and up to it still exclude (WITHDRAWN_LATER). ``None`` ignores them, as
    postkit did before (``ignore_later_withdrawals``), to reproduce an old run.
    """

    def __init__(self, records: Iterable[ConsentRecord], as_of: datetime, *,
                 withdrawals_until: datetime | None = None) -> None:
        self.as_of = as_of
        self.withdrawals_until = withdrawals_until
        self.records_by_user: dict[str, list[ConsentRecord]] = defaultdict(list)
        for record in records:
            self.records_by_user[record.user_id].append(record)
        self.forums_in_records = {
            r.forum for rs in self.records_by_user.values() for r in rs if r.forum != ALL_FORUMS
        }
        self._labels = {r.forum: r.forum_label for rs in self.records_by_user.values() for r in rs}
        self._ids_by_key: dict[str, set[str]] = defaultdict(set)
        for user in self.records_by_user:
            for key in look_alike_keys(user):
                self._ids_by_key[key].add(user)
        self._record_forum_keys: dict[str, frozenset[str]] = {}
        self._post_forum_keys: dict[str, frozenset[str]] = {}
        self._cache: dict[tuple[Any, Any], Decision] = {}
        self._clean_cache: dict[tuple[str, str], Decision] = {}

    def decide(self, user_id: Any, forum: Any) -> Decision:
        if user_id is None or (isinstance(user_id, float) and user_id != user_id):
            return Decision(Reason.INVALID_POST)  # (NaN keys would never hit the cache)
        try:
            decision = self._cache.get((user_id, forum))
        except TypeError:  # an unhashable cell (a list from JSON): decide without the cache
            return self._decide_raw(user_id, forum)
        if decision is None:
            decision = self._cache[(user_id, forum)] = self._decide_raw(user_id, forum)
        return decision

    def _decide_raw(self, user_id: Any, forum: Any) -> Decision:
        user = clean_id(user_id)
        if user is None or is_blank(forum):
            return Decision(Reason.INVALID_POST)
        key = (user, str(forum).strip())
        decision = self._clean_cache.get(key)
        if decision is None:
            decision = self._clean_cache[key] = self._decide(*key)
        return decision

    # -- matching
    def look_alikes(self, user: str) -> list[str]:
        """Ids in the records that differ from ``user`` only by case or look-alike characters."""
        found: set[str] = set()
        for key in look_alike_keys(user):
            found |= self._ids_by_key.get(key, set())
        found.discard(user)
        return sorted(found)

    def _forum_keys(self, cache: dict[str, frozenset[str]], name: str) -> frozenset[str]:
        keys = cache.get(name)
        if keys is None:
            keys = cache[name] = forum_look_alike_keys(name)
        return keys

    def _applicable(self, records: Iterable[ConsentRecord], forum: str) -> tuple[list, list]:
        """(records covering ``forum`` exactly or with ``*``, records naming a look-alike of it)."""
        exact_key = forum_exact_key(forum)
        full, loose = [], []
        for record in records:
            if record.forum in (exact_key, ALL_FORUMS):
                full.append(record)
            elif self._forum_keys(self._record_forum_keys, record.forum_label) & self._forum_keys(
                self._post_forum_keys, forum
            ):
                loose.append(record)
        return full, loose

    def _decide(self, user: str, forum: str) -> Decision:
        full, loose_forum = self._applicable(self.records_by_user.get(user, ()), forum)
        decision = self._judge(full)
        # Records that may or may not be about this post: kept only if kept either way.
        alternatives: list[tuple[bool, list[ConsentRecord]]] = []
        if loose_forum:
            alternatives.append((False, loose_forum))
        for other in self.look_alikes(user):
            theirs = [r for group in self._applicable(self.records_by_user[other], forum) for r in group]
            if theirs:
                alternatives.append((True, theirs))
        if not decision.kept:
            if decision.reason is Reason.NO_RECORD:
                for is_other_id, records in alternatives:
                    if is_other_id:
                        return Decision(Reason.AMBIGUOUS_ID, tuple(sorted(records, key=lambda r: r.row)))
            return decision
        for is_other_id, records in alternatives:
            alternative = self._judge(full + records)
            if not alternative.kept:
                return Decision(Reason.AMBIGUOUS_ID, alternative.records) if is_other_id else alternative
        return decision

    def _judge(self, applicable: list[ConsentRecord]) -> Decision:
        """The policy over records already known to cover the post."""
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
            if self.withdrawals_until is not None:
                later = sorted(
                    (r for r in applicable if r.status != "opt_in"
                     and self.as_of < r.recorded_at <= self.withdrawals_until),
                    key=lambda r: (r.recorded_at, r.row),
                )
                if later:
                    return Decision(Reason.WITHDRAWN_LATER, tuple(later))
        return Decision(_STATUS_REASON[status], latest)

    def forum_label(self, key: str) -> str:
        return self._labels.get(key, key)


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
                f"duplicate post_id (first seen at row {first}), nothing was written",
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
    ignore_later_withdrawals: bool = False,
    now: datetime | None = None,
) -> ConsentResult:
    """Library entry point for data already in memory.

    ``decisions`` has one row per post: ``row, post_id, forum, user, decision,
    reason, records`` (``user`` is the pseudonym when ``pseudonymize`` is given,
    otherwise the normalised user id — it is the caller's own data). Opt-outs and
    withdrawals recorded after ``as_of`` and up to ``now`` (default: the current time)
    exclude posts unless ``ignore_later_withdrawals``.
    """
    from .io import require_columns

    require_columns(list(posts.columns), POST_KEY_COLUMNS, "posts")
    moment = parse_timestamp(as_of) if isinstance(as_of, str) else as_of
    records = consent if not isinstance(consent, pd.DataFrame) else parse_consent_records(consent)
    until = None if ignore_later_withdrawals else (now or now_utc())
    policy = ConsentPolicy(records, moment, withdrawals_until=until)
    counts = ConsentCounts()
    frame = posts.reset_index(drop=True)
    result = decide_batch(frame, policy, pseudonymize or (lambda u: u), counts, DuplicatePostIds("posts"))
    kept = posts[pd.Series(result.kept_mask, index=posts.index)] if len(posts) else posts.copy()
    return ConsentResult(kept, pd.DataFrame(result.entries), counts)


def unmatched_forums(policy: ConsentPolicy, counts: ConsentCounts) -> list[str]:
    """Forums named in consent records that no post belongs to: often a typo worth a look.

    Names are as written in the records, with invisible characters shown escaped
    (``Rob\\u200bin``), since such a forum counts only for exclusions.
    """
    return sorted(shown(policy.forum_label(key)) for key in policy.forums_in_records - counts.forums_seen)


def records_from_mapping(rows: Iterable[Mapping[str, Any]]) -> list[ConsentRecord]:
    """Convenience for library callers holding plain dicts."""
    return parse_consent_records(pd.DataFrame(list(rows)))
