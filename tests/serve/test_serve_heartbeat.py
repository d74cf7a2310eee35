"""How often a service beats for its stall limit."""

from __future__ import annotations

import pytest

from hotline_cti.serve.heartbeat import beat_interval


@pytest.mark.parametrize(("stall_limit", "every"), [(1.0, 0.25), (0.5, 0.125), (0.1, 0.025), (30.0, 0.25)])
def test_routing_beats_every_quarter_of_its_stall_limit_and_at_least_four_times_a_second(
    stall_limit: float, every: float
) -> None:
    assert beat_interval(stall_limit) == every
