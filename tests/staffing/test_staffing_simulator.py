"""Erlang C and Erlang A against the simulated PBX's queue (app_queue model in virtual time)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from hotline_cti.staffing.erlang import asa, erlang_a, erlang_c, service_level
from tests.simulators.test_pbx import mmc_pbx, poisson_calls


def test_service_level_and_asa_match_erlang_c() -> None:
    # 10 Erlang (200 calls/h x 180 s) on 12 agents, callers who never give up
    arrivals = poisson_calls(60_000, 200 / 3600, 180.0, seed=11)
    summary = mmc_pbx(12).run(arrivals)
    assert summary.answered == len(arrivals)
    # with 11 or 13 agents these would be 0.68 / 0.29 and 0.39 / 0.80: the tolerances tell them apart
    assert summary.p_wait == pytest.approx(erlang_c(12, 10.0), abs=0.03)
    assert summary.service_level == pytest.approx(service_level(12, 10.0, 180, 20), abs=0.03)
    assert summary.mean_wait == pytest.approx(asa(12, 10.0, 180), rel=0.15)


def test_abandonment_matches_erlang_a() -> None:
    # 10 Erlang on 10 agents (no spare capacity), mean patience 120 s, exponential
    rng = random.Random(5)
    arrivals = [
        dataclasses.replace(a, patience=rng.expovariate(1 / 120))
        for a in poisson_calls(40_000, 200 / 3600, 180.0, seed=12)
    ]
    summary = mmc_pbx(10).run(arrivals)
    expected = erlang_a(10, 200, 180, 120)
    assert summary.answered + summary.abandoned == len(arrivals)
    # one agent more or fewer moves P(abandon) by ~30%, well outside the tolerance
    assert summary.abandoned / len(arrivals) == pytest.approx(expected.p_abandon, rel=0.1)
