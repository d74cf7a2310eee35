"""Erlang B, Erlang C and Erlang A (M/M/n+M, callers who give up) in numerically stable forms.

Everything is computed from the Erlang B recursion ``B(0)=1, B(k)=A·B(k-1)/(k+A·B(k-1))``:
no factorials or powers, so hundreds of agents and hundreds of Erlangs stay exact to float precision.
Units: traffic ``a`` in Erlangs (calls per second × mean handle time in seconds), times in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

MAX_AGENTS = 100_000
"""Searches for a seat count give up beyond this (a guard against impossible targets)."""


def traffic(calls_per_hour: float, aht_s: float) -> float:
    """Offered traffic in Erlangs from a call rate and a mean handle time."""
    return calls_per_hour * aht_s / 3600.0


def _erlang_b_series(a: float) -> Iterator[tuple[int, float]]:
    """(n, B(n, a)) for n = 0, 1, 2, ... by the stable recursion."""
    b = 1.0
    n = 0
    yield n, b
    while True:
        n += 1
        b = a * b / (n + a * b)
        yield n, b


def erlang_b(n: int, a: float) -> float:
    """Blocking probability with ``n`` servers and ``a`` Erlangs (lost-calls-cleared)."""
    if n < 0 or a < 0:
        raise ValueError("n and a must be non-negative")
    for k, b in _erlang_b_series(a):
        if k == n:
            return b
    raise AssertionError("unreachable")


def _c_from_b(n: int, a: float, b: float) -> float:
    """Erlang C from Erlang B of the same n and a: C = n·B / (n − a·(1 − B)); 1 when n ≤ a (the queue grows)."""
    if n <= a:
        return 1.0
    return n * b / (n - a * (1.0 - b))


def erlang_c(n: int, a: float) -> float:
    """Probability that a caller waits (all ``n`` agents busy) with ``a`` Erlangs offered; 1 when n ≤ a."""
    return _c_from_b(n, a, erlang_b(n, a))


def _sl_from_c(n: int, a: float, c: float, aht_s: float, t_s: float) -> float:
    if n <= a:
        return 0.0
    return 1.0 - c * math.exp(-(n - a) * t_s / aht_s)


def service_level(n: int, a: float, aht_s: float, t_s: float) -> float:
    """P(wait ≤ ``t_s``) under Erlang C: 1 − C·exp(−(n − a)·t/AHT); 0 when n ≤ a."""
    return _sl_from_c(n, a, erlang_c(n, a), aht_s, t_s)


def asa(n: int, a: float, aht_s: float) -> float:
    """Average speed of answer (mean wait of all callers) under Erlang C: C·AHT/(n − a); inf when n ≤ a."""
    if n <= a:
        return math.inf
    return erlang_c(n, a) * aht_s / (n - a)


def agents_for_service_level(a: float, aht_s: float, target: float, t_s: float) -> int:
    """Fewest agents with P(wait ≤ ``t_s``) ≥ ``target`` (e.g. 0.8 in 20 s) under Erlang C."""
    if not 0 < target < 1:
        raise ValueError("target must be between 0 and 1")
    if a == 0:
        return 0
    for n, b in _erlang_b_series(a):
        if n > a and _sl_from_c(n, a, _c_from_b(n, a, b), aht_s, t_s) >= target:
            return n
        if n > MAX_AGENTS:
            break
    raise ValueError(f"no seat count up to {MAX_AGENTS} reaches {target:.0%}")


@dataclass(frozen=True, slots=True)
class ErlangA:
    """Steady state of M/M/n+M: Poisson calls, exponential handle time, exponential patience."""

    agents: int
    p_wait: float  # an arriving caller finds every agent busy
    p_abandon: float  # a caller gives up before an agent answers
    mean_wait_s: float  # mean time in the queue over all callers (including those who give up)

    @property
    def answered(self) -> float:
        """Fraction of calls answered (1 − P(abandon))."""
        return 1.0 - self.p_abandon


_RESCALE = 1e200


def _erlang_a_from_b(n: int, calls_per_hour: float, aht_s: float, patience_s: float, b: float) -> ErlangA:
    lam = calls_per_hour / 3600.0
    mu = 1.0 / aht_s
    theta = 1.0 / patience_s
    if lam == 0:
        return ErlangA(n, 0.0, 0.0, 0.0)
    # Unnormalised stationary probabilities relative to p_n = 1: states 0..n sum to 1/B(n, a) (Erlang B);
    # the queue states n+j carry prod_{i=1..j} lam/(n·mu + i·theta), summed until they vanish.
    head = 1.0 / b if b > 0 else math.inf
    term, tail, queued = 1.0, 1.0, 0.0
    j = 0
    while True:
        j += 1
        term *= lam / (n * mu + j * theta)
        tail += term
        queued += j * term
        if term > _RESCALE:  # rescale everything together so the growing terms never overflow
            term, tail, queued, head = term / _RESCALE, tail / _RESCALE, queued / _RESCALE, head / _RESCALE
        if n * mu + j * theta > lam and term < 1e-17 * tail:
            break
    total = head - 1.0 + tail  # p_n is in both head and tail
    mean_queue = queued / total
    return ErlangA(n, tail / total, theta * mean_queue / lam, mean_queue / lam)


def erlang_a(n: int, calls_per_hour: float, aht_s: float, patience_s: float) -> ErlangA:
    """P(wait), P(abandon) and mean wait with ``n`` agents when callers give up after ``patience_s`` on average."""
    if n < 0 or calls_per_hour < 0 or aht_s <= 0 or patience_s <= 0:
        raise ValueError("need n >= 0, calls_per_hour >= 0, aht_s > 0, patience_s > 0")
    return _erlang_a_from_b(n, calls_per_hour, aht_s, patience_s, erlang_b(n, traffic(calls_per_hour, aht_s)))


def agents_for_answered(calls_per_hour: float, aht_s: float, patience_s: float, target: float = 0.95) -> int:
    """Fewest agents whose answered fraction (1 − P(abandon), Erlang A) is at least ``target`` (接通率 ≥ 95%)."""
    if not 0 < target < 1:
        raise ValueError("target must be between 0 and 1")
    if calls_per_hour == 0:
        return 0
    a = traffic(calls_per_hour, aht_s)
    for n, b in _erlang_b_series(a):
        # n agents carry at most n Erlang, so fewer than target·a cannot answer the target share: skip them
        if n >= target * a and _erlang_a_from_b(n, calls_per_hour, aht_s, patience_s, b).answered >= target:
            return n
        if n > MAX_AGENTS:
            break
    raise ValueError(f"no seat count up to {MAX_AGENTS} reaches {target:.0%} answered")
