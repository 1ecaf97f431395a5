"""ISO 8601 timestamps as comparable instants.

Consent records come from sign-up forms, settings pages and spreadsheets, so they mix
``Z``, offsets and naive times. A naive time is taken as UTC (documented policy) and
everything becomes an aware ``datetime`` so offsets compare as instants.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from typing import Any

UTC = timezone.utc


def is_blank(value: Any) -> bool:
    """None, NaN/NA or an all-whitespace string: the cell says nothing."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def parse_timestamp(value: Any) -> datetime:
    """An aware datetime, or ``ValueError`` with a short reason that never quotes ``value``."""
    if is_blank(value):  # None, NaN, NaT (a null timestamp in Parquet), ""
        raise ValueError("empty timestamp")
    if isinstance(value, datetime):  # includes pandas.Timestamp
        moment = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("empty timestamp")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            # The value itself is never repeated: a misplaced column can hold an id or an email.
            raise ValueError("not an ISO 8601 timestamp") from None
    else:
        raise ValueError(f"not an ISO 8601 timestamp (a {type(value).__name__})")
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    """UTC ISO string with a trailing Z: one spelling in every log."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")
