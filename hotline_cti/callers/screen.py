"""The routing service's caller screen: hash the caller, count the call, read the lists, adjust the decision.

One object per routing process. It keeps the bounded sliding window (:mod:`.window`) and the latest
snapshot of the managed lists (hashes only, refreshed from the database by :mod:`.lists`); a call costs
one HMAC and a few dictionary operations. Without ``HOTLINE_NUMBER_KEY`` or a ``callers`` section
decisions pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from hotline_cti.callers.hashing import hash_number
from hotline_cti.callers.window import CallerWindow
from hotline_cti.core.callers import CallerPolicy, caller_tag, screened
from hotline_cti.core.model import Call, Decision, Instant, epoch_seconds
from hotline_cti.core.routing import queue_names
from hotline_cti.core.table import RoutingTable

SCREENED_LIMIT = 16384  # screened decisions kept (decisions x rules x first/menu); bounded


class CallerScreen:
    """Per-process memory of callers and the lists' hashes; see the module docstring."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key
        self.lists: Mapping[str, frozenset[str]] = {}
        self._window: CallerWindow | None = None
        self._shape: tuple[int, int] = (0, 0)
        # (id of a decision, rule id, first) -> (that decision, its screened form); holds the decision, so
        # its id cannot be reused while the entry lives.
        self._screened: dict[tuple[int, str, bool], tuple[Decision, Decision]] = {}

    def set_lists(self, lists: Mapping[str, frozenset[str]]) -> None:
        """Swap in a new snapshot of the managed lists (list name -> hashes)."""
        self.lists = lists

    def _window_for(self, policy: CallerPolicy) -> CallerWindow:
        shape = (policy.max_numbers, policy.most_calls)
        if self._window is None or shape != self._shape:  # a reload changed the bounds: start afresh
            self._window, self._shape = CallerWindow(*shape), shape
        return self._window

    @property
    def remembered(self) -> int:
        """Numbers in the window now."""
        return len(self._window) if self._window is not None else 0

    def screen(
        self, call: Call, decision: Decision, table: RoutingTable, now: Instant, *, first: bool
    ) -> tuple[Decision, str]:
        """``decision`` adjusted for the caller, and the tag for the agent ('' for none).

        ``first``: the call's first decision (``route``): the call is counted and may be tagged. The
        decision after the 12345 menu (``ivr``) is adjusted by the same rule without counting again.
        """
        policy = table.callers
        if policy is None or self.key is None or not call.caller:
            return decision, ""
        number_hash = hash_number(self.key, call.caller)
        if number_hash is None:
            return decision, ""
        listed = frozenset(name for name in policy.lists if number_hash in self.lists.get(name, ()))
        ts = epoch_seconds(now)
        window = self._window_for(policy)
        repeat = False
        if first:
            recent, last = window.record(number_hash, decision.number, ts, policy.longest_window)
            repeat = last is not None and policy.repeat_window is not None and ts - last <= policy.repeat_window
        else:
            recent = window.times(number_hash)
        rule = policy.match(listed, recent, ts)
        tag = caller_tag(rule, repeat, policy, decision) if first else ""
        if rule is None:
            return decision, tag
        # Decisions repeat (the table memoises them), so their screened form is made once per rule.
        key = (id(decision), rule.id, first)
        cached = self._screened.get(key)
        if cached is None or cached[0] is not decision:
            names = None
            if rule.queue and decision.centre:
                names = queue_names(table, decision.centre, rule.queue)
            cached = (decision, screened(decision, rule, first=first, queue_names=names))
            if len(self._screened) >= SCREENED_LIMIT:
                self._screened.clear()
            self._screened[key] = cached
        return cached[1], tag
