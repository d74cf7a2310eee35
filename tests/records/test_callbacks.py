"""Callbacks (回呼): the book's rules, the keeper over a real SQLite store (restart, retries, give-up,
abandoned callers), the KPI policy, the YAML section and the generated dialplan."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from hotline_cti.config.compile import compile_config
from hotline_cti.config.errors import ConfigError
from hotline_cti.config.loader import load_config
from hotline_cti.config.schema import AbandonedCallers, Callback
from hotline_cti.dialplan.options import RenderOptions
from hotline_cti.dialplan.render import render_all
from hotline_cti.kpi.callbacks import count_callbacks, with_callbacks
from hotline_cti.kpi.counts import AnswerCount
from hotline_cti.records.builder import RecordBuilder
from hotline_cti.records.callback import CallbackBook, CallbackEventError, CallbackRules, CallbackStatus
from hotline_cti.records.model import CallRecord, Outcome
from hotline_cti.reports.render import render_report
from hotline_cti.serve.callback_keeper import CallbackKeeper
from hotline_cti.storage.store import Store
from hotline_cti.wallboard.assets import wall_page
from hotline_cti.wallboard.hub import Hub
from tests.conftest import SMALL_YAML

T0 = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
NUMBER = "13812345678"


def cb(step: str, call_id: str = "1700.1", **fields: str) -> dict[str, str]:
    return {"Event": "UserEvent", "UserEvent": "HotlineCallback", "CallId": call_id, "Step": step, **fields}


def accepted(call_id: str = "1700.1", position: str = "3") -> dict[str, str]:
    return cb(
        "accepted",
        call_id,
        Queue="gx-general",
        Number=NUMBER,
        Position=position,
        Joined=str(int(T0.timestamp()) - 60),
        Priority="2",
    )


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


# -- the book ---------------------------------------------------------------------------------------------


def test_a_callback_from_the_key_to_the_caller_reached() -> None:
    book = CallbackBook("gx")
    (rec,) = book.apply(cb("offered", Queue="gx-general"), at(0))
    assert rec.status is CallbackStatus.OFFERED
    (rec,) = book.apply(accepted(), at(5))
    assert (rec.status, rec.number, rec.position, rec.priority, rec.source) == (
        CallbackStatus.WAITING,
        NUMBER,
        3,
        2,
        "key",
    )
    assert rec.joined == T0 - dt.timedelta(seconds=60)
    (rec,) = book.apply(cb("answered", Agent="Local/agent1002@hotline-agents-1;1"), at(90))
    assert rec.status is CallbackStatus.CALLING and rec.agent.startswith("Local/agent1002")
    (rec,) = book.apply(cb("dialled", Attempt="1", Result="ANSWER"), at(95))
    assert rec.status is CallbackStatus.REACHED and rec.reached == at(95) and rec.attempts == 1
    assert rec.number == "138****5678" and book.records == {}  # closed: masked, no longer open


def test_retries_then_give_up() -> None:
    book = CallbackBook("gx", CallbackRules(retries=1, retry_after=60, give_up_after=3600))
    book.apply(accepted(), at(0))
    (rec,) = book.apply(cb("dialled", Result="NOANSWER"), at(100))
    assert rec.status is CallbackStatus.RETRY and rec.next_try == at(160)
    assert book.due(at(159)) == []
    (due,) = book.due(at(160))
    assert due.status is CallbackStatus.WAITING
    (rec,) = book.apply(cb("dialled", Result="BUSY"), at(200))  # the one retry failed too
    assert rec.status is CallbackStatus.GIVEN_UP and rec.attempts == 2 and rec.number == "138****5678"


def test_give_up_after_its_time_and_when_the_placeholder_leaves_the_queue() -> None:
    book = CallbackBook("gx", CallbackRules(retries=5, retry_after=60, give_up_after=600))
    book.apply(accepted("a"), at(0))
    book.apply(accepted("b"), at(0))
    (rec,) = book.apply(cb("unqueued", "a", Status="TIMEOUT"), at(580))  # a retry would come after the limit
    assert rec.status is CallbackStatus.GIVEN_UP
    assert [r.callback_id for r in book.expired(at(599))] == []
    (late,) = book.expired(at(600))
    assert late.callback_id == "b" and late.status is CallbackStatus.GIVEN_UP


def test_an_offer_not_confirmed_is_declined() -> None:
    book = CallbackBook("gx")
    book.apply(cb("offered"), at(0))
    rec = book.declined("1700.1", at(10))
    assert rec is not None and rec.status is CallbackStatus.DECLINED
    book.apply(accepted("x"), at(0))
    assert book.declined("x", at(5)) is None  # accepted: the caller hanging up is expected


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (cb("accepted", Number="12"), "without a number"),
        (cb("accepted", Number="138;Dial(x)"), "without a number"),
        (cb("offered", ""), "without a usable CallId"),
        (cb("offered", "x" * 65), "without a usable CallId"),
    ],
)
def test_malformed_events_are_refused(event: dict[str, str], message: str) -> None:
    with pytest.raises(CallbackEventError, match=message):
        CallbackBook("gx").apply(event, at(0))


def test_an_unknown_step_is_refused() -> None:
    book = CallbackBook("gx")
    book.apply(accepted(), at(0))
    with pytest.raises(CallbackEventError, match="not one of ours"):
        book.apply(cb("exploded"), at(1))


# -- the keeper over a real store ---------------------------------------------------------------------------


class Link:
    """An AMI link as the keeper uses it: subscriptions, resync hooks, and the actions it sent."""

    def __init__(self, entries: list[dict[str, str]] | None = None) -> None:
        self.connected = True
        self.handlers: dict[str, list[Callable[[Any], Any]]] = {}
        self.hooks: list[Callable[[Any], Any]] = []
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.entries = entries or []

    def on(self, event: str, callback: Callable[[Any], Any]) -> None:
        self.handlers.setdefault(event, []).append(callback)

    def add_resync_hook(self, hook: Callable[[Any], Any]) -> None:
        self.hooks.append(hook)

    def emit(self, event: Mapping[str, str]) -> None:
        for handler in self.handlers.get(event["Event"], []):
            handler(event)

    async def action(self, name: str, fields: Mapping[str, str] | None = None) -> Any:
        self.sent.append((name, dict(fields or {})))

        class Result:
            events = self.entries

        return Result()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = await Store.open(f"sqlite:///{tmp_path / 'cti.db'}")
    yield s
    await s.close()


POLICY = Callback(retries=1, retry_after=60, give_up_after=3600, abandoned_over=30)


async def test_a_callback_survives_a_restart_and_is_retried_at_the_head_of_its_queue(store: Store) -> None:
    clock = Clock()
    link = Link()
    first = CallbackKeeper(link, store, POLICY, "gx", clock)
    await first.load()
    link.emit(cb("offered", Queue="gx-general"))
    link.emit(accepted())
    await first.tick()
    (row,) = await store.open_callbacks("gx")
    assert (row.status, row.number, row.position) == (CallbackStatus.WAITING, NUMBER, 3)

    # The events service restarts: a new keeper takes the open callback over from the database.
    link2 = Link()
    second = CallbackKeeper(link2, store, POLICY, "gx", clock)
    assert await second.load() == 1
    link2.emit(cb("answered"))
    link2.emit(cb("dialled", Attempt="1", Result="NOANSWER"))
    await second.tick()
    assert link2.sent == []  # not due yet
    clock.now = at(61)
    await second.tick()
    ((name, fields),) = link2.sent
    assert name == "Originate" and fields["Channel"] == "Local/1700.1@hotline-callback-hold"
    assert (fields["Context"], fields["Exten"], fields["Async"]) == ("hotline-callback-dial", "s", "true")
    variables = dict(pair.split("=", 1) for pair in fields["Variable"].split(","))
    assert variables["HOTLINE_CB_POSITION"] == "1" and variables["HOTLINE_CB_ATTEMPT"] == "2"
    assert variables["HOTLINE_CB_NUMBER"] == NUMBER and variables["HOTLINE_CB_PRIO"] == "2"
    link2.emit(cb("dialled", Attempt="2", Result="ANSWER"))
    await second.tick()
    assert await store.open_callbacks("gx") == []
    (done,) = await store.callbacks_between()
    assert (done.status, done.attempts, done.number) == (CallbackStatus.REACHED, 2, "138****5678")


async def test_a_placeholder_lost_with_asterisk_is_placed_again_after_the_resync(store: Store) -> None:
    clock = Clock()
    link = Link(entries=[{"Event": "QueueEntry", "Channel": "Local/other@hotline-callback-hold-00000001;2"}])
    keeper = CallbackKeeper(link, store, POLICY, "gx", clock)
    link.emit(accepted())
    clock.now = at(30)
    await link.hooks[0](link)
    await keeper.tick()
    assert [name for name, _ in link.sent] == ["QueueStatus", "Originate"]


async def test_abandoned_callers_over_the_limit_are_listed_or_called(store: Store) -> None:
    clock = Clock()
    link = Link()
    keeper = CallbackKeeper(link, store, POLICY, "gx", clock)
    abandon = {"Event": "QueueCallerAbandon", "Queue": "gx-general", "CallerIDNum": NUMBER, "Channel": "PJSIP/t-1"}
    link.emit({**abandon, "Uniqueid": "short", "HoldTime": "30"})  # not over 30 s
    link.emit({**abandon, "Uniqueid": "anon", "HoldTime": "90", "CallerIDNum": "anonymous"})  # nobody to call
    link.emit({**abandon, "Uniqueid": "long", "HoldTime": "31"})
    await keeper.tick()
    (row,) = await store.open_callbacks("gx")
    assert (row.callback_id, row.status, row.source) == ("long", CallbackStatus.LISTED, "abandoned")
    assert link.sent == [] and keeper.view()["listed"] == 1
    assert keeper.view()["open"][0]["number"] == "138****5678"

    caller = CallbackKeeper(Link(), store, POLICY.model_copy(update={"abandoned": AbandonedCallers.CALL}), "gx", clock)
    link2: Link = caller.ami  # type: ignore[assignment]
    link2.emit({**abandon, "Uniqueid": "long2", "HoldTime": "45"})
    await caller.tick()
    assert [name for name, _ in link2.sent] == ["Originate"]


async def test_unsaved_rows_wait_for_the_database(store: Store) -> None:
    class Down:
        async def upsert_callbacks(self, records: Any) -> None:
            raise OSError("database away")

        async def open_callbacks(self, region: str, node: str | None = None) -> list[Any]:
            return []

    link = Link()
    keeper = CallbackKeeper(link, Down(), POLICY, "gx", Clock())
    link.emit(accepted())
    await keeper.tick()
    assert list(keeper.unsaved) == ["1700.1"]  # kept for the next tick, nothing lost
    keeper.store = store
    await keeper.tick()
    assert keeper.unsaved == {} and len(await store.open_callbacks("gx")) == 1


# -- KPIs -------------------------------------------------------------------------------------------------


def test_counts_and_the_answered_policy() -> None:
    book = CallbackBook("gx", CallbackRules(retries=0))
    book.apply(cb("offered", "a"), at(0))
    book.apply(accepted("a"), at(1))
    book.apply(cb("answered", "a"), at(2))
    (reached,) = book.apply(cb("dialled", "a", Result="ANSWER"), at(3))
    book.apply(accepted("b"), at(1))
    (failed,) = book.apply(cb("dialled", "b", Result="NOANSWER"), at(3))
    (offered,) = book.apply(cb("offered", "c"), at(0))
    counts = count_callbacks([reached, failed, offered])
    assert (counts.offered, counts.accepted, counts.answered, counts.reached, counts.given_up) == (3, 2, 1, 1, 1)
    assert counts.reach_rate == 0.5
    calls = [CallRecord(call_id=c, region="gx", started=T0, outcome=Outcome.FAILED) for c in ("a", "b")]
    off, on = AnswerCount(), AnswerCount()
    for r in with_callbacks(calls, [reached, failed], counts_as_answered=False):
        off.add(r)
    for r in with_callbacks(calls, [reached, failed], counts_as_answered=True):
        on.add(r)
    assert (off.offered, off.answered) == (2, 0) and (on.offered, on.answered) == (2, 1)
    assert calls[0].outcome is Outcome.FAILED  # the stored record is not changed
    table = render_report(calls, "table", callbacks=counts)
    assert "回呼接通 reached the caller" in table and "50.0%" in table


# -- the YAML and the dialplan --------------------------------------------------------------------------


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("section", "needle", "message"),
    [
        ("callback: {queues: [general, nowhere]}", "nowhere", "unknown queue 'nowhere'"),
        ("callback: {dial: PJSIP/12345@pstn}", "callback:", "needs '{number}'"),
        ('callback: {dial: "PJSIP/{number}@pstn,,g)"}', "callback:", "use letters, digits"),
        ("callback: {key: 99}", "key", "callback.key"),
        ("callback: {retries: 11}", "retries", "callback.retries"),
        ("callback: {abandoned: ring}", "abandoned", "callback.abandoned"),
    ],
)
def test_bad_callback_sections_are_named_with_their_line(
    tmp_path: Path, section: str, needle: str, message: str
) -> None:
    text = SMALL_YAML + section + "\n"
    out = problems_of(tmp_path, text)
    assert len(out) == 1, out
    assert f"cfg.yaml:{line_of(text, needle)}:" in out[0] and message in out[0]


def test_a_diversion_offering_a_callback_needs_the_section(tmp_path: Path) -> None:
    rule = "  - id: general\n    name: 综合\n    diversion:\n      - {when: all_busy, to: callback}\n"
    text = SMALL_YAML.replace("  - {id: general, name: 综合}\n", rule, 1)
    (problem,) = problems_of(tmp_path, text)
    assert f"cfg.yaml:{line_of(text, 'to: callback')}:" in problem and "no 'callback:' section" in problem
    problems = problems_of(tmp_path, text + "callback: {queues: [complaint]}\n")
    assert len(problems) == 1 and "not in callback.queues" in problems[0]
    path = tmp_path / "ok.yaml"
    path.write_text(text + "callback: {queues: [general]}\n", encoding="utf-8")
    assert load_config(path).model.callback is not None


def test_dialplan_of_callback_queues(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(SMALL_YAML + "callback: {queues: [general], key: 8, give_up_after: 900}\n", encoding="utf-8")
    files = render_all(load_config(path).model, RenderOptions())
    queues = files["queues.conf"].split("\n\n")
    general = next(b for b in queues if b.startswith("[gx-general]"))
    complaint = next(b for b in queues if b.startswith("[gx-complaint]"))
    assert "context=hotline-callback" in general and "hotline/callback-hint" in general
    assert "context=" not in complaint
    ext = files["extensions.conf"]
    assert "exten => 8,1,Set(HOTLINE_IN_QUEUE=${QUEUENAME})" in ext
    assert " same => n,Set(HOTLINE_CB_POSITION=${QUEUEPOSITION})" in ext
    assert ",hotline-callback-dial,s,1,900,av(HOTLINE_CB_ID=" in ext
    assert "Dial(PJSIP/${HOTLINE_CB_NUMBER}@pstn,30,g)" in ext
    assert "exten => rejoin,1,Queue(${HOTLINE_IN_QUEUE}," in ext
    plain = tmp_path / "plain.yaml"
    plain.write_text(SMALL_YAML, encoding="utf-8")
    assert "hotline-callback" not in "".join(render_all(load_config(plain).model, RenderOptions()).values())


async def test_the_wallboard_shows_open_callbacks_masked(store: Store, tmp_path: Path) -> None:
    link = Link()
    keeper = CallbackKeeper(link, store, POLICY, "gx", Clock())
    link.emit(accepted())
    path = tmp_path / "cfg.yaml"
    path.write_text(SMALL_YAML, encoding="utf-8")
    hub = Hub(compile_config(load_config(path).model), clock=lambda: T0)
    hub.callbacks = keeper.view
    snapshot = json.loads(hub.snapshot_json())
    (row,) = snapshot["callbacks"]["open"]
    assert (row["queue"], row["number"], row["status"], row["position"]) == ("gx-general", "138****5678", "waiting", 3)
    assert NUMBER not in hub.snapshot_json()
    page = wall_page("sup", "supervisor")
    assert '<tbody id="callbacks">' in page and "回呼" in page


def test_a_placeholder_is_not_a_call_of_its_own() -> None:
    """A retry's placeholder (originated by AMI: its own Linkedid) makes no call record; a real call does."""
    builder = RecordBuilder("gx")
    placeholder = "Local/1700.1@hotline-callback-hold-0000000a;1"
    for uid, channel in (("1700.50", placeholder), ("1700.60", "PJSIP/trunk-00000001")):
        event = {"Event": "Newchannel", "Channel": channel, "Uniqueid": uid, "Linkedid": uid, "CallerIDNum": NUMBER}
        builder.feed(event, T0)
    assert [r.call_id for r in builder.snapshot()] == ["1700.60"]
