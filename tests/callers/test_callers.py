"""Repeat and nuisance callers: keyed hashes, the sliding window, the rules, the screen in the routing scripts,
the config checks, the lists in the database (SQLite and PostgreSQL), the CLI and the MQTT command with their audit."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hotline_cti import channel_vars as cv
from hotline_cti.adapters.agi.scripts import ivr_script, route_script
from hotline_cti.adapters.mqtt.command_settings import CommandSettings
from hotline_cti.adapters.mqtt.commands import CommandHandler
from hotline_cti.callers.hashing import NumberKeyError, canonical_number, hash_number, number_key
from hotline_cti.callers.lists import ListRefresher, refresh_seconds
from hotline_cti.callers.manage import ListChange, apply_change
from hotline_cti.callers.screen import CallerScreen
from hotline_cti.callers.window import CallerWindow
from hotline_cti.cli.main import main
from hotline_cti.config.compile import compile_config
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.core.callers import CallerPolicy, CallerRulePlan, caller_tag, screened
from hotline_cti.core.model import Action, Call
from hotline_cti.core.routing import decide
from hotline_cti.core.table import RoutingTable
from hotline_cti.events import Event
from hotline_cti.records.actions import ActionRecord
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.storage.store import Store
from tests.paths import REPO
from tests.records.test_records_builder import answered_call, only_record, route, run

GUANGXI = REPO / "merger_config" / "guangxi.yaml"
KEY = b"test-number-key-0123456789"
CALLER = "13900000001"
OTHER = "13900000009"
AT = dt.datetime(2021, 9, 15, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))

CALLERS_YAML = """\
extends: guangxi.yaml
prompts:
  nuisance-warning: 请勿无故占用热线资源。
queues:
  - {id: nuisance, name: 重点来电}
callers:
  repeat: {within_hours: 24, tag: 重复}
  max_numbers: 1000
  rules:
    - id: listed
      list: nuisance
      action: {prompt: nuisance-warning, queue: nuisance, tag: 骚扰}
    - id: frequent
      more_than: 3
      within_minutes: 10
      action: {priority: -2}
