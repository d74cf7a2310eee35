"""The wall clock the services read when no test clock is given."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    """Now as an aware UTC datetime: every stored and published time is UTC."""
    return dt.datetime.now(dt.UTC)
