"""Wait-time statistics kept in whole-second buckets, so adding a wait is O(1)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class WaitStats:
    """Waits (seconds from joining a queue to answer or abandon) of answered and abandoned calls.

    The mean is exact; percentiles come from 1-second buckets (bucket ``k`` holds waits in
    ``(k-1, k]``, so a percentile is the wait rounded *up* to the whole second).
    """

    count: int = 0
    total: float = 0.0
    longest: float = 0.0
    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, wait: float) -> None:
        """Count one wait (negative values, from clock skew, count as zero)."""
        wait = max(0.0, wait)
        self.count += 1
        self.total += wait
        self.longest = max(self.longest, wait)
        key = math.ceil(wait)
        self.buckets[key] = self.buckets.get(key, 0) + 1

    @property
    def mean(self) -> float | None:
        """Average wait in seconds; None without waits."""
        return self.total / self.count if self.count else None

    def percentile(self, p: float) -> int | None:
        """Nearest-rank ``p``-th percentile (0 < p <= 100) in whole seconds, rounded up; None without waits."""
        if not self.count:
            return None
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                return key
        return max(self.buckets)  # unreachable: the buckets sum to count

    @property
    def p90(self) -> int | None:
        """90th-percentile wait, whole seconds rounded up."""
        return self.percentile(90)

    def histogram(self, edges: tuple[int, ...]) -> list[int]:
        """Counts of waits in ``[0, e1], (e1, e2], ..., (e_last, inf)`` for the bucket bounds ``edges``."""
        counts = [0] * (len(edges) + 1)
        for key, n in self.buckets.items():
            slot = next((i for i, edge in enumerate(edges) if key <= edge), len(edges))
            counts[slot] += n
        return counts

    def copy(self) -> WaitStats:
        """An independent copy."""
        return WaitStats(self.count, self.total, self.longest, dict(self.buckets))