"""


def write(tmp_path: Path, text: str) -> Path:
    shutil.copy(GUANGXI, tmp_path / "guangxi.yaml")
    path = tmp_path / "callers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def table(tmp_path: Path) -> RoutingTable:
    return compile_config(load_config(write(tmp_path, CALLERS_YAML)).model)


def env(dialled: str, caller: str | None = CALLER, **args: str) -> dict[str, str]:
    out = {"agi_network_script": "route", "agi_arg_1": dialled, "agi_callerid": caller or "unknown"}
    out.update(args)
    return out


def variables(lines: tuple[str, ...]) -> dict[str, str]:
    """The variables a script sets (EXEC MSet and SET VARIABLE lines)."""
    out: dict[str, str] = {}
    for line in lines:
        if line.startswith('EXEC MSet "'):
            for pair in line[len('EXEC MSet "') : -1].split(","):
                name, _, value = pair.partition("=")
                out[name] = value
        elif line.startswith("SET VARIABLE "):
            _, _, name, value = line.split(" ", 3)
            out[name] = json.loads(value) if value.startswith('"') else value
    return out


# ------------------------------------------------------------------ hashing and the window


def test_numbers_hash_alike_in_every_form_and_only_with_a_key() -> None:
    forms = ["13812345678", "+86 138 1234 5678", "008613812345678", "138-1234-5678"]
    assert {canonical_number(f) for f in forms} == {"13812345678"}
    assert len({hash_number(KEY, f) for f in forms}) == 1
    digest = hash_number(KEY, forms[0])
    assert digest is not None and len(digest) == 64 and "13812345678" not in digest
    assert hash_number(b"another-key-0123456789", forms[0]) != digest  # keyed: no table of all numbers helps
    assert hash_number(KEY, "anonymous") is None
    with pytest.raises(NumberKeyError, match="HOTLINE_NUMBER_KEY is not set"):
        number_key({})
    with pytest.raises(NumberKeyError, match="shorter than 16 bytes"):
        number_key({"HOTLINE_NUMBER_KEY": "short"})
    assert number_key({"HOTLINE_NUMBER_KEY": KEY.decode()}) == KEY


def test_the_window_slides_and_stays_bounded() -> None:
    window = CallerWindow(max_numbers=3, max_calls=4)
    for i in range(6):
        recent, _ = window.record("a", "12300", 100.0 + i, keep=600)
    assert recent == (102.0, 103.0, 104.0, 105.0)  # only as many times as a rule needs
    recent, last = window.record("a", "12300", 800.0, keep=600)
    assert recent == (800.0,) and last is None  # everything older than keep has slid out
    _, last = window.record("a", "12315", 801.0, keep=600)
    assert last is None
    _, last = window.record("a", "12300", 900.0, keep=600)
    assert last == 800.0
    for name in "bcd":
        window.record(name, "12300", 901.0, keep=600)
    assert len(window) == 3 and window.times("a") == ()  # the least recently seen number went first
    assert refresh_seconds({}) == 5.0
    with pytest.raises(ValueError, match="HOTLINE_CALLER_LISTS_REFRESH"):
        refresh_seconds({"HOTLINE_CALLER_LISTS_REFRESH": "0"})


# ------------------------------------------------------------------ the screen in the routing scripts


def screen_with_list(*numbers: str) -> CallerScreen:
    screen = CallerScreen(KEY)
    screen.set_lists({"nuisance": frozenset(h for n in numbers if (h := hash_number(KEY, n)))})
    return screen


def test_a_listed_caller_gets_the_prompt_the_named_queue_and_the_tag(table: RoutingTable) -> None:
    screen = screen_with_list(CALLER)
    plain = decide(Call("12300", caller=CALLER), table, AT)
    out = variables(route_script(env("12300"), table, AT, decide, screen).lines)
    assert out[cv.TARGET] == f"{plain.centre}-nuisance" != plain.target
    assert out[cv.PROMPTS] == "hotline/nuisance-warning&hotline/transition-12300"
    assert out[cv.CALLER_TAG] == "骚扰" and out[cv.DECIDED] == "1"
    # another caller is routed as before, with the same cached script
    other = variables(route_script(env("12300", OTHER), table, AT, decide, screen).lines)
    assert other[cv.TARGET] == plain.target and cv.CALLER_TAG not in other


def test_emergency_lines_are_never_touched(table: RoutingTable) -> None:
    screen = screen_with_list(CALLER)
    plain = decide(Call("110", caller=CALLER), table, AT)
    out = variables(route_script(env("110"), table, AT, decide, screen).lines)
    assert plain.action is Action.EMERGENCY and out[cv.DIAL] == plain.dial and out.get(cv.CALLER_TAG, "") == ""
    assert out[cv.PROMPTS] == ""


def test_more_calls_than_allowed_lower_the_priority_and_repeats_are_tagged(table: RoutingTable) -> None:
    screen = CallerScreen(KEY)
    seen = []
    for minute in range(5):
        now = AT + dt.timedelta(minutes=minute)
        seen.append(variables(route_script(env("12300"), table, now, decide, screen).lines))
    assert [s[cv.PRIORITY] for s in seen] == ["0", "0", "0", "-2", "-2"]  # the 4th call in 10 minutes
    assert [s.get(cv.CALLER_TAG, "") for s in seen] == ["", "重复", "重复", "重复", "重复"]
    # a first call to another line is no repeat; the same line after the period is none either
    assert cv.CALLER_TAG not in variables(route_script(env("12315"), table, AT, decide, CallerScreen(KEY)).lines)
    later = AT + dt.timedelta(hours=25)
    assert variables(route_script(env("12300"), table, later, decide, screen).lines).get(cv.CALLER_TAG, "") == ""


def test_the_menus_second_decision_takes_the_rule_without_counting_again(table: RoutingTable) -> None:
    screen = screen_with_list(CALLER)
    first = variables(route_script(env("12345"), table, AT, decide, screen).lines)
    assert first[cv.MENU] == "1" and first[cv.PROMPTS] == "hotline/nuisance-warning&hotline/welcome"
    menu = env("12345", agi_network_script="ivr", agi_arg_3="1")
    second = variables(ivr_script(menu, table, AT, decide, screen).lines)
    assert second[cv.TARGET].endswith("-nuisance") and second[cv.PROMPTS] == ""  # the prompt was played once
    assert screen.remembered == 1


def test_without_key_caller_or_rules_decisions_pass_unchanged(table: RoutingTable, tmp_path: Path) -> None:
    plain = variables(route_script(env("12300"), table, AT, decide).lines)
    assert variables(route_script(env("12300"), table, AT, decide, CallerScreen(None)).lines) == plain
    assert variables(route_script(env("12300", None), table, AT, decide, screen_with_list(CALLER)).lines) == {
        **variables(route_script(env("12300", None), table, AT, decide).lines)
    }
    bare = compile_config(load_config(GUANGXI).model)
    assert bare.callers is None
    out = variables(route_script(env("12300"), bare, AT, decide, screen_with_list(CALLER)).lines)
    assert out == variables(route_script(env("12300"), bare, AT, decide).lines)


# ------------------------------------------------------------------ the rules themselves (core/callers.py)


def count_rule(more_than: int | None, window: float | None) -> CallerRulePlan:
    return CallerRulePlan("count", more_than, window, None, None, -1, None, None)


def policy_of(*rules: CallerRulePlan) -> CallerPolicy:
    return CallerPolicy(rules, None, "", 100, 600.0, 4)


def test_a_count_rule_counts_only_the_calls_inside_its_period() -> None:
    policy = policy_of(count_rule(2, 600.0))
    ts = 10_000.0
    # a call exactly 600 s ago is outside a 600 s period: 2 calls inside, not more than 2
    assert policy.match(frozenset(), (ts - 600.0, ts - 599.0, ts), ts) is None
    assert policy.match(frozenset(), (ts - 599.5, ts - 599.0, ts), ts) is policy.rules[0]


def test_a_count_rule_missing_its_number_or_its_period_is_never_met() -> None:
    # the config checks refuse such a rule; the core must not crash on one either
    many = tuple(float(t) for t in range(100))
    assert policy_of(count_rule(2, None)).match(frozenset(), many, 99.0) is None
    assert policy_of(count_rule(None, 600.0)).match(frozenset(), many, 99.0) is None


def test_the_rules_queue_takes_only_a_plain_queue_decision(table: RoutingTable) -> None:
    assert table.callers is not None
    listed = table.callers.rules[0]  # prompt, queue nuisance, tag 骚扰
    names = ("gx-nuisance", None)
    later = AT.replace(year=2022)  # 12315 has cut over: 12345's skill queue with expert seats
    expert = decide(Call("12315"), table, later)
    assert expert.action is Action.QUEUE and expert.expert_queue == "gx-expert-e12315"
    out = screened(expert, listed, first=True, queue_names=names)
    assert (out.target, out.overflow, out.expert_queue) == ("gx-nuisance", None, None)
    assert out.prompts == ("nuisance-warning", *expert.prompts)
    assert out.reason == f"{expert.reason}; caller rule listed"
    # a department keeps its seats and a menu its queue; the prompt is still played first
    department = decide(Call("12348"), table, later)
    assert department.action is Action.DEPARTMENT
    kept = screened(department, listed, first=True, queue_names=names)
    assert (kept.target, kept.dial, kept.overflow) == (department.target, department.dial, department.overflow)
    assert kept.prompts == ("nuisance-warning", *department.prompts)
    menu = decide(Call("12345"), table, later)
    assert menu.menu
    assert screened(menu, listed, first=True, queue_names=names).target == menu.target
    # without the queue's names at this centre the decision keeps its queue
    assert screened(expert, listed, first=True, queue_names=None).target == expert.target


def test_a_rule_with_nothing_to_change_leaves_the_decision_as_it_is(table: RoutingTable) -> None:
    d = decide(Call("12300"), table, AT)
    quiet = CallerRulePlan("quiet", None, None, "nuisance", "nuisance-warning", None, None, "骚扰")
    # its prompt was played with the first decision: nothing is left to change after the menu
    assert screened(d, quiet, first=False, queue_names=("gx-nuisance", None)) is d
    assert screened(d, None, first=True, queue_names=None) is d


def test_the_agent_sees_the_rules_tag_and_the_repeat_tag_together(table: RoutingTable) -> None:
    assert table.callers is not None
    listed = table.callers.rules[0]
    d = decide(Call("12300"), table, AT)
    assert caller_tag(listed, True, table.callers, d) == "骚扰/重复"
    assert caller_tag(listed, False, table.callers, d) == "骚扰"
    assert caller_tag(None, True, table.callers, d) == "重复"
    assert caller_tag(listed, True, table.callers, decide(Call("110"), table, AT)) == ""


# ------------------------------------------------------------------ config checks


def test_every_callers_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    text = """\
extends: guangxi.yaml
callers:
  rules:
    - {id: both, more_than: 3, within_minutes: 10, list: x, action: {priority: 1}}
    - {id: half, more_than: 3, action: {priority: 1}}
    - {id: none, action: {priority: 1}}
    - {id: idle, list: x, action: {}}
    - {id: where, list: x, action: {queue: nowhere, prompt: no-such-prompt}}
    - {id: where, list: y, action: {tag: ok}}
