"""Erlang B/C/A against published table values and against independent exact computations."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline_cti.staffing.erlang import (
    agents_for_answered,
    agents_for_service_level,
    asa,
    erlang_a,
    erlang_b,
    erlang_c,
    service_level,
    traffic,
)


def exact_erlang_c(n: int, a: Fraction) -> Fraction:
    """The textbook formula with factorials, in exact rational arithmetic (independent of the recursion)."""
    top = a**n / math.factorial(n) * Fraction(n) / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


def test_erlang_b_matches_the_published_table() -> None:
    # Erlang B tables (e.g. ITU-T E.520-style tables, Wikipedia "Erlang (unit)"): 10 Erlang on 10 circuits -> 0.2146
    assert erlang_b(10, 10) == pytest.approx(0.2146, abs=5e-5)
    assert erlang_b(0, 3.0) == 1.0


def test_erlang_c_matches_the_classic_worked_example() -> None:
    # Call Centre Helper, "Erlang C Formula - Made Simple": 100 calls per 30 min, AHT 180 s -> 10 Erlang;
    # P(wait) 0.6821 with 11 agents, 0.4494 with 12, 0.2853 with 13; 80% in 20 s first met by 14 agents (88.8%).
    a = traffic(200, 180)
    assert a == 10
    assert erlang_c(11, a) == pytest.approx(0.6821, abs=5e-5)
    assert erlang_c(12, a) == pytest.approx(0.4494, abs=5e-5)
    assert erlang_c(13, a) == pytest.approx(0.2853, abs=5e-5)
    assert service_level(13, a, 180, 20) == pytest.approx(0.7956, abs=5e-5)
    assert service_level(14, a, 180, 20) == pytest.approx(0.8884, abs=5e-5)
    assert agents_for_service_level(a, 180, 0.8, 20) == 14
    assert asa(12, a, 180) == pytest.approx(0.4494 * 180 / 2, rel=1e-3)


def test_too_few_agents_means_everyone_waits() -> None:
    assert erlang_c(10, 10) == 1.0 and service_level(9, 10, 180, 20) == 0.0 and asa(10, 10, 180) == math.inf


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), tenths=st.integers(1, 600))
def test_erlang_c_equals_the_factorial_formula(n: int, tenths: int) -> None:
    a = Fraction(tenths, 10)
    if a >= n:
        assert erlang_c(n, float(a)) == 1.0
    else:
        assert erlang_c(n, float(a)) == pytest.approx(float(exact_erlang_c(n, a)), rel=1e-9)


def test_large_centres_stay_finite() -> None:
    # 2,000 agents and 1,900 Erlang would overflow a factorial formula in floats
    c = erlang_c(2000, 1900.0)
    assert 0 < c < 1
    assert agents_for_service_level(1900.0, 240, 0.8, 20) > 1900


def brute_force_erlang_a(n: int, lam: float, mu: float, theta: float, states: int = 3000) -> tuple[float, float]:
    """P(wait), P(abandon) from the birth-death chain truncated far out, with exact rationals."""
    lam_q, mu_q, th_q = Fraction(lam), Fraction(mu), Fraction(theta)
    p = [Fraction(1)]
    for k in range(1, states):
        death = k * mu_q if k <= n else n * mu_q + (k - n) * th_q
        p.append(p[-1] * lam_q / death)
    total = sum(p)
    p_wait = sum(p[n:]) / total
    queue = sum((k - n) * p[k] for k in range(n, states)) / total
    return float(p_wait), float(th_q * queue / lam_q)


@pytest.mark.parametrize(
    ("n", "calls_per_hour", "aht_s", "patience_s"),
    [(13, 200, 180, 120), (5, 200, 180, 60), (20, 400, 240, 90), (3, 10, 300, 600)],
)
def test_erlang_a_equals_the_truncated_chain(n: int, calls_per_hour: float, aht_s: float, patience_s: float) -> None:
    got = erlang_a(n, calls_per_hour, aht_s, patience_s)
    p_wait, p_abandon = brute_force_erlang_a(n, calls_per_hour / 3600, 1 / aht_s, 1 / patience_s, states=400)
    assert got.p_wait == pytest.approx(p_wait, rel=1e-9)
    assert got.p_abandon == pytest.approx(p_abandon, rel=1e-9)
    assert got.mean_wait_s == pytest.approx(p_abandon * patience_s, rel=1e-9)  # P(ab) = theta * E[W]


def test_erlang_a_overload_answers_what_the_agents_can_carry() -> None:
    # 50 Erlang on 5 agents: they carry 5 Erlang, so 10% are answered whatever the patience
    assert erlang_a(5, 1000, 180, 60).answered == pytest.approx(0.1, rel=1e-6)


def test_agents_for_95_percent_answered() -> None:
    n = agents_for_answered(200, 180, 120, 0.95)
    assert erlang_a(n, 200, 180, 120).answered >= 0.95 > erlang_a(n - 1, 200, 180, 120).answered
    assert agents_for_answered(0, 180, 120) == 0 and agents_for_service_level(0, 180, 0.8, 20) == 0


def test_impossible_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="target"):
        agents_for_answered(100, 180, 60, 1.0)
    with pytest.raises(ValueError, match="patience"):
        erlang_a(3, 100, 180, 0)
