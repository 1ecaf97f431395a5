"""Reading an audit log as a reviewer would: what was decided, under which policy, and why.

Verification (``audit.verify_audit``) says whether the log can be trusted; this module
turns a trusted log into sentences: the run's header, its counts, and the decision for
any post, with the consent record that decided it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Collection, Iterator

from .audit import read_audit


def select_entries(
    path: str | Path, post_ids: Collection[str] = (), reasons: Collection[str] = ()
) -> Iterator[dict[str, Any]]:
    """Entries for the given post ids and/or reasons (both empty: none)."""
    wanted_ids = {str(p) for p in post_ids}
    wanted_reasons = {r.upper() for r in reasons}
    if not wanted_ids and not wanted_reasons:
        return
    for line in read_audit(path):
        if line.get("type") != "entry":
            continue
        if line.get("post_id") in wanted_ids or line.get("reason") in wanted_reasons:
            yield line


def describe_record(record: dict[str, Any]) -> str:
    parts = [f"row {record.get('row')}: {record.get('status')} recorded {record.get('recorded_at')}",
             f"forum {record.get('forum')}"]
    if record.get("expires_at"):
        parts.append(f"expires {record['expires_at']}")
    if record.get("notice_version"):
        parts.append(f"notice {record['notice_version']}")
    if record.get("source"):
        parts.append(f"source {record['source']}")
    return ", ".join(parts)


def describe_entry(entry: dict[str, Any]) -> str:
    """One line: post, forum, pseudonym, decision, reason, and the deciding record(s)."""
    records = entry.get("records") or []
    because = "; ".join(describe_record(r) for r in records) if records else "no applicable consent record"
    return (f"{entry.get('post_id') or '(no post_id)'}  {entry.get('forum') or '(no forum)'}  "
            f"{entry.get('user') or '(no user)'}  {entry.get('decision')} {entry.get('reason')}  "
            f"[{because}]")


def describe_header(header: dict[str, Any]) -> list[str]:
    inputs = header.get("inputs", {})
    lines = [
        f"written {header.get('created_at')} by postkit {header.get('postkit_version')}; "
        f"consent judged as of {header.get('as_of')}",
        f"policy: {header.get('policy', {}).get('name')} — {header.get('policy', {}).get('rule')}",
        f"pseudonym key id: {header.get('key_id')}",
    ]
    for name, info in inputs.items():
        lines.append(f"input {name}: {info.get('path')} sha256 {info.get('sha256')}")
    return lines