"""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    out = [str(p) for p in info.value.problems]
    lines = text.splitlines()

    def at(needle: str) -> str:
        return f"{path}:{next(n for n, line in enumerate(lines, 1) if needle in line)}:"

    expected = [
        (at("id: both"), "callers.rules[0]: rule 'both': give 'more_than' + 'within_minutes' or a 'list', not both"),
        (at("id: half"), "callers.rules[1]: rule 'half': 'more_than' needs 'within_minutes'"),
        (at("id: none"), "callers.rules[2]: rule 'none': needs 'more_than' + 'within_minutes'"),
        (at("id: idle"), "callers.rules[3].action: rule 'idle': the action does nothing"),
        (at("nowhere"), "callers.rules[4].action.queue: rule 'where': unknown queue 'nowhere'"),
        (
            at("nowhere"),
            "callers.rules[4].action.prompt: rule 'where': prompt 'no-such-prompt' is not in the catalogue",
        ),
        (at("list: y"), "callers.rules[5].id: duplicate rule id 'where'"),
    ]
    for place, message in expected:
        assert any(p.startswith(place) and message in p for p in out), (place, message, out)
    assert len(out) == len(expected)


@pytest.mark.parametrize("tag", ["a b", "[x]", "a,b", "${X}", "长长长长长长长长长"])
def test_a_tag_asterisk_would_parse_is_refused(tmp_path: Path, tag: str) -> None:
    path = write(tmp_path, f"extends: guangxi.yaml\ncallers:\n  repeat: {{tag: {json.dumps(tag)}}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert any(str(p).startswith(f"{path}:3:") and "callers.repeat.tag" in str(p) for p in info.value.problems)


# ------------------------------------------------------------------ the lists in the database


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lists.db'}" if request.param == "sqlite" else None
    opened = await Store.open(url or request.getfixturevalue("fresh_pg_url"))
    try:
        yield opened
    finally:
        await opened.close()


async def test_lists_keep_hashes_only_and_the_screen_reads_them(store: Store) -> None:
    now = dt.datetime(2026, 12, 6, 8, tzinfo=dt.UTC)
    added = await apply_change(store, KEY, ListChange("add", "nuisance", "+86 139 0000 0001", "cli:test"), now)
    again = await apply_change(store, KEY, ListChange("add", "nuisance", CALLER, "cli:test"), now)
    assert (added.result, again.result) == ("ok", "unchanged") and added.number_hash == hash_number(KEY, CALLER)
    rows = await store.listed_rows()
    assert [(r["list"], r["number_hash"], r["added_by"]) for r in rows] == [("nuisance", added.number_hash, "cli:test")]
    assert all(CALLER not in str(v) for r in rows for v in r.values())
    screen = CallerScreen(KEY)
    refresher = ListRefresher("unused", screen)
    assert await refresher.read_once(store) and screen.lists == {"nuisance": frozenset({added.number_hash})}
    gone = await apply_change(store, KEY, ListChange("remove", "nuisance", CALLER, "cli:test"), now)
    missing = await apply_change(store, KEY, ListChange("remove", "nuisance", CALLER, "cli:test"), now)
    assert (gone.result, missing.result) == ("ok", "unchanged")
    assert await store.caller_lists() == {}


async def test_the_last_lists_stay_while_the_database_is_away(tmp_path: Path) -> None:
    screen = CallerScreen(KEY)
    screen.set_lists({"nuisance": frozenset({"abc"})})
    broken = Store.connect(f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}")  # no caller_lists table
    try:
        assert not await ListRefresher("unused", screen).read_once(broken)
    finally:
        await broken.close()
    assert screen.lists == {"nuisance": frozenset({"abc"})}


async def test_the_route_event_carries_the_tag_into_the_stored_call_record(store: Store) -> None:
    script = answered_call()
    script[1] = (script[1][0], route(CallerTag="重复"))
    record = only_record(run(RecordBuilder("gx"), script))
    assert record.caller_tag == "重复"
    await store.upsert_calls([record])
    (back,) = await store.calls_between(record.started - dt.timedelta(minutes=1))
    assert back.caller_tag == "重复"
    untagged = only_record(run(RecordBuilder("gx"), answered_call()))
    assert untagged.caller_tag == ""


# ------------------------------------------------------------------ CLI and MQTT, audited


def test_cli_changes_a_list_audits_it_and_never_writes_the_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "cli.db"
    url = f"sqlite:///{db}"
    monkeypatch.delenv("HOTLINE_NUMBER_KEY", raising=False)
    assert main(["callers", "add", "nuisance", CALLER, "--database", url]) == 2
    assert "HOTLINE_NUMBER_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("HOTLINE_NUMBER_KEY", KEY.decode())
    assert main(["callers", "add", "nuisance", CALLER, "--database", url, "--note", "第二十九条"]) == 0
    shown = hash_number(KEY, CALLER)
    assert shown is not None and capsys.readouterr().out == f"added to nuisance: {shown[:12]}\n"
    assert main(["callers", "add", "nuisance", CALLER, "--database", url]) == 3
    assert main(["callers", "add", "nuisance", "13900000001x", "--database", url]) == 2
    err = capsys.readouterr().err
    assert "must be digits" in err and CALLER not in err
    assert main(["callers", "show", "--database", url, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["list"] == "nuisance" and row["hash"] == shown[:12] and row["note"] == "第二十九条"
    assert main(["callers", "remove", "nuisance", CALLER, "--database", url]) == 0
    assert main(["callers", "remove", "nuisance", CALLER, "--database", url]) == 3
    import sqlite3

    raw = b"".join(p.read_bytes() for p in tmp_path.glob("cli.db*"))
    assert CALLER.encode() not in raw
    with sqlite3.connect(db) as conn:
        audit = conn.execute("SELECT action, result, detail, reason FROM actions ORDER BY at").fetchall()
    assert [(a, r) for a, r, _, _ in audit] == [
        ("callers:add", "ok"),
        ("callers:add", "ok"),
        ("callers:add", "refused"),
        ("callers:remove", "ok"),
        ("callers:remove", "ok"),
    ]
    assert audit[1][3] == "already on nuisance" and audit[4][3] == "not on nuisance"
    assert all(CALLER not in d and CALLER not in r for _, _, d, r in audit)


class Sink:
    def __init__(self) -> None:
        self.actions: list[ActionRecord] = []
        self.events: list[Event] = []

    def submit_action(self, action: ActionRecord) -> None:
        self.actions.append(action)

    def submit_event(self, event: Event) -> None:
        self.events.append(event)


async def test_mqtt_callers_command_changes_the_list_with_an_audit(sqlite_store: Store) -> None:
    sink = Sink()

    async def change(request: ListChange) -> Any:
        return await apply_change(sqlite_store, KEY, request, AT)

    handler = CommandHandler("gx", CommandSettings(auth="broker"), None, clock=lambda: AT, audit=sink, callers=change)
    body = {"v": 1, "id": "c1", "type": "callers", "op": "add", "list": "nuisance", "number": CALLER}
    (reply,) = await handler.handle("hotline/gx/commands/duty-3/callers", json.dumps(body).encode())
    assert reply.topic == "hotline/gx/replies/duty-3/c1"
    digest = hash_number(KEY, CALLER)
    assert digest is not None
    assert reply.data == {
        "id": "c1",
        "ok": True,
        "result": "ok",
        "list": "nuisance",
        "hash": digest[:12],
        "message": "added to nuisance",
    }
    assert await sqlite_store.caller_lists() == {"nuisance": frozenset({digest})}
    (row,) = sink.actions
    assert (row.actor, row.action, row.result) == ("mqtt:duty-3", "callers:add", "ok")
    bad = {**body, "id": "c2", "op": "wipe"}
    (refused,) = await handler.handle("hotline/gx/commands/duty-3/callers", json.dumps(bad).encode())
    assert refused.data["ok"] is False and "unknown op 'wipe'" in refused.data["error"]
    assert sink.actions[-1].result == "refused"
    text = json.dumps([e.data for e in sink.events]) + json.dumps(refused.data) + json.dumps(reply.data)
    assert CALLER not in text and CALLER not in str(sink.actions)


async def test_mqtt_callers_command_without_the_key_is_refused() -> None:
    handler = CommandHandler("gx", CommandSettings(auth="broker"), None, clock=lambda: AT)
    body = {"v": 1, "id": "c1", "type": "callers", "op": "add", "list": "nuisance", "number": CALLER}
    events = await handler.handle("hotline/gx/commands/duty-3/callers", json.dumps(body).encode())
    assert "caller lists are not available" in events[0].data["error"]


def test_the_routing_service_screens_only_with_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hotline_cti.adapters.agi.reload import ConfigHolder
    from hotline_cti.serve.routing import caller_screen

    holder = ConfigHolder(write(tmp_path, CALLERS_YAML))
    monkeypatch.delenv("HOTLINE_NUMBER_KEY", raising=False)
    assert caller_screen(holder) is None
    assert (
        "HOTLINE_NUMBER_KEY is not set: caller numbers cannot be hashed: repeat and nuisance caller rules"
        in caplog.text
    )
    monkeypatch.setenv("HOTLINE_NUMBER_KEY", "short")
    assert caller_screen(holder) is None and "shorter than 16 bytes" in caplog.text
    monkeypatch.setenv("HOTLINE_NUMBER_KEY", KEY.decode())
    screen = caller_screen(holder)
    assert screen is not None and screen.key == KEY


async def test_the_first_read_waits_briefly_and_never_blocks_a_start(tmp_path: Path) -> None:
    screen = CallerScreen(KEY)
    refresher = ListRefresher(f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}", screen, every=0.5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await refresher.start(first_read=0.3)
    try:
        assert loop.time() - began < 2.0 and refresher.reads == 0 and screen.lists == {}
    finally:
        await refresher.stop()
    ready = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'lists.db'}")
    try:
        await apply_change(ready, KEY, ListChange("add", "nuisance", CALLER, "cli:test"), AT)
    finally:
        await ready.close()
    refresher = ListRefresher(f"sqlite+aiosqlite:///{tmp_path / 'lists.db'}", screen, every=0.5)
    await refresher.start()
    try:
        assert refresher.reads >= 1 and screen.lists == {"nuisance": frozenset({hash_number(KEY, CALLER)})}
    finally:
        await refresher.stop()


def test_config_show_and_diff_list_the_caller_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = write(tmp_path, CALLERS_YAML)
    assert main(["config", "show", str(new)]) == 0
    out = capsys.readouterr().out
    assert "callers: repeat tag 重复 within 24 h; window of 1000 numbers" in out
    assert "on list nuisance -> prompt nuisance-warning, queue nuisance, tag 骚扰" in out
    assert "more than 3 calls in 10 min -> priority -2" in out
    old = tmp_path / "old.yaml"
    old.write_text(CALLERS_YAML.replace("more_than: 3", "more_than: 5"), encoding="utf-8")
    assert main(["config", "diff", str(old), str(new), "--at", "2021-09-15T10:00"]) == 0
    out = capsys.readouterr().out
    assert "caller rule removed: frequent: more than 5 calls in 10 min -> priority -2" in out
    assert "caller rule added:   frequent: more than 3 calls in 10 min -> priority -2" in out
    assert out.rstrip().endswith("caller rules: 1 added, 1 removed")
