"""The routing service's memory of recent callers: per hashed number, its last call times and the lines
it called. Bounded (the least recently seen numbers are forgotten first) and in memory only.

The routing child is stateless towards Asterisk and may be restarted at any time; this memory is lost
then, and each node counts only the calls it routed (docs/callers.md says what that means).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

MAX_LINES_PER_NUMBER = 16  # lines remembered per caller for the repeat tag


@dataclass(slots=True)
class _Seen:
    # A plain list, not a deque: a number keeps a handful of times, and a deque costs ~600 bytes empty.
    times: list[float] = field(default_factory=list)
    lines: dict[str, float] = field(default_factory=dict)  # line number -> last call (epoch seconds)


class CallerWindow:
    """Sliding window of calls per hashed number."""

    def __init__(self, max_numbers: int, max_calls: int) -> None:
        self.max_numbers = max_numbers
        self.max_calls = max(1, max_calls)
        self._seen: OrderedDict[str, _Seen] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def record(self, number_hash: str, line: str, ts: float, keep: float) -> tuple[tuple[float, ...], float | None]:
        """Count a call of ``number_hash`` to ``line`` at ``ts``.

        Returns the caller's call times within ``keep`` seconds (this one included, oldest first) and when
        it last called ``line`` before (None if not within ``keep``).
        """
        seen = self._seen.get(number_hash)
        if seen is None:
            seen = _Seen()
            self._seen[number_hash] = seen
            if len(self._seen) > self.max_numbers:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(number_hash)
        since = ts - keep
        times = seen.times
        drop = 0
        while drop < len(times) and times[drop] <= since:
            drop += 1
        times.append(ts)
        drop = max(drop, len(times) - self.max_calls)  # only as many as a rule needs
        if drop:
            del times[:drop]
        last = seen.lines.pop(line, None)
        seen.lines[line] = ts
        if len(seen.lines) > MAX_LINES_PER_NUMBER:
            del seen.lines[next(iter(seen.lines))]
        return tuple(seen.times), (last if last is not None and last > since else None)

    def times(self, number_hash: str) -> tuple[float, ...]:
        """The call times kept for ``number_hash`` (oldest first), without counting a call."""
        seen = self._seen.get(number_hash)
        return tuple(seen.times) if seen is not None else ()
