"""Controller failover measured on the real Asterisk 22: the first controller refused, stalled or frozen.

The dialplan is Guangxi's, rendered with two controllers and ``--agi-timeout`` (simulators/failover.py).
Each case asserts where the decision came from (the controller whose ``AGI()`` set the sentinel, from
Asterisk's VarSet events), that it equals the routing core's, and that no call fell to the fallback
queue; the added latency per call (Asterisk's own timestamps) is printed, never asserted.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline_cti.core.model import Call
from hotline_cti.core.routing import decide
from simulators.asterisk import asterisk_race, log_problems
from simulators.failover import (
    AGI_TIMEOUT,
    FailoverRig,
    Outcome,
    StalledController,
    failover_rig,
    first_controller,
    frozen_serve_first,
    stalled_first,
    stalled_routing_child,
    wait_refused,
)

NUMBER = "12300"  # in its transition window at the rig's time: the queue the core names
CALLS = 4
baseline: dict[str, float] = {}


@pytest.fixture(scope="module")
def rig(asterisk_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FailoverRig]:
    with failover_rig(asterisk_root, tmp_path_factory.mktemp("failover")) as r:
        yield r


def _report(case: str, outcomes: list[Outcome]) -> None:
    base = baseline.get("median", 0.0)
    print(
        f"\nfailover {case}: first AGI() to decision per call "
        + ", ".join(f"{o.seconds:.3f} s" for o in outcomes)
        + f"; added vs the no-failure median {base:.3f} s: "
        + ", ".join(f"{o.seconds - base:+.3f} s" for o in outcomes)
    )


def _decided_by_second(rig: FailoverRig, outcomes: list[Outcome]) -> None:
    expected = rig.expected(NUMBER)
    second = rig.second.port
    assert len(outcomes) == CALLS
    for o in outcomes:
        assert o.agi_ports == [rig.first, second], o
        assert o.decided_by == second, o
        assert o.action == expected.action.value != "fallback", o
        assert o.target == expected.target and o.queue == expected.target, o


def test_no_failure_the_first_controller_decides(rig: FailoverRig) -> None:
    with first_controller(rig):
        outcomes = rig.place(NUMBER, CALLS)
    expected = rig.expected(NUMBER)
    for o in outcomes:
        assert o.agi_ports == [rig.first] and o.decided_by == rig.first, o
        assert o.action == expected.action.value and o.queue == expected.target, o
    baseline["median"] = sorted(o.seconds for o in outcomes)[len(outcomes) // 2]
    _report("none", outcomes)


def test_first_refused_the_second_decides(rig: FailoverRig) -> None:
    wait_refused(rig.first)
    outcomes = rig.place(NUMBER, CALLS)
    _decided_by_second(rig, outcomes)
    _report("refused", outcomes)


def test_first_stalled_socket_is_cut_and_the_second_decides(rig: FailoverRig) -> None:
    """A host that accepts and never answers: without the bound the call would wait for ever."""
    with stalled_first(rig) as stalled:
        outcomes = rig.place(NUMBER, CALLS)
        assert len(stalled.held) >= CALLS  # every call really met the stalled controller
    _decided_by_second(rig, outcomes)
    _report(f"stalled socket (--agi-timeout {AGI_TIMEOUT:g})", outcomes)


def test_the_menus_second_question_fails_over_too(rig: FailoverRig) -> None:
    """12345 with the first controller stalled: the route question and the menu's ivr question are
    each cut after the bound ([hotline-route]'s and [hotline-dispatch]'s T) and decided by the second."""
    expected = decide(Call("12345", ivr_choice="1"), rig.table, rig.at)
    with stalled_first(rig):
        o = rig.place_menu("1")
    assert o.agi_ports == [rig.first, rig.second.port] * 2, o
    assert o.deciders == [rig.second.port] * 2, o
    assert o.queue == expected.target, o
    print(f"\nfailover menu (route and ivr cut): first AGI() to the first decision {o.seconds:.3f} s")


def test_first_serve_frozen_whole_the_second_decides(rig: FailoverRig) -> None:
    """serve's whole process group SIGSTOPped: its supervisor cannot cut the session; the dialplan does."""
    with frozen_serve_first(rig):
        outcomes = rig.place(NUMBER, CALLS)
    _decided_by_second(rig, outcomes)
    _report(f"serve SIGSTOPped (--agi-timeout {AGI_TIMEOUT:g})", outcomes)


def test_first_serve_routing_child_stalled_its_supervisor_cuts_and_the_second_decides(rig: FailoverRig) -> None:
    """Only the routing child SIGSTOPped: its supervisor kills it after --stall-limit (1 s), before the
    dialplan's bound, and the closed sessions send the calls on to the second controller."""
    with stalled_routing_child(rig) as serve:
        routing = serve.child_pid("routing")
        outcomes = rig.place(NUMBER, CALLS)
        log = serve.log_text()
    _decided_by_second(rig, outcomes)
    assert f"pid {routing} stalled" in log, log[-2000:]
    _report("serve routing child SIGSTOPped (supervisor, --stall-limit 1)", outcomes)


def test_all_controllers_silent_the_call_still_reaches_the_fallback_queue(rig: FailoverRig) -> None:
    """Both stalled: each is cut after the bound, then the 12345 general queue (no call lost)."""
    rig.second.close()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(stalled_first(rig))
            second = StalledController(rig.second.port)
            stack.callback(second.close)
            outcomes = rig.place(NUMBER, 2)
    finally:
        rig.second.listen(rig.second.port)
    for o in outcomes:
        assert o.agi_ports == [rig.first, rig.second.port] and o.decided_by is None, o
        assert o.action == "fallback" and o.queue == "gx-general", o
    _report("both stalled (fallback)", outcomes)


def test_the_only_warnings_are_the_refused_connections(rig: FailoverRig) -> None:
    """Cut and closed sessions leave Asterisk's log clean; res_agi warns of each refused connection only
    (and Asterisk's own notices: one at boot, and its races as channels go: `asterisk_race`)."""
    bad = log_problems(rig.pbx.log_text())
    known = (
        re.compile(rf"WARNING.*res_agi\.c: Connecting to '127\.0\.0\.1:{rig.first}' failed .*: Connection refused$"),
        re.compile(r"WARNING.*res_agi\.c: Couldn't connect to any host\.  FastAGI failed\.$"),
    )
    assert [line for line in bad if not any(k.search(line) for k in known) and not asterisk_race(line)] == []
    assert any(known[0].search(line) for line in bad)  # the refused case did happen
