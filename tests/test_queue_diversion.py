"""Diversion before the wait: YAML rules (file:line errors), the pure decision, AMI-fed queue state, the snapshot."""

from __future__ import annotations

import datetime as dt
import struct
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.scripts import route_script
from hotline_cti.config.compile import compile_config
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.core.diversion import QueueState, divert_live
from hotline_cti.core.memo import DecisionCache
from hotline_cti.core.model import Action, Call
from hotline_cti.core.routing import decide
from hotline_cti.records.queue_live import (
    QueueBoard,
    QueueTracker,
    SnapshotError,
    decode,
    encode,
    write_snapshot,
)

sys.path.insert(0, str(Path(__file__).parent))
from conftest import SMALL_YAML

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
    assert diverted(table, cache, state(free=1, holdtime=60)) is decide(Call("12300"), table, NOW, cache)  # unchanged


def test_no_state_or_a_free_agent_changes_nothing(table, cache) -> None:  # type: ignore[no-untyped-def]
    d = decide(Call("12300"), table, NOW, cache)
    assert divert_live(d, table.diversions, cache.diverted, {}) is d
    assert divert_live(d, table.diversions, cache.diverted, {"gx-general": state()}) is d


def test_the_menu_is_never_diverted(table, cache) -> None:  # type: ignore[no-untyped-def]
    d = decide(Call("12345"), table, NOW, cache)
    assert d.menu
    assert divert_live(d, table.diversions, cache.diverted, {"gx-general": state(available=0)}) is d


def test_a_diverted_decision_is_memoised(table, cache) -> None:  # type: ignore[no-untyped-def]
    first = diverted(table, cache, state(available=0))
    assert diverted(table, cache, state(available=0)) is first


def test_route_script_sets_the_diverted_variables(table) -> None:  # type: ignore[no-untyped-def]
    env = {"agi_arg_1": "12300", "agi_callerid": "unknown"}
    script = route_script(env, table, NOW, decide, queues={"gx-general": state(available=0)})
    text = "\n".join(script.lines)
    assert f"{cv.ACTION}=release" in text and f"{cv.DIVERTED}=no_agents" in text and "divert-no-agents" in text
    plain = "\n".join(route_script(env, table, NOW, decide).lines)
    assert cv.DIVERTED not in plain and f"{cv.ACTION}=queue" in plain


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
