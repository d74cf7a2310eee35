"""Parsing Asterisk's full.log for the benchmarks' latencies."""

from __future__ import annotations

import pytest

from simulators.asterisk_load import agi_steps, dialplan_to_queue

LOG = """\
[2026-12-07 01:12:19.704] VERBOSE[13274][C-00000216] pbx.c: Executing [12315@hotline-route:1] NoOp("PJSIP/a-1", "routing") in new stack
[2026-12-07 01:12:19.704] VERBOSE[13275][C-00000217] pbx.c: Executing [12315@hotline-route:1] NoOp("PJSIP/a-2", "routing") in new stack
[2026-12-07 01:12:20.205] VERBOSE[13274][C-00000216] pbx.c: Executing [12315@hotline-route:7] AGI("PJSIP/a-1", "agi://127.0.0.1:4573/route,12315,") in new stack
[2026-12-07 01:12:20.206] VERBOSE[13275][C-00000217] pbx.c: Executing [12315@hotline-route:7] AGI("PJSIP/a-2", "agi://127.0.0.1:4573/route,12315,") in new stack
[2026-12-07 01:12:20.207] VERBOSE[13274][C-00000216] res_agi.c: <PJSIP/a-1>AGI Script agi://127.0.0.1:4573/route completed, returning 0
[2026-12-07 01:12:20.208] VERBOSE[13274][C-00000216] pbx.c: Executing [12315@hotline-route:8] GotoIf("PJSIP/a-1", "1?decided") in new stack
[2026-12-07 01:12:20.212] VERBOSE[13274][C-00000216] pbx.c: Executing [s@hotline-queue:19] Queue("PJSIP/a-1", "gx-l12315,tc,,,120") in new stack
[2026-12-07 01:12:20.215] VERBOSE[13274][C-00000216] pbx.c: Executing [s@hotline-fallback:1] AGI("PJSIP/a-1", "agi://127.0.0.1:4573/ivr") in new stack
"""


def test_agi_step_runs_from_the_first_agi_step_to_the_channels_next_step() -> None:
    steps = agi_steps(LOG, ["PJSIP/a-1", "PJSIP/a-2", "PJSIP/absent"])
    # a-1: 20.205 -> 20.208 (the res_agi line is not a step; a later AGI() does not count again);
    # a-2 never left its AGI() in this log, so it has no figure
    assert steps == {"PJSIP/a-1": pytest.approx(0.003, abs=1e-6)}


def test_dialplan_to_queue_runs_from_the_first_step_to_the_queue() -> None:
    assert dialplan_to_queue(LOG, ["PJSIP/a-1"], "gx-l12315") == {"PJSIP/a-1": pytest.approx(0.508, abs=1e-6)}
    assert dialplan_to_queue(LOG, ["PJSIP/a-1"], "gx-general") == {}
