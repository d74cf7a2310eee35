"""Diversion before the wait: YAML rules (file:line errors), the pure decision, AMI-fed queue state, the snapshot."""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.scripts import route_script
from hotline_cti.config.compile import compile_config
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.core import diversion
from hotline_cti.core.diversion import (
    DiversionRule,
    DivertTo,
    DivertWhen,
    QueueState,
    divert,
    divert_live,
    holds,
)
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Action, Call, Decision
from hotline_cti.core.routing import decide
from hotline_cti.records.queue_live import (
    QueueBoard,
    QueueTracker,
    SnapshotError,
    decode,
    encode,
    write_snapshot,
)
from tests.conftest import SMALL_YAML

NOW = dt.datetime(2021, 9, 15, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
RULES = """\
  - id: general
    name: 综合
    maxlen: 3
    diversion:
      - {when: no_agents, to: release, prompt: divert-no-agents}
      - {when: full, to: overflow, target: complaint}
      - {when: callers_per_agent_over, over: 2, to: subcentre, target: tobacco, prompt: overflow}
      - {when: wait_over, over: 60, to: overflow, target: complaint}
      - {when: all_busy, to: release, prompt: divert-busy}
"""


def config_text(rules: str = RULES) -> str:
    return SMALL_YAML.replace("  - {id: general, name: 综合}\n", rules, 1)


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def table(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "cfg.yaml"
    path.write_text(config_text(), encoding="utf-8")
    return compile_config(load_config(path).model)


@pytest.fixture
def cache(table):  # type: ignore[no-untyped-def]
    """The table's decision cache, this test's own (decisions and diverted decisions are memoised there)."""
    return DecisionCache(table)


def state(members: int = 1, available: int = 1, free: int = 1, waiting: int = 0, holdtime: int = 0) -> QueueState:
    return QueueState(members, available, free, waiting, holdtime)


# -- the YAML --------------------------------------------------------------------------------------------


def test_valid_rules_compile_per_centre(table) -> None:  # type: ignore[no-untyped-def]
    assert set(table.diversions) == {"gx-general", "guilin-general"}
    first = table.diversions["guilin-general"]
    assert [r.when.value for r in first] == ["no_agents", "full", "callers_per_agent_over", "wait_over", "all_busy"]
    assert first[1].queue == "guilin-complaint" and first[1].maxlen == 3
    assert {s[0] for s in first[2].sites} == {"nanning", "guilin", "chongzuo"}


@pytest.mark.parametrize(
    ("rule", "needle", "message"),
    [
        ("{when: wait_over, to: release, prompt: divert-busy}", "wait_over", "'wait_over' needs 'over'"),
        ("{when: no_agents, over: 3, to: release, prompt: divert-busy}", "no_agents", "'no_agents' takes no 'over'"),
        ("{when: all_busy, to: release}", "all_busy", "'release' needs 'prompt'"),
        ("{when: all_busy, to: subcentre}", "all_busy", "'subcentre' needs 'target'"),
        ("{when: all_busy, to: overflow, target: nowhere}", "nowhere", "unknown queue 'nowhere'"),
        ("{when: all_busy, to: subcentre, target: nowhere}", "nowhere", "unknown sub-centre 'nowhere'"),
        ("{when: full, to: overflow, target: complaint}", "full", "'full' needs the queue's 'maxlen'"),
        (
            "{when: all_busy, to: release, prompt: no-such-prompt}",
            "no-such",
            "'no-such-prompt' is not in the catalogue",
        ),
        ("{when: always, to: release, prompt: divert-busy}", "always", "diversion[0].when"),
        ("{when: all_busy, to: release, prompt: divert-busy, wen: x}", "wen", "unknown key 'wen'"),
    ],
)
def test_bad_rules_are_named_with_their_line(tmp_path: Path, rule: str, needle: str, message: str) -> None:
    text = config_text(f"  - id: general\n    name: 综合\n    diversion:\n      - {rule}\n")
    out = problems_of(tmp_path, text)
    assert len(out) == 1, out
    assert f"cfg.yaml:{line_of(text, needle)}:" in out[0]
    assert message in out[0]


def test_a_queue_with_nowhere_to_overflow_is_refused(tmp_path: Path) -> None:
    # general is the region's overflow target itself and names no overflow of its own
    text = config_text("  - id: general\n    name: 综合\n    diversion:\n      - {when: all_busy, to: overflow}\n")
    (problem,) = problems_of(tmp_path, text)
    assert f"cfg.yaml:{line_of(text, 'all_busy')}:" in problem and "no other queue to divert to" in problem


def test_an_overflow_without_a_target_takes_the_queues_or_the_regions_overflow(tmp_path: Path) -> None:
    rules = "      - {when: all_busy, to: overflow}\n"
    text = config_text(RULES).replace(
        "  - {id: complaint, name: 投诉举报}\n", f"  - id: complaint\n    name: 投诉举报\n    diversion:\n{rules}"
    )
    text = text.replace(
        "  - {id: l12315, name: 市场监管, overflow: general, max_wait: 90}\n",
        f"  - id: l12315\n    name: 市场监管\n    overflow: complaint\n    diversion:\n{rules}",
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    table = compile_config(load_config(path).model)
    # complaint names no overflow: the region's overflow target (general) is taken, at each centre
    assert [r.queue for r in table.diversions["gx-complaint"]] == ["gx-general"]
    assert [r.queue for r in table.diversions["guilin-complaint"]] == ["guilin-general"]
    assert [r.queue for r in table.diversions["gx-l12315"]] == ["gx-complaint"]


# -- the decision ----------------------------------------------------------------------------------------


def diverted(table, cache, s: QueueState, call: Call | None = None):  # type: ignore[no-untyped-def]
    d = decide(call or Call("12300"), table, NOW, cache)
    assert d.action is Action.QUEUE and d.target == "gx-general"
    return divert_live(d, table.diversions, cache.diverted, {"gx-general": s})


def test_no_agents_releases_with_the_prompt(table, cache) -> None:  # type: ignore[no-untyped-def]
    d = diverted(table, cache, state(members=2, available=0, free=0))  # logged in but paused
    assert d.action is Action.RELEASE and d.hangup and d.target is None
    assert d.prompts[-1] == "divert-no-agents" and d.diverted == "no_agents"
    assert "diverted from gx-general: no agent logged in" in d.reason


def test_full_goes_to_the_named_queue(table, cache) -> None:  # type: ignore[no-untyped-def]
    d = diverted(table, cache, state(available=5, free=0, waiting=3))
    assert (d.action, d.target, d.diverted, d.overflow) == (Action.QUEUE, "gx-complaint", "full", None)
    assert diverted(table, cache, state(available=5, free=0, waiting=2)).target != "gx-complaint"


def test_callers_per_agent_counts_this_caller(table, cache) -> None:  # type: ignore[no-untyped-def]
    # 2 waiting + this caller over 1 agent = 3 per agent > 2, but a per-city sub-centre needs the caller's city
    gx = diverted(table, cache, state(available=1, free=0, waiting=2))  # no city known: no site, the next rule holds
    assert gx.diverted == "all_busy" and gx.action is Action.RELEASE
    # exactly 2 per agent (1 waiting + this caller) does not hold
    assert diverted(table, cache, state(available=1, free=0, waiting=1)).diverted == "all_busy"


def test_site_of_the_callers_city(table, cache) -> None:  # type: ignore[no-untyped-def]
    d = decide(Call("12300", city="guilin"), table, NOW, cache)
    out = divert_live(d, table.diversions, cache.diverted, {"guilin-general": state(available=1, free=0, waiting=2)})
    assert (out.action, out.target, out.dial) == (Action.SUBCENTRE, "tobacco@guilin", "PJSIP/12313@gl")
    assert out.overflow == "guilin-general" and out.prompts[-1] == "overflow"


def test_wait_over_uses_the_holdtime(table, cache) -> None:  # type: ignore[no-untyped-def]
    assert diverted(table, cache, state(free=1, holdtime=61)).target == "gx-complaint"
    d = decide(Call("12300"), table, NOW, cache)
    assert divert_live(d, table.diversions, cache.diverted, {"gx-general": state(free=1, holdtime=60)}) is d


def test_no_state_or_a_free_agent_changes_nothing(table, cache) -> None:  # type: ignore[no-untyped-def]
    d = decide(Call("12300"), table, NOW, cache)
    assert divert_live(d, table.diversions, cache.diverted, {}) is d
    assert divert_live(d, table.diversions, cache.diverted, {"gx-general": state()}) is d


def test_the_menu_is_never_diverted(table, cache) -> None:  # type: ignore[no-untyped-def]
    d = decide(Call("12345"), table, NOW, cache)
    assert d.menu
    assert divert_live(d, table.diversions, cache.diverted, {"gx-general": state(available=0)}) is d


def test_a_diverted_decision_is_memoised(table, caches_on, cache) -> None:  # type: ignore[no-untyped-def]
    # decide serves the same decision from its cache, and the memo the same diversion of it
    first = diverted(table, cache, state(available=0))
    assert diverted(table, cache, state(available=0)) is first


def test_route_script_sets_the_diverted_variables(table) -> None:  # type: ignore[no-untyped-def]
    env = {"agi_arg_1": "12300", "agi_callerid": "unknown"}
    script = route_script(env, table, NOW, decide, queues={"gx-general": state(available=0)})
    text = "\n".join(script.lines)
    assert f"{cv.ACTION}=release" in text and f"{cv.DIVERTED}=no_agents" in text and "divert-no-agents" in text
    plain = "\n".join(route_script(env, table, NOW, decide).lines)
    assert cv.DIVERTED not in plain and f"{cv.ACTION}=queue" in plain


# -- the rules themselves (core/diversion.py) ----------------------------------------------------------------

LATER = dt.datetime(2022, 9, 15, 10, tzinfo=ZoneInfo("Asia/Shanghai"))  # 12315 has cut over to 12345's queues


def rule(
    when: DivertWhen,
    to: DivertTo = DivertTo.RELEASE,
    *,
    over: int = 0,
    queue: str | None = None,
    sites: tuple[tuple[str | None, str, str], ...] = (),
    prompts: tuple[str, ...] = ("divert-busy",),
    maxlen: int = 0,
) -> DiversionRule:
    return DiversionRule(when, over, to, queue, sites, prompts, maxlen)


def test_each_condition_holds_from_its_bound_on() -> None:
    # no agents: none available, whether or not some are logged in (paused)
    assert holds(rule(DivertWhen.NO_AGENTS), state(members=2, available=0, free=0))
    assert not holds(rule(DivertWhen.NO_AGENTS), state(available=1, free=0))
    # all busy: agents available and none free; with no agent at all nobody is busy
    busy = rule(DivertWhen.ALL_BUSY)
    assert holds(busy, state(available=2, free=0))
    assert not holds(busy, state(members=0, available=0, free=0)) and not holds(busy, state(available=2, free=1))
    # the expected wait strictly over its number
    wait = rule(DivertWhen.WAIT_OVER, over=60)
    assert holds(wait, state(holdtime=61)) and not holds(wait, state(holdtime=60))
    # (callers waiting + this one) per available agent strictly over its number
    per_agent = rule(DivertWhen.CALLERS_PER_AGENT_OVER, over=2)
    assert not holds(per_agent, state(available=2, free=0, waiting=3))  # 4 callers, 2 agents: 2 each
    assert holds(per_agent, state(available=2, free=0, waiting=4))  # 5 callers, 2 agents
    assert holds(per_agent, state(members=0, available=0, free=0))  # this caller and no agent
    # full: as many waiting as the queue's maxlen; a queue without one (0) is never full
    assert holds(rule(DivertWhen.FULL, maxlen=1), state(waiting=1))
    assert not holds(rule(DivertWhen.FULL, maxlen=1), state(waiting=0))
    assert not holds(rule(DivertWhen.FULL, maxlen=0), state(waiting=0))
    assert not holds(rule(DivertWhen.FULL, maxlen=0), state(waiting=500))


def test_every_field_of_each_way_a_call_is_diverted(table) -> None:  # type: ignore[no-untyped-def]
    d = decide(Call("12315"), table, LATER)
    assert (d.action, d.target, d.overflow, d.overflow_after) == (Action.QUEUE, "gx-l12315", "gx-general", 90)
    busy = state(available=1, free=0)
    why = f"{d.reason}; diverted from gx-l12315: all agents busy"
    release = divert(d, (rule(DivertWhen.ALL_BUSY, DivertTo.RELEASE),), busy, {})
    assert release == replace(
        d,
        action=Action.RELEASE,
        target=None,
        prompts=(*d.prompts, "divert-busy"),
        overflow=None,
        overflow_after=0,
        hangup=True,
        reason=f"{why}, prompt and release",
        diverted="all_busy",
    )
    callback = divert(d, (rule(DivertWhen.ALL_BUSY, DivertTo.CALLBACK, prompts=("offer-callback",)),), busy, {})
    assert callback == replace(
        d,
        prompts=(*d.prompts, "offer-callback"),
        reason=f"{why}, a callback offered first",
        diverted="all_busy",
        offer_callback=True,
    )
    slow = rule(DivertWhen.WAIT_OVER, DivertTo.OVERFLOW, over=60, queue="gx-complaint", prompts=("overflow",))
    assert divert(d, (slow,), state(holdtime=61), {}) == replace(
        d,
        target="gx-complaint",
        prompts=(*d.prompts, "overflow"),
        overflow=None,
        overflow_after=0,
        reason=f"{d.reason}; diverted from gx-l12315: expected wait over 60 s, to queue gx-complaint",
        diverted="wait_over",
    )


def test_a_sub_centre_takes_the_callers_city_site_or_its_one_for_all(table) -> None:  # type: ignore[no-untyped-def]
    d = decide(Call("12315", city="guilin"), table, LATER)
    assert d.target == "guilin-l12315"
    crowded = state(available=1, free=0, waiting=2)
    sites = (("nanning", "tobacco@nanning", "PJSIP/12313@nn"), ("guilin", "tobacco@guilin", "PJSIP/12313@gl"))
    per_city = rule(DivertWhen.CALLERS_PER_AGENT_OVER, DivertTo.SUBCENTRE, over=2, sites=sites, prompts=("overflow",))
    assert divert(d, (per_city,), crowded, {}) == replace(
        d,
        action=Action.SUBCENTRE,
        target="tobacco@guilin",
        dial="PJSIP/12313@gl",
        prompts=(*d.prompts, "overflow"),
        overflow="guilin-l12315",  # unanswered there: back to the queue it came from
        reason=f"{d.reason}; diverted from guilin-l12315: over 2 callers per agent, to sub-centre tobacco@guilin",
        diverted="callers_per_agent_over",
    )
    province = rule(DivertWhen.CALLERS_PER_AGENT_OVER, DivertTo.SUBCENTRE, over=2, sites=((None, "tax", "PJSIP/t"),))
    out = divert(d, (province,), crowded, {})
    assert (out.action, out.target, out.dial) == (Action.SUBCENTRE, "tax", "PJSIP/t")


def test_an_overflow_with_nowhere_else_to_go_gives_way_to_the_next_rule(table) -> None:  # type: ignore[no-untyped-def]
    d = decide(Call("12315"), table, LATER)
    busy = state(available=1, free=0)
    for queue in (None, d.target):  # no queue to take, or the queue the call is already in
        out = divert(
            d, (rule(DivertWhen.ALL_BUSY, DivertTo.OVERFLOW, queue=queue), rule(DivertWhen.ALL_BUSY)), busy, {}
        )
        assert out.action is Action.RELEASE and out.target is None


def test_the_memo_keeps_one_diversion_per_decision_and_rule_and_stays_bounded(  # type: ignore[no-untyped-def]
    table, caches_on, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = decide(Call("12315"), table, LATER), decide(Call("12315", city="guilin"), table, LATER)
    rules = (
        rule(DivertWhen.NO_AGENTS),
        rule(DivertWhen.FULL, DivertTo.OVERFLOW, queue="gx-complaint", maxlen=3),
    )
    nobody, full = state(available=0, free=0), state(available=1, free=0, waiting=3)
    memo: dict[tuple[int, int], tuple[Decision, Decision]] = {}
    released, released_too = divert(first, rules, nobody, memo), divert(second, rules, nobody, memo)
    assert released.action is released_too.action is Action.RELEASE
    assert divert(first, rules, nobody, memo) is released and divert(second, rules, nobody, memo) is released_too
    # the same decision turned by another rule is another entry, not the first rule's outcome
    overflowed = divert(first, rules, full, memo)
    assert overflowed.target == "gx-complaint" and divert(first, rules, full, memo) is overflowed
    assert len(memo) == 3
    monkeypatch.setattr(diversion, "DIVERTED_LIMIT", 3)
    divert(second, rules, full, memo)  # a full memo is emptied before it takes another entry
    assert len(memo) == 1


# -- the queue state from AMI -----------------------------------------------------------------------------


def ev(name: str, **fields: str) -> dict[str, str]:
    return {"Event": name, **fields}


def test_tracker_counts_members_callers_and_pauses() -> None:
    t = QueueTracker()
    t.apply(ev("QueueMemberAdded", Queue="q", Interface="Local/a@x/n", Status="1", Paused="0"))
    t.apply(ev("QueueMemberAdded", Queue="q", Interface="Local/b@x/n", Status="5", Paused="0"))  # not logged in
    t.apply(ev("QueueMemberStatus", Queue="q", Interface="Local/c@x/n", Status="2", Paused="0", InCall="1"))
    t.apply(ev("QueueCallerJoin", Queue="q", Uniqueid="1.1"))
    t.apply(ev("QueueCallerJoin", Queue="q", Uniqueid="1.2"))
    assert t.states()["q"] == QueueState(members=2, available=2, free=1, waiting=2, holdtime=0)
    t.apply(ev("QueueMemberPause", Queue="q", Interface="Local/a@x/n", Paused="1"))
    t.apply(ev("QueueCallerLeave", Queue="q", Uniqueid="1.1"))
    assert t.states()["q"] == QueueState(members=2, available=1, free=0, waiting=1, holdtime=0)
    t.apply(ev("QueueMemberRemoved", Queue="q", Interface="Local/c@x/n"))
    assert t.states()["q"].available == 0


def test_tracker_holdtime_is_app_queues_average() -> None:
    """app_queue.c recalc_holdtime: the first answer sets it, later ones weigh 1/4 (integer shift)."""
    t = QueueTracker()
    t.apply(ev("AgentConnect", Queue="q", HoldTime="40"))
    assert t.states()["q"].holdtime == 40
    t.apply(ev("AgentComplete", Queue="q"))
    t.apply(ev("AgentConnect", Queue="q", HoldTime="10"))
    assert t.states()["q"].holdtime == (40 * 3 + 10) >> 2 == 32
    t.reset()
    t.apply(ev("QueueParams", Queue="q", Holdtime="25", Completed="4", Abandoned="1"))
    t.apply(ev("AgentConnect", Queue="q", HoldTime="5"))
    assert t.states()["q"].holdtime == (25 * 3 + 5) >> 2


def test_tracker_skips_malformed_events() -> None:
    t = QueueTracker()
    for bad in (
        ev("QueueCallerJoin", Uniqueid="1"),  # no queue
        ev("QueueMemberStatus", Queue="q", Interface="x", Status="busy"),
        ev("AgentConnect", Queue="q", HoldTime="-3"),
        ev("QueueCallerJoin", Queue="q"),
    ):
        assert not t.apply(bad)
    assert t.skipped == 4
    assert not t.apply(ev("Newchannel", Queue="q"))  # not a queue event: ignored, not skipped
    assert t.skipped == 4


# -- the snapshot file ------------------------------------------------------------------------------------


def test_snapshot_round_trip(tmp_path: Path) -> None:
    states = {"gx-general": state(2, 1, 0, 4, 33), "gx-complaint": state(0, 0, 0, 0, 0)}
    path = tmp_path / "qs.bin"
    write_snapshot(path, states, 1000.0)
    at, read = decode(path.read_bytes())
    assert at == 1000.0 and dict(read) == states and read.get("nowhere") is None
    board = QueueBoard(path)
    board.refresh(1001.0)
    assert dict(board.states) == states
    board.refresh(1000.0 + 6)  # the events service stopped writing: not believed any more
    assert board.states == {}
    write_snapshot(path, {"gx-general": state(available=0), "gx-complaint": state()}, 1010.0)
    names = board._names
    board.refresh(1010.5)
    assert board.states["gx-general"].available == 0
    assert board._names is not None and names is not None and board._names[1] is names[1]  # same names: index kept


def test_a_national_snapshot_is_small() -> None:
    states = {f"c{i}-q{j}": state(10, 9, 3, 12, 45) for i in range(300) for j in range(23)}
    data = encode(states, 5.0)
    assert len(data) < 250_000
    assert decode(data)[1]["c299-q22"] == state(10, 9, 3, 12, 45)


def _snapshot(n: int = 1, names: bytes = b"q", counts: bytes = b"\0" * 20, at: float = 1.0) -> bytes:
    return struct.pack("<4sdII", b"HQS2", at, n, len(names)) + names + counts


@pytest.mark.parametrize(
    "data",
    [
        b"not a snapshot",
        b"",
        _snapshot()[:-1],  # cut short
        _snapshot() + b"\0",
        b"HQS1" + _snapshot()[4:],
        _snapshot(at=float("nan")),
        _snapshot(n=2, counts=b"\0" * 40),  # one name for two queues
        _snapshot(n=2, names=b"q\nq", counts=b"\0" * 40),  # the same queue twice
        _snapshot(names=b"\xff"),
        _snapshot(counts=struct.pack("<5I", 1, 1, 1, 1, 2_000_000)),
        b" " * (4 * 1024 * 1024 + 1),
    ],
)
def test_hostile_snapshots_are_refused(tmp_path: Path, data: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SnapshotError):
        decode(data)
    path = tmp_path / "qs.bin"
    path.write_bytes(encode({"q": state()}, 100.0))
    board = QueueBoard(path)
    board.refresh(100.0)
    path.write_bytes(data)
    board.refresh(100.5)
    assert board.states == {}  # a broken file turns diversion off; the calls still join their queues
    assert "diversion rules are off" in caplog.text
