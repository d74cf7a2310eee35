"""What routing remembers about one routing table: its decisions and the dialled numbers it parsed.

Decisions for a known line depend only on (line, phase, city, form, open/closed, day), so
:func:`hotline_cti.core.routing.decide` builds each once and serves it again from a
:class:`DecisionCache`. The cache is an object of its own, passed to ``decide`` explicitly: whoever
holds a table (the FastAGI server, a simulator, a test) holds its cache beside it and drops both
together when the table is swapped. The table itself is frozen and stays shareable.

Pure: no I/O, no clock. Bounded: callers may dial anything, and the 12345 menu's input is theirs.
"""

from __future__ import annotations

from hotline_cti.core.model import Decision
from hotline_cti.core.numbers import DialledNumber
from hotline_cti.core.table import RoutingTable

# Read when a cache is made (tests/conftest.py's --no-caches sets them to 0: nothing is ever kept).
DECISIONS_LIMIT = 262144
PARSED_LIMIT = 65536


class DecisionCache:
    """The memos of one :class:`RoutingTable`; ``decide`` refuses one made for another table.

    ``diverted`` is the memo :func:`hotline_cti.core.diversion.divert_live` keeps of diverted decisions
    (keyed by the identity of a decision held here, so it belongs with them; bounded by
    :data:`hotline_cti.core.diversion.DIVERTED_LIMIT`).
    """

    __slots__ = ("decisions", "decisions_limit", "diverted", "parsed", "parsed_limit", "table")

    def __init__(self, table: RoutingTable) -> None:
        self.table = table
        self.decisions: dict[tuple[object, ...], Decision] = {}
        self.parsed: dict[str, DialledNumber] = {}  # dialled text -> its parts
        self.diverted: dict[tuple[int, int], tuple[Decision, Decision]] = {}
        self.decisions_limit = DECISIONS_LIMIT
        self.parsed_limit = PARSED_LIMIT
